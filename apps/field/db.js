// The phone's storage: one IndexedDB database.
//
//   docs  keyed by record id: {id, bytes, acked}, the replica's documents
//   meta  out-of-line keys: actor, cursor, rejected, uploads (the
//         replica's state), last_sync (ms of the last completed sync),
//         upload_failed ({sha256: {code, message}}: files the server
//         refused for good, to tell the user)
//   auth  out-of-line key "session": who is signed in, their tokens and
//         the offline password verifier (see auth.js)
//   files out-of-line key sha256: the bytes (Uint8Array) of files attached
//         on this phone, kept with the record that names them, to upload
//         and to show offline
//   thumbs out-of-line key sha256: thumbnails fetched from the server
//         (Blob), so that other phones' photos show offline once seen
//
// Every batch of writes the replica hands over is committed in one
// readwrite transaction, so a tab killed mid-write keeps either all of a
// batch or none of it: a photo's bytes and the record naming it included.

const DB_NAME = 'gridsync';
const DB_VERSION = 2;
const STORES = ['docs', 'meta', 'auth', 'files', 'thumbs'];

/** Opens (and on first use creates) the database. */
export function openDb() {
  return new Promise((resolve, reject) => {
    const request = indexedDB.open(DB_NAME, DB_VERSION);
    request.onupgradeneeded = () => {
      const db = request.result;
      for (const name of STORES) {
        if (!db.objectStoreNames.contains(name)) {
          db.createObjectStore(name, name === 'docs' ? { keyPath: 'id' } : undefined);
        }
      }
    };
    request.onsuccess = () => {
      const db = request.result;
      // Another tab deleting the database (a wipe) must not wait on us.
      db.onversionchange = () => db.close();
      resolve(db);
    };
    request.onerror = () => reject(request.error);
    request.onblocked = () => reject(new Error('the database is held by another tab'));
  });
}

/** Resolves when `tx` commits, rejects when it fails or aborts. */
function done(tx) {
  return new Promise((resolve, reject) => {
    tx.oncomplete = () => resolve();
    tx.onerror = () => reject(tx.error);
    tx.onabort = () => reject(tx.error ?? new Error('transaction aborted'));
  });
}

function result(request) {
  return new Promise((resolve, reject) => {
    request.onsuccess = () => resolve(request.result);
    request.onerror = () => reject(request.error);
  });
}

/** What `Replica.open` takes: {actor?, cursor?, rejected?, uploads?, docs: [{id, bytes, acked}]}. */
export async function loadReplicaState(db) {
  const tx = db.transaction(['docs', 'meta'], 'readonly');
  const meta = tx.objectStore('meta');
  const [docs, actor, cursor, rejected, uploads] = await Promise.all([
    result(tx.objectStore('docs').getAll()),
    result(meta.get('actor')),
    result(meta.get('cursor')),
    result(meta.get('rejected')),
    result(meta.get('uploads')),
  ]);
  const stored = { docs };
  if (actor) stored.actor = actor;
  if (cursor) stored.cursor = cursor;
  if (rejected) stored.rejected = rejected;
  if (uploads) stored.uploads = uploads;
  return stored;
}

/**
 * Commits the replica's writes (`takeWrites()`), in order, plus `extraMeta`
 * ({key: value} for the meta store), in ONE transaction. The transaction is
 * created before this returns, so batches commit in the order they were
 * taken. Resolves on the transaction's `complete`.
 */
export function commitWrites(db, writes, extraMeta = {}) {
  const tx = db.transaction(['docs', 'meta', 'files'], 'readwrite');
  const docs = tx.objectStore('docs');
  const meta = tx.objectStore('meta');
  const files = tx.objectStore('files');
  for (const w of writes) {
    switch (w.op) {
      case 'doc':
        docs.put({ id: w.id, bytes: w.bytes, acked: w.acked });
        break;
      case 'remove':
        docs.delete(w.id);
        break;
      case 'actor':
      case 'cursor':
      case 'rejected':
      case 'uploads':
        meta.put(w.bytes, w.op);
        break;
      case 'file':
        files.put(w.bytes, w.sha256);
        break;
      default:
        tx.abort();
        throw new Error(`unknown write ${w.op}`);
    }
  }
  for (const [key, value] of Object.entries(extraMeta)) meta.put(value, key);
  return done(tx);
}

export async function getMeta(db, key) {
  return result(db.transaction('meta', 'readonly').objectStore('meta').get(key));
}

/** The bytes (Uint8Array) of a file attached on this phone, or undefined. */
export function getFile(db, sha256) {
  return result(db.transaction('files', 'readonly').objectStore('files').get(sha256));
}

/** A thumbnail fetched earlier (Blob), or undefined. */
export function getThumb(db, sha256) {
  return result(db.transaction('thumbs', 'readonly').objectStore('thumbs').get(sha256));
}

/** Keeps a fetched thumbnail for showing offline; resolves once stored. */
export function putThumb(db, sha256, blob) {
  const tx = db.transaction('thumbs', 'readwrite');
  tx.objectStore('thumbs').put(blob, sha256);
  return done(tx);
}

export async function getSession(db) {
  return (await result(db.transaction('auth', 'readonly').objectStore('auth').get('session'))) ?? null;
}

/** Stores the session (tokens included); resolves once it is durable. */
export function putSession(db, session) {
  const tx = db.transaction('auth', 'readwrite');
  tx.objectStore('auth').put(session, 'session');
  return done(tx);
}

/**
 * Deletes the whole database: records, replica state, tokens and the
 * offline verifier. `db` (if open) is closed first so the delete is not
 * blocked by this tab.
 */
export function wipeDb(db) {
  if (db) db.close();
  return new Promise((resolve, reject) => {
    const request = indexedDB.deleteDatabase(DB_NAME);
    request.onsuccess = () => resolve();
    request.onerror = () => reject(request.error);
    // Blocked: another tab holds it open; it closes on `versionchange`,
    // after which the delete goes through and `success` fires.
  });
}
