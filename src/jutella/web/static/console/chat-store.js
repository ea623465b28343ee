// The tab's chat state while an agent is signed in, whichever view is shown:
// the protocol client (chat-socket.js), the conversation list and the unread
// count in the document title.
//
// The list comes from GET /api/v1/conversations (summaries with the visitor's
// public id, a preview and the unread count). Live "conversation" frames
// update it at once (state, agent, last activity) and ask for a fresh read,
// at most one a second, which brings the preview and the unread count along.
// After a reconnect the list is read again (frames may have been missed).
//
// Tabs of one browser tell each other over a BroadcastChannel when a
// conversation was read ("seen"), so their unread counts agree without a reload.
//
// A conversation transferred to this agent (or to a department they are in)
// comes as a "conversation" frame with a "transfer" field: it alerts like a
// new chat (chat-notify.js alertTransfer) and stays highlighted in the list
// (transferOf(id)) until this agent opens it, here or in another tab.

import { api } from "./api.js";
import { ChatSocket } from "./chat-socket.js";
import {
  alertMessage, alertTransfer, alertWaiting, forgetAlerts, markKnown, onChange, preferences, setAccount,
} from "./chat-notify.js";

const REFRESH_GAP_MS = 1_000;
const CLOSED_SHOWN = 20;
const FIELDS = ["id", "state", "agent_id", "agent_name", "created_at", "last_activity_at", "last_seq",
  "agent_seen_seq", "browser", "os", "department_id"];

class ChatStore extends EventTarget {
  constructor() {
    super();
    this.running = false;
    this.socket = null;
    this.me = null; // the signed-in account
    this.conversations = new Map(); // id -> summary (+ touched)
    this.loaded = false;
    this.loadError = null;
    this.openHere = null; // the conversation this tab shows (and reads)
    this.hidden = new Map(); // id -> when a "hidden" frame removed it (a read begun before must not bring it back)
    this.transfers = new Map(); // id -> the frame's "transfer" ({from_agent_id, from_name}): highlighted until opened
    this.refreshTimer = null;
    this.fetching = false;
    this.again = false;
    this.lastFetch = 0;
    this.channel = null;
    this.onFrame = (event) => this.applyFrame(event.detail);
    this.onOpen = (event) => {
      if (event.detail.reconnected) this.scheduleRefresh(0);
    };
    this.onSocketStatus = (event) => {
      if (event.detail.state === "stopped" && this.running) this.stop();
    };
  }

  // -- life cycle ---------------------------------------------------------------
  start(me) {
    if (this.running) {
      this.me = me;
      return;
    }
    this.running = true;
    this.me = me;
    setAccount(me && me.account ? me.account.id : null);
    this.socket = new ChatSocket();
    this.socket.addEventListener("conversation", this.onFrame);
    this.socket.addEventListener("departments_changed", () => this.scheduleRefresh(0));
    this.socket.addEventListener("access_changed", () => this.scheduleRefresh(0));
    this.socket.addEventListener("hidden", (event) => this.remove(event.detail.conversation));
    this.socket.addEventListener("open", this.onOpen);
    this.socket.addEventListener("status", this.onSocketStatus);
    if ("BroadcastChannel" in window) {
      this.channel = new BroadcastChannel("jutella-chat");
      this.channel.addEventListener("message", (event) => this.fromOtherTab(event.data));
    }
    this.socket.start();
    this.scheduleRefresh(0);
    this.emit("started");
  }

  stop() {
    if (!this.running) return;
    this.running = false;
    const socket = this.socket;
    this.socket = null;
    if (socket) {
      socket.removeEventListener("status", this.onSocketStatus);
      socket.stop();
    }
    if (this.channel) this.channel.close();
    this.channel = null;
    clearTimeout(this.refreshTimer);
    this.refreshTimer = null;
    this.conversations.clear();
    this.hidden.clear();
    this.transfers.clear();
    this.loaded = false;
    this.openHere = null;
    forgetAlerts();
    this.emit("change");
    this.emit("stopped");
  }

  get myId() {
    return this.me ? this.me.account.id : null;
  }

  // -- reading the list ------------------------------------------------------------
  scheduleRefresh(delay = 200) {
    if (!this.running) return;
    if (this.fetching) {
      this.again = true;
      return;
    }
    if (this.refreshTimer) return;
    const wait = Math.max(delay, REFRESH_GAP_MS - (Date.now() - this.lastFetch));
    this.refreshTimer = setTimeout(() => {
      this.refreshTimer = null;
      this.refresh();
    }, wait);
  }

