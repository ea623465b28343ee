"""The WebSocket endpoints: thin asyncio code that moves bytes between the
socket, the sans-I/O :class:`~jutella.realtime.protocol.Protocol`, the chat
actions and the hub.

Each connection reads on the server's own task (frames -> protocol ->
actions) and writes on one task of its own (hub events -> protocol -> frames
-> socket), with a timer for heartbeats (memory per connection matters at
10,000 of them; realtime/wsserver.py serves the sockets without ASGI). The
hub subscription is made *before* any replay from the database, so an event
committed meanwhile arrives live and the protocol's watermark removes the
overlap.
"""

from __future__ import annotations

import asyncio
import logging
import secrets
from collections.abc import Mapping, Sequence
from typing import Any, Protocol

from jutella.accounts import actions as accounts
from jutella.accounts.actions import SESSION_COOKIE
from jutella.accounts.errors import AccountError
from jutella.chat import actions as chat
from jutella.chat import access
from jutella.chat.departments import channels_for
from jutella.chat.metadata import collect
from jutella.chat.presence import current_choice, publish_presence
from jutella.chat.revocation import ACCESS_CHANGED, read_access_version
from jutella.chat.system_text import system_text
from jutella.faults import CHAT_FAULTS, FAULTS, fault_log_line
from jutella.runtime import Runtime
from jutella.store.db import storage_fault
from jutella.i18n import gettext, negotiate

from . import protocol as P

log = logging.getLogger("jutella.realtime")
MAX_BACKLOG = 20_000  # frames queued for one slow client before it is closed
SEND_BATCH = 64  # frames written to a socket together (one system call)
SESSION_TOUCH_EVERY = 60.0
VISIBILITY_TTL = 5.0  # seconds an agent connection trusts a "may see this conversation"
# An agent's list updates go out at most this often (seconds), together; the
# first after a quiet spell at once. Messages themselves are never held.
LIST_UPDATE_INTERVAL = 0.1

class Socket(Protocol):
    """What the endpoints need of a WebSocket: realtime/wsserver.ChatSocket
    (how jutella serves) and realtime/asgi.AsgiSocket (under any ASGI server)."""

    headers: Mapping[str, str]  # lower-case names: origin, user-agent, accept-language, cookie
    client_host: str | None

    @property
    def open(self) -> bool: ...  # accepted, and neither side has closed
    async def accept(self) -> None: ...
    async def deny(self, status: int, text: str) -> None: ...  # refuse the handshake with an HTTP status
    async def close(self, code: int = 1000, reason: str = "") -> None: ...  # before accept: HTTP 403
    async def receive(self) -> str | bytes | None: ...  # None: closed
    async def send_many(self, frames: Sequence[bytes]) -> bool: ...  # UTF-8 text frames; False: closed


def origin_allowed(ws: Socket, rt: Runtime, *, widget: bool) -> bool:
    origin = (ws.headers.get("origin") or "").lower().rstrip("/")
    allowed = {rt.settings.public_origin}
    if widget:
        allowed.update(rt.settings.allowed_origins)
    return origin in allowed


class Wake:
    """A connection's wake-up flag: what an asyncio.Event does for one waiter,
    in 56 bytes instead of an Event's 700 (a deque of waiters and a dict),
    ten thousand times over. The future exists only while the task waits."""

    __slots__ = ("_flag", "_future")

    def __init__(self) -> None:
        self._flag = False
        self._future: asyncio.Future | None = None

    def set(self) -> None:
        self._flag = True
        future = self._future
        if future is not None and not future.done():
            future.set_result(None)

    def clear(self) -> None:
        self._flag = False

    async def wait(self) -> None:
        if self._flag:
            return
        self._future = asyncio.get_running_loop().create_future()
        try:
            await self._future
        finally:
            self._future = None


