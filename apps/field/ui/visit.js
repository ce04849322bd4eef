// Recording a visit to a household: findings, follow-up, photos, and the
// phone's location when the worker allows it (never waited for).

import { useState } from '../vendor/preact-htm.js';
import { t } from '../i18n.js';
import { html, failureText, useApp, addressText, headOf, Field, ErrorBox, ScreenTitle, useLocation } from './common.js';
import { PhotoDrafts, photoMeta } from './photos.js';

export function VisitForm({ id }) {
  const app = useApp();
  const household = app.records.view(id);
  const [findings, setFindings] = useState('');
  const [followUp, setFollowUp] = useState(false);
  const [wantLocation, setWantLocation] = useState(false);
  const [location, locationStatus] = useLocation(wantLocation);
  const [photos, setPhotos] = useState([]);
  const [error, setError] = useState(null);
  const [busy, setBusy] = useState(false);
  if (!household) return html`<p class="card muted">${t('household_unknown')}</p>`;

  async function submit(e) {
    e.preventDefault();
    setBusy(true);
    setError(null);
    const visit = {
      household: id,
      org_unit: household.record.org_unit,
      worker: app.me.user_id,
      visited_at: Date.now(),
      findings,
      follow_up: followUp,
      location: wantLocation ? location : '',
    };
    try {
      // The visit and its photos are saved together, in one transaction.
      await app.records.change((r) => {
        const visitId = r.create('visit', JSON.stringify(visit));
        for (const photo of photos) r.attach(visitId, photo.bytes, JSON.stringify(photoMeta(photo, photo.caption, visit.location)));
        return visitId;
      });
      for (const photo of photos) URL.revokeObjectURL(photo.preview);
      app.saved();
      app.navigate(`/household/${id}`);
    } catch (err) {
      setError(failureText(err));
      setBusy(false);
    }
  }

  return html`
    <${ScreenTitle} title=${t('visit_title')} back=${`#/household/${id}`} />
    <form class="form card" onSubmit=${submit}>
      <p><strong>${addressText(household.record.address)}</strong> ${headOf(household.record)?.name ?? ''}</p>
      <${Field} name=${t('findings')}>
        <textarea
          name="findings"
          rows="6"
          placeholder=${t('findings_placeholder')}
          value=${findings}
          onInput=${(e) => setFindings(e.target.value)}
        />
      <//>
      <label class="check">
        <input type="checkbox" name="follow_up" checked=${followUp} onChange=${(e) => setFollowUp(e.target.checked)} />
        ${t('follow_up_needed')}
      </label>
      <label class="check">
        <input
          type="checkbox"
          name="location"
          checked=${wantLocation}
          onChange=${(e) => setWantLocation(e.target.checked)}
        />
        ${t('attach_location')}
      </label>
      ${wantLocation && html`<p class="muted" data-testid="location-status">${locationStatus}</p>`}
      <${PhotoDrafts} drafts=${photos} setDrafts=${setPhotos} />
      <${ErrorBox} error=${error} />
      <div class="actions">
        <button class="primary" type="submit" disabled=${busy}>${t('save')}</button>
        <a class="button secondary" href=${`#/household/${id}`}>${t('cancel')}</a>
      </div>
    </form>
  `;
}
