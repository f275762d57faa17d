// The patient portal: book, appointments live, cancel, the queue; documents and prescriptions.

import { $, $$, announce, api, config, el, formatDate, formatTime, num, onNewDay, statusLabel, t, today } from "./base.js";
import { actions, fileRow, fileStore, loadFiles, loadPrescriptions, prescriptionBlock, sizeText } from "./documents.js";
import { startPortal } from "./portal.js";
import { appointmentList, errorSlot, isActive, moveButtons, showRowError } from "./rows.js";

const list = $('[data-testid="appointment-list"]');
const empty = $('[data-role="appts-empty"]');

// ---- appointments ----

function renderRow(a) {
  const actions = el("div", { class: "row-actions" });
  if (isActive(a) && a.date === today()) {
    actions.append(
      el("button", {
        type: "button",
        class: "btn-secondary",
        "data-testid": "open-queue",
        "data-action": "queue",
        text: t("action.track"),
        onclick: () => openQueue(a.id),
      }),
    );
  }
  if (a.mode === "VIDEO" && isActive(a)) {
    const visit = () => location.assign(`/visit/${a.id}/`);
    actions.append(el("button", { type: "button", "data-testid": "join-visit", text: t("visit.join"), onclick: visit }));
  }
  actions.append(...moveButtons(a, (id) => cancel(id))); // a patient's one move: cancelling
  return el(
    "li",
    { class: "appt", "data-testid": "appointment-row", "data-id": a.id, "data-status": a.status },
    el(
      "div",
      { class: "appt-main" },
      el("strong", { text: a.doctor_name }),
      el("span", { class: "muted", text: `${formatDate(a.date)} · ${formatTime(a.time)}` }),
    ),
    el(
      "div",
      { class: "appt-meta" },
      el("span", { class: "qtag", text: t("queue.number", { number: a.queue_number }) }),
      a.mode === "VIDEO" ? el("span", { class: "qtag", "data-role": "mode", text: t("visit.video") }) : null,
      el("span", { class: `status status-${a.status}`, "data-role": "status", text: statusLabel(a.status) }),
    ),
    actions.childElementCount ? actions : null,
    prescriptionBlock(prescriptions.get(a.id)),
    errorSlot(),
  );
}

// Upcoming visits first, soonest first; past and cancelled ones folded away below, latest first.
const pastList = $('[data-testid="past-appointment-list"]');
const past = pastList.parentNode;
const upcoming = (a) => isActive(a) && a.date >= today();
const when = (a) => `${a.date}T${a.time}#${String(a.id).padStart(12, "0")}`;

const appointments = appointmentList(list, {
  render: renderRow,
  into: (a) => (upcoming(a) ? list : pastList),
  order: (a, b) => (when(a) < when(b) ? -1 : 1) * (upcoming(a) ? 1 : -1),
  changed: () => {
    empty.textContent = t(appointments.size() ? "appointments.none_upcoming" : "appointments.empty");
    empty.hidden = list.childElementCount > 0;
    past.hidden = !pastList.childElementCount;
    past.firstElementChild.textContent = t("appointments.past", { count: pastList.childElementCount });
    showNext();
    fillAppointmentChoices();
  },
});

async function loadAppointments() {
  const result = await api("GET", "/api/appointments/?page_size=50");
  if (!result.ok) return false;
  for (const a of result.data.results) appointments.upsert(a);
  return true;
}

async function cancel(id) {
  const a = appointments.get(id);
  if (!a) return;
  const question = t("confirm.cancel", { doctor: a.doctor_name, date: formatDate(a.date), time: formatTime(a.time) });
  if (!window.confirm(question)) return;
  const result = await api("DELETE", `/api/appointments/${id}/`);
  if (result.ok) appointments.upsert(result.data);
  else showRowError(document, id, result);
}

// ---- documents ----

