// The console's overview load time, measured in Chromium against a running
// server (not part of CI): sign in, then open the overview of an org unit
// several times, each from a fresh page load, timing from navigation until
// its figures, coverage and the table of the units below are drawn, and
// counting the API calls and bytes each load makes.
//
//   GRIDSYNC_URL=http://127.0.0.1:8080 GRIDSYNC_USER=supervisor1 \
//   GRIDSYNC_PASSWORD=gridsync-demo GRIDSYNC_UNIT=demo.t1 node tests/console-bench.mjs
//
// On the full benchmark county: load it with `bench --scale full
// --keep-database` on PostgreSQL, serve that database, and sign in as the
// county supervisor `sup.b` (BENCHMARKS.md says how).

import { launchBrowser } from './harness.mjs';

const url = process.env.GRIDSYNC_URL ?? 'http://127.0.0.1:8080';
const user = process.env.GRIDSYNC_USER ?? 'supervisor1';
const password = process.env.GRIDSYNC_PASSWORD ?? 'gridsync-demo';
const unit = process.env.GRIDSYNC_UNIT ?? 'demo.t1';
const runs = Number(process.env.RUNS ?? 5);

const browser = await launchBrowser();
try {
  const page = await browser.newPage({ viewport: { width: 1280, height: 800 } });
  await page.goto(`${url}/console/`);
  await page.locator('#username').fill(user);
  await page.locator('#password').fill(password);
  await page.locator('button[type=submit]').click();
  await page.locator('[data-testid=figures]').waitFor({ timeout: 120000 });

  const calls = { count: 0, bytes: 0 };
  page.on('requestfinished', async (request) => {
    if (!new URL(request.url()).pathname.startsWith('/v1/')) return;
    calls.count += 1;
    calls.bytes += (await request.sizes()).responseBodySize;
  });
  const times = [];
  for (let i = 0; i < runs; i++) {
    calls.count = 0;
    calls.bytes = 0;
    const start = Date.now();
    await page.goto(`${url}/console/#/overview?unit=${encodeURIComponent(unit)}`);
    await page.reload();
    for (const part of ['figures', 'coverage', 'drill-table']) {
      await page.locator(`[data-testid=${part}]`).waitFor({ timeout: 120000 });
    }
    await page.locator(`[data-testid=overview-unit][data-unit="${unit}"]`).waitFor();
    await page.waitForLoadState('networkidle');
    times.push(Date.now() - start);
  }
  times.sort((a, b) => a - b);
  console.log(`console overview of ${unit} as ${user} (${url}, Chromium 1280×800, ${runs} loads)`);
  console.log(`  page load to overview drawn: median ${times[Math.floor(runs / 2)]} ms, min ${times[0]} ms, max ${times[runs - 1]} ms`);
  console.log(`  API calls per load: ${calls.count}, ${(calls.bytes / 1024).toFixed(1)} KiB`);
} finally {
  await browser.close();
}
