// What every portal page shares: config, text, API calls, and the header
// (connection state, notification bell, language, sound).

import { createSocket } from "./socket.js";

export const config = JSON.parse(document.getElementById("mc-config").textContent);
const strings = JSON.parse(document.getElementById("mc-strings").textContent);
const locale = config.language === "bn" ? "bn-BD" : "en-GB";

export function t(key, params = {}) {
  const text = strings[key] ?? key;
  return text.replace(/\{(\w+)\}/g, (whole, name) => (name in params ? String(params[name]) : whole));
}

export const $ = (selector, root = document) => root.querySelector(selector);
export const $$ = (selector, root = document) => Array.from(root.querySelectorAll(selector));

export function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [name, value] of Object.entries(attrs)) {
    if (value === null || value === undefined || value === false) continue;
    if (name === "text") node.textContent = value;
    else if (name === "class") node.className = value;
    else if (name.startsWith("on")) node.addEventListener(name.slice(2), value);
    else node.setAttribute(name, value === true ? "" : value);
  }
  node.append(...children.filter((c) => c !== null && c !== undefined && c !== false));
  return node;
}

// JSON over fetch with the session cookie and CSRF header. Never throws: `status` 0 is "no answer".
export async function api(method, url, body, headers = {}) {
  const init = {
    method,
    credentials: "same-origin",
    headers: { Accept: "application/json", "X-CSRFToken": config.csrf_token, ...headers },
  };
  if (body !== undefined) {
    init.headers["Content-Type"] = "application/json";
    init.body = JSON.stringify(body);
  }
  let response;
  try {
    response = await fetch(url, init);
  } catch {
    return { ok: false, status: 0, data: null };
  }
  if (response.status === 401) signIn();
  let data = null;
  try {
    data = await response.json();
  } catch {
    data = null;
  }
  return { ok: response.ok, status: response.status, data };
}

function signIn() {
  location.assign(`/login/?next=${encodeURIComponent(location.pathname)}`);
}

// A message for a refused request: the API's `detail`, else the first field error.
export function errorText(result) {
  if (result.status === 0) return t("error.network");
  const data = result.data;
  if (data && typeof data === "object") {
    if (typeof data.detail === "string") return data.detail;
    for (const value of Object.values(data)) {
      if (Array.isArray(value) && value.length) return String(value[0]);
    }
  }
  return t("error.generic");
}

// `date` is YYYY-MM-DD (already the clinic's day); shown as a weekday and date in the page's language.
export function formatDate(date) {
  const [y, m, d] = date.split("-").map(Number);
  return new Intl.DateTimeFormat(locale, {
    weekday: "short",
    day: "numeric",
    month: "short",
    year: "numeric",
    timeZone: "UTC",
  }).format(new Date(Date.UTC(y, m - 1, d)));
}

// An instant (ISO 8601), shown in the clinic's time zone.
export function formatMoment(iso) {
  return new Intl.DateTimeFormat(locale, {
    day: "numeric",
    month: "short",
    hour: "2-digit",
    minute: "2-digit",
    timeZone: config.time_zone,
  }).format(new Date(iso));
}

export function statusLabel(status) {
  return t(`status.${status}`);
}

// One row per appointment, kept in order; an older copy never overwrites a newer one.
export function appointmentList(list, { render, order, keep = () => true, changed = () => {} }) {
  const rows = new Map();
  const known = new Map();

  function place(appointment, row) {
    const next = $$(":scope > li", list).find((node) => {
      const other = known.get(Number(node.dataset.id));
      return node !== row && other && order(appointment, other) < 0;
    });
    list.insertBefore(row, next || null);
  }

  function upsert(appointment) {
    const previous = known.get(appointment.id);
    if (previous && previous.updated_at > appointment.updated_at) return;
    const old = rows.get(appointment.id);
    const focused = old && old.contains(document.activeElement) ? document.activeElement.dataset.action || "" : null;
    if (old) old.remove();
    rows.delete(appointment.id);
    known.delete(appointment.id);
    if (keep(appointment)) {
      known.set(appointment.id, appointment);
      const row = render(appointment);
      rows.set(appointment.id, row);
      place(appointment, row);
      if (focused !== null) {
        // Keyboard users stay where they were after the row is redrawn.
        const target = (focused && $(`[data-action="${focused}"]`, row)) || row;
        if (target === row) row.tabIndex = -1;
        target.focus();
      }
    }
    changed();
  }

  return {
    upsert,
    get: (id) => known.get(id),
    size: () => known.size,
  };
}

