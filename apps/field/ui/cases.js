// The cases on this phone: assigned to me, reported by me, all; open ones
// first, by due time.

import { useState } from '../vendor/preact-htm.js';
import { t, label } from '../i18n.js';
import { html, useApp, fmtDateTime, isOpen, isOverdue, isDueSoon, StateDot } from './common.js';

const HOUR_MS = 3600000;

/** "overdue 3 days" / "due in 5 h" / "due 12/05 18:00". */
function dueText(due, now) {
  if (due < now) return t('overdue_days', { n: Math.max(1, Math.floor((now - due) / (24 * HOUR_MS))) });
  const hours = Math.ceil((due - now) / HOUR_MS);
  return hours <= 48 ? t('due_in_hours', { n: hours }) : `${t('due')} ${fmtDateTime(due)}`;
}

/** The status badge and due time of a case state. */
export function CaseStatus({ state, now = Date.now() }) {
  if (!state) return null;
  const overdue = isOverdue(state, now);
  return html`<span class=${`status status-${state.status}`} data-testid="case-status">${label('status', state.status)}</span>
    ${isOpen(state) &&
    state.due != null &&
    html`<span
      class=${overdue ? 'due overdue' : isDueSoon(state, now) ? 'due soon' : 'due'}
      title=${`${t('due')} ${fmtDateTime(state.due)}`}
    >
      ${dueText(state.due, now)}
    </span>`}
    ${state.supervised && html`<span class="tag tag-warn">${t('supervised')}</span>`}`;
}

/** One case in a list. */
export function CaseRow({ view, now }) {
  const c = view.record;
  return html`<li>
    <a class="row" href=${`#/case/${view.id}`}>
      <div class="row-main">
        <div class="row-title"><${StateDot} view=${view} />${c.title}</div>
        <div class="row-sub">${label('category', c.category)} · <${CaseStatus} state=${view.case} now=${now} /></div>
      </div>
    </a>
  </li>`;
}

const TABS = {
  mine: (v, me) => v.case?.assignee === me.user_id,
  reported: (v, me) => v.record.reporter === me.user_id,
  all: () => true,
};

let rememberedTab = null;

export function Cases() {
  const { records, me } = useApp();
  const all = records.views('case');
  // Start on the tab that has something: a mediator's cases are assigned to them.
  const [tab, setTab] = useState(
    () => rememberedTab ?? (all.some((v) => TABS.mine(v, me)) ? 'mine' : 'all'),
  );
  const choose = (next) => {
    rememberedTab = next;
    setTab(next);
  };
  const now = Date.now();
  const list = all
    .filter((v) => TABS[tab](v, me))
    .sort(
      (a, b) =>
        isOpen(b.case) - isOpen(a.case) ||
        (a.case?.due ?? Infinity) - (b.case?.due ?? Infinity) ||
        b.record.reported_at - a.record.reported_at,
    );

  return html`
    <h1 class="page-title">${t('cases_title')}</h1>
    <div class="tabs" role="tablist">
      ${Object.keys(TABS).map(
        (key) => html`<button
          type="button"
          role="tab"
          aria-selected=${tab === key}
          class=${tab === key ? 'tab active' : 'tab'}
          onClick=${() => choose(key)}
        >
          ${t(`cases_${key}`)} <span class="count">${all.filter((v) => TABS[key](v, me)).length}</span>
        </button>`,
      )}
    </div>
    <a class="button primary wide" href="#/report">${t('report_case')}</a>
    ${list.length === 0
      ? html`<p class="muted">${t('cases_none')}</p>`
      : html`<ul class="list card">
          ${list.map((v) => html`<${CaseRow} key=${v.id} view=${v} now=${now} />`)}
        </ul>`}
  `;
}
