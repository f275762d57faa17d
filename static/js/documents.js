// Clinical documents and prescriptions on the portals: file rows kept live by `file_updated`, a
// download through a short-lived signed link, an appointment's prescription versions. What runs
// only on a user's act (upload, the access log) is in document-actions.js, loaded on first use.

import { api, config, el, errorText, formatMoment, t } from "./base.js";

export const kindLabel = (kind) => config.file_kinds[kind] || kind;

export function sizeText(bytes) {
  if (bytes < 1024) return t("size.bytes", { n: bytes });
  if (bytes < 1048576) return t("size.kb", { n: Math.round(bytes / 1024) });
  return t("size.mb", { n: Math.round(bytes / 104857.6) / 10 });
}

export const actions = () => import("./document-actions.js");

// A signed link, then a navigation to it: the answer is an attachment, so the page stays.
export async function download(fileId, error) {
  const result = await api("POST", `/api/files/${fileId}/link/`);
  error.textContent = result.ok ? "" : errorText(result);
  if (result.ok) location.assign(result.data.url);
}

// Every page of a list of files.
export async function loadFiles(query = "") {
  const files = [];
  for (let url = `/api/files/?page_size=100${query}`; url; ) {
    const result = await api("GET", url);
    if (!result.ok) return null;
    files.push(...result.data.results);
    const next = result.data.next && new URL(result.data.next, location.href);
    url = next && next.pathname + next.search;
  }
  return files;
}

// Files by id; `put` returns the copy it replaced, or null when it refused a status taken back
// (an upload's own answer may come after the scanner's verdict).
export function fileStore() {
  const files = new Map();
  return {
    put(file) {
      const before = files.get(file.id);
      if (before && before.status !== "SCANNING" && file.status === "SCANNING") return null;
      files.set(file.id, file);
      return before;
    },
    drop: (id) => files.delete(id),
    where: (test) =>
      [...files.values()].filter(test).sort((a, b) => (a.created_at > b.created_at ? -1 : a.created_at < b.created_at ? 1 : b.id - a.id)),
  };
}

const button = (testid, text, onclick, style = "btn-secondary") =>
  el("button", { type: "button", class: style, "data-testid": testid, text, onclick });

// One file's row: title, status, kind, size, date, uploader, and its buttons.
// `removed(file)` is called once the user removed it (no button without it).
export function fileRow(file, { removed = null, log = false } = {}) {
  const error = el("div", { class: "error", role: "alert" });
  const buttons = el(
    "div",
    { class: "row-actions" },
    file.status === "AVAILABLE" ? button("document-download", t("docs.download"), () => download(file.id, error)) : null,
    log ? button("document-log-toggle", t("docs.log_show"), (e) => actions().then((m) => m.toggleLog(file, e.target))) : null,
    removed
      ? button("document-remove", t("docs.remove"), () => actions().then((m) => m.removeFile(file, error, removed)), "btn-danger")
      : null,
  );
  return el(
    "li",
    { class: "doc", "data-testid": "document-row", "data-id": file.id, "data-status": file.status },
    el(
      "div",
      { class: "doc-main" },
      el("strong", { class: "doc-title", text: file.title }),
      el("span", { class: `status file-${file.status}`, text: config.file_statuses[file.status] }),
    ),
    el("span", {
      class: "muted doc-meta",
      text: [kindLabel(file.kind), sizeText(file.size), formatMoment(file.created_at)].join(" · "),
    }),
    file.uploaded_by !== file.patient
      ? el("span", { class: "muted doc-meta", text: t("docs.by", { name: file.uploaded_by_name }) })
      : null,
    buttons.childElementCount ? buttons : null,
    error,
  );
}

// An appointment's versions, oldest first ([] when none, null when they could not be had).
export async function loadPrescriptions(appointmentId) {
  const result = await api("GET", `/api/appointments/${appointmentId}/prescriptions/`);
  return result.ok ? result.data : result.status === 404 ? [] : null;
}

// The latest version's PDF, and the earlier ones after it.
export function prescriptionBlock(versions) {
  if (!versions || !versions.length) return null;
  const error = el("div", { class: "error", role: "alert" });
  const link = (p, testid, text) =>
    el("a", {
      href: "#",
      class: "rx-link",
      "data-testid": testid,
      "data-version": p.version,
      text,
      onclick: (event) => {
        event.preventDefault();
        download(p.file, error);
      },
    });
  const latest = versions[versions.length - 1];
  const earlier = versions.slice(0, -1).reverse();
  return el(
    "div",
    { class: "rx" },
    el(
      "div",
      { class: "rx-line" },
      link(latest, "prescription-link", t("rx.latest", { version: latest.version })),
      el("span", { class: "muted", text: formatMoment(latest.created_at) }),
    ),
    earlier.length
      ? el(
          "div",
          { class: "rx-line" },
          el("span", { class: "muted", text: t("rx.earlier") }),
          ...earlier.map((p) => link(p, "prescription-version", t("rx.version", { version: p.version }))),
        )
      : null,
    error,
  );
}
