// End-to-end test of the console (apps/console, served at /console/)
// against the real server (`gridsync serve --demo`) and Chromium at
// 1280 × 800: each role sees exactly its scope; a case goes from reported
// to closed through the desk; a ledger with bad rows is imported (and a
// second run imports nothing twice); an admin approves a change held in
// quarantine (made by worker1's phone, the field app, offline while an
// admin moved worker1 to another grid) and revokes that phone. Also saves
// the screenshots in docs/screenshots/console-*.png.
//
// GRIDSYNC_BIN names the server binary (default ../target/debug/gridsync);
// GRIDSYNC_CONSOLE_DIR=console serves /console/ from disk instead of the
// binary (for working on the console without rebuilding the server).

import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, readFileSync, writeFileSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { t, label } from '../console/i18n.js';
import { t as fieldT } from '../field/i18n.js';
import { APPS, DEMO_PASSWORD, startServer, api, launchBrowser, newPhone } from './harness.mjs';

const SCREENSHOTS = resolve(APPS, '../docs/screenshots');

let server;
let browser;
let tmp;
/** Access tokens of the demo users for checking what the API says, by username. */
const tokens = {};
/** Demo users by username, as GET /v1/admin/users lists them. */
const users = {};

async function token(username) {
  if (!tokens[username]) {
    const answer = await api(server.url, '/v1/auth/login', {
      body: { username, password: DEMO_PASSWORD, device_name: 'console test' },
    });
    tokens[username] = answer.access_token;
  }
  return tokens[username];
}

async function asUser(username, path, options = {}) {
  return api(server.url, path, { ...options, token: await token(username) });
}

/** A browser window of 1280 × 800 with the console open and `username` signed in. */
async function desk(username) {
  const context = await browser.newContext({
    viewport: { width: 1280, height: 800 },
    locale: 'zh-CN',
    timezoneId: 'Asia/Shanghai',
    acceptDownloads: true,
  });
  const page = await context.newPage();
  page.on('pageerror', (error) => console.error(`[page error] ${error.stack ?? error}`));
  page.on('console', (message) => {
    if (message.type() === 'error' && !/status of 40[1349]/.test(message.text())) {
      console.error(`[console] ${message.text()}`);
    }
  });
  await page.goto(`${server.url}/console/`);
  await page.getByLabel(t('username')).fill(username);
  await page.getByLabel(t('password')).fill(DEMO_PASSWORD);
  await page.getByRole('button', { name: t('signin') }).click();
  await page.locator('.shell').waitFor();
  return { context, page };
}

/** Goes to a screen (a location hash, e.g. "#/households"). */
async function show(page, hash) {
  await page.evaluate((h) => {
    location.hash = h;
  }, hash);
}

/** Saves the window as docs/screenshots/console-<name>.png once messages have gone. */
async function screenshot(page, name, { fullPage = false } = {}) {
  await page.getByTestId('toast').waitFor({ state: 'detached', timeout: 10000 });
  await page.locator('[aria-busy=true]').first().waitFor({ state: 'detached' });
  await page.evaluate(() => {
    document.activeElement?.blur();
    window.scrollTo(0, 0);
  });
  mkdirSync(SCREENSHOTS, { recursive: true });
  await page.screenshot({ path: resolve(SCREENSHOTS, `console-${name}.png`), fullPage });
}

/** The sections the sidebar offers, by their keys. */
async function sections(page) {
  return page.locator('.sidebar a').evaluateAll((links) => links.map((a) => a.dataset.nav));
}

/** The number an overview figure shows. */
async function figure(page, name) {
  const text = await page.getByTestId(`figure-${name}`).locator('.figure-value').textContent();
  return Number(text.replace(/[^\d.]/g, ''));
}

/** Records a desk action on the open case page and waits for the status it leads to. */
async function act(page, kind, fill, status) {
  await page.getByTestId(`action-${kind}`).click();
  const form = page.getByTestId('event-form');
  await form.waitFor();
  if (fill) await fill(form);
  await page.getByTestId('submit-event').click();
  await page.locator(`[data-testid=case-status][data-status=${status}]`).waitFor();
  assert.equal((await page.getByTestId('case-status').textContent()).trim(), label('status', status));
}

