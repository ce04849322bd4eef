// When to sync, and the HTTP around the replica's rounds. What a round
// sends and how its answer is applied is the replica's (Rust, wasm).
//
// A sync runs on start, when the phone comes online or to the foreground,
// on the change stream's `ready` and `changed` events, every 60 s, shortly
// after each local edit, and by hand; never two at once: a sync asked for
// while one runs is queued (once) and runs after it.

import { ApiError, apiError } from './auth.js';
import { getMeta } from './db.js';

const SYNC_TYPE = 'application/vnd.gridsync.sync+cbor';
const TIMER_MS = 60000;
const EDIT_DEBOUNCE_MS = 1500;
const STREAM_BACKOFF_MIN_MS = 1000;
const STREAM_BACKOFF_MAX_MS = 60000;

/**
 * Reads a Server-Sent Events body and calls `onEvent(name)` for each event.
 * Only the names matter here (`ready`, `changed`); data and comments are
 * skipped.
 */
async function readEvents(body, onEvent) {
  const reader = body.pipeThrough(new TextDecoderStream()).getReader();
  let buffer = '';
  let name = null;
  for (;;) {
    const { value, done } = await reader.read();
    if (done) return;
    buffer += value;
    let end;
    while ((end = buffer.indexOf('\n')) >= 0) {
      const line = buffer.slice(0, end).replace(/\r$/, '');
      buffer = buffer.slice(end + 1);
      if (line === '') {
        if (name) onEvent(name);
        name = null;
      } else if (line.startsWith('event:')) {
        name = line.slice(6).trim();
      } else if (line.startsWith('data:') && !name) {
        name = 'message';
      }
    }
  }
}

export class Syncer {
  /**
   * `onRevoked()`: the device was revoked (wipe); `onExpired()`: the
   * refresh token no longer works (sign in again online); `onSynced()`:
   * a sync completed (files attached on the phone may go up now).
   */
  constructor(records, auth, { onRevoked, onExpired, onSynced }) {
    this.records = records;
    this.auth = auth;
    this.onRevoked = onRevoked;
    this.onExpired = onExpired;
    this.onSynced = onSynced;
    this.state = {
      online: navigator.onLine,
      // A sync is running (or queued behind the one running).
      syncing: false,
      lastSync: null,
      // Why the last sync did not complete:
      // {kind: 'offline'|'unreachable'|'busy'|'failed', message?, seconds?}
      problem: null,
      // Per-record errors of the last sync other than refusals: {id: {code, message}}
      docErrors: {},
    };
    this.listeners = new Set();
    this.running = null;
    this.queued = false;
    this.stopped = false;
    // GET /v1/me is fetched again on the first sync and after one that
    // dropped records or was refused (the role or area may have changed).
    this.meStale = true;
    this.timers = new Set();
    this.streamAbort = null;
    this.wake = null;
    this.onOnline = () => {
      this.setState({ online: true });
      this.wake?.();
      this.sync();
    };
    this.onOffline = () => {
      this.setState({ online: false, problem: { kind: 'offline' } });
      this.streamAbort?.abort();
    };
    this.onVisible = () => {
      if (document.visibilityState === 'visible') this.sync();
    };
  }

