// Overview of an org unit's subtree: case figures (open, overdue,
// supervised, by category, triage class and level resolved, handling and
// mediation rates), visit coverage of households and of each tagged group,
// the last eight weeks, and the same figures per unit one level down, to
// drill down county → township → community → grid.

import { t, label } from '../i18n.js';
import {
  html,
  useApp,
  useLoad,
  directory,
  unitName,
  unitKind,
  fmtPercent,
  fmtDuration,
  fmtNumber,
  ErrorBox,
  Loading,
  PageHead,
  Figure,
  OPEN_STATUSES,
  LEVELS,
  CLASSES,
} from './common.js';
import { BarChart, TrendChart } from './charts.js';

const WEEKS = 8;
const COVERAGE_DAYS = [7, 30, 90, 365];

/** Monday 00:00 local time of the week holding `ms`. */
function weekStart(ms) {
  const d = new Date(ms);
  d.setHours(0, 0, 0, 0);
  const back = (d.getDay() + 6) % 7;
  d.setDate(d.getDate() - back);
  return d.getTime();
}

/** The last `WEEKS` weeks, oldest first: [{from, to, label}]. */
function lastWeeks(now = Date.now()) {
  const weeks = [];
  let start = weekStart(now);
  for (let i = 0; i < WEEKS; i++) {
    const d = new Date(start);
    const end = new Date(start);
    end.setDate(end.getDate() + 7);
    weeks.unshift({ from: start, to: end.getTime(), label: `${d.getMonth() + 1}/${d.getDate()}` });
    const prev = new Date(start);
    prev.setDate(prev.getDate() - 7);
    start = prev.getTime();
  }
  return weeks;
}

export function openCount(stats) {
  return OPEN_STATUSES.reduce((sum, s) => sum + (stats.by_status?.[s] ?? 0), 0);
}

function resolvedCount(stats) {
  return ['resolved', 'followed_up', 'closed'].reduce((sum, s) => sum + (stats.by_status?.[s] ?? 0), 0);
}

/** The units from a root of the user's down to `unit`, as far as the console knows the parents. */
function chainTo(unit, roots) {
  const chain = [unit];
  let at = unit;
  const seen = new Set(chain);
  while (!roots.includes(at)) {
    const parent = directory.units.get(at)?.parent;
    if (!parent || seen.has(parent)) break;
    chain.unshift(parent);
    seen.add(parent);
    at = parent;
  }
  return chain;
}

async function loadOverview(session, unit, days) {
  const weeks = lastWeeks();
  const [stats, byUnit, coverage, overdue, ...weekly] = await Promise.all([
    session.get('/v1/stats/cases', { org_unit: unit }),
    session.get('/v1/stats/cases/by-unit', { org_unit: unit, by: 'children' }),
    session.get('/v1/stats/coverage', { org_unit: unit, days, by: 'children' }),
    session.get('/v1/cases/overdue', { org_unit: unit }),
    ...weeks.map((w) => session.get('/v1/stats/cases', { org_unit: unit, from: w.from, to: w.to })),
  ]);
  directory.rememberUnits(byUnit, unit);
  directory.rememberUnits(coverage.units, unit);
  return {
    stats,
    byUnit,
    coverage,
    supervised: overdue.filter((c) => c.state?.supervised).length,
    weeks: weeks.map((w, i) => ({ ...w, total: weekly[i].total, resolved: resolvedCount(weekly[i]) })),
  };
}

