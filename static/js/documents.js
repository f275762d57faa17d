// Clinical documents and prescriptions on the portals: file rows kept live by `file_updated`,
// upload (multipart), download through a short-lived signed link, removal, the access log, and
// an appointment's prescription versions with their PDFs.

import { $, api, config, el, errorText, formatMoment, t } from "./base.js";
import { say, showErrors } from "./forms.js";

export const kindLabel = (kind) => config.file_kinds[kind] || kind;
export const fileStatusLabel = (status) => config.file_statuses[status] || status;

export function sizeText(bytes) {
  if (bytes < 1024) return t("size.bytes", { n: bytes });
  if (bytes < 1024 * 1024) return t("size.kb", { n: Math.round(bytes / 1024) });
  return t("size.mb", { n: Math.round((bytes / (1024 * 1024)) * 10) / 10 });
}

// ---- the API ----

// A multipart POST (the one request that is not JSON); the same answer shape as `api`.
export async function postForm(url, formData) {
  let response;
  try {
    response = await fetch(url, {
      method: "POST",
      credentials: "same-origin",
      headers: { Accept: "application/json", "X-CSRFToken": config.csrf_token },
      body: formData,
    });
  } catch {
    return { ok: false, status: 0, data: null };
  }
  let data = null;
  try {
    data = await response.json();
  } catch {
    data = null; // nginx's own 413 is an HTML page
  }
  return { ok: response.ok, status: response.status, data };
}

// A signed link, then a navigation to it: the answer is an attachment, so the page stays.
export async function download(fileId, errorNode) {
  const result = await api("POST", `/api/files/${fileId}/link/`);
  if (!result.ok) {
    if (errorNode) errorNode.textContent = errorText(result);
    return;
  }
  if (errorNode) errorNode.textContent = "";
  location.assign(result.data.url);
}

// All pages of a files list (the API pages by 100 at most).
export async function loadFiles(query) {
  const files = [];
  let url = `/api/files/?page_size=100${query ? `&${query}` : ""}`;
  while (url) {
    const result = await api("GET", url);
    if (!result.ok) return null;
    files.push(...result.data.results);
    const next = result.data.next && new URL(result.data.next, location.href);
    url = next ? next.pathname + next.search : null;
  }
  return files;
}

// ---- a set of files kept newest first; an event for a file updates its row ----

export function fileStore() {
  const files = new Map();
  return {
    put: (file) => {
      const before = files.get(file.id);
      files.set(file.id, file);
      return before;
    },
    drop: (id) => files.delete(id),
    get: (id) => files.get(id),
    where: (test) =>
      [...files.values()]
        .filter(test)
        .sort((a, b) => (a.created_at === b.created_at ? b.id - a.id : a.created_at > b.created_at ? -1 : 1)),
  };
}

// One file's row: title, kind, size, date, status, and the buttons `actions` asks for.
export function fileRow(file, { onRemove = null, onLog = null } = {}) {
  const error = el("div", { class: "error", role: "alert", "data-role": "row-error" });
  const buttons = el("div", { class: "row-actions" });
  if (file.status === "AVAILABLE") {
    buttons.append(
      el("button", {
        type: "button",
        class: "btn-secondary",
        "data-testid": "document-download",
        text: t("docs.download"),
        onclick: () => download(file.id, error),
      }),
    );
  }
  if (onLog) {
    buttons.append(
      el("button", {
        type: "button",
        class: "btn-secondary",
        "data-testid": "document-log-toggle",
        "aria-expanded": "false",
        text: t("docs.log_show"),
        onclick: (event) => onLog(file, event.currentTarget),
      }),
    );
  }
  if (onRemove) {
    buttons.append(
      el("button", {
        type: "button",
        class: "btn-danger",
        "data-testid": "document-remove",
        text: t("docs.remove"),
        onclick: () => onRemove(file, error),
      }),
    );
  }
  const meta = [kindLabel(file.kind), sizeText(file.size), formatMoment(file.created_at)].join(" · ");
  return el(
    "li",
    { class: "doc", "data-testid": "document-row", "data-id": file.id, "data-status": file.status },
    el(
      "div",
      { class: "doc-main" },
      el("strong", { class: "doc-title", text: file.title }),
      el("span", { class: `status file-${file.status}`, "data-role": "status", text: fileStatusLabel(file.status) }),
    ),
    el("span", { class: "muted doc-meta", text: meta }),
    file.uploaded_by !== file.patient
      ? el("span", { class: "muted doc-meta", text: t("docs.by", { name: file.uploaded_by_name }) })
      : null,
    buttons.childElementCount ? buttons : null,
    error,
  );
}

