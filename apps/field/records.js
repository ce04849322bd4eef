// The phone's records: the Rust replica (compiled to wasm, pkg/) over the
// IndexedDB store. Every call that changes the replica is followed by
// `takeWrites()`, committed in one transaction (db.js); "saved on this
// phone" is reported only when that transaction completes.
//
// Views are parsed from the replica's JSON and cached until the next
// change, so screens can ask for them on every render.

import { commitWrites, loadReplicaState } from './db.js';

let wasm = null;

/**
 * Loads the wasm module (once; again after a failure). main.js starts this
 * as the page opens: the module then compiles while the user signs in, and
 * its files come from the same copy of the app as the page's own, even when
 * a new version of the app is installed meanwhile.
 */
export function loadWasm() {
  wasm ??= (async () => {
    const module = await import('./pkg/gridsync_web.js');
    await module.default();
    return module;
  })().catch((error) => {
    wasm = null;
    throw error;
  });
  return wasm;
}

export class Records {
  /** Opens the replica stored in `db`. */
  static async open(db) {
    const { Replica } = await loadWasm();
    const replica = Replica.open(await loadReplicaState(db));
    const records = new Records(db, replica);
    await records.commit();
    return records;
  }

  constructor(db, replica) {
    this.db = db;
    this.replica = replica;
    this.version = 0;
    this.cache = new Map();
    this.listeners = new Set();
    this.closed = false;
  }

  /** Refuses every later change: another tab holds the replica now, or nobody is signed in. */
  close() {
    this.closed = true;
    this.replica.free();
  }

  /** Calls `listener()` after every change; returns the unsubscribe function. */
  subscribe(listener) {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  /**
   * Commits what the replica has to write, plus `extraMeta`, in one
   * transaction, and tells the listeners. Resolves when it is durable.
   */
  commit(extraMeta) {
    if (this.closed) throw new Error('the records were closed (another tab holds them)');
    const writes = this.replica.takeWrites();
    const saved = writes.length || extraMeta ? commitWrites(this.db, writes, extraMeta) : Promise.resolve();
    if (writes.length) {
      this.version++;
      this.cache.clear();
      for (const listener of this.listeners) listener();
    }
    return saved;
  }

  /**
   * Runs `change(replica)` (create, update, recordEvent) and commits its
   * writes. Returns the call's value once the writes are durable; throws
   * the replica's error (with `code`, `rule`, `message`) when it refuses.
   */
  async change(change) {
    let value;
    try {
      value = change(this.replica);
    } finally {
      // A refusal writes nothing, but whatever was written must not wait.
      await this.commit();
    }
    return value;
  }

  cached(key, compute) {
    if (!this.cache.has(key)) this.cache.set(key, compute());
    return this.cache.get(key);
  }

  /** RecordView[] of a kind: "household", "case", "visit" or "sensitive". */
  views(kind) {
    return this.cached(`views:${kind}`, () => JSON.parse(this.replica.views(kind)));
  }

  /** The RecordView of `id`, or null when the phone does not hold it. */
  view(id) {
    return this.cached(`view:${id}`, () =>
      this.ids().has(id) ? JSON.parse(this.replica.view(id)) : null,
    );
  }

  /** Set of every record id held. */
  ids() {
    return this.cached('ids', () => new Set(this.replica.ids()));
  }

  /**
   * The event kinds the user may record on case `id` now and that would
   * apply to it: the policy and the workflow decide, in the replica.
   */
  actions(id) {
    return this.cached(`actions:${id}`, () => JSON.parse(this.replica.actions(id)));
  }

  /** {id: unsent changes} of the records with unsent changes. */
  pending() {
    return this.cached('pending', () => JSON.parse(this.replica.pending()));
  }

  /** Number of unsent changes in all. */
  pendingCount() {
    return Object.values(this.pending()).reduce((a, b) => a + b, 0);
  }

  /** [{id, code, message, changes}]: refused edits kept on the phone. */
  rejected() {
    return this.cached('rejected', () => JSON.parse(this.replica.rejected()));
  }

  /** The rejected entry of `id`, if any. */
  rejectedOf(id) {
    return this.rejected().find((r) => r.id === id) ?? null;
  }

  /**
   * Attaches a file to record `id`: `bytes` (Uint8Array) and `meta`
   * ({media_type, name, taken_at, caption, location}). The bytes, the
   * record's new reference and the upload queue are committed in one
   * transaction. Resolves to the reference as written (sha256, size,
   * author, device filled in).
   */
  async attach(id, bytes, meta) {
    return JSON.parse(await this.change((r) => r.attach(id, bytes, JSON.stringify(meta))));
  }

  /** [{sha256, media_type, size, record}]: files waiting to be uploaded. */
  uploads() {
    return this.cached('uploads', () => JSON.parse(this.replica.uploads()));
  }

  /** The queued files the server takes now (their record reached it and names them). */
  uploadsReady() {
    return JSON.parse(this.replica.uploadsReady());
  }

  /**
   * Takes `sha256` off the upload queue (stored on the server, or refused
   * for good) and commits that with `extraMeta`; resolves when durable.
   */
  uploadDone(sha256, extraMeta) {
    this.replica.uploadDone(sha256);
    return this.commit(extraMeta);
  }

  /** This replica's actor id (hex), to tell this phone's writes in conflicts. */
  actor() {
    return this.replica.actor();
  }

  /** Turns on the local policy check for the principal (GET /v1/me JSON text). */
  setPrincipal(meJson) {
    this.replica.setPrincipal(meJson);
  }
}
