// Internal notes in a conversation: staff see them, the visitor never does.
//
// The "Note" switch next to the reply box (data-testid="note-toggle") turns
// the box into a note box: what is sent then goes to
// POST /api/v1/conversations/{id}/notes with a random client_id (a retry with
// the same id stores it once), and comes back to every console following the
// conversation as an event of kind "note". Notes can be written in any
// conversation, closed ones and other agents' included.
//
// A note is drawn apart from the messages (data-testid="note", not "message"),
// with an "Internal note" label, or "Transfer note" for the note a transfer
// leaves (data.key "transfer_note"). Its text is staff-written but still
// shown as text only.

import { api } from "./api.js";
import { h } from "./dom.js";
import { t } from "./i18n.js";
import { linkify, timeElement } from "./chat-text.js";

export function isNote(event) {
  return event && event.kind === "note";
}

export function noteElement(event) {
  const transfer = event.data && event.data.key === "transfer_note";
  return h("li", { class: ["msg", "msg-note"], testid: "note", dataset: { seq: event.seq, author: "agent" } },
    h("div", { class: "msg-meta" },
      h("span", { class: "note-label", text: transfer ? t("Transfer note") : t("Internal note") }), " ",
      h("span", { class: "msg-author", text: event.author_name || t("Agent") }), " ",
      timeElement(event.at, "msg-time")),
    h("div", { class: "msg-body" }, linkify(event.body)));
}

function newClientId() {
  const bytes = new Uint8Array(12);
  crypto.getRandomValues(bytes);
  return `n-${[...bytes].map((b) => b.toString(16).padStart(2, "0")).join("")}`;
}

/**
 * The switch. onChange(on) is called when it is flipped. Returns
 * {el, on(), set(on), post(conversationId, text)}.
 */
export function noteSwitch(onChange) {
  const el = h("button", { type: "button", class: "small quiet note-toggle", testid: "note-toggle",
    "aria-pressed": "false", text: t("Internal note"),
    title: t("Write an internal note: other staff see it, the visitor never does.") });
  let on = false;
  function set(value) {
    on = Boolean(value);
    el.setAttribute("aria-pressed", String(on));
    onChange(on);
  }
  el.addEventListener("click", () => set(!on));
  return {
    el,
    on: () => on,
    set,
    async post(conversationId, text) {
      const clientId = newClientId();
      let lastFailure = null;
      for (let attempt = 0; attempt < 3; attempt += 1) {
        try {
          return await api("POST", `/api/v1/conversations/${conversationId}/notes`, { client_id: clientId, body: text });
        } catch (failure) {
          lastFailure = failure;
          if (failure.status !== 0) break; // only a lost connection is worth a retry (same client_id)
          await new Promise((r) => setTimeout(r, 800 * (attempt + 1)));
        }
      }
      throw lastFailure;
    },
  };
}
