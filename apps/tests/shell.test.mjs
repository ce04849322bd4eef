// Checks of the field app's files that need no browser: the service
// worker keeps every file the app loads and changes its version when they
// change, and both languages say everything.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { readFileSync, readdirSync, existsSync } from 'node:fs';
import { join, relative } from 'node:path';
import { APPS } from './harness.mjs';

const FIELD = join(APPS, 'field');

function files(dir) {
  return readdirSync(dir, { withFileTypes: true }).flatMap((entry) =>
    entry.isDirectory() ? files(join(dir, entry.name)) : [relative(FIELD, join(dir, entry.name))],
  );
}

/** The paths of sw.js's SHELL list. */
function shellFiles(source) {
  const list = source.match(/const SHELL = \[([\s\S]*?)\];/)[1];
  return [...list.matchAll(/'([^']+)'/g)].map((m) => m[1]);
}

test('the service worker precaches every file of the app, and only those', () => {
  const shell = shellFiles(readFileSync(join(FIELD, 'sw.js'), 'utf8'));
  // Type declarations are for editors; the worker itself is not part of the shell.
  const needed = files(FIELD).filter((f) => f !== 'sw.js' && !f.endsWith('.d.ts') && !f.endsWith('.gitignore'));
  assert.deepEqual(shell.filter((f) => f !== './').sort(), needed.sort());
  for (const f of shell) assert.ok(f === './' || existsSync(join(FIELD, f)), `${f} exists`);
});

test("the service worker's VERSION changes whenever a file of the app does", () => {
  // VERSION is the start of a SHA-256 of every precached file (path and
  // bytes): a phone gets a changed app only through a changed sw.js.
  const source = readFileSync(join(FIELD, 'sw.js'), 'utf8');
  const hash = createHash('sha256');
  for (const file of shellFiles(source).filter((f) => f !== './').sort()) {
    hash.update(`${file}\0`);
    hash.update(readFileSync(join(FIELD, file)));
  }
  const expected = hash.digest('hex').slice(0, 12);
  const version = source.match(/const VERSION = '([^']*)';/)[1];
  assert.equal(version, expected, `the app changed: set const VERSION = '${expected}'; in apps/field/sw.js`);
});

test('English has every string Chinese has', async () => {
  const source = readFileSync(join(FIELD, 'i18n.js'), 'utf8');
  const keys = (name) => {
    const body = source.match(new RegExp(`const ${name} = \\{([\\s\\S]*?)\\n\\};`))[1];
    return new Set([...body.matchAll(/^ {2}(\w+):/gm)].map((m) => m[1]));
  };
  const zh = keys('zh');
  const en = keys('en');
  // Rule explanations precede the server's English reason in Chinese only.
  const missing = [...zh].filter((k) => !en.has(k) && !k.startsWith('rule_'));
  const extra = [...en].filter((k) => !zh.has(k));
  assert.deepEqual({ missing, extra }, { missing: [], extra: [] });
});
