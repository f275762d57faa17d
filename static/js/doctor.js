// The doctor's console: today's appointments and queue, live; call next, set the number and the wait.

import { $, $$, api, appointmentList, config, el, errorText, startPortal, statusLabel, t } from "./portal.js";

const doctorId = config.doctor_id;
const list = $('[data-testid="appointment-list"]');
const empty = $('[data-role="appts-empty"]');
const queueMsg = $('[data-role="queue-msg"]');
let queue = null;

// The moves a doctor may make from each status (the server's TRANSITIONS for the doctor role).
const MOVES = {
  PENDING: [
    ["CONFIRMED", "confirm", "action.confirm", "btn-secondary"],
    ["CANCELLED", "cancel", "action.cancel", "btn-danger"],
  ],
  CONFIRMED: [
    ["COMPLETED", "complete", "action.complete", "btn-secondary"],
    ["NO_SHOW", "no-show", "action.no_show", "btn-secondary"],
    ["CANCELLED", "cancel", "action.cancel", "btn-danger"],
  ],
};

function renderRow(a) {
  const moves = MOVES[a.status] || [];
  const serving = queue && queue.current_queue === a.queue_number;
  return el(
    "li",
    {
      class: serving ? "appt serving" : "appt",
      "data-testid": "appointment-row",
      "data-id": a.id,
      "data-status": a.status,
      "data-queue-number": a.queue_number,
    },
    el(
      "div",
      { class: "appt-main" },
      el("span", { class: "qtag qtag-big", text: `#${a.queue_number}` }),
      el("strong", { text: a.patient_name }),
      el("span", { class: "muted", text: a.time }),
    ),
    a.reason ? el("p", { class: "appt-reason", text: a.reason }) : null,
    el(
      "div",
      { class: "appt-meta" },
      el("span", { class: `status status-${a.status}`, "data-role": "status", text: statusLabel(a.status) }),
    ),
    moves.length
      ? el(
          "div",
          { class: "row-actions" },
          ...moves.map(([status, action, label, style]) =>
            el("button", {
              type: "button",
              class: style,
              "data-action": action,
              "data-testid": action === "cancel" ? "cancel-appointment" : `${action}-appointment`,
              text: t(label),
              onclick: () => move(a.id, status),
            }),
          ),
        )
      : null,
    el("div", { class: "error", "data-role": "row-error", role: "alert" }),
  );
}

const appointments = appointmentList(list, {
  render: renderRow,
  order: (a, b) => a.queue_number - b.queue_number,
  keep: (a) => a.date === config.today,
  changed: () => {
    empty.textContent = t("appointments.empty_today");
    empty.hidden = appointments.size() > 0;
  },
});

async function loadAppointments() {
  const result = await api("GET", `/api/appointments/?date=${config.today}&page_size=100`);
  if (!result.ok) return false;
  for (const a of result.data.results) appointments.upsert(a);
  empty.textContent = t("appointments.empty_today");
  empty.hidden = appointments.size() > 0;
  return true;
}

async function move(id, status) {
  const a = appointments.get(id);
  if (!a) return;
  if (status === "CANCELLED" && !window.confirm(t("confirm.cancel_doctor", { patient: a.patient_name, time: a.time }))) {
    return;
  }
  const result = await api("PATCH", `/api/appointments/${id}/`, { status });
  if (result.ok) appointments.upsert(result.data);
  else {
    const slot = list.querySelector(`[data-id="${id}"] [data-role="row-error"]`);
    if (slot) slot.textContent = errorText(result);
  }
}

// ---- queue ----

const currentInput = $('[data-testid="queue-current-input"]');
const waitInput = $('[data-testid="queue-wait-input"]');
const form = $("#queue-form");

function showQueue(snapshot) {
  const changed = !queue || queue.current_queue !== snapshot.current_queue;
  queue = snapshot;
  $('[data-testid="queue-current"]').textContent = String(snapshot.current_queue);
  $('[data-testid="queue-waiting"]').textContent = String(snapshot.waiting);
  $('[data-testid="queue-per-patient"]').textContent = String(snapshot.estimated_wait);
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
  if (result.ok) showQueue(result.data);
  return result.ok;
}

function clearErrors() {
  for (const node of $$("[data-error-for]", form)) node.textContent = "";
  for (const field of $$("[aria-invalid]", form)) field.removeAttribute("aria-invalid");
  queueMsg.textContent = "";
  queueMsg.classList.remove("error");
}

function fail(result) {
  const data = result.data && typeof result.data === "object" ? result.data : {};
  let placed = false;
  for (const [name, value] of Object.entries(data)) {
    const slot = $(`[data-error-for="${name}"]`, form);
    if (slot) {
      slot.textContent = Array.isArray(value) ? value.join(" ") : String(value);
      form.elements[name].setAttribute("aria-invalid", "true");
      placed = true;
    }
  }
  if (!placed) {
    queueMsg.textContent = errorText(result);
    queueMsg.classList.add("error");
  }
}

$('[data-testid="call-next"]').addEventListener("click", async (event) => {
  const button = event.currentTarget;
  clearErrors();
  button.disabled = true;
  const result = await api("POST", `/api/queues/${doctorId}/next/`);
  button.disabled = false;
  if (!result.ok) return fail(result);
  showQueue(result.data);
  queueMsg.textContent = t("queue.called_next", { number: result.data.current_queue });
});

form.addEventListener("submit", async (event) => {
  event.preventDefault();
  clearErrors();
  const body = { current_queue: currentInput.value === "" ? null : Number(currentInput.value) };
  // An empty wait hands the estimate back to the measured average.
  body.estimated_wait = waitInput.value === "" ? null : Number(waitInput.value);
  const result = await api("POST", `/api/queues/${doctorId}/`, body);
  if (!result.ok) return fail(result);
  showQueue(result.data);
  queueMsg.textContent = t("queue.saved");
});

// ---- live ----

const socket = startPortal(async () => {
  const loaded = await Promise.all([loadQueue(), loadAppointments()]);
  return loaded.every(Boolean);
});
socket.send({ type: "join_queue", data: { doctor_id: doctorId } }); // sent on every (re)connect
socket.on("appointment_updated", (a) => appointments.upsert(a));
socket.on("queue_updated", (snapshot) => {
  if (snapshot.doctor_id === doctorId && snapshot.date === config.today) showQueue(snapshot);
});
