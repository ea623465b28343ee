// The console's one protocol client per tab: /ws/agent (same origin; the
// session cookie authenticates), protocol v1 as in docs/protocol.md.
//
// What it guarantees to the views:
//   * each conversation's events are handed out once, in seq order: an event
//     at or below the highest seq already shown is dropped. After a reconnect
//     the hello names every followed conversation with that seq, and the
//     server replays what came after it, so nothing is skipped either;
//   * a message is kept until it is acked and resent (same client_id) after
//     every reconnect; an error frame naming its client_id ends it;
//   * heartbeats both ways: a ping is answered at once, a ping of our own goes
//     out every 20 s, and 60 s without a frame from the server counts as a dead
//     connection;
//   * reconnects with exponential backoff (0.5 s doubling to 30 s, full jitter);
//   * close code 4401 (the session ended) dispatches "jutella:session-ended",
//     the same document event api.js dispatches on an HTTP 401;
//   * the agent's presence (presence.js) is sent on every connect and whenever
//     "jutella:presence" fires; a change made in another tab of this browser
//     (localStorage) is followed too.
//
// It is an EventTarget. Events (CustomEvent, the frame or a summary in detail):
//   status        {state: "connecting"|"open"|"waiting"|"stopped", retryIn}
//   open          {agent, presence, reconnected}   after every welcome
//   event         an event frame, new to this tab
//   conversation  a list update frame
//   typing, seen  the visitor's typing / seen frames
//   ack           an ack frame
//   error         an error frame (with client_id when it concerns a message)
//   hidden        {conversation}: it may no longer be seen here (a restriction,
//                 a membership or role gone); no longer followed, its unsent
//                 replies dropped
//   access_changed  what this agent may see changed: reload the lists

import { getPresence, setPresence } from "./presence.js";

export const PING_EVERY = 20_000;
export const DEAD_AFTER = 60_000;
export const BACKOFF_FIRST = 500;
export const BACKOFF_MAX = 30_000;
const CHECK_EVERY = 5_000;
const PRESENCE_KEY = "jutella-presence";

export const CLOSE_UNAUTHORIZED = 4401;
export const CLOSE_FORBIDDEN = 4403;

/** A client-made message id: random, 32 hex characters. */
export function newClientId() {
  if (globalThis.crypto && typeof crypto.randomUUID === "function") return crypto.randomUUID().replaceAll("-", "");
  const bytes = new Uint8Array(16);
  crypto.getRandomValues(bytes);
  return [...bytes].map((b) => b.toString(16).padStart(2, "0")).join("");
}

/** The wait before reconnect attempt n (0-based): full jitter over an
 * exponential ceiling of 0.5 s doubling to 30 s. */
export function backoffDelay(attempt, random = Math.random) {
  const ceiling = Math.min(BACKOFF_MAX, BACKOFF_FIRST * 2 ** Math.min(attempt, 16));
  return Math.floor(random() * ceiling);
}

function agentUrl() {
  return `${location.protocol === "https:" ? "wss:" : "ws:"}//${location.host}/ws/agent`;
}

export class ChatSocket extends EventTarget {
  constructor({ url = agentUrl() } = {}) {
    super();
    this.url = url;
    this.ws = null;
    this.running = false;
    this.ready = false; // welcome received on the current socket
    this.attempt = 0;
    this.everOpened = false;
    this.retryTimer = null;
    this.checkTimer = null;
    this.lastHeard = 0;
    this.lastPing = 0;
    this.agent = null;
    this.shown = new Map(); // conversation -> highest seq shown (the subscriptions)
    this.helloSubs = new Set(); // what the last hello named (until its welcome)
    this.outbox = new Map(); // client_id -> {conversation, body}, in sending order
    this.onPresence = (event) => this.sendPresence(event.detail && event.detail.state);
    this.onStorage = (event) => {
      if (event.key === PRESENCE_KEY && event.newValue && event.newValue !== getPresence()) {
        setPresence(event.newValue); // shows it; the server already applies it to all tabs
        this.sendPresence(event.newValue);
      }
    };
    this.onOnline = () => {
      if (this.running && !this.ready) this.reconnectNow();
    };
  }

