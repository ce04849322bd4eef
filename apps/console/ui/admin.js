// Administration (admins, within their area): org units (list, create,
// move), users and roles (list, create, change role, reset password),
// devices (revoke a lost phone), changes held in quarantine (approve,
// discard) and the audit log.

import { t, label } from '../i18n.js';
import { saveBlob } from '../api.js';
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
  errorText,
  ErrorBox,
  Loading,
  PageHead,
  MoreRows,
  toCsv,
  ROLES,
  KINDS,
} from './common.js';

/** Runs an admin action: toast on success, the server's message on refusal. */
function useAction() {
  const { toast } = useApp();
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState(null);
  const run = async (action, done) => {
    setBusy(true);
    setError(null);
    try {
      const result = await action();
      if (done) toast(done(result));
      return result;
    } catch (e) {
      setError(e);
      return undefined;
    } finally {
      setBusy(false);
    }
  };
  return { busy, error, run, clear: () => setError(null) };
}

function ActionError({ error }) {
  if (!error) return null;
  return html`<div class="error-box" role="alert" data-testid="action-error" data-code=${error.code ?? ''}>
    ${t('refused', { message: errorText(error) })}
  </div>`;
}

// ---- org units -------------------------------------------------------------------

function depth(unit) {
  return unit.path.split('/').filter(Boolean).length - 1;
}

export function OrgUnits() {
  const { session } = useApp();
  const load = useLoad(() => session.get('/v1/admin/org-units'), []);
  const action = useAction();
  const [form, setForm] = useState({ id: '', name: '', kind: 'grid', parent: '' });
  const [moving, setMoving] = useState({});
  const units = load.data ?? [];
  for (const u of units) directory.rememberUnit(u.id, { name: u.name, kind: u.kind, parent: u.parent_id });

  const create = async (event) => {
    event.preventDefault();
    const made = await action.run(
      () => session.post('/v1/admin/org-units', { ...form, parent: form.parent || null }),
      (u) => t('unit_created', { name: u.name }),
    );
    if (made) {
      setForm({ id: '', name: '', kind: form.kind, parent: form.parent });
      load.reload();
    }
  };
  const move = async (unit) => {
    const parent = moving[unit.id];
    if (!parent) return;
    const moved = await action.run(
      () => session.post(`/v1/admin/org-units/${encodeURIComponent(unit.id)}/move`, { parent }),
      (u) => t('unit_moved', { name: u.name }),
    );
    if (moved) {
      setMoving({ ...moving, [unit.id]: '' });
      load.reload();
    }
  };

  return html`<div class="admin-units">
    <${PageHead} title=${t('units_title')} />
    <section class="card">
      <h2>${t('unit_create')}</h2>
      <form class="form-row" onSubmit=${create} data-testid="unit-form">
        <label class="field">
          <span>${t('unit_parent')}</span>
          <select required value=${form.parent} onChange=${(e) => setForm({ ...form, parent: e.currentTarget.value })}>
            <option value="">—</option>
            ${units.map((u) => html`<option value=${u.id}>${'\u3000'.repeat(depth(u))}${u.name}（${u.id}）</option>`)}
          </select>
        </label>
        <label class="field">
          <span>${t('unit_id')}</span>
          <input
            required
            pattern="[a-z0-9.\\-]{1,64}"
            title=${t('unit_id_hint')}
            placeholder=${t('unit_id_hint')}
            value=${form.id}
            onInput=${(e) => setForm({ ...form, id: e.currentTarget.value.trim() })}
          />
        </label>
        <label class="field">
          <span>${t('unit_name')}</span>
          <input required value=${form.name} onInput=${(e) => setForm({ ...form, name: e.currentTarget.value })} />
        </label>
        <label class="field">
          <span>${t('unit_kind')}</span>
          <select value=${form.kind} onChange=${(e) => setForm({ ...form, kind: e.currentTarget.value })}>
            ${KINDS.map((k) => html`<option value=${k}>${t(`kind_${k}`)}</option>`)}
          </select>
        </label>
        <button type="submit" class="primary" disabled=${action.busy}>${t('unit_create')}</button>
      </form>
      <${ActionError} error=${action.error} />
    </section>
    <${ErrorBox} error=${load.error} onRetry=${load.reload} />
    ${load.loading && !load.data && html`<${Loading} />`}
    <table class="data" data-testid="unit-table">
      <thead>
        <tr>
          <th>${t('unit_name')}</th>
          <th>${t('unit_id')}</th>
          <th>${t('unit_kind')}</th>
          <th>${t('unit_parent')}</th>
          <th>${t('unit_move_to')}</th>
        </tr>
      </thead>
      <tbody>
        ${units.map(
          (u) => html`<tr data-unit=${u.id}>
            <td style=${`padding-left: ${12 + depth(u) * 20}px`}>${u.name}</td>
            <td class="mono">${u.id}</td>
            <td>${t(`kind_${u.kind}`)}</td>
            <td>${u.parent_id ? unitName(u.parent_id) : t('dash')}</td>
            <td>
              ${u.parent_id &&
              html`<span class="inline-form">
                <select
                  value=${moving[u.id] ?? ''}
                  onChange=${(e) => setMoving({ ...moving, [u.id]: e.currentTarget.value })}
                  aria-label=${t('unit_move_to')}
                >
                  <option value="">—</option>
                  ${units
                    .filter((p) => !p.path.startsWith(u.path) && p.id !== u.parent_id)
                    .map((p) => html`<option value=${p.id}>${p.name}（${p.id}）</option>`)}
                </select>
                <button type="button" class="secondary small" disabled=${!moving[u.id] || action.busy} onClick=${() => move(u)}>
                  ${t('unit_move')}
                </button>
              </span>`}
            </td>
          </tr>`,
        )}
      </tbody>
    </table>
  </div>`;
}

