// The console's transcript actions for one conversation: "Print transcript"
// opens the printable page (what the visitor saw; internal notes are never
// in it), "Email transcript" sends it through the outbox to an address the
// agent types.
//
// Under them, every transcript mailed from this conversation (by the visitor
// or by staff) with its mail's true state (docs/mail.md, "Delivery states
// where they were asked for"): queued, sent, refused by the mail server (with
// its reason), not delivered, uncertain; the last three with "Send again".
// The list comes with the conversation (GET /api/v1/conversations/{id},
// transcript_mails) and follows the socket's outbox frames (a new one, asked
// for meanwhile: GET /api/v1/conversations/{id}/transcript-mails).
//
// transcriptControls(id) returns {el, show(mails), destroy()}.

import { api } from "./api.js";
import { h, replace, uid } from "./dom.js";
import { lang, t } from "./i18n.js";
import { timeElement } from "./chat-text.js";
import { onOfflineNews } from "./view-offline-live.js";
import { deliveryLabel } from "./view-offline-message.js";

export function transcriptControls(id) {
  let mails = [];
  const list = h("ul", { class: "transcript-mails", testid: "transcript-mails", hidden: true,
    "aria-label": t("Emailed transcripts") });

  function mailItem(m) {
    const state = m.delivery;
    const line = h("p", { class: ["delivery", `delivery-${state}`], dataset: { delivery: state } },
      h("span", { class: "delivery-dot", "aria-hidden": "true" }),
      h("span", { text: t("Transcript to {address}", { address: m.to }) }), " · ",
      h("span", { class: "delivery-text", text: deliveryLabel(state) }));
    if ((state === "refused" || state === "failed") && m.error) {
      line.append(h("span", { class: "delivery-error", text: ` (${m.error})` }));
    } else if (state === "uncertain") {
      line.append(h("span", { class: "delivery-error", text: ` ${t("Sending was cut off; it may have arrived.")}` }));
    } else if (state === "queued" && m.error) {
      line.append(h("span", { class: "delivery-error muted",
        text: ` ${t("Will try again. Last attempt: {error}", { error: m.error })}` }));
    }
    if (["failed", "refused", "uncertain"].includes(state) && m.outbox_id) {
      const again = h("button", { type: "button", class: "small", text: t("Send again") });
      again.addEventListener("click", async () => {
        again.disabled = true;
        try {
          await api("POST", `/api/v1/outbox/${m.outbox_id}/retry`);
          m.delivery = "queued";
          m.error = null;
          draw();
        } catch (failure) {
          again.disabled = false;
          if (!failure.handled) status.textContent = failure.message;
        }
      });
      line.append(" ", again);
    }
    return h("li", { class: "transcript-mail", testid: "transcript-mail", dataset: { delivery: state, id: m.id } },
      line, h("span", { class: "muted" }, m.requested_by === "visitor" ? t("Asked for by the visitor")
        : t("Sent by staff"), " · ", timeElement(m.at)));
  }

  function draw() {
    list.hidden = mails.length === 0;
    replace(list, ...mails.map(mailItem));
  }

  // An outbox frame for a mail shown here updates it; one naming this
  // conversation that is not shown yet (the visitor asked meanwhile) makes the
  // list read again.
  let reading = null;
  async function reread() {
    if (reading) return;
    reading = api("GET", `/api/v1/conversations/${id}/transcript-mails`);
    try {
      mails = await reading;
      draw();
    } catch {
      // the next frame or opening the conversation again shows it
    } finally {
      reading = null;
    }
  }
  const stop = onOfflineNews((frame) => {
    if (frame.type !== "outbox" || !frame.outbox) return;
    const m = mails.find((x) => x.outbox_id === frame.outbox.id);
    if (m) {
      m.delivery = frame.outbox.state;
      m.error = frame.outbox.error || null;
      draw();
    } else if (frame.outbox.conversation_id === id) {
      reread();
    }
  });

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
      const address = input.value.trim();
      const queued = await api("POST", `/api/v1/conversations/${id}/transcript/email`, { email: address, lang });
      status.textContent = t("The transcript is queued for {address}.", { address });
      if (queued && queued.id && !mails.some((m) => m.id === queued.id)) {
        mails.push({ id: queued.id, outbox_id: queued.outbox_id, to: address, at: new Date().toISOString(),
          requested_by: "staff", delivery: queued.delivery || "queued", error: null });
        draw();
      }
      input.value = "";
      form.hidden = true;
    } catch (failure) {
      if (!failure.handled) status.textContent = failure.message;
    } finally {
      send.disabled = false;
    }
  });
  return {
    el: h("div", { class: "thread-transcript" }, print, " ", open, form, status, list),
    show(next) {
      mails = (next || []).map((m) => ({ ...m }));
      draw();
    },
    destroy() {
      stop();
    },
  };
}