  subscribe(listener) {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  setState(patch) {
    this.state = { ...this.state, ...patch };
    for (const listener of this.listeners) listener();
  }

  /** Starts the automatic syncs and the change stream. */
  async start() {
    this.setState({ lastSync: (await getMeta(this.records.db, 'last_sync')) ?? null });
    window.addEventListener('online', this.onOnline);
    window.addEventListener('offline', this.onOffline);
    document.addEventListener('visibilitychange', this.onVisible);
    this.interval = setInterval(() => this.sync(), TIMER_MS);
    this.sync();
    this.stream();
  }

  /** Stops everything (sign-out, wipe); a running round is left to end. */
  stop() {
    this.stopped = true;
    window.removeEventListener('online', this.onOnline);
    window.removeEventListener('offline', this.onOffline);
    document.removeEventListener('visibilitychange', this.onVisible);
    clearInterval(this.interval);
    for (const timer of this.timers) clearTimeout(timer);
    this.streamAbort?.abort();
    this.wake?.();
  }

  later(ms, fn) {
    const timer = setTimeout(() => {
      this.timers.delete(timer);
      fn();
    }, ms);
    this.timers.add(timer);
    return timer;
  }

  /** Syncs a moment after a local edit, so that a burst of edits goes in one sync. */
  soon() {
    clearTimeout(this.debounce);
    this.timers.delete(this.debounce);
    this.debounce = this.later(EDIT_DEBOUNCE_MS, () => this.sync());
  }

  /**
   * Syncs now, or after the sync that is running. Resolves when the sync
   * that covers this call has ended (completed or not: see `state`).
   */
  sync() {
    if (this.stopped) return Promise.resolve();
    if (this.running) {
      this.queued = true;
      return this.running;
    }
    this.setState({ syncing: true });
    this.running = (async () => {
      try {
        do {
          this.queued = false;
          await this.once();
        } while (this.queued && !this.stopped);
      } finally {
        this.running = null;
        this.setState({ syncing: false });
      }
    })();
    return this.running;
  }

  async once() {
    if (!navigator.onLine) {
      this.setState({ online: false, problem: { kind: 'offline' } });
      return;
    }
    const replica = this.records.replica;
    try {
      if (this.meStale) {
        this.records.setPrincipal(await this.auth.fetchMe());
        this.meStale = false;
      }
      const docErrors = {};
      replica.beginSync();
      let report;
      do {
        const response = await this.auth.request('/v1/sync', {
          method: 'POST',
          headers: { 'Content-Type': SYNC_TYPE, Accept: SYNC_TYPE },
          body: replica.syncRequest(),
        });
        if (!response.ok) throw await apiError(response);
        report = JSON.parse(replica.applyResponse(new Uint8Array(await response.arrayBuffer())));
        await this.records.commit(report.again ? undefined : { last_sync: Date.now() });
        for (const error of report.errors) {
          if (error.code === 'forbidden') this.meStale = true;
          else docErrors[error.id] = error;
        }
        if (report.dropped.length) this.meStale = true;
      } while (report.again && !this.stopped);
      this.setState({ online: true, lastSync: Date.now(), problem: null, docErrors });
      if (!this.stopped) this.onSynced?.();
    } catch (error) {
      this.setState(this.failure(error));
    }
  }

  /** The state after a failed sync; acts on revocation, expiry and Retry-After. */
  failure(error) {
    if (error instanceof TypeError) {
      // fetch() found no network, or no server.
      return navigator.onLine ? { problem: { kind: 'unreachable' } } : { online: false, problem: { kind: 'offline' } };
    }
    if (this.authFailed(error)) return { problem: null };
    if (error instanceof ApiError && error.retryAfter) {
      this.later(error.retryAfter * 1000, () => this.sync());
      return { problem: { kind: 'busy', seconds: error.retryAfter } };
    }
    return { problem: { kind: 'failed', message: error.message } };
  }

  /** Calls the revocation or expiry handler when `error` is one; returns whether it was. */
  authFailed(error) {
    if (!(error instanceof ApiError) || this.stopped) return false;
    if (error.code === 'device_revoked') {
      this.stop();
      this.onRevoked();
      return true;
    }
    if (error.fromRefresh && error.code === 'unauthorized') {
      this.stop();
      this.onExpired();
      return true;
    }
    return false;
  }

  /** Resolves after `ms`, or earlier when woken (online again, stopped). */
  pause(ms) {
    return new Promise((resolve) => {
      const timer = this.later(ms, resolve);
      this.wake = () => {
        clearTimeout(timer);
        this.timers.delete(timer);
        resolve();
      };
    });
  }

  /** Keeps GET /v1/events open while online, syncing on `ready` and `changed`. */
  async stream() {
    let backoff = STREAM_BACKOFF_MIN_MS;
    while (!this.stopped) {
      if (!navigator.onLine) {
        await this.pause(STREAM_BACKOFF_MAX_MS);
        continue;
      }
      this.streamAbort = new AbortController();
      try {
        const response = await this.auth.request('/v1/events', {
          headers: { Accept: 'text/event-stream' },
          signal: this.streamAbort.signal,
        });
        if (!response.ok) throw await apiError(response);
        await readEvents(response.body, (name) => {
          backoff = STREAM_BACKOFF_MIN_MS;
          if (name === 'ready' || name === 'changed') this.sync();
        });
      } catch (error) {
        if (this.authFailed(error)) return;
      }
      if (this.stopped) return;
      await this.pause(backoff);
      backoff = Math.min(backoff * 2, STREAM_BACKOFF_MAX_MS);
    }
  }
}
