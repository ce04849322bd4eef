// The case desk: inboxes of the cases waiting for the signed-in role
// (GET /v1/cases with filters), exports, and a case's page with its state,
// its timeline (events that did not apply shown with the reason), its due
// time, its attached photos and files (the case's own and each event's),
// and the actions the role may take (POST /v1/cases/{id}/events).
// Whether an action applies is the server's to say: its 409 and 403
// answers are shown as they come.

import { t, label } from '../i18n.js';
import {
  html,
  useState,
  useApp,
  useLoad,
  usePagedList,
  directory,
  userName,
  unitName,
  fmtDateTime,
  fmtDuration,
  dateToMs,
  dateEndToMs,
  msToDate,
  errorText,
  isOpenStatus,
  ErrorBox,
  Loading,
  PageHead,
  StatusBadge,
  DueText,
  EnumSelect,
  UnitSelect,
  ExportButtons,
  MoreRows,
  STATUSES,
  CATEGORIES,
  CLASSES,
  LEVELS,
  RESULTS,
  DUE_SOON_MS,
} from './common.js';
import { Attachments } from './attachments.js';

const DESK_ROLES = ['community_staff', 'centre_staff', 'admin'];

/** The inboxes: what each shows (query parameters of GET /v1/cases). */
const BOXES = {
  reported: { params: { status: 'reported' }, label: 'inbox_reported', status: 'reported' },
  accepted: { params: { status: 'accepted' }, label: 'inbox_accepted', status: 'accepted' },
  triaged: { params: { status: 'triaged' }, label: 'inbox_triaged', status: 'triaged' },
  assigned: { params: { status: 'assigned' }, label: 'status_assigned', status: 'assigned' },
  handling: { params: { status: 'handling' }, label: 'inbox_handling', status: 'handling' },
  overdue: { params: { overdue: true, sort: 'due_at' }, label: 'inbox_overdue', overdue: true },
  resolved: { params: { status: 'resolved' }, label: 'inbox_resolved', status: 'resolved' },
  followed_up: { params: { status: 'followed_up' }, label: 'status_followed_up', status: 'followed_up' },
  mine: { params: {}, label: 'inbox_mine', mine: true },
  all: { params: {}, label: 'inbox_all' },
};

function boxesFor(role) {
  if (DESK_ROLES.includes(role)) {
    return ['reported', 'accepted', 'triaged', 'assigned', 'handling', 'overdue', 'resolved', 'followed_up', 'all'];
  }
  if (role === 'mediator' || role === 'department') return ['mine', 'all'];
  if (role === 'grid_worker') return ['all', 'mine', 'overdue', 'resolved'];
  return ['all', 'overdue', 'reported'];
}

/** The next steps offered first for a case in each status (api-spec/workflow.md). */
const NEXT_STEPS = {
  reported: ['accept', 'escalate'],
  accepted: ['classify', 'resolve', 'escalate'],
  triaged: ['assign', 'resolve', 'escalate'],
  assigned: ['mediate', 'resolve', 'return', 'assign', 'escalate'],
  handling: ['mediate', 'resolve', 'return', 'escalate'],
  resolved: ['follow_up', 'close', 'reopen'],
  followed_up: ['close', 'reopen'],
  closed: ['reopen'],
};

// ---- the inbox ------------------------------------------------------------------

function BoxTabs({ boxes, box, counts, onPick }) {
  return html`<div class="tabs" role="tablist">
    ${boxes.map((key) => {
      const def = BOXES[key];
      const n = def.status ? counts?.by_status?.[def.status] : def.overdue ? counts?.overdue : undefined;
      return html`<button
        type="button"
        role="tab"
        class=${key === box ? 'tab active' : 'tab'}
        aria-selected=${key === box}
        data-box=${key}
        onClick=${() => onPick(key)}
      >
        ${t(def.label)}${n !== undefined && html` <span class="count">${n}</span>`}
      </button>`;
    })}
  </div>`;
}

