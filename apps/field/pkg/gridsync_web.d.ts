/* tslint:disable */
/* eslint-disable */

/**
 * The phone's replica: records, local edits and sync rounds.
 */
export class Replica {
    private constructor();
    free(): void;
    [Symbol.dispose](): void;
    /**
     * The event kinds the signed-in user may record on case `case_id` now
     * and that would apply to it, as a JSON list (`["mediate", "resolve",
     * "comment"]`): the actions to offer. Kinds that need data are tried
     * with a typical value (a `small` classification, an assignment to
     * the user, a `mediated` result).
     */
    actions(case_id: string): string;
    /**
     * The actor id local changes are written with, in hex.
     */
    actor(): string;
    /**
     * Applies a `200` response body to the last request. Returns JSON
     * `{again, received, errors: [{id, code, message}], dropped}`: while
     * `again` is true, run another round.
     */
    applyResponse(body: Uint8Array | number[]): string;
    /**
     * Attaches a file to record `id` in the signed-in user's name, from
     * this device: keeps `bytes` on the phone (a `file` write), adds the
     * reference to the record's own list as one local change, and queues
     * the upload (an `uploads` write). `meta_json` is `{media_type, name?,
     * taken_at?, caption?, location?}` (`taken_at` in ms, `location` as
     * `"lat,lng"` or empty). Returns the reference as written, as JSON.
     * Attaching the same bytes again changes nothing. Refused like an edit
     * (`forbidden` with the policy's rule, `invalid_record`); then nothing
     * is kept or queued.
     */
    attach(id: string, bytes: Uint8Array | number[], meta_json: string): string;
    /**
     * Starts a sync: call before its first round.
     */
    beginSync(): void;
    /**
     * Creates a record of `kind` from the JSON of its fields and returns
     * its id. A case with no events gets its `report` event, by the
     * signed-in user from this device; a visit with no worker or time gets
     * the user and now.
     */
    create(kind: string, json: string): string;
    /**
     * Every record id held.
     */
    ids(): string[];
    /**
     * Opens the replica persisted as `stored`: `{actor?, cursor?,
     * rejected?, uploads?: Uint8Array, docs: [{id, bytes, acked}]}` (files
     * stay with the page).
     * A new replica (nothing stored) chooses its actor id; take the writes.
     */
    static open(stored: any): Replica;
    /**
     * JSON `{id: n}`: the records with `n` changes not yet acknowledged.
     */
    pending(): string;
    /**
     * Keeps a file's bytes on the phone and queues their upload for record
     * `id`, which the caller then makes name them (a case event's files).
     * Returns the SHA-256, in hex.
     */
    queueFile(id: string, bytes: Uint8Array | number[], media_type: string): string;
    /**
     * Records an event of `kind` with `data_json` (an object of strings,
     * see `workflow.md`) on case `case_id`, by the signed-in user from
     * this device, and returns the event's id. Refused with `forbidden`
     * (and the policy's rule) when the role may not record it, and with
     * `not_applicable` (and the workflow's reason) when it would not apply
     * to the case as it is.
     */
    recordEvent(case_id: string, kind: string, data_json: string): string;
    /**
     * JSON `[{id, code, message, changes}]`: edits the server refused, or
     * that left this device's scope before they were sent, kept for the
     * user.
     */
    rejected(): string;
    /**
     * Checks every later local edit against the policy for the user
     * described by `me_json` (the body of `GET /v1/me`), and folds cases
     * with the server's deadlines it gives.
     */
    setPrincipal(me_json: string): void;
    /**
     * The body of the next `POST /v1/sync`.
     */
    syncRequest(): Uint8Array;
    /**
     * The writes to persist since the last call, in order, as
     * `{op: "actor"|"cursor"|"rejected"|"uploads", bytes}`, `{op: "doc",
     * id, bytes, acked}`, `{op: "remove", id}` and `{op: "file", sha256,
     * bytes}`.
     */
    takeWrites(): Array<any>;
    /**
     * Replaces the fields of record `id` with the JSON given; only what
     * differs is written, and text fields are edited as text (a diff), so
     * that a concurrent edit elsewhere in the same text survives. A case's
     * events are not touched here ([`Replica::record_event`]). Returns
     * whether anything changed.
     */
    update(id: string, json: string): boolean;
    /**
     * Takes file `sha256` off the upload queue: the server holds it, or
     * refused it for good. Its bytes stay on the phone.
     */
    uploadDone(sha256: string): void;
    /**
     * JSON `[{sha256, media_type, size, record}]`: the queued files the
     * server takes now (their record reached it as this phone wrote it,
     * and names them). Read each one's bytes from where the page keeps
     * them and `PUT /v1/attachments/{sha256}`.
     */
    uploadsReady(): string;
    /**
     * JSON `[{sha256, media_type, size, record}]`: every file waiting to
     * be uploaded, oldest first.
     */
    uploads(): string;
    /**
     * A record as JSON: `{id, kind, record, pending, conflicts, case}`.
     */
    view(id: string): string;
    /**
     * Every record of `kind` (`household`, `case`, `visit`, `sensitive`)
     * as a JSON list of views. A record that does not read is left out.
     */
    views(kind: string): string;
}

