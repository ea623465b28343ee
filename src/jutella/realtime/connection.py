"""What every chat socket does, visitor's or agent's: thin asyncio code that
moves bytes between the socket, the sans-I/O
:class:`~jutella.realtime.protocol.Protocol`, the chat actions and the hub.

Each connection reads on the server's own task (frames -> protocol ->
actions) and writes on one task of its own (hub events -> protocol -> frames
-> socket), with a timer for heartbeats (memory per connection matters at
10,000 of them; realtime/wsserver.py serves the sockets without ASGI). The
hub subscription is made *before* any replay from the database, so an event
committed meanwhile arrives live and the protocol's watermark removes the
overlap.

The two kinds of connection are ``visitor.py`` and ``agent.py``; an agent's
list updates are held and sent together by ``coalesce.py``.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping, Sequence
from typing import Any, Protocol

from jutella.accounts.errors import AccountError
from jutella.chat import actions as chat
from jutella.chat import sites
from jutella.chat.system_text import system_text
from jutella.faults import CHAT_FAULTS, FAULTS, fault_log_line
from jutella.i18n import gettext
from jutella.runtime import Runtime
from jutella.store.db import storage_fault

from . import protocol as P

log = logging.getLogger("jutella.realtime")
MAX_BACKLOG = 20_000  # frames queued for one slow client before it is closed
SEND_BATCH = 64  # frames written to a socket together (one system call)

class Socket(Protocol):
    """What the endpoints need of a WebSocket: realtime/wsserver.ChatSocket
    (how jutella serves) and realtime/asgi.AsgiSocket (under any ASGI server)."""

    headers: Mapping[str, str]  # lower-case names: origin, user-agent, accept-language, cookie
    client_host: str | None  # the client's address by jutella/clientaddr.py (a throttle key only)

    @property
    def open(self) -> bool: ...  # accepted, and neither side has closed
    async def accept(self) -> None: ...
    async def deny(self, status: int, text: str) -> None: ...  # refuse the handshake with an HTTP status
    async def close(self, code: int = 1000, reason: str = "") -> None: ...  # before accept: HTTP 403
    async def receive(self) -> str | bytes | None: ...  # None: closed
    async def send_many(self, frames: Sequence[bytes]) -> bool: ...  # UTF-8 text frames; False: closed


async def origin_allowed(ws: Socket, rt: Runtime, *, widget: bool) -> bool:
    """The console's socket: the server's own origin only. The widget's: any
    origin that may embed it (chat/sites.py ``allowed_origins``: the setting
    and the sites admins added, without a restart)."""
    origin = (ws.headers.get("origin") or "").lower().rstrip("/")
    if not widget:
        return origin == rt.settings.public_origin
    return origin in await sites.allowed_origins(rt)


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
        self._messages_in = rt.metrics.messages_in.labels(self.role)  # looked up once, not per message

    # -- output ------------------------------------------------------------------
    async def flush(self) -> None:
        self._flush()

    def _flush(self, wake: bool = True) -> None:
        """Hand what the protocol queued to the outbound task. Never waits on
        the socket: a client that does not read must not stop this connection
        from reading (two peers each blocked writing to the other would wait
        forever). A client that falls too far behind is closed; it resumes
        from its last seq. ``wake=False``: the outbound task's own call, which
        writes what it moved (and looks at the close) right after: waking
        itself would only cost it a turn that finds nothing to do."""
        if not self.proto.has_data_to_send():
            if wake and self.proto.close_code is not None:
                self._wake.set()
            return
        frames = self.proto.data_to_send()
        self._frames_out.inc(len(frames))
        self._out += frames
        if len(self._out) > MAX_BACKLOG:
            self._out.clear()
            self.proto.close(1013, "too far behind; reconnect and resume")
        if wake:
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
            # the frames these events make are moved to _out once, after them (_flush's
            # backlog check then counts them all at once: at most 100 events' worth later)
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
                    if self.proto.has_pending_commands():
                        await self.run_pending()
                except Exception as exc:
                    if not self.refuse_for_storage(exc):
                        raise
            self.send_coalesced()
            self._flush(wake=False)  # written just below
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
            if data is None:  # the client closed, or we did, or the server is draining:
                if getattr(self.ws, "draining", False) and self.proto.close_code is None:
                    # every message received is handled and acked: those acks go out, then
                    # the close that tells the client to reconnect (docs/housekeeping.md)
                    self.proto.close(P.CLOSE_RESTART, "server restarting")
                    await self.flush()
                return
            for cmd in self.proto.receive(data, self.loop.time()):
                try:
                    await self.handle(cmd)
                except Exception as exc:
                    if not self.refuse_for_storage(exc, cmd):
                        raise
            try:
                if self.proto.has_pending_commands():
                    await self.run_pending()
            except Exception as exc:
                if not self.refuse_for_storage(exc):
                    raise
            self._flush()
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