export function Desk() {
  const { session, me, role, route, setParams, areaRole } = useApp();
  const p = route.params;
  const boxes = boxesFor(role);
  const box = boxes.includes(p.get('box')) ? p.get('box') : boxes[0];
  const filters = {
    org_unit: p.get('org_unit') ?? '',
    category: p.get('category') ?? '',
    class: p.get('class') ?? '',
    level: p.get('level') ?? '',
    status: p.get('status') ?? '',
    from: p.get('from') ?? '',
    to: p.get('to') ?? '',
  };
  const set = (patch) => setParams({ box, ...filters, ...patch });
  const def = BOXES[box];
  const apiParams = {
    ...def.params,
    ...(def.mine ? { assignee: me.user_id } : {}),
    org_unit: filters.org_unit || undefined,
    category: filters.category || undefined,
    class: filters.class || undefined,
    level: filters.level || undefined,
    status: def.status ?? (filters.status || undefined),
    from: dateToMs(filters.from) ?? undefined,
    to: dateEndToMs(filters.to) ?? undefined,
  };
  const list = usePagedList('/v1/cases', apiParams);
  const countUnit = filters.org_unit || (me.org_units?.length === 1 ? me.org_units[0] : null);
  const counts = useLoad(
    () => (areaRole && countUnit ? session.get('/v1/stats/cases', { org_unit: countUnit }) : null),
    [countUnit, areaRole],
  );

  return html`<div class="desk">
    <${PageHead}
      title=${role === 'supervisor' ? t('cases_title') : t('desk_title')}
      sub=${role === 'supervisor' ? t('read_only_note') : null}
    >
      <${ExportButtons} path="/v1/cases" params=${apiParams} name=${t(def.label)} />
    <//>
    <${BoxTabs} boxes=${boxes} box=${box} counts=${counts.data} onPick=${(key) => setParams({ ...filters, box: key })} />
    <div class="filters">
      ${areaRole && html`<${UnitSelect} value=${filters.org_unit} onChange=${(v) => set({ org_unit: v })} />`}
      <${EnumSelect}
        labelText=${t('col_category')}
        value=${filters.category}
        values=${CATEGORIES}
        group="category"
        onChange=${(v) => set({ category: v })}
      />
      <${EnumSelect}
        labelText=${t('col_class')}
        value=${filters.class}
        values=${[...CLASSES, 'unclassified']}
        group="class"
        onChange=${(v) => set({ class: v })}
      />
      <${EnumSelect}
        labelText=${t('col_level')}
        value=${filters.level}
        values=${LEVELS}
        group="level"
        onChange=${(v) => set({ level: v })}
      />
      ${!def.status &&
      html`<${EnumSelect}
        labelText=${t('col_status')}
        value=${filters.status}
        values=${STATUSES}
        group="status"
        onChange=${(v) => set({ status: v })}
      />`}
      <label class="field">
        <span>${t('reported_from')}</span>
        <input type="date" value=${filters.from} onChange=${(e) => set({ from: e.currentTarget.value })} />
      </label>
      <label class="field">
        <span>${t('reported_to')}</span>
        <input type="date" value=${filters.to} onChange=${(e) => set({ to: e.currentTarget.value })} />
      </label>
      <button type="button" class="link-button" onClick=${() => setParams({ box })}>${t('filter_clear')}</button>
    </div>
    <${ErrorBox} error=${list.error} onRetry=${list.reload} />
    <${CaseTable} rows=${list.items} />
    ${list.loading && html`<${Loading} />`}
    <${MoreRows} list=${list} />
  </div>`;
}

export function CaseTable({ rows, compact = false }) {
  const now = Date.now();
  if (!rows.length) return html`<p class="muted empty" data-testid="no-rows">${t('empty')}</p>`;
  return html`<table class="data cases" data-testid="case-table">
    <thead>
      <tr>
        <th>${t('col_title')}</th>
        <th>${t('col_category')}</th>
        ${!compact && html`<th>${t('col_org_unit')}</th>`}
        <th>${t('col_status')}</th>
        <th>${t('col_class')}</th>
        <th>${t('col_level')}</th>
        <th>${t('col_reported')}</th>
        <th>${t('col_due')}</th>
        ${!compact && html`<th>${t('col_assignee')}</th>`}
      </tr>
    </thead>
    <tbody>
      ${rows.map(
        (c) => html`<tr data-case=${c.id} data-status=${c.status}>
          <td>
            <a href=${`#/case/${c.id}`}>${c.title || c.id}</a>
            ${c.supervised && html` <span class="badge badge-purple">${t('supervised_mark')}</span>`}
            ${c.not_applied > 0 && html` <span class="badge badge-grey">${t('not_applied_n', { n: c.not_applied })}</span>`}
            ${c.attachments > 0 &&
            html` <span class="badge badge-grey" data-testid="attachment-count" title=${t('attachments_n', { n: c.attachments })}
                >${t('attachments_mark', { n: c.attachments })}</span
              >`}
          </td>
          <td>${label('category', c.category)}</td>
          ${!compact && html`<td>${unitName(c.org_unit)}</td>`}
          <td><${StatusBadge} status=${c.status} /></td>
          <td>${label('class', c.class)}</td>
          <td>${label('level', c.level)}</td>
          <td>${fmtDateTime(c.reported_at)}</td>
          <td><${DueText} due=${c.due_at} open=${isOpenStatus(c.status)} now=${now} /></td>
          ${!compact && html`<td>${c.assignee ? userName(c.assignee, { short: true }) : t('dash')}</td>`}
        </tr>`,
      )}
    </tbody>
  </table>`;
}

