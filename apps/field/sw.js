// The field app's service worker: keeps the app shell (every file of the
// app, the wasm replica included) and serves it cache-first, so that the
// app opens with no network; its data comes from IndexedDB. Requests
// outside the app's scope, the API (/v1/…) among them, are never touched.
//
// VERSION changes whenever a file of the app does (pkg/ included): it is
// the start of a SHA-256 of the files, which tests/shell.test.mjs checks
// and tells when to change. A browser installs a new worker only when this
// file changes; the new worker fetches the whole shell again, takes over
// at once and drops the old copy. A page open meanwhile has loaded all its
// files already (main.js loads even the wasm as it starts), so it never
// mixes two versions; it runs the new one from its next load.

const VERSION = 'cac22f9c0a37';
const CACHE = `gridsync-field-${VERSION}`;

const SHELL = [
  './',
  'index.html',
  'app.css',
  'manifest.webmanifest',
  'icon.svg',
  'main.js',
  'i18n.js',
  'db.js',
  'auth.js',
  'records.js',
  'sync.js',
  'uploads.js',
  'images.js',
  'ui/app.js',
  'ui/common.js',
  'ui/signin.js',
  'ui/today.js',
  'ui/households.js',
  'ui/household.js',
  'ui/visit.js',
  'ui/cases.js',
  'ui/case.js',
  'ui/report.js',
  'ui/photos.js',
  'ui/me.js',
  'vendor/preact-htm.js',
  'pkg/gridsync_web.js',
  'pkg/gridsync_web_bg.wasm',
];

// "/app/" (or wherever the app is served): only requests below it are ours.
const SCOPE = new URL(self.registration.scope).pathname;

self.addEventListener('install', (event) => {
  event.waitUntil(
    (async () => {
      const cache = await caches.open(CACHE);
      // `reload`: past the HTTP cache, so the shell is the server's current one.
      await cache.addAll(SHELL.map((path) => new Request(path, { cache: 'reload' })));
      await self.skipWaiting();
    })(),
  );
});

self.addEventListener('activate', (event) => {
  event.waitUntil(
    (async () => {
      for (const name of await caches.keys()) {
        if (name.startsWith('gridsync-field-') && name !== CACHE) await caches.delete(name);
      }
      await self.clients.claim();
    })(),
  );
});

self.addEventListener('fetch', (event) => {
  const request = event.request;
  const url = new URL(request.url);
  if (request.method !== 'GET' || url.origin !== self.location.origin || !url.pathname.startsWith(SCOPE)) return;
  event.respondWith(
    (async () => {
      const cache = await caches.open(CACHE);
      // Every page of the app is the one page: the routes live in the hash.
      const hit = await cache.match(request.mode === 'navigate' ? './' : request, { ignoreSearch: true });
      return hit ?? fetch(request);
    })(),
  );
});
