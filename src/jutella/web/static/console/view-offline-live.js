// Live news for the offline-message inbox, from the tab's one agent socket.
//
// The server sends agents {"type":"offline","message":{summary},"new":bool}
// when a message arrives or changes, and {"type":"outbox","outbox":{id,state,
// error,offline_message_id}} when a reply's mail changes state. ChatSocket
// (chat-socket.js) hands its views only the chat's frame types, so this module
// listens on the same WebSocket for these two: no second connection. It
// follows the socket across reconnects (its "open" event, after every
// welcome) and across sign-ins (chatStore's "started").
//
// onOfflineNews(fn) calls fn(frame) for every offline and outbox frame, and
// fn({type: "reconnected"}) after a reconnect (frames may have been missed).
// It returns the function that stops it.

import { chatStore } from "./chat-store.js";

const listeners = new Set();
const sockets = new WeakSet(); // ChatSocket objects followed
const wires = new WeakSet(); // WebSocket objects listened to

function tell(frame) {
  for (const fn of [...listeners]) {
    try {
      fn(frame);
    } catch (error) {
      console.error(error);
    }
  }
}

function listenTo(socket) {
  const ws = socket.ws;
  if (!ws || wires.has(ws)) return;
  wires.add(ws);
  ws.addEventListener("message", (message) => {
    if (socket.ws !== ws || typeof message.data !== "string") return; // an old connection's straggler
    if (!message.data.includes('"offline"') && !message.data.includes('"outbox"')) return;
    let frame;
    try {
      frame = JSON.parse(message.data);
    } catch {
      return;
    }
    if (frame && (frame.type === "offline" || frame.type === "outbox")) tell(frame);
  });
}

function follow(socket) {
  if (!socket || sockets.has(socket)) return;
  sockets.add(socket);
  socket.addEventListener("open", (event) => {
    listenTo(socket);
    if (event.detail && event.detail.reconnected) tell({ type: "reconnected" });
  });
  listenTo(socket);
}

chatStore.addEventListener("started", () => follow(chatStore.socket));

export function onOfflineNews(fn) {
  follow(chatStore.socket);
  listeners.add(fn);
  return () => listeners.delete(fn);
}