class Connection:
    role: str = "visitor"

    def note_state(self, frame: dict[str, Any]) -> None:
        return None

    def __init__(self, rt: Runtime, ws: Socket, lang: str):
        self.rt = rt
        self.ws = ws
        self.lang = lang
        self.loop = asyncio.get_running_loop()
        self.proto = P.Protocol(self.role, self.loop.time())  # type: ignore[arg-type]
        self._out: list[bytes] = []  # frames for the outbound task (a list: a deque costs 624 bytes empty)
        self._wake = Wake()
        self._timer: asyncio.TimerHandle | None = None
        self._sending = False  # a frame is on its way to the socket (the peer may not be reading it yet)
        self.sub: Any = None
        self._frames_out = rt.metrics.frames_out.labels(self.role)

    # -- output ------------------------------------------------------------------
    async def flush(self) -> None:
        self._flush()

    def _flush(self) -> None:
        """Hand what the protocol queued to the outbound task. Never waits on
        the socket: a client that does not read must not stop this connection
        from reading (two peers each blocked writing to the other would wait
        forever). A client that falls too far behind is closed; it resumes
        from its last seq."""
        frames = self.proto.data_to_send()
        if frames:
            self._frames_out.inc(len(frames))
            self._out += frames
            if len(self._out) > MAX_BACKLOG:
                self._out.clear()
                self.proto.close(1013, "too far behind; reconnect and resume")
        if frames or self.proto.close_code is not None:
            self._wake.set()

    async def outbound(self) -> None:
        """The connection's one task of its own (the reader runs on the
        server's): hub events -> protocol -> frames, then frames -> socket.
        Both wait on the same wake-up (the subscription calls it on delivery,
        _flush on new frames), which keeps an idle connection down to two
        tasks and no queues."""
        sub = self.sub
        while True:
            await self._wake.wait()
            self._wake.clear()
            for channel, event in sub.take(100):
                if self.proto.close_code is not None:
                    break
                try:
                    if event.get("type") == "_resync":
                        await self.resync()
                        if self.role == "agent" and self.proto.state == "open":
                            self.proto.send({"type": "resync"})  # the console reloads its lists
                    else:
                        await self.on_hub(channel, event)
                    await self.run_pending()
                except Exception as exc:
                    if not self.refuse_for_storage(exc):
                        raise
                self._flush()
            self.send_coalesced()
            self._flush()
            if sub.pending and self.proto.close_code is None:
                self._wake.set()  # write what is ready, then come back for the rest
            while self._out:
                # at most SEND_BATCH frames a write: a client that does not
                # read is held back by the transport's high-water mark, and
                # what it has not taken stays in _out, counted by _flush
                frames = self._out[:SEND_BATCH]
                del self._out[:SEND_BATCH]
                self._sending = True
                if not await self.ws.send_many(frames):
                    return  # the socket is closing or gone: nothing more to send
                self._sending = False
            if self.proto.close_code is not None:
                if self.ws.open:
                    await self.ws.close(self.proto.close_code, self.proto.close_reason[:100])
                return

    def send_coalesced(self) -> None:
        """Frames that on_hub held back to send together (agents' list updates)."""
        return None

    def localise(self, frame: dict[str, Any]) -> dict[str, Any]:
        data = frame.get("data")
        if frame.get("author") == "system" and data and "key" in data:
            frame = {**frame, "body": system_text(data["key"], self.role, self.lang, data.get("name"))}
            frame.pop("data", None)
        return frame

    def shown(self, frame: dict[str, Any]) -> dict[str, Any]:
        """What this client sees of an event: a visitor moves silently past staff-only ones."""
        if self.role == "visitor" and frame.get("kind") in chat.STAFF_ONLY_KINDS:
            return P.HIDDEN
        return self.localise(frame)

    def error(self, exc: AccountError, client_id: str | None = None) -> None:
        code = exc.code if exc.code in P.ERROR_CODES else "forbidden"
        self.proto.error(code, gettext(self.lang, exc.message, **exc.params), client_id)

    # -- replay ------------------------------------------------------------------
    async def replay(self, conversation: int, after_seq: int) -> None:
        try:
            for frame in await chat.events_since(self.rt, conversation, after_seq):
                self.note_state(frame)
                self.proto.event(conversation, frame["seq"], self.shown(frame))
        finally:
            self.proto.end_replay(conversation)
        await self.run_pending()

    async def run_pending(self) -> None:
        for _ in range(10):
            pending = self.proto.pending_commands()
            if not pending:
                return
            for cmd in pending:
                if isinstance(cmd, P.FetchSince):
                    await self.replay(cmd.conversation, cmd.after_seq)

    # -- tasks -------------------------------------------------------------------
    async def reader(self) -> None:
        while True:
            data = await self.ws.receive()
            if data is None:  # the client closed, or we did
                return
            for cmd in self.proto.receive(data, self.loop.time()):
                try:
                    await self.handle(cmd)
                except Exception as exc:
                    if not self.refuse_for_storage(exc, cmd):
                        raise
            try:
                await self.run_pending()
            except Exception as exc:
                if not self.refuse_for_storage(exc):
                    raise
            await self.flush()
            if self.proto.close_code is not None:
                return

    def refuse_for_storage(self, exc: Exception, cmd: Any = None) -> bool:
        """The database is locked, full or unreachable (store/db.StorageFault):
        the command's transaction rolled back, so nothing was stored and
        nothing is acked. A message gets an error frame with its client_id
        (the client may resend it; a stored client_id is stored once); the
        connection stays open. Before the welcome, or when a catch-up read
        failed, the connection closes with 1013 ("try again later") and the
        client reconnects and resumes from its last seq. Returns False for
        any other exception."""
        fault = storage_fault(exc)
        if fault is None:
            return False
        log.warning(fault_log_line(fault.kind, f"a {self.role} connection ({type(cmd).__name__})"))
        if cmd is None or isinstance(cmd, (P.VisitorHello, P.AgentHello)) or self.proto.state != "open":
            self.proto.close(P.CLOSE_TRY_AGAIN, "the database is unavailable; reconnect")
            return True
        self.proto.error(FAULTS[fault.kind][1], gettext(self.lang, CHAT_FAULTS[fault.kind]),
                         getattr(cmd, "client_id", None))
        return True

    def _arm_clock(self) -> None:
        """Heartbeats and timeouts run from a timer, not a task of their own."""
        now = self.loop.time()
        when = max(now + 0.05, min(now + 5.0, self.proto.next_deadline()))
        self._timer = self.loop.call_at(when, self._on_clock)

    def _on_clock(self) -> None:
        if self.proto.close_code is not None:
            return
        self.proto.tick(self.loop.time(), backlog=bool(self._out) or self._sending)
        self._flush()
        self._arm_clock()

    async def run(self) -> None:
        gauge = self.rt.metrics.connections.labels(self.role)
        gauge.inc()
        try:
            await self._run()
        finally:
            gauge.dec()

    async def _run(self) -> None:
        """Read on this (the server's) task; write on one task of our own.

        Reading here rather than on a task of its own saves a task and an
        asyncio.wait a connection (3 KiB at ten thousand of them). When the
        outbound task or an extra one ends first (the protocol closed the
        connection, the session ended), it interrupts the read by cancelling
        this task, which then takes the cancellation back and closes."""
        async with self.rt.hub.subscribe(self.initial_channels(), self._wake.set) as sub:
            self.sub = sub
            self._arm_clock()
            me = asyncio.current_task()
            outbound = asyncio.create_task(self.outbound())
            helpers = [outbound, *(asyncio.create_task(t) for t in self.extra_tasks())]
            reading, interrupted = True, False

            def interrupt(_task: asyncio.Task) -> None:
                nonlocal interrupted
                if reading and not interrupted and me is not None:
                    interrupted = True
                    me.cancel()

            for task in helpers:
                task.add_done_callback(interrupt)
            try:
                try:
                    await self.reader()
                except asyncio.CancelledError:
                    if not interrupted or me is None:
                        raise
                    me.uncancel()
                except Exception as exc:
                    log.warning("connection ended by an error: %s", type(exc).__name__)
                finally:
                    reading = False
                if not outbound.done() and self.proto.close_code is not None:
                    self._wake.set()
                    await asyncio.wait([outbound], timeout=5)  # the last frames and the close frame go out
                for task in helpers:
                    if task.done() and not task.cancelled() and task.exception():
                        log.warning("connection ended by an error: %s", type(task.exception()).__name__)
            finally:
                if self._timer is not None:
                    self._timer.cancel()
                for task in helpers:
                    task.remove_done_callback(interrupt)
                    task.cancel()
                await asyncio.gather(*helpers, return_exceptions=True)
                await self.closed()
                if self.ws.open:
                    await self.ws.close(self.proto.close_code or 1000)

    def initial_channels(self) -> list[str]:
        return []

    def extra_tasks(self) -> list[Any]:
        return []

    async def closed(self) -> None:
        return None

    async def handle(self, cmd: Any) -> None:
        raise NotImplementedError

    async def on_hub(self, channel: str, event: dict[str, Any]) -> None:
        raise NotImplementedError

    async def resync(self) -> None:
        """The hub lost notifications (Redis reconnected): read what each
        followed conversation may have missed from the database."""
        for conversation in self.proto.tracked():
            if not self.proto.is_replaying(conversation):
                self.proto.begin_replay(conversation)
                await self.replay(conversation, self.proto.delivered(conversation))

    def live_event(self, event: dict[str, Any]) -> None:
        conv = event["conversation"]
        if self.proto.is_tracking(conv):
            self.proto.event(conv, event["seq"], self.shown(event), live=True)