// ---- the field app, for the edits phones make ----------------------------------

/** A phone with the field app open and `username` signed in and synced. */
async function fieldPhone(username) {
  const phone = await newPhone(browser);
  const since = Date.now();
  await phone.page.goto(`${server.url}/app/`);
  await phone.page.getByLabel(fieldT('username')).fill(username);
  await phone.page.getByLabel(fieldT('password')).fill(DEMO_PASSWORD);
  await phone.page.getByRole('button', { name: fieldT('signin') }).click();
  await phone.page.getByRole('heading', { name: fieldT('today_title') }).waitFor();
  await fieldSynced(phone.page, since);
  return phone;
}

/** Resolves when the phone has completed a sync that started at or after `since`. */
async function fieldSynced(page, since) {
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

/** Syncs the phone by hand and waits for it. */
async function fieldSync(page) {
  await show(page, '#/');
  const button = page.getByTestId('sync-button');
  await page.waitForFunction(() => !document.querySelector('[data-testid=sync-button]')?.disabled);
  const since = await page.evaluate(() => Date.now());
  await button.click();
  await fieldSynced(page, since);
}

/** Changes a member's phone number on the phone (saved there, sent at its next sync). */
async function fieldChangePhone(page, householdId, memberId, number) {
  await show(page, `#/household/${householdId}`);
  await page.locator(`[data-member="${memberId}"]`).getByRole('link', { name: fieldT('edit') }).click();
  await page.getByLabel(fieldT('phone')).fill(number);
  await page.getByRole('button', { name: fieldT('save') }).click();
  await page.locator(`[data-member="${memberId}"] [data-testid=member-phone]`).filter({ hasText: number }).waitFor();
}

/** A valid 18-character ID number (GB 11643 check digit) from its first 17 digits. */
function idNumber(first17) {
  const weights = [7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2];
  const sum = [...first17].reduce((s, d, i) => s + Number(d) * weights[i], 0);
  return first17 + '10X98765432'[sum % 11];
}

before(async () => {
  server = await startServer();
  browser = await launchBrowser();
  tmp = mkdtempSync(join(tmpdir(), 'gridsync-console-'));
  for (const user of await asUser('admin', '/v1/admin/users')) users[user.username] = user;
});

after(async () => {
  await browser?.close();
  await server?.stop();
  if (tmp) rmSync(tmp, { recursive: true, force: true });
});

describe('console', () => {
  let staff; // staff1's window: {context, page}
  let worker; // worker1's phone (the field app): {context, page}

  it("shows a supervisor the township's figures, read only, without special-population details", async () => {
    const { context, page } = await desk('supervisor1');
    assert.deepEqual(await sections(page), ['overview', 'desk', 'households', 'ledgers']);
    await page.locator('[data-testid=overview-unit][data-unit="demo.t1"]').waitFor();
    await page.getByTestId('drill-table').waitFor();
    const stats = await asUser('supervisor1', '/v1/stats/cases?org_unit=demo.t1');
    assert.equal(await figure(page, 'total'), stats.total);
    assert.equal(await figure(page, 'overdue'), stats.overdue);
    // One row per community of the township, each with the API's total.
    const byUnit = await asUser('supervisor1', '/v1/stats/cases/by-unit?org_unit=demo.t1');
    const rows = page.locator('[data-testid=drill-table] tbody tr');
    assert.equal(await rows.count(), byUnit.length);
    for (const unit of byUnit) {
      const total = await page.locator(`[data-testid=drill-table] tr[data-unit="${unit.org_unit}"] [data-col=total]`).textContent();
      assert.equal(Number(total), unit.total, unit.org_unit);
    }
    await page.getByTestId('trend-chart').locator('.week').nth(7).waitFor();
    await screenshot(page, 'overview', { fullPage: true });

    // Drill down to a community: its figures.
    await page.locator('[data-testid=drill-table] tr[data-unit="demo.t1.c2"]').click();
    await page.locator('[data-testid=overview-unit][data-unit="demo.t1.c2"]').waitFor();
    const c2 = await asUser('supervisor1', '/v1/stats/cases?org_unit=demo.t1.c2');
    await page.waitForFunction(
      (n) => document.querySelector('[data-testid=figure-total] .figure-value')?.textContent.replace(/\D/g, '') === String(n),
      c2.total,
    );

    // Cases are read only: no actions.
    const reported = (await asUser('supervisor1', '/v1/cases?status=reported&limit=1')).items[0];
    await show(page, `#/case/${reported.id}`);
    await page.getByTestId('timeline').waitFor();
    assert.equal(await page.getByTestId('actions').count(), 0);

    // A household with special-population details: not for supervisors.
    const special = (await asUser('staff1', '/v1/households?tag=released_from_prison&limit=1')).items[0];
    await show(page, `#/household/${special.id}`);
    await page.getByTestId('members').waitFor();
    await page.getByTestId('history').waitFor();
    assert.equal(await page.getByTestId('special').count(), 0);
    assert.ok(!(await page.locator('.screen').textContent()).includes(label('tag', 'released_from_prison')));
    await context.close();
  });

  it("shows community staff only their community, with special-population details", async () => {
    staff = await desk('staff1');
    const { page } = staff;
    assert.deepEqual(await sections(page), ['overview', 'desk', 'households', 'ledgers']);
    await page.locator('[data-testid=overview-unit][data-unit="demo.t1.c1"]').waitFor();
    await page.getByTestId('drill-table').waitFor();
    const stats = await asUser('staff1', '/v1/stats/cases?org_unit=demo.t1.c1');
    assert.equal(await figure(page, 'total'), stats.total);
    const me = await asUser('staff1', '/v1/me');
    const options = await page.getByTestId('unit-picker').locator('option').evaluateAll((os) => os.map((o) => o.value));
    assert.ok(options.includes('demo.t1.c1'));
    for (const unit of options) assert.ok(me.area.includes(unit), `${unit} is in staff1's area`);
    assert.ok(!options.includes('demo.t1.c2'), 'no other community to pick');
    // Naming another community in the address gets the server's refusal, no figures.
    await show(page, '#/overview?unit=demo.t1.c2');
    await page.getByTestId('error').filter({ hasText: 'not_found' }).waitFor();
    assert.equal(await page.getByTestId('figures').count(), 0);

    const special = (await asUser('staff1', '/v1/households?tag=released_from_prison&limit=1')).items[0];
    await show(page, `#/household/${special.id}`);
    const box = page.getByTestId('special');
    await box.waitFor();
    assert.ok((await box.textContent()).includes(label('tag', 'released_from_prison')));
    await page.getByTestId('visits-card').waitFor();
    await page.getByTestId('history').waitFor();

    // The household list, exported as CSV with the filters on screen.
    await show(page, '#/households?tag=released_from_prison');
    await page.locator(`[data-testid=household-table] tr[data-household="${special.id}"]`).waitFor();
    const [download] = await Promise.all([page.waitForEvent('download'), page.getByTestId('export-csv').click()]);
    assert.match(download.suggestedFilename(), /\.csv$/);
    const csv = readFileSync(await download.path(), 'utf8');
    assert.ok(csv.includes(special.head_name), 'the export holds the household shown');
    const listed = await asUser('staff1', '/v1/households?tag=released_from_prison');
    assert.equal(csv.trim().split(/\r?\n/).length, listed.items.length + 1, 'one line per household and a header');

    // The daily logs, exported by the server as Excel.
    await show(page, '#/ledgers?tab=daily');
    await page.getByTestId('daily-table').waitFor();
    const [log] = await Promise.all([
      page.waitForEvent('download'),
      page.getByTestId('export-xlsx').first().click(),
    ]);
    assert.match(log.suggestedFilename(), /\.xlsx$/);
    assert.equal(readFileSync(await log.path()).subarray(0, 2).toString(), 'PK', 'a workbook');

    // The community's ledger, exported by the server as CSV: a row per unit shown.
    await show(page, '#/ledgers?tab=ledger');
    const ledgerRows = page.locator('[data-testid=ledger-table] tbody tr');
    await ledgerRows.first().waitFor();
    const [ledger] = await Promise.all([page.waitForEvent('download'), page.getByTestId('export-csv').click()]);
    const ledgerCsv = readFileSync(await ledger.path(), 'utf8');
    assert.equal(ledgerCsv.trim().split(/\r?\n/).length, (await ledgerRows.count()) + 1, ledgerCsv);
  });

  it('takes a case from reported to closed through the desk', async () => {
    const { page } = staff;
    const reported = (await asUser('staff1', '/v1/cases?status=reported&org_unit=demo.t1.c1&limit=1')).items[0];
    assert.ok(reported, 'the demo has a reported case in community 1');
    await show(page, '#/desk');
    await page.locator(`[data-testid=case-table] tr[data-case="${reported.id}"]`).waitFor();
    await screenshot(page, 'desk');
    await page.locator(`tr[data-case="${reported.id}"] a`).first().click();
    await page.locator('[data-testid=case-status][data-status=reported]').waitFor();
    // Past its time to be accepted: marked overdue, and supervision applies.
    assert.ok(reported.overdue, 'the demo reported case is overdue');
    await page.locator('[data-testid=case-due][data-due=over]').waitFor();
    await page.getByTestId('action-supervise').click();
    await page.getByTestId('event-form').getByLabel(label('data', 'note')).fill('请尽快受理');
    await page.getByTestId('submit-event').click();
    await page.getByTestId('case-supervised').waitFor();
    assert.equal(await page.getByTestId('case-status').getAttribute('data-status'), 'reported');

    await act(page, 'accept', null, 'accepted');
    // Accepted: due within the grid's resolution time, no longer overdue.
    await page.locator('[data-testid=case-due][data-due=ok]').waitFor();
    await act(page, 'classify', (form) => form.getByLabel(label('data', 'class')).selectOption('small'), 'triaged');
    assert.equal((await page.getByTestId('case-class').textContent()).trim(), label('class', 'small'));
    const mediator = users.mediator1.id;
    await act(page, 'assign', (form) => form.getByLabel(t('assign_type_id')).fill(mediator), 'assigned');
    const assignee = await page.getByTestId('case-assignee').textContent();
    assert.ok(assignee.includes(mediator) || assignee.includes(users.mediator1.display_name), assignee);

    // The mediator mediates and resolves it.
    const m = await desk('mediator1');
    assert.deepEqual(await sections(m.page), ['desk']);
    await m.page.locator(`[data-testid=case-table] tr[data-case="${reported.id}"]`).waitFor();
    await show(m.page, `#/case/${reported.id}`);
    await m.page.locator('[data-testid=case-status][data-status=assigned]').waitFor();
    await act(
      m.page,
      'mediate',
      async (form) => {
        await form.getByLabel(label('data', 'outcome')).fill('双方达成一致，当场和解');
        await form.getByLabel(label('data', 'participants')).fill('双方当事人、调解员');
      },
      'handling',
    );
    await act(m.page, 'resolve', (form) => form.getByLabel(label('data', 'result')).selectOption('mediated'), 'resolved');
    await m.context.close();

    // Staff follow up and close.
    await page.reload();
    await page.locator('[data-testid=case-status][data-status=resolved]').waitFor();
    await act(
      page,
      'follow_up',
      (form) => form.getByLabel(label('data', 'satisfaction')).selectOption('satisfied'),
      'followed_up',
    );
    await act(page, 'close', null, 'closed');

    // An action that does not apply: the server's 409 and its message.
    await page.getByTestId('other-action').selectOption('accept');
    await page.getByTestId('submit-event').click();
    const refusal = page.locator('[data-testid=action-error][data-code=not_applicable]');
    await refusal.waitFor();
    assert.ok((await refusal.textContent()).includes('closed'), await refusal.textContent());
    assert.equal(await page.getByTestId('case-status').getAttribute('data-status'), 'closed');

    const kinds = await page.getByTestId('timeline-event').evaluateAll((es) => es.map((e) => e.dataset.kind));
    assert.deepEqual(kinds, [
      'report',
      'supervise',
      'accept',
      'classify',
      'assign',
      'mediate',
      'resolve',
      'follow_up',
      'close',
    ]);
    const view = await asUser('staff1', `/v1/cases/${reported.id}`);
    assert.equal(view.state.status, 'closed');
    assert.equal(view.state.result, 'mediated');
    await screenshot(page, 'case', { fullPage: true });
  });

  it('shows the conflict two phones made on a household and lets staff resolve it', async () => {
    const special = (await asUser('staff1', '/v1/households?tag=released_from_prison&org_unit=demo.t1.c1.g1&limit=1'))
      .items[0];
    const member = (await asUser('staff1', `/v1/records/${special.id}`)).record.members[0];
    const mine = '13911110001';
    const theirs = '13922220002';
    worker = await fieldPhone('worker1');
    const staffPhone = await fieldPhone('staff1');
    await worker.context.setOffline(true);
    await staffPhone.context.setOffline(true);
    await fieldChangePhone(worker.page, special.id, member.id, mine);
    await fieldChangePhone(staffPhone.page, special.id, member.id, theirs);
    await worker.context.setOffline(false);
    await staffPhone.context.setOffline(false);
    await fieldSync(worker.page);
    await fieldSync(staffPhone.page);
    await staffPhone.context.close();

    const { page } = staff;
    await show(page, `#/household/${special.id}`);
    const conflict = page.locator(`[data-testid=conflict][data-path="members/${member.id}/phone"]`);
    await conflict.waitFor();
    const text = await conflict.textContent();
    assert.ok(text.includes(mine) && text.includes(theirs), text);
    assert.ok(text.includes(users.worker1.display_name) && text.includes(users.staff1.display_name), text);
    await page.getByTestId('special').waitFor();
    await page.getByTestId('history').locator('tr', { hasText: users.worker1.display_name }).first().waitFor();
    await screenshot(page, 'household', { fullPage: true });

    // A supervisor sees it, and cannot resolve it.
    const sup = await desk('supervisor1');
    await show(sup.page, `#/household/${special.id}`);
    await sup.page.locator(`[data-testid=conflict][data-path="members/${member.id}/phone"]`).waitFor();
    assert.equal(await sup.page.locator('[data-testid=conflict] button').count(), 0);
    await sup.context.close();

    await conflict.locator('li', { hasText: mine }).getByRole('radio').check();
    await conflict.getByRole('button', { name: t('conflict_resolve') }).click();
    await page.getByTestId('toast').filter({ hasText: t('conflict_resolved') }).waitFor();
    await conflict.waitFor({ state: 'detached' });
    assert.deepEqual(await asUser('staff1', `/v1/records/${special.id}/conflicts`), []);
    const resolved = await asUser('staff1', `/v1/records/${special.id}`);
    assert.equal(resolved.record.members.find((m) => m.id === member.id).phone, mine);
    await page.locator(`[data-member="${member.id}"] [data-testid=member-phone]`).filter({ hasText: mine }).waitFor();
  });

  it('imports a ledger: a dry run reports the bad rows, the import stores the good ones once', async () => {
    const { context, page } = await desk('admin');
    assert.deepEqual(await sections(page), [
      'overview',
      'desk',
      'households',
      'ledgers',
      'import',
      'units',
      'users',
      'devices',
      'quarantine',
      'audit',
    ]);
    await show(page, '#/import');
    // The template, downloaded through the page.
    const [template] = await Promise.all([page.waitForEvent('download'), page.getByTestId('template-csv').click()]);
    const header = readFileSync(await template.path(), 'utf8').replace(/^\uFEFF/, '').split(/\r?\n/)[0];
    const columns = header.split(',');
    for (const name of ['户编号', '网格', '楼栋', '单元', '房号', '姓名', '身份证号', '与户主关系']) {
      assert.ok(columns.includes(name), `the template has ${name}`);
    }
    const row = (fields) => columns.map((c) => fields[c] ?? '').join(',');
    const building = '测试9栋';
    const person = (no, room, name, id, extra = {}) =>
      row({ 户编号: no, 楼栋: building, 单元: '1单元', 房号: room, 姓名: name, 身份证号: id, 与户主关系: '户主', ...extra });
    const lines = [
      header,
      person('A1', '101', '张建国', idNumber('32100219560301001'), { 标签: '孤寡老人' }), // row 2
      person('A1', '101', '李秀英', idNumber('32100219580712002'), { 与户主关系: '配偶' }), // row 3
      person('A2', '102', '王磊', idNumber('32100219800315003')), // row 4
      person('A3', '103', '赵丽', idNumber('32100219900101004')), // row 5
      person('B1', '104', '钱程', '110101199003074515'), // row 6: wrong check digit
      person('B2', '105', '孙悦', idNumber('32100219850505005'), { 网格: 'demo.t9.c9.g9' }), // row 7: no such grid
      person('B3', '101', '周敏', idNumber('32100219870707006')), // row 8: the address of A1 again
      person('B4', '107', '', idNumber('32100219950909007')), // row 9: no name
    ];
    const file = join(tmp, '住户台账.csv');
    writeFileSync(file, `\uFEFF${lines.join('\r\n')}\r\n`);

    await page.getByTestId('import-grid').selectOption('demo.t1.c1.g1');
    await page.getByTestId('import-file').setInputFiles(file);
    assert.ok(await page.getByTestId('import-run').isDisabled(), 'no import before a dry run');
    await page.getByTestId('import-dry-run').click();
    const report = page.locator('[data-testid=import-report][data-dry-run=true]');
    await report.waitFor();
    const refused = await page
      .locator('[data-testid=import-refused] tbody tr')
      .evaluateAll((rows) => rows.map((r) => [Number(r.dataset.row), r.dataset.code]));
    assert.deepEqual(refused, [
      [6, 'bad_id_number'],
      [7, 'unknown_org_unit'],
      [8, 'duplicate_household'],
      [9, 'missing_field'],
    ]);
    const count = async (name) =>
      Number((await page.getByTestId(`import-${name}`).locator('.figure-value').textContent()).replace(/\D/g, ''));
    assert.equal(await count('households'), 3);
    assert.equal(await count('members'), 4);
    const before = await asUser('admin', `/v1/households?org_unit=demo.t1.c1.g1&q=${encodeURIComponent(building)}`);
    assert.equal(before.items.length, 0, 'a dry run stores nothing');
    await screenshot(page, 'import', { fullPage: true });

    await page.getByTestId('import-run').click();
    await page.locator('[data-testid=import-report][data-dry-run=false]').waitFor();
    assert.equal(await count('households'), 3);
    assert.equal(await page.getByTestId('import-imported').locator('a').count(), 3);
    const stored = await asUser('admin', `/v1/households?org_unit=demo.t1.c1.g1&q=${encodeURIComponent(building)}`);
    assert.deepEqual(stored.items.map((h) => h.room).sort(), ['101', '102', '103']);
    assert.deepEqual(stored.items.find((h) => h.room === '101').tags, ['elderly_alone']);

    // The same ledger again: nothing is imported twice.
    await page.getByTestId('import-dry-run').click();
    await page.locator('[data-testid=import-report][data-dry-run=true]').waitFor();
    assert.equal(await count('already'), 3);
    assert.equal(await count('households'), 0);
    await page.getByTestId('import-run').click();
    await page.locator('[data-testid=import-report][data-dry-run=false]').waitFor();
    assert.equal(await count('already'), 3);
    assert.equal(await count('households'), 0);
    const after = await asUser('admin', `/v1/households?org_unit=demo.t1.c1.g1&q=${encodeURIComponent(building)}`);
    assert.equal(after.items.length, 3);
    await context.close();
  });

  it("approves a change held in quarantine and revokes the phone that sent it", async () => {
    // worker1's phone (the field app) edits a household of grid g1 offline,
    // while an admin moves worker1 to grid g2: the edit is then out of
    // worker1's area, and the server holds it for review.
    const phone = worker ?? (worker = await fieldPhone('worker1'));
    const household = (await asUser('admin', '/v1/households?org_unit=demo.t1.c1.g1&sort=-address&limit=1')).items[0];
    const record = await asUser('admin', `/v1/records/${household.id}`);
    const member = record.record.members[0];
    const phoneNumber = '13612345678';

    await phone.context.setOffline(true);
    await fieldChangePhone(phone.page, household.id, member.id, phoneNumber);

    const workerUser = users.worker1;
    await asUser('admin', `/v1/admin/users/${workerUser.id}/role`, {
      method: 'PUT',
      body: { role: 'grid_worker', org_units: ['demo.t1.c1.g2'] },
    });
    await phone.context.setOffline(false);
    await show(phone.page, '#/');
    await phone.page.getByTestId('sync-button').click().catch(() => {});
    let held;
    for (let i = 0; i < 150 && !held; i++) {
      const page = await asUser('admin', '/v1/admin/quarantine');
      held = page.items.find((q) => q.doc_id === household.id);
      if (!held) await new Promise((ok) => setTimeout(ok, 200));
    }
    assert.ok(held, 'the edit is held in quarantine');
    await asUser('admin', `/v1/admin/users/${workerUser.id}/role`, {
      method: 'PUT',
      body: { role: 'grid_worker', org_units: ['demo.t1.c1.g1'] },
    });

    const { context, page } = await desk('admin');
    await show(page, '#/admin/quarantine');
    const entry = page.locator(`[data-testid=quarantine-table] tr[data-entry="${held.id}"]`);
    await entry.waitFor();
    const text = await entry.textContent();
    assert.ok(text.includes(label('rule', held.rule)), text);
    assert.ok(text.includes(held.message), text);
    if (Array.isArray(held.changes)) {
      assert.ok(text.includes(phoneNumber), 'the change shows what it writes');
    }
    await screenshot(page, 'quarantine');
    await entry.getByTestId('q-approve').click();
    await entry.waitFor({ state: 'detached' });
    const decided = await asUser('admin', '/v1/admin/quarantine?status=approved');
    assert.ok(decided.items.some((q) => q.id === held.id && q.decided_at !== null));
    const merged = await asUser('admin', `/v1/records/${household.id}`);
    assert.equal(merged.record.members.find((m) => m.id === member.id).phone, phoneNumber);

    // The phone is lost: revoke it.
    const devices = await asUser('admin', `/v1/devices?user_id=${workerUser.id}`);
    const lost = devices.filter((d) => d.revoked_at === null && d.name !== 'console test').at(-1);
    assert.ok(lost, "worker1's phone is listed");
    await show(page, '#/admin/devices');
    const device = page.locator(`[data-testid=device-table] tr[data-device="${lost.id}"]`);
    await device.getByRole('button', { name: t('dev_revoke') }).click();
    await device.getByRole('button', { name: t('confirm') }).click();
    await page.getByTestId('toast').filter({ hasText: lost.name }).waitFor();
    await device.waitFor({ state: 'detached' }); // revoked ones are hidden by default
    const now = (await asUser('admin', `/v1/devices?user_id=${workerUser.id}`)).find((d) => d.id === lost.id);
    assert.notEqual(now.revoked_at, null);
    await page.getByLabel(t('dev_show_revoked')).check();
    await page.locator(`[data-testid=device-table] tr[data-device="${lost.id}"][data-revoked=true]`).waitFor();
    // The audit log names both decisions.
    await show(page, '#/admin/audit');
    await page.locator('[data-testid=audit-table] tr[data-action=quarantine_approved]').first().waitFor();
    await page.locator('[data-testid=audit-table] tr[data-action=revoke_device]').first().waitFor();
    await context.close();
    await phone.context.close();
  });

  it('refreshes an access token the server refuses, switches to English and signs out', async () => {
    const { page } = staff;
    // An access token the server no longer takes: the console refreshes it and goes on.
    const key = 'gridsync.console.session';
    const before = await page.evaluate((key) => JSON.parse(sessionStorage.getItem(key)), key);
    await page.evaluate(
      ([key, s]) => sessionStorage.setItem(key, JSON.stringify({ ...s, access_token: 'expired' })),
      [key, before],
    );
    await page.reload();
    await show(page, '#/overview');
    await page.getByTestId('figures').waitFor();
    const after = await page.evaluate((key) => JSON.parse(sessionStorage.getItem(key)), key);
    assert.notEqual(after.refresh_token, before.refresh_token, 'the refresh token rotated');
    assert.equal(after.device_id, before.device_id, 'the same sign-in');

    await page.getByTestId('lang-switch').click();
    await page.locator('.sidebar a[data-nav=overview]').filter({ hasText: 'Overview' }).waitFor();
    await page.getByTestId('lang-switch').click();
    await page.locator('.sidebar a[data-nav=overview]').filter({ hasText: '概览' }).waitFor();
    await page.getByRole('button', { name: t('sign_out') }).click();
    await page.getByTestId('signin-notice').filter({ hasText: t('signed_out') }).waitFor();
    assert.equal(await page.evaluate(() => sessionStorage.length), 0);
    await staff.context.close();
  });
});
