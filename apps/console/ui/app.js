// The console's shell: sign-in, or the signed-in screens with the left
// sidebar (only the sections the role may use), the top bar and routing by
// the location hash (#/overview?unit=…, #/case/<id>, …).

import { t, label, setLang, currentLang } from '../i18n.js';
import { html, useState, useEffect, useRef, AppContext, directory, userName } from './common.js';
import { SignIn } from './signin.js';
import { Overview } from './overview.js';
import { Desk, CasePage } from './desk.js';
import { Households, HouseholdPage } from './households.js';
import { Ledgers } from './ledgers.js';
import { Import } from './import.js';
import { OrgUnits, Users, Devices, Quarantine, Audit } from './admin.js';

const TOAST_MS = 4000;

/** Roles that work over an area of org units (not mediators and departments). */
const AREA_ROLES = ['grid_worker', 'community_staff', 'centre_staff', 'supervisor', 'admin'];

/**
 * Which section each role sees in the sidebar. The server decides what
 * each request may do; this only hides what a role has no use for.
 */
const SECTIONS = {
  overview: AREA_ROLES,
  desk: ['grid_worker', 'mediator', 'community_staff', 'centre_staff', 'department', 'supervisor', 'admin'],
  households: AREA_ROLES,
  ledgers: AREA_ROLES,
  import: ['admin'],
  admin: ['admin'],
};

/**
 * The case events each role may record (api-spec/permissions.md), to hide
 * the buttons of the others. The server checks every event again.
 */
const ROLE_EVENTS = {
  grid_worker: ['mediate', 'resolve', 'follow_up', 'comment'],
  mediator: ['return', 'mediate', 'resolve', 'comment'],
  department: ['return', 'mediate', 'resolve', 'comment'],
  community_staff: [
    'accept',
    'classify',
    'assign',
    'escalate',
    'return',
    'mediate',
    'resolve',
    'reopen',
    'follow_up',
    'close',
    'comment',
    'supervise',
  ],
  supervisor: [],
};
ROLE_EVENTS.centre_staff = ROLE_EVENTS.community_staff;
ROLE_EVENTS.admin = ROLE_EVENTS.community_staff;