const docList = $('[data-testid="document-list"]');
const docsEmpty = $('[data-role="docs-empty"]');
const docForm = $("#doc-form");
const docAppointment = $("#doc-appointment");
const files = fileStore();
const prescriptions = new Map(); // appointment id → its versions, oldest first

$('[data-role="doc-hint"]').textContent = t("docs.hint", { size: sizeText(config.file_max_bytes) });

// The upload form offers the patient's appointments, as listed (document-actions.js), while it is open.
const upload = $(".docs-upload");
const fillAppointmentChoices = () =>
  upload.open &&
  actions().then(({ appointmentChoices }) =>
    appointmentChoices(docAppointment, $$('[data-testid="appointment-row"]').map((row) => appointments.get(Number(row.dataset.id)))),
  );
upload.addEventListener("toggle", fillAppointmentChoices);

function drawFiles() {
  const open = $$('[data-testid="document-access-log"]', docList).map((log) => log.parentNode.dataset.id);
  docList.replaceChildren(...files.where(() => true).map((f) => fileRow(f, { removed: forget, log: true })));
  // An open access log stays open, fetched again with what happened since.
  for (const id of open) $(`[data-id="${id}"] [data-testid="document-log-toggle"]`, docList)?.click();
  docsEmpty.textContent = t("docs.empty");
  docsEmpty.hidden = files.where(() => true).length > 0;
}

function keepFile(file) {
  const before = files.put(file);
  if (before !== null) drawFiles();
  return before;
}

function forget(file) {
  files.drop(file.id);
  drawFiles();
}

async function refreshPrescriptions(id) {
  const versions = await loadPrescriptions(id);
  if (versions) prescriptions.set(id, versions);
  if (versions && appointments.get(id)) appointments.upsert(appointments.get(id));
  return Boolean(versions);
}

async function loadDocuments() {
  const found = await loadFiles();
  if (!found) return false;
  for (const file of found) files.put(file);
  drawFiles();
  // A prescription's PDF is one of the patient's files: only those appointments are asked for versions.
  const ids = new Set(found.filter((f) => f.kind === "PRESCRIPTION" && f.appointment).map((f) => f.appointment));
  return (await Promise.all([...ids].map(refreshPrescriptions))).every(Boolean);
}

docForm.addEventListener("submit", async (event) => {
  event.preventDefault();
  const { uploadFrom } = await actions();
  const file = await uploadFrom(docForm, $('[data-testid="document-upload-message"]'));
  if (file) keepFile(file);
});

// ---- booking ----

const form = $("#book-form");
const doctorSelect = $("#book-doctor");
const dateInput = $("#book-date");
const timeSelect = $("#book-time");
const submit = $('[data-testid="book-submit"]');
const doctors = new Map();
let slotRequest = 0;
let booking = false; // this page's own booking is on its way: the form's message says it, not the announcer
// The form's checks, messages and sending load on the first use (static/js/book.js).
const bookCode = () => import("./book.js");

async function loadDoctors() {
  const result = await api("GET", "/api/doctors/?page_size=100");
  if (!result.ok) return false;
  for (const d of result.data.results) {
    if (doctors.has(d.id)) continue;
    doctors.set(d.id, d);
    doctorSelect.append(el("option", { value: d.id, text: d.specialty ? `${d.name} — ${d.specialty}` : d.name }));
  }
  return true;
}

function setTimeOptions(placeholder, times = []) {
  timeSelect.replaceChildren(
    el("option", { value: "", text: placeholder }),
    ...times.map((time) => el("option", { value: time, text: formatTime(time) })),
  );
  timeSelect.disabled = times.length === 0;
}