  async refresh() {
    if (!this.running || this.fetching) return;
    this.fetching = true;
    const startedAt = Date.now();
    this.lastFetch = startedAt;
    try {
      const [open, closed] = await Promise.all([
        api("GET", "/api/v1/conversations?state=open&limit=300"),
        api("GET", `/api/v1/conversations?state=closed&limit=${CLOSED_SHOWN}`),
      ]);
      if (!this.running) return;
      this.loadError = null;
      this.merge([...open, ...closed], startedAt);
    } catch (failure) {
      if (!this.running) return;
      this.loadError = failure.handled ? null : failure;
      this.emit("change");
    } finally {
      this.fetching = false;
      if (this.again && this.running) {
        this.again = false;
        this.scheduleRefresh(0);
      }
    }
  }

  merge(summaries, startedAt) {
    const firstLoad = !this.loaded;
    const next = new Map();
    for (const fetched of summaries) {
      if (this.hidden.has(fetched.id) && this.hidden.get(fetched.id) >= startedAt) continue; // read before it went
      const old = this.conversations.get(fetched.id);
      let item = { ...fetched };
      if (old && old.last_seq > fetched.last_seq) {
        // a frame told us more than this read knew: keep the live fields
        item = { ...item, ...pick(old), touched: old.touched };
        this.again = true;
      }
      if (this.loaded && !old && item.state === "waiting") this.maybeAlert(item, false);
      next.set(item.id, item);
    }
    // a conversation a frame brought after this read began stays
    for (const [id, old] of this.conversations) {
      if (!next.has(id) && old.touched && old.touched >= startedAt) next.set(id, old);
    }
    this.conversations = next;
    for (const id of [...this.transfers.keys()]) {
      if (!next.has(id) || !this.isMineOrQueued(next.get(id))) this.transfers.delete(id);
    }
    if (firstLoad) {
      markKnown([...next.values()].filter((c) => c.state === "waiting").map((c) => c.id));
      this.loaded = true;
    }
    this.emit("change");
  }

  // -- live frames ----------------------------------------------------------------------
  applyFrame(frame) {
    const summary = frame && frame.conversation;
    if (!summary || typeof summary.id !== "number") return;
    const old = this.conversations.get(summary.id);
    if (old && typeof old.last_seq === "number" && summary.last_seq < old.last_seq) return; // older news
    const item = { unread: 0, preview: null, visitor: null, ...old, ...pick(summary), touched: Date.now() };
    // a visitor's message says nothing of the agent's name: keep the one known
    if (summary.agent_name == null && old && old.agent_id === summary.agent_id) item.agent_name = old.agent_name;
    // the frame's "visitor" is the internal number; the list shows the public id
    if (typeof summary.visitor === "string") item.visitor = summary.visitor;
    // the name given on the pre-chat form (docs/prechat.md): a frame that does not know it keeps the one known
    if (typeof summary.visitor_name === "string") item.visitor_name = summary.visitor_name;
    // a frame carries the department's id only: a name known for another department is dropped
    // (the fresh read this frame asks for brings the new one)
    if (old && "department_id" in summary && summary.department_id !== old.department_id) item.department_name = null;
    if (item.state !== "waiting" && item.state !== "active" && old && old.state !== item.state) item.unread = 0;
    this.conversations.set(item.id, item);
    if (this.transfers.has(item.id) && !this.isMineOrQueued(item)) this.transfers.delete(item.id); // it went on
    if (frame.transfer && typeof frame.transfer === "object" && frame.transfer.from_agent_id !== this.myId
      && this.isMineOrQueued(item)) {
      // handed to me or to my department's queue: alert like a new chat, highlight until opened
      if (!(item.id === this.openHere && document.visibilityState === "visible")) {
        this.transfers.set(item.id, frame.transfer);
      }
      alertTransfer(item, (id) => { location.hash = `#/conversations/${id}`; });
      this.emit("transfer", { conversation: item, transfer: frame.transfer });
    } else if (item.state === "waiting" && (frame.new || (this.loaded && (!old || old.state !== "waiting")))) {
      this.maybeAlert(item, true);
    } else if (old && item.state === "active" && old.state === "active" && item.agent_id === this.myId
      && item.last_seq > old.last_seq && item.last_seq > (item.agent_seen_seq || 0)) {
      // a visitor's message in my chat (my own replies move agent_seen_seq along)
      alertMessage(item, (id) => { location.hash = `#/conversations/${id}`; });
    }
    this.emit("change");
    this.scheduleRefresh();
  }

