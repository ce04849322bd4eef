// End-to-end test of photos attached to a case: worker1's phone, offline,
// takes two photos (fed through the app's own file input) and attaches
// them to a case, and records a visit with a third; they show offline,
// across a reload; back online the records sync and the photos upload in
// chunks, one of them across a dropped connection; the server serves them to staff; staff1's phone shows them
// from the server and, once seen, offline; the console's case page shows
// both. Saves docs/screenshots/app-case-photos.png and
// console-case-photos.png.
//
// GRIDSYNC_BIN names the server binary (default ../target/debug/gridsync).

import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync } from 'node:fs';
import { resolve } from 'node:path';
import { t } from '../field/i18n.js';
import { t as consoleT } from '../console/i18n.js';
import { APPS, DEMO_PASSWORD, startServer, api, launchBrowser, newPhone } from './harness.mjs';

const SCREENSHOTS = resolve(APPS, '../docs/screenshots');
const UPLOAD_TIMEOUT_MS = 60000;

let server;
let browser;

async function show(page, hash) {
  await page.evaluate((h) => {
    location.hash = h;
  }, hash);
}

/** Saves the screen as docs/screenshots/`path`, scrolled to `element` (a locator) or the top. */
async function screenshot(page, path, element) {
  await page.getByTestId('toast').waitFor({ state: 'detached' });
  await page.evaluate(() => {
    document.activeElement?.blur();
    window.scrollTo(0, 0);
  });
  if (element) await element.evaluate((e) => e.scrollIntoView({ block: 'start' }));
  mkdirSync(SCREENSHOTS, { recursive: true });
  await page.screenshot({ path: resolve(SCREENSHOTS, path) });
}

/** Opens the field app, signs in and waits for the first sync to complete. */
async function signIn(page, username) {
  const since = Date.now();
  await page.goto(`${server.url}/app/`);
  await page.getByLabel(t('username')).fill(username);
  await page.getByLabel(t('password')).fill(DEMO_PASSWORD);
  await page.getByRole('button', { name: t('signin') }).click();
  await page.getByRole('heading', { name: t('today_title') }).waitFor();
  await synced(page, since);
}

/** Resolves when a sync that started at or after `since` has completed. */
async function synced(page, since) {
  await show(page, '#/');
  await page.waitForFunction(
    (since) => {
      const button = document.querySelector('[data-testid=sync-button]');
      const last = Number(document.querySelector('[data-testid=last-sync]')?.dataset.time);
      return button && !button.disabled && last >= since;
    },
    since,
    { timeout: 60000 },
  );
}

/**
 * A camera's JPEG of `width` × `height`, drawn in the page: noise (so that
 * even shrunk it takes several upload chunks) under a label, with an EXIF
 * block naming a camera, which the phone must not send on.
 */
