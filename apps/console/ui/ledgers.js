// Ledgers and logs: the ledger per village or community (一村一台账,
// GET /v1/stats/ledger) and each worker's daily log (一人一日志,
// GET /v1/visits/daily), on screen and exported by the server as CSV or
// Excel, with the visits behind the daily logs.

import { t, label, currentLang } from '../i18n.js';
import {
  html,
  useState,
  useApp,
  useLoad,
  directory,
  userName,
  fmtPercent,
  fmtNumber,
  dateToMs,
  dateEndToMs,
  msToDate,
  ErrorBox,
  Loading,
  PageHead,
  UnitSelect,
  ExportButtons,
  TAGS,
  SPECIAL,
  RESIDENCES,
  DAY_MS,
} from './common.js';

const GROUPS = [
  ['community', 'group_community'],
  ['children', 'group_children'],
  ['grid', 'group_grid'],
  ['township', 'group_township'],
];

function resolved(stats) {
  return ['resolved', 'followed_up', 'closed'].reduce((sum, s) => sum + (stats.by_status?.[s] ?? 0), 0);
}

async function loadLedger(session, params, explicitBy) {
  const rows = await session.get('/v1/stats/ledger', params);
  // A community's (or grid's) own ledger has no community below it: show
  // the units one level down instead, unless a grouping was chosen.
  if (!rows.length && !explicitBy) {
    return { rows: await session.get('/v1/stats/ledger', { ...params, by: 'children' }), by: 'children' };
  }
  return { rows, by: params.by };
}

function LedgerTab() {
  const { session, me, route, setParams } = useApp();
  const p = route.params;
  const unit = p.get('org_unit') || me.org_units?.[0];
  const by = p.get('by') ?? '';
  const from = p.get('from') ?? '';
  const to = p.get('to') ?? '';
  const set = (patch) => setParams({ tab: 'ledger', org_unit: unit, by, from, to, ...patch });
  const params = {
    org_unit: unit,
    by: by || undefined,
    from: dateToMs(from) ?? undefined,
    to: dateEndToMs(to) ?? undefined,
  };
  const load = useLoad(() => loadLedger(session, params, !!by), [unit, by, from, to]);
  const rows = load.data?.rows ?? [];
  directory.rememberUnits(rows);
  const tagKeys = [...TAGS, ...SPECIAL].filter((tag) => rows.some((r) => r.by_tag?.[tag] !== undefined));
  const header = [
    t('col_unit'),
    t('l_households'),
    t('l_members'),
    ...RESIDENCES.map((r) => label('residence', r)),
    ...tagKeys.map((tag) => label('tag', tag)),
    t('l_visits'),
    t('l_cases'),
    t('l_resolved'),
    t('l_overdue'),
    t('l_handling'),
  ];
  const line = (r) => [
    r.name,
    r.households,
    r.members,
    ...RESIDENCES.map((res) => r.by_residence?.[res] ?? 0),
    ...tagKeys.map((tag) => r.by_tag?.[tag] ?? 0),
    r.visits,
    r.cases.total,
    resolved(r.cases),
    r.cases.overdue,
    fmtPercent(r.cases.handling_rate),
  ];
  const sum = (f) => rows.reduce((a, r) => a + (f(r) ?? 0), 0);
  const totalCases = sum((r) => r.cases.total);
  const total = [
    t('l_total'),
    sum((r) => r.households),
    sum((r) => r.members),
    ...RESIDENCES.map((res) => sum((r) => r.by_residence?.[res])),
    ...tagKeys.map((tag) => sum((r) => r.by_tag?.[tag])),
    sum((r) => r.visits),
    totalCases,
    sum((r) => resolved(r.cases)),
    sum((r) => r.cases.overdue),
    totalCases ? fmtPercent(sum((r) => resolved(r.cases)) / totalCases) : t('dash'),
  ];
  return html`<div>
    <div class="filters">
      <${UnitSelect} value=${unit} any=${false} onChange=${(v) => set({ org_unit: v })} />
      <label class="field">
        <span>${t('ledger_group')}</span>
        <select value=${by || load.data?.by || 'community'} onChange=${(e) => set({ by: e.currentTarget.value })}>
          ${GROUPS.map(([value, key]) => html`<option value=${value}>${t(key)}</option>`)}
        </select>
      </label>
      <label class="field">
        <span>${t('period_from')}</span>
        <input type="date" value=${from} onChange=${(e) => set({ from: e.currentTarget.value })} />
      </label>
      <label class="field">
        <span>${t('period_to')}</span>
        <input type="date" value=${to} onChange=${(e) => set({ to: e.currentTarget.value })} />
      </label>
      <span class="spacer"></span>
      <${ExportButtons}
        path="/v1/stats/ledger"
        params=${{ ...params, by: load.data?.by ?? params.by }}
        name=${`${t('ledger_tab')}-${unit}`}
      />
    </div>
    <${ErrorBox} error=${load.error} onRetry=${load.reload} />
    ${load.loading && html`<${Loading} />`}
    ${!load.loading &&
    !load.error &&
    (rows.length
      ? html`<div class="table-scroll">
          <table class="data ledger" data-testid="ledger-table">
            <thead>
              <tr>${header.map((h, i) => html`<th class=${i ? 'num' : ''}>${h}</th>`)}</tr>
            </thead>
            <tbody>
              ${rows.map(
                (r) => html`<tr data-unit=${r.org_unit}>
                  ${line(r).map((cell, i) => html`<td class=${i ? 'num' : ''}>${i && typeof cell === 'number' ? fmtNumber(cell) : cell}</td>`)}
                </tr>`,
              )}
            </tbody>
            <tfoot>
              <tr>${total.map((cell, i) => html`<td class=${i ? 'num' : ''}>${i && typeof cell === 'number' ? fmtNumber(cell) : cell}</td>`)}</tr>
            </tfoot>
          </table>
        </div>`
      : html`<p class="muted">${t('empty')}</p>`)}
  </div>`;
}

