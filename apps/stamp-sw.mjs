// Sets VERSION in field/sw.js to the fingerprint of the field app's files,
// so that phones fetch the app again exactly when it changed:
//
//   node stamp-sw.mjs
//
// build.sh runs it after building; tests/shell.test.mjs checks it was.

import { createHash } from 'node:crypto';
import { readFileSync, writeFileSync } from 'node:fs';
import { join, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';

export const FIELD = join(dirname(fileURLToPath(import.meta.url)), 'field');
const SW = join(FIELD, 'sw.js');
const VERSION_LINE = /^const VERSION = '([^']*)';$/m;

/** The paths of the SHELL list in sw.js's source. */
export function shellFiles(source) {
  const list = source.match(/const SHELL = \[([\s\S]*?)\];/)[1];
  return [...list.matchAll(/'([^']+)'/g)].map((m) => m[1]);
}

/** The start of a SHA-256 of every file the service worker precaches (path and bytes). */
export function fingerprint(source) {
  const hash = createHash('sha256');
  for (const file of shellFiles(source)
    .filter((f) => f !== './')
    .sort()) {
    hash.update(`${file}\0`);
    hash.update(readFileSync(join(FIELD, file)));
  }
  return hash.digest('hex').slice(0, 12);
}

/** [the VERSION in sw.js, the one its files call for]. */
export function versions() {
  const source = readFileSync(SW, 'utf8');
  return [source.match(VERSION_LINE)[1], fingerprint(source)];
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const source = readFileSync(SW, 'utf8');
  const version = fingerprint(source);
  writeFileSync(SW, source.replace(VERSION_LINE, `const VERSION = '${version}';`));
  console.log(`field/sw.js: VERSION ${version}`);
}
