// The offline-message inbox (#/offline, #/offline/<id>): the messages people
// left through the widget's email form when nobody was on duty, and answering
// them by email. docs/mail.md, "The console inbox".
//
//   view-offline.js          the view: the list (data-testid="offline-messages",
//                            one "offline-item" each, data-state new|answered|closed)
//   view-offline-message.js  one message: metadata, replies and their delivery,
//                            the reply composer, assignment, close / reopen
//   view-offline-live.js     the socket's offline / outbox frames
//
// The list is GET /api/v1/offline-messages (new ones first, then newest
// first). A live "offline" frame makes the view read it again (at most about
// three times a second) rather than trust the frame's copy: what an agent may
// see is the server's decision. After a reconnect it is read again too.

import { api } from "./api.js";
import { ensureStylesheet, h, replace, srOnly } from "./dom.js";
import { N_, t } from "./i18n.js";
import { routeHref } from "./router.js";
import { chatStore } from "./chat-store.js";
import { timeElement } from "./chat-text.js";
import { fillSites, siteSelect } from "./chat-filters.js";
import { onOfflineNews } from "./view-offline-live.js";
import { openMessage, stateLabel } from "./view-offline-message.js";
import { offlineIsUnread, offlineOpened, onOfflineUnread } from "./nav-badges.js";

const STYLESHEET = "/static/console/offline.css";
const FILTERS = [
  ["", N_("All")],
  ["open", N_("Open")],
  ["new", N_("New")],
  ["answered", N_("Answered")],
  ["closed", N_("Closed")],
];
const REFRESH_GAP_MS = 300;

