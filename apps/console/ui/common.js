// Shared pieces of the console's screens: the app context, the names of
// users and org units, formatting, loading hooks, and small components
// (errors, badges, unit pickers, export buttons, paged lists).

import { html, createContext, useContext, useState, useEffect, useRef, useCallback } from '../vendor/preact-htm.js';
import { t, label, locale, currentLang } from '../i18n.js';
import { ApiError, withQuery } from '../api.js';

export { html, useState, useEffect, useRef, useCallback };

/**
 * What every screen may use: {session, me, directory, navigate(hash),
 * toast(text, kind), route: {path, params}, canUse(section), canRecord(kind)}
 * (ui/app.js).
 */
export const AppContext = createContext(null);
export const useApp = () => useContext(AppContext);

export const HOUR_MS = 3600000;
export const DAY_MS = 24 * HOUR_MS;
/** A case due within this long shows a warning. */
export const DUE_SOON_MS = DAY_MS;

export const STATUSES = ['reported', 'accepted', 'triaged', 'assigned', 'handling', 'resolved', 'followed_up', 'closed'];
export const OPEN_STATUSES = ['reported', 'accepted', 'triaged', 'assigned', 'handling'];
export const LEVELS = ['grid', 'community', 'township', 'county'];
export const CLASSES = ['big', 'small', 'private'];
export const RESULTS = ['mediated', 'referred', 'withdrawn'];
export const CATEGORIES = [
  'Neighbour',
  'Family',
  'Property',
  'Labour',
  'Hazard',
  'Request',
  'Traffic',
  'Medical',
  'School',
  'LandRights',
  'Environment',
  'Finance',
  'Consumer',
  'Demolition',
  'Other',
];
export const TAGS = ['elderly_alone', 'left_behind_child', 'disabled', 'low_income', 'veteran'];
export const SPECIAL = ['released_from_prison', 'community_correction', 'drug_rehabilitation', 'severe_mental_disorder'];
export const RESIDENCES = ['Registered', 'Floating', 'Resident'];
export const ROLES = ['grid_worker', 'mediator', 'community_staff', 'centre_staff', 'department', 'supervisor', 'admin'];
export const KINDS = ['county', 'township', 'community', 'grid'];

// ---- names of users and org units ---------------------------------------------

/**
 * What the console knows of users and org units by id. Admins load every
 * user and unit of their area; other roles learn unit names from the
 * figures they read and user names from record histories.
 */
export const directory = {
  users: new Map(),
  units: new Map(),
  devices: new Map(),
  me: null,
  rememberUser(id, fields) {
    if (!id) return;
    this.users.set(id, { ...this.users.get(id), ...fields });
  },
  rememberUnit(id, fields) {
    if (!id) return;
    this.units.set(id, { ...this.units.get(id), ...fields });
  },
  /** Remembers the names of figures per unit ({org_unit, name, kind}…), under `parent`. */
  rememberUnits(rows, parent) {
    for (const row of rows ?? []) {
      if (row.org_unit) {
        this.rememberUnit(row.org_unit, {
          name: row.name,
          kind: row.kind,
          ...(parent ? { parent } : {}),
        });
      }
    }
  },
  clear() {
    this.users.clear();
    this.units.clear();
    this.devices.clear();
    this.me = null;
  },
};

/**
 * "张三" for a known user, "我" for the signed-in one, else the id (cut
 * short with `short`, for tables; the whole id shows on hover).
 */
export function userName(id, { short = false } = {}) {
  if (!id) return t('dash');
  if (id === 'cli') return t('cli');
  const known = directory.users.get(id);
  const name = known?.display_name || known?.username;
  if (id === directory.me?.user_id) return name ? t('me_named', { name }) : t('me');
  if (name) return name;
  return short && id.length > 12 ? html`<span class="mono" title=${id}>${id.slice(0, 12)}…</span>` : id;
}

/** A unit's name, or its id when the console has not learnt the name. */
export function unitName(id) {
  if (!id) return t('dash');
  return directory.units.get(id)?.name || id;
}

export function unitKind(id) {
  return directory.units.get(id)?.kind ?? null;
}

// ---- formatting ---------------------------------------------------------------

export function fmtDateTime(ms) {
  if (ms === null || ms === undefined) return t('dash');
  return new Intl.DateTimeFormat(locale(), {
    year: 'numeric',
    month: '2-digit',
    day: '2-digit',
    hour: '2-digit',
    minute: '2-digit',
  }).format(new Date(ms));
}

export function fmtDate(ms) {
  if (ms === null || ms === undefined) return t('dash');
  return new Intl.DateTimeFormat(locale(), { year: 'numeric', month: '2-digit', day: '2-digit' }).format(new Date(ms));
}

/** "3 天" / "5 小时" for a duration in ms. */
export function fmtDuration(ms) {
  if (ms === null || ms === undefined) return t('dash');
  const abs = Math.abs(ms);
  if (abs >= 2 * DAY_MS) return t('days_n', { n: Math.round(abs / DAY_MS) });
  return t('hours_n', { n: Math.max(1, Math.round(abs / HOUR_MS)) });
}

