// Forms of the portals: a field's error beside the field, anything else in the form's message line.

import { $, $$, announce, errorText } from "./base.js";

// A message line: shown with `text`, hidden without. A line that is not itself an alert is read out
// by the page's one announcer.
export function say(node, text, { error = false } = {}) {
  node.textContent = text || "";
  node.hidden = !text;
  node.classList.toggle("error", Boolean(text) && error);
  if (text && node.getAttribute("role") !== "alert") announce(text);
}

export function clearErrors(form, line) {
  for (const node of $$("[data-error-for]", form)) node.textContent = "";
  for (const field of $$("[aria-invalid]", form)) field.removeAttribute("aria-invalid");
  if (line) say(line, "");
}

// A refused request's errors: each field's beside it (and the field marked invalid, the first one
// focused); the rest, `before` and, when only fields were wrong, `summary`, in `line`.
export function showErrors(form, result, line, { before = [], summary = "" } = {}) {
  const messages = [...before];
  const data = result.data && typeof result.data === "object" ? result.data : {};
  const invalid = [];
  for (const [name, value] of Object.entries(data)) {
    const text = Array.isArray(value) ? value.join(" ") : String(value);
    const slot = $(`[data-error-for="${name}"]`, form);
    if (!slot) {
      messages.push(text);
      continue;
    }
    slot.textContent = text;
    const field = form.elements[name];
    if (field) {
      field.setAttribute("aria-invalid", "true");
      invalid.push(field);
    }
  }
  if (invalid.length && !messages.length && summary) messages.push(summary);
  if (!invalid.length && !messages.length) messages.push(errorText(result));
  say(line, messages.join(" "), { error: true });
  if (invalid.length) invalid[0].focus();
}