// ---- users ---------------------------------------------------------------------------

const splitUnits = (text) =>
  text
    .split(/[,，\s]+/)
    .map((s) => s.trim())
    .filter(Boolean);

function UnitsDatalist() {
  const { me } = useApp();
  return html`<datalist id="area-units">
    ${(me.area ?? []).map((id) => html`<option value=${id}>${unitName(id)}</option>`)}
  </datalist>`;
}

function UserRow({ user, onChanged }) {
  const { session } = useApp();
  const action = useAction();
  const [mode, setMode] = useState(null);
  const [role, setRole] = useState(user.role);
  const [units, setUnits] = useState(user.org_units.join(', '));
  const [password, setPassword] = useState('');
  const saveRole = async (event) => {
    event.preventDefault();
    const done = await action.run(
      () => session.put(`/v1/admin/users/${encodeURIComponent(user.id)}/role`, { role, org_units: splitUnits(units) }),
      () => t('user_role_saved', { name: user.username }),
    );
    if (done) {
      setMode(null);
      onChanged();
    }
  };
  const savePassword = async (event) => {
    event.preventDefault();
    const done = await action.run(
      () => session.put(`/v1/admin/users/${encodeURIComponent(user.id)}/password`, { password }),
      () => t('user_password_saved', { name: user.username }),
    );
    if (done) {
      setMode(null);
      setPassword('');
    }
  };
  return html`<tr data-user=${user.username}>
    <td class="mono">${user.username}</td>
    <td>${user.display_name}</td>
    <td>${label('role', user.role)}</td>
    <td>${user.org_units.map((id) => html`<span class="chip" title=${id}>${unitName(id)}</span> `)}</td>
    <td>
      ${mode === null &&
      html`<button type="button" class="link-button" onClick=${() => setMode('role')}>${t('user_set_role')}</button>
        <button type="button" class="link-button" onClick=${() => setMode('password')}>${t('user_reset_password')}</button>`}
      ${mode === 'role' &&
      html`<form class="inline-form" onSubmit=${saveRole}>
        <select value=${role} onChange=${(e) => setRole(e.currentTarget.value)} aria-label=${t('user_role')}>
          ${ROLES.map((r) => html`<option value=${r}>${label('role', r)}</option>`)}
        </select>
        <input
          value=${units}
          list="area-units"
          aria-label=${t('user_units')}
          title=${t('user_units_hint')}
          onInput=${(e) => setUnits(e.currentTarget.value)}
        />
        <button type="submit" class="primary small" disabled=${action.busy}>${t('save')}</button>
        <button type="button" class="link-button" onClick=${() => setMode(null)}>${t('cancel')}</button>
      </form>`}
      ${mode === 'password' &&
      html`<form class="inline-form" onSubmit=${savePassword}>
        <input
          type="password"
          autocomplete="new-password"
          minlength="8"
          required
          placeholder=${t('user_new_password')}
          aria-label=${t('user_new_password')}
          value=${password}
          onInput=${(e) => setPassword(e.currentTarget.value)}
        />
        <button type="submit" class="primary small" disabled=${action.busy}>${t('save')}</button>
        <button type="button" class="link-button" onClick=${() => setMode(null)}>${t('cancel')}</button>
      </form>`}
      <${ActionError} error=${action.error} />
    </td>
  </tr>`;
}

