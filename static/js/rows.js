// Appointment rows of the portals: one row per appointment kept in order, its status moves as
// buttons (the moves the server says this user may make), and a refused move's error in the row.

import { $, $$, config, el, errorText, t } from "./base.js";

// How each move looks; which moves exist, and for whom, is the server's (`config.moves`).
const MOVE_BUTTONS = {
  CONFIRMED: { action: "confirm", label: "action.confirm", style: "btn-secondary" },
  COMPLETED: { action: "complete", label: "action.complete", style: "btn-secondary" },
  NO_SHOW: { action: "no-show", label: "action.no_show", style: "btn-secondary" },
  CANCELLED: { action: "cancel", label: "action.cancel", style: "btn-danger" },
};

export function movesFrom(status) {
  return config.moves[status] || [];
}

export function isActive(appointment) {
  return config.active_statuses.includes(appointment.status);
}

// The buttons for the moves this user may make from `appointment`'s status, cancelling last.
export function moveButtons(appointment, onMove) {
  const moves = [...movesFrom(appointment.status)].sort((a, b) => (a === "CANCELLED") - (b === "CANCELLED"));
  return moves
    .filter((status) => MOVE_BUTTONS[status])
    .map((status) => {
      const { action, label, style } = MOVE_BUTTONS[status];
      return el("button", {
        type: "button",
        class: style,
        "data-action": action,
        "data-testid": action === "cancel" ? "cancel-appointment" : `${action}-appointment`,
        text: t(label),
        onclick: () => onMove(appointment.id, status),
      });
    });
}

export function errorSlot() {
  return el("div", { class: "error", "data-role": "row-error", role: "alert" });
}

// A refused change of one appointment: its message in that appointment's row.
export function showRowError(list, id, result) {
  const slot = $(`[data-id="${id}"] [data-role="row-error"]`, list);
  if (slot) slot.textContent = errorText(result);
}

// One row per appointment, kept in order; an older copy never overwrites a newer one.
// `into(appointment)` picks the list a row goes in (the patient's upcoming or past ones; `order` compares
// two rows of one list).
export function appointmentList(list, { render, order, keep = () => true, changed = () => {}, into = () => list }) {
  const rows = new Map();
  const known = new Map();

  function place(appointment, row) {
    const target = into(appointment);
    const next = $$(":scope > li", target).find((node) => {
      const other = known.get(Number(node.dataset.id));
      return node !== row && other && order(appointment, other) < 0;
    });
    target.insertBefore(row, next || null);
  }

  function draw(appointment) {
    const old = rows.get(appointment.id);
    const focused = old && old.contains(document.activeElement) ? document.activeElement.dataset.action || "" : null;
    if (old) old.remove();
    rows.delete(appointment.id);
    known.delete(appointment.id);
    if (keep(appointment)) {
      known.set(appointment.id, appointment);
      const row = render(appointment);
      rows.set(appointment.id, row);
      place(appointment, row);
      if (focused !== null) {
        // Keyboard users stay where they were after the row is redrawn.
        const target = (focused && $(`[data-action="${focused}"]`, row)) || row;
        if (target === row) row.tabIndex = -1;
        target.focus();
      }
    }
  }

  // Returns the copy it replaced (undefined for a new one), or null when `appointment` was older.
  function upsert(appointment) {
    const previous = known.get(appointment.id);
    if (previous && previous.updated_at > appointment.updated_at) return null;
    draw(appointment);
    changed();
    return previous;
  }

  // Every row drawn again (the day turned, or what a row shows depends on it); rows no longer kept go.
  function redraw() {
    for (const appointment of [...known.values()]) draw(appointment);
    changed();
  }

  return {
    upsert,
    redraw,
    get: (id) => known.get(id),
    size: () => known.size,
  };
}
