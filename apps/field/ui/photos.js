// Photos of a record: thumbnails of its attached files (each with where
// its upload stands, for the ones this phone attached), the whole image
// on a tap, and taking a photo to attach.

import { useState, useEffect } from '../vendor/preact-htm.js';
import { t } from '../i18n.js';
import { html, failureText, useApp, fmtDateTime, userLabel, Field, ErrorBox, useLocation } from './common.js';
import { shrinkPhoto, thumbnail, fullFile } from '../images.js';

/** `load(services, attachment)` as state: {url, source} once found, null while not. */
function useImage(load, attachment, online) {
  const app = useApp();
  const [image, setImage] = useState(null);
  useEffect(() => {
    let live = true;
    load(app, attachment).then((found) => live && setImage(found));
    return () => {
      live = false;
    };
    // Asked again when the phone comes online or a sync brings news: the
    // server may have it now.
  }, [attachment.sha256, online, app.records.version]);
  return image;
}

/** Where the upload of a file this phone attached stands. */
function UploadState({ attachment }) {
  const { uploader, me, session } = useApp();
  if (attachment.author !== me.user_id || attachment.device !== session.device_id) return null;
  const state = uploader.stateOf(attachment.sha256);
  const text = {
    failed: () => t('upload_failed', { message: state.message }),
    uploading: () => t('upload_progress', { n: state.percent }),
    queued: () => t('upload_queued'),
    done: () => t('upload_done'),
  }[state.kind]();
  return html`<span class=${`upload upload-${state.kind}`} data-testid="upload-state" data-upload=${state.kind}>${text}</span>`;
}

function Thumb({ attachment, onOpen }) {
  const { syncer } = useApp();
  const image = useImage(thumbnail, attachment, syncer.state.online);
  const isImage = attachment.media_type.startsWith('image/');
  return html`<li class="thumb" data-testid="photo" data-sha=${attachment.sha256}>
    <button type="button" class="thumb-button" onClick=${() => onOpen(attachment)} aria-label=${attachment.caption || attachment.name || t('photo')}>
      ${image
        ? html`<img src=${image.url} alt="" data-source=${image.source} data-testid="thumb-image" />`
        : html`<span class="thumb-missing">${isImage ? t('photo_not_here') : t('file_pdf')}</span>`}
    </button>
    <${UploadState} attachment=${attachment} />
    ${attachment.caption && html`<span class="thumb-caption">${attachment.caption}</span>`}
  </li>`;
}

/** The whole image (or a link to the file), over the screen. */
function Viewer({ attachment, onClose }) {
  const { me, syncer } = useApp();
  const file = useImage(fullFile, attachment, syncer.state.online);
  const isImage = attachment.media_type.startsWith('image/');
  useEffect(() => {
    const onKey = (e) => e.key === 'Escape' && onClose();
    window.addEventListener('keydown', onKey);
    return () => window.removeEventListener('keydown', onKey);
  }, []);
  return html`<div class="viewer" role="dialog" aria-modal="true" data-testid="photo-viewer" onClick=${onClose}>
    <div class="viewer-body" onClick=${(e) => e.stopPropagation()}>
      ${!file
        ? html`<p class="viewer-missing">${t('photo_not_here')}</p>`
        : isImage
          ? html`<img src=${file.url} alt=${attachment.caption || attachment.name} data-testid="viewer-image" />`
          : html`<a class="button secondary" href=${file.url} target="_blank" rel="noopener" download=${attachment.name || 'file.pdf'}
              >${t('open_file')}</a
            >`}
      <div class="viewer-facts">
        ${attachment.caption && html`<div>${attachment.caption}</div>`}
        <div class="muted">
          ${fmtDateTime(attachment.taken_at)} · ${userLabel(attachment.author, me)}${attachment.location
            ? ` · ${attachment.location}`
            : ''}
        </div>
      </div>
      <button type="button" class="secondary" onClick=${onClose}>${t('close')}</button>
    </div>
  </div>`;
}

/** Thumbnails of `attachments`; a tap shows the whole file. */
export function PhotoList({ attachments }) {
  const [open, setOpen] = useState(null);
  if (!attachments?.length) return null;
  return html`<ul class="thumbs">
      ${attachments.map((a) => html`<${Thumb} key=${a.sha256} attachment=${a} onOpen=${setOpen} />`)}
    </ul>
    ${open && html`<${Viewer} attachment=${open} onClose=${() => setOpen(null)} />`}`;
}

/**
 * A photo from the camera (or the gallery) as it will be attached: shrunk
 * (images.js), with when it was taken as near as a browser tells (its
 * file's time) and a preview URL to revoke when done.
 */
async function preparePhoto(file) {
  const photo = await shrinkPhoto(file);
  const takenAt = file.lastModified > 0 && file.lastModified <= Date.now() ? file.lastModified : Date.now();
  return { ...photo, taken_at: takenAt, preview: URL.createObjectURL(new Blob([photo.bytes], { type: photo.media_type })) };
}

