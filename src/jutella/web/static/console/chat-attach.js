// Attachments and the rating in a console conversation: how an attachment
// event looks (an image thumbnail or a PDF link, served from
// /attachments/{id} with the session cookie; each fetch is audited), the
// attach button beside the reply box, and the visitor's rating at close.

import { ApiFailure, consoleHeaders } from "./api.js";
import { ensureStylesheet, h } from "./dom.js";
import { t } from "./i18n.js";

const STYLESHEET = "/static/console/chat-attach.css";

ensureStylesheet(STYLESHEET);

/** The body of an attachment event. */
export function attachmentBody(event) {
  const info = (event.data && event.data.attachment) || {};
  const name = String(info.name || t("Attachment"));
  if (typeof info.id !== "string" || !/^[A-Za-z0-9_-]+$/.test(info.id)) {
    return h("span", { class: "attachment", testid: "attachment", text: name });
  }
  const url = `/attachments/${info.id}`;
  if (String(info.type).startsWith("image/")) {
    return h("a", { class: "attachment", testid: "attachment", href: url, target: "_blank", rel: "noopener",
      dataset: { type: info.type } }, h("img", { class: "attachment-thumb", src: url, alt: name }));
  }
  return h("a", { class: "attachment attachment-file", testid: "attachment", href: url, download: name,
    dataset: { type: String(info.type || "") }, text: name });
}

/** The attach button and its hidden file input, for conversation `id`. */
export function attachControls(id, { showError }) {
  const input = h("input", { type: "file", hidden: true, testid: "console-attach-input",
    accept: "image/png,image/jpeg,image/webp,application/pdf" });
  const button = h("button", { type: "button", class: "small", testid: "console-attach", text: t("Attach file") });
  button.addEventListener("click", () => input.click());
  input.addEventListener("change", async () => {
    const file = input.files && input.files[0];
    input.value = "";
    if (!file) return;
    showError("");
    button.disabled = true;
    try {
      await upload(id, file);
    } catch (failure) {
      showError(failure.message);
    } finally {
      button.disabled = false;
    }
  });
  return { button, input, setDisabled(disabled) { button.disabled = disabled; } };
}

async function upload(id, file) {
  const form = new FormData();
  form.append("file", file, file.name);
  let response;
  try {
    response = await fetch(`/api/v1/conversations/${id}/attachments`, {
      method: "POST", body: form, credentials: "same-origin", cache: "no-store",
      headers: { Accept: "application/json", ...consoleHeaders() },
    });
  } catch {
    throw new ApiFailure(0, "network", t("Could not reach the server. Check your connection and try again."));
  }
  if (response.ok) return;
  let error = null;
  try {
    error = (await response.json()).error;
  } catch {
    error = null;
  }
  throw new ApiFailure(response.status, error ? error.code : "error",
    error && typeof error.message === "string" ? error.message : t("The file could not be sent."));
}

/** The visitor's rating, or nothing (element updated in place). */
export function ratingElement() {
  const el = h("p", { class: "thread-rating", testid: "conversation-rating", hidden: true });
  return {
    el,
    show(rating) {
      if (!rating || !rating.rating) {
        el.hidden = true;
        return;
      }
      const n = Number(rating.rating);
      el.replaceChildren(
        h("span", { class: "rating-stars", "aria-hidden": "true", text: "★".repeat(n) + "☆".repeat(5 - n) }), " ",
        h("strong", { text: t("Visitor's rating: {n}/5", { n }) }),
        rating.rating_comment ? h("span", { class: "rating-comment", text: ` – ${rating.rating_comment}` }) : null);
      el.dataset.value = String(n);
      el.hidden = false;
    },
  };
}