  /** Waiting in a queue this agent sees, or active and theirs. */
  isMineOrQueued(item) {
    return item.state === "waiting" || (item.state === "active" && item.agent_id === this.myId);
  }

  /** The transfer that brought this conversation here, while it is not yet opened; or null. */
  transferOf(id) {
    return this.transfers.get(id) || null;
  }

  maybeAlert(item, live) {
    alertWaiting(item, (id) => { location.hash = `#/conversations/${id}`; });
    this.emit("waiting", { conversation: item, live });
  }

  /** The agent may no longer see this conversation: out of the lists (the view shows a notice). */
  remove(id) {
    if (typeof id !== "number") return;
    this.hidden.set(id, Date.now());
    this.conversations.delete(id);
    this.transfers.delete(id);
    this.emit("change");
  }

  // -- what this tab has open --------------------------------------------------------------
  setOpen(id) {
    this.openHere = id;
    if (id != null && this.transfers.delete(id) && this.channel) {
      this.channel.postMessage({ type: "opened", conversation: id });
    }
    this.emit("change");
  }

  /** This tab has shown the conversation up to seq: unread 0 here and in the other tabs. */
  markRead(id) {
    const item = this.conversations.get(id);
    if (item && item.unread) {
      this.conversations.set(id, { ...item, unread: 0 });
      this.emit("change");
    }
    if (this.channel) this.channel.postMessage({ type: "seen", conversation: id });
  }

  fromOtherTab(data) {
    if (!data || typeof data.conversation !== "number") return;
    if (data.type === "opened") { // a transferred conversation was opened in another tab
      if (this.transfers.delete(data.conversation)) this.emit("change");
      return;
    }
    if (data.type !== "seen") return;
    const item = this.conversations.get(data.conversation);
    if (item && item.unread) {
      this.conversations.set(item.id, { ...item, unread: 0 });
      this.emit("change");
    }
    this.scheduleRefresh();
  }

  /** Update a summary from the conversation view (it read the whole thing). */
  upsert(summary) {
    const old = this.conversations.get(summary.id);
    if (old && old.last_seq > summary.last_seq) return;
    this.conversations.set(summary.id, { ...old, ...summary, touched: Date.now() });
    this.emit("change");
  }

  unreadOf(item) {
    if (item.id === this.openHere && document.visibilityState === "visible") return 0;
    return item.unread || 0;
  }

  /** What the title counts: unread visitor messages in waiting chats and in mine. */
  unreadTotal() {
    let total = 0;
    for (const item of this.conversations.values()) {
      if (item.state === "waiting" || (item.state === "active" && item.agent_id === this.myId)) {
        total += this.unreadOf(item);
      }
    }
    return total;
  }

  emit(type, detail) {
    this.dispatchEvent(new CustomEvent(type, { detail }));
  }
}

function pick(summary) {
  const out = {};
  for (const key of FIELDS) if (key in summary) out[key] = summary[key];
  return out;
}

export const chatStore = new ChatStore();

// -- the unread count in the document title ----------------------------------------
const PREFIX = /^\(\d+\)\s+/;

function applyTitle() {
  const count = chatStore.running && preferences().title ? chatStore.unreadTotal() : 0;
  const base = document.title.replace(PREFIX, "");
  const wanted = count > 0 ? `(${count}) ${base}` : base;
  if (document.title !== wanted) document.title = wanted;
}

function watchTitle() {
  let title = document.querySelector("title");
  if (!title) {
    title = document.createElement("title");
    document.head.append(title);
  }
  // app.js sets the title on every route change: put the count back each time
  new MutationObserver(applyTitle).observe(title, { childList: true, characterData: true, subtree: true });
}

watchTitle();
chatStore.addEventListener("change", applyTitle);
onChange(applyTitle); // the agent turned the count in the title on or off
document.addEventListener("visibilitychange", () => {
  applyTitle();
  if (chatStore.running) chatStore.emit("change");
});
