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
worker one write. Redis carries notifications only: the database stays the
source of truth.

A worker does not hear its own batches: it listens with one pattern per
position of its origin id, ``<prefix>:hub:<the id's first i characters>[^<its
character i>]*`` (``others``), which together match every other worker's
channel exactly once and its own not at all. Nobody needs a list of the
workers, so one that starts is heard at once; and a worker is not woken for
each of its own batches (under load, a third of what Redis woke it for).

When the connection to Redis drops, local delivery goes on, ``healthy`` turns
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
import redis.asyncio as aioredis
from redis.exceptions import RedisError

from .hub import Event, MemoryHub

log = logging.getLogger("jutella.redis")
PRESENCE_TTL = 10.0
ORIGIN_BYTES = 16  # a worker's id, in front of each message it publishes
BATCH_LIMIT = 500  # events in one PUBLISH at most
# A worker publishes at most once in this many seconds: what comes in
# meanwhile goes out together. The first after a quiet spell goes at once.
PUBLISH_INTERVAL = 0.003
QUEUE_LIMIT = 100_000  # events waiting for Redis at most; beyond, dropped (clients catch up from the database)


class RedisHub(MemoryHub):
    def __init__(self, url: str, prefix: str = "jutella"):
        super().__init__()
        self.url = url
        self.origin = secrets.token_hex(8)
        self.channel = f"{prefix}:hub:{self.origin}"  # where this worker publishes
        self.others = others(prefix, self.origin)  # the patterns it listens with
        self._tag = self.origin.encode()  # ORIGIN_BYTES long
        self._redis: aioredis.Redis | None = None
        self._listener: asyncio.Task | None = None
        self._publisher: asyncio.Task | None = None
        self._out: Any = None  # the connection PUBLISHes go out on (_publish_data), with replies off
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
        self._redis = aioredis.from_url(self.url, socket_connect_timeout=2, socket_timeout=None,
                                        health_check_interval=10)
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
            await self._out.disconnect()
        if self._redis is not None:
            await self._redis.aclose()

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
        use for (the number of listeners). Nothing is ever read from it, so a
        connection Redis closed shows as readable (EOF) before the write, and
        a new one is opened, as redis-py's pool does with a dirty connection;
        a write that fails raises, as before."""
        conn = self._out
        if conn is None or not conn.is_connected or await conn.can_read():
            if conn is not None:
                await conn.disconnect(nowait=True)
            if self._redis is None:
                raise RuntimeError("the hub was not started")
            self._out = None
            conn = self._redis.connection_pool.make_connection()
            try:
                await conn.connect()
                await conn.send_command("CLIENT", "REPLY", "OFF", check_health=False)
            except BaseException:
                await conn.disconnect(nowait=True)
                raise
            self._out = conn
        # check_health=False: its PING would wait for ever for the reply that never comes
        await conn.send_packed_command(conn.pack_command("PUBLISH", self.channel, data), check_health=False)

    async def _listen(self) -> None:
        delay = 0.1
        while True:
            pubsub = None
            try:
                if self._redis is None:
                    raise RuntimeError("the hub was not started")
                pubsub = self._redis.pubsub(ignore_subscribe_messages=True)
                await pubsub.psubscribe(*self.others)
                if self._ever_connected:
                    log.warning("redis connection restored; clients resynchronise from the database")
                    self.deliver_all({"type": "_resync"})
                self._healthy = self._ever_connected = True
                delay = 0.1
                while True:
                    message = await pubsub.get_message(timeout=5.0)
                    if message is None:
                        await self._redis.ping()
                        continue
                    self._dispatch(message["data"])
            except asyncio.CancelledError:
                raise
            except (RedisError, OSError) as exc:
                if self._healthy:
                    log.warning("redis connection lost (%s); reconnecting", type(exc).__name__)
                self._healthy = False
                await asyncio.sleep(delay)
                delay = min(delay * 2, 5.0)
            finally:
                if pubsub is not None:
                    try:
                        await pubsub.aclose()
                    except Exception:  # closing a pubsub whose connection broke  # nosec B110
                        pass

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
