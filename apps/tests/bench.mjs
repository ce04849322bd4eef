// Figures of the field app on a phone-sized Chromium (run by hand, not in CI):
//
//   node tests/bench.mjs
//
// - what a phone downloads of the app once (every file the service worker
//   keeps, the JS and wasm among them) as the server sends it,
// - a cold load until the sign-in screen shows,
// - sign-in until the first sync of the user's records is done,
// - storage used (IndexedDB and the service worker's cache),
// - opening the app with no network, the records stored: a reload of a
//   signed-in tab, and a new launch signing in on the phone.
//
// GRIDSYNC_URL: a running server (default: start `gridsync serve --demo` as
// the e2e test does); GRIDSYNC_USER / GRIDSYNC_PASSWORD (default worker1 /
// the demo password).

import http from 'node:http';
import { gzipSync, gunzipSync } from 'node:zlib';
import { DEMO_PASSWORD, startServer, launchBrowser, newPhone } from './harness.mjs';

const user = process.env.GRIDSYNC_USER ?? 'worker1';
const password = process.env.GRIDSYNC_PASSWORD ?? DEMO_PASSWORD;

const kib = (bytes) => `${(bytes / 1024).toFixed(1)} KiB`;
const ms = (n) => `${Math.round(n)} ms`;

/** GET `url` as a browser would (gzip accepted): the bytes as they came, and their encoding. */
function download(url) {
  return new Promise((ok, fail) => {
    http
      .get(url, { headers: { 'Accept-Encoding': 'gzip' } }, (response) => {
        const chunks = [];
        response.on('data', (chunk) => chunks.push(chunk));
        response.on('end', () => ok({ bytes: Buffer.concat(chunks), encoding: response.headers['content-encoding'] }));
      })
      .on('error', fail);
  });
}

const gunzipped = (bytes, encoding) => (encoding === 'gzip' ? gunzipSync(bytes) : bytes);

/** Signs in on the sign-in screen shown; returns the ms until the first sync is done. */
async function signInAndSync(page) {
  await page.locator('input[name=username]').fill(user);
  await page.locator('input[name=password]').fill(password);
  const start = Date.now();
  await page.locator('button[type=submit]').click();
  await page.waitForFunction(() => Number(document.querySelector('[data-testid=last-sync]')?.dataset.time) > 0, null, {
    timeout: 600000,
  });
  return Date.now() - start;
}

async function main() {
  const server = process.env.GRIDSYNC_URL ? { url: process.env.GRIDSYNC_URL, stop: async () => {} } : await startServer();
  const browser = await launchBrowser();
  try {
    const { context, page } = await newPhone(browser);

    // Cold load: nothing cached, no service worker yet.
    const loadStart = Date.now();
    await page.goto(`${server.url}/app/`);
    await page.locator('button[type=submit]').waitFor();
    const coldLoad = Date.now() - loadStart;

    // Bytes of the first sync's rounds, as sent (compressed when they were).
    const rounds = { count: 0, up: 0, down: 0 };
    const countRound = async (request) => {
      if (!request.url().endsWith('/v1/sync')) return;
      const sizes = await request.sizes();
      rounds.count += 1;
      rounds.up += sizes.requestBodySize;
      rounds.down += sizes.responseBodySize;
    };
    page.on('requestfinished', countRound);
    const firstSync = await signInAndSync(page);
    page.off('requestfinished', countRound);

    // What the service worker keeps of the app: every file a phone downloads once.
    await page.waitForFunction(() => navigator.serviceWorker.controller !== null);
    const shell = await page.evaluate(async () => {
      const urls = [];
      for (const name of await caches.keys()) {
        for (const request of await (await caches.open(name)).keys()) urls.push(request.url);
      }
      return urls;
    });
    let served = 0;
    let plain = 0;
    let code = 0;
    let codeServed = 0;
    let wasm = null;
    for (const url of shell) {
      const { bytes, encoding } = await download(url);
      const size = encoding === 'gzip' ? gunzipSync(bytes).length : bytes.length;
      served += bytes.length;
      plain += size;
      if (/\.(js|wasm)$/.test(new URL(url).pathname)) {
        code += size;
        codeServed += bytes.length;
      }
      if (url.endsWith('.wasm')) wasm = { served: bytes.length, size, gzip: gzipSync(gunzipped(bytes, encoding)).length };
    }
    const held = await page.evaluate(async () => {
      const estimate = await navigator.storage.estimate();
      return { usage: estimate.usage, details: estimate.usageDetails ?? {} };
    });
    const records = await page.evaluate(
      () =>
        new Promise((ok) => {
          const request = indexedDB.open('gridsync');
          request.onsuccess = () => {
            const count = request.result.transaction('docs').objectStore('docs').count();
            count.onsuccess = () => ok(count.result);
          };
        }),
    );

    // Offline, records stored: the service worker must hold the shell.
    await page.waitForFunction(() => navigator.serviceWorker.controller !== null);
    await context.setOffline(true);
    const reloadStart = Date.now();
    await page.reload();
    await page.locator('[data-testid=sync-button]').waitFor();
    await page.locator('[data-testid=unvisited-count]').waitFor();
    const offlineReload = Date.now() - reloadStart;

    const launch = await context.newPage();
    const launchStart = Date.now();
    await launch.goto(`${server.url}/app/`);
    await launch.locator('input[name=username]').fill(user);
    await launch.locator('input[name=password]').fill(password);
    await launch.locator('button[type=submit]').click();
    await launch.locator('[data-testid=unvisited-count]').waitFor();
    const offlineLaunch = Date.now() - launchStart;

    console.log(`field app figures (${user}, ${server.url}, Chromium 360×640)`);
    console.log(`  the app as served (${shell.length} files the service worker keeps):`);
    if (process.env.GRIDSYNC_APP_DIR) console.log('    (served from GRIDSYNC_APP_DIR by the test proxy, uncompressed)');
    console.log(`    all files:   ${kib(served)} transferred (${kib(plain)} uncompressed)`);
    console.log(`    JS + wasm:   ${kib(codeServed)} transferred (${kib(code)} uncompressed)`);
    if (wasm) {
      console.log(`    of it wasm:  ${kib(wasm.served)} transferred (${kib(wasm.size)}; gzip -9 would be ${kib(wasm.gzip)})`);
    }
    console.log(`  cold load to sign-in screen:            ${ms(coldLoad)}`);
    console.log(`  sign-in to first sync done:             ${ms(firstSync)} (${records} records)`);
    console.log(`    sync rounds: ${rounds.count}, ${kib(rounds.up)} up, ${kib(rounds.down)} down`);
    console.log(`  storage used:                           ${kib(held.usage)}`);
    for (const [kind, bytes] of Object.entries(held.details)) console.log(`    ${kind}: ${kib(bytes)}`);
    console.log(`  offline reload to Today (signed in):    ${ms(offlineReload)}`);
    console.log(`  offline launch, sign-in on the phone:   ${ms(offlineLaunch)}`);
  } finally {
    await browser.close();
    await server.stop();
  }
}

main().catch((error) => {
  console.error(error);
  process.exit(1);
});