function UnitPicker({ unit, children }) {
  const { me, setParams, route } = useApp();
  const roots = me.org_units ?? [];
  const chain = chainTo(unit, roots);
  const options = [...new Set([...roots, ...chain, ...children.map((c) => c.org_unit)])];
  const days = route.params.get('days');
  const go = (id) => setParams({ unit: id, days });
  const parent = chain.length > 1 ? chain[chain.length - 2] : null;
  return html`<div class="unit-picker">
    <nav class="crumbs" aria-label=${t('unit_pick')}>
      ${chain.map(
        (id, i) => html`${i > 0 && html`<span class="sep">›</span>`}
          ${i === chain.length - 1
            ? html`<strong data-testid="overview-unit" data-unit=${id}>${unitName(id)}</strong>`
            : html`<a href="#" onClick=${(e) => (e.preventDefault(), go(id))}>${unitName(id)}</a>`}`,
      )}
    </nav>
    <label class="field inline">
      <span>${t('unit_pick')}</span>
      <select value=${unit} onChange=${(e) => go(e.currentTarget.value)} data-testid="unit-picker">
        ${options.map(
          (id) => html`<option value=${id}>${unitName(id)}${unitKind(id) ? ` · ${t(`kind_${unitKind(id)}`)}` : ''}</option>`,
        )}
      </select>
    </label>
    ${parent && html`<button type="button" class="secondary" onClick=${() => go(parent)}>${t('unit_up')}</button>`}
  </div>`;
}

function CoverageBlock({ coverage, days, onDays }) {
  const total = coverage.total;
  const tags = Object.entries(total.by_tag ?? {}).sort((a, b) => b[1].households - a[1].households);
  const rows = [
    {
      key: 'all',
      label: t('coverage_all'),
      value: total.share ?? 0,
      text: `${fmtPercent(total.share)}  ${t('coverage_share', { visited: total.visited, households: total.households })}`,
    },
    ...tags.map(([tag, c]) => ({
      key: tag,
      label: label('tag', tag),
      value: c.share ?? 0,
      text: `${fmtPercent(c.share)}  ${c.visited}/${c.households}`,
    })),
  ];
  return html`<section class="card" data-testid="coverage">
    <div class="card-head">
      <h2>${t('coverage_title', { days })}</h2>
      <label class="field inline small">
        <span>${t('coverage_days')}</span>
        <select value=${String(days)} onChange=${(e) => onDays(e.currentTarget.value)}>
          ${COVERAGE_DAYS.map((d) => html`<option value=${String(d)}>${d}</option>`)}
        </select>
      </label>
    </div>
    <${BarChart} rows=${rows} max=${1} tone="blue" testid="coverage-chart" valueWidth=${130} />
  </section>`;
}

function DrillTable({ byUnit, coverage, onPick }) {
  if (!byUnit.length) return html`<p class="muted">${t('no_children')}</p>`;
  const cov = new Map((coverage.units ?? []).map((u) => [u.org_unit, u]));
  return html`<table class="data drill" data-testid="drill-table">
    <thead>
      <tr>
        <th>${t('col_unit')}</th>
        <th>${t('col_kind')}</th>
        <th class="num">${t('col_total')}</th>
        <th class="num">${t('col_open')}</th>
        <th class="num">${t('col_overdue')}</th>
        <th class="num">${t('col_handling')}</th>
        <th class="num">${t('col_mediation')}</th>
        <th class="num">${t('col_households')}</th>
        <th class="num">${t('col_coverage')}</th>
      </tr>
    </thead>
    <tbody>
      ${byUnit.map((u) => {
        const c = cov.get(u.org_unit);
        return html`<tr data-unit=${u.org_unit} class="pick" onClick=${() => onPick(u.org_unit)}>
          <td><a href="#" onClick=${(e) => e.preventDefault()}>${u.name}</a> <span class="muted id">${u.org_unit}</span></td>
          <td>${t(`kind_${u.kind}`)}</td>
          <td class="num" data-col="total">${u.total}</td>
          <td class="num">${openCount(u)}</td>
          <td class=${`num ${u.overdue ? 'warn' : ''}`}>${u.overdue}</td>
          <td class="num">${fmtPercent(u.handling_rate)}</td>
          <td class="num">${fmtPercent(u.mediation_success_rate)}</td>
          <td class="num">${c ? fmtNumber(c.households) : t('dash')}</td>
          <td class="num">${c ? fmtPercent(c.share) : t('dash')}</td>
        </tr>`;
      })}
    </tbody>
  </table>`;
}

