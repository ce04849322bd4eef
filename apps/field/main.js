// Starts the field app: the service worker (offline shell), the phone's
// database, the session, and, once signed in, the replica and the syncer.

import { render, html } from './vendor/preact-htm.js';
import { t, setLang, currentLang } from './i18n.js';
import { openDb, getSession, wipeDb } from './db.js';
import { Auth } from './auth.js';
import { Records, loadWasm } from './records.js';
import { Syncer } from './sync.js';
import { Uploader } from './uploads.js';
import { forgetImages } from './images.js';
import { App } from './ui/app.js';

/**
 * What the App renders from: `phase` is loading | failed | signin | main |
 * elsewhere (another tab holds the replica); `services` ({records,
 * syncer, uploader, auth}) exists in main.
 */
const app = {
  phase: 'loading',
  services: null,
  notice: null,
  lastUser: null,
  error: null,
  listeners: new Set(),
  subscribe(listener) {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  },
  set(patch) {
    Object.assign(this, patch);
    for (const listener of this.listeners) listener();
  },
  signIn,
  signOut,
  useHere: openServices,
};

let db = null;
let auth = null;

// One tab at a time holds the replica: two replicas writing the same
// records to IndexedDB would overwrite each other's edits. The newest tab
// takes it over; the tab it was taken from stops at once and offers to
// take it back.
const REPLICA_LOCK = 'gridsync-replica';
let releaseReplica = null;

/** Resolves once this tab holds the replica lock (taken from any other tab). */
function holdReplica() {
  if (!navigator.locks) return Promise.resolve();
  return new Promise((held) => {
    navigator.locks
      .request(REPLICA_LOCK, { steal: true }, () => {
        held();
        return new Promise((release) => {
          releaseReplica = release;
        });
      })
      .catch(() => {
        // Another tab took the lock.
        releaseReplica = null;
        closeServices();
        app.set({ phase: 'elsewhere', services: null });
      });
  });
}

async function openServices() {
  await holdReplica();
  // While this tab waited, another may have held the replica: refreshed the
  // tokens (the refresh token in memory is retired then, and presenting it
  // would revoke the device) or wiped everything. Read it all afresh.
  db.close();
  db = await openDb();
  auth = new Auth(db, await getSession(db));
  if (!auth.isUnlocked()) {
    closeServices();
    app.set({ phase: 'signin', services: null, lastUser: auth.session?.username ?? null });
    return;
  }
  const records = await Records.open(db);
  const me = auth.me();
  if (me) records.setPrincipal(me);
  const syncer = new Syncer(records, auth, {
    onRevoked: () => wipe(t('device_revoked')),
    onExpired: expired,
    // Files go up once the records naming them have reached the server.
    onSynced: () => uploader.run(),
  });
  const uploader = new Uploader(records, auth, { onAuthError: (error) => syncer.authFailed(error) });
  app.set({ phase: 'main', services: { records, syncer, uploader, auth }, notice: null });
  await uploader.start();
  syncer.start();
}

/** Stops syncing and writing, and lets another tab hold the replica. */
function closeServices() {
  app.services?.syncer.stop();
  app.services?.uploader.stop();
  forgetImages();
  app.services?.records.close();
  releaseReplica?.();
  releaseReplica = null;
}

/**
 * Erases everything of this phone's user: records, replica state, tokens
 * and the offline verifier (the device was revoked, or another user signs
 * in), and shows sign-in with `notice`.
 */
async function wipe(notice) {
  closeServices();
  auth.lock();
  await wipeDb(db);
  db = await openDb();
  auth = new Auth(db, null);
  app.set({ phase: 'signin', services: null, notice, lastUser: null });
}

async function expired() {
  closeServices();
  auth.lock();
  await auth.expire();
  app.set({ phase: 'signin', services: null, notice: t('session_expired'), lastUser: auth.session.username });
}

/** Keeps the data on the phone; the same user signs in again, offline too. */
function signOut() {
  closeServices();
  auth.lock();
  app.set({ phase: 'signin', services: null, notice: t('signed_out'), lastUser: auth.session.username });
}

async function signIn(username, password, confirmed) {
  if (auth.heldByOther(username)) {
    if (!confirmed) throw Object.assign(new Error('other user'), { code: 'other_user', user: auth.session.username });
    await wipe(null);
  }
  await auth.signIn(username, password);
  if (!auth.me()) {
    // The first sign-in on this phone is online: learn the role now, so that
    // the local policy check is on before the first edit.
    await auth.fetchMe().catch(() => {});
  }
  await openServices();
}

async function boot() {
  setLang(currentLang());
  if ('serviceWorker' in navigator) {
    navigator.serviceWorker.register('sw.js', { scope: './' }).catch((error) => {
      console.warn('service worker not registered:', error);
    });
  }
  // Failures show when the records open.
  loadWasm().catch(() => {});
  try {
    db = await openDb();
    auth = new Auth(db, await getSession(db));
    app.lastUser = auth.session?.username ?? null;
    if (auth.isUnlocked()) await openServices();
    else app.set({ phase: 'signin' });
  } catch (error) {
    console.error(error);
    app.set({ phase: 'failed', error: error.message });
  }
}

render(html`<${App} app=${app} />`, document.getElementById('root'));
boot();
