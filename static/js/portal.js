// What every portal page shares: the header (connection state, notification bell, language, sound)
// and the socket.

import { $, $$, announce, api, checkDay, config, errorText, signIn, t } from "./base.js";
import { initBell, initSound } from "./bell.js";
import { createSocket } from "./socket.js";

function initLanguage() {
  for (const button of $$(".lang [data-lang]")) {
    button.addEventListener("click", async () => {
      if (button.getAttribute("aria-pressed") === "true") return;
      const result = await api("POST", "/api/me/language/", { language: button.dataset.lang });
      if (result.ok) location.reload();
      else alert(errorText(result));
    });
  }
}

// The menu (a disclosure: a phone shows it on the tap, a wide screen always); Escape or a tap
// elsewhere closes it. "Get alerts on this phone" in the bell's panel loads its code on the tap.
function initMenu() {
  const button = $(".menu-btn");
  const open = (yes) => button.setAttribute("aria-expanded", String(yes));
  button.addEventListener("click", () => open(button.ariaExpanded !== "true"));
  document.addEventListener("keydown", (event) => {
    if (event.key === "Escape" && button.ariaExpanded === "true") {
      open(false);
      button.focus();
    }
  });
  document.addEventListener("click", (event) => event.target.closest(".menu-btn, .tools") || open(false));
  const push = $('[data-testid="push-enable"]');
  push.addEventListener("click", async () => (await import("./alerts.js")).enableHere(push, $('[data-testid="push-message"]')));
}

function initConnection(socket) {
  const node = $('[data-testid="connection-status"]');
  let connectedOnce = false;
  // How many times the socket has (re)opened: lets a test see a reconnect it cannot time.
  node.dataset.sessions = "0";
  socket.on("ready", () => {
    node.dataset.sessions = String(Number(node.dataset.sessions) + 1);
  });
  socket.on("state", (state) => {
    const key = state === "reconnecting" && !connectedOnce ? "conn.connecting" : `conn.${state}`;
    // The first connect is expected; a connection lost, or back, is news.
    if (connectedOnce && node.dataset.state !== state) announce(t(key));
    connectedOnce = connectedOnce || state === "connected";
    node.dataset.state = state;
    $(".conn-text", node).textContent = t(key);
  });
}

// Sets up the header and the socket, and returns the socket at once so the page can subscribe.
// `loadPage` fetches the page's lists; the socket connects after them, resuming from the stream
// position the page was rendered at, so nothing that happened meanwhile is missed.
export function startPortal(loadPage) {
  const socket = createSocket({ closeCodes: config.close_codes, lastEventId: config.last_event_id });
  socket.on("unauthorized", signIn);
  // Signing out closes the page's socket first, so that the server's 4401 to every socket of the user
  // does not send this page to /login/?next= while the form's own POST is under way; and the device
  // forgets the user first (signout.js). form.submit() does not come back here.
  const out = $(".logout-form");
  out?.addEventListener("submit", (e) => {
    e.preventDefault();
    socket.close();
    if (out.dataset.leaving) return;
    out.dataset.leaving = 1;
    import("./signout.js").then((m) => m.forgetDevice()).finally(() => out.submit());
  });
  navigator.serviceWorker?.register("/sw.js"); // the installable app (mediconnect/pages/sw.js)
  initConnection(socket);
  initSound();
  initLanguage();
  initMenu();
  const bell = initBell(socket);
  let pending = [];
  // A list that failed to load (server away) is fetched again once the socket is back; a device
  // that slept through midnight finds the new day on waking.
  socket.on("ready", async () => {
    checkDay();
    if (!pending.length) return;
    const retry = pending;
    pending = [];
    const results = await Promise.all(retry.map((load) => load()));
    pending.push(...retry.filter((_, i) => !results[i]));
  });
  const loaders = [bell.load, loadPage];
  // The server would not replay what was missed (too much, or no longer kept): load it all again.
  socket.on("resync", async () => {
    const results = await Promise.all(loaders.map((load) => load()));
    pending.push(...loaders.filter((load, i) => !results[i] && !pending.includes(load)));
  });
  Promise.all(loaders.map((load) => load())).then((results) => {
    pending = loaders.filter((_, i) => !results[i]);
    socket.connect();
  });
  return socket;
}
