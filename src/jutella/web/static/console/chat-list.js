// The live conversation list: waiting (oldest first: the queue), mine,
// other agents', and recently closed. Each item is a link
// (data-testid="conversation", data-state) to #/conversations/<id>, so it
// opens with Enter or a click, and in a new tab with the browser's usual
// gestures. Arrow keys, Home and End move between the items.
//
// Items are kept per conversation and updated in place, so a live update
// does not take the keyboard focus away.
//
// A conversation transferred to this agent (or their department) is
// highlighted (class is-transferred, data-transferred="true", and a line
// saying who passed it on) until the agent opens it (chat-store.js
// transferOf). While a search or filter shows its results, setQueueOnly(true)
// keeps the waiting queue in view above them and hides the other sections.

import { h, replace, srOnly } from "./dom.js";
import { N_, t } from "./i18n.js";
import { platform, stateLabel, timeElement } from "./chat-text.js";
import { departmentBadge, labelChips } from "./chat-labels.js";

const SECTIONS = [
  { id: "waiting", label: N_("Waiting"), empty: N_("No one is waiting.") },
  { id: "mine", label: N_("My conversations"), empty: N_("You have no active conversations.") },
  { id: "others", label: N_("Other agents’ conversations"), empty: N_("None.") },
  { id: "closed", label: N_("Closed recently"), empty: N_("None.") },
];
const CLOSED_SHOWN = 20;

function byTime(key, direction) {
  return (a, b) => direction * (Date.parse(a[key]) - Date.parse(b[key])) || direction * (a.id - b.id);
}

/** The conversations of each section, in display order. */
export function group(store) {
  const all = [...store.conversations.values()];
  const mine = store.myId;
  return {
    waiting: all.filter((c) => c.state === "waiting").sort(byTime("created_at", 1)),
    mine: all.filter((c) => c.state === "active" && c.agent_id === mine).sort(byTime("last_activity_at", -1)),
    others: all.filter((c) => c.state === "active" && c.agent_id !== mine).sort(byTime("last_activity_at", -1)),
    closed: all.filter((c) => c.state === "closed").sort(byTime("last_activity_at", -1)).slice(0, CLOSED_SHOWN),
  };
}

function transferLine(c, transfer) {
  const name = transfer.from_name || t("Another agent");
  return h("span", { class: "conv-transfer", testid: "transfer-mark",
    text: c.state === "waiting" ? t("Transferred to your department by {name}", { name })
      : t("Transferred to you by {name}", { name }) });
}

function itemContent(c, store) {
  const unread = store.unreadOf(c);
  const transfer = store.transferOf(c.id);
  const agent = c.state === "waiting" ? null
    : c.agent_id === store.myId ? t("You")
      : c.agent_name || (c.agent_id ? t("Another agent") : null);
  return [
    transfer ? transferLine(c, transfer) : null,
    h("span", { class: "conv-line" },
      h("span", { class: "conv-visitor", text: c.visitor_name || c.visitor || t("Visitor") }),
      timeElement(c.last_activity_at || c.created_at, "conv-time")),
    h("span", { class: "conv-platform", text: platform(c) || t("Browser not known") }),
    h("span", { class: ["conv-preview", c.preview ? "" : "muted"], text: c.preview || t("No messages yet") }),
    labelChips(c.labels),
    departmentBadge(c),
    h("span", { class: "conv-line" },
      h("span", { class: "conv-state" },
        h("span", { class: ["state-dot", `state-${c.state}`], "aria-hidden": "true" }),
        stateLabel(c.state),
        agent ? h("span", { class: "conv-agent", text: ` · ${agent}` }) : null),
      unread > 0 ? h("span", { class: "badge conv-unread", testid: "unread" },
        h("span", { "aria-hidden": "true", text: String(unread) }),
        srOnly(t("Unread messages: {count}", { count: unread }))) : null),
  ];
}

/** Everything itemContent() draws from: the summary (less the store's own
 * bookkeeping), the unread count, the transfer mark, who is "You", and the
 * day (a time shows as a date once it is no longer today). */
function shownKey(c, store) {
  return JSON.stringify([c, store.unreadOf(c), store.transferOf(c.id), store.myId, new Date().toDateString()],
    (key, value) => (key === "touched" ? undefined : value));
}

/**
 * The list. open(id) is called for a plain click or Enter on an item.
 * Returns {el, render(), setCurrent(id)}.
 */
