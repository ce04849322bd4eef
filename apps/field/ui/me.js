// The user, the device, the language, refused edits and signing out.

import { t, label, currentLang, setLang } from '../i18n.js';
import { html, useApp, unitLabel } from './common.js';
import { SyncCard } from './today.js';

export function Me() {
  const app = useApp();
  const { records, me, session, syncer } = app;
  const rejected = records.rejected();
  const docErrors = Object.values(syncer.state.docErrors);
  // A record by its kind and the start of its id, linked when the phone holds it.
  const link = (id) => {
    const [prefix, hex] = id.split('_');
    const name = `${label('kind', prefix)} ${hex.slice(0, 8)}…`;
    const page = { hh: 'household', cs: 'case' }[prefix];
    return page && records.view(id) ? html`<a href=${`#/${page}/${id}`}>${name}</a>` : name;
  };

  return html`
    <h1 class="page-title">${t('me_title')}</h1>
    <section class="card">
      <dl class="facts">
        <dt>${t('user')}</dt>
        <dd>${session.username}</dd>
        <dt>${t('role')}</dt>
        <dd>${me.role ? label('role', me.role) : '—'}</dd>
        <dt>${t('org_units')}</dt>
        <dd>${(me.org_units ?? []).map((u) => unitLabel(u, me)).join(', ') || '—'}</dd>
        <dt>${t('device')}</dt>
        <dd class="mono" data-testid="device-id">${session.device_id}</dd>
      </dl>
    </section>
    <${SyncCard} />
    <section class="card" data-testid="rejected">
      <h2>${t('rejected_edits')} <span class="count">${rejected.length}</span></h2>
      ${rejected.length === 0
        ? html`<p class="muted">${t('rejected_none')}</p>`
        : html`<p>${t('rejected_help')}</p>
            <ul class="list">
              ${rejected.map(
                (r) => html`<li class="rejected">
                  <div>${link(r.id)} · ${t('rejected_changes', { n: r.changes })}</div>
                  <div class="error-text">${r.message}</div>
                </li>`,
              )}
            </ul>`}
      ${docErrors.map((e) => html`<div class="error-text">${link(e.id)}: ${e.message}</div>`)}
    </section>
    <section class="card">
      <h2>${t('language')}</h2>
      <div class="actions">
        ${[
          ['zh', '中文'],
          ['en', 'English'],
        ].map(
          ([code, name]) => html`<button
            type="button"
            class=${currentLang() === code ? 'primary' : 'secondary'}
            onClick=${() => {
              setLang(code);
              app.toast(name);
            }}
          >
            ${name}
          </button>`,
        )}
      </div>
    </section>
    <button type="button" class="secondary wide" onClick=${app.signOut}>${t('sign_out')}</button>
  `;
}
