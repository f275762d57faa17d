// The patient portal: book, follow appointments live, cancel, track a doctor's queue; my documents
// and prescriptions.

import { clearErrors, say, showErrors } from "./forms.js";
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

const appointments = appointmentList(list, {
  render: renderRow,
  // Newest booking first, as the API lists them.
  order: (a, b) => (a.created_at === b.created_at ? b.id - a.id : a.created_at > b.created_at ? -1 : 1),
  changed: () => {
    empty.textContent = t("appointments.empty");
    empty.hidden = appointments.size() > 0;
    fillAppointmentChoices();
  },
});

async function loadAppointments() {
  const result = await api("GET", "/api/appointments/?page_size=50");
  if (!result.ok) return false;
  for (const a of result.data.results) appointments.upsert(a);
  empty.textContent = t("appointments.empty");
  empty.hidden = appointments.size() > 0;
  return true;
}

async function cancel(id) {
  const a = appointments.get(id);
  if (!a) return;
  const question = t("confirm.cancel", { doctor: a.doctor_name, date: formatDate(a.date), time: formatTime(a.time) });
  if (!window.confirm(question)) return;
  const result = await api("DELETE", `/api/appointments/${id}/`);
  if (result.ok) appointments.upsert(result.data);
  else showRowError(list, id, result);
}

// ---- documents ----

const docList = $('[data-testid="document-list"]');
const docsEmpty = $('[data-role="docs-empty"]');
const docForm = $("#doc-form");
const docAppointment = $("#doc-appointment");
const files = fileStore();
const prescriptions = new Map(); // appointment id → its versions, oldest first

$('[data-role="doc-hint"]').textContent = t("docs.hint", { size: sizeText(config.file_max_bytes) });

// The upload form offers the patient's appointments that are not cancelled, as listed.
function fillAppointmentChoices() {
  const chosen = docAppointment.value;
  const choices = $$('[data-testid="appointment-row"]', list)
    .map((row) => appointments.get(Number(row.dataset.id)))
    .filter((a) => a && a.status !== "CANCELLED");
  docAppointment.replaceChildren(
    docAppointment.options[0],
    ...choices.map((a) => el("option", { value: a.id, text: `${a.doctor_name} · ${formatDate(a.date)} · ${formatTime(a.time)}` })),
  );
  docAppointment.value = choices.some((a) => String(a.id) === chosen) ? chosen : "";
}

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
const formError = $('[data-testid="book-error"]');
const formOk = $('[data-testid="book-success"]');
const submit = $('[data-testid="book-submit"]');
const doctors = new Map();
let pendingKey = null; // reused only when the last attempt got no answer at all
let pendingBody = null;
let slotRequest = 0;
let booking = false; // this page's own booking is on its way: the form's message says it, not the announcer

function randomKey() {
  const bytes = new Uint8Array(16);
  crypto.getRandomValues(bytes);
  return Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
}

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
    showErrors(form, result, formError);
    return;
  }
  const free = result.data.slots.filter((slot) => slot.available).map((slot) => slot.time);
  setTimeOptions(free.length ? t("book.choose_time") : t("book.no_times"), free);
}

