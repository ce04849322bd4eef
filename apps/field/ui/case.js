// A case: its state (folded by the replica), details, timeline, and the
// actions the user may record on it now (the replica decides which).

import { useState } from '../vendor/preact-htm.js';
import { t, label } from '../i18n.js';
import {
  html,
  failureText,
  useApp,
  fmtDateTime,
  addressText,
  userLabel,
  unitLabel,
  RecordState,
  Conflicts,
  Field,
  ErrorBox,
  ScreenTitle,
} from './common.js';
import { CaseStatus } from './cases.js';
import { Photos, PhotoList } from './photos.js';

/** Each action's data fields (api-spec/workflow.md): [key, input, choices]. */
const FIELDS = {
  accept: [],
  classify: [['class', 'select', ['big', 'small', 'private']]],
  assign: [['to', 'text']],
  escalate: [['reason', 'text']],
  return: [['reason', 'text']],
  mediate: [
    ['outcome', 'textarea'],
    ['participants', 'text'],
    ['date', 'date'],
  ],
  resolve: [['result', 'select', ['mediated', 'referred', 'withdrawn']]],
  reopen: [['reason', 'text']],
  follow_up: [['satisfaction', 'select', ['satisfied', 'neutral', 'unsatisfied']]],
  close: [],
  comment: [['text', 'textarea']],
  supervise: [['note', 'text']],
};

function initialData(kind) {
  const data = {};
  for (const [key, input, choices] of FIELDS[kind]) {
    data[key] = input === 'select' ? choices[0] : input === 'date' ? new Date().toISOString().slice(0, 10) : '';
  }
  return data;
}