/** {path: ['case', 'cs_…'], params: URLSearchParams} of a location hash. */
export function parseHash(hash) {
  const text = hash.replace(/^#\/?/, '');
  const [pathText, query = ''] = text.split('?');
  const path = pathText.split('/').filter(Boolean).map(decodeURIComponent);
  return { path, params: new URLSearchParams(query) };
}

/** A location hash for `path` and query `params` (empty values left out). */
export function makeHash(path, params = {}) {
  const query = new URLSearchParams();
  for (const [key, value] of Object.entries(params)) {
    if (value !== undefined && value !== null && value !== '' && value !== false) query.set(key, String(value));
  }
  const text = query.toString();
  return `#/${path}${text ? `?${text}` : ''}`;
}

function useHash() {
  const [hash, setHash] = useState(location.hash);
  useEffect(() => {
    const onChange = () => setHash(location.hash);
    window.addEventListener('hashchange', onChange);
    // The hash may have changed between the first render and now.
    onChange();
    return () => window.removeEventListener('hashchange', onChange);
  }, []);
  return hash;
}

function sectionOf(path) {
  const head = path[0];
  if (head === 'case') return 'desk';
  if (head === 'household') return 'households';
  return head;
}

/** The screen for a route: [component, props]. */
function screenFor(route, role) {
  const { path } = route;
  switch (path[0]) {
    case 'overview':
      return [Overview, {}];
    case 'desk':
      return [Desk, {}];
    case 'case':
      return [CasePage, { id: path[1] }];
    case 'households':
      return [Households, {}];
    case 'household':
      return [HouseholdPage, { id: path[1] }];
    case 'ledgers':
      return [Ledgers, {}];
    case 'import':
      return [Import, {}];
    case 'admin':
      switch (path[1]) {
        case 'users':
          return [Users, {}];
        case 'devices':
          return [Devices, {}];
        case 'quarantine':
          return [Quarantine, {}];
        case 'audit':
          return [Audit, {}];
        default:
          return [OrgUnits, {}];
      }
    default:
      return SECTIONS.overview.includes(role) ? [Overview, {}] : [Desk, {}];
  }
}

function LangSwitch({ onSwitch }) {
  return html`<button
    class="lang"
    type="button"
    aria-label=${t('lang_switch_label')}
    data-testid="lang-switch"
    onClick=${() => {
      setLang(currentLang() === 'zh' ? 'en' : 'zh');
      onSwitch();
    }}
  >
    ${t('lang_switch')}
  </button>`;
}

function Sidebar({ role, section, adminPage }) {
  const may = (key) => SECTIONS[key].includes(role);
  const item = (key, hash, text, active) =>
    html`<a href=${hash} class=${active ? 'active' : ''} aria-current=${active ? 'page' : undefined} data-nav=${key}
      >${text}</a
    >`;
  return html`<nav class="sidebar" aria-label=${t('app_short')}>
    <div class="brand">${t('app_name')}</div>
    ${may('overview') && item('overview', '#/overview', t('nav_overview'), section === 'overview')}
    ${may('desk') &&
    item('desk', '#/desk', role === 'supervisor' ? t('nav_cases') : t('nav_desk'), section === 'desk')}
    ${may('households') && item('households', '#/households', t('nav_households'), section === 'households')}
    ${may('ledgers') && item('ledgers', '#/ledgers', t('nav_ledgers'), section === 'ledgers')}
    ${may('import') && item('import', '#/import', t('nav_import'), section === 'import')}
    ${may('admin') &&
    html`<div class="nav-group">${t('nav_admin')}</div>
      ${item('units', '#/admin/units', t('nav_units'), section === 'admin' && (!adminPage || adminPage === 'units'))}
      ${item('users', '#/admin/users', t('nav_users'), section === 'admin' && adminPage === 'users')}
      ${item('devices', '#/admin/devices', t('nav_devices'), section === 'admin' && adminPage === 'devices')}
      ${item('quarantine', '#/admin/quarantine', t('nav_quarantine'), section === 'admin' && adminPage === 'quarantine')}
      ${item('audit', '#/admin/audit', t('nav_audit'), section === 'admin' && adminPage === 'audit')}`}
  </nav>`;
}

/**
 * `app` (main.js): {phase: loading | signin | main | failed, session, me,
 * notice, error, signIn(), signOut(), subscribe()}.
 */
export function App({ app }) {
  const [, setTick] = useState(0);
  const rerender = () => setTick((n) => n + 1);
  useEffect(() => {
    const off = app.subscribe(rerender);
    rerender(); // What changed before this subscribed.
    return off;
  }, []);
  const hash = useHash();
  const [toast, setToast] = useState(null);
  const toastTimer = useRef(null);

  const showToast = (text, kind = 'ok') => {
    clearTimeout(toastTimer.current);
    setToast({ text, kind });
    toastTimer.current = setTimeout(() => setToast(null), TOAST_MS);
  };

  if (app.phase === 'loading') {
    return html`<main class="splash"><p>${t('loading')}</p></main>`;
  }
  if (app.phase === 'failed') {
    return html`<main class="splash">
      <p class="error-text" role="alert">${t('error_prefix', { message: app.error })}</p>
      <button type="button" onClick=${() => location.reload()}>${t('retry')}</button>
    </main>`;
  }
  if (app.phase === 'signin') {
    return html`<div class="signin-page">
      <header class="topbar"><span class="brand">${t('app_name')}</span><${LangSwitch} onSwitch=${rerender} /></header>
      <${SignIn} signIn=${app.signIn} notice=${app.notice} />
    </div>`;
  }

  const { me, session } = app;
  const role = me.role;
  const route = parseHash(hash);
  let section = sectionOf(route.path);
  if (!SECTIONS[section]?.includes(role)) section = SECTIONS.overview.includes(role) ? 'overview' : 'desk';
  const [Screen, props] = SECTIONS[sectionOf(route.path)]?.includes(role)
    ? screenFor(route, role)
    : screenFor({ path: [section], params: route.params }, role);
  const context = {
    session,
    me,
    role,
    route,
    directory,
    navigate: (to) => {
      location.hash = to;
    },
    setParams: (params) => {
      location.hash = makeHash(route.path.join('/'), params);
    },
    toast: showToast,
    may: (key) => SECTIONS[key]?.includes(role) ?? false,
    canRecord: (kind) => (ROLE_EVENTS[role] ?? []).includes(kind),
    eventKinds: ROLE_EVENTS[role] ?? [],
    areaRole: AREA_ROLES.includes(role),
  };
  return html`<${AppContext.Provider} value=${context}>
    <div class="shell">
      <${Sidebar} role=${role} section=${section} adminPage=${route.path[0] === 'admin' ? route.path[1] : null} />
      <div class="main-column">
        <header class="topbar">
          <span class="topbar-title">${t('app_name')}</span>
          <span class="who" data-testid="who"
            >${t('signed_in_as', { user: userName(me.user_id), role: label('role', role) })}</span
          >
          <${LangSwitch} onSwitch=${rerender} />
          <button type="button" class="link-button signout" onClick=${app.signOut}>${t('sign_out')}</button>
        </header>
        <main class="screen" key=${route.path.join('/')}>
          <${Screen} ...${props} />
        </main>
      </div>
      ${toast &&
      html`<div class=${`toast toast-${toast.kind}`} role=${toast.kind === 'error' ? 'alert' : 'status'} data-testid="toast">
        ${toast.text}
      </div>`}
    </div>
  <//>`;
}
