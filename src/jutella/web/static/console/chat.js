// The agents' live chat view (#/conversations, #/conversations/<id>): the
// conversation list with history search, the open conversation and the
// visitor panel. Modules:
//   chat-socket.js   the protocol client (one per tab)
//   chat-store.js    the tab's chat state: socket, list, unread count in the title
//   chat-list.js     the live list
//   chat-thread.js   one conversation: messages, accept/close, reply, typing, seen
//   chat-visitor.js  the visitor panel
//   chat-search.js   history search
//   chat-notify.js   the chime and browser notifications for waiting visitors
//   chat-text.js     text-only rendering, the linkifier and the highlighter
//   chat-filters.js  the filter bar (label, state, agent, dates) for the list and the search
//   chat-keys.js     keyboard shortcuts and their help (?)
//   chat-canned.js, chat-notes.js, chat-labels.js  canned responses, internal notes, labels
//
// The socket lives as long as an agent is signed in, not only while this view
// is shown: presence, the unread count in the title and the alerts for
// waiting visitors work from every page of the console.

import { checkbox, h, replace } from "./dom.js";
import { t } from "./i18n.js";
import { routeHref } from "./router.js";
import { chatStore } from "./chat-store.js";
import { conversationList, group } from "./chat-list.js";
import { filterBar } from "./chat-filters.js";
import { installShortcuts } from "./chat-keys.js";
import { openThread } from "./chat-thread.js";
import { searchPanel } from "./chat-search.js";
import { enableNotifications, notificationState, onChange, preferences, setPreference } from "./chat-notify.js";

const STYLESHEETS = ["/static/console/chat.css", "/static/console/agent-tools.css", "/static/console/aware.css"];

// -- the session's socket ------------------------------------------------------------
function isAgent(me) {
  return Boolean(me && me.account && me.account.roles.includes("agent"));
}

document.addEventListener("jutella:signed-in", (event) => {
  if (isAgent(event.detail)) chatStore.start(event.detail);
  else chatStore.stop();
});
document.addEventListener("jutella:signed-out", () => chatStore.stop());

function ensureStylesheet() {
  for (const href of STYLESHEETS) {
    if (document.querySelector(`link[href="${href}"]`)) continue;
    const link = document.createElement("link");
    link.rel = "stylesheet";
    link.href = href;
    document.head.append(link);
  }
}
ensureStylesheet();

