// The console's transcript actions for one conversation: "Print transcript"
// opens the printable page (what the visitor saw; internal notes are never
// in it), "Email transcript" sends it through the outbox to an address the
// agent types.

import { api } from "./api.js";
import { h, uid } from "./dom.js";
import { lang, t } from "./i18n.js";

export function transcriptControls(id) {
  const print = h("a", { class: "button small", href: `/api/v1/conversations/${id}/transcript?lang=${lang}`,
    target: "_blank", rel: "noopener", testid: "console-transcript-print", text: t("Print transcript") });
  const open = h("button", { type: "button", class: "small", testid: "console-transcript-email",
    text: t("Email transcript") });
  const inputId = uid("transcript");
  const input = h("input", { type: "email", id: inputId, autocomplete: "off", testid: "console-transcript-email-input" });
  const send = h("button", { type: "submit", class: "small primary", testid: "console-transcript-email-send",
    text: t("Send") });
  const status = h("p", { class: "muted small", role: "status" });
  const form = h("form", { class: "transcript-form", hidden: true, novalidate: true },
    h("label", { for: inputId, text: t("Email address") }), " ", input, " ", send);
  open.addEventListener("click", () => {
    form.hidden = !form.hidden;
    if (!form.hidden) input.focus();
  });
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    status.textContent = "";
    send.disabled = true;
    try {
      await api("POST", `/api/v1/conversations/${id}/transcript/email`, { email: input.value.trim(), lang });
      status.textContent = t("The transcript is queued for {address}.", { address: input.value.trim() });
      input.value = "";
      form.hidden = true;
    } catch (failure) {
      if (!failure.handled) status.textContent = failure.message;
    } finally {
      send.disabled = false;
    }
  });
  return h("div", { class: "thread-transcript" }, print, " ", open, form, status);
}