export function conversationList(store, { open }) {
  const parts = new Map();
  const items = new Map(); // id -> <a>
  const drawn = new WeakMap(); // <a> -> shownKey() of what it shows
  let current = null;
  let queueOnly = false;

  const note = h("p", { class: "muted conv-note", role: "status" });
  const el = h("div", { class: "conv-sections" }, note);
  for (const section of SECTIONS) {
    const headingId = `conv-h-${section.id}`;
    const count = h("span", { class: "conv-count" });
    const list = h("ul", { class: "conv-list", "aria-labelledby": headingId });
    const empty = h("p", { class: "muted conv-empty", text: t(section.empty) });
    const box = h("section",
      { class: ["conv-section", `conv-section-${section.id}`], dataset: { section: section.id } },
      h("h2", { id: headingId, class: "conv-heading" }, h("span", { text: t(section.label) }), " ", count),
      list, empty);
    parts.set(section.id, { box, list, empty, count });
    el.append(box);
  }

  function itemFor(c) {
    let a = items.get(c.id);
    if (!a) {
      a = h("a", { class: "conv-item", href: `#/conversations/${c.id}`, testid: "conversation",
        dataset: { id: c.id } });
      items.set(c.id, a);
    }
    a.dataset.state = c.state;
    a.classList.toggle("is-unread", store.unreadOf(c) > 0);
    const transferred = Boolean(store.transferOf(c.id));
    a.classList.toggle("is-transferred", transferred);
    if (transferred) a.dataset.transferred = "true";
    else delete a.dataset.transferred;
    if (c.id === current) a.setAttribute("aria-current", "true");
    else a.removeAttribute("aria-current");
    // rebuilt only when what it shows changed: a list of hundreds redrawn on every open
    // made opening a conversation slow (each redraw dirties the whole list's layout)
    const key = shownKey(c, store);
    if (drawn.get(a) !== key) {
      replace(a, itemContent(c, store));
      drawn.set(a, key);
    }
    return a;
  }

  function render() {
    const focused = document.activeElement;
    const groups = group(store);
    const shown = new Set();
    for (const section of SECTIONS) {
      const { box, list, empty, count } = parts.get(section.id);
      box.hidden = queueOnly && section.id !== "waiting";
      box.classList.toggle("is-pinned", queueOnly && section.id === "waiting");
      const rows = groups[section.id];
      count.textContent = rows.length ? `(${rows.length})` : "";
      empty.hidden = rows.length > 0;
      rows.forEach((c, index) => {
        const a = itemFor(c);
        shown.add(c.id);
        const li = a.parentElement && a.parentElement.tagName === "LI" ? a.parentElement
          : h("li", { class: "conv" }, a);
        if (list.children[index] !== li) list.insertBefore(li, list.children[index] || null);
      });
      while (list.children.length > rows.length) list.lastElementChild.remove();
    }
    for (const [id, a] of items) {
      if (!shown.has(id)) {
        if (a.parentElement) a.parentElement.remove();
        items.delete(id);
      }
    }
    if (focused && focused !== document.activeElement && focused.isConnected) focused.focus();
    if (!store.loaded && !store.loadError) note.textContent = t("Loading conversations…");
    else if (store.loadError) note.textContent = store.loadError.message;
    else note.textContent = "";
    note.hidden = !note.textContent;
    note.classList.toggle("error-text", Boolean(store.loadError));
    el.setAttribute("aria-busy", String(!store.loaded && !store.loadError));
  }

  el.addEventListener("click", (event) => {
    const a = event.target.closest("a.conv-item");
    if (!a || event.button !== 0 || event.ctrlKey || event.metaKey || event.shiftKey || event.altKey) return;
    event.preventDefault();
    open(Number(a.dataset.id));
  });

  el.addEventListener("keydown", (event) => {
    const a = event.target.closest("a.conv-item");
    if (!a) return;
    const all = [...el.querySelectorAll("a.conv-item")];
    const at = all.indexOf(a);
    let next = null;
    if (event.key === "ArrowDown") next = all[at + 1];
    else if (event.key === "ArrowUp") next = all[at - 1];
    else if (event.key === "Home") next = all[0];
    else if (event.key === "End") next = all[all.length - 1];
    else return;
    event.preventDefault();
    if (next) next.focus();
  });

  return {
    el,
    render,
    setCurrent(id) {
      current = id;
      render();
    },
    /** Only the waiting queue (while search or filter results are shown), or every section. */
    setQueueOnly(on) {
      queueOnly = Boolean(on);
      render();
    },
    focusCurrent() {
      const a = current && items.get(current);
      if (a) a.focus();
    },
  };
}
