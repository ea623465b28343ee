// Keyboard shortcuts of the conversations view. They act only while the
// focus is not in a text field (typing a reply is never taken over), and
// never with Ctrl, Alt or Meta held.
//
//   j, or g then w   open the next waiting conversation (the one waiting longest)
//   a                accept the open conversation
//   c                close the open conversation (presses Close, which asks first:
//                    chat-thread.js confirmClose, the one question for both)
//   t                transfer it: dispatches "jutella:transfer" on document with
//                    {detail: {conversation}}; the transfer dialog listens for it
//   r                go to the reply box
//   / or s           go to the history search
//   ?                this list (data-testid="shortcut-help"); Escape closes it
//   Escape           in the reply box: leave it for the conversation's log, so
//                    the shortcuts work again

import { h } from "./dom.js";
import { N_, t } from "./i18n.js";

const SEQUENCE_MS = 1_500;

export const SHORTCUTS = [
  [["j"], N_("Open the next waiting conversation")],
  [["g", "w"], N_("Open the next waiting conversation")],
  [["a"], N_("Accept the open conversation")],
  [["c"], N_("Close the open conversation")],
  [["t"], N_("Transfer the open conversation")],
  [["r"], N_("Go to the reply box")],
  [["/"], N_("Search the history")],
  [["s"], N_("Search the history")],
  [["?"], N_("Show these shortcuts")],
  [["Esc"], N_("Leave the reply box")],
];

function typingInto(target) {
  if (!(target instanceof Element)) return false;
  return Boolean(target.closest("input, textarea, select, [contenteditable=''], [contenteditable='true']"));
}

function visible(el) {
  return el && !el.hidden && !el.disabled && el.getClientRects().length > 0;
}

function helpDialog() {
  const dialog = h("dialog", { class: "shortcut-help", testid: "shortcut-help", "aria-labelledby": "shortcut-title" },
    h("h2", { id: "shortcut-title", text: t("Keyboard shortcuts") }),
    h("p", { class: "muted", text: t("They work when the cursor is not in a text field.") }),
    h("table", { class: "shortcut-table" }, h("tbody", {}, SHORTCUTS.map(([keys, what]) => h("tr", {},
      h("td", {}, keys.flatMap((k, i) => [i ? ` ${t("then")} ` : null, h("kbd", { text: k })])),
      h("td", { text: t(what) }))))),
    h("form", { method: "dialog" }, h("button", { type: "submit", class: "small", text: t("Close") })));
  return dialog;
}

/**
 * Install the shortcuts for the view in `root`. nextWaiting() opens the
 * next waiting conversation; focusSearch() moves to the search; current()
 * is the open conversation's id or null. Returns {help(), uninstall()}.
 */
export function installShortcuts(root, { nextWaiting, focusSearch, current }) {
  const dialog = helpDialog();
  root.append(dialog);
  let pendingG = 0;

  function help() {
    if (!dialog.open) dialog.showModal();
  }

  function press(selector) {
    const el = root.querySelector(selector);
    if (!visible(el)) return false;
    el.click();
    return true;
  }

  function onKey(event) {
    if (event.defaultPrevented || event.ctrlKey || event.metaKey || event.altKey || event.isComposing) return;
    if (dialog.open) return;
    if (typingInto(event.target)) {
      if (event.key === "Escape" && event.target.matches("[data-testid=console-input]")) {
        const log = root.querySelector(".thread-log");
        if (log) {
          event.preventDefault();
          log.focus();
        }
      }
      return;
    }
    const key = event.key;
    let handled = true;
    if (pendingG && key === "w" && Date.now() - pendingG < SEQUENCE_MS) nextWaiting();
    else if (key === "g") {
      pendingG = Date.now();
      return;
    } else if (key === "j") nextWaiting();
    else if (key === "a") handled = press("[data-testid=accept]");
    else if (key === "c") handled = press("[data-testid=close-conversation]");
    else if (key === "t") {
      const id = current();
      if (id) document.dispatchEvent(new CustomEvent("jutella:transfer", { detail: { conversation: id } }));
      else handled = false;
    } else if (key === "r") {
      const input = root.querySelector("[data-testid=console-input]");
      if (visible(input)) input.focus();
      else handled = false;
    } else if (key === "/" || key === "s") focusSearch();
    else if (key === "?") help();
    else handled = false;
    pendingG = 0;
    if (handled) event.preventDefault();
  }

  document.addEventListener("keydown", onKey);
  return {
    help,
    uninstall() {
      document.removeEventListener("keydown", onKey);
      if (dialog.open) dialog.close();
      dialog.remove();
    },
  };
}
