// Alerts on this device (Web Push, contract v1.2): turned on from a tap only (browsers ask for the
// permission only in answer to a gesture), and the list of the user's devices that get them. Loaded
// on the tap from the bell's panel, and by the settings page.

import { api, el, errorText, formatMoment, t } from "./base.js";
import { say } from "./forms.js";

const supported = () => "serviceWorker" in navigator && "PushManager" in window && "Notification" in window;

// The VAPID key (base64url) as the bytes `applicationServerKey` takes.
function keyBytes(text) {
  const base64 = text.replace(/-/g, "+").replace(/_/g, "/") + "=".repeat((4 - (text.length % 4)) % 4);
  return Uint8Array.from(atob(base64), (c) => c.charCodeAt(0));
}

// The site's service worker (/sw.js, registered by every portal page; here too when it has not been
// yet), or null when none is ready within 10 s.
async function worker() {
  const ready = navigator.serviceWorker.getRegistration("/").then((found) => {
    if (!found) navigator.serviceWorker.register("/sw.js", { scope: "/" }).catch(() => null);
    return navigator.serviceWorker.ready;
  });
  return Promise.race([ready, new Promise((resolve) => setTimeout(() => resolve(null), 10_000))]);
}

// This device's subscription's endpoint, if it has one.
async function ownEndpoint() {
  if (!supported()) return null;
  const registration = await navigator.serviceWorker.getRegistration("/");
  const subscription = registration && (await registration.pushManager.getSubscription());
  return subscription ? subscription.endpoint : null;
}

// Called from the tap: asks the permission, subscribes with the server's key and saves the subscription.
// Says in `line` how it went; returns the saved subscription or null.
export async function enableHere(button, line) {
  const fail = (text) => (say(line, text, { error: true }), null);
  if (!supported()) return fail(t("push.unsupported"));
  button.disabled = true;
  try {
    say(line, t("push.asking"));
    if ((await Notification.requestPermission()) !== "granted") return fail(t("push.denied"));
    const key = await api("GET", "/api/push/key/");
    if (!key.ok) return fail(errorText(key));
    const registration = await worker();
    if (!registration) return fail(t("push.failed"));
    let subscription;
    try {
      subscription = await registration.pushManager.subscribe({
        userVisibleOnly: true,
        applicationServerKey: keyBytes(key.data.public_key),
      });
    } catch {
      return fail(t(navigator.onLine === false ? "error.network" : "push.unreachable"));
    }
    const saved = await api("POST", "/api/push/subscriptions/", subscription.toJSON());
    if (!saved.ok) return fail(errorText(saved));
    say(line, t("push.done"));
    document.dispatchEvent(new CustomEvent("mc:push-saved", { detail: saved.data }));
    return saved.data;
  } finally {
    button.disabled = false;
  }
}

// A device's name from its push service's host.
const SERVICES = [
  [/(^|\.)(fcm|android)\.googleapis\.com$/, "Chrome"],
  [/(^|\.)push\.services\.mozilla\.com$/, "Firefox"],
  [/(^|\.)push\.apple\.com$/, "Safari"],
  [/(^|\.)notify\.windows\.com$/, "Edge"],
];
export function deviceName(endpoint) {
  let host = endpoint;
  try {
    host = new URL(endpoint).hostname;
  } catch {
    // not a URL: shown as it is
  }
  const known = SERVICES.find(([pattern]) => pattern.test(host));
  return known ? known[1] : host;
}

// The user's devices in `list` (`empty` says when there are none): name, since when, this device
// marked, and a button that removes one.
export async function showDevices(list, empty, line) {
  const [result, mine] = await Promise.all([api("GET", "/api/push/subscriptions/?page_size=100"), ownEndpoint()]);
  if (!result.ok) return false;
  const devices = result.data.results || result.data;
  list.replaceChildren(
    ...devices.map((device) => {
      const here = device.endpoint === mine;
      const name = deviceName(device.endpoint);
      return el(
        "li",
        { class: "device", "data-testid": "push-device", "data-id": device.id, "data-current": String(here) },
        el(
          "span",
          { class: "device-name" },
          el("strong", { text: name }),
          here ? el("span", { class: "status", "data-testid": "push-this-device", text: t("push.this_device") }) : null,
          el("small", { class: "muted", text: t("push.since", { date: formatMoment(device.created_at) }) }),
        ),
        el("button", {
          type: "button",
          class: "btn-danger",
          "data-testid": "push-device-remove",
          "aria-label": `${t("push.remove")}: ${name}${here ? ` (${t("push.this_device")})` : ""}`,
          text: t("push.remove"),
          onclick: async () => {
            const removed = await api("DELETE", `/api/push/subscriptions/${device.id}/`);
            if (!removed.ok && removed.status !== 404) return say(line, errorText(removed), { error: true });
            if (here) await unsubscribeHere();
            say(line, t("push.removed", { device: name }));
            showDevices(list, empty, line);
          },
        }),
      );
    }),
  );
  empty.textContent = t("push.devices_empty");
  empty.hidden = devices.length > 0;
  return true;
}

async function unsubscribeHere() {
  const registration = await navigator.serviceWorker.getRegistration("/");
  const subscription = registration && (await registration.pushManager.getSubscription());
  if (subscription) await subscription.unsubscribe().catch(() => false);
}
