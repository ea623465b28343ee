// Places the chat work fills: #chat-root (conversations) and #offline-root
// (messages left through the widget's email form).

import { h } from "./dom.js";
import { t } from "./i18n.js";

export function renderConversations(container) {
  container.replaceChildren(
    h("h1", { id: "page-title", tabindex: "-1", text: t("Conversations") }),
    h("div", { id: "chat-root", class: "chat-root" },
      h("p", { class: "muted empty", text: t("No conversations yet.") })));
}

export function renderOffline(container) {
  container.replaceChildren(
    h("h1", { id: "page-title", tabindex: "-1", text: t("Offline messages") }),
    h("div", { id: "offline-root" },
      h("p", { class: "muted empty", text: t("No offline messages.") })));
}
