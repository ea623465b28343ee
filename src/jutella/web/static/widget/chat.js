// The chat view: the message log, the composer, the status and error lines,
// the typing indicator and the ended / start cards. It renders; the frame
// (frame.js) decides. Message text only ever becomes text nodes (linkify.js).

const TYPING_IDLE_MS = 5000;
const TYPING_SHOWN_MAX_MS = 15000;

export class ChatView {
  constructor(doc, i18n, linkify, actions) {
    this.doc = doc;
    this.i18n = i18n;
    this.linkify = linkify;
    this.actions = actions;
    const $ = (id) => doc.getElementById(id);
    this.el = {
      log: $("log"), input: $("input"), composer: $("composer"), status: $("status"), error: $("error"),
      typing: $("typing"), typingText: $("typing-text"), end: $("end"), ended: $("ended"),
      start: $("start"), startTitle: $("start-title"), privacy: $("privacy"), close: $("close"),
      offline: $("offline"), closed: $("closed"),
      queue: $("queue-status"), queuePlace: $("queue-place"), queueWait: $("queue-wait"),
    };
    this.connection = "idle";
    this.agentsOnline = null;
    this.offlineForm = false; // the email form (offline.js) stands in for the composer
    this.agentName = null;
    this.conv = null;
    this.replay = null;
    this.conversationState = null;
    this.queue = null; // the last queue frame of the waiting chat: {conversation, position, typical_wait_s}
    this.typingIdle = null;
    this.typingHide = null;
    this.el.privacy.href = `/privacy?lang=${encodeURIComponent(i18n.lang)}`;
    this.bind();
    this.bindLayout();
    // The composer is hidden in the markup: nothing can be typed before it works.
    this.el.composer.hidden = false;
  }

  t(id, params) {
    return this.i18n.t(id, params);
  }

  bind() {
    const { input, composer } = this.el;
    composer.addEventListener("submit", (e) => {
      e.preventDefault();
      this.submit();
    });
    input.addEventListener("keydown", (e) => {
      if (e.key === "Enter" && !e.shiftKey && !e.isComposing && e.keyCode !== 229) {
        e.preventDefault();
        this.submit();
      }
    });
    input.addEventListener("input", () => {
      this.fit();
      this.showError("");
      const active = input.value.trim() !== "";
      this.actions.typing(active);
      clearTimeout(this.typingIdle);
      if (active) this.typingIdle = setTimeout(() => this.actions.typing(false), TYPING_IDLE_MS);
    });
    this.el.end.addEventListener("click", () => this.actions.end());
    this.el.close.addEventListener("click", () => this.actions.close());
    this.doc.getElementById("forget").addEventListener("click", () => this.actions.forget());
    this.doc.getElementById("new-chat").addEventListener("click", () => this.actions.newChat());
    this.doc.getElementById("restart").addEventListener("click", () => this.actions.restart());
  }

  // The textarea grows with its text, up to five lines.
  fit() {
    const lines = this.el.input.value.split("\n").length;
    this.el.input.rows = Math.max(2, Math.min(5, lines));
  }

  submit() {
    const { input } = this.el;
    const body = input.value.trim();
    if (!body) return;
    if (body.length > 4000) {
      this.showError(this.t("The message is too long (at most 4000 characters)."));
      return;
    }
    clearTimeout(this.typingIdle);
    const id = this.actions.send(body);
    input.value = "";
    this.fit();
    this.addLocal(id, body);
    input.focus();
  }

  focusInput() {
    if (!this.el.composer.hidden) this.el.input.focus();
    else {
      const button = this.doc.querySelector(".card:not([hidden]) button");
      if (button) button.focus();
    }
  }

