// Unread counts on the navigation's "Conversations" and "Offline messages"
// entries (data-testid="nav-badge", data-view), live on every page of the
// console while an agent is signed in.
//
//   Conversations     what the tab title counts (chat-store.js unreadTotal):
//                     unread visitor messages in waiting conversations and in
//                     the agent's own active ones; it falls as they are read.
//   Offline messages  new messages (nobody has answered or closed them) this
//                     agent has not opened yet. Which ones were opened is kept
//                     per account in this browser's localStorage (the server
//                     keeps no read marks); the list reads them again on every
//                     "offline" frame (view-offline-live.js) and reconnect.
//
// app.js puts navBadge(id) into the navigation link each time it draws the
// navigation; the badge elements live as long as the page, so a redraw keeps them.

import { api } from "./api.js";
import { h, srOnly } from "./dom.js";
import { t } from "./i18n.js";
import { chatStore } from "./chat-store.js";
import { onOfflineNews } from "./view-offline-live.js";

const OPENED_PREFIX = "jutella-offline-opened:";
const REFRESH_GAP_MS = 300;

const badges = new Map(); // view id -> {el, number, words}
const offline = {
  account: null,
  fresh: [], // ids of the "new" messages, from the last read
  opened: new Set(),
  timer: null,
  serial: 0,
};
const listeners = new Set();

// -- the badge elements ------------------------------------------------------------------
function badge(view) {
  let b = badges.get(view);
  if (!b) {
    const number = h("span", { "aria-hidden": "true" });
    const words = srOnly("");
    const el = h("span", { class: "nav-badge", testid: "nav-badge", dataset: { view }, hidden: true }, number, words);
    b = { el, number, words };
    badges.set(view, b);
  }
  return b;
}

function show(view, count) {
  const b = badge(view);
  b.el.hidden = !(count > 0);
  b.number.textContent = count > 0 ? String(count) : "";
  b.words.textContent = count > 0 ? ` ${t("{count} unread", { count })}` : "";
  b.el.dataset.count = String(count);
}

/** The badge for a navigation entry, or null for entries that have none. */
export function navBadge(view) {
  if (view !== "conversations" && view !== "offline") return null;
  draw();
  return badge(view).el;
}

function draw() {
  show("conversations", chatStore.running ? chatStore.unreadTotal() : 0);
  show("offline", chatStore.running ? offlineUnreadCount() : 0);
}

// -- offline messages: new and not opened ---------------------------------------------------
function remember() {
  if (!offline.account) return;
  try {
    localStorage.setItem(OPENED_PREFIX + offline.account, JSON.stringify([...offline.opened]));
  } catch {
    // not remembered
  }
}

function recall(account) {
  offline.account = account == null ? null : String(account);
  offline.opened = new Set();
  try {
    const stored = JSON.parse(localStorage.getItem(OPENED_PREFIX + offline.account) || "[]");
    if (Array.isArray(stored)) offline.opened = new Set(stored.filter((x) => typeof x === "number"));
  } catch {
    // start empty
  }
}

function offlineUnreadCount() {
  return offline.fresh.filter((id) => !offline.opened.has(id)).length;
}

/** Whether an offline message is new and this agent has not opened it (view-offline.js marks it). */
export function offlineIsUnread(message) {
  return message.state === "new" && !offline.opened.has(message.id);
}

/** This agent opened the message (view-offline-message.js read it): no longer unread. */
export function offlineOpened(id) {
  if (offline.opened.has(id)) return;
  offline.opened.add(id);
  remember();
  changed();
}

/** fn() after every change of what is unread (the inbox redraws its marks). */
export function onOfflineUnread(fn) {
  listeners.add(fn);
  return () => listeners.delete(fn);
}

function changed() {
  draw();
  for (const fn of [...listeners]) fn();
}

async function readOffline() {
  offline.timer = null;
  if (!chatStore.running) return;
  const mine = ++offline.serial;
  try {
    const rows = await api("GET", "/api/v1/offline-messages?state=new&limit=1000");
    if (mine !== offline.serial || !chatStore.running) return;
    offline.fresh = rows.map((m) => m.id);
    // keep only what can still count: the marks of messages answered or closed go
    const before = offline.opened.size;
    offline.opened = new Set([...offline.opened].filter((id) => offline.fresh.includes(id)));
    if (offline.opened.size !== before) remember();
    changed();
  } catch {
    // the badge keeps what it showed; the next frame reads again
  }
}

function scheduleOffline(delay = REFRESH_GAP_MS) {
  if (!offline.timer) offline.timer = setTimeout(readOffline, delay);
}

// -- wiring ------------------------------------------------------------------------------------
chatStore.addEventListener("change", draw);
chatStore.addEventListener("started", () => {
  recall(chatStore.myId);
  scheduleOffline(0);
});
chatStore.addEventListener("stopped", () => {
  clearTimeout(offline.timer);
  offline.timer = null;
  offline.serial += 1;
  offline.fresh = [];
  changed();
});
onOfflineNews((frame) => {
  if (frame.type === "offline" || frame.type === "reconnected") scheduleOffline();
});
window.addEventListener("storage", (event) => {
  if (offline.account && event.key === OPENED_PREFIX + offline.account) {
    recall(offline.account);
    changed();
  }
});
