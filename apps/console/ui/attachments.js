// Files attached to a record (photos, scanned papers), as the desk sees
// them: a thumbnail of each image with its name, caption, author and time;
// a click shows the whole image, and a PDF opens as a file. The files need
// the bearer token, which an <img> cannot send: each is fetched
// (GET /v1/attachments/{sha256}[/thumbnail]) into a Blob and shown through
// an object URL, made once per file for the session.

import { t } from '../i18n.js';
import { html, useState, useEffect, useApp, userName, fmtDateTime, errorText } from './common.js';
import { apiError } from '../api.js';

/** `thumb:<sha256>` / `full:<sha256>` → a Promise of an object URL, or of null (not there yet). */
const urls = new Map();

function objectUrl(session, key, path) {
  if (!urls.has(key)) {
    const entry = session
      .request(path)
      .then(async (response) => (response.ok ? URL.createObjectURL(await response.blob()) : null))
      .catch(() => null);
    urls.set(key, entry);
    // Not uploaded yet: asked again the next time the file shows.
    entry.then((url) => url || urls.delete(key));
  }
  return urls.get(key);
}

const isImage = (a) => a.media_type?.startsWith('image/');

function Thumb({ attachment }) {
  const { session } = useApp();
  const [url, setUrl] = useState(undefined);
  useEffect(() => {
    let live = true;
    objectUrl(session, `thumb:${attachment.sha256}`, `/v1/attachments/${attachment.sha256}/thumbnail`).then(
      (found) => live && setUrl(found),
    );
    return () => {
      live = false;
    };
  }, [attachment.sha256]);
  if (url) return html`<img src=${url} alt=${attachment.caption || attachment.name} data-testid="attachment-thumb" />`;
  return html`<span class="thumb-missing">${url === null ? t('attachment_not_uploaded') : t('loading')}</span>`;
}

/** The whole image over the page, with a download of the file. */
function Viewer({ attachment, onClose }) {
  const { session } = useApp();
  const [url, setUrl] = useState(undefined);
  const [error, setError] = useState(null);
  const path = `/v1/attachments/${attachment.sha256}`;
  useEffect(() => {
    let live = true;
    objectUrl(session, `full:${attachment.sha256}`, path).then((found) => live && setUrl(found));
    const onKey = (e) => e.key === 'Escape' && onClose();
    window.addEventListener('keydown', onKey);
    return () => {
      live = false;
      window.removeEventListener('keydown', onKey);
    };
  }, [attachment.sha256]);
  const download = () => session.download(path, attachment.name || attachment.sha256).catch(setError);
  return html`<div class="viewer" role="dialog" aria-modal="true" data-testid="attachment-viewer" onClick=${onClose}>
    <div class="viewer-body" onClick=${(e) => e.stopPropagation()}>
      ${url
        ? html`<img src=${url} alt=${attachment.caption || attachment.name} data-testid="attachment-full" />`
        : html`<p>${url === null ? t('attachment_not_uploaded') : t('loading')}</p>`}
      <div class="viewer-foot">
        <span>${attachment.caption || attachment.name}</span>
        <span class="spacer"></span>
        <button type="button" class="secondary" onClick=${download}>${t('attachment_download')}</button>
        <button type="button" class="primary" onClick=${onClose}>${t('close_word')}</button>
      </div>
      ${error && html`<div class="error-box" role="alert">${errorText(error)}</div>`}
    </div>
  </div>`;
}

/** Opens a PDF (or any file not an image) in a new tab, from a Blob. */
async function openFile(session, attachment) {
  const response = await session.request(`/v1/attachments/${attachment.sha256}`);
  if (!response.ok) throw await apiError(response);
  const blob = new Blob([await response.blob()], { type: attachment.media_type });
  const url = URL.createObjectURL(blob);
  window.open(url, '_blank', 'noopener');
  setTimeout(() => URL.revokeObjectURL(url), 60000);
}

function Item({ attachment, onOpen }) {
  const { session } = useApp();
  const [error, setError] = useState(null);
  const a = attachment;
  const open = () => (isImage(a) ? onOpen(a) : openFile(session, a).catch(setError));
  return html`<li class="attachment" data-testid="attachment" data-sha=${a.sha256} data-type=${a.media_type}>
    <button type="button" class="attachment-thumb" onClick=${open} title=${t('attachment_open')}>
      ${isImage(a) ? html`<${Thumb} attachment=${a} />` : html`<span class="file-mark">PDF</span>`}
    </button>
    <div class="attachment-facts">
      <button type="button" class="link-button attachment-name" onClick=${open}>${a.name || t('attachment_unnamed')}</button>
      ${a.caption && html`<div class="attachment-caption">${a.caption}</div>`}
      <div class="muted">${userName(a.author, { short: true })} · ${fmtDateTime(a.taken_at)}</div>
      ${error && html`<div class="error-text">${errorText(error)}</div>`}
    </div>
  </li>`;
}

/** The attachments of a record (or an event); nothing when it has none. */
export function Attachments({ attachments }) {
  const [open, setOpen] = useState(null);
  if (!attachments?.length) return null;
  return html`<ul class="attachments">
      ${attachments.map((a) => html`<${Item} key=${a.sha256} attachment=${a} onOpen=${setOpen} />`)}
    </ul>
    ${open && html`<${Viewer} attachment=${open} onClose=${() => setOpen(null)} />`}`;
}