async function loadSlots() {
  const doctor = doctorSelect.value;
  const date = dateInput.value;
  const request = ++slotRequest;
  if (!doctor || !date) {
    setTimeOptions(t("book.choose_first"));
    return;
  }
  setTimeOptions(t("loading"));
  const result = await api("GET", `/api/doctors/${doctor}/slots/?date=${encodeURIComponent(date)}`);
  if (request !== slotRequest) return; // the choice changed meanwhile
  if (!result.ok) {
    setTimeOptions(t("book.choose_first"));
    (await bookCode()).refused(form, result);
    return;
  }
  const free = result.data.slots.filter((slot) => slot.available).map((slot) => slot.time);
  setTimeOptions(free.length ? t("book.choose_time") : t("book.no_times"), free);
}

form.addEventListener("submit", async (event) => {
  event.preventDefault();
  if (booking) return;
  submit.disabled = booking = true; // at once: a second tap meanwhile books nothing
  try {
    const booked = await (await bookCode()).book(form);
    if (booked) appointments.upsert(booked);
    if (booked !== null) loadSlots();
  } finally {
    submit.disabled = booking = false;
  }
});

doctorSelect.addEventListener("change", loadSlots);
dateInput.addEventListener("change", loadSlots);

// ---- queue tracker: the dialog, and the next visit's own numbers when it is today ----

const modal = $('[data-testid="queue-modal"]');
// The next visit's strip: the dialog's boxes (their labels in the page's language), hooks renamed.
const strip = $(".queue-grid", modal).cloneNode(true);
for (const node of $$("[data-testid]", strip)) node.dataset.testid = `next-${node.dataset.testid}`;
strip.dataset.testid = "next-queue";
strip.append(el("p", { class: "queue-msg", "data-role": "queue-msg" }));
const snapshots = new Map(); // doctor id → the latest queue snapshot
let watching = null; // {appointmentId, doctorId}: the dialog's
let next = null; // the same for the next visit's strip

// A queue's numbers as they concern appointment `a`, in `root` (the dialog or the strip).
function showQueue(root, a, snapshot) {
  const current = snapshot.current_queue;
  const mine = a.queue_number;
  // The numbers still waiting below mine (cancelled and no-show ones are not in the list).
  const ahead = Array.isArray(snapshot.waiting_numbers)
    ? snapshot.waiting_numbers.filter((n) => n < mine).length
    : Math.max(0, mine - current - 1);
  const perPatient = snapshot.estimated_wait;
  const box = (name, number) => {
    const node = $(`[data-testid$="queue-${name}"]`, root);
    node.textContent = num(number);
    node.dataset.number = String(number);
  };
  box("current", current);
  box("mine", mine);
  box("ahead", ahead);
  const wait = $('[data-testid$="queue-wait"]', root);
  wait.replaceChildren(
    el("span", { class: "qnum", text: t("queue.minutes", { minutes: ahead * perPatient }) }),
    el("small", { class: "muted", text: t("queue.per_patient", { minutes: perPatient }) }),
  );
  wait.dataset.minutes = String(ahead * perPatient);
  wait.dataset.perPatient = String(perPatient);
  $('[data-role="queue-msg"]', root).textContent =
    mine === current ? t("queue.your_turn") : mine < current ? t("queue.called") : t("queue.waiting");
}

function queueMoved(snapshot) {
  const before = snapshots.get(snapshot.doctor_id);
  snapshots.set(snapshot.doctor_id, snapshot);
  let moved = before && before.current_queue !== snapshot.current_queue;
  for (const [root, w] of [[modal, watching], [strip, next]]) {
    const a = w && w.doctorId === snapshot.doctor_id && appointments.get(w.appointmentId);
    if (!a) continue;
    showQueue(root, a, snapshot);
    // A number that moves while the patient watches is read out once, with what it means for them.
    if (moved) announce(`${t("queue.now_serving", { number: snapshot.current_queue })} ${$(".queue-msg", root).textContent}`);
    moved = false;
  }
}

// A queue's snapshot over HTTP: the numbers show even while the socket reconnects.
async function snapshot(doctorId) {
  const result = await api("GET", `/api/queues/${doctorId}/`);
  if (result.ok) queueMoved(result.data);
}

