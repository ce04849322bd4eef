/* tslint:disable */
/* eslint-disable */
export const memory: WebAssembly.Memory;
export const __wbg_replica_free: (a: number, b: number) => void;
export const replica_actions: (a: number, b: number, c: number) => [number, number, number, number];
export const replica_actor: (a: number) => [number, number];
export const replica_applyResponse: (a: number, b: number, c: number) => [number, number, number, number];
export const replica_beginSync: (a: number) => void;
export const replica_create: (a: number, b: number, c: number, d: number, e: number) => [number, number, number, number];
export const replica_ids: (a: number) => [number, number];
export const replica_open: (a: any) => [number, number, number];
export const replica_pending: (a: number) => [number, number];
export const replica_recordEvent: (a: number, b: number, c: number, d: number, e: number, f: number, g: number) => [number, number, number, number];
export const replica_rejected: (a: number) => [number, number];
export const replica_setPrincipal: (a: number, b: number, c: number) => [number, number];
export const replica_syncRequest: (a: number) => [number, number];
export const replica_takeWrites: (a: number) => any;
export const replica_update: (a: number, b: number, c: number, d: number, e: number) => [number, number, number];
export const replica_view: (a: number, b: number, c: number) => [number, number, number, number];
export const replica_views: (a: number, b: number, c: number) => [number, number, number, number];
export const __wbindgen_malloc: (a: number, b: number) => number;
export const __wbindgen_realloc: (a: number, b: number, c: number, d: number) => number;
export const __wbindgen_free: (a: number, b: number, c: number) => void;
export const __wbindgen_exn_store: (a: number) => void;
export const __externref_table_alloc: () => number;
export const __wbindgen_externrefs: WebAssembly.Table;
export const __externref_table_dealloc: (a: number) => void;
export const __externref_drop_slice: (a: number, b: number) => void;
export const __wbindgen_start: () => void;
