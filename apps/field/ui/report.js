// Reporting a case from the field: category, title, description, parties,
// household, location.

import { useState } from '../vendor/preact-htm.js';
import { t } from '../i18n.js';
import {
  html,
  failureText,
  useApp,
  addressText,
  headOf,
  newItemId,
  unitLabel,
  Field,
  EnumSelect,
  ErrorBox,
  ScreenTitle,
  CATEGORIES,
  useLocation,
} from './common.js';

function Party({ party, onChange, onRemove }) {
  const set = (key) => (e) => onChange({ ...party, [key]: e.target.value });
  return html`<div class="party">
    <div class="row2">
      <${Field} name=${t('name')}><input name="party_name" value=${party.name} onInput=${set('name')} /><//>
      <${Field} name=${t('phone')}>
        <input name="party_phone" type="tel" inputmode="tel" value=${party.phone} onInput=${set('phone')} />
      <//>
    </div>
    <div class="row2">
      <${Field} name=${t('party_role')}><input name="party_role" value=${party.role} onInput=${set('role')} /><//>
      <button type="button" class="secondary" onClick=${onRemove}>${t('remove')}</button>
    </div>
  </div>`;
}

/** `household`: the household the case is about, when reported from its page. */
export function ReportForm({ household: householdId }) {
  const app = useApp();
  const households = app.records
    .views('household')
    .slice()
    .sort((a, b) => addressText(a.record.address).localeCompare(addressText(b.record.address), 'zh-CN', { numeric: true }));
  const [form, setForm] = useState({
    category: 'Neighbour',
    title: '',
    description: '',
    household: householdId ?? '',
    location: '',
    org_unit: app.me.org_units?.[0] ?? '',
  });
  const [parties, setParties] = useState([]);
  const [wantLocation, setWantLocation] = useState(false);
  const [position, positionStatus] = useLocation(wantLocation);
  const [error, setError] = useState(null);
  const [busy, setBusy] = useState(false);
  const set = (key) => (value) => setForm({ ...form, [key]: value });
  const chosen = form.household ? app.records.view(form.household) : null;

  async function submit(e) {
    e.preventDefault();
    if (!form.title.trim()) {
      setError(t('required', { field: t('case_title_label') }));
      return;
    }
    setBusy(true);
    setError(null);
    const location = [form.location.trim(), wantLocation ? position : ''].filter(Boolean).join(' ');
    const record = {
      // A case about a household belongs to the household's grid.
      org_unit: chosen ? chosen.record.org_unit : form.org_unit,
      category: form.category,
      title: form.title.trim(),
      description: form.description,
      parties: parties.filter((p) => p.name.trim()),
      household: form.household,
      location,
      reporter: app.me.user_id,
      reported_at: Date.now(),
      // The replica writes the `report` event, by this user from this device.
      events: [],
    };
    try {
      const id = await app.records.change((r) => r.create('case', JSON.stringify(record)));
      app.saved();
      app.navigate(`/case/${id}`);
    } catch (err) {
      setError(failureText(err));
      setBusy(false);
    }
  }

  return html`
    <${ScreenTitle} title=${t('report_case')} back=${householdId ? `#/household/${householdId}` : '#/cases'} />
    <form class="form card" onSubmit=${submit}>
      <${Field} name=${t('category')}>
        <${EnumSelect} name="category" group="category" values=${CATEGORIES} value=${form.category} onChange=${set('category')} />
      <//>
      <${Field} name=${t('case_title_label')}>
        <input name="title" value=${form.title} onInput=${(e) => set('title')(e.target.value)} />
      <//>
      <${Field} name=${t('description')}>
        <textarea name="description" rows="4" value=${form.description} onInput=${(e) => set('description')(e.target.value)} />
      <//>
      <${Field} name=${t('household')}>
        <select name="household" value=${form.household} onChange=${(e) => set('household')(e.target.value)}>
          <option value="">${t('household_none')}</option>
          ${households.map(
            (h) => html`<option value=${h.id}>${addressText(h.record.address)} ${headOf(h.record)?.name ?? ''}</option>`,
          )}
        </select>
      <//>
      ${!chosen &&
      (app.me.area?.length ?? 0) > 1 &&
      html`<${Field} name=${t('grid')}>
        <select name="org_unit" value=${form.org_unit} onChange=${(e) => set('org_unit')(e.target.value)}>
          ${app.me.area.map((unit) => html`<option value=${unit}>${unitLabel(unit, app.me)}</option>`)}
        </select>
      <//>`}
      <${Field} name=${t('location')}>
        <input name="location" value=${form.location} onInput=${(e) => set('location')(e.target.value)} />
      <//>
      <label class="check">
        <input type="checkbox" checked=${wantLocation} onChange=${(e) => setWantLocation(e.target.checked)} />
        ${t('attach_location')}
      </label>
      ${wantLocation && html`<p class="muted">${positionStatus}</p>`}
      <fieldset class="parties">
        <legend>${t('parties')}</legend>
        ${parties.map(
          (p, i) => html`<${Party}
            key=${p.id}
            party=${p}
            onChange=${(next) => setParties(parties.map((x, j) => (j === i ? next : x)))}
            onRemove=${() => setParties(parties.filter((_, j) => j !== i))}
          />`,
        )}
        <button
          type="button"
          class="secondary wide"
          onClick=${() => setParties([...parties, { id: newItemId('p'), name: '', phone: '', role: '' }])}
        >
          ${t('add_party')}
        </button>
      </fieldset>
      <${ErrorBox} error=${error} />
      <div class="actions">
        <button class="primary" type="submit" disabled=${busy}>${t('report_case')}</button>
      </div>
    </form>
  `;
}