async function cameraJpeg(page, width, height, text) {
  const bytes = await page.evaluate(
    async ({ width, height, text }) => {
      const canvas = document.createElement('canvas');
      canvas.width = width;
      canvas.height = height;
      const context = canvas.getContext('2d');
      const pixels = context.createImageData(width, height);
      // A wall under a sky, with the grain of a phone camera.
      for (let y = 0; y < height; y++) {
        for (let x = 0; x < width; x++) {
          const i = (y * width + x) * 4;
          const grain = Math.random() * 48 - 24;
          const wall = y > height * 0.4;
          pixels.data[i] = (wall ? 170 : 120) + grain + (x / width) * 30;
          pixels.data[i + 1] = (wall ? 150 : 170) + grain;
          pixels.data[i + 2] = (wall ? 120 : 220) + grain - (y / height) * 30;
          pixels.data[i + 3] = 255;
        }
      }
      context.putImageData(pixels, 0, 0);
      context.fillStyle = '#2b2b2b';
      context.fillRect(width * 0.55, height * 0.5, width * 0.3, height * 0.35);
      context.fillStyle = '#fff';
      context.font = `${Math.round(height / 10)}px sans-serif`;
      context.fillText(text, width / 10, height * 0.3);
      const blob = await new Promise((ok) => canvas.toBlob(ok, 'image/jpeg', 0.92));
      return [...new Uint8Array(await blob.arrayBuffer())];
    },
    { width, height, text },
  );
  // APP1 "Exif": a little-endian TIFF header and one IFD with the camera's
  // make (tag 0x010f, ASCII), right after the JPEG's start-of-image marker.
  const make = Buffer.from('TestCam\0', 'latin1');
  const tiff = Buffer.alloc(8 + 2 + 12 + 4);
  tiff.write('II', 0, 'latin1');
  tiff.writeUInt16LE(42, 2);
  tiff.writeUInt32LE(8, 4);
  tiff.writeUInt16LE(1, 8);
  tiff.writeUInt16LE(0x010f, 10);
  tiff.writeUInt16LE(2, 12);
  tiff.writeUInt32LE(make.length, 14);
  tiff.writeUInt32LE(tiff.length, 18);
  tiff.writeUInt32LE(0, 22);
  const payload = Buffer.concat([Buffer.from('Exif\0\0', 'latin1'), tiff, make]);
  const app1 = Buffer.alloc(4);
  app1.writeUInt16BE(0xffe1, 0);
  app1.writeUInt16BE(payload.length + 2, 2);
  const jpeg = Buffer.from(bytes);
  return Buffer.concat([jpeg.subarray(0, 2), app1, payload, jpeg.subarray(2)]);
}

/** The access token the phone holds (its session in IndexedDB). */
function accessToken(page) {
  return page.evaluate(
    () =>
      new Promise((ok, fail) => {
        const request = indexedDB.open('gridsync');
        request.onerror = () => fail(request.error);
        request.onsuccess = () => {
          const db = request.result;
          const get = db.transaction('auth').objectStore('auth').get('session');
          get.onsuccess = () => {
            db.close();
            ok(get.result.access_token);
          };
        };
      }),
  );
}

/** Attaches `buffer` as a photo with `caption` on the open record page. */
async function attachPhoto(page, name, buffer, caption) {
  await page.getByTestId('photo-input').setInputFiles({ name, mimeType: 'image/jpeg', buffer });
  const form = page.getByTestId('photo-form');
  await form.waitFor();
  await form.getByLabel(t('photo_caption')).fill(caption);
  await form.getByRole('button', { name: t('photo_save') }).click();
  await page.getByTestId('toast').filter({ hasText: t('photo_saved') }).waitFor();
  await form.waitFor({ state: 'detached' });
}

/** The photos the open page shows: [{sha, source, upload}]. */
function photos(page) {
  return page.locator('[data-testid=photos] [data-testid=photo]').evaluateAll((items) =>
    items.map((li) => ({
      sha: li.dataset.sha,
      source: li.querySelector('[data-testid=thumb-image]')?.dataset.source ?? null,
      loaded: (li.querySelector('[data-testid=thumb-image]')?.naturalWidth ?? 0) > 0,
      upload: li.querySelector('[data-testid=upload-state]')?.dataset.upload ?? null,
    })),
  );
}

/**
 * Waits until the open page shows `count` photos, each with its image
 * loaded and, when `source` is given, taken from there ('phone', 'saved'
 * or 'server'). (The app's content security policy forbids evaluating
 * strings: the check is a function of data.)
 */
async function photosAre(page, count, source = null, timeout = 30000) {
  await page.waitForFunction(
    ({ count, source }) => {
      const items = [...document.querySelectorAll('[data-testid=photos] [data-testid=photo]')];
      return (
        items.length === count &&
        items.every((li) => {
          const img = li.querySelector('[data-testid=thumb-image]');
          return img && img.complete && img.naturalWidth > 0 && (!source || img.dataset.source === source);
        })
      );
    },
    { count, source },
    { timeout },
  );
}

before(async () => {
  server = await startServer();
  browser = await launchBrowser();
});

after(async () => {
  await browser?.close();
  await server?.stop();
});