export function Users() {
  const { session } = useApp();
  const load = useLoad(() => session.get('/v1/admin/users'), []);
  const action = useAction();
  const empty = { username: '', display_name: '', password: '', role: 'grid_worker', org_units: '' };
  const [form, setForm] = useState(empty);
  const users = load.data ?? [];
  for (const u of users) directory.rememberUser(u.id, u);
  const create = async (event) => {
    event.preventDefault();
    const made = await action.run(
      () =>
        session.post('/v1/admin/users', {
          username: form.username,
          display_name: form.display_name || null,
          password: form.password,
          role: form.role,
          org_units: splitUnits(form.org_units),
        }),
      (u) => t('user_created', { name: u.username }),
    );
    if (made) {
      setForm(empty);
      load.reload();
    }
  };
  const input = (key, extra = {}) =>
    html`<input value=${form[key]} onInput=${(e) => setForm({ ...form, [key]: e.currentTarget.value })} ...${extra} />`;
  return html`<div class="admin-users">
    <${PageHead} title=${t('users_title')} />
    <${UnitsDatalist} />
    <section class="card">
      <h2>${t('user_create')}</h2>
      <form class="form-row" onSubmit=${create} data-testid="user-form">
        <label class="field"><span>${t('user_username')}</span>${input('username', { required: true })}</label>
        <label class="field"><span>${t('user_display')}</span>${input('display_name')}</label>
        <label class="field"
          ><span>${t('user_password')}</span>${input('password', {
            type: 'password',
            required: true,
            minlength: 8,
            autocomplete: 'new-password',
          })}</label
        >
        <label class="field">
          <span>${t('user_role')}</span>
          <select value=${form.role} onChange=${(e) => setForm({ ...form, role: e.currentTarget.value })}>
            ${ROLES.map((r) => html`<option value=${r}>${label('role', r)}</option>`)}
          </select>
        </label>
        <label class="field wide"
          ><span>${t('user_units')}</span>${input('org_units', { list: 'area-units', placeholder: t('user_units_hint') })}</label
        >
        <button type="submit" class="primary" disabled=${action.busy}>${t('user_create')}</button>
      </form>
      <${ActionError} error=${action.error} />
    </section>
    <${ErrorBox} error=${load.error} onRetry=${load.reload} />
    ${load.loading && !load.data && html`<${Loading} />`}
    <table class="data" data-testid="user-table">
      <thead>
        <tr>
          <th>${t('user_username')}</th>
          <th>${t('user_display')}</th>
          <th>${t('user_role')}</th>
          <th>${t('user_units')}</th>
          <th></th>
        </tr>
      </thead>
      <tbody>
        ${users.map((u) => html`<${UserRow} key=${u.id} user=${u} onChanged=${load.reload} />`)}
      </tbody>
    </table>
  </div>`;
}

// ---- devices --------------------------------------------------------------------------

export function Devices() {
  const { session, me } = useApp();
  const load = useLoad(() => session.get('/v1/devices'), []);
  const action = useAction();
  const [confirming, setConfirming] = useState(null);
  const [showRevoked, setShowRevoked] = useState(false);
  const devices = (load.data ?? []).filter((d) => showRevoked || d.revoked_at === null);
  for (const d of load.data ?? []) directory.devices.set(d.id, d);
  const revoke = async (device) => {
    const done = await action.run(
      () => session.post(`/v1/devices/${encodeURIComponent(device.id)}/revoke`),
      () => t('dev_revoked_ok', { name: device.name }),
    );
    setConfirming(null);
    if (done) load.reload();
  };
  return html`<div class="admin-devices">
    <${PageHead} title=${t('devices_title')}>
      <label class="check">
        <input type="checkbox" checked=${showRevoked} onChange=${(e) => setShowRevoked(e.currentTarget.checked)} />
        ${t('dev_show_revoked')}
      </label>
    <//>
    <${ActionError} error=${action.error} />
    <${ErrorBox} error=${load.error} onRetry=${load.reload} />
    ${load.loading && !load.data && html`<${Loading} />`}
    <table class="data" data-testid="device-table">
      <thead>
        <tr>
          <th>${t('dev_user')}</th>
          <th>${t('dev_name')}</th>
          <th>${t('dev_created')}</th>
          <th>${t('dev_revoked')}</th>
          <th></th>
        </tr>
      </thead>
      <tbody>
        ${devices.map(
          (d) => html`<tr data-device=${d.id} data-revoked=${String(d.revoked_at !== null)}>
            <td>${userName(d.user_id)}</td>
            <td>${d.name} ${d.id === me.device_id && html`<span class="chip">${t('dev_this')}</span>`}</td>
            <td>${fmtDateTime(d.created_at)}</td>
            <td data-testid="device-state">
              ${d.revoked_at === null
                ? html`<span class="badge badge-green">${t('dev_active')}</span>`
                : html`<span class="badge badge-grey">${fmtDateTime(d.revoked_at)}</span>`}
            </td>
            <td>
              ${d.revoked_at === null &&
              d.id !== me.device_id &&
              (confirming === d.id
                ? html`<span class="inline-form confirm">
                    <span>${t('dev_revoke_confirm', { user: userName(d.user_id), name: d.name })}</span>
                    <button type="button" class="danger small" disabled=${action.busy} onClick=${() => revoke(d)}>
                      ${t('confirm')}
                    </button>
                    <button type="button" class="link-button" onClick=${() => setConfirming(null)}>${t('cancel')}</button>
                  </span>`
                : html`<button type="button" class="secondary small" onClick=${() => setConfirming(d.id)}>
                    ${t('dev_revoke')}
                  </button>`)}
            </td>
          </tr>`,
        )}
      </tbody>
    </table>
  </div>`;
}

