"""The widget's socket, ``/ws/visitor``: a visitor's chat (hello with a token
or a new visitor, messages under the rate limits, typing, seen, end), and the
per-address connection limit checked before the handshake is answered."""

from __future__ import annotations

from typing import Any

from jutella.accounts.errors import AccountError
from jutella.accounts.throttle import Limit
from jutella.chat import actions as chat
from jutella.chat.metadata import collect
from jutella.chat.presence import current_offer
from jutella.i18n import gettext, negotiate
from jutella.runtime import Runtime

from . import protocol as P
from .connection import Connection, Socket, origin_allowed


class VisitorConnection(Connection):
    role = "visitor"

    def __init__(self, rt: Runtime, ws: Socket, lang: str):
        super().__init__(rt, ws, lang)
        self.visitor_id: int | None = None
        self._limit_key: str | None = None
        self.meta = None
        self.closed_conversation: int | None = None

    def initial_channels(self) -> list[str]:
        return [chat.PRESENCE_CHANNEL]

    async def over_limits(self) -> str | None:
        """Messages a minute per visitor; conversations an hour per browser
        and per client address (a client that drops its visitor token is
        still one address). Counted and checked in one step (the throttle's
        reserve), all or nothing: a refused message counts nowhere.
        Returns the message to show, or None. Resends of stored messages are
        not refused here: they are cheap, idempotent and must get their ack."""
        st, throttle = self.rt.settings, self.rt.throttle
        if self._limit_key is None:  # once per visitor: an HMAC per message showed in the profile
            self._limit_key = throttle.key("visitor-messages", str(self.visitor_id))
        limits: list[tuple[Limit, str]] = []  # a limit that is off counts nothing (and keeps nothing)
        if st.max_messages_per_minute:
            limits.append((Limit(self._limit_key, 60, st.max_messages_per_minute),
                           "You are sending messages too fast. Wait a moment and try again."))
        if self.proto.conversation is None or self.proto.conversation == self.closed_conversation:
            if st.max_conversations_per_hour:
                limits.append((Limit(throttle.key("visitor-conversations", str(self.visitor_id)), 3600,
                                     st.max_conversations_per_hour),
                               "Too many new chats from this browser. Try again later."))
            if st.max_conversations_per_client:
                limits.append((Limit(throttle.key("conversations-client", self.ws.client_host or "-"), 3600,
                                     st.max_conversations_per_client),
                               "Too many new chats from this network. Try again later."))
        if not limits:
            return None
        reservation = await throttle.reserve(*(limit for limit, _ in limits))
        if reservation or reservation.refused is None:
            return None
        return gettext(self.lang, limits[reservation.refused][1])

    def note_state(self, frame: dict[str, Any]) -> None:
        """Remember when the followed conversation closes (its next message starts a new one)."""
        if frame.get("kind") == "state" and frame.get("state") == "closed":
            self.closed_conversation = frame.get("conversation")

    async def follow(self, conversation: int, last_seq: int) -> None:
        current = self.proto.conversation
        if current is not None and current != conversation:
            self.sub.remove(chat.conv_channel(current))
        self.sub.add(chat.conv_channel(conversation))  # subscribe first, then read: nothing falls between
        self.proto.follow(conversation, last_seq)
        self.proto.begin_replay(conversation)
        await self.replay(conversation, self.proto.delivered(conversation))

    async def handle(self, cmd: Any) -> None:
        rt = self.rt
        if isinstance(cmd, P.VisitorHello):
            self.lang = negotiate(None, cmd.lang) if cmd.lang in ("fi", "en", "sv") else self.lang
            token = None
            if cmd.token:
                visitor = await chat.visitor_by_token(rt, cmd.token)
                if visitor is None:
                    self.proto.close(P.CLOSE_UNAUTHORIZED, "unknown visitor")
                    return
            else:
                visitor, token = await chat.new_visitor(rt)
            self.visitor_id, self._limit_key = visitor.id, None
            self.meta = collect(self.ws.headers.get("user-agent"), cmd.page, cmd.referrer, cmd.lang)
            conv = await chat.latest_conversation_of(rt, visitor.id) if token is None else None
            welcome: dict[str, Any] = {"conversation": None, "last_seq": 0, **await current_offer(rt)}
            if token:
                welcome["token"] = token
            else:
                await chat.touch_visitor(rt, visitor.id)
            if conv is not None:
                welcome["conversation"] = {"id": conv.id, "state": conv.state, "agent_name": None}
                welcome["last_seq"] = conv.last_seq
            self.proto.welcome(**welcome)
            if conv is not None:
                # a client claiming more than exists would otherwise miss what comes next
                await self.follow(conv.id, min(cmd.last_seq, conv.last_seq))
        elif self.visitor_id is None:
            return
        elif isinstance(cmd, P.SendMessage):
            started = self.loop.time()
            refusal = await self.over_limits()
            if refusal:
                self.proto.error("rate_limited", refusal, cmd.client_id)
                return
            try:
                posted = await chat.post_visitor_message(rt, visitor_id=self.visitor_id, client_id=cmd.client_id,
                                                         body=cmd.body, meta=self.meta, department=cmd.department,
                                                         conversation=self.proto.conversation)
            except AccountError as exc:
                self.error(exc, cmd.client_id)
                return
            if self.proto.conversation != posted.conversation.id:
                # the first message started a conversation: follow it from the start
                await self.follow(posted.conversation.id, 0)
            self.proto.ack(cmd.client_id, posted.conversation.id, posted.event.seq)
            rt.metrics.message_seconds.observe(self.loop.time() - started)
            rt.metrics.messages_in.labels("visitor").inc()
            if posted.conversation_created and rt.settings.auto_assign:
                await chat.auto_assign(rt, posted.conversation.id)
        elif isinstance(cmd, P.Typing):
            if self.proto.conversation:
                await chat.typing(rt, conversation_id=self.proto.conversation, author="visitor", active=cmd.active)
        elif isinstance(cmd, P.Seen):
            if self.proto.conversation:
                await chat.mark_seen(rt, conversation_id=self.proto.conversation, by="visitor", seq=cmd.seq)
        elif isinstance(cmd, P.EndChat):
            if self.proto.conversation:
                await chat.close(rt, conversation_id=self.proto.conversation, by="visitor")

    async def on_hub(self, channel: str, event: dict[str, Any]) -> None:
        kind = event.get("type")
        if kind == "event":
            self.note_state(event)
            self.live_event(event)
        elif kind == "presence":
            if self.proto.state == "open":
                self.proto.send(event)
        elif kind in ("typing", "seen"):
            other = event.get("author", event.get("by"))
            if other == "agent" and event.get("conversation") == self.proto.conversation:
                self.proto.send(event)


async def visitor_ws(rt: Runtime, ws: Socket) -> None:
    if not origin_allowed(ws, rt, widget=True):
        await ws.close(1008)  # before accept: the handshake is refused with HTTP 403
        return
    # open widget sockets per client address: counted for all workers when Redis is set
    slot = await rt.throttle.take_slot(rt.throttle.key("ws-client", ws.client_host or "-"),
                                       rt.settings.max_connections_per_client)
    if slot is None:
        await ws.deny(429, "Too many chat connections from this address. Close some tabs and try again.")
        return
    try:
        await ws.accept()
        lang = negotiate(ws.headers.get("accept-language"))
        await VisitorConnection(rt, ws, lang).run()
    finally:
        await rt.throttle.give_slot(slot)
