// The agent's own status: online, away or offline. For now it only keeps its
// state (data-state on the control, remembered in this browser) and tells the
// rest of the page by dispatching CustomEvent("jutella:presence",
// {detail: {state}}) on document. The chat code listens to that event and may
// call setPresence() to show a state decided elsewhere.

import { h, uid } from "./dom.js";
import { N_, t } from "./i18n.js";

export const STATES = [
  ["online", N_("Online")],
  ["away", N_("Away")],
  ["offline", N_("Offline")],
];
const KEY = "jutella-presence";

let control = null;
let current = remembered() || "online";

function remembered() {
  try {
    const value = localStorage.getItem(KEY);
    return STATES.some(([s]) => s === value) ? value : null;
  } catch {
    return null;
  }
}

export function getPresence() {
  return current;
}

/** Show a state; dispatch the event only when notify is true. */
export function setPresence(state, { notify = false } = {}) {
  if (!STATES.some(([s]) => s === state)) return;
  current = state;
  try {
    localStorage.setItem(KEY, state);
  } catch {
    // private mode: the state simply is not remembered
  }
  if (control) {
    control.select.value = state;
    control.select.dataset.state = state;
    control.wrap.dataset.state = state;
  }
  if (notify) document.dispatchEvent(new CustomEvent("jutella:presence", { detail: { state } }));
}

export function presenceControl() {
  const select = h("select", { id: uid("presence"), testid: "presence", dataset: { state: current } },
    STATES.map(([state, label]) => h("option", { value: state, text: t(label), selected: state === current })));
  select.addEventListener("change", () => setPresence(select.value, { notify: true }));
  const wrap = h("div", { class: "presence", dataset: { state: current } },
    h("span", { class: "presence-dot", "aria-hidden": "true" }),
    h("label", { for: select.id, text: t("My status") }),
    select);
  control = { select, wrap };
  return wrap;
}

export function unmountPresence() {
  control = null;
}
