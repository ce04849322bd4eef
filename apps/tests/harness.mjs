// What the field app's end-to-end test and its benchmark share: the real
// server on a free port, Chromium with phone-sized contexts, and the API.

import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import http from 'node:http';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join, resolve, dirname, extname, normalize } from 'node:path';
import { fileURLToPath } from 'node:url';
import { chromium } from 'playwright-core';

export const APPS = resolve(dirname(fileURLToPath(import.meta.url)), '..');
export const DEMO_PASSWORD = 'gridsync-demo';
export const CHROMIUM = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';

function freePort() {
  return new Promise((ok, fail) => {
    const server = createServer();
    server.on('error', fail);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address();
      server.close(() => ok(port));
    });
  });
}

const sleep = (ms) => new Promise((ok) => setTimeout(ok, ms));

const TYPES = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.wasm': 'application/wasm',
  '.webmanifest': 'application/manifest+json',
  '.svg': 'image/svg+xml',
};

/**
 * For working on the apps without rebuilding the server (which embeds
 * apps/field and apps/console): a proxy that answers the paths under each
 * prefix of `dirs` ({'/app/': dir, '/console/': dir}) from its directory
 * and passes every other request to `target`. Returns {url, close()}.
 */
async function appProxy(dirs, target) {
  const proxy = http.createServer(async (request, response) => {
    const path = new URL(request.url, target).pathname;
    const prefix = Object.keys(dirs).find((p) => path.startsWith(p));
    if (prefix) {
      const dir = dirs[prefix];
      const file = normalize(join(dir, path.slice(prefix.length) || 'index.html'));
      try {
        if (!file.startsWith(dir)) throw new Error('outside the app');
        const body = await readFile(file);
        response.writeHead(200, { 'Content-Type': TYPES[extname(file)] ?? 'application/octet-stream' });
        response.end(body);
      } catch {
        response.writeHead(404).end();
      }
      return;
    }
    const upstream = http.request(new URL(request.url, target), { method: request.method, headers: request.headers });
    upstream.on('response', (answer) => {
      response.writeHead(answer.statusCode, answer.headers);
      answer.pipe(response);
    });
    upstream.on('error', () => response.destroy());
    request.pipe(upstream);
  });
  const port = await freePort();
  await new Promise((ok) => proxy.listen(port, '127.0.0.1', ok));
  return {
    url: `http://127.0.0.1:${port}`,
    close: () => {
      proxy.closeAllConnections();
      return new Promise((ok) => proxy.close(ok));
    },
  };
}

/**
 * The server's environment: ours without GRIDSYNC_* (the server reads
 * those as settings, and refuses ones it does not know, such as
 * GRIDSYNC_BIN).
 */
function serverEnv() {
  const env = Object.fromEntries(Object.entries(process.env).filter(([key]) => !key.startsWith('GRIDSYNC_')));
  return { ...env, RUST_LOG: process.env.RUST_LOG ?? 'warn' };
}

/**
 * Starts `gridsync serve --demo` on a free port with a fresh data
 * directory. Returns {url, stop()}; the server's output is kept and
 * printed if it does not come up. With GRIDSYNC_APP_DIR set (e.g.
 * `field`), /app/ is served from that directory instead of the binary;
 * with GRIDSYNC_CONSOLE_DIR (e.g. `console`), /console/ likewise.
 */
export async function startServer() {
  const bin = resolve(APPS, process.env.GRIDSYNC_BIN ?? '../target/debug/gridsync');
  const dataDir = mkdtempSync(join(tmpdir(), 'gridsync-field-'));
  const port = await freePort();
  const url = `http://127.0.0.1:${port}`;
  const child = spawn(bin, ['serve', '--demo', '--listen', `127.0.0.1:${port}`, '--data-dir', dataDir], {
    stdio: ['ignore', 'pipe', 'pipe'],
    env: serverEnv(),
  });
  let output = '';
  child.stdout.on('data', (d) => (output += d));
  child.stderr.on('data', (d) => (output += d));
  let exited = null;
  child.on('exit', (code, signal) => (exited = code ?? signal));

  const stop = async () => {
    if (exited === null) {
      child.kill('SIGTERM');
      await new Promise((ok) => child.once('exit', ok));
    }
    rmSync(dataDir, { recursive: true, force: true });
  };

  const deadline = Date.now() + 120000;
  for (;;) {
    if (exited !== null) throw new Error(`gridsync exited (${exited}) before it answered:\n${output}`);
    try {
      if ((await fetch(`${url}/healthz`)).ok) break;
    } catch {
      // Not listening yet.
    }
    if (Date.now() > deadline) {
      await stop();
      throw new Error(`gridsync did not answer /healthz within 120 s:\n${output}`);
    }
    await sleep(200);
  }
  const dirs = {};
  if (process.env.GRIDSYNC_APP_DIR) dirs['/app/'] = resolve(APPS, process.env.GRIDSYNC_APP_DIR);
  if (process.env.GRIDSYNC_CONSOLE_DIR) dirs['/console/'] = resolve(APPS, process.env.GRIDSYNC_CONSOLE_DIR);
  if (Object.keys(dirs).length) {
    const proxy = await appProxy(dirs, url);
    return {
      url: proxy.url,
      stop: async () => {
        await proxy.close();
        await stop();
      },
    };
  }
  return { url, stop };
}

/** JSON API call; throws with the answer's body on an error status. */
export async function api(base, path, { token, method, body } = {}) {
  const response = await fetch(base + path, {
    method: method ?? (body === undefined ? 'GET' : 'POST'),
    headers: {
      ...(body === undefined ? {} : { 'Content-Type': 'application/json' }),
      ...(token ? { Authorization: `Bearer ${token}` } : {}),
    },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await response.text();
  if (!response.ok) throw new Error(`${method ?? 'GET'} ${path}: ${response.status} ${text}`);
  return text ? JSON.parse(text) : null;
}

export function launchBrowser() {
  return chromium.launch({
    executablePath: CHROMIUM,
    args: [
      '--no-sandbox',
      '--disable-gpu',
      '--disable-quic',
      '--no-first-run',
      '--disable-background-networking',
      '--disable-component-update',
      '--disable-sync',
    ],
  });
}

/** A phone: a fresh browser context (its own storage) of 360 × 640. */
export async function newPhone(browser, options = {}) {
  const context = await browser.newContext({
    viewport: { width: 360, height: 640 },
    deviceScaleFactor: 2,
    isMobile: true,
    hasTouch: true,
    locale: 'zh-CN',
    timezoneId: 'Asia/Shanghai',
    serviceWorkers: 'allow',
    ...options,
  });
  const page = await context.newPage();
  page.on('pageerror', (error) => console.error(`[page error] ${error.stack ?? error}`));
  page.on('console', (message) => {
    // Requests failing while the phone is offline are expected.
    if (message.type() === 'error' && !message.text().includes('net::ERR_')) {
      console.error(`[console] ${message.text()}`);
    }
  });
  return { context, page };
}
