"""The hub across processes and hosts, through Redis pub/sub.

Every worker delivers each event to its own subscribers at once and queues
it for the others; one task publishes what is queued, all of it in one
PUBLISH to the worker's own Redis channel ``<prefix>:hub:<origin>``: its
16-byte origin id, then the orjson list ``[[channel, event], ...]`` in the
order published. Every worker listens to every other worker's channel and
delivers to those of its local subscribers that follow each event's channel.
One PUBLISH a batch, not one an event: under load a message's two or three
events (and a busy turn's dozens) cost each worker one read of a Redis
message instead of one each, which is most of what a second worker cost
(docs/performance.md). The PUBLISHes go out on a connection of their own on
which Redis sends no replies (``CLIENT REPLY OFF``): a batch costs the
worker one write. Both connections are bare links (realtime/redis_link.py):
hiredis parses what arrives inside the protocol's ``data_received``, which
hands each batch straight to ``_dispatch``, with no task woken and none of a
client library's reply machinery (a third of what a batch cost to read).
Redis carries notifications only: the database stays the source of truth.

A worker does not hear its own batches: it listens with one pattern per
position of its origin id, ``<prefix>:hub:<the id's first i characters>[^<its
character i>]*`` (``others``), which together match every other worker's
channel exactly once and its own not at all. Nobody needs a list of the
workers, so one that starts is heard at once; and a worker is not woken for
each of its own batches (under load, a third of what Redis woke it for).

When the connection to Redis drops, or Redis stops answering (the listening
link is pinged after ``PING_EVERY`` seconds of silence and dropped after twice
that), local delivery goes on, ``healthy`` turns
false (``/healthz`` says "degraded"), and the listener reconnects with
backoff. After reconnecting it tells every local connection to resynchronise
(``{"type": "_resync"}``): each reads what it missed from the database by
sequence number, so nothing that was committed is lost.

Presence is shared the same way: each worker announces its set of online
agents on every change and every few seconds; a worker's announcement counts
for ``PRESENCE_TTL`` seconds.

The channels' names changed with each change of format (``<prefix>:events``
carried one event a message, ``<prefix>:hub`` everyone's batches): during a
rolling restart, workers of two versions do not hear each other and their
clients catch up from the database when the drain moves them
(docs/housekeeping.md).
"""

from __future__ import annotations

import asyncio
import logging
import secrets
import time
from typing import Any, Callable

import orjson
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import RedisError

from .hub import Event, MemoryHub
from .redis_link import Link, open_link

log = logging.getLogger("jutella.redis")
PRESENCE_TTL = 10.0
ORIGIN_BYTES = 16  # a worker's id, in front of each message it publishes
BATCH_LIMIT = 500  # events in one PUBLISH at most
# A worker publishes at most once in this many seconds: what comes in
# meanwhile goes out together. The first after a quiet spell goes at once.
PUBLISH_INTERVAL = 0.003
PING_EVERY = 5.0  # seconds of silence on the listening link before it is pinged (twice that: dropped)
QUEUE_LIMIT = 100_000  # events waiting for Redis at most; beyond, dropped (clients catch up from the database)