// ---- quarantine ---------------------------------------------------------------------------

function recordLink(id) {
  if (id.startsWith('hh_')) return html`<a href=${`#/household/${id}`} class="mono">${id}</a>`;
  if (id.startsWith('cs_')) return html`<a href=${`#/case/${id}`} class="mono">${id}</a>`;
  return html`<span class="mono">${id}</span>`;
}

function shortValue(value) {
  if (value === undefined) return html`<span class="muted">${t('dash')}</span>`;
  const text = typeof value === 'string' ? value : JSON.stringify(value);
  return html`<span class="mono" title=${text}>${text.length > 60 ? `${text.slice(0, 60)}…` : text}</span>`;
}

function Changes({ changes }) {
  if (!Array.isArray(changes)) return html`<span class="muted small">${t('q_changes_absent')}</span>`;
  if (!changes.length) return html`<span class="muted">${t('dash')}</span>`;
  return html`<table class="data compact changes" data-testid="q-changes">
    <thead><tr><th>${t('h_fields')}</th><th>${t('q_before')}</th><th>${t('q_after')}</th></tr></thead>
    <tbody>
      ${changes.map(
        (c) => html`<tr data-path=${c.path}>
          <td><code>${c.path}</code></td>
          <td class="before">${shortValue(c.before)}</td>
          <td class="after">${shortValue(c.after)}</td>
        </tr>`,
      )}
    </tbody>
  </table>`;
}

export function Quarantine() {
  const { session, route, setParams } = useApp();
  const status = route.params.get('status') || 'pending';
  const list = usePagedList('/v1/admin/quarantine', { status }, 100);
  const action = useAction();
  const [confirming, setConfirming] = useState(null);
  const decide = async (entry, verb) => {
    const done = await action.run(
      () => session.post(`/v1/admin/quarantine/${encodeURIComponent(entry.id)}/${verb}`),
      () => (verb === 'approve' ? t('q_approved') : t('q_discarded')),
    );
    setConfirming(null);
    if (done) list.reload();
  };
  return html`<div class="admin-quarantine">
    <${PageHead} title=${t('quarantine_title')} sub=${t('quarantine_intro')}>
      <label class="field inline">
        <span>${t('q_status')}</span>
        <select value=${status} onChange=${(e) => setParams({ status: e.currentTarget.value })}>
          ${['pending', 'approved', 'discarded'].map((s) => html`<option value=${s}>${t(`q_status_${s}`)}</option>`)}
        </select>
      </label>
    <//>
    <${ActionError} error=${action.error} />
    <${ErrorBox} error=${list.error} onRetry=${list.reload} />
    ${list.items.length === 0 && !list.loading
      ? html`<p class="muted empty" data-testid="no-rows">${t('empty')}</p>`
      : html`<table class="data quarantine" data-testid="quarantine-table">
          <thead>
            <tr>
              <th>${t('q_when')}</th>
              <th>${t('q_who')}</th>
              <th>${t('q_record')}</th>
              <th>${t('q_rule')}</th>
              <th>${t('q_changes')}</th>
              <th></th>
            </tr>
          </thead>
          <tbody>
            ${list.items.map(
              (q) => html`<tr data-entry=${q.id} data-status=${q.status}>
                <td>${fmtDateTime(q.received_at)}</td>
                <td>
                  ${userName(q.user_id)}
                  <div class="muted small mono" title=${q.device_id}>${directory.devices.get(q.device_id)?.name ?? q.device_id}</div>
                </td>
                <td>${recordLink(q.doc_id)}</td>
                <td>
                  <strong>${label('rule', q.rule)}</strong>
                  <div class="muted small">${q.message}</div>
                </td>
                <td><${Changes} changes=${q.changes} /></td>
                <td class="actions-cell">
                  ${q.status === 'pending'
                    ? confirming === q.id
                      ? html`<span class="inline-form confirm">
                          <span>${t('q_discard_confirm')}</span>
                          <button type="button" class="danger small" onClick=${() => decide(q, 'discard')}>${t('confirm')}</button>
                          <button type="button" class="link-button" onClick=${() => setConfirming(null)}>${t('cancel')}</button>
                        </span>`
                      : html`<button
                            type="button"
                            class="primary small"
                            disabled=${action.busy}
                            data-testid="q-approve"
                            onClick=${() => decide(q, 'approve')}
                          >
                            ${t('q_approve')}
                          </button>
                          <button
                            type="button"
                            class="secondary small"
                            disabled=${action.busy}
                            data-testid="q-discard"
                            onClick=${() => setConfirming(q.id)}
                          >
                            ${t('q_discard')}
                          </button>`
                    : html`<span class="badge badge-grey">${t(`q_status_${q.status}`)}</span>
                        <div class="muted small">
                          ${t('q_decided', { who: userName(q.decided_by), when: fmtDateTime(q.decided_at) })}
                        </div>`}
                </td>
              </tr>`,
            )}
          </tbody>
        </table>`}
    ${list.loading && html`<${Loading} />`}
    <${MoreRows} list=${list} />
  </div>`;
}

