// The doctor's console: today's appointments and queue, live; call next, set the number and the wait;
// each patient's documents, and prescriptions.

import { clearErrors, say, showErrors } from "./forms.js";
import { $, $$, announce, api, config, el, formatTime, num, onNewDay, statusLabel, t, today } from "./base.js";
import { actions, fileRow, fileStore, loadFiles, loadPrescriptions, prescriptionBlock } from "./documents.js";
import { startPortal } from "./portal.js";
import { appointmentList, errorSlot, isActive, moveButtons, showRowError } from "./rows.js";

const doctorId = config.doctor_id;
const list = $('[data-testid="appointment-list"]');
const empty = $('[data-role="appts-empty"]');
const queueMsg = $('[data-role="queue-msg"]');
let queue = null;

function renderRow(a) {
  const buttons = moveButtons(a, move);
  const serving = queue && queue.current_queue === a.queue_number;
  return el(
    "li",
    {
      class: serving ? "appt serving" : "appt",
      "data-testid": "appointment-row",
      "data-id": a.id,
      "data-status": a.status,
      "data-queue-number": a.queue_number,
      "data-patient": a.patient,
    },
    el(
      "div",
      { class: "appt-main" },
      el("span", { class: "qtag qtag-big", text: `#${num(a.queue_number)}` }),
      el("strong", { text: a.patient_name }),
      el("span", { class: "muted", text: formatTime(a.time) }),
      a.mode === "VIDEO" ? el("span", { class: "mode-video", "data-testid": "video-visit", text: t("visit.video") }) : null,
    ),
    a.reason ? el("p", { class: "appt-reason", text: a.reason }) : null,
    el(
      "div",
      { class: "appt-meta" },
      el("span", { class: `status status-${a.status}`, "data-role": "status", text: statusLabel(a.status) }),
    ),
    buttons.length || config.prescription_statuses.includes(a.status)
      ? el("div", { class: "row-actions" }, visitButton(a), ...buttons, writeButton(a))
      : null,
    prescriptionBlock(prescriptions.get(a.id)),
    docsBlock(a),
    errorSlot(),
  );
}

// ---- the patients' documents and the prescriptions ----

const files = fileStore();
const patientsLoaded = new Set();
const expanded = new Set(); // appointment ids whose documents are open
const prescriptions = new Map(); // appointment id → its versions, oldest first
const uploadTemplate = $("#doc-upload-template");

const filesOf = (patientId) => files.where((f) => f.patient === patientId);
// The doctor may remove what they uploaded, except a prescription's PDF (its versions link to it).
function docRows(patientId) {
  const pdfs = new Set([...prescriptions.values()].flat().map((p) => p.file));
  const removable = (f) => f.uploaded_by === config.user_id && !pdfs.has(f.id);
  return filesOf(patientId).map((f) => fileRow(f, { removed: removable(f) ? forget : null }));
}

// A video visit: ring the patient (their phone too), then open the call. Rung a moment ago (429): open it.
function visitButton(a) {
  if (a.mode !== "VIDEO" || a.status !== "CONFIRMED") return null;
  return el("button", {
    type: "button",
    "data-testid": "start-visit",
    "data-action": "visit",
    text: t("visit.start"),
    onclick: async (event) => {
      const button = event.currentTarget;
      button.disabled = true;
      const result = await api("POST", `/api/appointments/${a.id}/call/ring/`);
      if (result.ok || result.status === 429) return location.assign(`/visit/${a.id}/`);
      button.disabled = false;
      showRowError(list, a.id, result);
    },
  });
}

function writeButton(a) {
  if (!config.prescription_statuses.includes(a.status)) return null;
  const done = (issued) => {
    prescriptions.set(a.id, [...(prescriptions.get(a.id) || []).filter((p) => p.id !== issued.id), issued]);
    redrawRow(a.id);
    announce(t("rx.issued", { version: issued.version }));
  };
  return el("button", {
    type: "button",
    class: "btn-secondary",
    "data-testid": "write-prescription",
    "data-action": "prescribe",
    text: t("rx.write"),
    onclick: () => import("./prescription.js").then((m) => m.openPrescription(a, done)),
  });
}