function DailyTab() {
  const { session, route, setParams, role } = useApp();
  const p = route.params;
  const now = Date.now();
  const orgUnit = p.get('org_unit') ?? '';
  const worker = p.get('worker') ?? '';
  const from = p.get('from') ?? msToDate(now - 13 * DAY_MS);
  const to = p.get('to') ?? msToDate(now);
  const [workerText, setWorkerText] = useState(worker);
  const set = (patch) => setParams({ tab: 'daily', org_unit: orgUnit, worker, from, to, ...patch });
  const params = {
    org_unit: orgUnit || undefined,
    worker: worker || undefined,
    from: dateToMs(from) ?? undefined,
    to: dateEndToMs(to) ?? undefined,
  };
  const load = useLoad(() => session.get('/v1/visits/daily', params), [orgUnit, worker, from, to]);
  const days = load.data ?? [];
  const workers = [...directory.users.entries()].filter(([, u]) => u.role === 'grid_worker');
  const header = [t('d_worker'), t('d_date'), t('d_visits'), t('d_households'), t('d_follow_ups')];
  const line = (d) => [userName(d.worker), d.date, d.visits, d.households, d.follow_ups];
  return html`<div>
    <div class="filters">
      <${UnitSelect} value=${orgUnit} onChange=${(v) => set({ org_unit: v })} />
      ${role === 'admin' && workers.length
        ? html`<label class="field">
            <span>${t('d_worker')}</span>
            <select value=${worker} onChange=${(e) => set({ worker: e.currentTarget.value })}>
              <option value="">${t('filter_any')}</option>
              ${workers.map(([id, u]) => html`<option value=${id}>${u.display_name || u.username}</option>`)}
            </select>
          </label>`
        : html`<label class="field">
            <span>${t('worker_id')}</span>
            <input
              value=${workerText}
              placeholder="usr_…"
              onInput=${(e) => setWorkerText(e.currentTarget.value)}
              onChange=${(e) => set({ worker: e.currentTarget.value.trim() })}
            />
          </label>`}
      <label class="field">
        <span>${t('period_from')}</span>
        <input type="date" value=${from} onChange=${(e) => set({ from: e.currentTarget.value })} />
      </label>
      <label class="field">
        <span>${t('period_to')}</span>
        <input type="date" value=${to} onChange=${(e) => set({ to: e.currentTarget.value })} />
      </label>
      <span class="spacer"></span>
      <${ExportButtons}
        path="/v1/visits/daily"
        params=${params}
        name=${`${t('daily_tab')}-${from}-${to}`}
        what=${t('daily_tab')}
      />
      <${ExportButtons}
        path="/v1/visits"
        params=${params}
        name=${`${t('visits_title')}-${from}-${to}`}
        what=${t('export_visits')}
      />
    </div>
    <${ErrorBox} error=${load.error} onRetry=${load.reload} />
    ${load.loading && html`<${Loading} />`}
    ${!load.loading &&
    !load.error &&
    (days.length
      ? html`<table class="data" data-testid="daily-table">
          <thead>
            <tr>${header.map((h, i) => html`<th class=${i > 1 ? 'num' : ''}>${h}</th>`)}</tr>
          </thead>
          <tbody>
            ${days.map(
              (d) => html`<tr>
                ${line(d).map((cell, i) => html`<td class=${i > 1 ? 'num' : ''}>${cell}</td>`)}
              </tr>`,
            )}
          </tbody>
        </table>`
      : html`<p class="muted">${t('empty')}</p>`)}
  </div>`;
}

export function Ledgers() {
  const { route, setParams } = useApp();
  const tab = route.params.get('tab') === 'daily' ? 'daily' : 'ledger';
  return html`<div class="ledgers" lang=${currentLang()}>
    <${PageHead} title=${t('ledgers_title')} />
    <div class="tabs" role="tablist">
      <button type="button" role="tab" class=${tab === 'ledger' ? 'tab active' : 'tab'} onClick=${() => setParams({ tab: 'ledger' })}>
        ${t('ledger_tab')}
      </button>
      <button type="button" role="tab" class=${tab === 'daily' ? 'tab active' : 'tab'} onClick=${() => setParams({ tab: 'daily' })}>
        ${t('daily_tab')}
      </button>
    </div>
    ${tab === 'ledger' ? html`<${LedgerTab} />` : html`<${DailyTab} />`}
  </div>`;
}
