// After a chat: save its transcript (a printable page, downloaded as a file;
// fetched with the visitor token in a header, so no token is ever in a URL)
// or have it emailed (the address typed is stored in the register, and the
// form says so).

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
        this.el.status.textContent = this.t("The transcript is on its way to {address}.", { address });
      } else {
        this.el.status.textContent = await this.problem(r);
      }
    } catch (e) {
      this.el.status.textContent = this.t("Something went wrong. Please try again.");
    } finally {
      this.el.send.disabled = false;
    }
  }
}