# -- visitors ------------------------------------------------------------------------
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
        """Messages a minute per visitor, conversations an hour per browser.
        Returns the message to show, or None. Resends of stored messages are
        not refused here: they are cheap, idempotent and must get their ack."""
        st, throttle = self.rt.settings, self.rt.throttle
        if self._limit_key is None:  # once per visitor: an HMAC per message showed in the profile
            self._limit_key = throttle.key("visitor-messages", str(self.visitor_id))
        key = self._limit_key
        if st.max_messages_per_minute and await throttle.count(key, 60) >= st.max_messages_per_minute:
            return gettext(self.lang, "You are sending messages too fast. Wait a moment and try again.")
        if self.proto.conversation is None or self.proto.conversation == self.closed_conversation:
            ckey = throttle.key("visitor-conversations", str(self.visitor_id))
            if st.max_conversations_per_hour:  # a limit that is off counts nothing (and keeps nothing)
                if await throttle.count(ckey, 3600) >= st.max_conversations_per_hour:
                    return gettext(self.lang, "Too many new chats from this browser. Try again later.")
                await throttle.hit(ckey, 3600)
        if st.max_messages_per_minute:
            await throttle.hit(key, 60)
        return None

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
            welcome: dict[str, Any] = {"conversation": None, "agents_online": rt.presence.any_online(),
                                       "last_seq": 0, "departments": await current_choice(rt)}
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


