// End-to-end test of the field app (apps/field, served at /app/) against
// the real server and Chromium: phones as browser contexts of 360 × 640
// that go offline, edit, reload, come back, meet each other's edits, are
// refused and are revoked. Also saves the screenshots the README shows.
//
// GRIDSYNC_BIN names the server binary (default ../target/debug/gridsync).

import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync } from 'node:fs';
import { resolve } from 'node:path';
import { t, label } from '../field/i18n.js';
import { APPS, DEMO_PASSWORD, startServer, api, launchBrowser, newPhone } from './harness.mjs';

const SCREENSHOTS = resolve(APPS, '../docs/screenshots');
const GEO = { latitude: 32.394, longitude: 119.412 };

let server;
let browser;

/**
 * Saves the phone's screen as docs/screenshots/app-<name>.png, scrolled
 * to the top, or to `element` (a locator), once any message has gone.
 */
async function screenshot(page, name, element) {
  await page.getByTestId('toast').waitFor({ state: 'detached' });
  if (element) await element.evaluate((e) => e.scrollIntoView({ block: 'start' }));
  else await page.evaluate(() => window.scrollTo(0, 0));
  mkdirSync(SCREENSHOTS, { recursive: true });
  await page.screenshot({ path: resolve(SCREENSHOTS, `app-${name}.png`) });
}

/** Goes to a screen of the app (a location hash, e.g. "#/households"). */
async function show(page, hash) {
  await page.evaluate((h) => {
    location.hash = h;
  }, hash);
}

/** The record id in the page's location hash (#/household/<id>…). */
function idInUrl(page) {
  return decodeURIComponent(new URL(page.url()).hash.split('/')[2]);
}

/** Opens the app and signs in; resolves when the Today screen shows. */
async function signIn(page, username) {
  await page.goto(`${server.url}/app/`);
  await page.getByLabel(t('username')).fill(username);
  await page.getByLabel(t('password')).fill(DEMO_PASSWORD);
  await page.getByRole('button', { name: t('signin') }).click();
  await page.getByRole('heading', { name: t('today_title') }).waitFor();
}

/** Resolves when the sync that started at or after `since` (ms) has completed. */
async function syncedSince(page, since) {
  await show(page, '#/');
  const button = page.getByTestId('sync-button');
  await page.waitForFunction(
    (since) => {
      const button = document.querySelector('[data-testid=sync-button]');
      const last = Number(document.querySelector('[data-testid=last-sync]')?.dataset.time);
      const problem = document.querySelector('[data-testid=sync-status]');
      return button && !button.disabled && (last >= since || problem);
    },
    since,
  );
  const last = Number(await page.getByTestId('last-sync').getAttribute('data-time'));
  if (!(last >= since)) {
    throw new Error(`sync did not complete: ${await page.getByTestId('sync-status').textContent()}`);
  }
  await button.waitFor();
}

/** Syncs by hand (the big button) and waits for it to complete. */
async function syncNow(page) {
  await show(page, '#/');
  const since = await page.evaluate(() => Date.now());
  await page.getByTestId('sync-button').click();
  await syncedSince(page, since);
}

/** Text of the phone of member `memberId` on the household page. */
function memberPhone(page, memberId) {
  return page.locator(`[data-member="${memberId}"] [data-testid=member-phone]`);
}

/** Edits member `memberId`'s phone through the member form. */
async function changePhone(page, householdId, memberId, phone) {
  await show(page, `#/household/${householdId}`);
  await page.locator(`[data-member="${memberId}"]`).getByRole('link', { name: t('edit') }).click();
  await page.getByLabel(t('phone')).fill(phone);
  await page.getByRole('button', { name: t('save') }).click();
}

/** Number of unsent changes the Today screen shows. */
async function pendingTotal(page) {
  await show(page, '#/');
  return Number(await page.getByTestId('pending-total').textContent());
}

before(async () => {
  server = await startServer();
  browser = await launchBrowser();
});

after(async () => {
  await browser?.close();
  await server?.stop();
});