/** 0.256 → "25.6%"; null → "—". */
export function fmtPercent(share) {
  if (share === null || share === undefined || Number.isNaN(share)) return t('dash');
  return `${(share * 100).toFixed(share === 1 || share === 0 ? 0 : 1)}%`;
}

export function fmtNumber(n) {
  if (n === null || n === undefined) return t('dash');
  return new Intl.NumberFormat(locale()).format(n);
}

/** "1栋 2单元 301" */
export function addressText(row) {
  const a = row?.address ?? row;
  return [a?.building, a?.unit, a?.room].filter(Boolean).join(' ') || t('dash');
}

/** A date input's value (YYYY-MM-DD) as local midnight in ms, or null. */
export function dateToMs(value) {
  if (!value) return null;
  const [y, m, d] = value.split('-').map(Number);
  return new Date(y, m - 1, d).getTime();
}

/** The day after a date input's value, as local midnight in ms (an exclusive end). */
export function dateEndToMs(value) {
  const start = dateToMs(value);
  return start === null ? null : start + DAY_MS;
}

/** ms → YYYY-MM-DD in local time. */
export function msToDate(ms) {
  const d = new Date(ms);
  const pad = (n) => String(n).padStart(2, '0');
  return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())}`;
}

export function isOpenStatus(status) {
  return OPEN_STATUSES.includes(status);
}

/** The text of an error for people: the server's message, with its code. */
export function errorText(error) {
  if (error instanceof ApiError) {
    if (error.status === 0 || !error.code) return t('error_prefix', { message: error.message });
    return t('code_message', { code: error.code, message: error.message });
  }
  if (error instanceof TypeError) return t('network_error', { message: error.message });
  return t('error_prefix', { message: error?.message ?? String(error) });
}

// ---- hooks --------------------------------------------------------------------

/**
 * Runs `load()` (async) when `deps` change: {data, error, loading, reload,
 * set}. A stale answer (deps changed meanwhile) is dropped.
 */
export function useLoad(load, deps) {
  const [state, setState] = useState({ data: null, error: null, loading: true });
  const generation = useRef(0);
  const run = useCallback(() => {
    const mine = ++generation.current;
    setState((s) => ({ ...s, loading: true, error: null }));
    Promise.resolve()
      .then(load)
      .then(
        (data) => mine === generation.current && setState({ data, error: null, loading: false }),
        (error) => mine === generation.current && setState({ data: null, error, loading: false }),
      );
  }, deps);
  useEffect(run, [run]);
  return { ...state, reload: run, set: (data) => setState({ data, error: null, loading: false }) };
}

/**
 * A paged list (`{items, next_cursor}`): the first page for `params`, and
 * `more()` for the next. {items, next, error, loading, more, reload}.
 */
export function usePagedList(path, params, limit = 50) {
  const { session } = useApp();
  const key = JSON.stringify(params);
  const [state, setState] = useState({ items: [], next: null, error: null, loading: true });
  const generation = useRef(0);
  const fetchPage = (cursor, append) => {
    const mine = ++generation.current;
    setState((s) => ({ ...s, loading: true, error: null }));
    session.get(path, { ...params, limit, cursor }).then(
      (page) =>
        mine === generation.current &&
        setState((s) => ({
          items: append ? [...s.items, ...page.items] : page.items,
          next: page.next_cursor ?? null,
          error: null,
          loading: false,
        })),
      (error) => mine === generation.current && setState((s) => ({ ...s, error, loading: false })),
    );
  };
  useEffect(() => fetchPage(null, false), [path, key]);
  return {
    ...state,
    more: () => state.next && fetchPage(state.next, true),
    reload: () => fetchPage(null, false),
  };
}

// ---- components ---------------------------------------------------------------

export function Loading() {
  return html`<p class="muted loading" aria-busy="true">${t('loading')}</p>`;
}

export function ErrorBox({ error, onRetry }) {
  if (!error) return null;
  return html`<div class="error-box" role="alert" data-testid="error">
    <span>${errorText(error)}</span>
    ${onRetry && html`<button type="button" class="link-button" onClick=${onRetry}>${t('retry')}</button>`}
  </div>`;
}

export function StatusBadge({ status }) {
  return html`<span class=${`badge status-${status}`} data-status=${status}>${label('status', status)}</span>`;
}

/** The due time of an open case, marked when it passed and warned within 24 h. */
export function DueText({ due, open, now = Date.now() }) {
  if (!open || due === null || due === undefined) return html`<span class="muted">${t('dash')}</span>`;
  if (due < now) {
    return html`<span class="due due-over" data-due="over" title=${fmtDateTime(due)}
      >${fmtDateTime(due)} <span class="badge badge-red">${t('overdue_mark')}</span></span
    >`;
  }
  if (due - now < DUE_SOON_MS) {
    return html`<span class="due due-soon" data-due="soon" title=${fmtDateTime(due)}
      >${fmtDateTime(due)} <span class="badge badge-amber">${t('due_soon_mark')}</span></span
    >`;
  }
  return html`<span class="due" data-due="ok">${fmtDateTime(due)}</span>`;
}

export function TagList({ tags, group = 'tag', kind = '' }) {
  if (!tags?.length) return html`<span class="muted">${t('dash')}</span>`;
  return html`<span class="tags">${tags.map((tag) => html`<span class=${`chip ${kind}`}>${label(group, tag)}</span>`)}</span>`;
}

/** A select of enumeration values, with an "any" first. */
export function EnumSelect({ id, value, values, group, onChange, any = true, labelText }) {
  return html`<label class="field">
    <span>${labelText}</span>
    <select id=${id} value=${value ?? ''} onChange=${(e) => onChange(e.currentTarget.value)}>
      ${any && html`<option value="">${t('filter_any')}</option>`}
      ${values.map((v) => html`<option value=${v}>${group ? label(group, v) : v}</option>`)}
    </select>
  </label>`;
}

/** A select of the org units of the signed-in user's area. */
export function UnitSelect({ value, onChange, labelText = t('unit'), any = true, kinds }) {
  const { me } = useApp();
  let units = me.area ?? [];
  if (kinds) units = units.filter((id) => !unitKind(id) || kinds.includes(unitKind(id)));
  return html`<label class="field">
    <span>${labelText}</span>
    <select value=${value ?? ''} onChange=${(e) => onChange(e.currentTarget.value)} data-testid="unit-select">
      ${any && html`<option value="">${t('whole_area')}</option>`}
      ${units.map((id) => html`<option value=${id}>${unitLabel(id)}</option>`)}
    </select>
  </label>`;
}

/** "第1社区（demo.t1.c1）" or the id alone. */
export function unitLabel(id) {
  const name = directory.units.get(id)?.name;
  const depth = Math.max(0, (id.match(/\./g) ?? []).length);
  const indent = '\u3000'.repeat(Math.min(depth, 4));
  return name ? `${indent}${name}（${id}）` : `${indent}${id}`;
}

/**
 * Buttons that export a list as CSV and XLSX: the list endpoint `path` with
 * `params`, `format` and the console's language; saved as `name`.xlsx/.csv.
 */
export function ExportButtons({ path, params, name, what }) {
  const { session, toast } = useApp();
  const [busy, setBusy] = useState(null);
  const run = async (format) => {
    setBusy(format);
    try {
      const saved = await session.download(
        withQuery(path, { ...params, format, lang: currentLang(), limit: undefined, cursor: undefined }),
        `${name}.${format}`,
      );
      toast(t('exported', { name: saved }));
    } catch (error) {
      toast(errorText(error), 'error');
    } finally {
      setBusy(null);
    }
  };
  return html`<span class="export-buttons">
    ${what && html`<span class="muted">${what}</span>`}
    <button type="button" class="secondary" disabled=${!!busy} onClick=${() => run('xlsx')} data-testid="export-xlsx">
      ${busy === 'xlsx' ? t('exporting') : t('export_xlsx')}
    </button>
    <button type="button" class="secondary" disabled=${!!busy} onClick=${() => run('csv')} data-testid="export-csv">
      ${busy === 'csv' ? t('exporting') : t('export_csv')}
    </button>
  </span>`;
}

/** Quotes a CSV cell; text a spreadsheet would run as a formula gets a `'` first. */
function csvCell(value) {
  let text = value === null || value === undefined ? '' : String(value);
  if (/^[=+\-@\t\r]/.test(text)) text = `'${text}`;
  return /[",\r\n]/.test(text) ? `"${text.replace(/"/g, '""')}"` : text;
}

/** CSV text (with a byte-order mark, for Excel) of a header row and rows. */
export function toCsv(header, rows) {
  const lines = [header, ...rows].map((row) => row.map(csvCell).join(','));
  return `\uFEFF${lines.join('\r\n')}\r\n`;
}

/** "Load more" under a paged list, with how many rows show. */
export function MoreRows({ list }) {
  return html`<div class="more-rows">
    <span class="muted" data-testid="row-count">${t('rows_shown', { n: list.items.length })}</span>
    ${list.next &&
    html`<button type="button" class="secondary" disabled=${list.loading} onClick=${list.more}>${t('more')}</button>`}
  </div>`;
}

/** A page heading with actions on the right. */
export function PageHead({ title, children, sub }) {
  return html`<div class="page-head">
    <div>
      <h1>${title}</h1>
      ${sub && html`<p class="muted sub">${sub}</p>`}
    </div>
    <div class="page-actions">${children}</div>
  </div>`;
}

/** A figure card. */
export function Figure({ name, value, note, tone = '', testid }) {
  return html`<div class=${`figure ${tone}`} data-testid=${testid}>
    <div class="figure-name">${name}</div>
    <div class="figure-value">${value}</div>
    ${note && html`<div class="figure-note muted">${note}</div>`}
  </div>`;
}
