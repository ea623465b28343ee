"""A bare connection to Redis for the hub's two streams (realtime/redis_hub.py).

The hub keeps two connections to Redis open all the time: one it listens on
(``PSUBSCRIBE``), one it publishes its batches on (``CLIENT REPLY OFF``). Both
carry one kind of traffic each, so neither needs a client library's command
machinery: a :class:`Link` is an ``asyncio.Protocol`` whose bytes go straight
into hiredis's RESP parser, and each reply Redis pushes is handed to a
callback from ``data_received``. Reading a batch through redis-py's
``PubSub.get_message`` cost a worker 114-146 us (its reply machinery, and a
task woken for each batch); through a Link 41-43 us, with no task woken at
all (docs/performance.md, session 16). A publish is one ``transport.write``
of what ``hiredis.pack_command`` packed; a connection Redis closed is seen at
once, because the Link always reads (``connection_lost``), instead of being
polled for before each write.

The URL is read by redis-py's own ``parse_url``, so it means what it means
everywhere else (``JUTELLA_REDIS_URL``, the shared rate limits of
realtime/redis_throttle.py): ``redis://``, ``rediss://`` (TLS, with
``ssl_cert_reqs``, ``ssl_ca_certs``, ``ssl_certfile``, ``ssl_keyfile``) and
``unix://``, a user name and password (``AUTH``). Pub/sub is not scoped to a
database number, so ``/0`` and ``?db=`` change nothing here.
"""

from __future__ import annotations

import asyncio
import collections
import ssl
from typing import Any, Callable

import hiredis
from redis.asyncio.connection import SSLConnection, parse_url
from redis.exceptions import ConnectionError as RedisConnectionError

CONNECT_TIMEOUT = 2.0  # seconds for the connection, and again for AUTH's reply


class Link(asyncio.Protocol):
    """One connection to Redis. Replies answer :meth:`request` in order while
    requests wait; every other reply (a pushed pub/sub message) goes to
    ``on_push``. ``lost`` is done once the connection is gone."""

    def __init__(self, on_push: Callable[[Any], None]):
        self._parser = hiredis.Reader()
        self._on_push = on_push
        self._waiting: collections.deque[asyncio.Future] = collections.deque()
        self._writable = asyncio.Event()
        self._writable.set()
        self.transport: asyncio.Transport | None = None
        self.lost: asyncio.Future = asyncio.get_running_loop().create_future()
        self.heard = 0.0  # the loop's time when Redis last sent something

    # -- asyncio.Protocol -------------------------------------------------------------
    def connection_made(self, transport) -> None:  # type: ignore[override]
        self.transport = transport

    def data_received(self, data: bytes) -> None:
        self.heard = asyncio.get_running_loop().time()
        self._parser.feed(data)
        while (reply := self._parser.gets()) is not False:
            if self._waiting:
                future = self._waiting.popleft()
                if not future.done():
                    future.set_result(reply)
            else:
                self._on_push(reply)

    def connection_lost(self, exc: Exception | None) -> None:
        self._writable.set()  # a writer waiting for room finds the link closed
        for future in self._waiting:
            if not future.done():
                future.set_exception(RedisConnectionError("the connection to Redis was lost"))
        self._waiting.clear()
        if not self.lost.done():
            self.lost.set_result(None)

    def pause_writing(self) -> None:
        self._writable.clear()

    def resume_writing(self) -> None:
        self._writable.set()

    # -- use --------------------------------------------------------------------------
    @property
    def open(self) -> bool:
        return not self.lost.done()

    async def send(self, *args: str | bytes) -> None:
        """Write one command; wait first while Redis reads slower than we write."""
        if not self._writable.is_set():
            await self._writable.wait()
        if not self.open or self.transport is None or self.transport.is_closing():
            raise RedisConnectionError("the connection to Redis is closed")
        self.transport.write(hiredis.pack_command(args))

    async def request(self, *args: str | bytes) -> Any:
        """Write one command and return its reply (an error reply is returned as
        a ``hiredis.ReplyError``, not raised)."""
        future = asyncio.get_running_loop().create_future()
        self._waiting.append(future)
        try:
            await self.send(*args)
        except BaseException:
            self._waiting.remove(future)
            raise
        return await asyncio.wait_for(future, CONNECT_TIMEOUT)

    def close(self) -> None:
        if self.transport is not None:
            self.transport.close()


def tls_context(options: dict[str, Any]) -> ssl.SSLContext:
    """The TLS context a ``rediss://`` URL asks for, built by redis-py itself
    from the URL's ``ssl_*`` options, with its defaults (the certificate
    verified and the host name checked unless the URL says otherwise), so
    that the hub's links and redis-py's own connections agree."""
    return SSLConnection(**{k: v for k, v in options.items() if k.startswith("ssl_")}).ssl_context.get()


async def open_link(url: str, on_push: Callable[[Any], None]) -> Link:
    """Connect to the Redis of ``url`` and authenticate; raises a redis-py
    ``ConnectionError`` (a ``RedisError``) or an ``OSError`` when it cannot."""
    options = parse_url(url)
    loop = asyncio.get_running_loop()

    def factory() -> Link:
        return Link(on_push)

    if "path" in options:
        connecting = loop.create_unix_connection(factory, options["path"])
    else:
        tls = tls_context(options) if options.get("connection_class") is SSLConnection else None
        connecting = loop.create_connection(factory, options.get("host") or "localhost",
                                            options.get("port") or 6379, ssl=tls)
    try:
        _transport, link = await asyncio.wait_for(connecting, CONNECT_TIMEOUT)
    except TimeoutError as exc:
        raise RedisConnectionError("timed out connecting to Redis") from exc
    if options.get("password"):
        credentials = (options["username"], options["password"]) if options.get("username") \
            else (options["password"],)
        try:
            reply = await link.request("AUTH", *credentials)
        except BaseException:
            link.close()
            raise
        if isinstance(reply, Exception):  # the reply names no secret; it is Redis's own words
            link.close()
            raise RedisConnectionError(f"Redis refused the credentials: {reply}")
    return link
