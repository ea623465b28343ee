// Labels: chips on the list items and in the conversation header
// (data-testid="label-chip"), and the picker in the header that puts a label
// on the conversation or takes it off (PUT/DELETE
// /api/v1/conversations/{id}/labels/{label}). Administrators define the
// labels (name and a colour from a fixed palette) in the canned responses
// and labels page (view-canned.js).

import { api } from "./api.js";
import { h, replace, uid } from "./dom.js";
import { t } from "./i18n.js";

let cache = null;

export function loadLabels({ force = false } = {}) {
  if (!cache || force) {
    cache = api("GET", "/api/v1/labels").catch((failure) => {
      cache = null;
      throw failure;
    });
  }
  return cache;
}

export function forgetLabels() {
  cache = null;
}

export function labelChip(label, removable = null) {
  const chip = h("span", { class: ["label-chip", `label-${label.color}`], testid: "label-chip",
    dataset: { label: label.id } }, h("span", { text: label.name }));
  if (removable) {
    chip.append(h("button", { type: "button", class: "label-remove", "aria-label": t("Remove label {name}",
      { name: label.name }), text: "×", on: { click: () => removable(label) } }));
  }
  return chip;
}

/** The conversation's department as a small badge on list items
 * (data-testid="department-badge"), or nothing without one. */
export function departmentBadge(summary) {
  if (!summary || !summary.department_id || !summary.department_name) return null;
  return h("span", { class: "department-badge", testid: "department-badge",
    dataset: { department: summary.department_id }, title: t("Department"), text: summary.department_name });
}

export function labelChips(labels) {
  if (!labels || !labels.length) return null;
  return h("span", { class: "label-chips" }, labels.map((x) => labelChip(x)));
}

/**
 * The header's labels: chips with a remove button and a picker to add one.
 * changed(labels) is called after a change the server accepted.
 * Returns {el, set(labels)}.
 */
export function labelEditor(conversationId, initial, { changed, showError }) {
  let labels = initial || [];
  const chips = h("span", { class: "label-chips" });
  const select = h("select", { class: "label-add", id: uid("label"), testid: "label-add",
    "aria-label": t("Add a label") });
  const el = h("div", { class: "thread-labels" }, chips, select);

  async function change(label, on) {
    showError("");
    try {
      await api(on ? "PUT" : "DELETE", `/api/v1/conversations/${conversationId}/labels/${label.id}`);
      labels = on ? [...labels.filter((x) => x.id !== label.id), label].sort((a, b) => a.name.localeCompare(b.name))
        : labels.filter((x) => x.id !== label.id);
      draw();
      changed(labels);
    } catch (failure) {
      if (!failure.handled) showError(failure.message);
    }
  }

  async function draw() {
    replace(chips, labels.map((x) => labelChip(x, (label) => change(label, false))));
    let all = [];
    try {
      all = await loadLabels();
    } catch {
      all = [];
    }
    const have = new Set(labels.map((x) => x.id));
    const free = all.filter((x) => !have.has(x.id));
    replace(select, h("option", { value: "", text: all.length ? t("Add a label…") : t("No labels defined") }),
      free.map((x) => h("option", { value: String(x.id), text: x.name })));
    select.disabled = !free.length;
  }

  select.addEventListener("change", async () => {
    const id = Number(select.value);
    if (!id) return;
    const all = await loadLabels();
    const label = all.find((x) => x.id === id);
    select.value = "";
    if (label) change(label, true);
  });

  draw();
  return {
    el,
    set(next) {
      labels = next || [];
      draw();
    },
  };
}