  // -- life cycle ---------------------------------------------------------------
  start() {
    if (this.running) return;
    this.running = true;
    document.addEventListener("jutella:presence", this.onPresence);
    window.addEventListener("storage", this.onStorage);
    window.addEventListener("online", this.onOnline);
    this.checkTimer = setInterval(() => this.check(), CHECK_EVERY);
    this.connect();
  }

  stop() {
    this.running = false;
    document.removeEventListener("jutella:presence", this.onPresence);
    window.removeEventListener("storage", this.onStorage);
    window.removeEventListener("online", this.onOnline);
    clearInterval(this.checkTimer);
    clearTimeout(this.retryTimer);
    this.checkTimer = null;
    this.retryTimer = null;
    this.drop(1000);
    this.shown.clear();
    this.outbox.clear();
    this.status("stopped");
  }

  connect() {
    clearTimeout(this.retryTimer);
    this.retryTimer = null;
    if (!this.running) return;
    this.status("connecting");
    let ws;
    try {
      ws = new WebSocket(this.url);
    } catch {
      this.scheduleReconnect();
      return;
    }
    this.ws = ws;
    this.ready = false;
    this.lastHeard = Date.now();
    ws.addEventListener("open", () => {
      if (ws !== this.ws) return;
      this.lastHeard = Date.now();
      this.lastPing = Date.now();
      this.helloSubs = new Set(this.shown.keys());
      this.rawSend({ type: "hello", subscriptions: Object.fromEntries(this.shown) });
    });
    ws.addEventListener("message", (message) => {
      if (ws !== this.ws) return;
      this.lastHeard = Date.now();
      let frame;
      try {
        frame = JSON.parse(message.data);
      } catch {
        return;
      }
      if (frame && typeof frame === "object" && typeof frame.type === "string") this.receive(frame);
    });
    ws.addEventListener("close", (event) => {
      if (ws !== this.ws) return;
      this.ws = null;
      this.ready = false;
      this.closed(event.code);
    });
  }

  /** Forget the current socket (its late events are ignored) and close it. */
  drop(code = 1000) {
    const ws = this.ws;
    this.ws = null;
    this.ready = false;
    if (ws) {
      try {
        ws.close(code);
      } catch {
        // already closing
      }
    }
  }

  closed(code) {
    if (!this.running) return;
    if (code === CLOSE_UNAUTHORIZED) {
      this.stop();
      document.dispatchEvent(new CustomEvent("jutella:session-ended", { cancelable: true, detail: { code } }));
      return;
    }
    if (code === CLOSE_FORBIDDEN) {
      // the agent role was removed (or two-factor became required): let the
      // console look at the account again rather than knock on the door forever
      this.stop();
      document.dispatchEvent(new CustomEvent("jutella:refresh-me"));
      return;
    }
    this.scheduleReconnect();
  }

  scheduleReconnect() {
    if (!this.running || this.retryTimer) return;
    const wait = backoffDelay(this.attempt);
    this.attempt += 1;
    this.status("waiting", wait);
    this.retryTimer = setTimeout(() => {
      this.retryTimer = null;
      this.connect();
    }, wait);
  }

  reconnectNow() {
    this.attempt = 0;
    clearTimeout(this.retryTimer);
    this.retryTimer = null;
    this.drop(4000);
    this.connect();
  }

  /** Heartbeats: our own ping every 20 s; 60 s of silence means dead. */
  check() {
    if (!this.running || !this.ws) return;
    const now = Date.now();
    if (now - this.lastHeard >= DEAD_AFTER) {
      this.drop(4000);
      this.scheduleReconnect();
      return;
    }
    if (this.ws.readyState === WebSocket.OPEN && now - this.lastPing >= PING_EVERY) {
      this.lastPing = now;
      this.rawSend({ type: "ping" });
    }
  }

