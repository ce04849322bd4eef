// The field app's uploader (field/uploads.js) against a server in memory
// that answers as `PUT /v1/attachments/{sha256}` does: files go in chunks,
// an upload resumes where the server stands, a chunk sent from the wrong
// place is sent again from where the server says, a file no record names
// yet waits, one refused for good leaves the queue and is kept as failed,
// and a busy server or a lost connection ends the run.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Uploader, CHUNK_BYTES } from '../field/uploads.js';

// The uploader asks whether the phone is online before a run.
globalThis.navigator ??= { onLine: true };

const json = (status, body, headers = {}) =>
  new Response(JSON.stringify(body), { status, headers: { 'Content-Type': 'application/json', ...headers } });

/**
 * A server holding uploads in memory; `hooks.put(sha, range)` may answer a
 * PUT first, `hooks.state(sha)` a GET of where an upload stands.
 */
function fakeServer(hooks = {}) {
  const uploads = new Map(); // sha → {received, size, complete}
  const puts = [];
  return {
    uploads,
    puts,
    async request(path, init = {}) {
      const [, sha, tail] = path.match(/^\/v1\/attachments\/([0-9a-f]+)(\/upload)?$/);
      const upload = uploads.get(sha);
      if (tail) {
        const early = await hooks.state?.(sha);
        if (early) return early;
        if (!upload) return json(404, { code: 'not_found', message: 'no upload' });
        return json(200, { sha256: sha, ...upload });
      }
      const range = init.headers['Content-Range'] ?? null;
      const body = init.body;
      puts.push({ sha, range, length: body.length });
      const early = await hooks.put?.(sha, range);
      if (early) return early;
      const [first, total] = range
        ? (([, a, , t]) => [Number(a), Number(t)])(range.match(/^bytes (\d+)-(\d+)\/(\d+)$/))
        : [0, body.length];
      const state = upload ?? { received: 0, size: total, complete: false };
      if (state.complete) return json(200, { sha256: sha, size: total, media_type: 'image/jpeg', complete: true });
      if (first !== state.received) {
        return json(409, { code: 'upload_offset', message: 'elsewhere' }, { 'Upload-Offset': String(state.received) });
      }
      state.received += body.length;
      uploads.set(sha, state);
      if (state.received === total) {
        state.complete = true;
        return json(201, { sha256: sha, size: total, media_type: 'image/jpeg', complete: true });
      }
      return json(202, { sha256: sha, received: state.received, size: total, complete: false }, {
        'Upload-Offset': String(state.received),
      });
    },
  };
}

/** The replica's side: a queue of uploads, all ready; `done` records uploadDone calls. */
function fakeRecords(queue) {
  const done = [];
  return {
    db: null,
    done,
    uploads: () => queue,
    uploadsReady: () => [...queue],
    async uploadDone(sha, extraMeta) {
      done.push({ sha, extraMeta });
      queue.splice(
        queue.findIndex((u) => u.sha256 === sha),
        1,
      );
    },
  };
}

const sha = (c) => c.repeat(64);
const file = (size) => new Uint8Array(size).map((_, i) => i % 251);

function uploader(server, queue, files) {
  const records = fakeRecords(queue);
  const up = new Uploader(records, server, { readFile: async (s) => files[s] });
  return { up, records };
}

test('sends a file in chunks with Content-Range, and a small one whole', async () => {
  const server = fakeServer();
  const big = CHUNK_BYTES * 2 + 1000;
  const queue = [
    { sha256: sha('a'), media_type: 'image/jpeg', size: big, record: 'cs_1' },
    { sha256: sha('b'), media_type: 'image/jpeg', size: 5000, record: 'cs_1' },
  ];
  const { up, records } = uploader(server, queue, { [sha('a')]: file(big), [sha('b')]: file(5000) });
  await up.run();
  assert.deepEqual(
    server.puts.map((p) => p.range),
    [
      `bytes 0-${CHUNK_BYTES - 1}/${big}`,
      `bytes ${CHUNK_BYTES}-${2 * CHUNK_BYTES - 1}/${big}`,
      `bytes ${2 * CHUNK_BYTES}-${big - 1}/${big}`,
      null,
    ],
  );
  assert.deepEqual(
    records.done.map((d) => d.sha),
    [sha('a'), sha('b')],
  );
  assert.equal(up.stateOf(sha('a')).kind, 'done');
});

