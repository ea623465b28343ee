// History search over every stored message (GET /api/v1/search). Each
// search writes an audit row, so it runs when the agent submits, not on every
// key press. A hit shows its conversation, time, author and the message with
// the matching parts in <mark> elements (built from text nodes; chat-text.js
// highlight). A click (or Enter) on a hit opens the conversation.

import { api, query as queryString } from "./api.js";
import { h, replace, uid } from "./dom.js";
import { t } from "./i18n.js";
import { highlight, stateLabel, timeElement } from "./chat-text.js";

const EXCERPT_BEFORE = 60;
const EXCERPT_LENGTH = 240;

/** A window of a long body around its first match, with ellipses. */
export function excerpt(body, query) {
  const text = String(body || "");
  if (text.length <= EXCERPT_LENGTH) return text;
  const words = String(query || "").toLocaleLowerCase().split(/\s+/u).filter(Boolean);
  const lower = text.toLocaleLowerCase();
  const hits = words.map((w) => lower.indexOf(w)).filter((i) => i >= 0);
  const first = hits.length ? Math.min(...hits) : 0;
  const start = Math.max(0, first - EXCERPT_BEFORE);
  const end = Math.min(text.length, start + EXCERPT_LENGTH);
  return `${start > 0 ? "…" : ""}${text.slice(start, end)}${end < text.length ? "…" : ""}`;
}

function authorLabel(author) {
  if (author === "visitor") return t("Visitor");
  if (author === "agent") return t("Agent");
  return t("System");
}

/**
 * The search form and its results. open(id) opens a conversation;
 * onActive(bool) tells the view whether results are shown; filters() gives
 * the filter bar's parameters (chat-filters.js), sent along with the query.
 */
export function searchPanel({ open, onActive, filters = () => ({}) }) {
  const input = h("input", { type: "search", id: uid("chat-search"), name: "q", maxlength: "200",
    autocomplete: "off", spellcheck: "false", testid: "chat-search", enterkeyhint: "search" });
  const submit = h("button", { type: "submit", class: "small", text: t("Search"), testid: "chat-search-submit" });
  const clear = h("button", { type: "button", class: "small quiet", text: t("Clear"), hidden: true });
  const form = h("form", { class: "chat-search", role: "search", novalidate: true },
    h("label", { for: input.id, class: "chat-search-label", text: t("Search all messages") }),
    h("div", { class: "chat-search-row" }, input, submit, clear));
  const status = h("p", { class: "muted chat-search-status", role: "status" });
  const list = h("ol", { class: "search-results", testid: "search-results" });
  const results = h("div", { class: "chat-search-results", hidden: true }, status, list);
  let serial = 0;

  function reset() {
    serial += 1;
    input.value = "";
    list.replaceChildren();
    status.textContent = "";
    results.hidden = true;
    clear.hidden = true;
    onActive(false);
  }

  function hit(row, q) {
    const link = h("a", { href: `#/conversations/${row.conversation}`, class: "search-hit", testid: "search-result",
      dataset: { conversation: row.conversation, seq: row.seq } },
    h("span", { class: "search-hit-line" },
      h("span", { class: "search-hit-conv", text: t("Conversation {id}", { id: row.conversation }) }),
      timeElement(row.at, "search-hit-time")),
    h("span", { class: "search-hit-meta muted", text: `${authorLabel(row.author)} · ${stateLabel(row.state)}` }),
    h("span", { class: "search-hit-body" }, highlight(excerpt(row.body, q), q)));
    link.addEventListener("click", (event) => {
      if (event.button !== 0 || event.ctrlKey || event.metaKey || event.shiftKey || event.altKey) return;
      event.preventDefault();
      open(row.conversation);
    });
    return h("li", {}, link);
  }

  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const q = input.value.trim();
    if (!q) {
      reset();
      return;
    }
    const mine = ++serial;
    results.hidden = false;
    clear.hidden = false;
    onActive(true);
    status.textContent = t("Searching…");
    list.replaceChildren();
    try {
      const rows = await api("GET", `/api/v1/search${queryString({ ...filters(), q, limit: 50 })}`);
      if (mine !== serial) return;
      status.textContent = rows.length
        ? t("Messages found: {count}", { count: rows.length })
        : t("No messages match “{query}”.", { query: q });
      replace(list, rows.map((row) => hit(row, q)));
    } catch (failure) {
      if (mine !== serial) return;
      status.textContent = failure.handled ? "" : failure.message;
    }
  });
  clear.addEventListener("click", () => {
    reset();
    input.focus();
  });
  input.addEventListener("keydown", (event) => {
    if (event.key === "Escape" && !results.hidden) {
      event.preventDefault();
      reset();
    }
  });

  return {
    form, results, reset, input,
    /** Search again (the filters changed) if results are shown. */
    rerun() {
      if (!results.hidden && input.value.trim()) form.requestSubmit();
    },
  };
}