  // -- frames in ---------------------------------------------------------------------
  receive(frame) {
    switch (frame.type) {
      case "ping":
        this.rawSend({ type: "pong" });
        return;
      case "pong":
        return;
      case "welcome": {
        const reconnected = this.everOpened;
        this.ready = true;
        this.everOpened = true;
        this.attempt = 0;
        this.agent = frame.agent || null;
        this.sendPresence(getPresence());
        // follow what changed between our hello and this welcome
        for (const [conv, seq] of this.shown) {
          if (!this.helloSubs.has(conv)) this.rawSend({ type: "subscribe", conversation: conv, last_seq: seq });
        }
        for (const conv of this.helloSubs) {
          if (!this.shown.has(conv)) this.rawSend({ type: "unsubscribe", conversation: conv });
        }
        this.helloSubs = new Set();
        for (const [clientId, item] of this.outbox) {
          this.rawSend({ type: "message", conversation: item.conversation, client_id: clientId, body: item.body });
        }
        this.status("open");
        this.emit("open", { agent: this.agent, presence: frame.presence, reconnected });
        return;
      }
      case "event": {
        const conv = frame.conversation;
        if (!this.shown.has(conv) || typeof frame.seq !== "number") return; // not followed (any more)
        if (frame.seq <= this.shown.get(conv)) return; // shown already
        this.shown.set(conv, frame.seq);
        if (frame.client_id && this.outbox.has(frame.client_id)) this.outbox.delete(frame.client_id);
        this.emit("event", frame);
        return;
      }
      case "ack":
        this.outbox.delete(frame.client_id);
        this.emit("ack", frame);
        return;
      case "error":
        if (frame.client_id) this.outbox.delete(frame.client_id);
        this.emit("error", frame);
        return;
      case "presence":
        if (frame.state && frame.state !== getPresence()) setPresence(frame.state);
        return;
      case "conversations": // list updates sent together under load: each as its own
        for (const item of Array.isArray(frame.items) ? frame.items : []) {
          if (item && item.type === "conversation") this.emit("conversation", item);
        }
        return;
      case "hidden": { // docs/protocol.md "Access changes": the server stopped following it
        const conv = frame.conversation;
        if (typeof conv !== "number") return;
        this.shown.delete(conv);
        this.helloSubs.delete(conv);
        for (const [clientId, item] of this.outbox) if (item.conversation === conv) this.outbox.delete(clientId);
        this.emit("hidden", frame);
        return;
      }
      case "conversation":
      case "typing":
      case "seen":
      case "page": // the visitor's current page (docs/protocol.md)
      case "departments_changed": // docs/departments.md: the lists to reload
      case "access_changed": // docs/protocol.md "Access changes": likewise
        this.emit(frame.type, frame);
        return;
      default:
        // fields and frames a client does not know are ignored
    }
  }

  // -- frames out --------------------------------------------------------------------
  rawSend(frame) {
    if (!this.ws || this.ws.readyState !== WebSocket.OPEN) return false;
    try {
      this.ws.send(JSON.stringify(frame));
      return true;
    } catch {
      return false;
    }
  }

  /** Send now if the connection is open; frames that only matter now are dropped otherwise. */
  sendNow(frame) {
    return this.ready && this.rawSend(frame);
  }

  sendPresence(state) {
    if (state) this.sendNow({ type: "presence", state });
  }

  /** Follow a conversation whose events up to lastSeq are already shown. */
  subscribe(conversation, lastSeq = 0) {
    const had = this.shown.get(conversation) || 0;
    this.shown.set(conversation, Math.max(had, lastSeq));
    this.sendNow({ type: "subscribe", conversation, last_seq: this.shown.get(conversation) });
  }

  unsubscribe(conversation) {
    if (!this.shown.delete(conversation)) return;
    this.sendNow({ type: "unsubscribe", conversation });
  }

  highestShown(conversation) {
    return this.shown.get(conversation) || 0;
  }

  /** Queue a message; returns its client_id. It goes out now or after the next welcome. */
  message(conversation, body) {
    const clientId = newClientId();
    this.outbox.set(clientId, { conversation, body });
    this.sendNow({ type: "message", conversation, client_id: clientId, body });
    return clientId;
  }

  isPending(clientId) {
    return this.outbox.has(clientId);
  }

  typing(conversation, active) {
    return this.sendNow({ type: "typing", conversation, active });
  }

  seen(conversation, seq) {
    return this.sendNow({ type: "seen", conversation, seq });
  }

  // -- helpers --------------------------------------------------------------------------
  status(state, retryIn = 0) {
    this.state = state;
    this.emit("status", { state, retryIn });
  }

  emit(type, detail) {
    this.dispatchEvent(new CustomEvent(type, { detail }));
  }
}