export type InitInput = RequestInfo | URL | Response | BufferSource | WebAssembly.Module;

export interface InitOutput {
    readonly memory: WebAssembly.Memory;
    readonly __wbg_replica_free: (a: number, b: number) => void;
    readonly replica_actions: (a: number, b: number, c: number) => [number, number, number, number];
    readonly replica_actor: (a: number) => [number, number];
    readonly replica_applyResponse: (a: number, b: number, c: number) => [number, number, number, number];
    readonly replica_attach: (a: number, b: number, c: number, d: number, e: number, f: number, g: number) => [number, number, number, number];
    readonly replica_beginSync: (a: number) => void;
    readonly replica_create: (a: number, b: number, c: number, d: number, e: number) => [number, number, number, number];
    readonly replica_ids: (a: number) => [number, number];
    readonly replica_open: (a: any) => [number, number, number];
    readonly replica_pending: (a: number) => [number, number];
    readonly replica_queueFile: (a: number, b: number, c: number, d: number, e: number, f: number, g: number) => [number, number, number, number];
    readonly replica_recordEvent: (a: number, b: number, c: number, d: number, e: number, f: number, g: number) => [number, number, number, number];
    readonly replica_rejected: (a: number) => [number, number];
    readonly replica_setPrincipal: (a: number, b: number, c: number) => [number, number];
    readonly replica_syncRequest: (a: number) => [number, number];
    readonly replica_takeWrites: (a: number) => any;
    readonly replica_update: (a: number, b: number, c: number, d: number, e: number) => [number, number, number];
    readonly replica_uploadDone: (a: number, b: number, c: number) => [number, number];
    readonly replica_uploads: (a: number) => [number, number];
    readonly replica_uploadsReady: (a: number) => [number, number];
    readonly replica_view: (a: number, b: number, c: number) => [number, number, number, number];
    readonly replica_views: (a: number, b: number, c: number) => [number, number, number, number];
    readonly __wbindgen_malloc: (a: number, b: number) => number;
    readonly __wbindgen_realloc: (a: number, b: number, c: number, d: number) => number;
    readonly __wbindgen_free: (a: number, b: number, c: number) => void;
    readonly __wbindgen_exn_store: (a: number) => void;
    readonly __externref_table_alloc: () => number;
    readonly __wbindgen_externrefs: WebAssembly.Table;
    readonly __externref_table_dealloc: (a: number) => void;
    readonly __externref_drop_slice: (a: number, b: number) => void;
    readonly __wbindgen_start: () => void;
}

export type SyncInitInput = BufferSource | WebAssembly.Module;

/**
 * Instantiates the given `module`, which can either be bytes or
 * a precompiled `WebAssembly.Module`.
 *
 * @param {{ module: SyncInitInput }} module - Passing `SyncInitInput` directly is deprecated.
 *
 * @returns {InitOutput}
 */
export function initSync(module: { module: SyncInitInput } | SyncInitInput): InitOutput;

/**
 * If `module_or_path` is {RequestInfo} or {URL}, makes a request and
 * for everything else, calls `WebAssembly.instantiate` directly.
 *
 * @param {{ module_or_path: InitInput | Promise<InitInput> }} module_or_path - Passing `InitInput` directly is deprecated.
 *
 * @returns {Promise<InitOutput>}
 */
export default function __wbg_init (module_or_path?: { module_or_path: InitInput | Promise<InitInput> } | InitInput | Promise<InitInput>): Promise<InitOutput>;
