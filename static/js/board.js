// The waiting-room display board: each doctor's now-serving number and the next three, kept live over
// the shared socket (`/ws/?board=<token>`, no user token). A doctor's number going up is announced:
// a banner, a chime (Web Audio) and the number spoken (Web Speech) where the browser allows sound.
// After a cut the socket comes back and the server sends every queue as it stands.

import { createSocket } from "./socket.js";

const config = JSON.parse(document.getElementById("board-config").textContent);
const bangla = config.language === "bn";
const DIGITS = "০১২৩৪৫৬৭৮৯";
const ANNOUNCE_MS = 12000;
const CHECK_MS = 5000;

const $ = (selector, root = document) => root.querySelector(selector);

function t(key, params = {}) {
  const text = config.strings[key] ?? key;
  return text.replace(/\{(\w+)\}/g, (whole, name) => (name in params ? String(params[name]) : whole));
}

// Numbers as the page's language writes them: Bangla digits in Bangla.
function num(value) {
  const text = String(value);
  return bangla ? text.replace(/[0-9]/g, (d) => DIGITS[Number(d)]) : text;
}

// ---- the clinic's clock ----

const clock = $('[data-testid="board-clock"]');
const clockFormat = new Intl.DateTimeFormat(bangla ? "bn-BD" : "en-GB", {
  hour: "2-digit",
  minute: "2-digit",
  hourCycle: "h23", // a 24-hour clock in both languages
  timeZone: config.time_zone,
});
function tick() {
  clock.textContent = num(clockFormat.format(new Date()));
  setTimeout(tick, 1000 - (Date.now() % 1000));
}
tick();

// ---- sound: browsers allow it after a touch, or on a kiosk started to allow autoplay ----

let audio = null;
const soundButton = $('[data-testid="board-sound"]');
function enableSound() {
  try {
    audio = audio || new AudioContext();
    if (audio.state === "suspended") audio.resume();
  } catch {
    audio = null;
  }
  soundButton.setAttribute("aria-pressed", String(Boolean(audio)));
}
soundButton.addEventListener("click", enableSound);
document.addEventListener("pointerdown", enableSound, { once: true });
document.addEventListener("keydown", enableSound, { once: true });
try {
  audio = new AudioContext(); // runs at once where autoplay is allowed
  audio.onstatechange = () => soundButton.setAttribute("aria-pressed", String(audio.state === "running"));
  soundButton.setAttribute("aria-pressed", String(audio.state === "running"));
} catch {
  audio = null;
}

function chime() {
  if (!audio || audio.state !== "running") return;
  const start = audio.currentTime;
  for (const [offset, frequency] of [
    [0, 660],
    [0.35, 880],
  ]) {
    const osc = audio.createOscillator();
    const gain = audio.createGain();
    osc.type = "sine";
    osc.frequency.value = frequency;
    gain.gain.setValueAtTime(0.0001, start + offset);
    gain.gain.exponentialRampToValueAtTime(0.4, start + offset + 0.03);
    gain.gain.exponentialRampToValueAtTime(0.0001, start + offset + 0.6);
    osc.connect(gain).connect(audio.destination);
    osc.start(start + offset);
    osc.stop(start + offset + 0.65);
  }
}

function speak(text) {
  if (!("speechSynthesis" in window) || !audio || audio.state !== "running") return;
  const utterance = new SpeechSynthesisUtterance(text);
  utterance.lang = bangla ? "bn-BD" : "en-GB";
  utterance.rate = 0.9;
  // After the chime.
  setTimeout(() => window.speechSynthesis.speak(utterance), 900);
}

const banner = $('[data-testid="board-announcement"]');
let bannerTimer = null;
function announce(block, number, doctor) {
  const text = t("announce", { number: num(number), doctor });
  banner.textContent = text;
  banner.hidden = false;
  block.classList.add("board-flash");
  clearTimeout(bannerTimer);
  bannerTimer = setTimeout(() => {
    banner.hidden = true;
    for (const node of document.querySelectorAll(".board-flash")) node.classList.remove("board-flash");
  }, ANNOUNCE_MS);
  chime();
  speak(text);
}

// ---- the queues ----

function show(queue) {
  const block = $(`[data-testid="board-queue"][data-doctor-id="${Number(queue.doctor_id)}"]`);
  if (!block) return; // not on this board (the page reloads when its doctors change)
  const before = Number(block.dataset.current);
  block.dataset.current = String(queue.current_queue);
  $('[data-role="doctor"]', block).textContent = queue.doctor_name;
  $('[data-testid="board-current"]', block).textContent = num(queue.current_queue);
  const next = $('[data-testid="board-next"]', block);
  const items = queue.next.map((n) => Object.assign(document.createElement("li"), { textContent: num(n) }));
  if (!items.length) items.push(Object.assign(document.createElement("li"), { className: "board-none", textContent: t("none_waiting") }));
  next.replaceChildren(...items);
  $('[data-testid="board-wait"]', block).textContent = t("per_patient", { minutes: num(queue.estimated_wait) });
  if (queue.current_queue > before && queue.current_queue > 0) announce(block, queue.current_queue, queue.doctor_name);
}

const socket = createSocket({
  closeCodes: config.close_codes,
  tokenUrl: null,
  query: `board=${encodeURIComponent(config.token)}`,
});
socket.on("queue_updated", show);

// The board's own set of doctors, or its token, changed: the page reloads (a rotated token shows
// "this link has changed"). Asked after a reconnect and while the socket cannot get through.
async function checkBoard() {
  let response;
  try {
    response = await fetch(`/api/boards/${encodeURIComponent(config.token)}/`, { headers: { Accept: "application/json" } });
  } catch {
    return; // the network is down: keep showing the last state
  }
  if (response.status === 404) location.reload();
  if (!response.ok) return;
  const data = await response.json();
  const shown = Array.from(document.querySelectorAll('[data-testid="board-queue"]'), (b) => Number(b.dataset.doctorId));
  const wanted = data.queues.map((q) => q.doctor_id);
  if (shown.join() !== wanted.join()) location.reload();
  else data.queues.forEach(show);
}

const status = $('[data-testid="connection-status"]');
let connectedOnce = false;
let sessions = 0;
socket.on("ready", () => {
  sessions += 1;
  status.dataset.sessions = String(sessions);
  if (sessions > 1) checkBoard();
});
// While the socket cannot get through, the board asks now and then whether its link still works.
let checking = null;
socket.on("state", (state) => {
  connectedOnce = connectedOnce || state === "connected";
  status.dataset.state = state;
  $(".conn-text", status).textContent = t(state === "reconnecting" && !connectedOnce ? "conn.connecting" : `conn.${state}`);
  clearInterval(checking);
  checking = null;
  if (state !== "connected") {
    if (connectedOnce) checkBoard();
    checking = setInterval(checkBoard, CHECK_MS);
  }
});
socket.connect();
