// The service worker (served at /sw.js by server/offline.py, which puts its configuration in
// front of this text as self.KALKAN_OFFLINE = {version, assets, pages, languages,
// defaultLanguage}). After a first visit the hashing pages and everything they load come from
// its cache, so a repeat visit costs no network bytes and works offline.
//
// It stores only what the configuration lists (plus the files under /static/ those pages link
// to) and answers only GET requests for them. Everything else -- the
// case page, /api/, any POST -- goes to the network untouched and is never stored.
/* global KALKAN_OFFLINE */
const CONFIG = self.KALKAN_OFFLINE;
const PREFIX = "kalkan-offline-";
const CACHE = PREFIX + CONFIG.version;
const ORIGIN = self.location.origin;
const LANGUAGES = new Set(CONFIG.languages);
const pagePaths = new Set(CONFIG.pages.map((url) => new URL(url, ORIGIN).pathname));
const assetPaths = new Set(CONFIG.assets);
// What the pages load from /static/ (e.g. /static/kalkan.css), found while precaching them.
const LINKED = /<(?:link|script|img)\b[^>]*?\b(?:href|src)="(\/static\/[^"]+)"/g;
// The quick exit was pressed (quick-exit.js tells every worker, then unregisters it): store
// nothing more. A worker still precaching would otherwise go on writing after the page deleted
// the caches.
let abandoned = false;

/** Whether the cached copy of a page is the page asked for: only `lang` and parameters the
 * page's script reads itself. The landing page renders `ref` into its links, for instance. */
function cachedCopyFits(url) {
  const allowed = new Set(["lang", ...(CONFIG.scriptParams[url.pathname] ?? [])]);
  return [...url.searchParams.keys()].every((name) => allowed.has(name));
}

/** The cache key of a page: its path and language only. */
function pageKey(url) {
  const lang = url.searchParams.get("lang");
  return `${url.pathname}?lang=${LANGUAGES.has(lang) ? lang : CONFIG.defaultLanguage}`;
}

async function fromOlderCache(url) {
  // A hashed asset name always means the same bytes: copy it from the previous version's cache
  // instead of downloading it again.
  for (const name of await caches.keys()) {
    if (!name.startsWith(PREFIX) || name === CACHE) continue;
    const hit = await (await caches.open(name)).match(url, { ignoreVary: true });
    if (hit) return hit;
  }
  return null;
}

async function precache() {
  const cache = await caches.open(CACHE);
  const put = async (url, { reuse }) => {
    if (abandoned) throw new Error("quick exit: precaching abandoned");
    const request = new Request(url, { credentials: "same-origin" });
    const response = (reuse && await fromOlderCache(url)) || await fetch(request, { cache: reuse ? "default" : "no-cache" });
    if (!response.ok) throw new Error(`precaching ${url}: HTTP ${response.status}`);
    await cache.put(request, response.clone());
    return response;
  };
  const linked = new Set();
  for (const url of CONFIG.pages) {
    const html = await (await put(url, { reuse: false })).text();
    for (const [, path] of html.matchAll(LINKED)) linked.add(new URL(path.replace(/&amp;/g, "&"), ORIGIN).pathname);
  }
  for (const url of linked) await put(url, { reuse: false });
  for (const url of CONFIG.assets) await put(url, { reuse: true });
}

self.addEventListener("install", (event) => {
  event.waitUntil(precache().then(() => self.skipWaiting()));
});

self.addEventListener("message", (event) => {
  if (event.data?.type !== "kalkan-quick-exit") return;
  abandoned = true;
  // Every cache of this origin is ours; the page deletes them too, this covers what a precache
  // in flight opened after it looked.
  event.waitUntil(caches.keys().then((names) => Promise.all(names.map((name) => caches.delete(name)))));
});

self.addEventListener("activate", (event) => {
  event.waitUntil((async () => {
    for (const name of await caches.keys()) {
      if (name.startsWith(PREFIX) && name !== CACHE) await caches.delete(name);
    }
    await self.clients.claim();
  })());
});

async function cacheFirst(request, key) {
  const hit = await (await caches.open(CACHE)).match(key, { ignoreVary: true });
  return hit ?? fetch(request); // not precached (e.g. a /static/ file no page links): the network
}

async function networkFirst(request, key) {
  try {
    return await fetch(request);
  } catch (err) {
    // Offline: the page without what its parameters would have added beats no page at all.
    const hit = await (await caches.open(CACHE)).match(key, { ignoreVary: true });
    if (hit) return hit;
    throw err;
  }
}

self.addEventListener("fetch", (event) => {
  const { request } = event;
  if (request.method !== "GET") return; // POST answers (the case page) are never touched
  const url = new URL(request.url);
  if (url.origin !== ORIGIN) return;
  if (assetPaths.has(url.pathname)) {
    event.respondWith(cacheFirst(request, request));
  } else if (request.mode === "navigate" && pagePaths.has(url.pathname)) {
    event.respondWith(cachedCopyFits(url) ? cacheFirst(request, pageKey(url)) : networkFirst(request, pageKey(url)));
  } else if (url.pathname.startsWith("/static/") && request.mode !== "navigate") {
    event.respondWith(cacheFirst(request, url.pathname));
  }
});
