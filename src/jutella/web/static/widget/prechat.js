// The site's pre-chat form (docs/prechat.md). When the server's welcome
// carries "prechat" (the site asks for a topic, a name or an email address,
// each optional or required), the form stands in for the composer before a
// chat starts; its answers go with the message that starts the conversation
// (and with its resends), never anywhere else. Nothing is stored in the
// browser for it: the answers live in memory (and, like any unsent message,
// in the pending entry until the server acknowledges it). Topic names are
// staff-given text, and everything becomes text nodes only.

import { validEmail } from "./offline.js";

const MAX_NAME = 100;
const MODES = ["off", "optional", "required"];

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

export class PrechatForm {
  // before: the composer (the form goes above it); done(): the visitor may write now
  constructor(doc, i18n, before, version, done) {
    this.doc = doc;
    this.i18n = i18n;
    this.done = done;
    this.config = null;
    this.open = false; // no conversation is going on
    this.offline = false; // the email form stands in for the chat
    this.answers = null; // given and checked: sent with the first message
    this.offered = []; // ids of the departments taking chats now (welcome and presence frames' on_duty)
    const css = doc.createElement("link");
    css.rel = "stylesheet";
    css.href = `/static/widget/prechat.css${version || ""}`;
    doc.head.append(css);
    this.slot = el(doc, "div", { class: "prechat-slot" });
    before.before(this.slot);
  }

  t(id, params) {
    return this.i18n.t(id, params);
  }

  // The topics a visitor may pick now: the server's rule (chat/prechat.py
  // topics_on_offer): no department, or a department taking chats now.
  topicsOnOffer() {
    const all = this.config && Array.isArray(this.config.topics) ? this.config.topics : [];
    return all.filter((t) => t && typeof t.key === "string" && typeof t.label === "string"
      && (typeof t.department !== "number" || this.offered.includes(t.department)));
  }

  // config: {name, email, topic: "off"|"optional"|"required", topics: [{key, label, department}]} or null;
  // onDuty: ids of the departments taking chats now (welcome and presence frames)
  update({ config, open, offline, onDuty }) {
    const before = JSON.stringify(this.topicsOnOffer().map((t) => t.key));
    if (config !== undefined) {
      const ok = config && typeof config === "object" && ["name", "email", "topic"].every((f) => MODES.includes(config[f]));
      const next = ok ? config : null;
      if (JSON.stringify(next) !== JSON.stringify(this.config)) {
        this.config = next;
        this.form = null; // built again from the new config
      }
    }
    if (Array.isArray(onDuty)) this.offered = onDuty.filter((id) => typeof id === "number");
    if (this.form && JSON.stringify(this.topicsOnOffer().map((t) => t.key)) !== before) {
      this.last = this.current(); // built again with the topics on offer, keeping what was typed
      this.form = null;
    }
    if (typeof open === "boolean") this.open = open;
    if (typeof offline === "boolean") this.offline = offline;
    this.render();
  }

  current() {
    const value = (name) => (this.inputs && this.inputs[name] ? this.inputs[name].value : "");
    return { topic: value("topic"), name: value("name"), email: value("email") };
  }

  get shown() {
    return !!this.config && this.open && !this.offline && this.answers === null;
  }

  render() {
    const shown = this.shown;
    this.doc.body.classList.toggle("prechat-open", shown);
    if (!shown) {
      this.slot.replaceChildren();
      return;
    }
    if (!this.form) this.build();
    if (this.form.parentNode !== this.slot) this.slot.replaceChildren(this.form);
  }

