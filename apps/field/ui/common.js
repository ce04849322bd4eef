// Shared pieces of the screens: the app context, formatting, record state
// badges, conflicts, form fields.

import { html, createContext, useContext, useState, useEffect } from '../vendor/preact-htm.js';
import { t, label, locale } from '../i18n.js';

export { html };

/**
 * What every screen may use: {records, syncer, uploader, auth, session,
 * me, navigate, toast, saved, signOut} (ui/app.js). `me` is the parsed
 * GET /v1/me, or a stand-in with the user id when it was never fetched.
 */
export const AppContext = createContext(null);
export const useApp = () => useContext(AppContext);

const DAY_MS = 86400000;
/** A household not visited for this long is due a visit. */
export const VISIT_INTERVAL_MS = 30 * DAY_MS;
/** A case due within this long is "due soon". */
const DUE_SOON_MS = 2 * DAY_MS;

export const TAGS = ['elderly_alone', 'left_behind_child', 'disabled', 'low_income', 'veteran'];
export const SEXES = ['Male', 'Female', 'Unknown'];
export const RELATIONS = ['Head', 'Spouse', 'Child', 'Parent', 'Grandchild', 'Sibling', 'Other'];
export const RESIDENCES = ['Registered', 'Floating', 'Resident'];
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
const OPEN_STATUSES = new Set(['reported', 'accepted', 'triaged', 'assigned', 'handling']);

// ---- formatting -----------------------------------------------------------

/** Date and time; the year only when it is not this year's. */
export function fmtDateTime(ms) {
  if (!ms) return '—';
  const date = new Date(ms);
  return new Intl.DateTimeFormat(locale(), {
    year: date.getFullYear() === new Date().getFullYear() ? undefined : 'numeric',
    month: '2-digit',
    day: '2-digit',
    hour: '2-digit',
    minute: '2-digit',
  }).format(date);
}

/** "today" / "3 days ago" / "never visited". */
export function fmtSince(ms, now = Date.now()) {
  if (!ms) return t('never_visited');
  const days = Math.floor((now - ms) / DAY_MS);
  return days <= 0 ? t('today_word') : t('days_ago', { n: days });
}

/** "1栋 2单元 301" */
export function addressText(address) {
  return [address?.building, address?.unit, address?.room].filter(Boolean).join(' ') || '—';
}

export function headOf(household) {
  return household.members.find((m) => m.id === household.head) ?? household.members[0] ?? null;
}

/** An org unit's name, from the user's area (`GET /v1/me`), else its id. */
export function unitLabel(id, me) {
  return me?.units?.find((u) => u.id === id)?.name ?? id;
}

/** "我" for the signed-in user, else the user id. */
export function userLabel(userId, me) {
  if (!userId) return '—';
  return userId === me.user_id ? t('me') : userId;
}

// ---- records ---------------------------------------------------------------

/** Map household id → time of its latest visit (ms). */
export function lastVisits(visits) {
  const last = new Map();
  for (const v of visits) {
    const id = v.record.household;
    if (!last.has(id) || last.get(id) < v.record.visited_at) last.set(id, v.record.visited_at);
  }
  return last;
}

export function isOpen(caseState) {
  return OPEN_STATUSES.has(caseState?.status);
}

export function isOverdue(caseState, now = Date.now()) {
  return isOpen(caseState) && caseState.due != null && caseState.due < now;
}

export function isDueSoon(caseState, now = Date.now()) {
  return isOpen(caseState) && caseState.due != null && caseState.due < now + DUE_SOON_MS;
}

/** A deep copy of a record, to edit and pass to `update`. */
export function copy(record) {
  return structuredClone(record);
}

const isMap = (x) => x !== null && typeof x === 'object' && !Array.isArray(x);

/**
 * Writes into `latest` (a copy of the record as it is now) the fields the
 * user changed in a form: where `edited` differs from `original`, the
 * record as the form opened. Maps are compared key by key, so that a form
 * open while a sync brings other changes does not undo them.
 */
export function applyEdits(latest, original, edited) {
  for (const key of new Set([...Object.keys(original), ...Object.keys(edited)])) {
    const before = original[key];
    const after = edited[key];
    if (isMap(before) && isMap(after) && isMap(latest[key])) applyEdits(latest[key], before, after);
    else if (JSON.stringify(before) !== JSON.stringify(after)) {
      if (after === undefined) delete latest[key];
      else latest[key] = after;
    }
  }
  return latest;
}

/** A new id for a member or party, unique within its list. */
export function newItemId(prefix) {
  return `${prefix}${Date.now().toString(36)}${Math.random().toString(36).slice(2, 6)}`;
}

// ---- components -------------------------------------------------------------

