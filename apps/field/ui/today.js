// Today: what is due (visits, cases), what is unsent (photos too), and the
// sync button.

import { t } from '../i18n.js';
import { html, useApp, fmtDateTime, lastVisits, isOpen, isDueSoon, VISIT_INTERVAL_MS } from './common.js';
import { HouseholdRow } from './households.js';
import { CaseRow } from './cases.js';

const SHOWN = 5;

/** The sync card: connection, unsent changes, last sync, the big button. */
export function SyncCard() {
  const { records, syncer, uploader } = useApp();
  const { online, syncing, lastSync, problem } = syncer.state;
  const pending = records.pendingCount();
  const uploads = records.uploads().length;
  let status = null;
  if (problem?.kind === 'offline' || !online) status = t('sync_offline');
  else if (problem?.kind === 'unreachable') status = t('sync_unreachable');
  else if (problem?.kind === 'busy') status = t('sync_later', { seconds: problem.seconds });
  else if (problem?.kind === 'failed') status = t('sync_failed', { message: problem.message });
  return html`<section class="card sync-card">
    <div class="sync-figures">
      <div>
        <div class="figure" data-testid="pending-total">${pending}</div>
        <div class="muted">${t('pending_changes')}</div>
      </div>
      <div>
        <div class="figure-small" data-testid="last-sync" data-time=${lastSync ?? 0}>
          ${lastSync ? fmtDateTime(lastSync) : t('never_synced')}
        </div>
        <div class="muted">${t('last_sync')}</div>
      </div>
    </div>
    ${status && html`<p class=${problem?.kind === 'failed' ? 'error' : 'muted'} data-testid="sync-status">${status}</p>`}
    ${uploads > 0 &&
    html`<p class="muted" data-testid="uploads-waiting">
      ${uploader.state.active ? t('uploads_going', { n: uploads }) : t('uploads_waiting', { n: uploads })}
    </p>`}
    <button
      class="primary huge"
      type="button"
      data-testid="sync-button"
      disabled=${syncing}
      onClick=${() => syncer.sync()}
    >
      ${syncing ? t('syncing') : t('sync')}
    </button>
  </section>`;
}

export function Today() {
  const { records, me } = useApp();
  const now = Date.now();
  const last = lastVisits(records.views('visit'));
  const unvisited = records
    .views('household')
    .filter((h) => !(last.get(h.id) > now - VISIT_INTERVAL_MS))
    .sort((a, b) => (last.get(a.id) ?? 0) - (last.get(b.id) ?? 0));
  const cases = records
    .views('case')
    .filter((c) => isOpen(c.case) && (c.case.assignee === me.user_id || isDueSoon(c.case, now)))
    .sort((a, b) => (a.case.due ?? Infinity) - (b.case.due ?? Infinity));
  const rejected = records.rejected();

  return html`
    <h1 class="page-title">${t('today_title')}</h1>
    <${SyncCard} />
    ${rejected.length > 0 &&
    html`<a class="card warn-card" href="#/me">
      <strong>${t('rejected_edits')}: ${rejected.length}</strong>
      <div>${t('rejected_help')}</div>
    </a>`}
    <section class="card">
      <h2>${t('today_cases')} <span class="count">${cases.length}</span></h2>
      ${cases.length === 0
        ? html`<p class="muted">${t('today_cases_none')}</p>`
        : html`<ul class="list">
            ${cases.slice(0, SHOWN).map((c) => html`<${CaseRow} view=${c} now=${now} />`)}
          </ul>`}
      ${cases.length > SHOWN && html`<a class="more" href="#/cases">${t('show_all', { n: cases.length })}</a>`}
    </section>
    <section class="card">
      <h2>${t('today_unvisited')} <span class="count" data-testid="unvisited-count">${unvisited.length}</span></h2>
      ${unvisited.length === 0
        ? html`<p class="muted">${t('today_unvisited_none')}</p>`
        : html`<ul class="list">
            ${unvisited.slice(0, SHOWN).map((h) => html`<${HouseholdRow} view=${h} lastVisit=${last.get(h.id)} />`)}
          </ul>`}
      ${unvisited.length > SHOWN &&
      html`<a class="more" href="#/households">${t('show_all', { n: unvisited.length })}</a>`}
    </section>
  `;
}