// The first upcoming visit stands out, today with its queue's numbers: asked again (it joins no queue)
// on the patient's events, on reconnecting, with the open dialog's frames, and each minute.
function showNext() {
  const row = list.firstElementChild;
  const a = row && appointments.get(Number(row.dataset.id));
  const before = next;
  next = a && a.date === today() ? { appointmentId: a.id, doctorId: a.doctor } : null;
  if (!next) return strip.remove();
  $(".appt-meta", row).after(strip);
  const known = snapshots.get(a.doctor);
  if (known && before && before.doctorId === a.doctor) return showQueue(strip, a, known);
  for (const node of $$(".qnum", strip)) node.textContent = "–";
  snapshot(a.doctor);
}
const refreshNext = () => next && !document.hidden && snapshot(next.doctorId);
setInterval(refreshNext, 60_000);

async function openQueue(appointmentId) {
  const a = appointments.get(appointmentId);
  if (!a) return;
  if (watching) closeQueue();
  watching = { appointmentId, doctorId: a.doctor };
  socket.send({ type: "join_queue", data: { doctor_id: a.doctor } });
  $("#queue-h").textContent = t("queue.title", { doctor: a.doctor_name });
  $('[data-testid="queue-mine"]').textContent = num(a.queue_number);
  for (const name of ["current", "ahead", "wait"]) $(`[data-testid="queue-${name}"]`).textContent = "–";
  $('[data-role="queue-msg"]', modal).textContent = t("loading");
  modal.showModal();
  snapshot(a.doctor);
}

function closeQueue() {
  if (!watching) return;
  socket.send({ type: "leave_queue", data: { doctor_id: watching.doctorId } });
  watching = null;
  if (modal.open) modal.close();
}

$('[data-testid="close-queue"]').addEventListener("click", closeQueue);
modal.addEventListener("close", closeQueue); // Escape closes the dialog too

// ---- live ----

const socket = startPortal(async () => {
  const loaded = await Promise.all([loadAppointments(), loadDoctors()]);
  // After the appointments: the prescriptions are drawn in their rows.
  return loaded.every(Boolean) && (await loadDocuments());
});
socket.on("appointment_updated", (a) => {
  const before = appointments.get(a.id);
  if (appointments.upsert(a) === null) return;
  if (watching && watching.appointmentId === a.id && !isActive(a)) closeQueue();
  const said = { doctor: a.doctor_name, date: formatDate(a.date), time: formatTime(a.time), number: a.queue_number };
  if (!before && !booking) announce(t("announce.booked", said));
  else if (before.status !== a.status) {
    const key = a.status === "CANCELLED" ? "announce.cancelled" : "announce.status";
    announce(t(key, { ...said, status: statusLabel(a.status) }));
  }
});
socket.on("file_updated", (file) => {
  const before = keepFile(file);
  if (before === null) return;
  if (file.kind === "PRESCRIPTION" && file.appointment && !before) refreshPrescriptions(file.appointment);
  if (!before && file.uploaded_by !== config.user_id) announce(t("docs.added", { title: file.title }));
  else if (before && before.status !== file.status) {
    announce(t(file.status === "REJECTED" ? "docs.now_rejected" : "docs.now_available", { title: file.title }));
  }
});
socket.on("queue_updated", queueMoved);
socket.on("new_notification", refreshNext);
socket.on("ready", refreshNext);
socket.on("error", (error) => {
  if (watching && error.request === "join_queue") $(".queue-msg", modal).textContent = t("queue.forbidden");
});
// At the clinic's midnight: "Track queue" moves to the new day's appointments, and the form no
// longer offers yesterday.
onNewDay((day) => {
  appointments.redraw();
  dateInput.min = day;
  if (dateInput.value < day) {
    dateInput.value = day;
    loadSlots();
  }
});
loadSlots();