# -- agents ----------------------------------------------------------------------------
class AgentConnection(Connection):
    role = "agent"

    def __init__(self, rt: Runtime, ws: Socket, lang: str, account, session):
        super().__init__(rt, ws, lang)
        self.account = account
        self.session = session
        self.conn_id = secrets.token_hex(8)
        self._visible: dict[int, float] = {}  # conversation -> until when a "may see" holds
        self._listed: dict[int, dict[str, Any]] = {}  # list updates held for send_coalesced
        self._list_sent_at = float("-inf")
        self._list_timer: asyncio.TimerHandle | None = None
        self.presence_state = "online"
        self.dept_channels: set[str] = set()  # department queues (set by agent_ws before run)
        self.access_version = 0  # the access version the last check saw (set by agent_ws before run)

    def initial_channels(self) -> list[str]:
        return [chat.AGENTS_CHANNEL, chat.agent_channel(self.account.id), f"account:{self.account.id}",
                *sorted(self.dept_channels)]

    async def follow_departments(self) -> None:
        """Memberships changed: subscribe to the department queues now in effect."""
        wanted = await channels_for(self.rt, self.account.id, "admin" in self.account.role_names)
        for channel in self.dept_channels - wanted:
            self.sub.remove(channel)
        for channel in wanted - self.dept_channels:
            self.sub.add(channel)
        self.dept_channels = wanted

    def extra_tasks(self) -> list[Any]:
        return [self.keep_session()]

    async def keep_session(self) -> None:
        """An open console keeps its session alive (and notices when it ends).
        It also notices an access change whose hub event it never got (the
        event is published after the commit, and a publish can fail): the
        access version moved, so what it follows is checked again."""
        while True:
            await asyncio.sleep(SESSION_TOUCH_EVERY)
            if not await accounts.touch(self.rt, self.session.id):
                self.proto.close(P.CLOSE_UNAUTHORIZED, "session ended")
                await self.flush()
                return
            if self.proto.state == "open" and await self._access_moved():
                await self.revalidate(None)
                self._flush()

    async def _access_moved(self) -> bool:
        """Whether the access version moved since this socket last checked
        (one primary-key read)."""
        async with self.rt.db.connection() as conn:
            return await read_access_version(conn) != self.access_version

    async def resync(self) -> None:
        """The hub lost notifications: an access change among them, perhaps
        (the access version says), so check that before the catch-up reads."""
        if self.proto.state == "open" and await self._access_moved():
            await self.revalidate(None)
        await super().resync()

    async def revalidate(self, named: list[int] | None) -> None:
        """Who may see what changed (docs/protocol.md, "Access changes"):
        re-read the account, forget every cached "may see", check again each
        conversation this socket follows, stop following (and tell the
        console ``hidden``) those it may no longer see, and follow the
        department queues now in effect. ``named``: the only conversations
        whose visibility changed (a restriction names them): only those are
        checked, and the account is not re-read. The outbound task awaits
        this before it handles the next hub event, so a message published
        after the change reaches no socket that is no longer allowed it."""
        if named is None:
            from jutella.store.models import StaffAccount

            async with self.rt.db.reader() as s:
                self.access_version = await read_access_version(s)
                account = await s.get(StaffAccount, self.account.id)  # its roles load with it (selectin)
            if account is None or account.disabled_at is not None or "agent" not in account.role_names:
                self.proto.close(4403, "role removed" if account is not None and account.disabled_at is None
                                 else "account disabled")
                return
            self.account = account
        self._visible.clear()
        followed = set(self.proto.tracked())
        followed |= {int(c[5:]) for c in getattr(self.sub, "channels", ()) if c.startswith("conv:")}
        check = followed if named is None else set(named)
        still_seen = False
        for conversation in sorted(check):
            if await self._may_see(conversation):
                still_seen = True
                continue
            self._listed.pop(conversation, None)
            if conversation in followed:
                self.sub.remove(chat.conv_channel(conversation))
            if self.proto.state == "open":
                self.proto.hide(conversation)
        if named is None:
            await self.follow_departments()
        # the console reloads its lists: after any change of the account or its
        # memberships, and when a named conversation may be seen (a restriction
        # lifted); a restriction that only hides needs no reload (``hidden`` did it)
        if self.proto.state == "open" and (named is None or still_seen):
            self.proto.send({"type": ACCESS_CHANGED})

    def _note_version(self, version: Any) -> None:
        """An access_changed event was handled: its version is this socket's
        if it is the next one (a gap means an event this socket did not get,
        another account's, say: the minute's check then looks at everything)."""
        if type(version) is int and version == self.access_version + 1:
            self.access_version = version

    async def closed(self) -> None:
        if self._list_timer is not None:
            self._list_timer.cancel()
        if self.proto.state != "awaiting_hello":
            self.rt.presence.disconnect(self.account.id, self.conn_id)
            await publish_presence(self.rt)

    async def handle(self, cmd: Any) -> None:
        rt = self.rt
        try:
            if isinstance(cmd, P.AgentHello):
                if await self._access_moved():  # between the sign-in read and the hub subscription
                    await self.revalidate(None)
                    if self.proto.close_code is not None:
                        return
                self.rt.presence.connect(self.account.id, self.conn_id, self.presence_state)
                self.proto.welcome(agent={"id": self.account.id, "name": self.account.name},
                                   presence=self.rt.presence.state_of(self.account.id))
                await publish_presence(rt)
                for conversation in cmd.subscriptions:
                    if await self._may_see(conversation):
                        self.sub.add(chat.conv_channel(conversation))
                    else:
                        self.proto.unsubscribe(conversation)
            elif isinstance(cmd, P.Subscribe):
                if await self._may_see(cmd.conversation):
                    self.sub.add(chat.conv_channel(cmd.conversation))  # before the replay reads the database
                else:
                    self.proto.unsubscribe(cmd.conversation)
                    self.proto.error("not_found", gettext(self.lang, "No such conversation."))
            elif isinstance(cmd, P.Unsubscribe):
                self.sub.remove(chat.conv_channel(cmd.conversation))
            elif isinstance(cmd, P.FetchSince):
                if self.proto.is_tracking(cmd.conversation):
                    await self.replay(cmd.conversation, cmd.after_seq)
            # a restricted person's chat: not to be touched either (test_ws_fuzz.py)
            # (a message is checked inside its own write: the hot path reads nothing more)
            elif isinstance(cmd, (P.PostNote, P.Accept, P.Close, P.Typing, P.Seen)) and \
                    not await self._may_see(cmd.conversation):
                self.proto.error("not_found", gettext(self.lang, "No such conversation."),
                                 getattr(cmd, "client_id", None))
            elif isinstance(cmd, P.SendMessage):
                started = self.loop.time()
                try:
                    posted = await chat.post_agent_message(
                        rt, agent_id=self.account.id, conversation_id=cmd.conversation, client_id=cmd.client_id,
                        body=cmd.body, viewer=access.viewer_from(self.account, (), 0))
                except AccountError as exc:
                    self.error(exc, cmd.client_id)
                    return
                self.proto.ack(cmd.client_id, posted.conversation.id, posted.event.seq)
                rt.metrics.message_seconds.observe(self.loop.time() - started)
                rt.metrics.messages_in.labels("agent").inc()
            elif isinstance(cmd, P.PostNote):
                from jutella.chat.notes import post_note

                try:
                    noted = await post_note(rt, agent_id=self.account.id, conversation_id=cmd.conversation,
                                            client_id=cmd.client_id, body=cmd.body)
                except AccountError as exc:
                    self.error(exc, cmd.client_id)
                    return
                self.proto.ack(cmd.client_id, noted.conversation.id, noted.event.seq)
            elif isinstance(cmd, P.Accept):
                await chat.accept(rt, agent_id=self.account.id, conversation_id=cmd.conversation)
            elif isinstance(cmd, P.Close):
                await chat.close(rt, conversation_id=cmd.conversation, by="agent", agent_id=self.account.id)
            elif isinstance(cmd, P.Typing):
                await chat.typing(rt, conversation_id=cmd.conversation, author="agent", active=cmd.active)
            elif isinstance(cmd, P.Seen):
                await chat.mark_seen(rt, conversation_id=cmd.conversation, by="agent", seq=cmd.seq)
            elif isinstance(cmd, P.SetPresence):
                self.presence_state = cmd.state
                rt.presence.set_state(self.account.id, self.conn_id, cmd.state)
                self.proto.send({"type": "presence", "state": cmd.state})
                await publish_presence(rt)
        except AccountError as exc:
            self.error(exc)

    async def _may_see(self, conversation: int) -> bool:
        """Exists, and is not restricted (unless this member of staff has the privacy role).

        A yes is remembered for VISIBILITY_TTL seconds, so an agent typing and
        answering does not read the database for every frame; a list update
        marking the person restricted forgets it at once (on_hub), and the
        actions themselves still refuse a conversation that is gone."""
        now = self.loop.time()
        if self._visible.get(conversation, 0.0) > now:
            return True
        # the roles this socket signed in with; memberships are read live by the rule itself
        viewer = access.viewer_from(self.account, (), 0)
        async with self.rt.db.connection() as conn:
            seen = await access.may_see_conversation(conn, viewer, conversation)
        if seen:
            if len(self._visible) > 1000:
                self._visible = {c: t for c, t in self._visible.items() if t > now}
            self._visible[conversation] = now + VISIBILITY_TTL
        return seen

    async def _may_see_update(self, event: dict[str, Any]) -> bool:
        """A list update about a restricted person reaches only staff with the
        privacy role, as the HTTP lists do. The actions say whether the person
        is restricted when they build the frame; where they could not, ask
        the database."""
        if access.viewer_from(self.account, (), 0).sees_restricted:
            return True
        kind = event.get("type")
        if kind == "conversation":
            flag = event.get("restricted")
            if flag:
                self._visible.pop(event["conversation"]["id"], None)
            if flag is not None:
                return not flag
            return await self._may_see(event["conversation"]["id"])
        if kind == "offline":
            return await self._may_see_offline(event["message"]["id"])
        return True  # outbox states: ids only

    def _list_due(self) -> None:
        self._list_timer = None
        self._wake.set()  # the outbound task sends what is held

    def hold_list_update(self, event: dict[str, Any]) -> None:
        """Keep the newest update of each conversation until the hub events at
        hand are handled, and at most LIST_UPDATE_INTERVAL after the last
        (send_coalesced). Under load an agent's console then gets one
        ``conversations`` frame for many messages instead of a frame and a
        socket write for each (docs/performance.md); "new" survives a later
        update of the same conversation, so the waiting alert still sounds."""
        conv = event["conversation"]["id"]
        frame = {k: v for k, v in event.items() if k != "restricted"}
        held = self._listed.pop(conv, None)  # re-inserted: the dict keeps the order of the newest updates
        if held is not None and held.get("new") and not frame.get("new"):
            frame["new"] = True
        self._listed[conv] = frame

    def send_coalesced(self) -> None:
        if not self._listed:
            return
        now = self.loop.time()
        due = self._list_sent_at + LIST_UPDATE_INTERVAL
        if now < due:  # one went out a moment ago: these go together at the end of the interval
            if self._list_timer is None:
                self._list_timer = self.loop.call_at(due, self._list_due)
            return
        self._list_sent_at = now
        held, self._listed = list(self._listed.values()), {}
        if self.proto.state != "open":
            return
        if len(held) == 1:
            self.proto.send(held[0])
        else:
            self.proto.send({"type": "conversations", "items": held})

    async def _may_see_offline(self, message_id: int) -> bool:
        async with self.rt.db.connection() as conn:
            return await access.may_see_offline(conn, access.viewer_from(self.account, (), 0), message_id)

    async def on_hub(self, channel: str, event: dict[str, Any]) -> None:
        kind = event.get("type")
        if kind == "event":
            self.live_event(event)
        elif kind == "conversation":
            if self.proto.state == "open":
                if await self._may_see_update(event):
                    self.hold_list_update(event)
                else:  # nor what was held of it from before
                    self._listed.pop(event["conversation"]["id"], None)
        elif kind in ("offline", "outbox"):
            if self.proto.state == "open" and await self._may_see_update(event):
                self.proto.send({k: v for k, v in event.items() if k != "restricted"})
        elif kind in ("typing", "seen"):
            other = event.get("author", event.get("by"))
            if other == "visitor" and self.proto.is_tracking(event.get("conversation", 0)):
                self.proto.send(event)
        elif kind == "departments_changed":
            await self.follow_departments()
            if self.proto.state == "open":
                self.proto.send(event)  # the console reloads its lists
        elif kind in (ACCESS_CHANGED, "account_changed"):
            named = event.get("conversations") if channel == chat.AGENTS_CHANNEL else None
            await self.revalidate(named if isinstance(named, list) else None)
            self._note_version(event.get("version"))
        elif kind == "sessions_ended":
            if event.get("keep") != self.session.id:
                self.rt.presence.disconnect(self.account.id, self.conn_id)
                self.proto.close(P.CLOSE_UNAUTHORIZED, "session ended")
        elif kind == "session_ended":
            if event.get("session") == self.session.id:
                self.proto.close(P.CLOSE_UNAUTHORIZED, "session ended")