  // -- layout (docs/widget.md "Layout") --------------------------------------
  // A reader at the newest message stays there when the log's box shrinks (the
  // end-of-chat card, an error line) or a picture in it loads (`load` does not
  // bubble: captured; near the bottom less the picture's height counts, since
  // its size may be laid out before an earlier scroll's event comes). The
  // end-of-chat card folds to its title line.
  bindLayout() {
    const { log, ended } = this.el;
    let atBottom = true;
    // A scroll event still due when the box changes size (the last message's
    // scroll and the end card in one frame, on a slow phone) is measured
    // against the new box and would say "not at the bottom": the resize
    // decides then, from where the reader was before it.
    let seenHeight = log.clientHeight;
    log.addEventListener("scroll", () => {
      if (log.clientHeight === seenHeight) atBottom = this.nearBottom();
    }, { passive: true });
    const stay = () => {
      seenHeight = log.clientHeight;
      if (atBottom) log.scrollTop = log.scrollHeight;
    };
    log.addEventListener("load", (e) => { // a picture: near the bottom less its height counts
      const grown = e.target && e.target.tagName === "IMG" ? e.target.offsetHeight : 0;
      if (atBottom || log.scrollHeight - log.scrollTop - log.clientHeight - grown < 80) log.scrollTop = log.scrollHeight;
    }, true);
    if (typeof ResizeObserver === "function") new ResizeObserver(stay).observe(log);
    const fold = this.doc.getElementById("ended-fold");
    if (fold) fold.addEventListener("click", () => this.foldEnded(!ended.classList.contains("folded")));
  }

  foldEnded(folded) {
    const fold = this.doc.getElementById("ended-fold");
    this.el.ended.classList.toggle("folded", folded);
    if (fold) fold.setAttribute("aria-expanded", String(!folded));
  }

  // -- the log --------------------------------------------------------------
  nearBottom() {
    const { log } = this.el;
    return log.scrollHeight - log.scrollTop - log.clientHeight < 80;
  }

  row(author, body, name) {
    const d = this.doc;
    const row = d.createElement("div");
    row.className = "row";
    row.dataset.author = author;
    if (author !== "system") {
      const who = d.createElement("span");
      who.className = author === "visitor" ? "who sr" : "who";
      who.textContent = author === "visitor" ? this.t("You") : name || this.t("Customer service");
      row.append(who);
    }
    const bubble = d.createElement("div");
    bubble.className = "bubble";
    bubble.dataset.testid = "message";
    bubble.dataset.author = author;
    bubble.append(this.linkify(body, d));
    row.append(bubble);
    if (author === "visitor") {
      const meta = d.createElement("span");
      meta.className = "meta";
      row.append(meta);
    }
    return row;
  }

  // Rows are kept in (conversation, seq) order; rows not yet numbered (still
  // being sent) stay at the end in the order they were written.
  place(row) {
    const { log } = this.el;
    const stick = this.nearBottom() || row.dataset.author === "visitor";
    const conv = Number(row.dataset.conv);
    const seq = Number(row.dataset.seq);
    let next = null;
    if (row.dataset.seq) {
      for (const other of log.querySelectorAll(".row")) {
        if (other === row) continue;
        if (!other.dataset.seq) {
          next = other;
          break;
        }
        const oc = Number(other.dataset.conv);
        const os = Number(other.dataset.seq);
        if (oc > conv || (oc === conv && os > seq)) {
          next = other;
          break;
        }
      }
    }
    if (next) log.insertBefore(row, next);
    else if (row.parentNode !== log || row !== log.lastElementChild) log.append(row);
    if (stick) log.scrollTop = log.scrollHeight;
  }

  byClientId(id) {
    for (const row of this.el.log.querySelectorAll(".row[data-cid]")) if (row.dataset.cid === id) return row;
    return null;
  }

  setStatus(row, status) {
    row.dataset.status = status;
    const meta = row.querySelector(".meta");
    if (!meta) return;
    const text = { sending: "Sending…", sent: "Sent", seen: "Seen", failed: "Not sent" }[status];
    meta.textContent = text ? this.t(text) : "";
    if (status === "sent" || status === "seen") {
      // "Sent" / "Seen" only under the latest delivered message, not under each.
      for (const other of this.el.log.querySelectorAll(".row[data-author=visitor]")) {
        if (other !== row && (other.dataset.status === "sent" || other.dataset.status === "seen")) {
          other.querySelector(".meta").textContent = "";
        }
      }
    }
  }