// -- the view --------------------------------------------------------------------------
export function renderChat(container, ctx) {
  ensureStylesheet();
  if (!chatStore.running && isAgent(ctx.me)) chatStore.start(ctx.me);
  container.classList.add("chat-view");

  // toolbar: title, connection state, notifications, the alert choices (the one sound switch is among them)
  const connection = h("p", { class: "chat-connection", role: "status", testid: "chat-connection", hidden: true });
  const notify = h("button", { type: "button", class: "small", testid: "enable-notifications",
    text: t("Enable notifications") });
  const notifyNote = h("span", { class: "muted chat-notify-note" });
  // the agent's own choices (chat-notify.js): kept in this browser, per account
  const prefSound = checkbox(t("Sound"), { testid: "pref-sound" },
    { hint: t("A chime when a visitor starts waiting or a conversation is transferred to you") });
  const prefBrowser = checkbox(t("Browser notifications while this tab is hidden"), { testid: "pref-browser" });
  const prefTitle = checkbox(t("Unread count in the tab title"), { testid: "pref-title" });
  const prefs = h("details", { class: "chat-prefs", testid: "notify-prefs" },
    h("summary", { text: t("Alerts") }),
    h("div", { class: "chat-prefs-body" }, prefSound.row, prefBrowser.row, prefTitle.row));
  const helpButton = h("button", { type: "button", class: "small quiet", testid: "shortcut-help-open",
    text: t("Shortcuts"), "aria-keyshortcuts": "?" });
  const toolbar = h("div", { class: "chat-toolbar" },
    h("h1", { id: "page-title", tabindex: "-1", text: t("Conversations") }),
    h("div", { class: "chat-tools" }, connection, notify, notifyNote, prefs, helpButton));

  function drawTools() {
    const state = notificationState();
    notify.hidden = state !== "default";
    notifyNote.textContent = state === "denied" ? t("Notifications are blocked in this browser’s settings.") : "";
    notifyNote.hidden = !notifyNote.textContent;
    const p = preferences();
    prefSound.input.checked = p.sound;
    prefBrowser.input.checked = p.browser && state === "granted";
    prefBrowser.input.disabled = state === "denied" || state === "unsupported";
    prefTitle.input.checked = p.title;
  }
  prefSound.input.addEventListener("change", () => setPreference("sound", prefSound.input.checked));
  prefTitle.input.addEventListener("change", () => setPreference("title", prefTitle.input.checked));
  prefBrowser.input.addEventListener("change", async () => {
    setPreference("browser", prefBrowser.input.checked);
    if (prefBrowser.input.checked) await enableNotifications(); // asked only on this click
    drawTools();
  });
  notify.addEventListener("click", async () => {
    await enableNotifications();
    drawTools();
  });
  const offTools = onChange(drawTools);
  drawTools();

  // panes
  const list = conversationList(chatStore, { open: openConversation });
  let searching = false;
  let filtering = false;
  const filters = filterBar({
    open: openConversation,
    onActive: (on) => {
      filtering = on;
      drawPanes();
    },
    onChange: () => search.rerun(),
  });
  const search = searchPanel({
    open: openConversation,
    onActive: (on) => {
      searching = on;
      drawPanes();
    },
    filters: () => filters.params(),
  });
  // Results never replace the live queue: while they are shown, the waiting
  // conversations stay pinned above them and the other sections step aside.
  function drawPanes() {
    list.setQueueOnly(searching || filtering);
    filters.results.hidden = searching || !filtering;
  }
  const listPane = h("section", { class: "chat-pane chat-list-pane", "aria-label": t("Conversation list") },
    filters.el, search.form, list.el, search.results, filters.results);
  const threadPane = h("section", { class: "chat-pane chat-thread-pane", "aria-label": t("Conversation") });
  const infoPane = h("aside", { class: "chat-pane chat-info-pane", "aria-label": t("About the visitor") });
  const layout = h("div", { class: "chat-layout" }, listPane, threadPane, infoPane);
  replace(container, toolbar, layout);

  let thread = null;

  function showThread(id, { focus = false } = {}) {
    if (thread) thread.destroy();
    thread = null;
    infoPane.replaceChildren();
    if (id) {
      thread = openThread(threadPane, infoPane, id, {
        store: chatStore, open: openConversation, back: closeThread, announce: ctx.announce, focus,
      });
      layout.classList.add("has-thread");
    } else {
      threadPane.removeAttribute("aria-labelledby");
      replace(threadPane, h("div", { class: "thread-empty" },
        h("p", { class: "muted", text: t("Choose a conversation from the list.") })));
      layout.classList.remove("has-thread");
    }
    list.setCurrent(id);
  }

  function openConversation(id) {
    if (thread && thread.id === id) {
      thread.focus();
      return;
    }
    // the address follows without the console re-rendering the view
    history.pushState(null, "", routeHref("conversations", String(id)));
    showThread(id, { focus: true });
  }

  function closeThread() {
    history.pushState(null, "", routeHref("conversations"));
    showThread(null);
    list.focusCurrent();
  }

  // live updates
  const onChangeList = () => list.render();
  const onWaiting = (event) => {
    if (event.detail.live) ctx.announce(t("A visitor is waiting."));
  };
  const onTransfer = (event) => {
    const c = event.detail.conversation;
    ctx.announce(c.state === "waiting" ? t("A conversation was transferred to your department")
      : t("A conversation was transferred to you"));
  };
  let connectTimer = null;
  const onStatus = (event) => {
    const { state } = event.detail;
    layout.dataset.connection = state; // open | connecting | waiting | stopped
    clearTimeout(connectTimer);
    let text = "";
    if (state === "waiting") text = t("Connection lost. Reconnecting…");
    else if (state === "stopped") text = t("Not connected.");
    if (state === "connecting") {
      // say so only when it takes a while
      connectTimer = setTimeout(() => { connection.textContent = t("Connecting…"); connection.hidden = false; }, 1500);
    }
    connection.textContent = text;
    connection.hidden = !text;
  };
  chatStore.addEventListener("change", onChangeList);
  chatStore.addEventListener("waiting", onWaiting);
  chatStore.addEventListener("transfer", onTransfer);
  const socket = chatStore.socket;
  if (socket) {
    socket.addEventListener("status", onStatus);
    if (socket.state) onStatus({ detail: { state: socket.state } });
  } else {
    onStatus({ detail: { state: "stopped" } });
  }

  const keys = installShortcuts(container, {
    nextWaiting() {
      const next = group(chatStore).waiting[0];
      if (next) openConversation(next.id);
      else if (ctx.announce) ctx.announce(t("No one is waiting."));
    },
    focusSearch() {
      search.input.focus();
      search.input.select();
    },
    current: () => (thread ? thread.id : null),
  });
  helpButton.addEventListener("click", () => keys.help());

  list.render();
  const id = Number.parseInt(ctx.params || "", 10);
  showThread(Number.isSafeInteger(id) && id > 0 ? id : null);

  return () => {
    if (thread) thread.destroy();
    thread = null;
    offTools();
    keys.uninstall();
    clearTimeout(connectTimer);
    chatStore.removeEventListener("change", onChangeList);
    chatStore.removeEventListener("waiting", onWaiting);
    chatStore.removeEventListener("transfer", onTransfer);
    if (socket) socket.removeEventListener("status", onStatus);
  };
}