// A file's access log, oldest first, under its row (the patient's and admins' only).
export async function showAccessLog(file, button) {
  const row = button.closest('[data-testid="document-row"]');
  const old = $('[data-testid="document-access-log"]', row);
  if (old) {
    old.remove();
    button.setAttribute("aria-expanded", "false");
    button.textContent = t("docs.log_show");
    return;
  }
  const result = await api("GET", `/api/files/${file.id}/access-log/`);
  const box = el("ol", { class: "doc-log", "data-testid": "document-access-log" });
  if (!result.ok) box.append(el("li", { class: "error", text: errorText(result) }));
  else if (!result.data.length) box.append(el("li", { class: "muted", text: t("docs.log_empty") }));
  for (const entry of result.ok ? result.data : []) {
    box.append(
      el(
        "li",
        { "data-testid": "document-access-entry", "data-action": entry.action },
        el("strong", { text: config.file_actions[entry.action] || entry.action }),
        " ",
        el("span", { text: `${entry.user_name || t("docs.someone")} · ${formatMoment(entry.at)}` }),
      ),
    );
  }
  row.append(box);
  button.setAttribute("aria-expanded", "true");
  button.textContent = t("docs.log_hide");
}

// ---- upload ----

// Sends `form` (fields `file`, `kind`, `title`?, `appointment`?); errors beside the fields and in `line`.
export async function uploadFrom(form, line, extra = {}) {
  const input = form.elements.file;
  if (!input.files.length) {
    showErrors(form, { status: 400, data: { file: [t("docs.need_file")] } }, line);
    return null;
  }
  const data = new FormData(form);
  for (const [name, value] of Object.entries(extra)) data.set(name, value);
  for (const name of ["title", "appointment"]) if (data.get(name) === "") data.delete(name);
  const submit = $('[type="submit"]', form);
  submit.disabled = true;
  say(line, t("docs.uploading"));
  const result = await postForm("/api/files/", data);
  submit.disabled = false;
  if (result.ok) {
    say(line, t("docs.uploaded", { title: result.data.title }));
    form.reset();
    return result.data;
  }
  const before = [];
  if (result.status === 413 && !result.data) before.push(t("docs.too_large"));
  if (result.status === 415 && !result.data) before.push(t("docs.unsupported"));
  showErrors(form, result, line, { before, summary: t("docs.fix_errors") });
  return null;
}

// ---- prescriptions ----

// An appointment's versions, oldest first ([] when none, null when the list could not be had).
export async function loadPrescriptions(appointmentId) {
  const result = await api("GET", `/api/appointments/${appointmentId}/prescriptions/`);
  if (result.status === 404) return [];
  return result.ok ? result.data : null;
}

// The latest version's PDF as the main link, earlier versions listed after it.
export function prescriptionBlock(versions) {
  if (!versions || !versions.length) return null;
  const latest = versions[versions.length - 1];
  const error = el("div", { class: "error", role: "alert" });
  const link = (p, testid, text) =>
    el("a", {
      href: `/api/files/${p.file}/`,
      class: "rx-link",
      "data-testid": testid,
      "data-version": p.version,
      text,
      onclick: (event) => {
        event.preventDefault();
        download(p.file, error);
      },
    });
  const earlier = versions.slice(0, -1).reverse();
  return el(
    "div",
    { class: "rx", "data-role": "prescriptions" },
    el(
      "div",
      { class: "rx-latest" },
      link(latest, "prescription-link", t("rx.latest", { version: latest.version })),
      el("span", { class: "muted", text: formatMoment(latest.created_at) }),
    ),
    earlier.length
      ? el(
          "div",
          { class: "rx-earlier" },
          el("span", { class: "muted", text: `${t("rx.earlier")}: ` }),
          ...earlier.map((p) => link(p, "prescription-version", t("rx.version", { version: p.version }))),
        )
      : null,
    error,
  );
}