/** The reference's fields of a prepared photo, for `attach`. */
export function photoMeta(draft, caption, location) {
  return { media_type: draft.media_type, name: draft.name, taken_at: draft.taken_at, caption: caption.trim(), location };
}

/** The camera button: calls `onPhoto(draft)` with each photo taken, shrunk. */
function PhotoInput({ onPhoto, onError }) {
  const [busy, setBusy] = useState(false);
  async function pick(e) {
    const file = e.currentTarget.files?.[0];
    e.currentTarget.value = '';
    if (!file) return;
    setBusy(true);
    onError(null);
    try {
      onPhoto(await preparePhoto(file));
    } catch (err) {
      onError(t('photo_unreadable', { message: err.message }));
    }
    setBusy(false);
  }
  return html`<label class=${`button secondary wide add-photo${busy ? ' busy' : ''}`}>
    ${busy ? t('photo_preparing') : t('add_photo')}
    <input
      class="visually-hidden"
      type="file"
      accept="image/*"
      capture="environment"
      data-testid="photo-input"
      disabled=${busy}
      onChange=${pick}
    />
  </label>`;
}

/** A photo taken, with a caption, to attach to record `id`. */
function AddPhoto({ id }) {
  const app = useApp();
  const [draft, setDraft] = useState(null);
  const [caption, setCaption] = useState('');
  const [wantLocation, setWantLocation] = useState(false);
  const [location, locationStatus] = useLocation(wantLocation);
  const [error, setError] = useState(null);
  const [busy, setBusy] = useState(false);

  useEffect(() => () => draft && URL.revokeObjectURL(draft.preview), [draft]);

  function reset() {
    setDraft(null);
    setCaption('');
    setWantLocation(false);
  }

  async function save(e) {
    e.preventDefault();
    setBusy(true);
    setError(null);
    try {
      await app.records.attach(id, draft.bytes, photoMeta(draft, caption, wantLocation ? location : ''));
      reset();
      app.saved(t('photo_saved'));
    } catch (err) {
      setError(failureText(err));
    }
    setBusy(false);
  }

  if (!draft) {
    return html`<${PhotoInput} onPhoto=${setDraft} onError=${setError} /><${ErrorBox} error=${error} />`;
  }
  return html`<form class="form photo-form" onSubmit=${save} data-testid="photo-form">
    <img class="photo-preview" src=${draft.preview} alt="" />
    <${Field} name=${t('photo_caption')}>
      <input name="caption" value=${caption} maxlength="200" onInput=${(e) => setCaption(e.target.value)} />
    <//>
    <label class="check">
      <input type="checkbox" name="photo_location" checked=${wantLocation} onChange=${(e) => setWantLocation(e.target.checked)} />
      ${t('attach_location')}
    </label>
    ${wantLocation && html`<p class="muted">${locationStatus}</p>`}
    <${ErrorBox} error=${error} />
    <div class="actions">
      <button class="primary" type="submit" disabled=${busy}>${t('photo_save')}</button>
      <button class="secondary" type="button" onClick=${reset}>${t('cancel')}</button>
    </div>
  </form>`;
}

/**
 * Photos taken for a record not saved yet (a visit being recorded):
 * `drafts` is [{...draft, caption}], each with its preview and caption,
 * and a button to take another.
 */
export function PhotoDrafts({ drafts, setDrafts }) {
  const [error, setError] = useState(null);
  const set = (i, patch) => setDrafts(drafts.map((d, j) => (j === i ? { ...d, ...patch } : d)));
  const remove = (i) => {
    URL.revokeObjectURL(drafts[i].preview);
    setDrafts(drafts.filter((_, j) => j !== i));
  };
  return html`<div class="photo-drafts">
    <span class="field-label">${t('photos')}</span>
    ${drafts.map(
      (d, i) => html`<div class="photo-draft" data-testid="photo-draft">
        <img class="photo-preview" src=${d.preview} alt="" />
        <${Field} name=${t('photo_caption')}>
          <input name=${`caption-${i}`} value=${d.caption} maxlength="200" onInput=${(e) => set(i, { caption: e.target.value })} />
        <//>
        <button class="secondary" type="button" onClick=${() => remove(i)}>${t('remove')}</button>
      </div>`,
    )}
    <${PhotoInput} onPhoto=${(draft) => setDrafts([...drafts, { ...draft, caption: '' }])} onError=${setError} />
    <${ErrorBox} error=${error} />
  </div>`;
}

/** The photos card of record `id`: its own attachments, and adding one. */
export function Photos({ id, attachments }) {
  const list = attachments ?? [];
  return html`<section class="card photos" data-testid="photos">
    <h2>${t('photos')} <span class="count">${list.length}</span></h2>
    ${list.length ? html`<${PhotoList} attachments=${list} />` : html`<p class="muted">${t('photos_none')}</p>`}
    <${AddPhoto} id=${id} />
  </section>`;
}
