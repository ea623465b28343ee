// Rectification (GDPR article 16) of one record found on the Find a person
// page: an offline message's name and email, and any message text (a chat
// message, an offline message, a reply), where the contact person selects the
// wrong part in a read-only copy of the text and replaces or redacts it. The
// server keeps no copy of the old value; the page shows the new one.

import { api } from "./api.js";
import { field, h, messageBox, replace } from "./dom.js";
import { N_, formatDateTime, t } from "./i18n.js";
import { deliveryLabel } from "./view-offline-message.js";
import { serverOffset } from "./view-privacy-common.js";

const AUTHORS = {
  visitor: N_("Visitor"),
  agent: N_("Agent"),
  system: N_("System"),
};

function rowsFor(text) {
  return String(Math.min(12, Math.max(3, Math.ceil(text.length / 60) + text.split("\n").length - 1)));
}

/**
 * A read-only copy of a text in which the wrong part is selected, then
 * replaced with corrected text or redacted. `target` is the rectify call's
 * {record, id}; onSaved(newValue) is told the corrected text.
 */
function spanEditor({ label, value, target, onSaved }) {
  let original = value;
  const area = h("textarea", { readOnly: true, rows: rowsFor(value), value, spellcheck: "false",
    class: "pv-span-text", testid: "pv-span-text" });
  const picked = h("p", { class: "pv-picked muted", testid: "pv-picked", "aria-live": "polite",
    text: t("Nothing is selected yet.") });
  const replacement = h("input", { type: "text", maxlength: "200", autocomplete: "off", testid: "pv-replacement" });
  const replaceButton = h("button", { type: "button", text: t("Replace the selection"), testid: "pv-replace" });
  const redactButton = h("button", { type: "button", class: "danger-outline", text: t("Redact the selection"),
    testid: "pv-redact" });
  const error = messageBox("error");
  const saved = h("div", { class: "message success", role: "status", hidden: true, testid: "pv-rectified" });

  function span() {
    const a = area.selectionStart;
    const b = area.selectionEnd;
    if (!(b > a)) return null;
    return { start: serverOffset(original, a), end: serverOffset(original, b), text: area.value.slice(a, b) };
  }

  function showPicked() {
    const s = span();
    picked.textContent = s ? t("Selected: “{text}”", { text: s.text }) : t("Nothing is selected yet.");
  }
  for (const event of ["select", "keyup", "mouseup", "focus"]) area.addEventListener(event, showPicked);

  async function apply(button, text) {
    error.clear();
    const s = span();
    if (!s) {
      error.show(t("First select the wrong part of the text."));
      area.focus();
      return;
    }
    if (text === null) {
      error.show(t("Write the corrected text first."));
      replacement.focus();
      return;
    }
    button.disabled = true;
    try {
      const result = await api("POST", "/api/v1/privacy/rectify", {
        ...target, field: "body", start: s.start, end: s.end, replacement: text,
      });
      original = result.value;
      area.value = original;
      area.rows = rowsFor(original);
      replacement.value = "";
      showPicked();
      replace(saved, h("p", { text: t("Saved. The text now reads:") }),
        h("blockquote", { class: "pv-quote break", testid: "pv-new-value", text: original }));
      saved.hidden = false;
      if (onSaved) onSaved(original);
    } catch (failure) {
      if (!failure.handled) error.show(failure.message);
    } finally {
      button.disabled = false;
    }
  }
  replaceButton.addEventListener("click", () => {
    const text = replacement.value.trim();
    apply(replaceButton, text ? text : null);
  });
  redactButton.addEventListener("click", () => apply(redactButton, t("[removed]")));

  return h("div", { class: "pv-editor", testid: "pv-editor" },
    field(label, area, { hint: t("Select the wrong part of the text, then replace it with the corrected text or redact it.") }).row,
    picked,
    field(t("Corrected text"), replacement).row,
    h("div", { class: "actions" }, replaceButton, redactButton),
    error.el, saved);
}

/** A text with a "Correct…" button that opens its editor below it. */
function correctable({ heading, value, target, editorLabel, testid, onCorrected }) {
  const text = h("p", { class: "pv-text break", text: value });
  const slot = h("div", { class: "pv-editor-slot" });
  const open = h("button", { type: "button", class: "small", text: t("Correct…"), testid: "pv-correct",
    "aria-expanded": "false" });
  open.addEventListener("click", () => {
    if (slot.childElementCount) {
      slot.replaceChildren();
      open.setAttribute("aria-expanded", "false");
      return;
    }
    slot.append(spanEditor({ label: editorLabel, value: text.textContent, target,
      onSaved: (v) => {
        text.textContent = v;
        if (onCorrected) onCorrected();
      } }));
    open.setAttribute("aria-expanded", "true");
    slot.querySelector("textarea").focus();
  });
  return h("li", { class: "pv-text-item", testid }, h("div", { class: "pv-text-head" }, heading, open), text, slot);
}