export function renderOfflineInbox(container, ctx) {
  ensureStylesheet(STYLESHEET);
  if (!chatStore.running && ctx.me && ctx.me.account.roles.includes("agent")) chatStore.start(ctx.me);
  container.classList.add("offline-view");

  let items = [];
  let loaded = false;
  let filter = "";
  let current = null; // the open message (openMessage's handle)
  let refreshTimer = null;
  let fetching = false;
  let again = false;
  let gone = false;

  const newCount = h("span", { class: "badge offline-new-count", testid: "offline-new-count", hidden: true });
  const filterSelect = h("select", { id: "offline-filter", class: "compact" },
    FILTERS.map(([value, label]) => h("option", { value, text: t(label) })));
  filterSelect.addEventListener("change", () => {
    filter = filterSelect.value;
    refresh();
  });
  // the site filter: shown only when there is more than one site (chat-filters.js)
  const siteFilter = siteSelect("offline-site");
  siteFilter.id = "offline-site";
  siteFilter.classList.add("compact");
  siteFilter.addEventListener("change", () => refresh());
  const siteRow = h("div", { class: "offline-filter", hidden: true },
    h("label", { for: siteFilter.id, text: t("Site") }), siteFilter);
  fillSites(siteFilter).then((shown) => {
    siteRow.hidden = !shown;
  });
  const status = h("p", { class: "offline-list-status muted", role: "status" });
  const list = h("ul", { class: "offline-list", testid: "offline-messages", "aria-label": t("Offline messages") });
  const listPane = h("section", { class: "offline-pane offline-list-pane", "aria-label": t("Message list") },
    h("div", { class: "offline-filter" }, h("label", { for: filterSelect.id, text: t("Show") }), filterSelect),
    siteRow, status, list);
  const messagePane = h("section", { class: "offline-pane offline-message-pane" });
  const layout = h("div", { class: "offline-layout" }, listPane, messagePane);
  replace(container,
    h("div", { class: "offline-toolbar" },
      h("h1", { id: "page-title", tabindex: "-1", text: t("Offline messages") }), newCount),
    layout);

  // -- the list ----------------------------------------------------------------------------
  function scheduleRefresh(delay = REFRESH_GAP_MS) {
    if (gone) return;
    if (fetching) {
      again = true;
      return;
    }
    if (!refreshTimer) refreshTimer = setTimeout(() => { refreshTimer = null; refresh(); }, delay);
  }

  async function refresh() {
    if (gone) return;
    if (fetching) {
      again = true;
      return;
    }
    fetching = true;
    try {
      const wanted = new URLSearchParams();
      if (filter) wanted.set("state", filter);
      if (siteFilter.value) wanted.set("site", siteFilter.value);
      const query = wanted.toString() ? `?${wanted}` : "";
      const fresh = await api("GET", `/api/v1/offline-messages${query}`);
      if (gone) return;
      items = fresh;
      loaded = true;
      status.textContent = "";
      drawList();
    } catch (failure) {
      if (gone || failure.handled) return;
      status.textContent = failure.message;
    } finally {
      fetching = false;
      if (again && !gone) {
        again = false;
        scheduleRefresh();
      }
    }
  }

  function itemContent(m) {
    const me = ctx.me.account.id;
    const assignee = m.assigned_agent_id === null ? null
      : m.assigned_agent_id === me ? t("You") : m.assigned_agent_name || t("Another agent");
    return [
      h("span", { class: "offline-line" },
        h("span", { class: "offline-name", text: m.name }),
        offlineIsUnread(m) ? h("span", { testid: "offline-unread" }, srOnly(t("not opened yet"))) : null,
        timeElement(m.created_at, "offline-time")),
      h("span", { class: "offline-from", text: m.email }),
      h("span", { class: "offline-preview", text: m.preview }),
      h("span", { class: "offline-line offline-tags" },
        h("span", { class: ["badge", `state-${m.state}`], text: stateLabel(m.state) }),
        assignee ? h("span", { class: "offline-assigned" }, srOnly(`${t("Assigned to")} `),
          h("span", { "aria-hidden": "true", text: "→ " }), assignee) : null,
        m.objection ? h("span", { class: "badge objection", text: t("No marketing") }) : null),
    ];
  }

  function drawList() {
    const focusedId = document.activeElement && list.contains(document.activeElement)
      ? document.activeElement.dataset.id : null;
    const news = items.filter((m) => m.state === "new").length;
    newCount.textContent = t("{count} new", { count: news });
    newCount.hidden = news === 0;
    if (!items.length) {
      replace(list, h("li", { class: "offline-empty muted", text: loaded ? t("No offline messages.") : t("Loading…") }));
      return;
    }
    replace(list, items.map((m) => {
      const link = h("a", {
        href: routeHref("offline", String(m.id)),
        class: ["offline-item", m.state === "new" ? "is-new" : "", offlineIsUnread(m) ? "is-unread" : ""],
        testid: "offline-item", dataset: { id: m.id, state: m.state },
        "aria-current": current && current.id === m.id ? "true" : null,
      }, itemContent(m));
      link.addEventListener("click", (event) => {
        if (event.button !== 0 || event.ctrlKey || event.metaKey || event.shiftKey || event.altKey) return;
        event.preventDefault();
        openById(m.id);
      });
      link.addEventListener("keydown", (event) => moveFocus(event, link));
      return h("li", {}, link);
    }));
    if (focusedId) {
      const same = list.querySelector(`[data-id="${focusedId}"]`);
      if (same) same.focus();
    }
  }

  // What is unread changed (this agent opened a message, here or in another tab; the badge's
  // read): only the items whose mark changed are drawn again. Redrawing the whole list on
  // every open made opening a message slow in a long inbox.
  function drawUnread() {
    const byId = new Map(items.map((m) => [m.id, m]));
    for (const link of list.querySelectorAll("a.offline-item")) {
      const m = byId.get(Number(link.dataset.id));
      if (!m) continue;
      const unread = offlineIsUnread(m);
      if (link.classList.contains("is-unread") === unread) continue;
      link.classList.toggle("is-unread", unread);
      replace(link, itemContent(m));
    }
  }

  // Arrow keys, Home and End move between the items.
  function moveFocus(event, link) {
    const links = [...list.querySelectorAll("a.offline-item")];
    const at = links.indexOf(link);
    let to = null;
    if (event.key === "ArrowDown") to = links[at + 1];
    else if (event.key === "ArrowUp") to = links[at - 1];
    else if (event.key === "Home") to = links[0];
    else if (event.key === "End") to = links[links.length - 1];
    else return;
    event.preventDefault();
    if (to) to.focus();
  }

  // -- one message ------------------------------------------------------------------------
  function show(id, { focus = false } = {}) {
    if (current) current.destroy();
    current = null;
    if (id) {
      offlineOpened(id); // no longer unread for this agent (the navigation's badge)
      current = openMessage(messagePane, id, {
        me: () => ctx.me,
        announce: ctx.announce,
        back: closeMessage,
        changed: () => scheduleRefresh(0),
        focus,
      });
      layout.classList.add("has-message");
    } else {
      messagePane.removeAttribute("aria-labelledby");
      replace(messagePane, h("div", { class: "offline-none" },
        h("p", { class: "muted", text: t("Choose a message from the list.") })));
      layout.classList.remove("has-message");
    }
    for (const link of list.querySelectorAll("a.offline-item")) {
      if (current && Number(link.dataset.id) === current.id) link.setAttribute("aria-current", "true");
      else link.removeAttribute("aria-current");
    }
  }

  function openById(id) {
    if (current && current.id === id) {
      current.focus();
      return;
    }
    // the address follows without the console re-rendering the view
    history.pushState(null, "", routeHref("offline", String(id)));
    show(id, { focus: true });
  }

  function closeMessage() {
    const id = current ? current.id : null;
    history.pushState(null, "", routeHref("offline"));
    show(null);
    const link = id ? list.querySelector(`a.offline-item[data-id="${id}"]`) : null;
    if (link) link.focus();
  }

  // -- live --------------------------------------------------------------------------------
  const stop = onOfflineNews((frame) => {
    if (frame.type === "offline" || frame.type === "reconnected") scheduleRefresh();
    if (frame.type === "offline" && frame.new) ctx.announce(t("A new offline message has arrived."));
    if (current) current.apply(frame);
  });

  const stopUnread = onOfflineUnread(drawUnread);
  drawList();
  refresh();
  const id = Number.parseInt(ctx.params || "", 10);
  show(Number.isSafeInteger(id) && id > 0 ? id : null);

  return () => {
    gone = true;
    stop();
    stopUnread();
    clearTimeout(refreshTimer);
    if (current) current.destroy();
    current = null;
  };
}
