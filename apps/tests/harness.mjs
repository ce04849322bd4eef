// What the field app's end-to-end test and its benchmark share: the real
// server on a free port, Chromium with phone-sized contexts, and the API.

import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join, resolve, dirname } from 'node:path';
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

/**
 * Starts `gridsync serve --demo` on a free port with a fresh data
 * directory. Returns {url, stop()}; the server's output is kept and
 * printed if it does not come up.
 */
export async function startServer() {
  const bin = resolve(APPS, process.env.GRIDSYNC_BIN ?? '../target/debug/gridsync');
  const dataDir = mkdtempSync(join(tmpdir(), 'gridsync-field-'));
  const port = await freePort();
  const url = `http://127.0.0.1:${port}`;
  const child = spawn(bin, ['serve', '--demo', '--listen', `127.0.0.1:${port}`, '--data-dir', dataDir], {
    stdio: ['ignore', 'pipe', 'pipe'],
    env: { ...process.env, RUST_LOG: process.env.RUST_LOG ?? 'warn' },
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
