// Signing out of a portal, before the form's POST /logout/ (loaded on the click, by portal.js): this
// device stops getting the user's Web Push messages and keeps nothing of theirs, even on a shared phone.

import { config } from "./base.js";

const headers = { Accept: "application/json", "X-CSRFToken": config.csrf_token };

async function request(method, url) {
  const response = await fetch(url, { method, headers, credentials: "same-origin" });
  return response.ok && method === "GET" ? response.json() : response.ok;
}

// The server's record of this device's subscription: found by its endpoint among the user's own.
async function deleteOnServer(endpoint) {
  let url = "/api/push/subscriptions/";
  while (url) {
    const page = await request("GET", url);
    const mine = page && (page.results || []).find((s) => s.endpoint === endpoint);
    if (mine) return request("DELETE", `/api/push/subscriptions/${mine.id}/`);
    // DRF's `next` is absolute; only its path is followed (a proxy may have named another scheme).
    const next = page && page.next ? new URL(page.next, location.href) : null;
    url = next ? next.pathname + next.search : null;
  }
  return false;
}

async function forget() {
  const registration = await navigator.serviceWorker?.getRegistration("/");
  const subscription = await registration?.pushManager?.getSubscription();
  if (subscription) {
    // An API that is not there, or fails, must not keep the user signed in: the browser's own
    // unsubscribe still stops the messages (the server drops the record when its push gets 404/410).
    await deleteOnServer(subscription.endpoint).catch(() => false);
    await subscription.unsubscribe().catch(() => false);
  }
  if (self.caches) await Promise.all((await caches.keys()).map((name) => caches.delete(name)));
  registration?.active?.postMessage({ type: "logout" });
}

// Resolves within `ms` whatever happens: signing out never waits on a slow server.
export function forgetDevice(ms = 3000) {
  return Promise.race([forget().catch(() => {}), new Promise((resolve) => setTimeout(resolve, ms))]);
}
