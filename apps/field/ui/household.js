// A household: its members, tags, visits and cases; editing it and its members.

import { useState } from '../vendor/preact-htm.js';
import { t, label } from '../i18n.js';
import {
  html,
  failureText,
  useApp,
  fmtDateTime,
  addressText,
  headOf,
  userLabel,
  unitLabel,
  copy,
  applyEdits,
  newItemId,
  RecordState,
  StateDot,
  Conflicts,
  Field,
  EnumSelect,
  ErrorBox,
  ScreenTitle,
  TAGS,
  SEXES,
  RELATIONS,
  RESIDENCES,
} from './common.js';
import { CaseRow } from './cases.js';
import { Photos, PhotoList } from './photos.js';

/** Names a conflicting field of a household: "张伟 · 电话" for members/m2/phone. */
function describePath(household) {
  return (path) => {
    const parts = String(path).split('/').filter(Boolean);
    const words = [];
    for (let i = 0; i < parts.length; i++) {
      const part = parts[i];
      if (part === 'members' && i + 1 < parts.length) {
        const key = parts[++i];
        const member = /^\d+$/.test(key) ? household.members[Number(key)] : household.members.find((m) => m.id === key);
        words.push(member ? member.name : key);
      } else if (part === 'tags' && i + 1 < parts.length) {
        words.push(label('tag', parts[++i]));
      } else {
        words.push(t(part));
      }
    }
    return words.join(' · ');
  };
}