describe('field app', () => {
  let worker; // worker1's phone: {context, page}
  let staff; // staff1's phone
  let household; // id of the household worked on
  let member; // id of the member whose phone changes
  let caseId; // the case worker1 reports offline
  const visitText = '入户走访：老人身体良好，需要定期送药';
  const caseTitle = '楼道电线老化';
  const offlinePhone = '13900000001';

  it('works offline after the first sign-in, across a reload, and syncs when back online', async () => {
    worker = await newPhone(browser, { geolocation: GEO, permissions: ['geolocation'] });
    const { context, page } = worker;
    const since = Date.now();
    await signIn(page, 'worker1');
    await syncedSince(page, since);
    // The service worker holds the shell before the network goes.
    await page.waitForFunction(() => navigator.serviceWorker.controller !== null);
    await screenshot(page, 'today');

    await page.getByRole('link', { name: t('nav_households'), exact: true }).click();
    const rows = page.locator('a.row');
    await rows.first().waitFor();
    assert.ok((await rows.count()) > 10, 'worker1 holds the households of their grid');
    await screenshot(page, 'households');
    await rows.first().click();
    await page.getByRole('link', { name: t('record_visit') }).waitFor();
    household = idInUrl(page);
    member = await page.locator('[data-member]').first().getAttribute('data-member');

    await context.setOffline(true);
    await page.getByTestId('sync-pill').filter({ hasText: t('offline') }).waitFor();

    // A visit, with the phone's location.
    await page.getByRole('link', { name: t('record_visit') }).click();
    await page.getByLabel(t('findings')).fill(visitText);
    await page.getByLabel(t('follow_up_needed')).check();
    await page.getByLabel(t('attach_location')).check();
    await page.getByTestId('location-status').filter({ hasText: String(GEO.latitude) }).waitFor();
    await screenshot(page, 'visit');
    await page.getByRole('button', { name: t('save') }).click();
    await page.getByTestId('toast').filter({ hasText: t('saved_here') }).waitFor();
    await page.getByTestId('visit').filter({ hasText: visitText }).waitFor();

    // A case about the household, and a comment on it.
    await page.getByRole('link', { name: t('report_case') }).click();
    await page.getByLabel(t('category')).selectOption('Hazard');
    await page.getByLabel(t('case_title_label')).fill(caseTitle);
    await page.getByLabel(t('description')).fill('3号楼2单元楼道电线裸露，存在火灾隐患。');
    await page.getByRole('button', { name: t('add_party') }).click();
    await page.getByLabel(t('name')).fill('王磊');
    await page.getByLabel(t('party_role')).fill('楼长');
    await page.getByRole('button', { name: t('report_case') }).click();
    await page.getByRole('heading', { name: caseTitle }).waitFor();
    caseId = idInUrl(page);
    assert.match(caseId, /^cs_[0-9a-f]{32}$/);
    await page.getByLabel(label('data', 'text')).fill('已联系物业，明天上门查看。');
    await page.getByRole('button', { name: label('event', 'comment') }).click();
    await page.getByTestId('toast').filter({ hasText: t('event_saved') }).waitFor();
    await page.getByTestId('timeline-event').nth(1).waitFor();
    await page.getByText(t('state_pending')).waitFor();
    await screenshot(page, 'case');

    // A member's new phone number.
    await changePhone(page, household, member, offlinePhone);
    await memberPhone(page, member).filter({ hasText: offlinePhone }).waitFor();
    assert.ok((await pendingTotal(page)) >= 3, 'the edits wait on the phone');

    // A reload with no network: the shell from the service worker, the data from IndexedDB.
    await page.reload();
    await page.getByRole('heading', { name: t('today_title') }).waitFor();
    assert.ok((await pendingTotal(page)) >= 3);
    await show(page, `#/household/${household}`);
    await memberPhone(page, member).filter({ hasText: offlinePhone }).waitFor();
    await page.getByTestId('visit').filter({ hasText: visitText }).waitFor();
    await show(page, `#/case/${caseId}`);
    await page.getByRole('heading', { name: caseTitle }).waitFor();

    // A new launch (a new tab: nothing unlocked) signs in offline, on the phone.
    const launch = await context.newPage();
    await launch.goto(`${server.url}/app/`);
    await launch.getByLabel(t('username')).fill('worker1');
    await launch.getByLabel(t('password')).fill('wrong password');
    await launch.getByRole('button', { name: t('signin') }).click();
    await launch.getByRole('alert').filter({ hasText: t('signin_offline_wrong') }).waitFor();
    await launch.getByLabel(t('password')).fill(DEMO_PASSWORD);
    await launch.getByRole('button', { name: t('signin') }).click();
    await launch.getByRole('heading', { name: t('today_title') }).waitFor();
    // The new tab took the replica over; the first one paused and takes it back.
    await page.getByText(t('elsewhere')).waitFor();
    await launch.close();
    await page.getByRole('button', { name: t('use_here') }).click();
    await page.getByRole('heading', { name: caseTitle }).waitFor();

    // Back online: the edits go out by themselves.
    await context.setOffline(false);
    await show(page, '#/');
    await page.waitForFunction(
      () => document.querySelector('[data-testid=pending-total]')?.textContent === '0',
      null,
      { timeout: 30000 },
    );
    await show(page, `#/household/${household}`);
    await page.locator('[data-state=sent]').waitFor();
    await screenshot(page, 'household');
  });

  it("shows worker1's visit, case and phone number on staff1's phone", async () => {
    staff = await newPhone(browser);
    const { page } = staff;
    const since = Date.now();
    await signIn(page, 'staff1');
    await syncedSince(page, since);
    await show(page, `#/household/${household}`);
    await memberPhone(page, member).filter({ hasText: offlinePhone }).waitFor();
    await page.getByTestId('visit').filter({ hasText: visitText }).waitFor();
    await show(page, `#/case/${caseId}`);
    await page.getByRole('heading', { name: caseTitle }).waitFor();
    assert.equal(await page.getByTestId('timeline-event').count(), 2);
  });

  it("brings an online edit to the other phone by itself (sync after the edit, change stream)", async () => {
    const notes = '电线已由物业更换';
    await show(staff.page, `#/household/${household}`);
    await show(worker.page, `#/household/${household}/edit`);
    await worker.page.getByLabel(t('notes')).fill(notes);
    await worker.page.getByRole('button', { name: t('save') }).click();
    await worker.page.getByTestId('toast').filter({ hasText: t('saved_here') }).waitFor();
    // No sync by hand: worker1's phone sends the edit shortly after it is
    // made, and the server's `changed` event makes staff1's phone fetch it.
    await staff.page.getByText(notes).waitFor({ timeout: 15000 });
  });

  it('converges on concurrent offline edits of one phone number and shows both values', async () => {
    const mine = '13911110001';
    const theirs = '13922220002';
    await worker.context.setOffline(true);
    await staff.context.setOffline(true);
    await changePhone(worker.page, household, member, mine);
    await memberPhone(worker.page, member).filter({ hasText: mine }).waitFor();
    await changePhone(staff.page, household, member, theirs);
    await memberPhone(staff.page, member).filter({ hasText: theirs }).waitFor();

    await worker.context.setOffline(false);
    await staff.context.setOffline(false);
    await syncNow(worker.page);
    await syncNow(staff.page);
    await syncNow(worker.page);

    const shown = [];
    for (const { page } of [worker, staff]) {
      await show(page, `#/household/${household}`);
      const conflicts = page.getByTestId('conflicts');
      await conflicts.waitFor();
      const text = await conflicts.textContent();
      assert.ok(text.includes(mine) && text.includes(theirs), `both values shown: ${text}`);
      assert.ok(text.includes(t('conflict_explain')));
      shown.push((await memberPhone(page, member).textContent()).trim());
    }
    assert.equal(shown[0], shown[1], 'both phones show the same value');
    assert.ok([mine, theirs].includes(shown[0]));
    await screenshot(worker.page, 'conflict', worker.page.getByTestId('conflicts'));
  });

  it('keeps an edit the server refused on the phone, saying what to do', async () => {
    // worker1 edits a household offline that staff1 meanwhile moves to the
    // community's other grid, out of worker1's sight.
    await show(worker.page, '#/households');
    await worker.page.locator('a.row').nth(1).click();
    await worker.page.getByRole('link', { name: t('record_visit') }).waitFor();
    const moved = idInUrl(worker.page);
    const someone = await worker.page.locator('[data-member]').first().getAttribute('data-member');
    await worker.context.setOffline(true);
    await changePhone(worker.page, moved, someone, '13800000008');

    await show(staff.page, `#/household/${moved}/edit`);
    await staff.page.getByLabel(t('grid')).selectOption('demo.t1.c1.g2');
    await staff.page.getByRole('button', { name: t('save') }).click();
    await staff.page.getByTestId('toast').filter({ hasText: t('saved_here') }).waitFor();
    await syncNow(staff.page);

    await worker.context.setOffline(false);
    await syncNow(worker.page);
    await worker.page.locator('.warn-card').filter({ hasText: t('rejected_help') }).waitFor();
    await show(worker.page, '#/me');
    const rejected = worker.page.getByTestId('rejected');
    await rejected.getByText(`${label('kind', 'hh')} ${moved.slice(3, 11)}`).waitFor();
    assert.ok((await rejected.textContent()).includes(t('rejected_help')));
    assert.equal(await pendingTotal(worker.page), 0);
  });

  it("refuses a supervisor's edit on the phone, with the reason, and keeps nothing pending", async () => {
    const { context, page } = await newPhone(browser);
    const since = Date.now();
    await signIn(page, 'supervisor1');
    await syncedSince(page, since);
    await changePhone(page, household, member, '13700000000');
    const alert = page.getByRole('alert');
    await alert.waitFor();
    const text = await alert.textContent();
    assert.ok(text.includes(label('rule', 'read_only')), text);
    assert.ok(text.includes('supervisors read records; they do not change them'), text);
    assert.equal(await pendingTotal(page), 0);
    await context.close();
  });

  it('wipes a revoked device at its next sync and shows sign-in', async () => {
    const { page } = worker;
    await show(page, '#/me');
    const deviceId = (await page.getByTestId('device-id').textContent()).trim();
    const admin = await api(server.url, '/v1/auth/login', {
      body: { username: 'admin', password: DEMO_PASSWORD, device_name: 'field app test' },
    });
    const devices = await api(server.url, '/v1/devices', { token: admin.access_token });
    const device = devices.find((d) => d.id === deviceId);
    assert.ok(device && device.revoked_at === null, "worker1's phone is listed, not revoked");
    await api(server.url, `/v1/devices/${deviceId}/revoke`, { token: admin.access_token, method: 'POST' });

    await show(page, '#/');
    await page.getByTestId('sync-button').click();
    const notice = page.getByTestId('signin-notice');
    await notice.waitFor();
    assert.ok((await notice.textContent()).includes('此设备已被管理员停用'));
    const stored = await page.evaluate(
      () =>
        new Promise((ok, fail) => {
          const request = indexedDB.open('gridsync');
          request.onerror = () => fail(request.error);
          request.onsuccess = async () => {
            const db = request.result;
            const count = (name) =>
              new Promise((done) => {
                const r = db.transaction(name).objectStore(name).count();
                r.onsuccess = () => done(r.result);
              });
            const counts = { docs: await count('docs'), meta: await count('meta'), auth: await count('auth') };
            db.close();
            ok(counts);
          };
        }),
    );
    assert.deepEqual(stored, { docs: 0, meta: 0, auth: 0 });

    // Nothing is left to sign in with offline either.
    await worker.context.setOffline(true);
    await page.getByLabel(t('username')).fill('worker1');
    await page.getByLabel(t('password')).fill(DEMO_PASSWORD);
    await page.getByRole('button', { name: t('signin') }).click();
    await page.getByRole('alert').filter({ hasText: t('signin_offline_unknown') }).waitFor();
  });
});
