// The patient's booking form, loaded on its first use (static/js/patient.js keeps the lists and the
// slots): the checks before sending, the idempotent POST, and the form's messages.

import { $, api, formatDate, formatTime, t } from "./base.js";
import { clearErrors, say, showErrors } from "./forms.js";

let pendingKey = null; // reused only when the last attempt got no answer at all
let pendingBody = null;

function randomKey() {
  const bytes = new Uint8Array(16);
  crypto.getRandomValues(bytes);
  return Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
}

// A refused request's errors in the form (a slot list that could not load, too).
export function refused(form, result, options) {
  showErrors(form, result, $('[data-testid="book-error"]', form), options);
}

// Sends the form. Returns the new appointment; undefined when the server refused it (the free times
// are worth asking again); null when nothing was sent or no answer came.
export async function book(form) {
  const formError = $('[data-testid="book-error"]', form);
  const formOk = $('[data-testid="book-success"]', form);
  clearErrors(form, formError);
  say(formOk, "");
  const body = { doctor: Number($("#book-doctor").value) || null, date: $("#book-date").value, time: $("#book-time").value };
  const reason = $("#book-reason").value.trim();
  if (reason) body.reason = reason;
  const mode = $("#book-mode");
  if (mode && mode.value === "VIDEO") body.mode = "VIDEO";
  const missing = {};
  if (!body.doctor) missing.doctor = [t("book.need_doctor")];
  if (!body.date) missing.date = [t("book.need_date")];
  if (!body.time) missing.time = [t("book.need_time")];
  if (Object.keys(missing).length) {
    refused(form, { status: 400, data: missing }, { summary: t("book.fix_errors") });
    return null;
  }
  const sameAsBefore = pendingBody && JSON.stringify(pendingBody) === JSON.stringify(body);
  const key = sameAsBefore && pendingKey ? pendingKey : randomKey();
  const result = await api("POST", "/api/appointments/", body, { "Idempotency-Key": key });
  if (result.status === 0) {
    // No answer: a retry of the same booking sends the same key, so it cannot book twice.
    pendingKey = key;
    pendingBody = body;
    refused(form, result);
    return null;
  }
  pendingKey = pendingBody = null;
  if (result.ok) {
    const a = result.data;
    say(
      formOk,
      t("book.success", { doctor: a.doctor_name, date: formatDate(a.date), time: formatTime(a.time), number: a.queue_number }),
    );
    $("#book-reason").value = "";
    return a;
  }
  if (result.status === 409) {
    // The slot went to someone else: the API's words would be the same; ours say what to do.
    refused(form, { status: 409, data: null }, { before: [t("book.conflict")] });
    return undefined;
  }
  refused(form, result, { summary: t("book.fix_errors") });
  return undefined;
}
