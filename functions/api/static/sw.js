// The Online Inbox's service worker (issue 17), served at /inbox/sw.js with scope /inbox.
// - On install: the shell (scripts, icons, the manifest, the offline page) into its cache.
// - Pages under /inbox (GET navigations): the network first; a good answer is kept (the last
//   MAX_PAGES pages and messages read), and with no network the kept copy is shown with a banner
//   saying so and when it was saved; a page never kept gets the offline page.
// - Never kept: anything but GET, compose forms (each carries its own send key), redirects
//   (a lapsed session's sign-in), anything outside /inbox and /static (so never /api/ nor /l/).
// - Sign-out clears everything (the server's Clear-Site-Data, and the "clear" message below).
'use strict';
const SHELL = 'shell-v1';
const PAGES = 'pages-v1';
const MAX_PAGES = 60;
const OFFLINE = '/inbox/offline';
const SHELL_URLS = [OFFLINE, '/static/inbox.js', '/static/pwa.js', '/static/inbox.webmanifest',
  '/static/icons/icon.svg', '/static/icons/icon-192.png', '/static/icons/icon-512.png'];
const SAVED_AT = 'x-saved-at';

self.addEventListener('install', (event) => {
  event.waitUntil(caches.open(SHELL).then((c) => c.addAll(SHELL_URLS)).then(() => self.skipWaiting()));
});

self.addEventListener('activate', (event) => {
  event.waitUntil(caches.keys()
    .then((keys) => Promise.all(keys.filter((k) => k !== SHELL && k !== PAGES).map((k) => caches.delete(k))))
    .then(() => self.clients.claim()));
});

self.addEventListener('message', (event) => {
  if (event.data === 'clear') {
    event.waitUntil(caches.keys().then((keys) => Promise.all(keys.map((k) => caches.delete(k)))));
  }
});

function keepable(url) {
  return url.pathname === '/inbox' || (url.pathname.startsWith('/inbox/')
    && !url.pathname.endsWith('/compose') && url.pathname !== OFFLINE && url.pathname !== '/inbox/sw.js');
}

// The time a copy was saved, as the banner says it: "14:32", or "12 Nov 14:32" if not today.
function when(iso) {
  const d = new Date(iso);
  const hhmm = String(d.getHours()).padStart(2, '0') + ':' + String(d.getMinutes()).padStart(2, '0');
  if (d.toDateString() === new Date().toDateString()) return hhmm;
  return d.getDate() + ' ' + d.toLocaleString('en', { month: 'short' }) + ' ' + hhmm;
}

async function keep(request, response) {
  const body = await response.clone().arrayBuffer();
  const headers = new Headers(response.headers);
  headers.set(SAVED_AT, new Date().toISOString());
  const cache = await caches.open(PAGES);
  await cache.delete(request, { ignoreVary: true });
  await cache.put(request, new Response(body, { status: 200, headers }));
  const keys = await cache.keys();
  await Promise.all(keys.slice(0, Math.max(0, keys.length - MAX_PAGES)).map((k) => cache.delete(k)));
}

// A kept page, with the offline banner in the place base.html leaves for it.
async function fromCache(request) {
  const kept = await caches.match(request, { cacheName: PAGES, ignoreVary: true });
  if (!kept) return caches.match(OFFLINE, { cacheName: SHELL });
  const html = await kept.text();
  const banner = '<p id="offline" class="offline" role="status">You are offline; showing mail saved on this device at '
    + when(kept.headers.get(SAVED_AT)) + '.</p>';
  const headers = new Headers(kept.headers);
  headers.delete('content-length');
  return new Response(html.replace('<!--offline-->', banner), { status: 200, headers });
}

async function page(event) {
  try {
    const response = await fetch(event.request);
    const type = response.headers.get('content-type') || '';
    if (response.ok && !response.redirected && response.type === 'basic' && type.startsWith('text/html')) {
      event.waitUntil(keep(event.request, response.clone()));
    }
    return response;
  } catch (e) {
    return fromCache(event.request);
  }
}

self.addEventListener('fetch', (event) => {
  const request = event.request;
  if (request.method !== 'GET') return;
  const url = new URL(request.url);
  if (url.origin !== self.location.origin) return;
  if (SHELL_URLS.includes(url.pathname) && url.pathname !== OFFLINE) {
    // The shell: the network when it answers (a new release), the kept copy when it does not.
    event.respondWith(fetch(request).catch(() => caches.match(url.pathname, { cacheName: SHELL })));
    return;
  }
  if (request.mode === 'navigate' && keepable(url)) event.respondWith(page(event));
});
