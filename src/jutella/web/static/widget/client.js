// The visitor's side of the chat protocol (docs/protocol.md) over /ws/visitor.
//
// - hello carries the stored token (or null) and the highest seq shown;
// - every outgoing message has a client_id and stays "pending" until acked;
//   pending messages are resent with the same client_id after a reconnect
//   (the server stores a client_id once and acks it again);
// - events are passed on once, in seq order: anything at or below the
//   highest seq already shown for the conversation is dropped;
// - reconnects back off exponentially (0.5 s doubling to 30 s, full jitter);
// - heartbeats: ping after 20 s of silence, 60 s of silence means dead.
//
// The client knows nothing of the DOM or of storage: it reports through
// emit(kind, data) and asks the frame to persist() its state.

export const BACKOFF_BASE_MS = 500;
export const BACKOFF_CAP_MS = 30000;
export const PING_MS = 20000;
export const DEAD_MS = 60000;
export const TYPING_EVERY_MS = 2500;
const TICK_MS = 5000;

// Full jitter: a random delay between 0 and min(cap, base * 2^attempt).
export function backoff(attempt, random = Math.random) {
  return random() * Math.min(BACKOFF_CAP_MS, BACKOFF_BASE_MS * 2 ** Math.min(attempt, 30));
}

export function newClientId() {
  if (globalThis.crypto && typeof crypto.randomUUID === "function") return crypto.randomUUID();
  // randomUUID needs a secure context; getRandomValues does not.
  const b = crypto.getRandomValues(new Uint8Array(16));
  b[6] = (b[6] & 0x0f) | 0x40;
  b[8] = (b[8] & 0x3f) | 0x80;
  const h = [...b].map((x) => x.toString(16).padStart(2, "0")).join("");
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20)}`;
}

export class Client {
  constructor({ url, hello, token = null, conversation = null, pending = [], emit = () => {}, persist = () => {},
    WebSocketImpl = globalThis.WebSocket, now = () => Date.now(), random = Math.random,
    setTimer = (fn, ms) => setTimeout(fn, ms), clearTimer = (id) => clearTimeout(id) }) {
    this.url = url;
    this.hello = hello;
    this.toldPage = null; // the page the server last heard from this socket (frame.js tellPage)
    this.token = token;
    this.conv = typeof conversation === "number" ? conversation : null;
    this.highest = 0;
    this.lastSeen = 0;
    this.pending = new Map();
    for (const p of pending) {
      if (p && typeof p.client_id === "string" && typeof p.body === "string") this.pending.set(p.client_id, p);
    }
    this.emit = emit;
    this.persist = persist;
    this.WS = WebSocketImpl;
    this.now = now;
    this.random = random;
    this.setTimer = setTimer;
    this.clearTimer = clearTimer;
    this.ws = null;
    this.ready = false;
    this.stopped = true;
    this.attempt = 0;
    this.retryTimer = null;
    this.tickTimer = null;
    this.heard = 0;
    this.sentAt = 0;
    this.pingAt = 0;
    this.typingOn = false;
    this.typingAt = 0;
    this.endQueued = false;
    this.onOnline = () => this.kick();
  }

  get connected() {
    return this.ready;
  }

  pendingList() {
    return [...this.pending.values()];
  }

  start() {
    if (!this.stopped) return;
    this.stopped = false;
    if (typeof addEventListener === "function") addEventListener("online", this.onOnline);
    this.connect();
  }

  stop() {
    this.stopped = true;
    this.clearTimer(this.retryTimer);
    this.clearTimer(this.tickTimer);
    if (typeof removeEventListener === "function") removeEventListener("online", this.onOnline);
    const ws = this.ws;
    this.ws = null;
    this.ready = false;
    if (ws) {
      ws.onopen = ws.onmessage = ws.onclose = ws.onerror = null;
      try {
        ws.close(1000);
      } catch (e) {
        // already closed
      }
    }
  }

  // Reconnect now (the browser says it is back online).
  kick() {
    if (this.stopped || this.ws) return;
    this.clearTimer(this.retryTimer);
    this.connect();
  }

  connect() {
    this.clearTimer(this.retryTimer);
    this.emit("status", this.attempt ? "reconnecting" : "connecting");
    let ws;
    try {
      ws = new this.WS(this.url);
    } catch (e) {
      this.retry();
      return;
    }
    this.ws = ws;
    this.ready = false;
    this.heard = this.now();
    ws.onopen = () => {
      this.heard = this.now();
      this.raw({ type: "hello", token: this.token, last_seq: this.highest, ...this.hello });
      this.toldPage = this.hello.page;
    };
    ws.onmessage = (e) => {
      if (ws !== this.ws) return;
      this.heard = this.now();
      let frame;
      try {
        frame = JSON.parse(e.data);
      } catch (err) {
        return;
      }
      if (frame && typeof frame === "object" && typeof frame.type === "string") this.receive(frame);
    };
    ws.onerror = () => {};
    ws.onclose = (e) => this.closed(ws, e ? e.code : 1006);
    this.tick();
  }

  tick() {
    this.clearTimer(this.tickTimer);
    this.tickTimer = this.setTimer(() => {
      this.heartbeat();
      if (this.ws) this.tick();
    }, TICK_MS);
  }

  heartbeat() {
    const ws = this.ws;
    if (!ws) return;
    const now = this.now();
    if (now - this.heard >= DEAD_MS) {
      // Nothing from the server for a minute: the connection is dead even if
      // the browser has not noticed. Drop it and reconnect.
      this.closed(ws, 4000);
      try {
        ws.close(4000);
      } catch (e) {
        // ignore
      }
      return;
    }
    if (ws.readyState === 1 && (now - this.heard >= PING_MS || now - this.sentAt >= PING_MS) &&
        now - this.pingAt >= PING_MS) {
      this.pingAt = now;
      this.raw({ type: "ping" });
    }
  }

  closed(ws, code) {
    if (ws !== this.ws) return;
    ws.onopen = ws.onmessage = ws.onclose = ws.onerror = null;
    this.ws = null;
    this.ready = false;
    this.clearTimer(this.tickTimer);
    if (this.stopped) return;
    if (code === 4401) {
      // The server does not know our token (erased, or expired): start over as
      // a new visitor. Unsent messages are kept and go to the new chat.
      this.token = null;
      this.conv = null;
      this.highest = 0;
      this.lastSeen = 0;
      this.persist();
      this.emit("reset");
    }
    this.retry();
  }

  retry() {
    const delay = backoff(this.attempt, this.random);
    this.attempt += 1;
    this.emit("status", "reconnecting");
    this.retryTimer = this.setTimer(() => this.connect(), delay);
  }

  raw(frame) {
    const ws = this.ws;
    if (!ws || ws.readyState !== 1) return false;
    ws.send(JSON.stringify(frame));
    this.sentAt = this.now();
    return true;
  }

  receive(f) {
    switch (f.type) {
      case "welcome":
        return this.welcome(f);
      case "event":
        return this.event(f);
      case "ack":
        return this.ack(f);
      case "typing":
        if (f.author !== "visitor" && (f.conversation == null || f.conversation === this.conv)) this.emit("typing", f);
        return undefined;
      case "seen":
        if (f.by === "agent" && f.conversation === this.conv && typeof f.seq === "number") this.emit("seen", f);
        return undefined;
      case "presence":
        if (Array.isArray(f.departments)) this.emit("departments", f.departments);
        this.emit("on_duty", Array.isArray(f.on_duty) ? f.on_duty : []);
        this.emit("closed", f.closed || null);
        return this.emit("presence", f.agents_online !== false);
      case "queue": // the place in the queue while the chat waits (docs/protocol.md)
        if (f.conversation === this.conv && typeof f.position === "number") this.emit("queue", f);
        return undefined;
      case "error":
        return this.error(f);
      case "ping":
        this.raw({ type: "pong" });
        return undefined;
      default:
        return undefined;
    }
  }

  welcome(f) {
    const c = f.conversation && typeof f.conversation.id === "number" ? f.conversation : null;
    if (c && this.conv !== null && c.id !== this.conv && this.highest > 0) {
      // A newer conversation than ours (started in another tab): our last_seq
      // was about the old one, so ask again from its beginning.
      this.conv = c.id;
      this.highest = 0;
      this.lastSeen = 0;
      this.persist();
      this.attempt = 0;
      const ws = this.ws;
      this.closed(ws, 1000);
      try {
        ws.close(1000);
      } catch (e) {
        // ignore
      }
      return;
    }
    this.ready = true;
    this.attempt = 0;
    if (typeof f.token === "string" && f.token) this.token = f.token;
    if (c && c.id !== this.conv) {
      this.conv = c.id;
      this.highest = 0;
      this.lastSeen = 0;
    }
    this.persist();
    this.emit("welcome", f);
    this.emit("status", "connected");
    for (const p of this.pending.values()) this.raw(messageFrame(p));
    if (this.typingOn) this.raw({ type: "typing", active: true });
    if (this.endQueued) {
      this.endQueued = false;
      this.raw({ type: "end" });
    }
  }

  event(f) {
    if (typeof f.seq !== "number" || typeof f.conversation !== "number") return;
    if (f.conversation !== this.conv) {
      if (this.conv !== null && f.conversation < this.conv) return; // an older conversation's straggler
      this.conv = f.conversation;
      this.highest = 0;
      this.lastSeen = 0;
    }
    if (f.seq <= this.highest) return;
    this.highest = f.seq;
    if (f.client_id && this.pending.has(f.client_id)) this.pending.delete(f.client_id);
    this.persist();
    this.emit("event", f);
  }

  ack(f) {
    if (typeof f.client_id !== "string") return;
    if (this.pending.delete(f.client_id)) this.persist();
    this.emit("ack", f);
  }

  error(f) {
    if (typeof f.client_id === "string" && this.pending.delete(f.client_id)) this.persist();
    this.emit("error", f);
  }

  // Queues a message and sends it when connected; returns its client_id.
  // department: the visitor's choice, sent with a message that starts a chat;
  // prechat: the site's pre-chat form's answers (docs/prechat.md), likewise.
  send(body, department, prechat) {
    const p = { client_id: newClientId(), body };
    if (typeof department === "number") p.department = department;
    if (prechat && typeof prechat === "object") p.prechat = prechat;
    this.pending.set(p.client_id, p);
    this.persist();
    if (this.ready) this.raw(messageFrame(p));
    this.typing(false);
    return p.client_id;
  }

  // At most one typing:true every TYPING_EVERY_MS while typing; one typing:false.
  typing(active) {
    const now = this.now();
    if (active && this.typingOn && now - this.typingAt < TYPING_EVERY_MS) return;
    if (!active && !this.typingOn) return;
    this.typingOn = active;
    this.typingAt = now;
    if (this.ready) this.raw({ type: "typing", active });
  }

  // The visitor has seen everything up to the highest seq shown.
  seen() {
    if (!this.ready || this.highest <= this.lastSeen) return;
    this.lastSeen = this.highest;
    this.raw({ type: "seen", seq: this.highest });
  }

  end() {
    if (this.ready) this.raw({ type: "end" });
    else this.endQueued = true;
  }
}

// A pending message as a frame (the department only with a chosen one).
function messageFrame(p) {
  const frame = { type: "message", client_id: p.client_id, body: p.body };
  if (typeof p.department === "number") frame.department = p.department;
  if (p.prechat && typeof p.prechat === "object") frame.prechat = p.prechat;
  return frame;
}
