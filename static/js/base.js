// What every portal module shares: the page's config and text, numbers, dates and times in the page's
// language, the clinic's day, DOM helpers, API calls and the one screen-reader announcer.

export const config = JSON.parse(document.getElementById("mc-config").textContent);
const strings = JSON.parse(document.getElementById("mc-strings").textContent);
const locale = config.language === "bn" ? "bn-BD" : "en-GB";

// ---- numbers, dates and times, as the page's language writes them (Bangla digits in Bangla) ----

const numbers = new Intl.NumberFormat(locale, { useGrouping: false });
const times = new Intl.DateTimeFormat(locale, {
  hour: "2-digit",
  minute: "2-digit",
  hourCycle: "h23", // a 24-hour clock in both languages, as the API's HH:MM
  timeZone: "UTC",
});

export function num(value) {
  return typeof value === "number" && Number.isFinite(value) ? numbers.format(value) : String(value);
}

// `time` is HH:MM (already the clinic's time).
export function formatTime(time) {
  const [h, m] = String(time).split(":").map(Number);
  if (!Number.isInteger(h) || !Number.isInteger(m)) return String(time);
  return times.format(new Date(Date.UTC(2000, 0, 1, h, m)));
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

// The text for `key`; `{name}` is filled from `params`, numbers written in the page's digits.
export function t(key, params = {}) {
  const text = strings[key] ?? key;
  return text.replace(/\{(\w+)\}/g, (whole, name) => (name in params ? num(params[name]) : whole));
}

export function statusLabel(status) {
  return t(`status.${status}`);
}

// ---- the clinic's day: rolls over at the clinic's midnight, also on a page left open overnight ----

// The server's clock when it made the page, against this device's: a phone set wrong still
// turns the day at the clinic's midnight.
const skew = typeof config.now === "number" ? config.now - Date.now() : 0;
const dayFormat = new Intl.DateTimeFormat("en-CA", {
  year: "numeric",
  month: "2-digit",
  day: "2-digit",
  timeZone: config.time_zone,
});
let currentDay = config.today;
const dayWatchers = new Set();

function clinicDay() {
  const parts = Object.fromEntries(dayFormat.formatToParts(new Date(Date.now() + skew)).map((p) => [p.type, p.value]));
  return `${parts.year}-${parts.month}-${parts.day}`;
}

export function today() {
  return currentDay;
}

export function onNewDay(fn) {
  dayWatchers.add(fn);
}

export function checkDay() {
  const day = clinicDay();
  if (day <= currentDay) return; // never back: a clock set back does not undo a day
  currentDay = day;
  for (const fn of dayWatchers) {
    try {
      fn(day);
    } catch (err) {
      console.error(err);
    }
  }
}

// Timers of a hidden tab are slowed but still run about once a minute; waking up checks at once.
setInterval(checkDay, 30_000);
document.addEventListener("visibilitychange", checkDay);

// ---- the one polite live region: what changes without the user asking is said once ----

const announcer = document.getElementById("mc-announcer");
let said = [];
let saying = null;

// Messages within a moment of each other (a booking's notification and its row) are said together.
export function announce(text) {
  if (!text || !announcer) return;
  said.push(text);
  if (saying) return;
  saying = setTimeout(() => {
    const message = said.join(" ");
    said = [];
    saying = null;
    // Emptied first, so that the same words twice are still announced twice.
    announcer.textContent = "";
    setTimeout(() => {
      announcer.textContent = message;
    }, 50);
  }, 100);
}

// ---- DOM ----

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

// ---- the API ----

export function signIn() {
  location.assign(`/login/?next=${encodeURIComponent(location.pathname)}`);
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
