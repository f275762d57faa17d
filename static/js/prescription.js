// The doctor's prescription form: diagnosis, rows of medicines (added and removed), advice and a
// follow-up date; a preview of what the patient will get, then POST …/prescription/ issues it.

import { $, $$, api, el, formatDate, t } from "./base.js";
import { clearErrors, say, showErrors } from "./forms.js";

const MAX_ITEMS = 30; // the contract's limit
const ITEM_FIELDS = ["medicine", "dose", "frequency", "duration", "instructions"];

const dialog = $('[data-testid="prescription-dialog"]');
const form = $("#rx-form");
const title = $("#rx-h");
const items = $('[data-role="rx-items"]');
const template = $("#rx-item-template");
const editPart = $('[data-role="rx-edit"]');
const preview = $('[data-testid="prescription-preview"]');
const previewBody = $('[data-role="rx-preview-body"]');
const line = $('[data-testid="prescription-error"]');
const buttons = {
  add: $('[data-testid="add-medicine"]'),
  close: $('[data-testid="prescription-cancel"]'),
  edit: $('[data-testid="prescription-edit"]'),
  preview: $('[data-testid="prescription-preview-button"]'),
  submit: $('[data-testid="prescription-submit"]'),
};
let appointment = null;
let issued = null;

function renumber() {
  const rows = $$('[data-testid="prescription-item"]', items);
  rows.forEach((row, i) => {
    $('[data-role="rx-item-n"]', row).textContent = t("rx.medicine_n", { n: i + 1 });
    $('[data-testid="remove-medicine"]', row).disabled = rows.length === 1;
  });
  buttons.add.disabled = rows.length >= MAX_ITEMS;
}

function addItem() {
  const row = template.content.firstElementChild.cloneNode(true);
  $('[data-testid="remove-medicine"]', row).addEventListener("click", () => {
    row.remove();
    renumber();
    $('[name="medicine"]', items.lastElementChild)?.focus();
  });
  items.append(row);
  renumber();
  return row;
}

function body() {
  const data = {
    diagnosis: form.elements.diagnosis.value.trim(),
    advice: form.elements.advice.value.trim(),
    items: $$('[data-testid="prescription-item"]', items).map((row) => {
      const item = {};
      for (const name of ITEM_FIELDS) item[name] = $(`[name="${name}"]`, row).value.trim();
      return item;
    }),
  };
  const followUp = form.elements.follow_up.value;
  if (followUp) data.follow_up = followUp;
  return data;
}

function setMode(previewing) {
  editPart.hidden = previewing;
  preview.hidden = !previewing;
  buttons.preview.hidden = previewing;
  buttons.edit.hidden = !previewing;
  buttons.submit.hidden = !previewing;
}

// Each medicine's refusals beside it; the rest beside their fields or in the form's line.
function showItemErrors(result) {
  const data = result.data && typeof result.data === "object" ? { ...result.data } : null;
  const rows = $$('[data-testid="prescription-item"]', items);
  if (data && Array.isArray(data.items) && data.items.some((e) => e && typeof e === "object")) {
    data.items.forEach((errors, i) => {
      if (!rows[i] || !errors || typeof errors !== "object") return;
      $('[data-role="rx-item-error"]', rows[i]).textContent = Object.values(errors).flat().join(" ");
      for (const name of Object.keys(errors)) $(`[name="${name}"]`, rows[i])?.setAttribute("aria-invalid", "true");
    });
    delete data.items;
  }
  showErrors(form, { ...result, data }, line, { summary: t("docs.fix_errors") });
}

function clearAll() {
  clearErrors(form, line);
  for (const slot of $$('[data-role="rx-item-error"]', items)) slot.textContent = "";
}

function check(data) {
  const errors = {};
  if (!data.items.length) errors.items = [t("rx.need_item")];
  const itemErrors = data.items.map((item) =>
(item.medicine ? {} : { medicine: [t("rx.need_fields")] }),
  );
  if (itemErrors.some((e) => e.medicine)) errors.items = itemErrors;
  return Object.keys(errors).length ? errors : null;
}

function showPreview(data) {
  const part = (label, text) =>
    el("p", { class: "rx-part" }, el("strong", { text: `${label}: ` }), el("span", { text: text || t("rx.none") }));
  const follow = data.follow_up ? el("p", { text: t("rx.follow_up", { date: formatDate(data.follow_up) }) }) : "";
  previewBody.replaceChildren(
    part(t("rx.diagnosis"), data.diagnosis),
    el(
      "ol",
      { class: "rx-preview-items" },
      ...data.items.map((item) =>
        el(
          "li",
          { "data-testid": "prescription-preview-item" },
          el("strong", { text: item.medicine }),
          el("span", { text: ` — ${item.dose} · ${item.frequency} · ${item.duration}` }),
          item.instructions ? el("div", { class: "muted", text: item.instructions }) : null,
        ),
      ),
    ),
    part(t("rx.advice"), data.advice),
    follow,
  );
}

buttons.add.addEventListener("click", () => $('[name="medicine"]', addItem()).focus());
buttons.close.addEventListener("click", () => dialog.close());
buttons.edit.addEventListener("click", () => {
  setMode(false);
  buttons.preview.focus();
});
buttons.preview.addEventListener("click", () => {
  clearAll();
  const data = body();
  const errors = check(data);
  if (errors) return showItemErrors({ status: 400, data: errors });
  showPreview(data);
  setMode(true);
  buttons.submit.focus();
});

form.addEventListener("submit", async (event) => {
  event.preventDefault();
  if (!appointment || buttons.submit.hidden) return;
  clearAll();
  buttons.submit.disabled = true;
  const result = await api("POST", `/api/appointments/${appointment.id}/prescription/`, body());
  buttons.submit.disabled = false;
  if (result.ok) {
    const done = issued;
    dialog.close();
    done(result.data);
    return;
  }
  setMode(false);
  if (result.status === 409) say(line, t("rx.conflict"), { error: true });
  else showItemErrors(result);
});

// Opens the form for `a`; `onIssued(prescription)` is called with the new version.
export function openPrescription(a, onIssued) {
  appointment = a;
  issued = onIssued;
  form.reset();
  clearAll();
  items.replaceChildren();
  addItem();
  setMode(false);
  title.textContent = t("rx.write_for", { patient: a.patient_name });
  dialog.showModal();
  form.elements.diagnosis.focus();
}
