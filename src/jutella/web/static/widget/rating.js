// The rating at the end of a chat: 1-5 stars and an optional comment, sent
// once (POST /api/v1/public/rating with the visitor token in a header).

const HEADER = "X-Jutella-Visitor";

export class RatingView {
  constructor(doc, i18n, slot, { token, lang }) {
    this.doc = doc;
    this.i18n = i18n;
    this.token = token;
    this.lang = lang;
    this.conv = null;
    this.value = 0;
    this.done = new Set(); // conversations rated in this page
    const d = doc;
    const make = (tag, props = {}) => Object.assign(d.createElement(tag), props);
    const form = make("form", { className: "rating", noValidate: true });
    form.dataset.testid = "rating";
    form.hidden = true;
    const legend = make("p", { className: "rating-title", id: "rating-title", textContent: this.t("How did the chat go?") });
    const stars = make("div", { className: "stars", role: "radiogroup" });
    stars.setAttribute("aria-labelledby", "rating-title");
    this.stars = [];
    for (let n = 1; n <= 5; n += 1) {
      const b = make("button", { type: "button", className: "star", textContent: "★" });
      b.dataset.testid = "rating-star";
      b.dataset.value = String(n);
      b.setAttribute("role", "radio");
      b.setAttribute("aria-checked", "false");
      b.setAttribute("aria-label", this.t("{n} of 5", { n }));
      b.addEventListener("click", () => this.choose(n));
      this.stars.push(b);
      stars.append(b);
    }
    const label = make("label", { htmlFor: "rating-comment", className: "small", textContent: this.t("Comment (optional)") });
    const comment = make("textarea", { id: "rating-comment", rows: 2, maxLength: 2000 });
    comment.dataset.testid = "rating-comment";
    const error = make("p", { className: "error" });
    error.setAttribute("aria-live", "polite");
    const submit = make("button", { type: "submit", className: "btn", textContent: this.t("Send rating") });
    submit.dataset.testid = "rating-submit";
    form.append(legend, stars, label, comment, error, submit);
    const thanks = make("p", { className: "rating-thanks", textContent: this.t("Thank you for your feedback!") });
    thanks.dataset.testid = "rating-thanks";
    thanks.setAttribute("role", "status");
    thanks.hidden = true;
    form.addEventListener("submit", (e) => {
      e.preventDefault();
      this.send();
    });
    slot.append(form, thanks);
    this.el = { form, comment, error, submit, thanks };
  }

  t(id, params) {
    return this.i18n.t(id, params);
  }

  choose(n) {
    this.value = n;
    this.stars.forEach((b, i) => {
      b.classList.toggle("on", i < n);
      b.setAttribute("aria-checked", String(i + 1 === n));
    });
    this.el.error.textContent = "";
  }

  // Told of every change: shown under a closed conversation not yet rated.
  update({ conv, state }) {
    if (conv !== this.conv) {
      this.conv = conv;
      this.choose(0);
      this.el.comment.value = "";
    }
    const rated = this.done.has(conv);
    this.el.form.hidden = !(state === "closed" && conv !== null && !rated && this.token());
    this.el.thanks.hidden = !(state === "closed" && rated);
  }

  async send() {
    if (!this.value) {
      this.el.error.textContent = this.t("Choose a rating from 1 to 5.");
      return;
    }
    this.el.submit.disabled = true;
    try {
      const r = await fetch("/api/v1/public/rating", {
        method: "POST", credentials: "omit", cache: "no-store",
        headers: { [HEADER]: this.token() || "", "Content-Type": "application/json", Accept: "application/json",
          "Accept-Language": this.lang() },
        body: JSON.stringify({ conversation: this.conv, rating: this.value, comment: this.el.comment.value }),
      });
      let data = null;
      try {
        data = await r.json();
      } catch (e) {
        data = null;
      }
      if (r.ok || (data && data.error && data.error.code === "already_rated")) {
        this.done.add(this.conv);
        this.update({ conv: this.conv, state: "closed" });
      } else {
        const m = data && data.error && typeof data.error.message === "string" ? data.error.message : "";
        this.el.error.textContent = m.slice(0, 300) || this.t("Something went wrong. Please try again.");
      }
    } catch (e) {
      this.el.error.textContent = this.t("Something went wrong. Please try again.");
    } finally {
      this.el.submit.disabled = false;
    }
  }
}
