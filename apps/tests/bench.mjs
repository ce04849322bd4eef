// Figures of the field app on a phone-sized Chromium (run by hand, not in CI):
//
//   node tests/bench.mjs
//
// - what a first visit downloads (the app's JS and wasm, as served, and
//   gzip-compressed for comparison),
// - a cold load until the sign-in screen shows,
// - sign-in until the first sync of the user's records is done,
// - storage used (IndexedDB and the service worker's cache),
// - opening the app with no network, the records stored: a reload of a
//   signed-in tab, and a new launch signing in on the phone.
//
// GRIDSYNC_URL: a running server (default: start `gridsync serve --demo` as
// the e2e test does); GRIDSYNC_USER / GRIDSYNC_PASSWORD (default worker1 /
// the demo password).

import { gzipSync } from 'node:zlib';
import { DEMO_PASSWORD, startServer, launchBrowser, newPhone } from './harness.mjs';

const user = process.env.GRIDSYNC_USER ?? 'worker1';
const password = process.env.GRIDSYNC_PASSWORD ?? DEMO_PASSWORD;

const kib = (bytes) => `${(bytes / 1024).toFixed(1)} KiB`;
const ms = (n) => `${Math.round(n)} ms`;

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

    // What that load fetched, as served (encodedBodySize: after Content-Encoding).
    const resources = await page.evaluate(() =>
      performance
        .getEntriesByType('resource')
        .concat(performance.getEntriesByType('navigation'))
        .map((e) => ({ url: e.name, encoded: e.encodedBodySize, decoded: e.decodedBodySize })),
    );
    const code = resources.filter((r) => /\.(m?js|wasm)$/.test(new URL(r.url).pathname));
    let served = 0;
    let decoded = 0;
    let gzipped = 0;
    for (const r of code) {
      served += r.encoded;
      decoded += r.decoded;
      const body = Buffer.from(await (await fetch(r.url)).arrayBuffer());
      gzipped += gzipSync(body, { level: 9 }).length;
    }
    const wasm = code.find((r) => r.url.endsWith('.wasm'));

    const firstSync = await signInAndSync(page);
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
    console.log(`  app code fetched on a first visit (JS + wasm, ${code.length} files):`);
    console.log(`    as served:        ${kib(served)} (${kib(decoded)} uncompressed)`);
    console.log(`    gzip -9 of those: ${kib(gzipped)}`);
    if (wasm) console.log(`    of which wasm:    ${kib(wasm.encoded)} as served (${kib(wasm.decoded)} uncompressed)`);
    console.log(`  cold load to sign-in screen:            ${ms(coldLoad)}`);
    console.log(`  sign-in to first sync done:             ${ms(firstSync)} (${records} records)`);
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
