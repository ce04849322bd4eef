// Sends the files attached on this phone (photos) to the server. What to
// send is the replica's to say: `uploadsReady()` offers a queued file only
// once the record naming it has reached the server as this phone wrote it,
// since the server takes only files a record it holds names. The queue is
// in the replica's store (IndexedDB), so an upload cut by a reload or a
// closed app goes on at the next run.
//
// A run starts after each completed sync (main.js), so also when the phone
// comes online (which syncs). Each file: ask the server where it stands
// (`GET /v1/attachments/{sha256}/upload`), then `PUT` the rest in chunks of
// CHUNK_BYTES with `Content-Range`, taking up from the server's
// `Upload-Offset` whenever it says it stands elsewhere (a chunk lost with
// a dropped connection). A busy server (429, 503) is left alone until its
// Retry-After; a file it does not take yet, for a while. Never two runs
// at once.

import { ApiError, apiError } from './auth.js';
import { getFile, getMeta } from './db.js';

export const CHUNK_BYTES = 256 * 1024;
/** After an unreachable server or an answer that says nothing, try again after this long. */
const RETRY_MS = 60000;
/** Chunks refused in a row for their offset before a file waits for the next run. */
const MAX_OFFSET_RETRIES = 5;
/** Answers that refuse a file for good: it is dropped from the queue and the user told. */
const REFUSED_FOR_GOOD = new Set([413, 415, 422]);
/**
 * A file the server did not take yet (no record it holds names it) is
 * tried again after this long, not at every sync: each try sends a chunk.
 */
const WAITING_RETRY_MS = 10 * 60000;

export class Uploader {
  /**
   * `onAuthError(error)`: an ApiError of a revoked device or a dead
   * session (the syncer's handler); `readFile(sha256)`: a file's bytes
   * (IndexedDB's `files` by default).
   */
  constructor(records, auth, { onAuthError, readFile } = {}) {
    this.records = records;
    this.auth = auth;
    this.onAuthError = onAuthError;
    this.readFile = readFile ?? ((sha256) => getFile(records.db, sha256));
    this.state = {
      // The file being sent now, and how much of it the server holds (0 to 1).
      active: null,
      progress: 0,
      // Files refused for good: {sha256: {code, message}} (kept in IndexedDB).
      failed: {},
      // Files the server does not take yet (no record it holds names them): {sha256: true}.
      waiting: {},
    };
    this.listeners = new Set();
    this.running = null;
    this.queued = false;
    this.stopped = false;
    this.timer = null;
    // No upload before this time (ms): the server said when to come back.
    this.pausedUntil = 0;
    // When each waiting file was last tried: {sha256: ms}.
    this.triedAt = {};
  }