describe('photos', () => {
  let worker;
  let caseId;
  let shas;
  const captions = ['楼道电线裸露', '配电箱锈蚀'];

  it('attaches two photos offline, shrunk and without EXIF, and shows them offline across a reload', async () => {
    worker = await newPhone(browser);
    const { context, page } = worker;
    await signIn(page, 'worker1');
    await page.waitForFunction(() => navigator.serviceWorker.controller !== null);
    worker.token = await accessToken(page);
    const first = await cameraJpeg(page, 2400, 1800, 'photo 1');
    const second = await cameraJpeg(page, 1200, 2000, 'photo 2');
    assert.ok(first.includes(Buffer.from('TestCam')), 'the camera file carries EXIF');

    // Offline, a case about a household of worker1's grid, then its photos:
    // the uploads must wait for the case to reach the server.
    await context.setOffline(true);
    await page.getByTestId('sync-pill').filter({ hasText: t('offline') }).waitFor();
    await show(page, '#/households');
    await page.locator('a.row').first().click();
    await page.getByRole('link', { name: t('report_case') }).click();
    await page.getByLabel(t('category')).selectOption('Hazard');
    await page.getByLabel(t('case_title_label')).fill('配电箱门损坏');
    await page.getByLabel(t('description')).fill('2单元配电箱门脱落，电线外露。');
    await page.getByRole('button', { name: t('report_case') }).click();
    await page.getByTestId('photos').waitFor();
    caseId = decodeURIComponent(new URL(page.url()).hash.split('/')[2]);
    await attachPhoto(page, 'IMG_0001.jpg', first, captions[0]);
    await attachPhoto(page, 'IMG_0002.jpg', second, captions[1]);
    await photosAre(page, 2, 'phone');
    const shown = await photos(page);
    assert.deepEqual(
      shown.map((p) => p.upload),
      ['queued', 'queued'],
    );
    shas = shown.map((p) => p.sha);

    // What the phone keeps is the shrunk photo: upright, at most 1600 px, no EXIF.
    const kept = await page.evaluate(
      (shas) =>
        new Promise((ok, fail) => {
          const request = indexedDB.open('gridsync');
          request.onerror = () => fail(request.error);
          request.onsuccess = () => {
            const db = request.result;
            const files = db.transaction('files').objectStore('files');
            Promise.all(
              shas.map(
                (sha) =>
                  new Promise((done) => {
                    const r = files.get(sha);
                    r.onsuccess = async () => {
                      const bytes = r.result;
                      const bitmap = await createImageBitmap(new Blob([bytes], { type: 'image/jpeg' }));
                      const text = new TextDecoder('latin1').decode(bytes.subarray(0, 4096));
                      done({ size: bytes.length, width: bitmap.width, height: bitmap.height, exif: text.includes('Exif') });
                    };
                  }),
              ),
            ).then((found) => {
              db.close();
              ok(found);
            });
          };
        }),
      shas,
    );
    assert.deepEqual(
      kept.map(({ width, height, exif }) => ({ width, height, exif })),
      [
        { width: 1600, height: 1200, exif: false },
        { width: 960, height: 1600, exif: false },
      ],
    );
    assert.ok(kept[0].size > 256 * 1024, `the first photo takes several chunks (${kept[0].size} bytes)`);

    // A reload with no network: the photos come from the phone.
    await page.reload();
    await page.getByTestId('photos').waitFor();
    await photosAre(page, 2);
    assert.deepEqual(
      (await photos(page)).map((p) => [p.sha, p.source, p.upload]),
      shas.map((sha) => [sha, 'phone', 'queued']),
    );
    await screenshot(page, 'app-case-photos.png', page.getByTestId('photos'));

    // A visit recorded with a photo: both saved in one go.
    await show(page, '#/households');
    await page.locator('a.row').first().click();
    await page.getByRole('link', { name: t('record_visit') }).click();
    worker.household = decodeURIComponent(new URL(page.url()).hash.split('/')[2]);
    await page.getByLabel(t('findings')).fill('楼道堆放杂物，已提醒住户清理');
    const third = await cameraJpeg(page, 800, 600, 'photo 3');
    await page.getByTestId('photo-input').setInputFiles({ name: 'IMG_0003.jpg', mimeType: 'image/jpeg', buffer: third });
    await page.getByTestId('photo-draft').getByLabel(t('photo_caption')).fill('楼道杂物');
    await page.getByRole('button', { name: t('save') }).click();
    await page.getByTestId('toast').filter({ hasText: t('saved_here') }).waitFor();
    const visitPhoto = page.getByTestId('visit').getByTestId('photo');
    await visitPhoto.waitFor();
    worker.visitPhoto = await visitPhoto.getAttribute('data-sha');
    assert.equal(await visitPhoto.getByTestId('upload-state').getAttribute('data-upload'), 'queued');
  });

  it('uploads them in chunks once the case is synced, resuming after a dropped connection', async () => {
    const { context, page } = worker;
    // The second chunk of the first upload is lost on the way.
    let dropped = 0;
    await context.route('**/v1/attachments/*', (route) => {
      const request = route.request();
      const range = request.headers()['content-range'] ?? '';
      if (request.method() === 'PUT' && dropped === 0 && /^bytes [1-9]\d*-/.test(range)) {
        dropped++;
        return route.abort('connectionreset');
      }
      return route.fallback();
    });
    await context.setOffline(false);
    await show(page, `#/case/${caseId}`);
    // The sync on coming online sends the case; the uploads follow it; the
    // dropped one goes on at the next sync (by hand here).
    const deadline = Date.now() + UPLOAD_TIMEOUT_MS;
    let syncedByHand = 0;
    for (;;) {
      const states = (await photos(page)).map((p) => p.upload);
      if (states.every((s) => s === 'done')) break;
      if (Date.now() > deadline) throw new Error(`uploads did not complete: ${states}`);
      if (dropped && !states.includes('uploading') && Date.now() - syncedByHand > 5000) {
        syncedByHand = Date.now();
        await show(page, '#/');
        await page.getByTestId('sync-button').click();
        await show(page, `#/case/${caseId}`);
      }
      await new Promise((ok) => setTimeout(ok, 500));
    }
    assert.equal(dropped, 1, 'a chunk was dropped and the upload resumed');
    await context.unroute('**/v1/attachments/*');

    const staff = await api(server.url, '/v1/auth/login', {
      body: { username: 'staff1', password: DEMO_PASSWORD, device_name: 'photos test' },
    });
    for (const sha of shas) {
      const file = await fetch(`${server.url}/v1/attachments/${sha}`, {
        headers: { Authorization: `Bearer ${staff.access_token}` },
      });
      assert.equal(file.status, 200, `GET /v1/attachments/${sha}`);
      assert.match(file.headers.get('content-type'), /^image\//);
      assert.ok((await file.arrayBuffer()).byteLength > 0);
    }
    const record = await api(server.url, `/v1/records/${caseId}`, { token: staff.access_token });
    const me = await api(server.url, '/v1/me', { token: worker.token });
    assert.deepEqual(
      record.record.attachments.map((a) => [a.sha256, a.caption, a.author, a.media_type]),
      shas.map((sha, i) => [sha, captions[i], me.user_id, 'image/jpeg']),
    );
    const status = await api(server.url, `/v1/attachments/${shas[0]}/upload`, { token: staff.access_token });
    assert.equal(status.complete, true);

    // The visit's photo went up in the same run.
    await show(page, `#/household/${worker.household}`);
    await page.locator(`[data-testid=visit] [data-sha="${worker.visitPhoto}"] [data-upload=done]`).waitFor({ timeout: 30000 });
    const visitFile = await fetch(`${server.url}/v1/attachments/${worker.visitPhoto}/thumbnail`, {
      headers: { Authorization: `Bearer ${staff.access_token}` },
    });
    assert.equal(visitFile.status, 200);
    assert.equal(visitFile.headers.get('content-type'), 'image/jpeg');
  });

  it("shows the photos on staff1's phone from the server, and offline once seen", async () => {
    const { context, page } = await newPhone(browser);
    await signIn(page, 'staff1');
    await show(page, `#/case/${caseId}`);
    await page.getByTestId('photos').waitFor();
    await photosAre(page, 2, 'server');
    // Photos worker1 took show no upload state on another phone.
    assert.deepEqual(
      (await photos(page)).map((p) => p.upload),
      [null, null],
    );
    await page.waitForFunction(() => navigator.serviceWorker.controller !== null);
    await context.setOffline(true);
    await page.reload();
    await page.getByTestId('photos').waitFor();
    await photosAre(page, 2, 'saved');
    // A tap shows the whole photo (not kept offline on this phone: the thumbnail is).
    await context.setOffline(false);
    await page.locator('[data-testid=photos] [data-testid=photo] button').first().click();
    const viewer = page.getByTestId('photo-viewer');
    await viewer.getByTestId('viewer-image').waitFor();
    assert.ok(await viewer.getByTestId('viewer-image').evaluate((img) => img.decode().then(() => img.naturalWidth === 1600)));
    await viewer.getByRole('button', { name: t('close') }).click();
    await viewer.waitFor({ state: 'detached' });
    await context.close();
  });

  it("shows both photos on the console's case page, and the whole image on a click", async () => {
    const context = await browser.newContext({
      viewport: { width: 1280, height: 800 },
      locale: 'zh-CN',
      timezoneId: 'Asia/Shanghai',
    });
    const page = await context.newPage();
    page.on('pageerror', (error) => console.error(`[page error] ${error.stack ?? error}`));
    await page.goto(`${server.url}/console/`);
    await page.getByLabel(consoleT('username')).fill('staff1');
    await page.getByLabel(consoleT('password')).fill(DEMO_PASSWORD);
    await page.getByRole('button', { name: consoleT('signin') }).click();
    await page.locator('.shell').waitFor();
    await show(page, `#/case/${caseId}`);
    const card = page.getByTestId('case-attachments');
    await card.waitFor();
    await page.waitForFunction(
      () =>
        [...document.querySelectorAll('[data-testid=case-attachments] [data-testid=attachment-thumb]')].filter(
          (img) => img.complete && img.naturalWidth > 0,
        ).length === 2,
    );
    const items = await card.getByTestId('attachment').evaluateAll((lis) => lis.map((li) => [li.dataset.sha, li.textContent]));
    assert.deepEqual(
      items.map(([sha]) => sha),
      shas,
    );
    for (const [i, [, text]] of items.entries()) {
      assert.ok(text.includes(captions[i]) && text.includes(`IMG_000${i + 1}.jpg`), text);
    }
    await page.evaluate(() => window.scrollTo(0, 0));
    mkdirSync(SCREENSHOTS, { recursive: true });
    await page.screenshot({ path: resolve(SCREENSHOTS, 'console-case-photos.png') });
    await card.getByTestId('attachment').first().locator('.attachment-thumb').click();
    const viewer = page.getByTestId('attachment-viewer');
    await viewer.getByTestId('attachment-full').waitFor();
    await viewer.getByRole('button', { name: consoleT('close_word') }).click();
    await viewer.waitFor({ state: 'detached' });

    // The case list counts the photos, once the server gives the count.
    const staff = await api(server.url, '/v1/auth/login', {
      body: { username: 'staff1', password: DEMO_PASSWORD, device_name: 'photos test' },
    });
    let row = null;
    let cursor = null;
    do {
      const list = await api(server.url, `/v1/cases?limit=100${cursor ? `&cursor=${encodeURIComponent(cursor)}` : ''}`, {
        token: staff.access_token,
      });
      row = list.items.find((c) => c.id === caseId) ?? null;
      cursor = list.next_cursor;
    } while (!row && cursor);
    assert.ok(row, 'the case is listed');
    if (typeof row.attachments === 'number') assert.equal(row.attachments, 2);
    await context.close();
  });
});