// ---- a case -------------------------------------------------------------------------

async function loadCase(session, id) {
  const enc = encodeURIComponent(id);
  const [view, record, history] = await Promise.all([
    session.get(`/v1/cases/${enc}`),
    session.get(`/v1/records/${enc}`).catch(() => null),
    session.get(`/v1/records/${enc}/history`).catch(() => []),
  ]);
  // Only admins list users: learn the names of the people who wrote the
  // case (its reporter and the authors of its events) from its history.
  for (const entry of history) {
    if (entry.user_id && entry.user_name) directory.rememberUser(entry.user_id, { display_name: entry.user_name });
  }
  let household = null;
  const hh = record?.record?.household;
  if (hh) household = await session.get(`/v1/records/${encodeURIComponent(hh)}`).catch(() => null);
  return { view, record: record?.record ?? null, household };
}

/** An event's data as "label: value" items. */
function DataList({ data }) {
  const entries = Object.entries(data ?? {}).filter(([, v]) => v !== '');
  if (!entries.length) return null;
  const shown = (key, value) => {
    if (key === 'class') return label('class', value);
    if (key === 'result') return label('result', value);
    if (key === 'to') return userName(value);
    if (key === 'satisfaction') return label('satisfaction', value);
    return value;
  };
  return html`<dl class="event-data">
    ${entries.map(([k, v]) => html`<div><dt>${label('data', k)}</dt><dd>${shown(k, v)}</dd></div>`)}
  </dl>`;
}

function Timeline({ view, record }) {
  const details = new Map((record?.events ?? []).map((e) => [e.id, e]));
  return html`<ol class="timeline" data-testid="timeline">
    ${view.state.events.map((outcome) => {
      const e = details.get(outcome.id) ?? {};
      return html`<li
        class=${outcome.applied ? 'applied' : 'not-applied'}
        data-testid="timeline-event"
        data-kind=${outcome.kind}
        data-applied=${String(outcome.applied)}
      >
        <div class="tl-head">
          <strong>${label('event', outcome.kind)}</strong>
          <span class="muted">${fmtDateTime(e.at)}</span>
          ${e.author &&
          html`<span class="muted">${t('event_by', { who: userName(e.author), role: label('role', e.role) })}</span>`}
        </div>
        ${!outcome.applied &&
        html`<div class="not-applied-reason" data-testid="not-applied">
          ${t('event_not_applied', { reason: outcome.reason ?? '' })}
        </div>`}
        <${DataList} data=${e.data} />
        <${Attachments} attachments=${e.attachments} />
      </li>`;
    })}
  </ol>`;
}

function DueLine({ state, overdue }) {
  const now = Date.now();
  if (!isOpenStatus(state.status) || state.due === null || state.due === undefined) {
    return html`<span class="muted">${t('dash')}</span>`;
  }
  const left = state.due - now;
  if (overdue || left < 0) {
    return html`<span class="due due-over" data-testid="case-due" data-due="over">
      ${fmtDateTime(state.due)} <span class="badge badge-red">${t('case_due_passed', { time: fmtDuration(-left) })}</span>
    </span>`;
  }
  if (left < DUE_SOON_MS) {
    return html`<span class="due due-soon" data-testid="case-due" data-due="soon">
      ${fmtDateTime(state.due)} <span class="badge badge-amber">${t('case_due_soon', { time: fmtDuration(left) })}</span>
    </span>`;
  }
  return html`<span class="due" data-testid="case-due" data-due="ok">
    ${fmtDateTime(state.due)} <span class="muted">${t('case_due_left', { time: fmtDuration(left) })}</span>
  </span>`;
}

/** The people an admin may pick as assignee: handlers first. */
function assignees() {
  const order = ['mediator', 'department', 'community_staff', 'centre_staff', 'grid_worker', 'admin'];
  return [...directory.users.entries()]
    .filter(([, u]) => u.role && order.includes(u.role) && u.username)
    .sort((a, b) => order.indexOf(a[1].role) - order.indexOf(b[1].role) || a[1].username.localeCompare(b[1].username));
}