let audio = null;
function beep() {
  try {
    audio = audio || new AudioContext();
    if (audio.state === "suspended") audio.resume();
    const osc = audio.createOscillator();
    const gain = audio.createGain();
    osc.frequency.value = 880;
    gain.gain.setValueAtTime(0.0001, audio.currentTime);
    gain.gain.exponentialRampToValueAtTime(0.2, audio.currentTime + 0.02);
    gain.gain.exponentialRampToValueAtTime(0.0001, audio.currentTime + 0.25);
    osc.connect(gain).connect(audio.destination);
    osc.start();
    osc.stop(audio.currentTime + 0.3);
  } catch {
    // no audio on this device: the badge is enough
  }
}

const SOUND_KEY = "mediconnect.sound";
function soundOn() {
  try {
    return localStorage.getItem(SOUND_KEY) !== "off";
  } catch {
    return true;
  }
}

function initSound() {
  const button = $('[data-testid="sound-toggle"]');
  const show = () => button.setAttribute("aria-pressed", String(soundOn()));
  button.addEventListener("click", () => {
    try {
      localStorage.setItem(SOUND_KEY, soundOn() ? "off" : "on");
    } catch {
      // private mode: the choice lasts for this page only
    }
    show();
  });
  // Browsers start audio only after a user gesture; prepare it on the first one.
  const unlock = () => {
    if (!audio && soundOn()) {
      try {
        audio = new AudioContext();
      } catch {
        audio = null;
      }
    }
  };
  document.addEventListener("pointerdown", unlock, { once: true });
  document.addEventListener("keydown", unlock, { once: true });
  show();
}

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

function initConnection(socket) {
  const node = $('[data-testid="connection-status"]');
  let connectedOnce = false;
  // How many times the socket has (re)opened: lets a test see a reconnect it cannot time.
  node.dataset.sessions = "0";
  socket.on("ready", () => {
    node.dataset.sessions = String(Number(node.dataset.sessions) + 1);
  });
  socket.on("state", (state) => {
    connectedOnce = connectedOnce || state === "connected";
    node.dataset.state = state;
    const key = state === "reconnecting" && !connectedOnce ? "conn.connecting" : `conn.${state}`;
    $(".conn-text", node).textContent = t(key);
  });
}

