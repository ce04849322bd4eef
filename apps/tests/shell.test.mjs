// Checks of the field app's files that need no browser: the service
// worker keeps every file the app loads and changes its version when they
// change, and both languages say everything.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, readdirSync, existsSync } from 'node:fs';
import { join, relative } from 'node:path';
import { FIELD, shellFiles, versions } from '../stamp-sw.mjs';

function files(dir) {
  return readdirSync(dir, { withFileTypes: true }).flatMap((entry) =>
    entry.isDirectory() ? files(join(dir, entry.name)) : [relative(FIELD, join(dir, entry.name))],
  );
}

test('the service worker precaches every file of the app, and only those', () => {
  const shell = shellFiles(readFileSync(join(FIELD, 'sw.js'), 'utf8'));
  // Type declarations are for editors; the worker itself is not part of the shell.
  const needed = files(FIELD).filter((f) => f !== 'sw.js' && !f.endsWith('.d.ts') && !f.endsWith('.gitignore'));
  assert.deepEqual(shell.filter((f) => f !== './').sort(), needed.sort());
  for (const f of shell) assert.ok(f === './' || existsSync(join(FIELD, f)), `${f} exists`);
});

test("the service worker's VERSION changes whenever a file of the app does", () => {
  const [version, expected] = versions();
  assert.equal(version, expected, 'the app changed: run `node stamp-sw.mjs` in apps/ (build.sh does)');
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
