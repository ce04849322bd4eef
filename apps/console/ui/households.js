// Households: the searchable list (GET /v1/households) with exports, and
// a one-stop page of one household: members, tags, special-population
// categories (only when the API gives them to the role), attached photos
// and files, visits (with how many photos each has), cases, the history
// of changes (who changed which field, when, from which
// device) and open conflicts, which staff resolve here.

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
  fmtDate,
  dateToMs,
  errorText,
  addressText,
  ErrorBox,
  Loading,
  PageHead,
  TagList,
  EnumSelect,
  UnitSelect,
  ExportButtons,
  MoreRows,
  TAGS,
  SPECIAL,
  RESIDENCES,
} from './common.js';
import { Attachments } from './attachments.js';
import { CaseTable } from './desk.js';

const SORTS = [
  ['id', 'sort_id'],
  ['address', 'sort_address'],
  ['-member_count', 'sort_members'],
];

export function Households() {
  const { route, setParams } = useApp();
  const p = route.params;
  const filters = {
    q: p.get('q') ?? '',
    tag: p.get('tag') ?? '',
    residence: p.get('residence') ?? '',
    not_visited_since: p.get('not_visited_since') ?? '',
    org_unit: p.get('org_unit') ?? '',
    sort: p.get('sort') ?? '',
  };
  const [q, setQ] = useState(filters.q);
  const set = (patch) => setParams({ ...filters, ...patch });
  const apiParams = {
    q: filters.q || undefined,
    tag: filters.tag || undefined,
    residence: filters.residence || undefined,
    not_visited_since: dateToMs(filters.not_visited_since) ?? undefined,
    org_unit: filters.org_unit || undefined,
    sort: filters.sort || undefined,
  };
  const list = usePagedList('/v1/households', apiParams);
  // The API gives `special` only to roles that receive special-population
  // details: offer those categories as filters only then.
  const sensitive = list.items.some((row) => Array.isArray(row.special)) || SPECIAL.includes(filters.tag);

  return html`<div class="households">
    <${PageHead} title=${t('households_title')}>
      <${ExportButtons} path="/v1/households" params=${apiParams} name=${t('households_title')} />
    <//>
    <form
      class="filters"
      onSubmit=${(e) => {
        e.preventDefault();
        set({ q: q.trim() });
      }}
    >
      <label class="field wide">
        <span>${t('search')}</span>
        <input
          type="search"
          name="q"
          placeholder=${t('search_placeholder')}
          value=${q}
          onInput=${(e) => setQ(e.currentTarget.value)}
          data-testid="household-search"
        />
      </label>
      <button type="submit" class="primary">${t('search')}</button>
      <${UnitSelect} value=${filters.org_unit} onChange=${(v) => set({ org_unit: v })} />
      <${EnumSelect}
        labelText=${t('tag')}
        value=${filters.tag}
        values=${sensitive ? [...TAGS, ...SPECIAL] : TAGS}
        group="tag"
        onChange=${(v) => set({ tag: v })}
      />
      <${EnumSelect}
        labelText=${t('residence')}
        value=${filters.residence}
        values=${RESIDENCES}
        group="residence"
        onChange=${(v) => set({ residence: v })}
      />
      <label class="field">
        <span>${t('not_visited_since')}</span>
        <input
          type="date"
          value=${filters.not_visited_since}
          onChange=${(e) => set({ not_visited_since: e.currentTarget.value })}
        />
      </label>
      <label class="field">
        <span>${t('sort')}</span>
        <select value=${filters.sort} onChange=${(e) => set({ sort: e.currentTarget.value })}>
          ${SORTS.map(([value, key]) => html`<option value=${value === 'id' ? '' : value}>${t(key)}</option>`)}
        </select>
      </label>
      <button
        type="button"
        class="link-button"
        onClick=${() => {
          setQ('');
          setParams({});
        }}
      >
        ${t('filter_clear')}
      </button>
    </form>
    <${ErrorBox} error=${list.error} onRetry=${list.reload} />
    ${list.items.length === 0 && !list.loading
      ? html`<p class="muted empty" data-testid="no-rows">${t('empty')}</p>`
      : html`<table class="data" data-testid="household-table">
          <thead>
            <tr>
              <th>${t('col_address')}</th>
              <th>${t('col_head')}</th>
              <th class="num">${t('col_members')}</th>
              <th>${t('col_tags')}</th>
              ${sensitive && html`<th>${t('col_special')}</th>`}
              <th>${t('col_last_visit')}</th>
              <th>${t('col_org_unit')}</th>
            </tr>
          </thead>
          <tbody>
            ${list.items.map(
              (h) => html`<tr data-household=${h.id}>
                <td><a href=${`#/household/${h.id}`}>${addressText(h)}</a></td>
                <td>${h.head_name}</td>
                <td class="num">${h.member_count}</td>
                <td><${TagList} tags=${h.tags} /></td>
                ${sensitive && html`<td><${TagList} tags=${h.special ?? []} kind="chip-special" /></td>`}
                <td>${h.last_visited_at ? fmtDate(h.last_visited_at) : html`<span class="warn">${t('never_visited')}</span>`}</td>
                <td>${unitName(h.org_unit)}</td>
              </tr>`,
            )}
          </tbody>
        </table>`}
    ${list.loading && html`<${Loading} />`}
    <${MoreRows} list=${list} />
  </div>`;
}

// ---- one household ----------------------------------------------------------------

/**
 * The household's list row (tags, special-population categories, last
 * visit): the list has no id filter, so search its grid for a member's ID
 * number (or the head's name) and pick the row with this id.
 */
async function findRow(session, id, record) {
  const members = record.members ?? [];
  const head = members.find((m) => m.id === record.head) ?? members[0];
  const probes = [
    ...members.map((m) => m.id_number).filter(Boolean),
    head?.name,
    record.address?.room,
  ].filter(Boolean);
  for (const q of probes.slice(0, 3)) {
    const page = await session.get('/v1/households', { org_unit: record.org_unit, q, limit: 1000 });
    const row = page.items.find((r) => r.id === id);
    if (row) return row;
  }
  return null;
}

async function settle(promise) {
  try {
    return { data: await promise };
  } catch (error) {
    return { error };
  }
}

async function loadHousehold(session, id) {
  const enc = encodeURIComponent(id);
  const record = await session.get(`/v1/records/${enc}`);
  const [row, visits, cases, history, conflicts] = await Promise.all([
    settle(findRow(session, id, record.record)),
    settle(session.get('/v1/visits', { household: id, sort: '-visited_at', limit: 200 })),
    settle(session.get('/v1/cases', { household: id, sort: '-reported_at', limit: 200 })),
    settle(session.get(`/v1/records/${enc}/history`)),
    settle(session.get(`/v1/records/${enc}/conflicts`)),
  ]);
  for (const entry of history.data ?? []) {
    if (entry.user_id && entry.user_name) directory.rememberUser(entry.user_id, { display_name: entry.user_name });
  }
  return { record, row, visits, cases, history, conflicts };
}

function Members({ household }) {
  const members = household.members ?? [];
  return html`<table class="data" data-testid="members">
    <thead>
      <tr>
        <th>${t('m_name')}</th>
        <th>${t('m_relation')}</th>
        <th>${t('m_sex')}</th>
        <th>${t('m_birth')}</th>
        <th>${t('m_id_number')}</th>
        <th>${t('m_phone')}</th>
        <th>${t('m_residence')}</th>
      </tr>
    </thead>
    <tbody>
      ${members.map(
        (m) => html`<tr data-member=${m.id}>
          <td>${m.name}${m.id === household.head && html` <span class="chip">${label('relation', 'Head')}</span>`}</td>
          <td>${label('relation', m.relation)}</td>
          <td>${label('sex', m.sex)}</td>
          <td>${m.birth_date || t('dash')}</td>
          <td class="mono">${m.id_number || t('dash')}</td>
          <td class="mono" data-testid="member-phone">${m.phone || t('dash')}</td>
          <td>${label('residence', m.residence)}</td>
        </tr>`,
      )}
    </tbody>
  </table>`;
}

function Section({ title, part, children, testid, count, actions }) {
  return html`<section class="card" data-testid=${testid}>
    <div class="card-head">
      <h2>${title}${count !== undefined && html` <span class="count">${count}</span>`}</h2>
      ${actions}
    </div>
    ${part?.error ? html`<${ErrorBox} error=${part.error} />` : children}
  </section>`;
}

function Visits({ rows }) {
  if (!rows.length) return html`<p class="muted">${t('empty')}</p>`;
  return html`<table class="data" data-testid="visits">
    <thead>
      <tr><th>${t('v_when')}</th><th>${t('v_worker')}</th><th>${t('v_findings')}</th><th>${t('v_follow_up')}</th></tr>
    </thead>
    <tbody>
      ${rows.map(
        (v) => html`<tr data-visit=${v.id}>
          <td>${fmtDateTime(v.visited_at)}</td>
          <td>${userName(v.worker, { short: true })}</td>
          <td class="findings">
            ${v.findings}
            ${v.attachments > 0 &&
            html` <span class="badge badge-grey" title=${t('attachments_n', { n: v.attachments })}
                >${t('attachments_mark', { n: v.attachments })}</span
              >`}
          </td>
          <td>${v.follow_up ? html`<span class="badge badge-amber">${t('yes')}</span>` : t('no')}</td>
        </tr>`,
      )}
    </tbody>
  </table>`;
}

function History({ rows }) {
  if (!rows.length) return html`<p class="muted">${t('empty')}</p>`;
  return html`<table class="data" data-testid="history">
    <thead>
      <tr>
        <th>${t('h_when')}</th>
        <th>${t('h_received')}</th>
        <th>${t('h_who')}</th>
        <th>${t('h_device')}</th>
        <th>${t('h_fields')}</th>
      </tr>
    </thead>
    <tbody>
      ${[...rows].reverse().map(
        (h) => html`<tr data-hash=${h.hash}>
          <td>${fmtDateTime(h.made_at)}</td>
          <td>${h.received_at ? fmtDateTime(h.received_at) : html`<span class="muted">${t('h_compacted')}</span>`}</td>
          <td>${h.user_name || userName(h.user_id)}</td>
          <td class="mono" title=${h.device_id}>${deviceText(h.device_id)}</td>
          <td class="fields">${h.fields.map((f) => html`<code>${f}</code> `)}</td>
        </tr>`,
      )}
    </tbody>
  </table>`;
}

function deviceText(id) {
  if (!id) return t('dash');
  const known = directory.devices?.get(id);
  return known ? known.name : `${id.slice(0, 12)}…`;
}

function valueText(value) {
  if (value === null || value === undefined) return 'null';
  if (typeof value === 'object') return JSON.stringify(value);
  return String(value);
}

function Conflict({ conflict, recordId, onResolved }) {
  const { session, role, toast } = useApp();
  const scalar = conflict.values.every((v) => v.value === null || typeof v.value !== 'object');
  const [choice, setChoice] = useState(null);
  const [custom, setCustom] = useState('');
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState(null);
  const mayResolve = role !== 'supervisor' && scalar;
  const resolve = async (event) => {
    event.preventDefault();
    const value = custom.trim() !== '' ? custom.trim() : choice !== null ? conflict.values[choice].value : undefined;
    if (value === undefined) return;
    setBusy(true);
    setError(null);
    try {
      const remaining = await session.post(`/v1/records/${encodeURIComponent(recordId)}/conflicts/resolve`, {
        path: conflict.path,
        value,
      });
      toast(t('conflict_resolved'));
      onResolved(remaining);
    } catch (e) {
      setError(e);
    } finally {
      setBusy(false);
    }
  };
  return html`<form class="conflict" data-testid="conflict" data-path=${conflict.path} onSubmit=${resolve}>
    <div><code>${conflict.path}</code> <span class="muted">${scalar ? t('conflict_explain') : t('conflict_item')}</span></div>
    <ul>
      ${conflict.values.map(
        (v, i) => html`<li>
          <label>
            ${mayResolve &&
            html`<input type="radio" name=${`c-${conflict.path}`} checked=${choice === i} onChange=${() => setChoice(i)} />`}
            <strong class="mono">${valueText(v.value)}</strong>
            <span class="muted">${t('conflict_by', { who: userName(v.user_id) || v.actor, device: deviceText(v.device_id) })}</span>
            ${v.shown && html`<span class="badge badge-grey">${t('conflict_shown')}</span>`}
          </label>
        </li>`,
      )}
    </ul>
    ${mayResolve &&
    html`<div class="form-row">
      <label class="field">
        <span>${t('conflict_custom')}</span>
        <input value=${custom} onInput=${(e) => setCustom(e.currentTarget.value)} />
      </label>
      <button type="submit" class="primary" disabled=${busy || (choice === null && custom.trim() === '')}>
        ${t('conflict_resolve')}
      </button>
    </div>`}
    ${error && html`<div class="error-box" role="alert">${t('refused', { message: errorText(error) })}</div>`}
  </form>`;
}

export function HouseholdPage({ id }) {
  const { session } = useApp();
  const load = useLoad(() => loadHousehold(session, id), [id]);
  if (load.loading && !load.data) return html`<${Loading} />`;
  if (load.error) {
    return load.error.status === 404
      ? html`<p class="error-box" role="alert">${t('household_not_found')}</p>`
      : html`<${ErrorBox} error=${load.error} onRetry=${load.reload} />`;
  }
  const { record, row, visits, cases, history, conflicts } = load.data;
  const h = record.record;
  const head = h.members?.find((m) => m.id === h.head) ?? h.members?.[0];
  const tags = row.data?.tags ?? Object.keys(h.tags ?? {}).filter((k) => h.tags[k]);
  const special = row.data?.special;
  const onResolved = () => load.reload();
  return html`<div class="household-page" data-household=${id}>
    <p><a href="#/households">← ${t('households_title')}</a></p>
    <${PageHead}
      title=${`${addressText(h)}${head ? ` · ${head.name}` : ''}`}
      sub=${`${unitName(h.org_unit)} · ${id}`}
    />
    <${Section} title=${t('members')} testid="members-card" count=${h.members?.length ?? 0}>
      <${Members} household=${h} />
      ${h.notes && html`<h3>${t('notes')}</h3><p>${h.notes}</p>`}
    <//>
    <div class="grid-2">
      <div>
        <${Section} title=${t('tags_title')} testid="tags-card">
          <${TagList} tags=${tags} />
        <//>
        ${Array.isArray(special) &&
        html`<section class="card sensitive" data-testid="special">
          <h2>${t('special_title')}</h2>
          <p class="muted small">${t('special_note')}</p>
          ${special.length
            ? html`<${TagList} tags=${special} kind="chip-special" />`
            : html`<span class="muted">${t('none')}</span>`}
        </section>`}
      </div>
      <${Section} title=${t('conflicts_title')} testid="conflicts" part=${conflicts}>
        ${conflicts.data?.length
          ? conflicts.data.map(
              (c) => html`<${Conflict} key=${c.path} conflict=${c} recordId=${id} onResolved=${onResolved} />`,
            )
          : html`<p class="muted">${t('conflicts_none')}</p>`}
      <//>
    </div>
    ${h.attachments?.length > 0 &&
    html`<${Section} title=${t('attachments')} testid="household-attachments" count=${h.attachments.length}>
      <${Attachments} attachments=${h.attachments} />
    <//>`}
    <${Section}
      title=${t('visits_title')}
      part=${visits}
      testid="visits-card"
      count=${visits.data?.items.length}
      actions=${html`<${ExportButtons}
        path="/v1/visits"
        params=${{ household: id }}
        name=${`${t('visits_title')}-${addressText(h)}`}
      />`}
    >
      <${Visits} rows=${visits.data?.items ?? []} />
    <//>
    <${Section}
      title=${t('cases_of_household')}
      part=${cases}
      testid="cases-card"
      count=${cases.data?.items.length}
      actions=${html`<${ExportButtons}
        path="/v1/cases"
        params=${{ household: id }}
        name=${`${t('cases_of_household')}-${addressText(h)}`}
      />`}
    >
      <${CaseTable} rows=${cases.data?.items ?? []} compact=${true} />
    <//>
    <${Section} title=${t('history_title')} part=${history} testid="history-card" count=${history.data?.length}>
      <${History} rows=${history.data ?? []} />
    <//>
  </div>`;
}
