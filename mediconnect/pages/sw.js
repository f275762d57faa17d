// MediConnect's service worker, served at /sw.js (scope "/") by mediconnect/pages/pwa.py, which puts
// `MC` above this text: {version, hashed, shell: [URLs to precache], offline, icon, badge}.
//
// It keeps the app shell only: the hashed static files and the offline page. Pages and API answers
// carry patient data: they always go to the network and are never stored here (docs/pwa.md).
// The decisions are plain functions (route, pushPayload, notificationFor, clickTarget) that a test
// calls inside the worker.

/* global MC */
const CACHE = `mc-shell-${MC.version}`;
const SHELL = new Set(MC.shell.filter((url) => url !== MC.offline));
// Where a signed-in user's live page is: such a tab, visible and focused, already shows a push's event
// through its socket.
const PORTAL = /^\/(patient|doctor|visit)\//;
// The alerts that must sound again when a newer one replaces the last on the lock screen.
const RENOTIFY = new Set(["QUEUE_CALLED", "QUEUE_NEXT", "VIDEO_CALL"]);
// Shown when the offline page itself is gone (the caches are emptied at sign-out).
const OFFLINE_FALLBACK = `<!doctype html><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>MediConnect</title><h1>You are offline</h1><p>Check your connection and try again.</p>
<h1 lang="bn">আপনি অফলাইনে আছেন</h1><p lang="bn">ইন্টারনেট সংযোগ দেখে আবার চেষ্টা করুন।</p>`;

// ---- decisions (plain functions) ----

// "shell": answered from the cache; "navigate": a page, from the network, the offline page when there
// is none; null: not touched at all (the browser fetches it; nothing is stored). A file's download
// link and anything else under /api/ are left to the browser even when opened as a page.
function route({ url, mode, method }) {
  if (method !== "GET") return null;
  const target = new URL(url, self.location.href);
  if (target.origin !== self.location.origin || target.pathname.startsWith("/api/")) return null;
  if (mode === "navigate") return "navigate";
  return SHELL.has(target.pathname) ? "shell" : null;
}

// A page of this site to open, from a payload's `url`; anything else is the site's root.
function safeUrl(url) {
  try {
    const target = new URL(url, self.location.origin);
    if (target.origin === self.location.origin) return target.pathname + target.search + target.hash;
  } catch {
    // not a URL
  }
  return "/";
}