function initNotifications(socket) {
  const bell = $('[data-testid="notification-bell"]');
  const badge = $('[data-testid="notification-badge"]');
  const panel = $("#notif-panel");
  const list = $('[data-testid="notification-list"]');
  const empty = $('[data-role="notif-empty"]');
  const items = new Map();

  // The badge always shows the server's count: the notification events carry it (`unread_count`),
  // and the page asks over REST after its own writes and on every (re)connect, one request at a time.
  function showCount(count) {
    badge.textContent = String(count);
    badge.hidden = count === 0;
  }
  function countFrom(data) {
    if (typeof data.unread_count === "number") showCount(data.unread_count);
    else refreshCount();
  }
  let inFlight = false;
  let again = false;
  async function refreshCount() {
    if (inFlight) {
      again = true;
      return;
    }
    inFlight = true;
    const result = await api("GET", "/api/notifications/unread-count/");
    inFlight = false;
    if (result.ok) showCount(result.data.count);
    if (again) {
      again = false;
      refreshCount();
    }
  }

  function setRead(item) {
    item.dataset.read = "true";
    item.classList.remove("unread");
    const mark = $(".unread-mark", item);
    if (mark) mark.remove();
  }

  function render(n) {
    const item = el(
      "button",
      {
        type: "button",
        class: n.is_read ? "notif" : "notif unread",
        "data-testid": "notification-item",
        "data-id": n.id,
        "data-read": String(n.is_read),
        onclick: () => markRead(n.id),
      },
      el("span", { class: "notif-title", text: n.title }),
      n.is_read ? null : el("span", { class: "unread-mark", text: t("notifications.unread") }),
      el("span", { class: "notif-msg", text: n.message }),
      el("time", { class: "notif-time", datetime: n.created_at, text: formatMoment(n.created_at) }),
    );
    return el("li", {}, item);
  }

  function add(n, { top }) {
    if (items.has(n.id)) {
      if (n.is_read) setRead(items.get(n.id));
      return;
    }
    const li = render(n);
    items.set(n.id, $("button", li));
    if (top) list.prepend(li);
    else list.append(li);
    empty.hidden = true;
  }

  async function markRead(id) {
    const item = items.get(id);
    if (item && item.dataset.read === "true") return;
    if (item) setRead(item);
    await api("POST", `/api/notifications/${id}/read/`);
    refreshCount();
  }

  async function load() {
    const result = await api("GET", "/api/notifications/?page_size=30");
    if (!result.ok) return false;
    if (reloading) {
      reloading = false;
      items.clear();
      list.replaceChildren();
    }
    for (const n of result.data.results) add(n, { top: false });
    empty.textContent = t("notifications.empty");
    empty.hidden = items.size > 0;
    return true;
  }

  function toggle(open) {
    panel.hidden = !open;
    bell.setAttribute("aria-expanded", String(open));
  }
  bell.addEventListener("click", () => toggle(panel.hidden));
  document.addEventListener("keydown", (event) => {
    if (event.key === "Escape" && !panel.hidden) {
      toggle(false);
      bell.focus();
    }
  });
  document.addEventListener("click", (event) => {
    if (!panel.hidden && !event.target.closest(".bell-wrap")) toggle(false);
  });

  $('[data-testid="mark-all-read"]').addEventListener("click", async () => {
    for (const item of items.values()) setRead(item);
    await api("POST", "/api/notifications/read-all/");
    refreshCount();
  });

  socket.on("ready", refreshCount);
  // After a resync the list is rebuilt from the server (newest first) and the count asked again.
  let reloading = false;
  socket.on("resync", () => {
    reloading = true;
    refreshCount();
  });
  socket.on("new_notification", (n) => {
    add(n, { top: true });
    countFrom(n);
    if (!n.is_read && soundOn()) beep();
  });
  socket.on("notification_read", (data) => {
    const item = items.get(data.notification_id);
    if (item) setRead(item);
    countFrom(data);
  });
  socket.on("all_notifications_read", (data) => {
    for (const item of items.values()) setRead(item);
    countFrom(data);
  });
  return { load };
}

// Sets up the header and the socket, and returns the socket at once so the page can subscribe.
// `loadPage` fetches the page's lists; the socket connects after them, resuming from the stream
// position the page was rendered at, so nothing that happened meanwhile is missed.
export function startPortal(loadPage) {
  const socket = createSocket({ lastEventId: config.last_event_id });
  socket.on("unauthorized", signIn);
  // Signing out closes the page's socket first, so that the server's 4401 to every socket of the user
  // does not send this page to /login/?next= while the form's own POST is under way.
  document.querySelector(".logout-form")?.addEventListener("submit", () => socket.close());
  initConnection(socket);
  initSound();
  initLanguage();
  const notifications = initNotifications(socket);
  let pending = [];
  // A list that failed to load (server away) is fetched again once the socket is back.
  socket.on("ready", async () => {
    if (!pending.length) return;
    const retry = pending;
    pending = [];
    const results = await Promise.all(retry.map((load) => load()));
    pending.push(...retry.filter((_, i) => !results[i]));
  });
  const loaders = [notifications.load, loadPage];
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