export function Overview() {
  const { session, me, route, setParams } = useApp();
  const unit = route.params.get('unit') || me.org_units?.[0];
  const days = Number(route.params.get('days')) || 30;
  const load = useLoad(() => loadOverview(session, unit, days), [unit, days]);
  const go = (id) => setParams({ unit: id, days: route.params.get('days') });

  if (!unit) return html`<p class="muted">${t('empty')}</p>`;
  const data = load.data;
  return html`<div class="overview">
    <${PageHead} title=${t('overview_title')}>
      <${UnitPicker} unit=${unit} children=${data?.byUnit ?? []} />
    <//>
    <${ErrorBox} error=${load.error} onRetry=${load.reload} />
    ${load.loading && !data && html`<${Loading} />`}
    ${data && html`<${Figures} data=${data} />`}
    ${data &&
    html`<div class="grid-2">
        <section class="card">
          <h2>${t('by_category')}</h2>
          <${BarChart}
            testid="category-chart"
            rows=${Object.entries(data.stats.by_category)
              .sort((a, b) => b[1] - a[1])
              .map(([key, value]) => ({ key, label: label('category', key), value }))}
          />
        </section>
        <section class="card">
          <h2>${t('resolved_by_level')}</h2>
          <${BarChart}
            testid="level-chart"
            tone="teal"
            rows=${LEVELS.map((key) => ({ key, label: label('level', key), value: data.stats.resolved_by_level[key] ?? 0 }))}
            caption=${levelCaption(data.stats)}
          />
          <h2 class="spaced">${t('by_class')}</h2>
          <${BarChart}
            testid="class-chart"
            tone="amber"
            rows=${[...CLASSES, 'unclassified'].map((key) => ({
              key,
              label: label('class', key),
              value: data.stats.by_class[key] ?? 0,
            }))}
          />
        </section>
      </div>
      <div class="grid-2">
        <section class="card">
          <h2>${t('trend_title')}</h2>
          <${TrendChart} weeks=${data.weeks} testid="trend-chart" />
        </section>
        <${CoverageBlock} coverage=${data.coverage} days=${days} onDays=${(d) => setParams({ unit, days: d })} />
      </div>
      <section class="card">
        <div class="card-head">
          <h2>${t('drill_title')}</h2>
          <span class="muted">${t('drill_hint')}</span>
        </div>
        <${DrillTable} byUnit=${data.byUnit} coverage=${data.coverage} onPick=${go} />
      </section>`}
  </div>`;
}

function levelCaption(stats) {
  const levels = stats.resolved_by_level ?? {};
  const all = Object.values(levels).reduce((a, b) => a + b, 0);
  const local = (levels.grid ?? 0) + (levels.community ?? 0);
  return `${t('level_motto')} · ${t('resolved_locally', { share: all ? fmtPercent(local / all) : t('dash') })}`;
}

function Figures({ data }) {
  const { stats, supervised } = data;
  const median = stats.median_time_to_resolve_ms;
  return html`<div class="figures" data-testid="figures">
    <${Figure} testid="figure-total" name=${t('cases_total')} value=${fmtNumber(stats.total)} />
    <${Figure} testid="figure-open" name=${t('cases_open')} value=${fmtNumber(openCount(stats))} />
    <${Figure}
      testid="figure-overdue"
      name=${t('cases_overdue')}
      value=${fmtNumber(stats.overdue)}
      tone=${stats.overdue ? 'tone-red' : ''}
    />
    <${Figure}
      testid="figure-supervised"
      name=${t('cases_supervised')}
      value=${fmtNumber(supervised)}
      note=${t('cases_supervised_note')}
    />
    <${Figure} testid="figure-handling" name=${t('handling_rate')} value=${fmtPercent(stats.handling_rate)} />
    <${Figure} testid="figure-mediation" name=${t('mediation_rate')} value=${fmtPercent(stats.mediation_success_rate)} />
    <${Figure}
      testid="figure-median"
      name=${t('median_resolve')}
      value=${median === null || median === undefined ? t('dash') : fmtDuration(median)}
    />
  </div>`;
}