// ---- audit log ----------------------------------------------------------------------------

const ACTIONS = [
  'create_org_unit',
  'move_org_unit',
  'create_user',
  'set_role',
  'reset_password',
  'revoke_device',
  'quarantine',
  'quarantine_approved',
  'quarantine_discarded',
  'read_sensitive',
  'rotate_key',
];

export function Audit() {
  const { session, route, setParams } = useApp();
  const load = useLoad(() => session.get('/v1/admin/audit'), []);
  const action = route.params.get('action') ?? '';
  const rows = (load.data ?? []).filter((e) => !action || e.action === action);
  const exportCsv = () => {
    const header = [t('a_when'), t('a_who'), t('a_device'), t('a_action'), t('a_target'), t('a_detail'), t('a_units')];
    const lines = rows.map((e) => [
      fmtDateTime(e.at),
      userName(e.user_id),
      e.device_id ?? '',
      label('action', e.action),
      e.target,
      e.detail,
      e.org_units.join(' '),
    ]);
    saveBlob(new Blob([toCsv(header, lines)], { type: 'text/csv;charset=utf-8' }), `${t('audit_title')}.csv`);
  };
  return html`<div class="admin-audit">
    <${PageHead} title=${t('audit_title')} sub=${t('audit_intro')}>
      <button type="button" class="secondary" data-testid="export-csv" title=${t('export_local_note')} onClick=${exportCsv}>
        ${t('export_csv')}
      </button>
      <label class="field inline">
        <span>${t('a_filter')}</span>
        <select value=${action} onChange=${(e) => setParams({ action: e.currentTarget.value })}>
          <option value="">${t('filter_any')}</option>
          ${ACTIONS.map((a) => html`<option value=${a}>${label('action', a)}</option>`)}
        </select>
      </label>
    <//>
    <${ErrorBox} error=${load.error} onRetry=${load.reload} />
    ${load.loading && !load.data && html`<${Loading} />`}
    <table class="data audit" data-testid="audit-table">
      <thead>
        <tr>
          <th>${t('a_when')}</th>
          <th>${t('a_who')}</th>
          <th>${t('a_action')}</th>
          <th>${t('a_target')}</th>
          <th>${t('a_detail')}</th>
          <th>${t('a_units')}</th>
        </tr>
      </thead>
      <tbody>
        ${rows.map(
          (e) => html`<tr data-action=${e.action}>
            <td>${fmtDateTime(e.at)}</td>
            <td>
              ${userName(e.user_id)}
              ${e.device_id &&
              html`<div class="muted small mono" title=${e.device_id}>${directory.devices.get(e.device_id)?.name ?? ''}</div>`}
            </td>
            <td>${label('action', e.action)}</td>
            <td class="mono small">${e.target.startsWith('usr_') ? userName(e.target) : e.target}</td>
            <td class="small">${e.detail}</td>
            <td class="small">${e.org_units.map((id) => unitName(id)).join('、')}</td>
          </tr>`,
        )}
      </tbody>
    </table>
  </div>`;
}
