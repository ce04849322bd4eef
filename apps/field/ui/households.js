// The households of the user's grid: search, tag filters, sort by last visit.

import { useState } from '../vendor/preact-htm.js';
import { t, label } from '../i18n.js';
import { html, useApp, fmtSince, addressText, headOf, lastVisits, StateDot, TAGS } from './common.js';

const PAGE = 50;

/** One household in a list. */
export function HouseholdRow({ view, lastVisit }) {
  const h = view.record;
  const head = headOf(h);
  const tags = TAGS.filter((tag) => h.tags?.[tag]);
  return html`<li>
    <a class="row" href=${`#/household/${view.id}`}>
      <div class="row-main">
        <div class="row-title"><${StateDot} view=${view} />${addressText(h.address)}</div>
        <div class="row-sub">
          ${head ? head.name : '—'}${h.members.length > 1 ? ` · ${t('members_n', { n: h.members.length })}` : ''}
          ${tags.map((tag) => html` <span class="tag">${label('tag', tag)}</span>`)}
        </div>
      </div>
      <div class="row-side muted">${fmtSince(lastVisit)}</div>
    </a>
  </li>`;
}

/** Whether a household matches the search text (name, address, phone, ID number). */
function matches(h, query) {
  if (!query) return true;
  const haystack = [
    addressText(h.address),
    h.address.building + h.address.unit + h.address.room,
    ...h.members.flatMap((m) => [m.name, m.phone, m.id_number]),
  ]
    .join('\n')
    .toLowerCase();
  return query
    .toLowerCase()
    .split(/\s+/)
    .filter(Boolean)
    .every((word) => haystack.includes(word));
}

const SORTS = {
  oldest_visit: (a, b, last) => (last.get(a.id) ?? 0) - (last.get(b.id) ?? 0),
  newest_visit: (a, b, last) => (last.get(b.id) ?? 0) - (last.get(a.id) ?? 0),
  address: (a, b) =>
    addressText(a.record.address).localeCompare(addressText(b.record.address), 'zh-CN', { numeric: true }),
};

// The list's settings outlive a visit to a household page and back.
let remembered = { query: '', tags: [], sort: 'oldest_visit' };

export function Households() {
  const { records } = useApp();
  const [settings, setSettings] = useState(remembered);
  const [shown, setShown] = useState(PAGE);
  const update = (patch) => {
    remembered = { ...settings, ...patch };
    setSettings(remembered);
    setShown(PAGE);
  };
  const toggleTag = (tag) =>
    update({ tags: settings.tags.includes(tag) ? settings.tags.filter((x) => x !== tag) : [...settings.tags, tag] });

  const last = lastVisits(records.views('visit'));
  const list = records
    .views('household')
    .filter((v) => matches(v.record, settings.query.trim()) && settings.tags.every((tag) => v.record.tags?.[tag]))
    .sort((a, b) => SORTS[settings.sort](a, b, last));

  return html`
    <h1 class="page-title">${t('households_title')}</h1>
    <div class="filters">
      <input
        type="search"
        class="search"
        name="search"
        placeholder=${t('search_placeholder')}
        aria-label=${t('search_placeholder')}
        value=${settings.query}
        onInput=${(e) => update({ query: e.target.value })}
      />
      <div class="chips" role="group" aria-label=${t('tags')}>
        ${TAGS.map(
          (tag) => html`<button
            type="button"
            class=${`chip ${settings.tags.includes(tag) ? 'chip-on' : ''}`}
            aria-pressed=${settings.tags.includes(tag)}
            onClick=${() => toggleTag(tag)}
          >
            ${label('tag', tag)}
          </button>`,
        )}
      </div>
      <div class="list-head">
        <span class="muted" data-testid="households-count">${t('households_count', { n: list.length })}</span>
        <label class="sort">
          ${t('sort_by')}
          <select value=${settings.sort} onChange=${(e) => update({ sort: e.target.value })}>
            ${Object.keys(SORTS).map((key) => html`<option value=${key}>${t(`sort_${key}`)}</option>`)}
          </select>
        </label>
      </div>
    </div>
    ${list.length === 0
      ? html`<p class="muted">${t('households_none')}</p>`
      : html`<ul class="list card">
          ${list.slice(0, shown).map((v) => html`<${HouseholdRow} key=${v.id} view=${v} lastVisit=${last.get(v.id)} />`)}
        </ul>`}
    ${list.length > shown &&
    html`<button type="button" class="secondary wide" onClick=${() => setShown(shown + PAGE)}>${t('show_more')}</button>`}
  `;
}