form.addEventListener("submit", async (event) => {
  event.preventDefault();
  clearErrors(form, formError);
  say(formOk, "");
  const body = { doctor: Number(doctorSelect.value) || null, date: dateInput.value, time: timeSelect.value };
  const reason = $("#book-reason").value.trim();
  if (reason) body.reason = reason;
  if ($("#book-mode").value === "VIDEO") body.mode = "VIDEO";
  const missing = {};
  if (!body.doctor) missing.doctor = [t("book.need_doctor")];
  if (!body.date) missing.date = [t("book.need_date")];
  if (!body.time) missing.time = [t("book.need_time")];
  if (Object.keys(missing).length) {
    showErrors(form, { status: 400, data: missing }, formError, { summary: t("book.fix_errors") });
    return;
  }
  const sameAsBefore = pendingBody && JSON.stringify(pendingBody) === JSON.stringify(body);
  const key = sameAsBefore && pendingKey ? pendingKey : randomKey();
  submit.disabled = booking = true;
  const result = await api("POST", "/api/appointments/", body, { "Idempotency-Key": key });
  submit.disabled = booking = false;
  if (result.status === 0) {
    // No answer: a retry of the same booking sends the same key, so it cannot book twice.
    pendingKey = key;
    pendingBody = body;
    showErrors(form, result, formError);
    return;
  }
  pendingKey = pendingBody = null;
  if (result.ok) {
    const a = result.data;
    appointments.upsert(a);
    const text = t("book.success", {
      doctor: a.doctor_name,
      date: formatDate(a.date),
      time: formatTime(a.time),
      number: a.queue_number,
    });
    say(formOk, text);
    $("#book-reason").value = "";
    loadSlots();
    return;
  }
  if (result.status === 409) {
    // The slot went to someone else: the API's words would be the same; ours say what to do.
    showErrors(form, { status: 409, data: null }, formError, { before: [t("book.conflict")] });
    loadSlots();
    return;
  }
  showErrors(form, result, formError, { summary: t("book.fix_errors") });
});

doctorSelect.addEventListener("change", loadSlots);
dateInput.addEventListener("change", loadSlots);

// ---- queue tracker ----

const modal = $('[data-testid="queue-modal"]');
const q = {
  title: $("#queue-h"),
  current: $('[data-testid="queue-current"]'),
  mine: $('[data-testid="queue-mine"]'),
  ahead: $('[data-testid="queue-ahead"]'),
  wait: $('[data-testid="queue-wait"]'),
  msg: $('[data-role="queue-msg"]'),
};
let watching = null; // {appointmentId, doctorId, current}

function showQueue(snapshot) {
  const a = watching && appointments.get(watching.appointmentId);
  if (!a) return;
  const current = snapshot.current_queue;
  const mine = a.queue_number;
  // The numbers still waiting below mine (cancelled and no-show ones are not in the list).
  const ahead = Array.isArray(snapshot.waiting_numbers)
    ? snapshot.waiting_numbers.filter((n) => n < mine).length
    : Math.max(0, mine - current - 1);
  const perPatient = snapshot.estimated_wait;
  q.current.textContent = num(current);
  q.current.dataset.number = String(current);
  q.mine.textContent = num(mine);
  q.mine.dataset.number = String(mine);
  q.ahead.textContent = num(ahead);
  q.wait.replaceChildren(
    el("span", { class: "qnum", text: t("queue.minutes", { minutes: ahead * perPatient }) }),
    el("small", { class: "muted", text: t("queue.per_patient", { minutes: perPatient }) }),
  );
  q.wait.dataset.minutes = String(ahead * perPatient);
  q.wait.dataset.perPatient = String(perPatient);
  q.msg.textContent =
    mine === current ? t("queue.your_turn") : mine < current ? t("queue.called") : t("queue.waiting");
  // A number that moves while the patient watches is read out, with what it means for them.
  if (watching.current !== undefined && watching.current !== current) {
    announce(`${t("queue.now_serving", { number: current })} ${q.msg.textContent}`);
  }
  watching.current = current;
}

async function openQueue(appointmentId) {
  const a = appointments.get(appointmentId);
  if (!a) return;
  if (watching) closeQueue();
  watching = { appointmentId, doctorId: a.doctor };
  q.title.textContent = t("queue.title", { doctor: a.doctor_name });
  q.mine.textContent = num(a.queue_number);
  for (const node of [q.current, q.ahead, q.wait]) node.textContent = "–";
  q.msg.textContent = t("loading");
  modal.showModal();
  socket.send({ type: "join_queue", data: { doctor_id: a.doctor } });
  // The same snapshot over HTTP, so the numbers show even while the socket reconnects.
  const result = await api("GET", `/api/queues/${a.doctor}/`);
  if (result.ok && watching && watching.doctorId === a.doctor) showQueue(result.data);
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
socket.on("queue_updated", (snapshot) => {
  if (watching && snapshot.doctor_id === watching.doctorId) showQueue(snapshot);
});
socket.on("error", (error) => {
  if (watching && error.request === "join_queue") q.msg.textContent = t("queue.forbidden");
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