  subscribe(listener) {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  setState(patch) {
    this.state = { ...this.state, ...patch };
    for (const listener of this.listeners) listener();
  }

  /** Reads what was refused before; the first sync starts the first run. */
  async start() {
    this.setState({ failed: (await getMeta(this.records.db, 'upload_failed')) ?? {} });
  }

  stop() {
    this.stopped = true;
    clearTimeout(this.timer);
  }

  /** Tries again in `ms`, unless a run starts before. */
  later(ms) {
    clearTimeout(this.timer);
    if (!this.stopped) this.timer = setTimeout(() => this.run(), ms);
  }

  /** Sends what is ready now, or after the run going on. Resolves when the run covering this call ends. */
  run() {
    if (this.stopped) return Promise.resolve();
    if (this.running) {
      this.queued = true;
      return this.running;
    }
    clearTimeout(this.timer);
    this.running = (async () => {
      try {
        do {
          this.queued = false;
          await this.once();
        } while (this.queued && !this.stopped);
      } finally {
        this.running = null;
        if (this.state.active) this.setState({ active: null, progress: 0 });
      }
    })();
    return this.running;
  }

  async once() {
    const now = Date.now();
    if (!navigator.onLine || now < this.pausedUntil) return;
    const waiting = {};
    try {
      for (const upload of this.records.uploadsReady()) {
        if (this.stopped) return;
        const sha = upload.sha256;
        if (this.state.waiting[sha] && now - this.triedAt[sha] < WAITING_RETRY_MS) {
          waiting[sha] = true;
          continue;
        }
        this.triedAt[sha] = now;
        const outcome = await this.send(upload);
        if (outcome === 'waiting') waiting[sha] = true;
      }
      this.setState({ waiting });
    } catch (error) {
      if (error instanceof ApiError && this.onAuthError?.(error)) return;
      // Busy (429, 503): not before the server says; otherwise a while later.
      if (error instanceof ApiError && error.retryAfter) {
        this.pausedUntil = Date.now() + error.retryAfter * 1000;
        this.later(error.retryAfter * 1000);
      } else {
        this.later(RETRY_MS);
      }
    }
  }

  /**
   * Sends one file. Returns 'done' (the server holds it), 'refused' (for
   * good; the user is told), 'waiting' (the server does not take it yet)
   * or 'later' (an answer that did not say; the next run tries again).
   * Throws when the run should stop: no network, the server busy, the
   * session gone.
   */
  async send(upload) {
    const { sha256, size } = upload;
    const bytes = await this.readFile(sha256);
    if (!bytes) {
      // Never the case when the record and the bytes were committed together.
      return this.refuse(sha256, { code: 'missing', message: 'the file is not on this phone' });
    }
    const path = `/v1/attachments/${sha256}`;
    let received = await this.position(path);
    if (received === true) return this.done(sha256);
    if (typeof received === 'string') return received;
    let offsetRetries = 0;
    for (;;) {
      if (this.stopped) throw new Error('stopped');
      if (received >= size) received = 0;
      const end = Math.min(size, received + CHUNK_BYTES);
      const headers = { 'Content-Type': upload.media_type };
      // A file that fits in one chunk goes whole.
      if (received > 0 || end < size) headers['Content-Range'] = `bytes ${received}-${end - 1}/${size}`;
      this.setState({ active: sha256, progress: received / size });
      const response = await this.auth.request(path, { method: 'PUT', headers, body: bytes.subarray(received, end) });
      if (response.status === 200 || response.status === 201) return this.done(sha256);
      if (response.status === 202) {
        received = offsetOf(response) ?? end;
        offsetRetries = 0;
        continue;
      }
      const error = await apiError(response);
      if (response.status === 409 && error.code === 'upload_offset') {
        // The server stands elsewhere (a chunk was lost, or arrived twice).
        if (++offsetRetries > MAX_OFFSET_RETRIES) return 'later';
        received = offsetOf(response) ?? (await this.position(path));
        if (received === true) return this.done(sha256);
        if (typeof received === 'string') return received;
        continue;
      }
      if (response.status === 409 && error.code === 'not_referenced') return 'waiting';
      if (REFUSED_FOR_GOOD.has(response.status)) return this.refuse(sha256, error);
      if (response.status === 429 || response.status >= 500) throw error;
      return 'later';
    }
  }

  /**
   * Where the server stands with a file: the bytes it holds, `true` when it
   * holds it all, or 'waiting' / 'later' as `send` returns them.
   */
  async position(path) {
    const response = await this.auth.request(`${path}/upload`);
    if (response.status === 404) return 0;
    if (!response.ok) {
      const error = await apiError(response);
      if (response.status === 409 && error.code === 'not_referenced') return 'waiting';
      if (response.status === 429 || response.status >= 500) throw error;
      return 'later';
    }
    const answer = await response.json();
    return answer.complete ? true : Number(answer.received) || 0;
  }

  async done(sha256) {
    this.setState({ active: sha256, progress: 1 });
    await this.records.uploadDone(sha256);
    return 'done';
  }

  /** Drops a file the server will never take from the queue, and keeps why for the user. */
  async refuse(sha256, { code, message }) {
    const failed = { ...this.state.failed, [sha256]: { code: code ?? 'refused', message: message ?? '' } };
    await this.records.uploadDone(sha256, { upload_failed: failed });
    this.setState({ failed });
    return 'refused';
  }

  /**
   * Where a file attached on this phone stands: {kind: 'failed', message} |
   * {kind: 'uploading', percent} | {kind: 'queued'} | {kind: 'done'}.
   */
  stateOf(sha256) {
    const failed = this.state.failed[sha256];
    if (failed) return { kind: 'failed', message: failed.message || failed.code };
    if (this.state.active === sha256) return { kind: 'uploading', percent: Math.floor(this.state.progress * 100) };
    if (this.records.uploads().some((u) => u.sha256 === sha256)) return { kind: 'queued' };
    return { kind: 'done' };
  }
}

/** The `Upload-Offset` header of an answer, as a number, if it has one. */
function offsetOf(response) {
  const value = response.headers.get('Upload-Offset');
  return value === null || value === '' || Number.isNaN(Number(value)) ? null : Number(value);
}