/** Saved on this phone / sent / refused, for the record `view`. */
export function RecordState({ view }) {
  const { records, syncer } = useApp();
  const rejected = records.rejectedOf(view.id);
  const docError = syncer.state.docErrors[view.id];
  if (rejected) {
    return html`<div class="state state-rejected" data-state="rejected">
      <strong>${t('state_rejected')}</strong>: ${rejected.message}
      <div>${t('rejected_help')}</div>
    </div>`;
  }
  return html`
    ${view.pending > 0
      ? html`<span class="state state-pending" data-state="pending">${t('state_pending')}</span>`
      : html`<span class="state state-sent" data-state="sent">${t('state_sent')}</span>`}
    ${docError && html`<div class="state state-rejected">${docError.message}</div>`}
  `;
}

/** A small dot for list rows: pending / refused. */
export function StateDot({ view }) {
  const { records } = useApp();
  if (records.rejectedOf(view.id)) return html`<span class="dot dot-rejected" title=${t('state_rejected')}></span>`;
  if (view.pending > 0) return html`<span class="dot dot-pending" title=${t('state_pending')}></span>`;
  return null;
}

function conflictValue(value) {
  if (value === null || value === undefined || value === '') return '∅';
  return typeof value === 'string' ? value : JSON.stringify(value);
}

/**
 * The fields written on two devices at once: each with every value and
 * which one is shown. `describe(path)` names a field for people.
 */
export function Conflicts({ view, describe }) {
  const { records } = useApp();
  if (!view.conflicts?.length) return null;
  const mine = records.actor();
  return html`<section class="card conflicts" data-testid="conflicts">
    <h2>${t('conflicts')}</h2>
    ${view.conflicts.map(
      (c) => html`<div class="conflict">
        <div class="conflict-field">${describe ? describe(c.path) : c.path}</div>
        <div class="muted">${t('conflict_explain')}</div>
        <ul>
          ${c.values.map(
            (v) => html`<li class=${conflictValue(v.value) === conflictValue(c.shown) ? 'shown' : ''}>
              <span class="conflict-value">${conflictValue(v.value)}</span>
              <span class="muted">
                ${v.actor === mine
                  ? t('conflict_this_device')
                  : t('conflict_other_device', { actor: String(v.actor).slice(0, 8) })}
              </span>
              ${conflictValue(v.value) === conflictValue(c.shown) &&
              html`<span class="badge">${t('conflict_shown')}</span>`}
            </li>`,
          )}
        </ul>
      </div>`,
    )}
  </section>`;
}

/** A labelled form control. */
export function Field({ name, children, hint }) {
  return html`<label class="field">
    <span class="field-label">${name}</span>
    ${children}
    ${hint && html`<span class="field-hint">${hint}</span>`}
  </label>`;
}

/** A <select> of enumeration values with their labels. */
export function EnumSelect({ group, values, value, onChange, name }) {
  return html`<select name=${name} value=${value} onChange=${(e) => onChange(e.target.value)}>
    ${values.map((v) => html`<option value=${v}>${label(group, v)}</option>`)}
  </select>`;
}

/**
 * What to say when a local edit failed: the replica's refusal (its reason,
 * the server's words, after the rule's explanation when there is one in
 * the current language), or storage.
 */
export function failureText(error) {
  if (!error.code) return t('save_failed', { message: error.message });
  const rule = error.rule ? label('rule', error.rule) : null;
  const message = rule && rule !== error.rule ? t('rule_and_reason', { rule, reason: error.message }) : error.message;
  return t('refused', { message });
}

/** An error box that screen readers announce. */
export function ErrorBox({ error }) {
  if (!error) return null;
  return html`<div class="error" role="alert">${error}</div>`;
}

/** The top of a screen below the app bar: a title and an optional back link. */
export function ScreenTitle({ title, back }) {
  return html`<div class="screen-title">
    ${back && html`<a class="back" href=${back} aria-label=${t('back')}>‹</a>`}
    <h1>${title}</h1>
  </div>`;
}

/** How long the phone may take to find where it is. */
const LOCATION_TIMEOUT_MS = 15000;

/**
 * The phone's position as "lat,lon", asked for once when `wanted` turns
 * true. Returns [location or '', status text].
 */
export function useLocation(wanted) {
  const [state, setState] = useState({ location: '', status: '' });
  useEffect(() => {
    if (!wanted) return undefined;
    if (!('geolocation' in navigator)) {
      setState({ location: '', status: t('location_unavailable') });
      return undefined;
    }
    let live = true;
    setState({ location: '', status: t('locating') });
    navigator.geolocation.getCurrentPosition(
      (position) => {
        if (!live) return;
        const { latitude, longitude } = position.coords;
        const location = `${latitude.toFixed(6)},${longitude.toFixed(6)}`;
        setState({ location, status: t('location_added', { location }) });
      },
      () => live && setState({ location: '', status: t('location_unavailable') }),
      { enableHighAccuracy: true, timeout: LOCATION_TIMEOUT_MS, maximumAge: 60000 },
    );
    return () => {
      live = false;
    };
  }, [wanted]);
  return [state.location, state.status];
}