/** The data fields each kind of event takes. */
function EventFields({ kind, data, setData }) {
  const { role } = useApp();
  const field = (key, input) => html`<label class="field"><span>${label('data', key)}</span>${input}</label>`;
  const text = (key, extra = {}) =>
    field(
      key,
      html`<input
        name=${key}
        value=${data[key] ?? ''}
        onInput=${(e) => setData({ ...data, [key]: e.currentTarget.value })}
        ...${extra}
      />`,
    );
  const select = (key, values, group) =>
    field(
      key,
      html`<select name=${key} value=${data[key] ?? ''} onChange=${(e) => setData({ ...data, [key]: e.currentTarget.value })}>
        <option value="">—</option>
        ${values.map((v) => html`<option value=${v}>${label(group, v)}</option>`)}
      </select>`,
    );
  switch (kind) {
    case 'classify':
      return select('class', CLASSES, 'class');
    case 'assign': {
      if (role === 'admin' && directory.users.size > 1) {
        return field(
          'to',
          html`<select name="to" value=${data.to ?? ''} onChange=${(e) => setData({ ...data, to: e.currentTarget.value })}>
            <option value="">—</option>
            ${assignees().map(
              ([id, u]) =>
                html`<option value=${id}>${u.display_name || u.username}（${u.username} · ${label('role', u.role)}）</option>`,
            )}
          </select>`,
        );
      }
      return html`<label class="field wide">
          <span>${t('assign_type_id')}</span>
          <input
            name="to"
            value=${data.to ?? ''}
            pattern="usr_[0-9a-f]+"
            placeholder="usr_…"
            onInput=${(e) => setData({ ...data, to: e.currentTarget.value.trim() })}
          />
        </label>
        <p class="muted hint">${t('assign_hint')}</p>`;
    }
    case 'escalate':
    case 'return':
    case 'reopen':
      return text('reason');
    case 'mediate':
      return html`${text('outcome')}${text('participants')}${text('date', { type: 'date' })}`;
    case 'resolve':
      return select('result', RESULTS, 'result');
    case 'follow_up':
      return select('satisfaction', ['satisfied', 'basic', 'unsatisfied'], 'satisfaction');
    case 'comment':
      return text('text');
    case 'supervise':
      return text('note');
    default:
      return null;
  }
}

function ActionPanel({ view, onDone }) {
  const { session, toast, canRecord, eventKinds } = useApp();
  const [kind, setKind] = useState(null);
  const [data, setData] = useState({});
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState(null);
  if (!eventKinds.length) return html`<p class="muted">${t('no_actions_role')}</p>`;
  const status = view.state.status;
  const next = [...(NEXT_STEPS[status] ?? []), ...(view.overdue ? ['supervise'] : [])].filter(canRecord);
  const open = (k) => {
    setKind(k);
    setData(k === 'mediate' ? { date: msToDate(Date.now()) } : {});
    setError(null);
  };
  const submit = async (event) => {
    event.preventDefault();
    setBusy(true);
    setError(null);
    const clean = Object.fromEntries(Object.entries(data).filter(([, v]) => v !== ''));
    try {
      const updated = await session.post(`/v1/cases/${encodeURIComponent(view.id)}/events`, {
        kind,
        ...(Object.keys(clean).length ? { data: clean } : {}),
      });
      toast(t('event_done', { kind: label('event', kind) }));
      setKind(null);
      setData({});
      onDone(updated);
    } catch (e) {
      setError(e);
    } finally {
      setBusy(false);
    }
  };
  return html`<section class="card actions" data-testid="actions">
    <h2>${t('actions')}</h2>
    <div class="next-steps">
      <span class="muted">${t('next_steps')}</span>
      ${next.map(
        (k) => html`<button
          type="button"
          class=${kind === k ? 'primary' : 'secondary'}
          data-testid=${`action-${k}`}
          onClick=${() => open(k)}
        >
          ${label('event', k)}
        </button>`,
      )}
      <label class="field inline small">
        <span>${t('other_action')}</span>
        <select
          data-testid="other-action"
          value=${kind && !next.includes(kind) ? kind : ''}
          onChange=${(e) => e.currentTarget.value && open(e.currentTarget.value)}
        >
          <option value="">—</option>
          ${eventKinds.map((k) => html`<option value=${k}>${label('event', k)}</option>`)}
        </select>
      </label>
    </div>
    ${kind &&
    html`<form class="event-form" onSubmit=${submit} data-testid="event-form" data-kind=${kind}>
      <h3>${label('event', kind)}</h3>
      <div class="form-row"><${EventFields} kind=${kind} data=${data} setData=${setData} /></div>
      <div class="form-actions">
        <button type="submit" class="primary" disabled=${busy} data-testid="submit-event">
          ${t('record_event')}：${label('event', kind)}
        </button>
        <button type="button" class="link-button" onClick=${() => setKind(null)}>${t('cancel')}</button>
      </div>
    </form>`}
    ${error &&
    html`<div class="error-box" role="alert" data-testid="action-error" data-code=${error.code ?? ''}>
      ${t('refused', { message: errorText(error) })}
    </div>`}
  </section>`;
}