class RedisHub(MemoryHub):
    def __init__(self, url: str, prefix: str = "jutella"):
        super().__init__()
        self.url = url
        self.origin = secrets.token_hex(8)
        self.channel = f"{prefix}:hub:{self.origin}"  # where this worker publishes
        self.others = others(prefix, self.origin)  # the patterns it listens with
        self._tag = self.origin.encode()  # ORIGIN_BYTES long
        self._listener: asyncio.Task | None = None
        self._publisher: asyncio.Task | None = None
        self._out: Link | None = None  # the connection PUBLISHes go out on (_publish_data), with replies off
        self._subscribed: asyncio.Future | None = None  # done when Redis has confirmed every pattern
        self._confirmed = 0  # patterns Redis has confirmed on the current listening link
        self._outbox: list[tuple[str, Any]] = []  # (channel, event) waiting for the publisher, oldest first
        self._queued = asyncio.Event()  # set when _outbox has something
        self._healthy = False
        self._ever_connected = False
        self.on_presence: Callable[[str, list[int]], None] | None = None
        self.on_presence_change: Callable[[], None] | None = None  # set by the app: re-tell local widgets

    @property
    def healthy(self) -> bool:
        return self._healthy

    async def start(self) -> None:
        self._listener = asyncio.create_task(self._listen())
        self._publisher = asyncio.create_task(self._publish_loop())
        for _ in range(50):  # give the first subscription a moment, without blocking start-up on it
            if self._healthy:
                break
            await asyncio.sleep(0.02)

    async def stop(self) -> None:
        for task in (self._listener, self._publisher):
            if task:
                task.cancel()
        await asyncio.gather(*(t for t in (self._listener, self._publisher) if t), return_exceptions=True)
        if self._out is not None:
            self._out.close()
            self._out = None

    async def publish(self, channel: str, event: Event) -> None:
        self.deliver_local(channel, event)
        self._send(channel, event)

    def announce_presence(self, online: list[int]) -> None:
        self._send("_presence", online)

    def _send(self, channel: str, payload: Any) -> None:
        if len(self._outbox) >= QUEUE_LIMIT:  # Redis far behind: drop; clients catch up from the database
            return
        self._outbox.append((channel, payload))
        self._queued.set()

    def _take_batch(self) -> bytes | None:
        """What the publisher sends next: the oldest BATCH_LIMIT events as one
        message, or None when nothing waits."""
        batch = self._outbox[:BATCH_LIMIT]
        del self._outbox[:BATCH_LIMIT]
        if not self._outbox:
            self._queued.clear()
        return self._tag + orjson.dumps(batch) if batch else None

    async def _publish_loop(self) -> None:
        """One task sends everything in order, what has piled up in one PUBLISH."""
        loop = asyncio.get_running_loop()
        last = float("-inf")
        while True:
            await self._queued.wait()
            wait = last + PUBLISH_INTERVAL - loop.time()
            if wait > 0:  # one went out a moment ago: gather what comes until the interval is up
                await asyncio.sleep(wait)
            last = loop.time()
            data = self._take_batch()
            if data is None:
                continue
            try:
                await self._publish_data(data)
            except (RedisError, OSError) as exc:
                # lost notifications are caught up from the database after the resync
                self._healthy = False
                self._out = None
                log.warning("redis publish failed: %s", type(exc).__name__)
                await asyncio.sleep(0.2)

    async def _publish_data(self, data: bytes) -> None:
        """One PUBLISH, on a connection of the publisher's own on which
        Redis sends no replies (``CLIENT REPLY OFF``): a batch costs this
        worker one write, not also a wake-up and a parse for a reply it has no
        use for (the number of listeners). The link reads all the same, so a
        connection Redis closed is seen as soon as it closes and the next
        batch opens a new one; a write that fails raises."""
        link = self._out
        if link is None or not link.open:
            if link is not None:
                link.close()
            self._out = None
            link = await open_link(self.url, _no_replies)
            await link.send("CLIENT", "REPLY", "OFF")
            self._out = link
        await link.send("PUBLISH", self.channel, data)

    async def _listen(self) -> None:
        """Listen to every other worker's channel, and reconnect with backoff
        when the connection drops. Each message Redis pushes is dispatched
        from the link's ``data_received`` (``_on_push``): no task is woken
        for it. A link that has been silent for ``PING_EVERY`` seconds is
        pinged; one silent for twice that long is dropped and reopened."""
        loop = asyncio.get_running_loop()
        delay = 0.1
        while True:
            link = None
            try:
                self._confirmed = 0
                self._subscribed = loop.create_future()
                link = await open_link(self.url, self._on_push)
                await link.send("PSUBSCRIBE", *self.others)
                await asyncio.wait({self._subscribed, link.lost}, timeout=PING_EVERY,
                                   return_when=asyncio.FIRST_COMPLETED)
                if not self._subscribed.done():
                    raise RedisConnectionError("Redis did not confirm the subscriptions")
                if self._ever_connected:
                    log.warning("redis connection restored; clients resynchronise from the database")
                    self.deliver_all({"type": "_resync"})
                self._healthy = self._ever_connected = True
                delay = 0.1
                while True:
                    await asyncio.wait({link.lost}, timeout=PING_EVERY)
                    if not link.open:
                        raise RedisConnectionError("the connection to Redis was lost")
                    quiet = loop.time() - link.heard
                    if quiet >= 2 * PING_EVERY:
                        raise RedisConnectionError("Redis stopped answering")
                    if quiet >= PING_EVERY:
                        await link.send("PING")
            except asyncio.CancelledError:
                raise
            except (RedisError, OSError) as exc:
                if self._healthy:
                    log.warning("redis connection lost (%s); reconnecting", type(exc).__name__)
                self._healthy = False
                await asyncio.sleep(delay)
                delay = min(delay * 2, 5.0)
            finally:
                if link is not None:
                    link.close()

    def _on_push(self, reply: Any) -> None:
        """What Redis pushes on the listening link: another worker's batch
        (``pmessage``), the confirmations of the subscriptions, a pong."""
        if type(reply) is list and len(reply) == 4 and reply[0] == b"pmessage":
            try:
                self._dispatch(reply[3])
            except Exception:  # one bad event must not end the listening
                log.exception("a hub batch from Redis could not be delivered")
        elif type(reply) is list and len(reply) == 3 and reply[0] == b"psubscribe":
            self._confirmed += 1
            if self._confirmed >= len(self.others) and self._subscribed is not None and not self._subscribed.done():
                self._subscribed.set_result(None)

    def _dispatch(self, data: bytes) -> None:
        """Deliver another worker's batch to the local subscribers of each
        event's channel. Anything not in the batch's shape is ignored (a
        message from a worker of another version, or not ours)."""
        origin = data[:ORIGIN_BYTES]
        if origin == self._tag:
            return  # our own, delivered locally when published
        try:
            batch = orjson.loads(data[ORIGIN_BYTES:])
            origin_id = origin.decode("ascii")
        except (orjson.JSONDecodeError, ValueError, TypeError):
            return
        if not isinstance(batch, list):
            return
        subs = self._subs
        presence_changed = False
        for item in batch:
            if not isinstance(item, list) or len(item) != 2 or not isinstance(item[0], str):
                continue
            channel, event = item
            if channel == "_presence":
                if self.on_presence and isinstance(event, list):
                    self.on_presence(origin_id, event)
                presence_changed = True
            elif channel in subs and isinstance(event, dict):
                self.deliver_local(channel, event)
        if presence_changed and self.on_presence_change:
            self.on_presence_change()

    def deliver_all(self, event: Event) -> None:
        seen: set[int] = set()
        for subs in list(self._subs.values()):
            for sub in list(subs):
                if id(sub) not in seen:
                    seen.add(id(sub))
                    sub.deliver("_hub", event)


