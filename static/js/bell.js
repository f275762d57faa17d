// The notification bell of every portal page: the badge, the panel and its list, kept live by the
// socket. The badge shows the server's unread count as the notification events carry it
// (`unread_count`); the page asks over REST only after a resync, when events were skipped.

import { $, announce, api, el, formatMoment, num, t } from "./base.js";

let audio = null;
// The chime itself loads with the first notification that rings (static/js/sound.js).
function beep() {
  import("./sound.js")
    .then(({ chime }) => chime((audio = audio || new AudioContext())))
    .catch(() => null); // no audio on this device: the badge is enough
}

const SOUND_KEY = "mediconnect.sound";
function soundOn() {
  try {
    return localStorage.getItem(SOUND_KEY) !== "off";
  } catch {
    return true;
  }
}

export function initSound() {
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

export function initBell(socket) {
  const bell = $('[data-testid="notification-bell"]');
  const badge = $('[data-testid="notification-badge"]');
  const panel = $("#notif-panel");
  const list = $('[data-testid="notification-list"]');
  const empty = $('[data-role="notif-empty"]');
  const items = new Map();

  function showCount(count) {
    badge.dataset.count = String(count);
    badge.textContent = num(count);
    badge.hidden = count === 0;
  }
  showCount(Number(badge.dataset.count) || 0); // as the server rendered it, in the page's digits

  let asking = null;
  async function askCount() {
    if (asking) return asking;
    asking = api("GET", "/api/notifications/unread-count/").then((result) => {
      asking = null;
      if (result.ok) showCount(result.data.count);
    });
    return asking;
  }
  function countFrom(data) {
    if (typeof data.unread_count === "number") showCount(data.unread_count);
    else askCount(); // a server older than the contract's v1.1
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

  // The count follows from the notification_read event this sends to every tab, this one too.
  async function markRead(id) {
    const item = items.get(id);
    if (item && item.dataset.read === "true") return;
    if (item) setRead(item);
    await api("POST", `/api/notifications/${id}/read/`);
  }

  let reloading = false;
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

  // Opening moves focus into the panel (its first notification, else the panel); Escape brings it back.
  function toggle(open) {
    panel.hidden = !open;
    bell.setAttribute("aria-expanded", String(open));
    if (open) ($("button", list) || panel).focus();
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
  });

  // Too far behind to replay: the list is rebuilt from the server (newest first), the count asked.
  socket.on("resync", () => {
    reloading = true;
    askCount();
  });
  socket.on("new_notification", (n) => {
    const fresh = !items.has(n.id);
    add(n, { top: true });
    countFrom(n);
    if (fresh && !n.is_read) {
      announce(t("notifications.new", { title: n.title, message: n.message }));
      if (soundOn()) beep();
    }
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
