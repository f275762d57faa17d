// The documents' acts, loaded on first use (documents.js): upload, removal, the access log.

import { $, api, config, el, errorText, formatDate, formatMoment, formatTime, t } from "./base.js";
import { say, showErrors } from "./forms.js";

// Sends `form` (`file`, `kind`, `title`?, `appointment`?) as multipart; the file object, or null
// with the errors beside the fields and in `line`.
export async function uploadFrom(form, line, extra = {}) {
  if (!form.elements.file.files.length) {
    showErrors(form, { status: 400, data: { file: [t("docs.need_file")] } }, line);
    return null;
  }
  const data = new FormData(form);
  for (const [name, value] of Object.entries(extra)) data.set(name, value);
  for (const name of ["title", "appointment"]) if (data.get(name) === "") data.delete(name);
  const submit = $('[type="submit"]', form);
  submit.disabled = true;
  say(line, t("docs.uploading"));
  let result = { ok: false, status: 0, data: null };
  try {
    const response = await fetch("/api/files/", {
      method: "POST",
      credentials: "same-origin",
      headers: { Accept: "application/json", "X-CSRFToken": config.csrf_token },
      body: data,
    });
    // nginx's own 413 is an HTML page: no field errors then.
    result = { ok: response.ok, status: response.status, data: await response.json().catch(() => null) };
  } catch {
    // no answer: the network's message below
  }
  submit.disabled = false;
  if (result.ok) {
    say(line, t("docs.uploaded", { title: result.data.title }));
    form.reset();
    return result.data;
  }
  const before = result.data ? [] : { 413: [t("docs.too_large")], 415: [t("docs.unsupported")] }[result.status] || [];
  showErrors(form, result, line, { before, summary: t("docs.fix_errors") });
  return null;
}

// DELETE after the user's yes, then `removed(file)` (also when it was gone already).
export async function removeFile(file, error, removed) {
  if (!window.confirm(t("docs.confirm_remove", { title: file.title }))) return;
  const result = await api("DELETE", `/api/files/${file.id}/`);
  if (result.ok || result.status === 404) removed(file);
  else error.textContent = errorText(result);
}

// Who uploaded, opened, downloaded or removed the file, oldest first, under its row.
export async function toggleLog(file, button) {
  const row = button.closest('[data-testid="document-row"]');
  const open = $('[data-testid="document-access-log"]', row);
  button.textContent = t(open ? "docs.log_show" : "docs.log_hide");
  button.setAttribute("aria-expanded", String(!open));
  if (open) return open.remove();
  const result = await api("GET", `/api/files/${file.id}/access-log/`);
  const entries = result.ok ? result.data : [];
  row.append(
    el(
      "ol",
      { class: "doc-log", "data-testid": "document-access-log" },
      result.ok ? null : el("li", { class: "error", text: errorText(result) }),
      result.ok && !entries.length ? el("li", { class: "muted", text: t("docs.log_empty") }) : null,
      ...entries.map((entry) =>
        el(
          "li",
          { "data-testid": "document-access-entry", "data-action": entry.action },
          el("strong", { text: entry.user_name || t("docs.someone") }),
          ` ${config.file_actions[entry.action] || entry.action} · ${formatMoment(entry.at)}`,
        ),
      ),
    ),
  );
}

// An upload form's appointment choices: those of `appointments` (as listed) that are not cancelled;
// the one chosen stays chosen while it is offered.
export function appointmentChoices(select, appointments) {
  const chosen = select.value;
  const choices = appointments.filter((a) => a && a.status !== "CANCELLED");
  select.replaceChildren(
    select.options[0],
    ...choices.map((a) => el("option", { value: a.id, text: `${a.doctor_name} · ${formatDate(a.date)} · ${formatTime(a.time)}` })),
  );
  select.value = choices.some((a) => String(a.id) === chosen) ? chosen : "";
}
