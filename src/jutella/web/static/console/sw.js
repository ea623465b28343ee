// The console's service worker (served as /console-sw.js, scope /console).
//
// It keeps the console's static shell, so a pinned console opens at once and
// shows itself (not a browser error page) when the network is gone, and so
// notifications can be clicked back to the console. It NEVER keeps personal
// data: only GET requests for the page /console itself (no query string: the
// set-up and invitation addresses carry secrets and are never kept) and for
// files under /static/console/ are cached. Everything else (/api/, /ws/,
// attachments, transcripts, contacts.csv) is not touched and goes to the
// network as if there were no worker.
//
// Network first: an online console always gets the newest files; the cache
// is only the fallback.

const CACHE = "jutella-console-shell-v1";

function shellKey(url) {
  if (url.origin !== self.location.origin) return null;
  if (url.pathname === "/console" && url.search === "") return "/console";
  if (url.pathname.startsWith("/static/console/") && url.pathname !== "/static/console/sw.js") return url.pathname;
  return null;
}

self.addEventListener("install", () => self.skipWaiting());

self.addEventListener("activate", (event) => {
  event.waitUntil((async () => {
    for (const name of await caches.keys()) if (name !== CACHE) await caches.delete(name);
    await self.clients.claim();
  })());
});

self.addEventListener("fetch", (event) => {
  const request = event.request;
  if (request.method !== "GET") return;
  const key = shellKey(new URL(request.url));
  if (key === null) return;
  event.respondWith((async () => {
    try {
      const response = await fetch(request);
      if (response.ok && response.type === "basic") {
        const copy = response.clone();
        event.waitUntil(caches.open(CACHE).then((cache) => cache.put(key, copy)));
      }
      return response;
    } catch (error) {
      const cached = await caches.match(key);
      if (cached) return cached;
      throw error;
    }
  })());
});

self.addEventListener("notificationclick", (event) => {
  event.notification.close();
  event.waitUntil((async () => {
    const windows = await self.clients.matchAll({ type: "window", includeUncontrolled: true });
    for (const client of windows) {
      if (new URL(client.url).pathname.startsWith("/console") && "focus" in client) return client.focus();
    }
    return self.clients.openWindow("/console");
  })());
});