// The appointment a notification's page is about, when its URL names one (/visit/12/, ?appointment=12).
function appointmentOf(url) {
  const match = /\/visit\/(\d+)|[?&#]appointment(?:_id)?=(\d+)/.exec(url || "");
  return match ? match[1] || match[2] : null;
}

// The push's JSON payload {notification_id, type, title, body, url}, or null when it is not one.
function pushPayload(text) {
  let data;
  try {
    data = JSON.parse(text);
  } catch {
    return null;
  }
  if (!data || typeof data !== "object" || typeof data.title !== "string" || !data.title) return null;
  return {
    notification_id: data.notification_id ?? null,
    type: typeof data.type === "string" ? data.type : "",
    title: data.title,
    body: typeof data.body === "string" ? data.body : "",
    url: safeUrl(data.url),
  };
}

// One tag per event that a newer one should replace: the queue's alerts of one appointment share
// one, as do the rings of one video visit; any other notification has its own.
function tagFor(payload) {
  const appointment = appointmentOf(payload.url);
  if (payload.type === "QUEUE_CALLED" || payload.type === "QUEUE_NEXT") return `queue-${appointment ?? "today"}`;
  if (payload.type === "VIDEO_CALL") return `call-${appointment ?? payload.notification_id}`;
  return `notification-${payload.notification_id ?? payload.title}`;
}

function isPortal(url) {
  try {
    const target = new URL(url, self.location.origin);
    return target.origin === self.location.origin && PORTAL.test(target.pathname);
  } catch {
    return false;
  }
}

// What to show for a push: {title, options}, or null when a portal tab is on screen and focused (its
// socket shows the event already). `payload` is pushPayload's answer (null: not JSON, shown as a
// generic notice, since a push must show something); `windows` are the site's open tabs as
// {url, visibilityState, focused}.
function notificationFor(payload, windows) {
  if (windows.some((w) => w.visibilityState === "visible" && w.focused && isPortal(w.url))) return null;
  const options = { icon: MC.icon, badge: MC.badge };
  if (!payload) {
    return {
      title: "MediConnect",
      options: { ...options, body: "You have a new notification · আপনার একটি নতুন বিজ্ঞপ্তি আছে", tag: "mediconnect", data: { url: "/" } },
    };
  }
  return {
    title: payload.title,
    options: {
      ...options,
      body: payload.body,
      tag: tagFor(payload),
      renotify: RENOTIFY.has(payload.type),
      requireInteraction: payload.type === "VIDEO_CALL",
      timestamp: Date.now(),
      data: { url: payload.url, notification_id: payload.notification_id, type: payload.type },
    },
  };
}

// Where a click on a notification leads: {focus: i} (the i-th of `windows`, already on the page),
// {focus: i, navigate: url} (a portal tab, moved to the page), or {open: url} (a new window).
function clickTarget(url, windows) {
  const target = safeUrl(url);
  const href = new URL(target, self.location.origin).href;
  const same = windows.findIndex((w) => w.url === href);
  if (same >= 0) return { focus: same };
  const order = windows.map((w, i) => [w, i]).sort(([a], [b]) => Number(b.focused) - Number(a.focused));
  const portal = order.find(([w]) => isPortal(w.url));
  if (portal) return { focus: portal[1], navigate: target };
  return { open: target };
}

// ---- events ----

// Deployed, a static file's name carries its content's hash (MC.hashed): a file the previous version
// already holds is copied from its cache, and a new release downloads only what changed. Otherwise
// (DEBUG, the tests) and for the offline page, everything is fetched again, past the HTTP cache
// (`reload`), so a new version never stores an old file.
async function precache() {
  const cache = await caches.open(CACHE);
  await Promise.all(
    MC.shell.map(async (url) => {
      const kept = MC.hashed && url !== MC.offline ? await caches.match(url) : undefined;
      if (kept) return cache.put(url, kept);
      return cache.add(new Request(url, { cache: "reload", credentials: "same-origin" }));
    }),
  );
}

self.addEventListener("install", (event) => {
  event.waitUntil(precache().then(() => self.skipWaiting()));
});

self.addEventListener("activate", (event) => {
  event.waitUntil(
    (async () => {
      for (const name of await caches.keys()) if (name !== CACHE) await caches.delete(name);
      await self.clients.claim();
    })(),
  );
});

async function fromShell(request) {
  const cached = await caches.match(request, { cacheName: CACHE });
  return cached || fetch(request);
}

async function navigate(event) {
  try {
    const response = await fetch(event.request);
    // Signed in again after a sign-out emptied the cache: the shell is fetched anew (no user data in it).
    if (response.ok && PORTAL.test(new URL(event.request.url).pathname)) {
      event.waitUntil(caches.has(CACHE).then((kept) => kept || precache()).catch(() => {}));
    }
    return response;
  } catch (error) {
    const offline = await caches.match(MC.offline, { cacheName: CACHE });
    return offline || new Response(OFFLINE_FALLBACK, { headers: { "Content-Type": "text/html; charset=utf-8" } });
  }
}

self.addEventListener("fetch", (event) => {
  const decision = route(event.request);
  if (decision === "shell") event.respondWith(fromShell(event.request));
  else if (decision === "navigate") event.respondWith(navigate(event));
});

async function windowsNow() {
  return self.clients.matchAll({ type: "window", includeUncontrolled: true });
}

self.addEventListener("push", (event) => {
  event.waitUntil(
    (async () => {
      let text = null;
      try {
        text = event.data ? event.data.text() : null;
      } catch {
        text = null;
      }
      const shown = notificationFor(pushPayload(text), await windowsNow());
      if (shown) await self.registration.showNotification(shown.title, shown.options);
    })(),
  );
});

self.addEventListener("notificationclick", (event) => {
  event.notification.close();
  event.waitUntil(
    (async () => {
      const windows = await windowsNow();
      const choice = clickTarget(event.notification.data?.url, windows);
      if (choice.open) return self.clients.openWindow(choice.open);
      let client = windows[choice.focus];
      if (choice.navigate) {
        // navigate() works only on a tab this worker controls; another one gets a new window instead.
        try {
          client = (await client.navigate(choice.navigate)) || client;
        } catch {
          return self.clients.openWindow(choice.navigate);
        }
      }
      return client.focus();
    })(),
  );
});

// Sign-out (static/js/signout.js): nothing of this user's stays on the device: no stored files, no
// notifications on the lock screen.
self.addEventListener("message", (event) => {
  if (event.data?.type !== "logout") return;
  event.waitUntil(
    (async () => {
      await Promise.all((await caches.keys()).map((name) => caches.delete(name)));
      for (const notification of await self.registration.getNotifications()) notification.close();
      event.source?.postMessage({ type: "logged-out" });
    })(),
  );
});