function Member({ householdId, member, isHead }) {
  const facts = [
    label('relation', member.relation) + (isHead && member.relation !== 'Head' ? ` · ${t('head')}` : ''),
    label('sex', member.sex),
    member.birth_date,
    label('residence', member.residence),
  ].filter(Boolean);
  return html`<li class="member" data-member=${member.id}>
    <div class="member-head">
      <strong>${member.name || '—'}</strong>
      <a class="small-button" href=${`#/household/${householdId}/member/${encodeURIComponent(member.id)}`}>${t('edit')}</a>
    </div>
    <div class="muted">${facts.join(' · ')}</div>
    <div class="member-line">
      <span class="muted">${t('phone')}</span>
      <span data-testid="member-phone">${member.phone ? html`<a href=${`tel:${member.phone}`}>${member.phone}</a>` : '—'}</span>
    </div>
    <div class="member-line">
      <span class="muted">${t('id_number')}</span>
      <span class="mono">${member.id_number || '—'}</span>
    </div>
  </li>`;
}

export function HouseholdPage({ id }) {
  const { records, me } = useApp();
  const view = records.view(id);
  if (!view) {
    return html`<${ScreenTitle} title=${t('households_title')} back="#/households" />
      <p class="card muted">${t('household_unknown')}</p>`;
  }
  const h = view.record;
  const visits = records
    .views('visit')
    .filter((v) => v.record.household === id)
    .sort((a, b) => b.record.visited_at - a.record.visited_at);
  const cases = records.views('case').filter((c) => c.record.household === id);
  // Special-population details reach only the roles allowed to see them.
  const sensitive = records.views('sensitive').filter((v) => v.record.household === id);
  const tags = TAGS.filter((tag) => h.tags?.[tag]);

  return html`
    <${ScreenTitle} title=${addressText(h.address)} back="#/households" />
    <section class="card">
      <${RecordState} view=${view} />
      <dl class="facts">
        <dt>${t('head')}</dt>
        <dd>${headOf(h)?.name ?? '—'}${h.members.length > 1 ? ` · ${t('members_n', { n: h.members.length })}` : ''}</dd>
        <dt>${t('grid')}</dt>
        <dd>${unitLabel(h.org_unit, me)}</dd>
        <dt>${t('tags')}</dt>
        <dd>${tags.length ? tags.map((tag) => html`<span class="tag">${label('tag', tag)}</span> `) : '—'}</dd>
        <dt>${t('notes')}</dt>
        <dd class="pre">${h.notes || '—'}</dd>
      </dl>
      <div class="actions">
        <a class="button primary" href=${`#/household/${id}/visit`}>${t('record_visit')}</a>
        <a class="button secondary" href=${`#/report/${id}`}>${t('report_case')}</a>
        <a class="button secondary" href=${`#/household/${id}/edit`}>${t('edit')}</a>
      </div>
    </section>
    <${Conflicts} view=${view} describe=${describePath(h)} />
    ${sensitive.map(
      (v) => html`<section class="card sensitive">
        <h2>${t('sensitive')}</h2>
        <div>
          ${Object.keys(v.record.categories)
            .filter((c) => v.record.categories[c])
            .map((c) => html`<span class="tag tag-warn">${label('sensitive', c)}</span> `)}
        </div>
        ${v.record.notes && html`<p class="pre">${v.record.notes}</p>`}
      </section>`,
    )}
    <section class="card">
      <h2>${t('members')} <span class="count">${h.members.length}</span></h2>
      <ul class="members">
        ${h.members.map(
          (m) => html`<${Member} key=${m.id} householdId=${id} member=${m} isHead=${m.id === h.head} />`,
        )}
      </ul>
      <a class="button secondary wide" href=${`#/household/${id}/member/new`}>${t('add_member')}</a>
    </section>
    <${Photos} id=${id} attachments=${h.attachments} />
    <section class="card">
      <h2>${t('visits')} <span class="count">${visits.length}</span></h2>
      ${visits.length === 0
        ? html`<p class="muted">${t('visits_none')}</p>`
        : html`<ul class="list">
            ${visits.map(
              (v) => html`<li class="visit" data-testid="visit">
                <div class="row-title">
                  <${StateDot} view=${v} />${fmtDateTime(v.record.visited_at)} · ${userLabel(v.record.worker, me)}
                  ${v.record.follow_up && html`<span class="tag tag-warn">${t('follow_up')}</span>`}
                </div>
                <div class="pre">${v.record.findings}</div>
                ${v.record.location && html`<div class="muted">${t('location')}: ${v.record.location}</div>`}
                <${PhotoList} attachments=${v.record.attachments} />
              </li>`,
            )}
          </ul>`}
    </section>
    <section class="card">
      <h2>${t('cases_of_household')} <span class="count">${cases.length}</span></h2>
      ${cases.length === 0
        ? html`<p class="muted">${t('cases_none')}</p>`
        : html`<ul class="list">
            ${cases.map((c) => html`<${CaseRow} view=${c} />`)}
          </ul>`}
    </section>
  `;
}

/**
 * Saves `record` as the new fields of record `id`; returns whether it was
 * saved. Shows the refusal's reason through `setError`.
 */
async function save(app, id, record, setError) {
  try {
    const changed = await app.records.change((r) => r.update(id, JSON.stringify(record)));
    if (changed) app.saved();
    else app.toast(t('no_changes'));
    return true;
  } catch (error) {
    setError(failureText(error));
    return false;
  }
}

/** The org units a household may be put in: the user's area, and its own. */
function unitChoices(me, current) {
  const units = new Set(me.area ?? []);
  units.add(current);
  return [...units].sort();
}

export function HouseholdForm({ id }) {
  const app = useApp();
  const view = app.records.view(id);
  const [original] = useState(() => (view ? copy(view.record) : null));
  const [draft, setDraft] = useState(original);
  const [error, setError] = useState(null);
  const [busy, setBusy] = useState(false);
  if (!view) return html`<p class="card muted">${t('household_unknown')}</p>`;

  const set = (patch) => setDraft({ ...draft, ...patch });
  const setAddress = (key, value) => set({ address: { ...draft.address, [key]: value } });
  const setTag = (tag, on) => {
    const tags = { ...draft.tags };
    if (on) tags[tag] = true;
    else delete tags[tag];
    set({ tags });
  };

  async function submit(e) {
    e.preventDefault();
    setBusy(true);
    setError(null);
    const record = applyEdits(copy(app.records.view(id).record), original, draft);
    if (await save(app, id, record, setError)) app.navigate(`/household/${id}`);
    setBusy(false);
  }

  return html`
    <${ScreenTitle} title=${t('edit_household')} back=${`#/household/${id}`} />
    <form class="form card" onSubmit=${submit}>
      <div class="row3">
        ${['building', 'unit', 'room'].map(
          (key) => html`<${Field} name=${t(key)}>
            <input name=${key} value=${draft.address[key]} onInput=${(e) => setAddress(key, e.target.value)} />
          <//>`,
        )}
      </div>
      <${Field} name=${t('grid')}>
        <select name="org_unit" value=${draft.org_unit} onChange=${(e) => set({ org_unit: e.target.value })}>
          ${unitChoices(app.me, view.record.org_unit).map((unit) => html`<option value=${unit}>${unitLabel(unit, app.me)}</option>`)}
        </select>
      <//>
      <${Field} name=${t('head')}>
        <select name="head" value=${draft.head} onChange=${(e) => set({ head: e.target.value })}>
          <option value="">—</option>
          ${draft.members.map((m) => html`<option value=${m.id}>${m.name}</option>`)}
        </select>
      <//>
      <fieldset class="checks">
        <legend>${t('tags')}</legend>
        ${TAGS.map(
          (tag) => html`<label class="check">
            <input type="checkbox" checked=${!!draft.tags?.[tag]} onChange=${(e) => setTag(tag, e.target.checked)} />
            ${label('tag', tag)}
          </label>`,
        )}
      </fieldset>
      <${Field} name=${t('notes')}>
        <textarea name="notes" rows="4" value=${draft.notes} onInput=${(e) => set({ notes: e.target.value })} />
      <//>
      <${ErrorBox} error=${error} />
      <div class="actions">
        <button class="primary" type="submit" disabled=${busy}>${t('save')}</button>
        <a class="button secondary" href=${`#/household/${id}`}>${t('cancel')}</a>
      </div>
    </form>
  `;
}

const EMPTY_MEMBER = {
  name: '',
  id_number: '',
  sex: 'Unknown',
  birth_date: '',
  relation: 'Other',
  phone: '',
  residence: 'Registered',
};

/** Edits member `memberId` of household `id`, or adds one when it is "new". */
export function MemberForm({ id, memberId }) {
  const app = useApp();
  const view = app.records.view(id);
  const adding = memberId === 'new';
  const [original] = useState(() => {
    if (!view) return null;
    if (adding) return { ...EMPTY_MEMBER, id: newItemId('m') };
    const found = view.record.members.find((m) => m.id === memberId);
    return found ? { ...found } : null;
  });
  const [member, setMember] = useState(original);
  const [error, setError] = useState(null);
  const [busy, setBusy] = useState(false);
  if (!view || !member) return html`<p class="card muted">${t('household_unknown')}</p>`;

  const set = (key) => (value) => setMember({ ...member, [key]: value });

  async function submit(e) {
    e.preventDefault();
    if (!member.name.trim()) {
      setError(t('required', { field: t('name') }));
      return;
    }
    setBusy(true);
    setError(null);
    const record = copy(app.records.view(id).record);
    const latest = record.members.find((m) => m.id === member.id);
    if (latest) applyEdits(latest, original, member);
    else record.members.push(member);
    if (await save(app, id, record, setError)) app.navigate(`/household/${id}`);
    setBusy(false);
  }

  return html`
    <${ScreenTitle} title=${adding ? t('add_member') : t('edit_member')} back=${`#/household/${id}`} />
    <form class="form card" onSubmit=${submit}>
      <${Field} name=${t('name')}>
        <input name="name" value=${member.name} onInput=${(e) => set('name')(e.target.value)} />
      <//>
      <${Field} name=${t('phone')}>
        <input
          name="phone"
          type="tel"
          inputmode="tel"
          value=${member.phone}
          onInput=${(e) => set('phone')(e.target.value)}
        />
      <//>
      <${Field} name=${t('relation')}>
        <${EnumSelect} name="relation" group="relation" values=${RELATIONS} value=${member.relation} onChange=${set('relation')} />
      <//>
      <div class="row2">
        <${Field} name=${t('sex')}>
          <${EnumSelect} name="sex" group="sex" values=${SEXES} value=${member.sex} onChange=${set('sex')} />
        <//>
        <${Field} name=${t('birth_date')}>
          <input
            name="birth_date"
            type="date"
            value=${member.birth_date}
            onInput=${(e) => set('birth_date')(e.target.value)}
          />
        <//>
      </div>
      <${Field} name=${t('residence')}>
        <${EnumSelect}
          name="residence"
          group="residence"
          values=${RESIDENCES}
          value=${member.residence}
          onChange=${set('residence')}
        />
      <//>
      <${Field} name=${t('id_number')}>
        <input name="id_number" value=${member.id_number} onInput=${(e) => set('id_number')(e.target.value)} />
      <//>
      <${ErrorBox} error=${error} />
      <div class="actions">
        <button class="primary" type="submit" disabled=${busy}>${t('save')}</button>
        <a class="button secondary" href=${`#/household/${id}`}>${t('cancel')}</a>
      </div>
    </form>
  `;
}
