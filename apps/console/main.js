// Starts the console: restores this tab's session (or shows sign-in),
// learns who the user is (GET /v1/me) and, for admins, the users and org
// units of their area, then renders the shell.

import { render, html } from './vendor/preact-htm.js';
import { t, setLang, currentLang } from './i18n.js';
import { Session } from './api.js';
import { directory } from './ui/common.js';
import { App } from './ui/app.js';

const app = {
  phase: 'loading',
  session: null,
  me: null,
  notice: null,
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
};

/** The session ended by itself (expired, revoked): back to sign-in. */
function lost(reason) {
  directory.clear();
  app.set({ phase: 'signin', session: null, me: null, notice: t(reason) });
}

/** Loads who the user is, and for admins the names of their users and units. */
async function open(session) {
  const me = await session.get('/v1/me');
  directory.clear();
  directory.me = me;
  directory.rememberUser(me.user_id, { username: session.data.username, display_name: me.display_name, role: me.role });
  for (const unit of me.units ?? []) {
    directory.rememberUnit(unit.id, { name: unit.name, kind: unit.kind, parent: unit.parent_id });
  }
  if (me.role === 'admin') {
    const [users, units, devices] = await Promise.all([
      session.get('/v1/admin/users'),
      session.get('/v1/admin/org-units'),
      session.get('/v1/devices'),
    ]);
    for (const user of users) directory.rememberUser(user.id, user);
    for (const device of devices) directory.devices.set(device.id, device);
    for (const unit of units) directory.rememberUnit(unit.id, { name: unit.name, kind: unit.kind, parent: unit.parent_id });
  }
  app.set({ phase: 'main', session, me, notice: null });
  if (AREA_ROLES.includes(me.role)) learnUnitNames(session, me);
}

const AREA_ROLES = ['grid_worker', 'community_staff', 'centre_staff', 'supervisor'];

/**
 * Only admins may list org units; other roles learn the names of the
 * units below theirs from the all-time figures per unit (kept as counts,
 * cheap to read), in the background.
 */
async function learnUnitNames(session, me) {
  const asks = [];
  for (const root of me.org_units ?? []) {
    for (const by of ['township', 'community', 'grid']) {
      asks.push(session.get('/v1/stats/cases/by-unit', { org_unit: root, by }).then((rows) => directory.rememberUnits(rows)));
    }
  }
  await Promise.allSettled(asks);
  if (app.session === session) app.set({});
}

async function signIn(username, password) {
  const session = await Session.signIn(username, password, lost);
  await open(session);
}

async function signOut() {
  const session = app.session;
  directory.clear();
  app.set({ phase: 'signin', session: null, me: null, notice: t('signed_out') });
  await session?.signOut();
}

async function boot() {
  setLang(currentLang());
  const session = Session.restore(lost);
  if (!session) {
    app.set({ phase: 'signin' });
    return;
  }
  try {
    await open(session);
  } catch (error) {
    if (app.phase === 'signin') return; // The session was lost meanwhile.
    console.error(error);
    app.set({ phase: 'failed', error: error.message });
  }
}

render(html`<${App} app=${app} />`, document.getElementById('root'));
boot();