  addLocal(id, body) {
    const row = this.row("visitor", body);
    row.dataset.cid = id;
    this.place(row);
    this.setStatus(row, "sending");
    return row;
  }

  // Messages restored from storage that were never acknowledged.
  restorePending(list) {
    for (const p of list) if (!this.byClientId(p.client_id)) this.addLocal(p.client_id, p.body);
  }

  number(row, conv, seq) {
    row.dataset.conv = String(conv);
    row.dataset.seq = String(seq);
    this.place(row);
  }

  ack(f) {
    const row = this.byClientId(f.client_id);
    if (!row) return;
    if (typeof f.seq === "number" && typeof f.conversation === "number") this.number(row, f.conversation, f.seq);
    if (row.dataset.status !== "seen") this.setStatus(row, "sent");
  }

  fail(clientId) {
    const row = this.byClientId(clientId);
    if (row) this.setStatus(row, "failed");
  }

  event(f) {
    const kind = f.kind || "message";
    const author = kind === "message" && (f.author === "visitor" || f.author === "agent") ? f.author : "system";
    if (author === "agent") {
      if (f.author_name) this.agentName = f.author_name;
      this.setTyping(false);
    }
    if (f.conversation !== this.conv || this.conversationState === null) {
      // The first event of a (new) conversation.
      this.conv = f.conversation;
      if (kind !== "state") this.setConversationState("waiting");
    }
    // A replay's old state changes do not override what welcome said is current.
    const replayed = this.replay && this.replay.conv === f.conversation && f.seq <= this.replay.seq;
    if (kind === "state" && typeof f.state === "string" && !replayed) this.setConversationState(f.state);
    const body = typeof f.body === "string" ? f.body : "";
    if (f.client_id) {
      const mine = this.byClientId(f.client_id);
      if (mine) {
        this.number(mine, f.conversation, f.seq);
        if (mine.dataset.status !== "seen") this.setStatus(mine, "sent");
        return;
      }
    }
    if (kind === "attachment" && this.attachments) {
      // an image or a PDF (attach.js renders it; the file comes with the token header)
      const row = this.row(f.author === "agent" ? "agent" : "visitor", "", f.author_name);
      row.querySelector(".bubble").replaceChildren(this.attachments.render(f));
      row.dataset.conv = String(f.conversation);
      row.dataset.seq = String(f.seq);
      this.place(row);
      return;
    }
    if (!body) return;
    const row = this.row(author, body, f.author_name);
    if (f.client_id) row.dataset.cid = f.client_id;
    row.dataset.conv = String(f.conversation);
    row.dataset.seq = String(f.seq);
    this.place(row);
  }

  welcome(w) {
    const c = w.conversation && typeof w.conversation.id === "number" ? w.conversation : null;
    this.conv = c ? c.id : null;
    this.replay = c && typeof w.last_seq === "number" ? { conv: c.id, seq: w.last_seq } : null;
    if (c && c.agent_name) this.agentName = c.agent_name;
    this.setConversationState(c ? c.state || "waiting" : null);
    this.setAgentsOnline(w.agents_online !== false);
    this.setClosed(w.closed);
  }

  // Outside the opening hours (docs/hours.md): when the chat opens next, in the
  // register's time zone, written the visitor's way.
  setClosed(c) {
    const at = c && c.next ? new Date(c.next) : null;
    let text = "";
    if (at && !isNaN(at)) {
      const f = (o) => new Intl.DateTimeFormat(this.i18n.lang, { timeZone: c.tz, ...o }).format(at);
      text = this.t("We are closed. Back on {day} at {time}.", {
        day: f({ weekday: "long", day: "numeric", month: "long" }),
        time: f({ hour: "numeric", minute: "2-digit" }),
      });
    } else if (c) text = this.t("We are closed.");
    this.el.closed.textContent = text;
    this.el.closed.hidden = !text;
  }

  seenUpTo(conv, seq) {
    let last = null;
    for (const row of this.el.log.querySelectorAll(".row[data-author=visitor][data-seq]")) {
      if (Number(row.dataset.conv) === conv && Number(row.dataset.seq) <= seq) last = row;
    }
    if (last) this.setStatus(last, "seen");
  }