function docsBlock(a) {
  const count = filesOf(a.patient).length;
  const block = el(
    "div",
    { class: "docs-block", "data-role": "docs" },
    el("button", {
      type: "button",
      class: "link-btn",
      "data-testid": "documents-toggle",
      "data-action": "documents",
      "data-count": count,
      "aria-expanded": String(expanded.has(a.id)),
      text: t("docs.count", { count }),
      onclick: () => {
        if (!expanded.delete(a.id)) expanded.add(a.id);
        redrawRow(a.id);
      },
    }),
  );
  if (!expanded.has(a.id)) return block;
  const form = uploadTemplate.content.firstElementChild.cloneNode(true);
  $("label", form).htmlFor = $("input", form).id = `doc-file-${a.id}`;
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const { uploadFrom } = await actions();
    const file = await uploadFrom(form, $(".form-msg", form), { appointment: a.id });
    if (file) keepFile(file);
  });
  block.append(el("ul", { class: "docs", "data-role": "docs-list" }, ...docRows(a.patient)), form);
  return block;
}

const redrawRow = (id) => appointments.get(id) && appointments.upsert(appointments.get(id));

// A patient's documents changed: their rows' counts and lists, leaving a form being filled in as it is.
function refreshDocs(patientId) {
  const count = filesOf(patientId).length;
  for (const row of $$(`[data-testid="appointment-row"][data-patient="${patientId}"]`, list)) {
    const toggle = $('[data-testid="documents-toggle"]', row);
    toggle.textContent = t("docs.count", { count });
    toggle.dataset.count = String(count);
    $('[data-role="docs-list"]', row)?.replaceChildren(...docRows(patientId));
  }
}

function keepFile(file) {
  const before = files.put(file);
  if (before !== null) refreshDocs(file.patient);
  return before;
}

function forget(file) {
  files.drop(file.id);
  refreshDocs(file.patient);
}

async function refreshPrescriptions(appointmentId) {
  const versions = await loadPrescriptions(appointmentId);
  if (versions) prescriptions.set(appointmentId, versions);
  if (versions) redrawRow(appointmentId);
  return Boolean(versions);
}

async function loadPatientFiles(patientId) {
  const found = await loadFiles(`&patient=${patientId}`);
  if (!found) return false;
  patientsLoaded.add(patientId);
  for (const file of found) files.put(file);
  refreshDocs(patientId);
  const rx = found.filter((f) => f.kind === "PRESCRIPTION" && appointments.get(f.appointment));
  return (await Promise.all([...new Set(rx.map((f) => f.appointment))].map(refreshPrescriptions))).every(Boolean);
}

async function loadDocuments(all = false) {
  const patients = new Set($$('[data-testid="appointment-row"]', list).map((row) => Number(row.dataset.patient)));
  const todo = [...patients].filter((id) => all || !patientsLoaded.has(id));
  return (await Promise.all(todo.map(loadPatientFiles))).every(Boolean);
}

function showEmpty() {
  empty.textContent = t("appointments.empty_today");
  empty.hidden = appointments.size() > 0;
}

const appointments = appointmentList(list, {
  render: renderRow,
  order: (a, b) => a.queue_number - b.queue_number,
  keep: (a) => a.date === today(),
  changed: showEmpty,
});

async function loadAppointments() {
  const day = today();
  const result = await api("GET", `/api/appointments/?date=${day}&page_size=100`);
  if (!result.ok) return false;
  if (day === today()) for (const a of result.data.results) appointments.upsert(a);
  showEmpty();
  return true;
}

async function move(id, status) {
  const a = appointments.get(id);
  if (!a) return;
  const question = t("confirm.cancel_doctor", { patient: a.patient_name, time: formatTime(a.time) });
  if (status === "CANCELLED" && !window.confirm(question)) return;
  const result = await api("PATCH", `/api/appointments/${id}/`, { status });
  if (result.ok) appointments.upsert(result.data);
  else showRowError(list, id, result);
}