export function CasePage({ id }) {
  const { session, role } = useApp();
  const load = useLoad(() => loadCase(session, id), [id]);
  const [notice, setNotice] = useState(null);
  if (load.loading && !load.data) return html`<${Loading} />`;
  if (load.error) return html`<${ErrorBox} error=${load.error} onRetry=${load.reload} />`;
  const { view, record, household } = load.data;
  const s = view.state;
  const onDone = async (updated) => {
    try {
      load.set(await loadCase(session, id));
      setNotice(null);
    } catch {
      // Handed on out of the caller's sight: show what the answer said.
      load.set({ ...load.data, view: updated });
      setNotice(true);
    }
  };
  const hh = record?.household;
  return html`<div class="case-page" data-case=${view.id}>
    <p><a href="#/desk">← ${t('case_back')}</a></p>
    <${PageHead} title=${view.title} sub=${`${label('category', view.category)} · ${unitName(view.org_unit)} · ${view.id}`}>
      <${StatusBadge} status=${s.status} />
    <//>
    ${notice && html`<p class="notice">${t('case_handed_on')}</p>`}
    <div class="grid-2 case-grid">
      <section class="card">
        <dl class="facts">
          <div><dt>${t('case_status')}</dt><dd data-testid="case-status" data-status=${s.status}>${label('status', s.status)}</dd></div>
          <div><dt>${t('case_level')}</dt><dd>${label('level', s.level)}</dd></div>
          <div><dt>${t('case_class')}</dt><dd data-testid="case-class">${label('class', s.class)}</dd></div>
          <div><dt>${t('case_assignee')}</dt><dd data-testid="case-assignee">${s.assignee ? userName(s.assignee) : t('dash')}</dd></div>
          <div><dt>${t('case_reported')}</dt><dd>${fmtDateTime(s.reported_at)}</dd></div>
          <div><dt>${t('case_due')}</dt><dd><${DueLine} state=${s} overdue=${view.overdue} /></dd></div>
          ${s.supervised &&
          html`<div>
            <dt>${t('case_supervised')}</dt>
            <dd><span class="badge badge-purple" data-testid="case-supervised">${t('supervised_mark')}</span></dd>
          </div>`}
          ${s.result && html`<div><dt>${t('case_result')}</dt><dd>${label('result', s.result)}</dd></div>`}
          ${s.resolved_level && html`<div><dt>${t('case_resolved_level')}</dt><dd>${label('level', s.resolved_level)}</dd></div>`}
          ${record && html`<div><dt>${t('case_reporter')}</dt><dd>${userName(record.reporter)}</dd></div>`}
          ${record?.location && html`<div><dt>${t('case_location')}</dt><dd>${record.location}</dd></div>`}
          ${hh &&
          html`<div>
            <dt>${t('case_household')}</dt>
            <dd>
              <a href=${`#/household/${hh}`} data-testid="case-household"
                >${household ? householdText(household.record) : hh}</a
              >
            </dd>
          </div>`}
        </dl>
        ${record?.description && html`<h3>${t('case_description')}</h3><p class="description">${record.description}</p>`}
        ${record?.parties?.length > 0 &&
        html`<h3>${t('case_parties')}</h3>
          <table class="data compact">
            <thead><tr><th>${t('party_name')}</th><th>${t('party_role')}</th><th>${t('party_phone')}</th></tr></thead>
            <tbody>
              ${record.parties.map((p) => html`<tr><td>${p.name}</td><td>${p.role}</td><td>${p.phone}</td></tr>`)}
            </tbody>
          </table>`}
      </section>
      <div>
        ${record?.attachments?.length > 0 &&
        html`<section class="card" data-testid="case-attachments">
          <h2>${t('attachments')} <span class="count">${record.attachments.length}</span></h2>
          <${Attachments} attachments=${record.attachments} />
        </section>`}
        ${role !== 'supervisor' && html`<${ActionPanel} view=${view} onDone=${onDone} />`}
        <section class="card">
          <h2>${t('timeline')}</h2>
          <${Timeline} view=${view} record=${record} />
        </section>
      </div>
    </div>
  </div>`;
}

function householdText(h) {
  const head = h.members?.find((m) => m.id === h.head) ?? h.members?.[0];
  const address = [h.address?.building, h.address?.unit, h.address?.room].filter(Boolean).join(' ');
  return [address, head?.name].filter(Boolean).join(' · ');
}
