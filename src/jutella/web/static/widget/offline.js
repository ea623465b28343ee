// The email form for when nobody is on duty (docs/mail.md, "The widget's form").
//
// - The visitor opens the chat and no agent is online: the form is shown
//   instead of the composer (reason "no_agent").
// - A waiting chat has not been accepted within the wait setting, or the last
//   agent goes offline during a chat: a line with a button offers the form and
//   the composer stays ("wait_timeout", "agents_left"). Then the visitor token
//   goes along and the server attaches the conversation so far. The wait's
//   offer sits in the queue status (queueSlot), under the place in the queue:
//   the chat keeps waiting unless the visitor leaves the message.
// - An agent comes online while the form is open: it offers the chat again,
//   without forcing it. What the visitor typed stays in the fields.
//
// The frame (frame.js) decides nothing here: it calls update() whenever the
// connection, the agents' availability or the conversation's state changes.
// Client-side checks give the server's messages; the server's word is final.
// Everything shown is text (textContent); the form goes out as JSON.

const MAX_NAME = 200;
const MAX_MESSAGE = 4000;
const FIELDS = ["name", "email", "message"];
const LOCAL = /^[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+(\.[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+)*$/;
const LABEL = /^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$/;
const TOP = /^([a-z]{2,63}|xn--[a-z0-9-]{1,59})$/;
const chars = (s) => [...s].length; // code points, as the server counts

// As the server's validate_email: a dot-atom local part and a domain of at
// least two labels with an alphabetic (or IDN) top-level label. No look-ups.
export function validEmail(value) {
  const at = value.lastIndexOf("@");
  const local = value.slice(0, at);
  const domain = value.slice(at + 1);
  if (at < 1 || value.length > 254 || local.length > 64 || !LOCAL.test(local)) return false;
  if (!domain || /[\s/?#:@\\[\]%]/.test(domain)) return false;
  let ascii;
  try {
    ascii = new URL(`${location.protocol}//${domain}`).hostname; // the browser's IDNA (punycode)
  } catch (e) {
    return false;
  }
  const labels = ascii.split(".");
  return labels.length >= 2 && labels.every((l) => LABEL.test(l)) && TOP.test(labels[labels.length - 1]);
}

function el(doc, tag, attrs, ...kids) {
  const e = doc.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === null || v === undefined || v === false) continue;
    if (k === "text") e.textContent = v;
    else if (k === "testid") e.dataset.testid = v;
    else e.setAttribute(k, v === true ? "" : v);
  }
  e.append(...kids.filter(Boolean));
  return e;
}

export class OfflineView {
  // frame: {slot, queueSlot, waitSeconds, intro (the site's own text, or ""), context(), getWait(), setWait(w), sent(reason), chat(), close() or null}
  constructor(doc, i18n, frame) {
    this.doc = doc;
    this.i18n = i18n;
    this.frame = frame;
    this.mode = "none"; // none | offer | form | sent
    this.reason = "no_agent";
    this.s = { online: null, conv: null, state: null };
    this.waited = null; // the conversation that waited too long
    this.timer = null;
    this.privacy = doc.getElementById("privacy");
    this.notice = this.privacy.parentNode;
    this.build();
  }

  t(id, params) {
    return this.i18n.t(id, params);
  }

  build() {
    const d = this.doc;
    const e = (...a) => el(d, ...a);
    const field = (name, label, control, extra) => {
      control.id = `off-${name}`;
      control.name = name;
      control.required = true;
      control.dataset.testid = `offline-${name}`;
      const error = e("p", { class: "field-error", id: `off-${name}-error`, hidden: true });
      this.inputs[name] = control;
      this.errors[name] = error;
      control.addEventListener("input", () => {
        if (control.getAttribute("aria-invalid")) this.fieldError(name, "");
        if (name === "message") this.count();
      });
      return e("div", { class: "field" }, e("label", { for: control.id, text: label }), control, extra, error);
    };
    this.inputs = {};
    this.errors = {};

    // -- the offer: a line and a button; the composer stays ---------------------
    this.offerText = e("p");
    const leave = e("button", { type: "button", class: "btn", text: this.t("Leave a message") });
    leave.addEventListener("click", () => this.open(this.reason, true));
    this.offer = e("div", { class: "card offline-offer", role: "status" }, this.offerText, leave);

    // -- the form ---------------------------------------------------------------
    this.intro = e("p");
    this.attached = e("p", { text: this.t("The conversation so far is attached to your message.") });
    this.chatButton = e("button", { type: "button", class: "btn btn-quiet" });
    this.chatButton.addEventListener("click", () => this.toChat());
    this.available = e("p", { class: "available", text: this.t("Customer service is available now.") });
    this.counter = e("p", { class: "counter", id: "off-count" });
    this.formError = e("p", { class: "error", id: "off-error", "aria-live": "polite" });
    this.submitButton = e("button", { type: "submit", class: "btn", testid: "offline-submit",
      text: this.t("Send message") });
    this.formNotice = e("p", { class: "small off-notice" },
      e("span", { text: this.t("Your name, email address and message are stored so that we can answer you.") }), " ");
    const message = e("textarea", { rows: "5", "aria-describedby": "off-count" });
    const email = e("input", { type: "email", autocomplete: "email", spellcheck: "false", autocapitalize: "off" });
    // Marketing consent (only when the feature is on): a box the visitor ticks themselves, never ticked
    // beforehand; what goes out is the version of the wording shown (docs/privacy.md).
    const consent = this.frame.consent;
    this.consent = consent ? e("input", { type: "checkbox", id: "off-consent", testid: "offline-consent" }) : null;
    const consentRow = consent ? e("div", { class: "field field-check" }, this.consent,
      e("label", { for: "off-consent", text: `${consent.text} ${this.t("(optional)")}` })) : null;
    // A honeypot: people neither see it nor reach it; a robot that fills it in is refused.
    this.website = e("input", { id: "off-website", name: "website", type: "text", tabindex: "-1", autocomplete: "off" });
    this.form = e("form", { class: "offline", testid: "offline-form", novalidate: true, "aria-labelledby": "off-title" },
      e("h2", { id: "off-title", text: this.t("Leave a message") }),
      this.intro, this.attached, this.available,
      e("p", { class: "small", text: this.t("All fields are required.") }),
      field("name", this.t("Name"), e("input", { type: "text", autocomplete: "name" })),
      field("email", this.t("Email address"), email),
      field("message", this.t("Message"), message, this.counter), consentRow,
      e("div", { class: "hp", "aria-hidden": "true" }, e("label", { for: "off-website", text: "Website" }), this.website),
      this.formNotice, this.formError,
      e("div", { class: "actions" }, this.submitButton, this.chatButton));
    this.form.addEventListener("submit", (ev) => {
      ev.preventDefault();
      this.submit();
    });
    this.count();

    // -- the confirmation ----------------------------------------------------------
    this.sentTo = e("strong");
    const [before, after] = this.t("We will answer by email to {email}.").split("{email}");
    const again = e("button", { type: "button", class: "btn btn-quiet", text: this.t("Start a new chat") });
    again.addEventListener("click", () => this.toChat());
    this.sentAvailable = e("p", { class: "available" }, e("span", { text: this.t("Customer service is available now.") }),
      " ", again);
    // Never a dead end: another message, or close the panel (issue 17).
    const another = e("button", { type: "button", class: "btn btn-quiet", testid: "offline-another",
      text: this.t("Write another message") });
    another.addEventListener("click", () => this.open(this.reason, true));
    const close = this.frame.close ? e("button", { type: "button", class: "btn", testid: "offline-close",
      text: this.t("Close") }) : null;
    if (close) close.addEventListener("click", () => this.frame.close());
    this.sent = e("section", { class: "card offline-sent", testid: "offline-sent", tabindex: "-1",
      "aria-labelledby": "off-sent-title" },
    e("h2", { id: "off-sent-title", text: this.t("Thank you! Your message has been sent.") }),
    e("p", {}, before, this.sentTo, after || ""), this.sentAvailable,
    e("div", { class: "actions" }, close, another));
  }

  // -- state ---------------------------------------------------------------------
  // s: {online: bool|null, conv: id|null, state: waiting|active|closed|null}
  update(s) {
    this.s = s;
    this.watchWait();
    if (this.mode !== "form" && this.mode !== "sent") {
      const chatting = s.state === "waiting" || s.state === "active";
      this.mode = "none";
      if (s.online === false && s.state === null) this.set("form", "no_agent");
      else if (s.online === false && chatting) this.set("offer", "agents_left");
      else if (s.online && s.state === "waiting" && this.waited === s.conv) this.set("offer", "wait_timeout");
    }
    this.render();
  }

  set(mode, reason) {
    this.mode = mode;
    this.reason = reason;
  }

  // The waiting chat's clock: when this browser first saw it waiting, kept
  // with the frame's stored entry so that a new page does not restart it.
  watchWait() {
    clearTimeout(this.timer);
    const { online, conv, state } = this.s;
    if (state !== "waiting" || conv === null || online === false) return;
    let w = this.frame.getWait();
    if (!w || w.conv !== conv) {
      w = { conv, since: Date.now() };
      this.frame.setWait(w);
    }
    const left = w.since + this.frame.waitSeconds * 1000 - Date.now();
    if (left <= 0) this.waited = conv;
    else {
      this.timer = setTimeout(() => {
        this.waited = conv;
        this.update(this.s);
      }, Math.min(left, 2 ** 31 - 1));
    }
  }

  render() {
    const { slot } = this.frame;
    const form = this.mode === "form";
    const inQueue = this.mode === "offer" && this.reason === "wait_timeout" && this.frame.queueSlot ? this.offer : null;
    const shown = inQueue ? null : { offer: this.offer, form: this.form, sent: this.sent }[this.mode] || null;
    if (slot.firstChild !== shown) slot.replaceChildren(...(shown ? [shown] : []));
    const { queueSlot } = this.frame;
    if (queueSlot && queueSlot.firstChild !== inQueue) queueSlot.replaceChildren(...(inQueue ? [inQueue] : []));
    this.doc.body.classList.toggle("offline-form", form);
    this.doc.body.classList.toggle("offline-done", this.mode === "sent");
    // One privacy link: in the form while it is shown, else in the panel's notice.
    (form ? this.formNotice : this.notice).append(this.privacy);
    const fromChat = this.reason !== "no_agent";
    this.offerText.textContent = this.reason === "wait_timeout"
      ? this.t("Nobody has answered yet. Leave a message and we will answer by email.")
      : this.t("You can also leave a message, and we will answer by email.");
    this.intro.textContent = fromChat ? this.t("We will answer by email.")
      : this.frame.intro || this.t("Nobody is available right now. Leave a message and we will answer by email.");
    this.attached.hidden = !fromChat;
    this.available.hidden = !this.s.online;
    this.chatButton.textContent = fromChat ? this.t("Back to the chat") : this.t("Chat instead");
    this.chatButton.hidden = !fromChat && !this.s.online;
    this.sentAvailable.hidden = !this.s.online || fromChat;
  }

  // Show the form; focus its first field when the visitor asked for it.
  open(reason, focus) {
    this.set("form", reason);
    this.render();
    if (focus) this.inputs.name.focus();
  }

  toChat() {
    this.mode = "none";
    this.update(this.s);
    this.frame.chat();
  }

  // After "Start a new chat" or "Forget this browser": back to the start.
  reset() {
    if (this.mode === "sent") this.mode = "none";
    this.update(this.s);
  }

  // Move focus into what is shown, when it replaced the composer.
  focus() {
    if (this.mode === "form") this.inputs.name.focus();
    else if (this.mode === "sent") this.sent.focus();
    else return false;
    return true;
  }

  get replacesComposer() {
    return this.mode === "form" || this.mode === "sent";
  }

  // -- the fields -------------------------------------------------------------------
  count() {
    const n = chars(this.inputs.message.value);
    this.counter.textContent = this.t("{count} / {max} characters", { count: n, max: MAX_MESSAGE });
    this.counter.classList.toggle("over", n > MAX_MESSAGE);
  }

  fieldError(name, text) {
    const input = this.inputs[name];
    const error = this.errors[name];
    error.textContent = text;
    error.hidden = !text;
    const described = name === "message" ? ["off-count"] : [];
    if (text) {
      input.setAttribute("aria-invalid", "true");
      described.push(error.id);
    } else {
      input.removeAttribute("aria-invalid");
    }
    if (described.length) input.setAttribute("aria-describedby", described.join(" "));
    else input.removeAttribute("aria-describedby");
  }

  check() {
    const v = Object.fromEntries(FIELDS.map((f) => [f, this.inputs[f].value]));
    const out = {};
    // eslint-disable-next-line no-control-regex
    if (/[\u0000-\u001f\u007f]/.test(v.name)) out.name = this.t("The name cannot contain line breaks or control characters.");
    else if (!v.name.trim()) out.name = this.t("Enter your name.");
    else if (chars(v.name.trim().split(/\s+/).join(" ")) > MAX_NAME) out.name = this.t("The name is too long (at most 200 characters).");
    const email = v.email.trim();
    if (!email) out.email = this.t("Enter your email address.");
    else if (!validEmail(email)) out.email = this.t("Enter a valid email address, like name@example.fi.");
    const message = v.message.trim();
    if (!message) out.message = this.t("Write a message.");
    else if (chars(message) > MAX_MESSAGE) out.message = this.t("The message is too long (at most 4,000 characters).");
    return out;
  }

  showErrors(errors) {
    for (const f of FIELDS) this.fieldError(f, errors[f] || "");
    const first = FIELDS.find((f) => errors[f]);
    if (first) this.inputs[first].focus();
    return Boolean(first);
  }

  async submit() {
    if (this.busy) return;
    this.formError.textContent = "";
    if (this.showErrors(this.check())) return;
    const c = this.frame.context();
    const body = {
      name: this.inputs.name.value, email: this.inputs.email.value.trim(), message: this.inputs.message.value,
      website: this.website.value, reason: this.reason, lang: c.lang, page: c.page || null,
      referrer: c.referrer || null, browser_key: c.browserKey,
      visitor_token: this.reason !== "no_agent" ? c.token : null,
      department_id: typeof c.department === "number" ? c.department : null, // docs/departments.md
      marketing_consent: this.consent && this.consent.checked ? this.frame.consent.version : null,
    };
    this.busy = true;
    this.submitButton.disabled = true;
    this.submitButton.textContent = this.t("Sending…");
    let failed = this.t("The message could not be sent. Check your connection and try again.");
    try {
      const r = await fetch("/api/v1/public/offline-messages", {
        method: "POST", credentials: "omit", cache: "no-store",
        headers: { "Content-Type": "application/json", Accept: "application/json", "Accept-Language": c.lang },
        body: JSON.stringify(body),
      });
      if (r.status === 201) {
        this.done(body.email);
        return;
      }
      const data = await r.json().catch(() => null);
      const e = data && data.error;
      const text = e && typeof e.message === "string" && e.message.trim() ? e.message.trim().slice(0, 300) : "";
      if (r.status === 400 && e && FIELDS.includes(e.field) && text) {
        this.showErrors({ [e.field]: text });
        failed = "";
      } else if (text) {
        failed = text;
      }
    } catch (err) {
      // the network: the generic message
    } finally {
      this.busy = false;
      this.submitButton.disabled = false;
      this.submitButton.textContent = this.t("Send message");
    }
    this.formError.textContent = failed;
  }

  done(email) {
    const reason = this.reason;
    this.sentTo.textContent = email;
    for (const f of FIELDS) this.inputs[f].value = "";
    if (this.consent) this.consent.checked = false;
    this.count();
    this.mode = "sent";
    this.render();
    this.sent.focus();
    this.frame.sent(reason);
  }
}
