// The app shell: sign-in or the signed-in screens, the bars, routing by
// the location hash (#/households, #/household/<id>, …) and messages.

import { useState, useEffect, useRef } from '../vendor/preact-htm.js';
import { t, setLang, currentLang } from '../i18n.js';
import { html, AppContext, fmtDateTime } from './common.js';
import { SignIn } from './signin.js';
import { Today } from './today.js';
import { Households } from './households.js';
import { HouseholdPage, HouseholdForm, MemberForm } from './household.js';
import { VisitForm } from './visit.js';
import { Cases } from './cases.js';
import { CasePage } from './case.js';
import { ReportForm } from './report.js';
import { Me } from './me.js';

const TOAST_MS = 3500;

function useHash() {
  const [hash, setHash] = useState(location.hash);
  useEffect(() => {
    const onChange = () => {
      setHash(location.hash);
      window.scrollTo(0, 0);
    };
    window.addEventListener('hashchange', onChange);
    // The hash may have changed between the first render and now.
    setHash(location.hash);
    return () => window.removeEventListener('hashchange', onChange);
  }, []);
  return hash;
}

/** The screen for a location hash: [component, props, tab]. */
function route(hash) {
  const parts = hash.replace(/^#\/?/, '').split('/').filter(Boolean).map(decodeURIComponent);
  const [head, id, sub, subId] = parts;
  switch (head) {
    case 'households':
      return [Households, {}, 'households'];
    case 'household':
      if (sub === 'edit') return [HouseholdForm, { id }, 'households'];
      if (sub === 'member') return [MemberForm, { id, memberId: subId }, 'households'];
      if (sub === 'visit') return [VisitForm, { id }, 'households'];
      return [HouseholdPage, { id }, 'households'];
    case 'cases':
      return [Cases, {}, 'cases'];
    case 'case':
      return [CasePage, { id }, 'cases'];
    case 'report':
      return [ReportForm, { household: id }, 'cases'];
    case 'me':
      return [Me, {}, 'me'];
    default:
      return [Today, {}, 'today'];
  }
}

function LangSwitch({ onSwitch }) {
  return html`<button
    class="lang"
    type="button"
    aria-label=${t('lang_switch_label')}
    onClick=${() => {
      setLang(currentLang() === 'zh' ? 'en' : 'zh');
      onSwitch();
    }}
  >
    ${t('lang_switch')}
  </button>`;
}

/** The app bar: name, connection and unsent changes, language. */
function TopBar({ syncer, records, onLang }) {
  const { online, syncing, lastSync } = syncer.state;
  const pending = records.pendingCount();
  return html`<header class="topbar">
    <span class="brand">${t('app_name')}</span>
    <span
      class=${`pill ${online ? 'pill-online' : 'pill-offline'}`}
      data-testid="sync-pill"
      title=${lastSync ? `${t('last_sync')} ${fmtDateTime(lastSync)}` : t('never_synced')}
    >
      ${syncing ? t('syncing') : online ? t('online') : t('offline')}
      ${pending > 0 && html` · <span data-testid="pending-count">${t('pending_n', { n: pending })}</span>`}
    </span>
    <${LangSwitch} onSwitch=${onLang} />
  </header>`;
}

function NavBar({ tab }) {
  const items = [
    ['today', '#/', t('nav_today'), '⌂'],
    ['households', '#/households', t('nav_households'), '▦'],
    ['cases', '#/cases', t('nav_cases'), '⚑'],
    ['me', '#/me', t('nav_me'), '☺'],
  ];
  return html`<nav class="navbar">
    ${items.map(
      ([key, href, text, icon]) => html`<a href=${href} class=${tab === key ? 'active' : ''} aria-current=${
        tab === key ? 'page' : undefined
      }>
        <span class="nav-icon" aria-hidden="true">${icon}</span>${text}
      </a>`,
    )}
  </nav>`;
}

/**
 * `app` (main.js) opens and closes the phone's services: {phase,
 * services, notice, lastUser, signIn(), signOut(), useHere()} and
 * re-renders this on every change through `app.subscribe`.
 */
export function App({ app }) {
  const [, setTick] = useState(0);
  const rerender = () => setTick((n) => n + 1);
  useEffect(() => app.subscribe(rerender), []);
  const hash = useHash();
  const [toast, setToast] = useState(null);
  const toastTimer = useRef(null);

  const services = app.services;
  useEffect(() => {
    if (!services) return undefined;
    const offRecords = services.records.subscribe(rerender);
    const offSync = services.syncer.subscribe(rerender);
    const offUploads = services.uploader.subscribe(rerender);
    return () => {
      offRecords();
      offSync();
      offUploads();
    };
  }, [services]);

  const showToast = (text, kind = 'ok') => {
    clearTimeout(toastTimer.current);
    setToast({ text, kind });
    toastTimer.current = setTimeout(() => setToast(null), TOAST_MS);
  };

  if (app.phase === 'loading') {
    return html`<main class="splash"><p>${t('loading')}</p></main>`;
  }
  if (app.phase === 'failed') {
    return html`<main class="splash"><p class="error" role="alert">${t('load_failed', { message: app.error })}</p></main>`;
  }
  if (app.phase === 'elsewhere') {
    return html`<div class="app">
      <header class="topbar"><span class="brand">${t('app_name')}</span><${LangSwitch} onSwitch=${rerender} /></header>
      <main class="splash">
        <div class="card">
          <p>${t('elsewhere')}</p>
          <button class="primary big" type="button" onClick=${app.useHere}>${t('use_here')}</button>
        </div>
      </main>
    </div>`;
  }
  if (app.phase === 'signin') {
    return html`<div class="app">
      <header class="topbar"><span class="brand">${t('app_name')}</span><${LangSwitch} onSwitch=${rerender} /></header>
      <${SignIn} signIn=${app.signIn} notice=${app.notice} lastUser=${app.lastUser} />
    </div>`;
  }

  const context = {
    ...services,
    session: services.auth.session,
    me: JSON.parse(services.auth.me() ?? 'null') ?? { user_id: services.auth.session.user_id, area: [] },
    navigate: (to) => {
      location.hash = to;
    },
    toast: showToast,
    // After a local edit is durable: say so and sync soon.
    saved: (text = t('saved_here')) => {
      showToast(text);
      services.syncer.soon();
    },
    signOut: app.signOut,
  };
  const [Screen, props, tab] = route(hash);
  return html`<${AppContext.Provider} value=${context}>
    <div class="app">
      <${TopBar} syncer=${services.syncer} records=${services.records} onLang=${rerender} />
      <main class="screen" key=${hash}><${Screen} ...${props} /></main>
      ${toast && html`<div class=${`toast toast-${toast.kind}`} role="status" data-testid="toast">${toast.text}</div>`}
      <${NavBar} tab=${tab} />
    </div>
  <//>`;
}
