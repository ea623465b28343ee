// The visitor panel (data-testid="visitor-info"): what the conversation's
// automatic metadata says (browser and version, operating system and version,
// language, the page the visitor is on now and the one the chat was opened
// on, the referrer), the visitor's public id, and the same visitor's earlier
// conversations. The current page follows the visitor live: the socket's
// "page" frames (docs/protocol.md) reach setPage().
//
// All of it is visitor-supplied: text nodes only. The page and referrer become
// links only when they are http(s) URLs (chat-text.js urlOrText).

import { h, srOnly } from "./dom.js";
import { languageLabel, t } from "./i18n.js";
import { stateLabel, timeElement, urlOrText, withVersion } from "./chat-text.js";

function fact(label, value, testid) {
  const empty = value === null || value === undefined || value === "";
  return [
    h("dt", { text: label }),
    h("dd", { testid, class: empty ? "muted" : "break" }, empty ? t("Not known") : value),
  ];
}

/**
 * Fill `pane` with the panel for a conversation.
 * detail: {conversation, visitor_info}; open(id) opens another conversation.
 * Returns {setPage(url)}: the visitor moved to another page.
 */
export function renderVisitorInfo(pane, detail, { open }) {
  const info = detail.visitor_info || {};
  const conv = detail.conversation || {};
  const browser = withVersion(info.browser, info.browser_version);
  const os = withVersion(info.os, info.os_version);

  const earlier = (info.earlier || []).slice().sort((a, b) => Date.parse(b.created_at) - Date.parse(a.created_at));
  const earlierList = earlier.length
    ? h("ul", { class: "earlier-list" }, earlier.map((c) => {
      const link = h("a", { href: `#/conversations/${c.id}`, class: "earlier-item", testid: "earlier-conversation",
        dataset: { id: c.id, state: c.state } },
      h("span", { class: "earlier-line" },
        timeElement(c.created_at),
        h("span", { class: "muted", text: ` · ${stateLabel(c.state)}` }),
        srOnly(` · ${t("Conversation {id}", { id: c.id })}`)),
      c.preview ? h("span", { class: "earlier-preview", text: c.preview }) : null);
      link.addEventListener("click", (event) => {
        if (event.button !== 0 || event.ctrlKey || event.metaKey || event.shiftKey || event.altKey) return;
        event.preventDefault();
        open(c.id);
      });
      return h("li", {}, link);
    }))
    : h("p", { class: "muted", text: t("No earlier conversations.") });

  const [currentLabel, currentValue] = fact(t("Current page"), null, "visitor-current-page");
  const current = [currentLabel, currentValue];
  const setPage = (url) => {
    currentValue.className = url ? "break" : "muted";
    currentValue.replaceChildren(url ? urlOrText(url) : t("Not known"));
  };
  setPage(info.current_page || info.page_url || null);

  pane.replaceChildren(
    h("div", { class: "visitor-info", testid: "visitor-info" },
      h("h2", { class: "pane-heading", text: t("Visitor") }),
      h("dl", { class: "facts visitor-facts" },
        fact(t("Visitor id"), info.visitor, "visitor-id"),
        // given on the site's pre-chat form (docs/prechat.md), only when it asked
        ...(info.prechat ? [fact(t("Name"), info.name, "visitor-name"), fact(t("Email"), info.email, "visitor-email"),
          fact(t("Topic"), info.topic, "visitor-topic")] : []),
        fact(t("Browser"), browser, "visitor-browser"),
        fact(t("Operating system"), os, "visitor-os"),
        fact(t("Language"), info.language ? languageLabel(info.language) : null, "visitor-language"),
        current,
        fact(t("Chat opened on"), info.page_url ? urlOrText(info.page_url) : null, "visitor-page"),
        fact(t("Referrer"), info.referrer ? urlOrText(info.referrer) : null, "visitor-referrer"),
        fact(t("Started"), conv.created_at ? timeElement(conv.created_at) : null, "visitor-started")),
      h("h3", { class: "pane-subheading", text: t("Earlier conversations") }),
      earlierList));
  return { setPage };
}