test('resumes where the server stands, and from its Upload-Offset when a chunk was sent from elsewhere', async () => {
  const size = CHUNK_BYTES * 2;
  let moved = false;
  const server = fakeServer({
    // The first PUT meets a server that has moved on since it was asked
    // (a chunk of a connection thought lost had arrived after all).
    put: (s) => {
      if (!moved) {
        moved = true;
        server.uploads.get(s).received = 700;
      }
      return null;
    },
  });
  server.uploads.set(sha('c'), { received: 300, size, complete: false });
  const queue = [{ sha256: sha('c'), media_type: 'image/jpeg', size, record: 'cs_1' }];
  const { up, records } = uploader(server, queue, { [sha('c')]: file(size) });
  await up.run();
  assert.deepEqual(
    server.puts.map((p) => p.range),
    [
      `bytes 300-${300 + CHUNK_BYTES - 1}/${size}`,
      `bytes 700-${700 + CHUNK_BYTES - 1}/${size}`,
      `bytes ${700 + CHUNK_BYTES}-${size - 1}/${size}`,
    ],
  );
  assert.equal(records.done.length, 1);
  assert.equal(server.uploads.get(sha('c')).complete, true);
});

test('a file already on the server is not sent again', async () => {
  const server = fakeServer();
  server.uploads.set(sha('d'), { received: 10, size: 10, complete: true });
  const queue = [{ sha256: sha('d'), media_type: 'image/png', size: 10, record: 'hh_1' }];
  const { up, records } = uploader(server, queue, { [sha('d')]: file(10) });
  await up.run();
  assert.equal(server.puts.length, 0);
  assert.deepEqual(
    records.done.map((d) => d.sha),
    [sha('d')],
  );
});

test('a file no record names yet waits; one refused for good leaves the queue, kept as failed', async () => {
  const notReferenced = () => json(409, { code: 'not_referenced', message: 'sync the record first' });
  const server = fakeServer({
    // Asked where it stands, or sent a part: either may say it.
    state: (s) => (s === sha('9') ? notReferenced() : null),
    put: (s) => (s === sha('e') ? notReferenced() : json(422, { code: 'hash_mismatch', message: 'the bytes do not match' })),
  });
  const queue = [
    { sha256: sha('9'), media_type: 'image/jpeg', size: 10, record: 'vs_1' },
    { sha256: sha('e'), media_type: 'image/jpeg', size: 10, record: 'cs_1' },
    { sha256: sha('f'), media_type: 'image/jpeg', size: 10, record: 'cs_1' },
  ];
  const { up, records } = uploader(server, queue, { [sha('e')]: file(10), [sha('f')]: file(10), [sha('9')]: file(10) });
  await up.run();
  assert.deepEqual(
    queue.map((u) => u.sha256),
    [sha('9'), sha('e')],
  );
  assert.deepEqual(up.stateOf(sha('e')), { kind: 'queued' });
  assert.deepEqual(up.state.waiting, { [sha('e')]: true, [sha('9')]: true });
  // A waiting file is not sent again at every sync.
  const puts = server.puts.length;
  await up.run();
  assert.equal(server.puts.length, puts);
  assert.equal(up.state.waiting[sha('e')], true);
  assert.deepEqual(up.stateOf(sha('f')), { kind: 'failed', message: 'the bytes do not match' });
  assert.deepEqual(records.done, [
    { sha: sha('f'), extraMeta: { upload_failed: { [sha('f')]: { code: 'hash_mismatch', message: 'the bytes do not match' } } } },
  ]);
});

test('a busy server or a lost connection ends the run; the next one resumes', async () => {
  const size = CHUNK_BYTES * 2;
  let mode = 'busy';
  const server = fakeServer({
    put: (s, range) => {
      if (mode === 'busy') return json(429, { code: 'daily_limit', message: 'later' }, { 'Retry-After': '120' });
      if (mode === 'drop' && range.startsWith(`bytes ${CHUNK_BYTES}-`)) throw new TypeError('Failed to fetch');
      return null;
    },
  });
  const queue = [
    { sha256: sha('1'), media_type: 'image/jpeg', size, record: 'cs_1' },
    { sha256: sha('2'), media_type: 'image/jpeg', size: 10, record: 'cs_1' },
  ];
  const { up, records } = uploader(server, queue, { [sha('1')]: file(size), [sha('2')]: file(10) });
  await up.run();
  assert.equal(server.puts.length, 1, 'nothing more is sent to a busy server');
  assert.equal(records.done.length, 0);
  // Nor before the time it gave, whatever syncs come meanwhile.
  mode = 'up';
  await up.run();
  assert.equal(server.puts.length, 1);
  up.pausedUntil = 0;

  mode = 'drop';
  await up.run();
  assert.equal(records.done.length, 0, 'the run ended with the connection');
  assert.equal(server.uploads.get(sha('1')).received, CHUNK_BYTES);

  mode = 'up';
  const before = server.puts.length;
  await up.run();
  assert.deepEqual(
    server.puts.slice(before).map((p) => p.range),
    [`bytes ${CHUNK_BYTES}-${size - 1}/${size}`, null],
  );
  assert.deepEqual(
    records.done.map((d) => d.sha),
    [sha('1'), sha('2')],
  );
  up.stop();
});
