// Attachments in the widget: the attach button beside the composer, the
// upload (the visitor token goes in a header, never in a URL), and how an
// attachment event looks in the log. The file itself is fetched with the
// token header too and shown from a blob: URL, since an <img src> could not
// send the header. A refusal shows the server's own words (attach-error).

const HEADER = "X-Jutella-Visitor";

export class AttachView {
  constructor(doc, i18n, { token, lang }) {
    this.doc = doc;
    this.i18n = i18n;
    this.token = token; // () => the visitor's token or null
    this.lang = lang; // () => the page's language
    this.urls = new Map(); // attachment id -> blob: URL (revoked on clear)
    // the button, the file input and the error line are in the frame's markup
    this.el = { button: doc.getElementById("attach"), error: doc.getElementById("attach-error") };
  }

  t(id, params) {
    return this.i18n.t(id, params);
  }

  showError(text) {
    this.el.error.textContent = text;
    this.el.error.hidden = !text;
  }

  async upload(file) {
    this.showError("");
    const token = this.token();
    if (!token) {
      this.showError(this.t("Write a message first: files can be sent in an open chat."));
      return;
    }
    const form = new FormData();
    form.append("file", file, file.name);
    this.el.button.disabled = true;
    this.el.button.textContent = this.t("Sending…");
    try {
      const r = await fetch("/api/v1/public/attachments", {
        method: "POST", body: form, credentials: "omit", cache: "no-store",
        headers: { [HEADER]: token, Accept: "application/json", "Accept-Language": this.lang() },
      });
      if (!r.ok) {
        let message = "";
        try {
          const data = await r.json();
          message = data && data.error && typeof data.error.message === "string" ? data.error.message : "";
        } catch (e) {
          message = "";
        }
        this.showError(message.slice(0, 300) || this.t("The file could not be sent."));
      }
      // success: the attachment arrives in the log as an event, in order
    } catch (e) {
      this.showError(this.t("The file could not be sent."));
    } finally {
      this.el.button.disabled = false;
      this.el.button.textContent = this.t("Attach");
    }
  }

  async blobUrl(info) {
    if (this.urls.has(info.id)) return this.urls.get(info.id);
    const token = this.token();
    const r = await fetch(`/attachments/${encodeURIComponent(info.id)}`, {
      headers: { [HEADER]: token || "" }, credentials: "omit", cache: "no-store",
    });
    if (!r.ok) throw new Error(String(r.status));
    const url = URL.createObjectURL(await r.blob());
    this.urls.set(info.id, url);
    return url;
  }

  // Fill an attachment event's box (made at once by extras.js) with a picture or a link.
  fill(box, f) {
    const d = this.doc;
    const info = (f.data && f.data.attachment) || {};
    box.dataset.type = String(info.type || "");
    const name = String(info.name || this.t("Attachment"));
    if (typeof info.id !== "string") {
      box.textContent = name;
      return;
    }
    if (String(info.type).startsWith("image/")) {
      const img = d.createElement("img");
      img.alt = name;
      img.className = "attachment-thumb";
      box.replaceChildren(img);
      this.blobUrl(info).then((url) => { img.src = url; }).catch(() => { box.textContent = name; });
    } else {
      const link = d.createElement("a");
      link.href = "#";
      link.className = "attachment-file";
      link.textContent = name;
      link.addEventListener("click", async (e) => {
        e.preventDefault();
        try {
          const a = d.createElement("a");
          a.href = await this.blobUrl(info);
          a.download = name;
          d.body.append(a);
          a.click();
          a.remove();
        } catch (err) {
          this.showError(this.t("The file could not be opened."));
        }
      });
      box.replaceChildren(link);
    }
  }

  clear() {
    for (const url of this.urls.values()) URL.revokeObjectURL(url);
    this.urls.clear();
    this.showError("");
  }
}
