// One conversation: its messages, accepting and closing it, the reply box,
// typing indicators both ways and "seen".
//
// Opening reads GET /api/v1/conversations/{id} once (that read is what the
// audit log records as a view), shows its events, then follows the
// conversation on the socket from the last seq shown: the server replays
// whatever came in between, and the socket hands each event out once, in seq
// order.
//
// A reply shows at once as "sending" (in the outbox under the log) and moves
// into the log when its event arrives; the ack marks it "sent" if the ack
// comes first. An error frame naming it marks it "not sent", with the
// server's words beside the reply box.
//
// Message text is visitor-supplied: text nodes (and http(s) links) only.

import { api } from "./api.js";
import { h, replace, uid } from "./dom.js";
import { t } from "./i18n.js";
import { renderVisitorInfo } from "./chat-visitor.js";
import { handles, transferControl } from "./chat-transfer.js";
import { linkify, stateLabel, systemText, timeElement } from "./chat-text.js";
import { isNote, noteElement, noteSwitch } from "./chat-notes.js";
import { labelEditor } from "./chat-labels.js";
import { attachCanned } from "./chat-canned.js";
import { attachControls, attachmentBody, ratingElement } from "./chat-attach.js";
import { transcriptControls } from "./chat-transcript.js";

export const TYPING_SHOWN_MS = 6_000; // the visitor's indicator, without a new typing frame
const TYPING_RESEND_MS = 4_000; // our "still typing" while the agent keeps typing
const TYPING_IDLE_MS = 5_000; // no key for this long: "stopped typing"
const SEEN_DELAY_MS = 300;
const MAX_BODY = 4_000;
const NEAR_BOTTOM_PX = 96;
const QUIET_ERRORS = new Set(["not_ready"]);

/** The one question before closing, whether by the button or the `c` key
 * (which presses the button). */
export function confirmClose() {
  return window.confirm(t("Close this conversation?"));
}

function authorOf(event) {
  return (event.kind === "message" || event.kind === "attachment") && (event.author === "visitor" || event.author === "agent") ? event.author : "system";
}

function messageElement(event) {
  if (isNote(event)) return noteElement(event); // staff only, drawn apart (chat-notes.js)
  const author = authorOf(event);
  if (author === "system") {
    return h("li", { class: "msg msg-system", testid: "message", dataset: { author, seq: event.seq } },
      h("span", { class: "msg-system-text", text: systemText(event) }), " ",
      timeElement(event.at, "msg-time"));
  }
  const who = author === "visitor" ? t("Visitor") : event.author_name || t("Agent");
  return h("li", { class: ["msg", `msg-${author}`], testid: "message", dataset: { author, seq: event.seq } },
    h("div", { class: "msg-meta" }, h("span", { class: "msg-author", text: who }), " ",
      timeElement(event.at, "msg-time")),
    h("div", { class: "msg-body" }, event.kind === "attachment" ? attachmentBody(event) : linkify(event.body)));
}

/**
 * Show conversation `id` in `pane` (and its visitor in `infoPane`).
 * store: chat-store.js; open(id) opens another conversation; back() returns
 * to the list (narrow screens); focus: move the focus to the conversation
 * once it is shown. Returns {id, focus(), destroy()}.
 */
