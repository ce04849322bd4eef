// The phone's storage: one IndexedDB database.
//
//   docs  keyed by record id: {id, bytes, acked}, the replica's documents
//   meta  out-of-line keys: actor, cursor, rejected (the replica's state),
//         last_sync (ms of the last completed sync)
//   auth  out-of-line key "session": who is signed in, their tokens and
//         the offline password verifier (see auth.js)
//
// Every batch of writes the replica hands over is committed in one
// readwrite transaction, so a tab killed mid-write keeps either all of a
// batch or none of it.

const DB_NAME = 'gridsync';
const DB_VERSION = 1;

/** Opens (and on first use creates) the database. */
export function openDb() {
  return new Promise((resolve, reject) => {
    const request = indexedDB.open(DB_NAME, DB_VERSION);
    request.onupgradeneeded = () => {
      const db = request.result;
      if (!db.objectStoreNames.contains('docs')) db.createObjectStore('docs', { keyPath: 'id' });
      if (!db.objectStoreNames.contains('meta')) db.createObjectStore('meta');
      if (!db.objectStoreNames.contains('auth')) db.createObjectStore('auth');
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

/** What `Replica.open` takes: {actor?, cursor?, rejected?, docs: [{id, bytes, acked}]}. */
export async function loadReplicaState(db) {
  const tx = db.transaction(['docs', 'meta'], 'readonly');
  const meta = tx.objectStore('meta');
  const [docs, actor, cursor, rejected] = await Promise.all([
    result(tx.objectStore('docs').getAll()),
    result(meta.get('actor')),
    result(meta.get('cursor')),
    result(meta.get('rejected')),
  ]);
  const stored = { docs };
  if (actor) stored.actor = actor;
  if (cursor) stored.cursor = cursor;
  if (rejected) stored.rejected = rejected;
  return stored;
}

/**
 * Commits the replica's writes (`takeWrites()`), in order, plus `extraMeta`
 * ({key: value} for the meta store), in ONE transaction. The transaction is
 * created before this returns, so batches commit in the order they were
 * taken. Resolves on the transaction's `complete`.
 */
export function commitWrites(db, writes, extraMeta = {}) {
  const tx = db.transaction(['docs', 'meta'], 'readwrite');
  const docs = tx.objectStore('docs');
  const meta = tx.objectStore('meta');
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
        meta.put(w.bytes, w.op);
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
