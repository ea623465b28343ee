"""The widget's socket, ``/ws/visitor``: a visitor's chat (hello with a token
or a new visitor, messages under the rate limits, typing, seen, end), and the
per-address connection limit checked before the handshake is answered."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from jutella.accounts.errors import AccountError
from jutella.accounts.throttle import Limit
from jutella.chat import actions as chat
from jutella.chat import prechat
from jutella.chat import sites
from jutella.channels import PRESENCE_CHANNEL, waiting_channel
from jutella.chat.metadata import collect
from jutella.chat.presence import current_offer, on_duty
from jutella.chat.queue import queue_position, queue_word, waiting_in
from jutella.i18n import gettext, negotiate
from jutella.runtime import Runtime

from . import protocol as P
from .connection import Connection, Socket, origin_allowed

log = logging.getLogger(__name__)

# A visitor's page reports are written at most this often (seconds) per
# connection; reports in between are coalesced: the newest is written when
# the interval is up (a single-page site can change its address many times
# a second).
PAGE_INTERVAL = 1.0


class VisitorConnection(Connection):
    role = "visitor"

    def __init__(self, rt: Runtime, ws: Socket, lang: str):
        super().__init__(rt, ws, lang)
        self.visitor_id: int | None = None
        self._limit_key: str | None = None
        self.meta = None
        self.site: str | None = None  # the site the widget is on (its hello's page): its pre-chat form
        self.site_id: int | None = None  # the site the widget is on (chat/sites.py site_of)
        self.site_departments: frozenset[int] = frozenset()  # the departments its widget offers; empty: all
        self.closed_conversation: int | None = None
        self.waiting_on: str | None = None  # the hub channel of the queue the followed chat waits in
        self._page: str | None = None  # the newest page report not yet written
        self._page_task: asyncio.Task | None = None  # runs only while reports are due

    def initial_channels(self) -> list[str]:
        return [PRESENCE_CHANNEL]

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

    def report_page(self, page: str | None) -> None:
        """The visitor is on ``page`` now: write it (chat.record_page) at once
        when none was written in the last PAGE_INTERVAL, else when the
        interval is up, then only the newest. No task outlives the reports."""
        if not page:
            return
        self._page = page
        if self._page_task is None or self._page_task.done():
            self._page_task = asyncio.create_task(self._write_pages())

    async def _write_pages(self) -> None:
        while self._page is not None:
            page, self._page = self._page, None
            conversation = self.proto.conversation
            if conversation is not None and conversation != self.closed_conversation and self.visitor_id:
                try:
                    await chat.record_page(self.rt, visitor_id=self.visitor_id, conversation_id=conversation,
                                           page=page)
                except Exception as exc:  # a page report is not worth the connection
                    log.warning("a page report was not stored: %s", type(exc).__name__)
            await asyncio.sleep(PAGE_INTERVAL)

    async def closed(self) -> None:
        if self._page_task is not None:
            self._page_task.cancel()

    async def follow(self, conversation: int, last_seq: int) -> None:
        current = self.proto.conversation
        if current is not None and current != conversation:
            self.sub.remove(chat.conv_channel(current))
        self.sub.add(chat.conv_channel(conversation))  # subscribe first, then read: nothing falls between
        self.proto.follow(conversation, last_seq)
        self.proto.begin_replay(conversation)
        await self.replay(conversation, self.proto.delivered(conversation))
        await self.tell_queue()

    # -- waiting: the place in the queue (chat/queue.py) ---------------------------------
    async def tell_queue(self) -> None:
        """At join, resume and each state change of the followed chat: while it
        waits, follow its queue's channel (subscribed before the read, so no
        change falls between) and tell the visitor their place; otherwise
        leave the channel."""
        conv = self.proto.conversation
        waiting, department = await waiting_in(self.rt, conv) if conv is not None else (False, None)
        channel = waiting_channel(department) if waiting else None
        if channel != self.waiting_on:
            if self.waiting_on is not None:
                self.sub.remove(self.waiting_on)
            if channel is not None:
                self.sub.add(channel)
            self.waiting_on = channel
        if channel is not None:
            word = await queue_word(self.rt, department)
            self.told_queue(word.waiting, word.typical_wait_s)

    def told_queue(self, order: Any, typical: Any) -> None:
        """A queue's order (the hub's word, or read at join): tell our own place only."""
        conv = self.proto.conversation
        position = queue_position(order, conv) if conv is not None and isinstance(order, list) else None
        if position is not None and self.proto.state == "open":
            self.proto.queue(conv, position, typical if type(typical) is int else None)

    async def resync(self) -> None:
        await super().resync()
        await self.tell_queue()  # the hub may have lost queue changes too

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
            self.site_id = await sites.site_of(rt, self.meta.page_url)
            self.site_departments = await sites.departments_offered(rt, self.meta.page_url)
            conv = await chat.latest_conversation_of(rt, visitor.id) if token is None else None
            welcome: dict[str, Any] = {"conversation": None, "last_seq": 0, **await current_offer(rt)}
            self.site = prechat.site_of(self.meta.page_url)
            form = prechat.widget_config(await prechat.form_for(rt, self.site), self.lang)
            if form is not None:  # the site's pre-chat form, shown before a chat starts (docs/prechat.md)
                welcome["prechat"] = form
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
                if conv.state != chat.CLOSED:  # a returning visitor's chat follows them from page to page
                    self.report_page(cmd.page)
        elif self.visitor_id is None:
            return
        elif isinstance(cmd, P.SendMessage):
            started = self.loop.time()
            refusal = await self.over_limits()
            if refusal:
                self.proto.error("rate_limited", refusal, cmd.client_id)
                return
            try:
                answers = None
                if self.proto.conversation is None or self.proto.conversation == self.closed_conversation:
                    # it may start a chat: the site's pre-chat form decides what it stores (chat/prechat.py)
                    answers = prechat.check_answers(await prechat.form_for(rt, self.site), cmd.prechat, self.lang,
                                                    await on_duty(rt))
                posted = await chat.post_visitor_message(rt, visitor_id=self.visitor_id, client_id=cmd.client_id,
                                                         body=cmd.body, meta=self.meta, department=cmd.department,
                                                         conversation=self.proto.conversation, prechat=answers,
                                                         site_id=self.site_id, site_departments=self.site_departments)
            except AccountError as exc:
                self.error(exc, cmd.client_id)
                return
            if self.proto.conversation != posted.conversation.id:
                # the first message started a conversation: follow it from the start
                await self.follow(posted.conversation.id, 0)
            self.proto.ack(cmd.client_id, posted.conversation.id, posted.event.seq)
            rt.metrics.message_seconds.observe(self.loop.time() - started)
            self._messages_in.inc()
            if posted.conversation_created and rt.settings.auto_assign:
                await chat.auto_assign(rt, posted.conversation.id)
        elif isinstance(cmd, P.Typing):
            if self.proto.conversation:
                await chat.typing(rt, conversation_id=self.proto.conversation, author="visitor", active=cmd.active)
        elif isinstance(cmd, P.Seen):
            if self.proto.conversation:
                await chat.mark_seen(rt, conversation_id=self.proto.conversation, by="visitor", seq=cmd.seq)
        elif isinstance(cmd, P.PageView):
            self.report_page(cmd.page)
        elif isinstance(cmd, P.EndChat):
            if self.proto.conversation:
                await chat.close(rt, conversation_id=self.proto.conversation, by="visitor")

    async def on_hub(self, channel: str, event: dict[str, Any]) -> None:
        kind = event.get("type")
        if kind == "event":
            self.note_state(event)
            self.live_event(event)
            if event.get("kind") == "state" and event.get("conversation") == self.proto.conversation:
                await self.tell_queue()  # taken, closed, or passed on to another queue
        elif kind == "queue":
            if channel == self.waiting_on:
                self.told_queue(event.get("waiting"), event.get("typical_wait_s"))
        elif kind == "presence":
            if self.proto.state == "open":
                self.proto.send(event)
        elif kind in ("typing", "seen"):
            other = event.get("author", event.get("by"))
            if other == "agent" and event.get("conversation") == self.proto.conversation:
                self.proto.send(event)


async def visitor_ws(rt: Runtime, ws: Socket) -> None:
    if not await origin_allowed(ws, rt, widget=True):
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
