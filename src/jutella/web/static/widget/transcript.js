// After a chat: save its transcript (a printable page, downloaded as a file;
// fetched with the visitor token in a header, so no token is ever in a URL)
// or have it emailed (the address typed is stored in the register, and the
// form says so).
//
// An emailed transcript is followed honestly (docs/mail.md, "Delivery states
// where they were asked for"): "on its way" only while the mail is queued or
// being sent; then "sent", or "could not be sent" when the mail server refused
// it or it was given up. The state is polled (GET
// /api/v1/public/transcript/email/{id}, the visitor token in a header): every
// 2 s, then slower, for at most 15 minutes.

const POLL_FIRST_MS = 1000;
const POLL_MAX_MS = 15000;
const POLL_FOR_MS = 15 * 60 * 1000;

const HEADER = "X-Jutella-Visitor";

export class TranscriptView {
  constructor(doc, i18n, slot, { token, lang }) {
    this.doc = doc;
    this.i18n = i18n;
    this.token = token;
    this.lang = lang;
    this.conv = null;
    const d = doc;
    const make = (tag, props = {}, testid = null) => {
      const el = Object.assign(d.createElement(tag), props);
      if (testid) el.dataset.testid = testid;
      return el;
    };
    const box = make("div", { className: "transcript" });
    box.hidden = true;
    const save = make("button", { type: "button", className: "btn btn-quiet", textContent: this.t("Save transcript") },
      "transcript-save");
    const email = make("button", { type: "button", className: "btn btn-quiet", textContent: this.t("Email transcript") },
      "transcript-email");
    const actions = make("div", { className: "actions" });
    actions.append(save, email);
    const form = make("form", { className: "transcript-form", noValidate: true });
    form.hidden = true;
    const label = make("label", { htmlFor: "transcript-address", className: "small", textContent: this.t("Your email address") });
    const input = make("input", { type: "email", id: "transcript-address", autocomplete: "email", maxLength: 254 },
      "transcript-email-input");
    const notice = make("p", { className: "small transcript-notice",
      textContent: this.t("The address you give is stored in our customer register with this chat, as the privacy notice says.") },
      "transcript-email-notice");
    const send = make("button", { type: "submit", className: "btn", textContent: this.t("Send") }, "transcript-email-send");
    const status = make("p", { className: "small transcript-status" }, "transcript-status");
    status.setAttribute("role", "status");
    form.append(label, input, notice, send);
    box.append(actions, form, status);
    slot.append(box);
    save.addEventListener("click", () => this.save());
    email.addEventListener("click", () => {
      form.hidden = false;
      input.focus();
    });
    form.addEventListener("submit", (e) => {
      e.preventDefault();
      this.email();
    });
    this.el = { box, form, input, status, send };
  }

  t(id, params) {
    return this.i18n.t(id, params);
  }

  update({ conv, state }) {
    if (conv !== this.conv) {
      this.conv = conv;
      this.el.form.hidden = true;
      this.el.status.textContent = "";
      this.stopFollowing();
    }
    this.el.box.hidden = !(state === "closed" && conv !== null && this.token());
  }

  headers(extra = {}) {
    return { [HEADER]: this.token() || "", "Accept-Language": this.lang(), ...extra };
  }

  async problem(r) {
    try {
      const data = await r.json();
      if (data && data.error && typeof data.error.message === "string") return data.error.message.slice(0, 300);
    } catch (e) {
      // fall through
    }
    return this.t("Something went wrong. Please try again.");
  }

  async save() {
    this.el.status.textContent = "";
    try {
      const q = new URLSearchParams({ conversation: String(this.conv), lang: this.lang() });
      const r = await fetch(`/api/v1/public/transcript?${q}`, { headers: this.headers(), credentials: "omit", cache: "no-store" });
      if (!r.ok) {
        this.el.status.textContent = await this.problem(r);
        return;
      }
      const blob = new Blob([await r.text()], { type: "text/html" });
      const a = this.doc.createElement("a");
      a.href = URL.createObjectURL(blob);
      a.download = `chat-${this.conv}.html`;
      this.doc.body.append(a);
      a.click();
      a.remove();
      setTimeout(() => URL.revokeObjectURL(a.href), 60_000);
      this.el.status.textContent = this.t("The transcript was saved as a file you can open and print.");
    } catch (e) {
      this.el.status.textContent = this.t("Something went wrong. Please try again.");
    }
  }

  async email() {
    const address = this.el.input.value.trim();
    this.el.status.textContent = "";
    if (!address) {
      this.el.status.textContent = this.t("Enter your email address.");
      return;
    }
    this.el.send.disabled = true;
    try {
      const r = await fetch("/api/v1/public/transcript/email", {
        method: "POST", credentials: "omit", cache: "no-store",
        headers: this.headers({ "Content-Type": "application/json", Accept: "application/json" }),
        body: JSON.stringify({ email: address, conversation: this.conv, lang: this.lang() }),
      });
      if (r.ok) {
        this.el.form.hidden = true;
        this.el.input.value = "";
        let body = {};
        try {
          body = await r.json();
        } catch (e) {
          // an older server: no id to follow
        }
        this.showDelivery(body.delivery || "queued", address);
        if (body.id) this.follow(body.id, address);
      } else {
        this.el.status.textContent = await this.problem(r);
      }
    } catch (e) {
      this.el.status.textContent = this.t("Something went wrong. Please try again.");
    } finally {
      this.el.send.disabled = false;
    }
  }

  /** What the visitor reads about their transcript mail, in its true state. */
  showDelivery(state, address) {
    const status = this.el.status;
    status.dataset.delivery = state;
    status.classList.toggle("transcript-failed", ["refused", "failed", "not_sent"].includes(state));
    if (state === "queued" || state === "sending") {
      status.textContent = this.t("The transcript is on its way to {address}.", { address });
    } else if (state === "sent") {
      status.textContent = this.t("The transcript was sent to {address}.", { address });
    } else if (state === "uncertain") {
      status.textContent = this.t("We could not confirm that the transcript reached {address}. If it does not arrive, save it as a file instead.", { address });
    } else {
      status.textContent = this.t("The transcript could not be sent to {address}. Check the address and try again, or save it as a file instead.", { address });
    }
  }

  follow(id, address) {
    this.stopFollowing();
    const until = Date.now() + POLL_FOR_MS;
    let wait = POLL_FIRST_MS;
    const conv = this.conv;
    const tick = async () => {
      this.timer = null;
      if (conv !== this.conv) return;
      try {
        const r = await fetch(`/api/v1/public/transcript/email/${encodeURIComponent(id)}`, {
          headers: this.headers({ Accept: "application/json" }), credentials: "omit", cache: "no-store" });
        if (r.ok) {
          const { delivery } = await r.json();
          if (conv !== this.conv) return;
          this.showDelivery(delivery, address);
          if (delivery !== "queued" && delivery !== "sending") return;
        }
      } catch (e) {
        // offline for a moment: ask again later
      }
      if (Date.now() + wait > until) return;
      this.timer = setTimeout(tick, wait);
      wait = Math.min(POLL_MAX_MS, wait * 2);
    };
    this.timer = setTimeout(tick, wait);
  }

  stopFollowing() {
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
  }
}
