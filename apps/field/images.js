// Photos for the screens: shrinking one taken on the phone before it is
// attached, and finding the image of an attached file to show.
//
// An image is shown from where it is nearest: the bytes this phone keeps
// (files it attached: shown offline from the start), a thumbnail fetched
// earlier (kept in IndexedDB: shown offline once seen), else the server's
// thumbnail, fetched with the bearer token (an <img> cannot send it) and
// kept. Object URLs are made once per file and kept for the session.

import { getFile, getThumb, putThumb } from './db.js';

/** The longest side of a photo as attached, in pixels. */
export const PHOTO_MAX_SIDE = 1600;
export const PHOTO_QUALITY = 0.8;

/**
 * Shrinks the photo `file` (a File from the camera or the gallery):
 * turned upright as its EXIF orientation says, scaled so that its longest
 * side is at most PHOTO_MAX_SIDE, and encoded again as JPEG. Drawing it on
 * a canvas and encoding that keeps only the pixels: the EXIF block, with
 * the camera's GPS position and serial number, is not carried over (the
 * server strips metadata too, but it need never leave the phone).
 * Resolves to {bytes: Uint8Array, media_type, name, width, height}.
 */
export async function shrinkPhoto(file) {
  const bitmap = await createImageBitmap(file, { imageOrientation: 'from-image' });
  const scale = Math.min(1, PHOTO_MAX_SIDE / Math.max(bitmap.width, bitmap.height));
  const width = Math.max(1, Math.round(bitmap.width * scale));
  const height = Math.max(1, Math.round(bitmap.height * scale));
  const canvas = document.createElement('canvas');
  canvas.width = width;
  canvas.height = height;
  const context = canvas.getContext('2d');
  // A transparent PNG would turn black in JPEG.
  context.fillStyle = '#fff';
  context.fillRect(0, 0, width, height);
  context.drawImage(bitmap, 0, 0, width, height);
  bitmap.close();
  const blob = await new Promise((resolve, reject) =>
    canvas.toBlob((b) => (b ? resolve(b) : reject(new Error('the photo could not be encoded'))), 'image/jpeg', PHOTO_QUALITY),
  );
  const base = (file.name || 'photo').replace(/\.[^.]*$/, '');
  return { bytes: new Uint8Array(await blob.arrayBuffer()), media_type: 'image/jpeg', name: `${base}.jpg`, width, height };
}

/** `thumb:<sha256>` and `full:<sha256>` → a Promise of {url, source}, or of null. */
const urls = new Map();

/** Forgets every image (sign-out, wipe): the next user sees none of them. */
export function forgetImages() {
  for (const entry of urls.values()) {
    entry.then((image) => image && URL.revokeObjectURL(image.url)).catch(() => {});
  }
  urls.clear();
}

function remember(key, load) {
  if (!urls.has(key)) {
    const entry = load().catch(() => null);
    urls.set(key, entry);
    // A file not to be had now (offline, not uploaded yet) is asked for again next time.
    entry.then((image) => image || urls.delete(key));
  }
  return urls.get(key);
}

/** The image this phone keeps for `attachment` (files it attached), or null. */
async function onPhone(db, attachment) {
  const bytes = await getFile(db, attachment.sha256);
  return bytes ? { url: URL.createObjectURL(new Blob([bytes], { type: attachment.media_type })), source: 'phone' } : null;
}

async function fetched(auth, path, type) {
  if (!navigator.onLine) return null;
  const response = await auth.request(path);
  if (!response.ok) return null;
  const blob = await response.blob();
  return type ? new Blob([blob], { type }) : blob;
}

/**
 * A small image of `attachment` to show in a list: {url, source: 'phone' |
 * 'saved' | 'server'}, or null when there is none to be had now (not
 * uploaded yet, offline, or not an image).
 */
export function thumbnail({ records, auth }, attachment) {
  const sha = attachment.sha256;
  return remember(`thumb:${sha}`, async () => {
    const mine = await onPhone(records.db, attachment);
    if (mine) return mine;
    const saved = await getThumb(records.db, sha);
    if (saved) return { url: URL.createObjectURL(saved), source: 'saved' };
    if (!attachment.media_type.startsWith('image/')) return null;
    const blob = await fetched(auth, `/v1/attachments/${sha}/thumbnail`, 'image/jpeg');
    if (!blob) return null;
    await putThumb(records.db, sha, blob).catch(() => {});
    return { url: URL.createObjectURL(blob), source: 'server' };
  });
}

/** The whole file of `attachment`: {url, source}, or null when it cannot be had now. */
export function fullFile({ records, auth }, attachment) {
  const sha = attachment.sha256;
  return remember(`full:${sha}`, async () => {
    const mine = await onPhone(records.db, attachment);
    if (mine) return mine;
    const blob = await fetched(auth, `/v1/attachments/${sha}`, attachment.media_type);
    return blob ? { url: URL.createObjectURL(blob), source: 'server' } : null;
  });
}