function EventForm({ caseId, kinds }) {
  const app = useApp();
  const [kind, setKind] = useState(kinds[0]);
  const [data, setData] = useState(() => initialData(kinds[0]));
  const [error, setError] = useState(null);
  const [busy, setBusy] = useState(false);

  const choose = (next) => {
    setKind(next);
    setData(initialData(next));
    setError(null);
  };

  async function submit(e) {
    e.preventDefault();
    setBusy(true);
    setError(null);
    try {
      await app.records.change((r) => r.recordEvent(caseId, kind, JSON.stringify(data)));
      app.saved(t('event_saved'));
      setData(initialData(kind));
    } catch (err) {
      setError(failureText(err));
    }
    setBusy(false);
  }

  return html`<form class="form card" onSubmit=${submit} data-testid="event-form">
    <h2>${t('record_event')}</h2>
    <${Field} name=${t('event_kind')}>
      <select name="kind" value=${kind} onChange=${(e) => choose(e.target.value)}>
        ${kinds.map((k) => html`<option value=${k}>${label('event', k)}</option>`)}
      </select>
    <//>
    ${FIELDS[kind].map(([key, input, choices]) => {
      const set = (e) => setData({ ...data, [key]: e.target.value });
      let control;
      if (input === 'select') {
        control = html`<select name=${key} value=${data[key]} onChange=${set}>
          ${choices.map((c) => html`<option value=${c}>${label(key, c)}</option>`)}
        </select>`;
      } else if (input === 'textarea') {
        control = html`<textarea name=${key} rows="3" value=${data[key]} onInput=${set} />`;
      } else {
        control = html`<input name=${key} type=${input} value=${data[key]} onInput=${set} />`;
      }
      return html`<${Field} name=${label('data', key)}>${control}<//>`;
    })}
    <${ErrorBox} error=${error} />
    <button class="primary" type="submit" disabled=${busy}>${label('event', kind)}</button>
  </form>`;
}

/** One event of the timeline; `state` is its fold result ({applied, reason}). */
function TimelineEvent({ event, state, me }) {
  const applied = state?.applied !== false;
  return html`<li class=${applied ? 'event' : 'event not-applied'} data-testid="timeline-event" data-kind=${event.kind}>
    <div class="event-head">
      <strong>${label('event', event.kind)}</strong>
      <span class="muted">${fmtDateTime(event.at)} · ${userLabel(event.author, me)}${event.role ? ` (${label('role', event.role)})` : ''}</span>
    </div>
    ${Object.entries(event.data ?? {}).map(
      ([key, value]) => html`<div><span class="muted">${label('data', key)}:</span> ${label(key, value)}</div>`,
    )}
    ${!applied && html`<div class="error-text">${t('not_applied', { reason: state.reason ?? '' })}</div>`}
    <${PhotoList} attachments=${event.attachments} />
  </li>`;
}

export function CasePage({ id }) {
  const { records, me } = useApp();
  const view = records.view(id);
  if (!view) {
    return html`<${ScreenTitle} title=${t('cases_title')} back="#/cases" />
      <p class="card muted">${t('case_unknown')}</p>`;
  }
  const c = view.record;
  const state = view.case;
  const household = c.household ? records.view(c.household) : null;
  // The timeline in the fold's order, with events it does not list (if any) last.
  const folded = state?.events ?? [];
  const byId = new Map(c.events.map((e) => [e.id, e]));
  const timeline = [
    ...folded.filter((f) => byId.has(f.id)).map((f) => [byId.get(f.id), f]),
    ...c.events.filter((e) => !folded.some((f) => f.id === e.id)).map((e) => [e, null]),
  ];
  const kinds = records.actions(id);

  return html`
    <${ScreenTitle} title=${c.title} back="#/cases" />
    <section class="card">
      <div class="case-status"><${CaseStatus} state=${state} /></div>
      <${RecordState} view=${view} />
      <dl class="facts">
        <dt>${t('category')}</dt>
        <dd>${label('category', c.category)}</dd>
        ${state?.level && html`<dt>${t('level')}</dt><dd>${label('level', state.level)}</dd>`}
        ${state?.class && html`<dt>${t('class')}</dt><dd>${label('class', state.class)}</dd>`}
        ${state?.assignee && html`<dt>${t('assignee')}</dt><dd>${userLabel(state.assignee, me)}</dd>`}
        ${state?.result && html`<dt>${t('result')}</dt><dd>${label('result', state.result)}</dd>`}
        ${state?.due != null && html`<dt>${t('due')}</dt><dd>${fmtDateTime(state.due)}</dd>`}
        <dt>${t('reported_at')}</dt>
        <dd>${fmtDateTime(c.reported_at)}</dd>
        <dt>${t('reporter')}</dt>
        <dd>${userLabel(c.reporter, me)}</dd>
        <dt>${t('grid')}</dt>
        <dd>${unitLabel(c.org_unit, me)}</dd>
        ${c.household &&
        html`<dt>${t('household')}</dt>
          <dd>
            ${household
              ? html`<a href=${`#/household/${c.household}`}>${addressText(household.record.address)}</a>`
              : c.household}
          </dd>`}
        ${c.location && html`<dt>${t('location')}</dt><dd>${c.location}</dd>`}
      </dl>
      ${c.description && html`<p class="pre">${c.description}</p>`}
      ${c.parties.length > 0 &&
      html`<h3>${t('parties')}</h3>
        <ul class="plain">
          ${c.parties.map(
            (p) => html`<li>${p.name}${p.role ? ` (${p.role})` : ''}${p.phone && html` · <a href=${`tel:${p.phone}`}>${p.phone}</a>`}</li>`,
          )}
        </ul>`}
    </section>
    <${Photos} id=${id} attachments=${c.attachments} />
    <${Conflicts} view=${view} />
    <section class="card">
      <h2>${t('timeline')}</h2>
      <ol class="timeline">
        ${timeline.map(([event, f]) => html`<${TimelineEvent} key=${event.id} event=${event} state=${f} me=${me} />`)}
      </ol>
    </section>
    ${kinds.length > 0
      ? html`<${EventForm} caseId=${id} kinds=${kinds} />`
      : html`<p class="card muted">${t('no_actions')}</p>`}
  `;
}