def _no_replies(reply: Any) -> None:
    """The publishing link asks for no replies; anything that comes is dropped."""


def others(prefix: str, origin: str) -> list[str]:
    """The Redis patterns that match every worker's channel but the one of
    ``origin`` (hex digits): the i-th matches the ids that agree with it on
    their first i characters and differ at the next, so each other id
    matches exactly one of them. The prefix's glob characters are escaped."""
    base = "".join("\\" + c if c in "*?[]\\^" else c for c in f"{prefix}:hub:")
    return [f"{base}{origin[:i]}[^{origin[i]}]*" for i in range(len(origin))]


class RemotePresence:
    """Other workers' online agents, each announcement valid for PRESENCE_TTL."""

    def __init__(self) -> None:
        self._workers: dict[str, tuple[float, set[int]]] = {}

    def update(self, origin: str, online: list[int]) -> None:
        self._workers[origin] = (time.monotonic() + PRESENCE_TTL, set(online))

    def online(self) -> set[int]:
        now = time.monotonic()
        out: set[int] = set()
        for origin, (until, agents) in list(self._workers.items()):
            if until < now:
                del self._workers[origin]
            else:
                out |= agents
        return out


def connect_presence(hub: Any, presence: Any) -> None:
    """Wire a RedisHub and the local Presence together."""
    remote = RemotePresence()
    hub.on_presence = remote.update
    presence.remote = remote