  build() {
    const d = this.doc;
    const e = (...a) => el(d, ...a);
    const c = this.config;
    const old = this.last || {};
    this.inputs = {};
    this.errors = {};
    const field = (name, label, control) => {
      const mode = name === "topic" && !this.topicsOnOffer().length ? "off" : c[name];
      if (mode === "off") return null;
      control.id = `pre-${name}`;
      control.name = name;
      control.dataset.testid = `prechat-${name}`;
      control.required = mode === "required";
      const error = e("p", { class: "field-error", id: `pre-${name}-error`, hidden: true });
      control.setAttribute("aria-describedby", error.id);
      control.addEventListener("input", () => {
        if (control.getAttribute("aria-invalid")) this.fieldError(name, "");
      });
      control.addEventListener("change", () => {
        if (control.getAttribute("aria-invalid")) this.fieldError(name, "");
      });
      this.inputs[name] = control;
      this.errors[name] = error;
      const text = mode === "required" ? label : `${label} ${this.t("(optional)")}`;
      return e("div", { class: "field" }, e("label", { for: control.id, text }), control, error);
    };
    const topic = e("select", {});
    topic.append(e("option", { value: "", text: this.t("Choose a topic") }));
    const topics = this.topicsOnOffer();
    for (const item of topics) topic.append(e("option", { value: item.key, text: item.label }));
    topic.value = topics.some((t) => t.key === old.topic) ? old.topic : "";
    const name = e("input", { type: "text", autocomplete: "name", maxlength: String(MAX_NAME) });
    name.value = old.name || "";
    const email = e("input", { type: "email", autocomplete: "email", spellcheck: "false", autocapitalize: "off",
      maxlength: "254" });
    email.value = old.email || "";
    this.formError = e("p", { class: "error", "aria-live": "polite" });
    this.form = e("form", { class: "prechat", testid: "prechat-form", novalidate: true, "aria-labelledby": "pre-title" },
      e("h2", { id: "pre-title", text: this.t("Before we start") }),
      e("p", { class: "small", text: this.t("Tell us a little about your question, so that the right person can answer.") }),
      field("topic", this.t("Topic"), topic),
      field("name", this.t("Name"), name),
      field("email", this.t("Email address"), email),
      e("p", { class: "small", text: this.t("What you give here is stored with the chat.") }),
      this.formError,
      e("div", { class: "actions" }, e("button", { type: "submit", class: "btn", testid: "prechat-submit",
        text: this.t("Start the chat") })));
    this.form.addEventListener("submit", (ev) => {
      ev.preventDefault();
      this.submit();
    });
  }

  fieldError(name, text) {
    const input = this.inputs[name];
    const error = this.errors[name];
    if (!input) return;
    error.textContent = text;
    error.hidden = !text;
    if (text) input.setAttribute("aria-invalid", "true");
    else input.removeAttribute("aria-invalid");
  }

  // The same rules as the server's (chat/prechat.py check_answers).
  check() {
    const c = this.config;
    const v = {
      topic: this.inputs.topic ? this.inputs.topic.value : "",
      name: this.inputs.name ? this.inputs.name.value.replace(/\s+/g, " ").trim() : "",
      email: this.inputs.email ? this.inputs.email.value.trim() : "",
    };
    const errors = {};
    if (c.topic === "required" && this.inputs.topic && !v.topic) errors.topic = this.t("Choose a topic.");
    if (c.name === "required" && !v.name) errors.name = this.t("Enter your name.");
    else if ([...v.name].length > MAX_NAME) errors.name = this.t("The name is too long (at most {limit} characters).", { limit: MAX_NAME });
    if (c.email === "required" && !v.email) errors.email = this.t("Enter your email address.");
    else if (v.email && !validEmail(v.email)) errors.email = this.t("Enter a valid email address, like name@example.fi.");
    return { v, errors };
  }

  submit() {
    const { v, errors } = this.check();
    let first = null;
    for (const name of ["topic", "name", "email"]) {
      this.fieldError(name, errors[name] || "");
      if (errors[name] && !first) first = this.inputs[name];
    }
    if (first) {
      this.formError.textContent = this.t("Check the highlighted fields.");
      first.focus();
      return;
    }
    this.formError.textContent = "";
    const answers = {};
    for (const name of ["topic", "name", "email"]) {
      if (this.config[name] !== "off" && v[name]) answers[name] = v[name];
    }
    this.last = v;
    this.answers = answers;
    this.render();
    this.done();
  }

  // The answers to send with a message that starts a conversation (or null).
  take() {
    return this.config && this.open ? this.answers : null;
  }

  // A chat has started: nothing more to ask until the next one.
  started() {
    this.open = false;
    this.render();
  }

  // A new chat, or the server refused the answers (its message shown in the form).
  reset(message) {
    this.answers = null;
    this.open = true;
    this.form = null;
    this.render();
    if (message && this.formError) {
      this.formError.textContent = message;
      this.focus();
    }
  }

  focus() {
    if (!this.shown || !this.form) return false;
    const first = this.form.querySelector("select, input");
    if (first) first.focus();
    return !!first;
  }
}