// ---- queue ----

const currentInput = $('[data-testid="queue-current-input"]');
const waitInput = $('[data-testid="queue-wait-input"]');
const form = $("#queue-form");

function showQueue(snapshot) {
  const changed = !queue || queue.current_queue !== snapshot.current_queue;
  if (queue && changed) announce(t("queue.called_next", { number: snapshot.current_queue }));
  queue = snapshot;
  $('[data-testid="queue-current"]').textContent = num(snapshot.current_queue);
  $('[data-testid="queue-current"]').dataset.number = String(snapshot.current_queue);
  $('[data-testid="queue-waiting"]').textContent = num(snapshot.waiting);
  $('[data-testid="queue-per-patient"]').textContent = num(snapshot.estimated_wait);
  // Do not overwrite what the doctor is typing.
  if (document.activeElement !== currentInput) currentInput.value = snapshot.current_queue;
  if (document.activeElement !== waitInput) waitInput.value = snapshot.estimated_wait;
  if (changed) {
    for (const row of $$('[data-testid="appointment-row"]', list)) {
      row.classList.toggle("serving", Number(row.dataset.queueNumber) === snapshot.current_queue);
    }
  }
}

async function loadQueue() {
  const result = await api("GET", `/api/queues/${doctorId}/`);
  if (result.ok && result.data.date === today()) showQueue(result.data);
  return result.ok;
}

$('[data-testid="call-next"]').addEventListener("click", async (event) => {
  const button = event.currentTarget;
  clearErrors(form, queueMsg);
  button.disabled = true;
  const result = await api("POST", `/api/queues/${doctorId}/next/`);
  button.disabled = false;
  if (!result.ok) return showErrors(form, result, queueMsg);
  showQueue(result.data); // announces the new number
  queueMsg.textContent = t("queue.called_next", { number: result.data.current_queue });
  queueMsg.hidden = false;
});

form.addEventListener("submit", async (event) => {
  event.preventDefault();
  clearErrors(form, queueMsg);
  const body = { current_queue: currentInput.value === "" ? null : Number(currentInput.value) };
  // An empty wait hands the estimate back to the measured average.
  body.estimated_wait = waitInput.value === "" ? null : Number(waitInput.value);
  const result = await api("POST", `/api/queues/${doctorId}/`, body);
  if (!result.ok) return showErrors(form, result, queueMsg);
  showQueue(result.data);
  say(queueMsg, t("queue.saved"));
});

// ---- live ----

const socket = startPortal(async () => {
  const loaded = await Promise.all([loadQueue(), loadAppointments()]);
  // After the appointments: whose documents to show comes from their rows.
  return loaded.every(Boolean) && (await loadDocuments(true));
});
socket.send({ type: "join_queue", data: { doctor_id: doctorId } }); // sent on every (re)connect
socket.on("appointment_updated", (a) => {
  const before = appointments.get(a.id);
  if (appointments.upsert(a) === null || a.date !== today()) return;
  if (!patientsLoaded.has(a.patient)) loadPatientFiles(a.patient);
  const said = { patient: a.patient_name, time: formatTime(a.time), number: a.queue_number };
  if (!before && isActive(a)) announce(t("announce.booked", said));
  else if (before && before.status !== a.status && a.status === "CANCELLED") announce(t("announce.cancelled", said));
});
socket.on("file_updated", (file) => {
  const before = keepFile(file);
  if (before === null) return;
  if (file.kind === "PRESCRIPTION" && file.appointment && !before && appointments.get(file.appointment)) {
    refreshPrescriptions(file.appointment);
  }
  if (!before && file.uploaded_by !== config.user_id) announce(t("docs.added", { title: file.title }));
});
socket.on("queue_updated", (snapshot) => {
  if (snapshot.doctor_id === doctorId && snapshot.date === today()) showQueue(snapshot);
});
// At the clinic's midnight: yesterday's rows go, today's list and queue are fetched.
onNewDay(() => {
  queue = null;
  appointments.redraw();
  loadQueue();
  loadAppointments().then(() => loadDocuments());
});