# -- the routes ------------------------------------------------------------------------
async def visitor_ws(rt: Runtime, ws: Socket) -> None:
    if not origin_allowed(ws, rt, widget=True):
        await ws.close(1008)  # before accept: the handshake is refused with HTTP 403
        return
    limit = rt.settings.max_connections_per_client
    key = rt.throttle.key("ws-client", ws.client_host or "-")
    counts: dict[str, int] = rt.__dict__.setdefault("_ws_per_client", {})
    if limit and counts.get(key, 0) >= limit:
        await ws.deny(429, "Too many chat connections from this address. Close some tabs and try again.")
        return
    counts[key] = counts.get(key, 0) + 1
    try:
        await ws.accept()
        lang = negotiate(ws.headers.get("accept-language"))
        await VisitorConnection(rt, ws, lang).run()
    finally:
        counts[key] -= 1
        if not counts[key]:
            del counts[key]


async def agent_ws(rt: Runtime, ws: Socket) -> None:
    from starlette.requests import cookie_parser

    if not origin_allowed(ws, rt, widget=False):
        await ws.close(1008)
        return
    await ws.accept()
    async with rt.db.connection() as db:  # before the account is read: a change after it shows (AgentHello)
        version = await read_access_version(db)
    found = await accounts.authenticate(rt, cookie_parser(ws.headers.get("cookie") or "").get(SESSION_COOKIE))
    if found is None:
        await ws.close(P.CLOSE_UNAUTHORIZED, "sign in first")
        return
    account, session = found
    if "agent" not in account.role_names:
        await ws.close(4403, "the agent role is needed")
        return
    if not account.totp_enabled and await accounts.require_totp_for_all(rt):
        await ws.close(4403, "two-factor sign-in required")
        return
    lang = account.language or negotiate(ws.headers.get("accept-language"))
    conn = AgentConnection(rt, ws, lang, account, session)
    conn.dept_channels = await channels_for(rt, account.id, "admin" in account.role_names)
    conn.access_version = version
    await conn.run()