function drawConversation(container, conv, { onFlags, onCorrected }) {
  onFlags({ restricted: conv.restricted });
  const messages = conv.events.filter((e) => e.body !== null && e.body !== undefined);
  const items = messages.map((e) => {
    const who = e.kind === "note" ? t("Internal note") : AUTHORS[e.author] ? t(AUTHORS[e.author]) : e.author;
    return correctable({
      heading: h("span", { class: "pv-text-meta" }, h("strong", { text: who }), " ",
        h("time", { class: "muted", datetime: e.at, text: formatDateTime(e.at) })),
      value: e.body,
      target: { record: "chat_event", id: e.id },
      editorLabel: t("Text of the message"),
      testid: "pv-chat-message",
      onCorrected,
    });
  });
  const mails = (conv.transcript_emails || []).map((m) => h("li", { testid: "pv-transcript-mail",
    dataset: { delivery: m.delivery } },
  h("span", { class: "break", text: m.to }), " ",
  h("time", { class: "muted", datetime: m.at, text: formatDateTime(m.at) }), " ",
  h("span", { class: ["badge", `delivery-${m.delivery}`], text: deliveryLabel(m.delivery) })));
  replace(container,
    h("p", { class: "muted", text: t("Visitor id: {visitor}", { visitor: conv.visitor }) }),
    items.length ? h("ol", { class: "pv-texts" }, items)
      : h("p", { class: "muted", text: t("No messages in this conversation.") }),
    mails.length ? h("h4", { text: t("Transcript emailed to") }) : null,
    mails.length ? h("ul", { class: "pv-transcript-mails" }, mails) : null);
}

function fieldForm({ label, input, target, fieldName, savedText, onCorrected }) {
  const button = h("button", { type: "submit", text: t("Save") });
  const error = messageBox("error");
  const status = messageBox("success");
  const form = h("form", { class: "pv-field-form", novalidate: true },
    field(label, input).row, h("div", { class: "actions" }, button), error.el, status.el);
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    error.clear();
    status.clear();
    button.disabled = true;
    try {
      const result = await api("POST", "/api/v1/privacy/rectify", { ...target, field: fieldName, value: input.value });
      input.value = result.value;
      status.show(t(savedText, { value: result.value }));
      if (onCorrected) onCorrected();
    } catch (failure) {
      if (!failure.handled) error.show(failure.message);
    } finally {
      button.disabled = false;
    }
  });
  return form;
}

function drawOffline(container, m, { onFlags, onCorrected }) {
  onFlags({ restricted: m.restricted, objection: m.objection });
  const target = { record: "offline_message", id: m.id };
  const nameInput = h("input", { type: "text", maxlength: "200", value: m.name, autocomplete: "off",
    testid: "pv-offline-name" });
  const emailInput = h("input", { type: "email", maxlength: "320", value: m.email, autocomplete: "off",
    spellcheck: "false", testid: "pv-offline-email" });
  const texts = [correctable({
    heading: h("span", { class: "pv-text-meta" }, h("strong", { text: t("Message") }), " ",
      h("time", { class: "muted", datetime: m.received_at, text: formatDateTime(m.received_at) })),
    value: m.body, target, editorLabel: t("Text of the message"), testid: "pv-offline-body", onCorrected,
  })].concat(m.replies.map((r) => correctable({
    heading: h("span", { class: "pv-text-meta" }, h("strong", { text: t("Reply") }), " ",
      h("time", { class: "muted", datetime: r.at, text: formatDateTime(r.at) }), " ",
      h("span", { class: ["badge", `delivery-${r.delivery}`], testid: "pv-reply-delivery",
        dataset: { delivery: r.delivery }, text: deliveryLabel(r.delivery) })),
    value: r.body, target: { record: "offline_reply", id: r.id }, editorLabel: t("Text of the reply"),
    testid: "pv-offline-reply", onCorrected,
  })));
  replace(container,
    h("div", { class: "pv-field-forms" },
      fieldForm({ label: t("Name"), input: nameInput, target, fieldName: "name",
        savedText: N_("Saved. The name is now “{value}”."), onCorrected }),
      fieldForm({ label: t("Email"), input: emailInput, target, fieldName: "email",
        savedText: N_("Saved. The email address is now “{value}”; the emails sent follow it."), onCorrected })),
    h("ol", { class: "pv-texts" }, texts));
}

/** Load one record in full into `container` and offer its corrections. */
export async function recordDetail(container, record, hooks) {
  replace(container, h("p", { class: "muted", role: "status", text: t("Loading…") }));
  try {
    if (record.kind === "conversation") {
      drawConversation(container, await api("GET", `/api/v1/privacy/conversations/${record.id}`), hooks);
    } else {
      drawOffline(container, await api("GET", `/api/v1/privacy/offline-messages/${record.id}`), hooks);
    }
  } catch (failure) {
    if (!failure.handled) replace(container, h("p", { class: "message error", role: "alert", text: failure.message }));
  }
}