  clear() {
    for (const row of this.el.log.querySelectorAll(".row")) row.remove();
    if (this.attachments) this.attachments.clear();
    this.setTyping(false);
    this.showError("");
    this.agentName = null;
    this.conv = null;
    this.replay = null;
    this.conversationState = null;
    this.el.end.hidden = true;
    this.el.ended.hidden = true;
    this.el.composer.hidden = !this.el.start.hidden;
  }

  // -- state lines ----------------------------------------------------------
  setTyping(active, name) {
    clearTimeout(this.typingHide);
    this.el.typing.hidden = !active;
    if (!active) return;
    const who = name || this.agentName;
    this.el.typingText.textContent = who ? this.t("{name} is typing…", { name: who }) : this.t("Customer service is typing…");
    // If the typing:false never comes (a dropped connection), stop claiming it.
    this.typingHide = setTimeout(() => this.setTyping(false), TYPING_SHOWN_MAX_MS);
  }

  setConnection(state) {
    this.connection = state;
    this.renderStatus();
  }

  setAgentsOnline(online) {
    this.agentsOnline = online;
    this.renderStatus();
  }

  renderStatus() {
    const { status } = this.el;
    let text = "";
    if (this.connection === "connecting") text = this.t("Connecting…");
    else if (this.connection === "reconnecting") text = this.t("Connection lost. Reconnecting…");
    else if (this.connection === "connected" && this.agentsOnline === false && this.conversationState !== "active" &&
             !this.offlineForm) {
      text = this.t("Nobody is available right now, but you can still write. We will answer here as soon as we can.");
    }
    if (status.textContent !== text) status.textContent = text;
    status.hidden = !text;
    this.renderQueue();
  }

  // -- waiting: "an agent will be with you shortly", the place and the typical wait --
  setQueue(f) {
    this.queue = f;
    this.renderQueue();
  }

  renderQueue() {
    const { queue, queuePlace, queueWait } = this.el;
    const waiting = this.conversationState === "waiting";
    if (!waiting) this.queue = null;
    // Not while nobody is on duty (the status line says so) nor while the email form stands in.
    const shown = waiting && this.agentsOnline !== false && !this.offlineForm && this.connection !== "reconnecting";
    queue.hidden = !shown;
    const q = this.queue && this.queue.conversation === this.conv ? this.queue : null;
    const place = q ? this.t("You are number {position} in the queue.", { position: q.position }) : "";
    const s = q && typeof q.typical_wait_s === "number" ? q.typical_wait_s : null;
    const minutes = s === null ? 0 : Math.max(1, Math.round(s / 60));
    const wait = s === null ? "" : minutes === 1 ? this.t("Usually answered within about a minute.")
      : this.t("Usually answered within about {minutes} minutes.", { minutes });
    if (queuePlace.textContent !== place) queuePlace.textContent = place;
    if (queueWait.textContent !== wait) queueWait.textContent = wait;
    queuePlace.hidden = !place;
    queueWait.hidden = !wait;
  }

  showError(text) {
    if (this.el.error.textContent !== text) this.el.error.textContent = text;
  }

  setConversationState(state) {
    this.conversationState = state;
    const closed = state === "closed";
    this.el.end.hidden = closed || state === null;
    if (!closed) this.foldEnded(false);
    this.el.ended.hidden = !closed;
    this.el.composer.hidden = closed;
    if (closed) this.setTyping(false);
    this.renderStatus();
  }

  // After "Start a new chat": the composer back, the old messages stay above.
  reopen() {
    this.conversationState = null;
    this.el.ended.hidden = true;
    this.el.end.hidden = true;
    this.el.composer.hidden = false;
    this.renderStatus();
    this.el.input.focus();
  }

  // The "start" card: shown when nothing is going on and nothing is stored
  // (after "Forget this browser", or when the frame is opened on its own).
  showStart(title) {
    this.clear();
    this.el.composer.hidden = true;
    this.el.startTitle.textContent = title;
    this.el.start.hidden = false;
    this.setConnection("idle");
  }

  hideStart() {
    this.el.start.hidden = true;
    this.el.composer.hidden = false;
  }
}