export function openThread(pane, infoPane, id, { store, open, back, announce, focus = false }) {
  let alive = true;
  let local = null; // the summary as this view knows it
  let lastAgentSeq = 0;
  let visitorSeen = 0;
  let seenSent = 0;
  let seenTimer = null;
  let typingTimer = null;
  let typingSent = false;
  let typingAt = 0;
  let typingIdle = null;
  const pending = new Map(); // client_id -> <li>
  const socket = store.socket;

  // -- the skeleton ------------------------------------------------------------------
  const heading = h("h2", { class: "thread-title", id: uid("thread"), tabindex: "-1", text: t("Conversation") });
  const stateBadge = h("span", { class: "badge thread-state", testid: "conversation-state" });
  const handler = h("p", { class: "thread-agent muted" });
  const acceptButton = h("button", { type: "button", class: "primary", testid: "accept", text: t("Accept") });
  const closeButton = h("button", { type: "button", class: "danger-outline", testid: "close-conversation",
    text: t("Close conversation") });
  const backButton = h("button", { type: "button", class: "quiet small chat-back", text: t("← All conversations") });
  const transfer = transferControl(id, { store, announce }); // chat-transfer.js
  const transcripts = transcriptControls(id); // chat-transcript.js: its actions and its mails' states
  const events = h("ol", { class: "msg-list" });
  const outbox = h("ol", { class: "msg-list msg-outbox" });
  const log = h("div", { class: "thread-log", role: "log", "aria-live": "polite", "aria-relevant": "additions",
    "aria-label": t("Messages"), tabindex: "0" }, events, outbox);
  const typing = h("p", { class: "typing", testid: "typing", hidden: true },
    h("span", { class: "typing-dots", "aria-hidden": "true" }, h("span"), h("span"), h("span")),
    h("span", { text: t("The visitor is typing…") }));
  const seenLine = h("p", { class: "seen-line muted", hidden: true, text: t("Seen by the visitor") });
  const input = h("textarea", { id: uid("reply"), rows: 2, maxlength: String(MAX_BODY * 2), testid: "console-input",
    autocomplete: "off", enterkeyhint: "send" });
  const hintId = uid("hint");
  input.setAttribute("aria-describedby", hintId);
  const send = h("button", { type: "submit", class: "primary", testid: "console-send", text: t("Send") });
  const errorBox = h("p", { class: "composer-error", role: "alert", testid: "composer-error", hidden: true });
  const note = h("p", { class: "composer-note muted", hidden: true });
  const attach = attachControls(id, { showError: (text) => showError(text) });
  const rating = ratingElement();
  const notes = noteSwitch((on) => {
    composer.classList.toggle("is-note", on);
    send.textContent = on ? t("Add note") : t("Send");
    input.placeholder = on ? t("Internal note: the visitor never sees it") : "";
    drawState();
    input.focus();
  });
  const composer = h("form", { class: "composer", novalidate: true },
    h("label", { for: input.id, class: "visually-hidden", text: t("Your reply") }),
    h("div", { class: "composer-tools" }, notes.el),
    h("div", { class: "composer-row" }, input, send, attach.button, attach.input),
    errorBox, note,
    h("p", { class: "hint composer-hint", id: hintId, text: t("Enter sends. Shift+Enter starts a new line.") }));
  const labelSlot = h("div", { class: "thread-label-slot" });
  let labels = null;
  const header = h("div", { class: "thread-header" },
    backButton,
    h("div", { class: "thread-heading" }, heading, stateBadge),
    handler,
    labelSlot,
    rating.el,
    h("div", { class: "thread-actions" }, acceptButton, transfer.button, closeButton), transfer.panel,
    transcripts.el);
  const body = h("div", { class: "thread", dataset: { conversation: id } },
    header, log, typing, seenLine, composer);
  replace(pane, h("p", { class: "muted thread-loading", role: "status", text: t("Opening the conversation…") }));
  pane.setAttribute("aria-labelledby", heading.id);

  // -- state ------------------------------------------------------------------------------
  function current() {
    const listed = store.conversations.get(id);
    if (!local) return listed || null;
    if (!listed || listed.last_seq < local.last_seq) return local;
    // the list has the newer word on the live fields (a frame came after our events)
    const { state, agent_id: agentId, agent_name: agentName, last_seq: lastSeq } = listed;
    const name = agentName ?? (agentId === local.agent_id ? local.agent_name : null);
    return { ...local, state, agent_id: agentId, agent_name: name, last_seq: lastSeq };
  }

  function mayWrite(c) {
    return c && (c.state === "waiting" || (c.state === "active" && c.agent_id === store.myId));
  }

  function drawState() {
    const c = current();
    if (!c) return;
    body.dataset.state = c.state;
    // the name given on the pre-chat form (visitor text: textContent) stands in for the visitor id
    heading.textContent = c.visitor_name || t("Visitor {visitor}", { visitor: c.visitor || "…" });
    stateBadge.textContent = stateLabel(c.state);
    stateBadge.className = `badge thread-state state-${c.state}`;
    acceptButton.hidden = c.state !== "waiting";
    // waiting: anyone may close it; active: only who handles it (after a transfer away, no longer me)
    closeButton.hidden = c.state === "closed" || (c.state === "active" && !handles(store, c));
    transfer.update(c);
    const mine = c.agent_id === store.myId;
    if (c.state === "active") {
      handler.textContent = mine ? t("You are handling this conversation.")
        : t("{name} is handling this conversation.", { name: c.agent_name || t("Another agent") });
    } else if (c.state === "waiting") {
      handler.textContent = t("Waiting for an agent. Accept it, or reply to accept it.");
    } else {
      handler.textContent = t("This conversation is closed.");
    }
    const writable = notes.on() || (mayWrite(c) && Boolean(socket));
    input.disabled = !writable;
    send.disabled = !writable;
    attach.setDisabled(notes.on() || !writable);  // a file is never an internal note
    if (notes.on()) showNote("");
    else if (c.state === "closed") showNote(t("This conversation is closed. Replies cannot be sent."));
    else if (c.state === "active" && !mine) showNote(t("Another agent is handling this conversation."));
    else if (!socket) showNote(t("The live connection is not available. Reload the page."));
    else showNote("");
    if (!writable) stopTyping();
    if (c.state === "closed") hideTyping();
    scheduleSeen();
  }

  function showNote(text) {
    note.textContent = text;
    note.hidden = !text;
  }

  function showError(text) {
    errorBox.textContent = text;
    errorBox.hidden = !text;
  }

  // -- the log ----------------------------------------------------------------------------
  function nearBottom() {
    return log.scrollHeight - log.scrollTop - log.clientHeight < NEAR_BOTTOM_PX;
  }

  function toBottom() {
    log.scrollTop = log.scrollHeight;
  }

  // Layout (docs/console.md): a reader at the newest message stays there when
  // the log's box shrinks (a panel or the reply box grows) or a picture in it
  // loads and makes it taller: then the reader was near the bottom if they are
  // now, less the picture's height (its size may be laid out before the scroll
  // event of an earlier move comes). `load` does not bubble, hence the capture.
  // A scroll event still due when the box changes size (in the same frame) is
  // measured against the new box: the resize decides then, from where the
  // reader was before it (as the widget's chat.js).
  let atBottom = true;
  let seenHeight = log.clientHeight;
  log.addEventListener("scroll", () => {
    if (log.clientHeight === seenHeight) atBottom = nearBottom();
  }, { passive: true });
  const stayAtBottom = () => {
    seenHeight = log.clientHeight;
    if (atBottom) toBottom();
  };
  log.addEventListener("load", (event) => {
    const grown = event.target instanceof HTMLImageElement ? event.target.offsetHeight : 0;
    if (atBottom || log.scrollHeight - log.scrollTop - log.clientHeight - grown < NEAR_BOTTOM_PX) toBottom();
  }, true);
  const logResized = typeof ResizeObserver === "function" ? new ResizeObserver(stayAtBottom) : null;
  if (logResized) logResized.observe(log);

  function addEvent(event) {
    const follow = nearBottom();
    if (event.client_id && pending.has(event.client_id)) {
      pending.get(event.client_id).remove();
      pending.delete(event.client_id);
    }
    events.append(messageElement(event));
    if (authorOf(event) === "agent") lastAgentSeq = Math.max(lastAgentSeq, event.seq);
    if (authorOf(event) === "visitor") hideTyping();
    if (local) {
      local = { ...local, last_seq: Math.max(local.last_seq, event.seq), last_activity_at: event.at };
      if (event.state) local = { ...local, state: event.state };
    }
    if (follow || authorOf(event) === "agent") toBottom();
    drawSeen();
  }

  function addPending(clientId, text) {
    const status = h("span", { class: "msg-status", text: t("Sending…") });
    const li = h("li", { class: "msg msg-agent is-pending", testid: "message",
      dataset: { author: "agent", status: "sending", clientId } },
    h("div", { class: "msg-meta" }, h("span", { class: "msg-author", text: t("You") }), " ", status),
    h("div", { class: "msg-body" }, linkify(text)));
    li.statusText = status;
    pending.set(clientId, li);
    outbox.append(li);
    toBottom();
  }

  function drawSeen() {
    seenLine.hidden = !(lastAgentSeq > 0 && visitorSeen >= lastAgentSeq);
  }

  // -- typing -----------------------------------------------------------------------------
  function showTyping() {
    const follow = nearBottom();
    typing.hidden = false;
    clearTimeout(typingTimer);
    typingTimer = setTimeout(hideTyping, TYPING_SHOWN_MS);
    if (follow) toBottom();
  }

  function hideTyping() {
    clearTimeout(typingTimer);
    typingTimer = null;
    typing.hidden = true;
  }

  function agentTyped() {
    if (!socket || input.disabled) return;
    if (!input.value.trim()) {
      stopTyping();
      return;
    }
    const now = Date.now();
    if (!typingSent || now - typingAt >= TYPING_RESEND_MS) {
      if (socket.typing(id, true)) {
        typingSent = true;
        typingAt = now;
      }
    }
    clearTimeout(typingIdle);
    typingIdle = setTimeout(stopTyping, TYPING_IDLE_MS);
  }

  function stopTyping() {
    clearTimeout(typingIdle);
    typingIdle = null;
    if (typingSent && socket) socket.typing(id, false);
    typingSent = false;
  }

  // -- seen ---------------------------------------------------------------------------------
  function scheduleSeen() {
    if (seenTimer || !alive) return;
    seenTimer = setTimeout(() => {
      seenTimer = null;
      sendSeen();
    }, SEEN_DELAY_MS);
  }

  function sendSeen() {
    const c = current();
    if (!alive || !socket || !c || document.visibilityState !== "visible") return;
    // reading a waiting chat does not take it: its unread count stays for whoever accepts it
    if (!(c.state === "active" && c.agent_id === store.myId)) return;
    const seq = socket.highestShown(id);
    if (seq > seenSent && socket.seen(id, seq)) {
      seenSent = seq;
      store.markRead(id);
    }
  }

  // -- actions -----------------------------------------------------------------------------
  // toReply: after accepting, move to the reply box (the Accept button that
  // had the focus is gone). Not after the `a` shortcut: the focus stays where
  // it was, so the next shortcut (`r`, to the reply box) is not typed into it.
  async function act(action, { toReply = false } = {}) {
    showError("");
    const button = action === "accept" ? acceptButton : closeButton;
    const focusBefore = document.activeElement;
    button.disabled = true;
    try {
      const summary = await api("POST", `/api/v1/conversations/${id}/${action}`);
      if (!alive) return;
      store.upsert(summary);
      local = { ...local, ...summary, last_seq: Math.max(local.last_seq, summary.last_seq) };
      drawState();
      // to the reply box, unless the agent has since moved on (to the search, say)
      const moved = document.activeElement !== focusBefore && document.activeElement !== document.body;
      if (action === "accept" && !moved) {
        if (toReply) input.focus();
        else if (!focusBefore || focusBefore === document.body || !focusBefore.isConnected
          || focusBefore.hidden) log.focus(); // never left nowhere: the log, where shortcuts work
      }
      if (announce) {
        announce(action === "accept" ? t("You accepted the conversation.") : t("The conversation is closed."));
      }
    } catch (failure) {
      if (alive && !failure.handled) showError(failure.message);
    } finally {
      button.disabled = false;
    }
  }

  async function sendNote(text) {
    send.disabled = true;
    try {
      await notes.post(id, text);
      if (!alive) return;
      input.value = "";
      input.focus();
    } catch (failure) {
      if (alive && !failure.handled) showError(failure.message);
    } finally {
      send.disabled = false;
    }
  }

  function sendReply() {
    showError("");
    if (notes.on()) {
      const text = input.value.trim();
      if (text) sendNote(text);
      return;
    }
    const text = input.value.trim();
    if (!text || input.disabled || !socket) return;
    if ([...text].length > MAX_BODY) {
      showError(t("The message is too long: at most {max} characters.", { max: "4000" }));
      return;
    }
    stopTyping();
    const clientId = socket.message(id, text);
    addPending(clientId, text);
    input.value = "";
    input.focus();
  }

  // -- socket events -------------------------------------------------------------------------
  const onEvent = (e) => {
    if (e.detail.conversation !== id) return;
    addEvent(e.detail);
    scheduleSeen();
    drawState();
  };
  const onTyping = (e) => {
    const f = e.detail;
    if (f.conversation !== id || f.author !== "visitor") return;
    if (f.active) showTyping();
    else hideTyping();
  };
  const onSeen = (e) => {
    const f = e.detail;
    if (f.conversation !== id || f.by !== "visitor") return;
    visitorSeen = Math.max(visitorSeen, f.seq || 0);
    drawSeen();
  };
  const onAck = (e) => {
    const li = pending.get(e.detail.client_id);
    if (!li) return;
    if (socket.highestShown(id) >= e.detail.seq) {
      li.remove();
      pending.delete(e.detail.client_id);
      return;
    }
    li.dataset.status = "sent";
    li.statusText.textContent = t("Sent");
  };
  const onError = (e) => {
    const f = e.detail;
    if (QUIET_ERRORS.has(f.code)) return;
    const li = f.client_id ? pending.get(f.client_id) : null;
    if (f.client_id && !li) return; // another conversation's message
    if (li) {
      li.dataset.status = "failed";
      li.classList.add("is-failed");
      li.statusText.textContent = t("Not sent");
    }
    showError(f.message || t("The server refused that."));
  };
  const onOpen = () => {
    // a new connection: the visitor's typing state is unknown again
    hideTyping();
    typingSent = false;
  };
  const onConversation = (e) => {
    const c = e.detail && e.detail.conversation;
    if (c && c.id === id && c.rating) rating.show(c);
  };
  const onStoreChange = () => {
    if (!local) return;
    const listed = store.conversations.get(id);
    if (listed && listed.last_seq >= local.last_seq) {
      // keep who handles it: a later event alone (the visitor's next message) must not bring back
      // an agent the list already knows is gone (after a transfer away, this tab is no longer theirs)
      local = { ...local, state: listed.state, agent_id: listed.agent_id,
        agent_name: listed.agent_name ?? (listed.agent_id === local.agent_id ? local.agent_name : null) };
    }
    drawState();
    if (labels && listed && listed.labels && JSON.stringify(listed.labels) !== labelSlot.dataset.shown) {
      labelSlot.dataset.shown = JSON.stringify(listed.labels);
      labels.set(listed.labels);
    }
  };
  const onVisibility = () => scheduleSeen();
  let visitorPanel = null;
  const onPage = (e) => {
    const f = e.detail;
    if (f && f.conversation === id && typeof f.page === "string" && visitorPanel) visitorPanel.setPage(f.page);
  };
  // The socket's events this view follows: added once it has loaded, removed
  // by unlisten() (one list, so the two cannot drift apart).
  const SOCKET_LISTENERS = [["event", onEvent], ["typing", onTyping], ["seen", onSeen], ["ack", onAck],
    ["error", onError], ["open", onOpen], ["conversation", onConversation], ["page", onPage]];

  // -- input ------------------------------------------------------------------------------------
  let visitorName = null;
  attachCanned(composer, input, () => ({
    language: local && local.language, visitorName,
    agentName: store.me && store.me.account ? store.me.account.name : "",
  }));
  input.addEventListener("input", () => {
    if (!notes.on()) agentTyped(); // a note is not "typing" for the visitor
  });
  input.addEventListener("keydown", (event) => {
    if (event.key === "Enter" && !event.shiftKey && !event.isComposing && !event.altKey && !event.ctrlKey
      && !event.metaKey) {
      event.preventDefault();
      sendReply();
    }
  });
  input.addEventListener("blur", () => {
    if (!input.value.trim()) stopTyping();
  });
  composer.addEventListener("submit", (event) => {
    event.preventDefault();
    sendReply();
  });
  // a pointer click (detail > 0) or Enter/Space on the focused button goes on to the
  // reply box; the `a` shortcut's click (chat-keys.js) has neither
  acceptButton.addEventListener("click", (event) => act("accept",
    { toReply: event.detail > 0 || document.activeElement === acceptButton }));
  closeButton.addEventListener("click", () => {
    if (confirmClose()) act("close");
  });
  backButton.addEventListener("click", () => back());

  // -- load -------------------------------------------------------------------------------------
  async function load() {
    let detail;
    try {
      detail = await api("GET", `/api/v1/conversations/${id}`);
    } catch (failure) {
      if (!alive || gone) return;
      replace(pane, h("div", { class: "thread-missing" },
        h("p", { class: "message error", role: "alert",
          text: failure.handled ? t("Sign in again.") : failure.message }),
        h("p", {}, h("button", { type: "button", class: "small", text: t("← All conversations"),
          on: { click: () => back() } }))));
      infoPane.replaceChildren();
      return;
    }
    if (!alive || gone) return;
    local = { ...detail.conversation, language: detail.visitor_info && detail.visitor_info.language };
    visitorName = (detail.visitor_info && detail.visitor_info.name) || null;
    store.upsert(detail.conversation);
    labelSlot.dataset.shown = JSON.stringify(detail.conversation.labels || []);
    labels = labelEditor(id, detail.conversation.labels || [], {
      showError,
      changed(next) {
        labelSlot.dataset.shown = JSON.stringify(next);
        const listed = store.conversations.get(id);
        if (listed) store.upsert({ ...listed, labels: next });
      },
    });
    labelSlot.replaceChildren(labels.el);
    const evs = (detail.events || []).slice().sort((a, b) => a.seq - b.seq);
    replace(pane, body);
    for (const ev of evs) addEvent(ev);
    visitorPanel = renderVisitorInfo(infoPane, detail, { open });
    rating.show(detail.rating);
    transcripts.show(detail.transcript_mails);
    drawState();
    toBottom();
    if (socket) {
      for (const [type, listener] of SOCKET_LISTENERS) socket.addEventListener(type, listener);
      const lastSeq = evs.length ? evs[evs.length - 1].seq : 0;
      socket.subscribe(id, Math.max(lastSeq, 0));
    }
    store.addEventListener("change", onStoreChange);
    document.addEventListener("visibilitychange", onVisibility);
    scheduleSeen();
    if (focus) heading.focus();
  }

  // -- no longer available (docs/protocol.md "Access changes") ------------------------------------
  // A restriction, or a membership or role gone: the server stopped sending
  // this conversation. Nothing of it stays on screen, and nothing more is sent
  // for it (not even "stopped typing": the server would refuse it).
  let gone = false;
  function onHidden(event) {
    if (!alive || gone || !event.detail || event.detail.conversation !== id) return;
    gone = true;
    clearTimeout(typingIdle);
    clearTimeout(typingTimer);
    clearTimeout(seenTimer);
    typingSent = false;
    unlisten();
    replace(pane, h("div", { class: "thread-missing", testid: "thread-gone" },
      h("p", { class: "message error", role: "alert", text: t("This conversation is no longer available to you.") }),
      h("p", {}, h("button", { type: "button", class: "small", text: t("← All conversations"),
        on: { click: () => back() } }))));
    infoPane.replaceChildren();
  }

  function unlisten() {
    if (socket) {
      for (const [type, listener] of SOCKET_LISTENERS) socket.removeEventListener(type, listener);
    }
    store.removeEventListener("change", onStoreChange);
    document.removeEventListener("visibilitychange", onVisibility);
  }

  if (socket) socket.addEventListener("hidden", onHidden);
  store.setOpen(id);
  load();

  return {
    id,
    focus() {
      heading.focus();
    },
    destroy() {
      if (!alive) return;
      alive = false;
      stopTyping();
      clearTimeout(typingTimer);
      clearTimeout(seenTimer);
      unlisten();
      transcripts.destroy();
      if (socket) {
        socket.removeEventListener("hidden", onHidden);
        socket.unsubscribe(id);
      }
      if (store.openHere === id) store.setOpen(null);
      if (logResized) logResized.disconnect();
    },
  };
}
