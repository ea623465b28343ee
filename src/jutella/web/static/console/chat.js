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
//
// The socket lives as long as an agent is signed in, not only while this view
// is shown: presence, the unread count in the title and the alerts for
// waiting visitors work from every page of the console.

import { h, replace } from "./dom.js";
import { t } from "./i18n.js";
import { routeHref } from "./router.js";
import { chatStore } from "./chat-store.js";
import { conversationList } from "./chat-list.js";
import { openThread } from "./chat-thread.js";
import { searchPanel } from "./chat-search.js";
import { enableNotifications, isMuted, notificationState, onChange, setMuted } from "./chat-notify.js";

const STYLESHEET = "/static/console/chat.css";

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
  if (document.querySelector(`link[href="${STYLESHEET}"]`)) return;
  const link = document.createElement("link");
  link.rel = "stylesheet";
  link.href = STYLESHEET;
  document.head.append(link);
}
ensureStylesheet();

// -- the view --------------------------------------------------------------------------
function soundLabel() {
  return isMuted() ? t("Sound off") : t("Sound on");
}

export function renderChat(container, ctx) {
  ensureStylesheet();
  if (!chatStore.running && isAgent(ctx.me)) chatStore.start(ctx.me);
  container.classList.add("chat-view");

  // toolbar: title, connection state, sound, notifications
  const connection = h("p", { class: "chat-connection", role: "status", testid: "chat-connection", hidden: true });
  const sound = h("button", { type: "button", class: "small quiet chat-sound", testid: "chat-sound" });
  const notify = h("button", { type: "button", class: "small", testid: "enable-notifications",
    text: t("Enable notifications") });
  const notifyNote = h("span", { class: "muted chat-notify-note" });
  const toolbar = h("div", { class: "chat-toolbar" },
    h("h1", { id: "page-title", tabindex: "-1", text: t("Conversations") }),
    h("div", { class: "chat-tools" }, connection, sound, notify, notifyNote));

  function drawTools() {
    sound.textContent = soundLabel();
    sound.setAttribute("aria-pressed", String(!isMuted()));
    sound.title = t("The chime when a visitor starts waiting");
    const state = notificationState();
    notify.hidden = state !== "default";
    notifyNote.textContent = state === "denied" ? t("Notifications are blocked in this browser’s settings.") : "";
    notifyNote.hidden = !notifyNote.textContent;
  }
  sound.addEventListener("click", () => {
    setMuted(!isMuted());
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
  const search = searchPanel({
    open: openConversation,
    onActive: (on) => { list.el.hidden = on; },
  });
  const listPane = h("section", { class: "chat-pane chat-list-pane", "aria-label": t("Conversation list") },
    search.form, search.results, list.el);
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
  const socket = chatStore.socket;
  if (socket) {
    socket.addEventListener("status", onStatus);
    if (socket.state) onStatus({ detail: { state: socket.state } });
  } else {
    onStatus({ detail: { state: "stopped" } });
  }

  list.render();
  const id = Number.parseInt(ctx.params || "", 10);
  showThread(Number.isSafeInteger(id) && id > 0 ? id : null);

  return () => {
    if (thread) thread.destroy();
    thread = null;
    offTools();
    clearTimeout(connectTimer);
    chatStore.removeEventListener("change", onChangeList);
    chatStore.removeEventListener("waiting", onWaiting);
    if (socket) socket.removeEventListener("status", onStatus);
  };
}
