"""The chat sockets on the wire: jutella's own WebSocket server protocol.

uvicorn parses the HTTP request and, when it asks for a WebSocket upgrade,
hands the connection to the class named by its ``ws`` option (app.py's
SERVER_OPTIONS names this one). For ``/ws/visitor`` and ``/ws/agent`` it
speaks WebSocket itself, on websockets' sans-I/O ``ServerProtocol`` (the
library parses and builds frames; this class moves bytes), and runs the
endpoint with itself as the socket. Every other path goes on to uvicorn's own
protocol and from there to the ASGI application, which decides as before.

Why not ASGI all the way: at ten thousand open widgets the ASGI way costs
about 14 KiB a connection that lives as long as the socket and does nothing
for it (measured with tracemalloc, docs/performance.md): uvicorn's receive
queue and two events (four empty deques), the scope with every request
header, websockets' parsed request, Starlette's WebSocket and the
middleware's coroutine frames. Here a connection is this object with slots,
the sans-I/O parser, the four headers the endpoints read, and the message
list the reader takes from. Frames go out as the bytes the chat protocol
already built, without a str round trip.

What it keeps of the ASGI server's behaviour: reading pauses while messages
wait for the endpoint (a flooding client is held by TCP, not by memory);
``send`` waits while the transport's buffer is over its high-water mark;
a close we start waits 10 s for the client's reply; uvicorn's graceful
shutdown drains open chats: nothing more is read, what was received is
handled and acknowledged, then they close with 1012 ("service restart").
Nothing here logs the client's address.

``visitor.visitor_ws`` and ``agent.agent_ws`` take any object with this class's
socket methods; ``AsgiSocket`` (realtime/asgi.py) is the other one, for
running jutella's application under some other ASGI server.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Sequence
from typing import Any, cast

from websockets.frames import Frame, Opcode
from websockets.http11 import Request
from websockets.protocol import Protocol, Side, State
from websockets.server import ServerProtocol

from jutella.clientaddr import client_address
from jutella.realtime.protocol import CLOSE_RESTART

log = logging.getLogger("jutella.realtime")

STATE_KEY = "jutella.sockets"  # the lifespan state entry: {path: endpoint(socket)}
TRUSTED_KEY = "jutella.trusted_proxies"  # the lifespan state entry: settings.trusted_proxies
KEPT_HEADERS = ("origin", "user-agent", "accept-language", "cookie")
PAUSE_AT = 4  # messages waiting for the endpoint before reading from the socket pauses
CLOSE_TIMEOUT_S = 10.0
WRITE_STALL_S = 60.0  # a client that takes nothing from a full buffer for this long is cut off
MAX_SIZE = 64 * 1024

_TEXT = 0x81  # FIN and the text opcode: a whole text message in one frame


def text_frame_header(size: int) -> bytes:
    """The header of an unmasked, unfragmented server text frame of ``size``
    payload bytes (RFC 6455 5.2; no extension is ever negotiated here, so no
    RSV bit). What websockets' ``Protocol.send_text`` would build, without a
    Frame object, its checks and a copy of the payload per frame: the hot
    path sends two or three frames per chat message."""
    if size < 126:
        return bytes((_TEXT, size))
    if size < 65536:
        return bytes((_TEXT, 126)) + size.to_bytes(2, "big")
    return bytes((_TEXT, 127)) + size.to_bytes(8, "big")

Endpoint = Callable[[Any], Awaitable[None]]


class ChatSocket(asyncio.Protocol):
    __slots__ = ("_config", "_server_state", "_app_state", "_delegate", "transport", "conn", "path", "headers",
                 "client_host", "_messages", "_fragments", "_text", "_reader", "_drain", "_paused_reading",
                 "_paused_writing", "_accepted", "_answered", "_lost", "_close_timer", "_routes", "_request",
                 "draining")

    def __init__(self, config: Any, server_state: Any, app_state: dict[str, Any], _loop: Any = None) -> None:
        # uvicorn's constructor contract for a `ws` protocol class
        self._config = config
        self._server_state = server_state
        self._app_state = app_state
        self._routes: dict[str, Endpoint] | None = app_state.get(STATE_KEY)
        self._delegate: asyncio.Protocol | None = None
        self.transport: asyncio.Transport = None  # type: ignore[assignment]
        # The handshake's parser until the handshake is answered, then a
        # frames-only one: ServerProtocol's parser keeps the parsed request
        # (3 KiB of headers) alive as long as the connection.
        self.conn: Protocol = ServerProtocol(max_size=MAX_SIZE, logger=log)
        self.path = ""
        self.headers: dict[str, str] = {}
        self.client_host: str | None = None
        self._messages: list[str | bytes] = []
        self._fragments: list[bytes] | None = None
        self._text = False
        self._reader: asyncio.Future | None = None  # the endpoint waits here for a message
        self._drain: asyncio.Future | None = None  # a send waits here while writing is paused
        self._paused_reading = False
        self._paused_writing = False
        self._accepted = False
        self._answered = False  # the handshake has a response (101 or a refusal)
        self._lost = False
        self._close_timer: asyncio.TimerHandle | None = None
        self._request: Request | None = None  # until the handshake is answered
        self.draining = False  # the server is shutting down: nothing more is read (shutdown())

    # -- asyncio.Protocol -------------------------------------------------------------
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def data_received(self, data: bytes) -> None:
        if self._delegate is not None:
            self._delegate.data_received(data)
            return
        self.conn.receive_data(data)
        self._handle_events(data)

    def eof_received(self) -> bool | None:
        if self._delegate is not None:
            return self._delegate.eof_received()
        self.conn.receive_eof()
        self._handle_events()
        return None

    def connection_lost(self, exc: Exception | None) -> None:
        if self._delegate is not None:
            self._delegate.connection_lost(exc)
            return
        self._lost = True
        self._server_state.connections.discard(self)
        if self._close_timer is not None:
            self._close_timer.cancel()
            self._close_timer = None
        self._wake_reader()
        self._wake_writer()

    def pause_writing(self) -> None:
        if self._delegate is not None:
            self._delegate.pause_writing()
            return
        self._paused_writing = True

    def resume_writing(self) -> None:
        if self._delegate is not None:
            self._delegate.resume_writing()
            return
        self._paused_writing = False
        self._wake_writer()

    # uvicorn's graceful shutdown (the drain, docs/housekeeping.md)
    def shutdown(self) -> None:
        """Read nothing more from the client; the endpoint handles what it
        has already received (its writes commit, their acks are queued), then
        :meth:`receive` answers None with ``draining`` set, and the endpoint
        closes with 1012 ("service restart") after its last frames
        (connection.Connection.reader). uvicorn waits for that within
        SOCKETS_DRAIN_SECONDS (jutella/tuning.py)."""
        if self._delegate is not None:
            return
        if not self._answered:
            self._respond(503, "The server is restarting. Try again in a moment.")
        elif self.conn.state is State.OPEN and not self._lost:
            self.draining = True
            if not self._paused_reading:
                self._paused_reading = True
                self.transport.pause_reading()
        else:
            self.transport.close()
        self._wake_reader()

    # -- the wire -----------------------------------------------------------------
    def _push(self) -> None:
        """Write what the sans-I/O protocol has for the network; its empty
        bytestring means the connection is over (closing handshake done or
        failed): close the transport after what is buffered."""
        chunks = self.conn.data_to_send()
        if not chunks or self.transport.is_closing():
            return
        if chunks[-1]:
            self.transport.writelines(chunks)  # one system call for all of them
            return
        for chunk in chunks:
            if chunk:
                self.transport.write(chunk)
        self.transport.close()

    def _handle_events(self, raw: bytes = b"") -> None:
        """``raw``: the bytes just received (uvicorn passes the whole upgrade
        request in one call; another path hands them on unchanged)."""
        for event in self.conn.events_received():
            if isinstance(event, Frame):
                op = event.opcode
                if op is Opcode.TEXT or op is Opcode.BINARY:
                    self._text = op is Opcode.TEXT
                    if event.fin:
                        self._message(event.data)
                    else:
                        self._fragments = [bytes(event.data)]
                elif op is Opcode.CONT and self._fragments is not None:
                    self._fragments.append(bytes(event.data))
                    if event.fin:
                        data, self._fragments = b"".join(self._fragments), None
                        self._message(data)
                # pings are answered by the sans-I/O protocol; pongs and close frames need nothing here
            elif isinstance(event, Request):
                self._start(event, raw)
                if self._delegate is not None:
                    return
        self._push()
        if self.conn.state is not State.OPEN:
            self._wake_reader()  # the close timer, if any, ends with the connection (connection_lost)

    def _message(self, data: bytes | bytearray) -> None:
        if self.conn.state is not State.OPEN:
            return  # past our close frame: the endpoint reads no more
        if self._text:
            try:
                self._messages.append(bytes(data).decode())
            except UnicodeDecodeError:
                self.conn.fail(1007, "invalid UTF-8")
                return
        else:
            self._messages.append(bytes(data))
        if len(self._messages) >= PAUSE_AT and not self._paused_reading:
            self._paused_reading = True
            self.transport.pause_reading()
        self._wake_reader()

    def _start(self, request: Request, raw: bytes) -> None:
        path = request.path.partition("?")[0]
        endpoint = self._routes.get(path) if self._routes is not None else None
        if endpoint is None:
            self._hand_to_asgi(raw)
            return
        self.path = path
        for name in KEPT_HEADERS:
            value = request.headers.get(name)
            if value is not None:
                self.headers[name] = value
        peer = self.transport.get_extra_info("peername")
        # the client's address by jutella/clientaddr.py's one rule: a throttle key, never stored or logged
        self.client_host = client_address(peer[0] if isinstance(peer, tuple) and peer else None,
                                          request.headers.get_all("x-forwarded-for"),
                                          self._app_state.get(TRUSTED_KEY, ()))
        self._request = request
        self._server_state.connections.add(self)
        task = asyncio.get_running_loop().create_task(self._serve(endpoint))
        self._server_state.tasks.add(task)  # uvicorn's strong reference, and its graceful shutdown waits on it
        task.add_done_callback(self._server_state.tasks.discard)

    def _hand_to_asgi(self, raw: bytes) -> None:
        """A path jutella's sockets do not serve: uvicorn's own protocol takes
        the connection to the ASGI application, which answers it."""
        # imported here: only uvicorn serving a path jutella does not needs it, and the
        # application under another ASGI server (realtime/asgi.py) never loads it
        from uvicorn.protocols.websockets.websockets_sansio_impl import WebSocketsSansIOProtocol

        delegate = WebSocketsSansIOProtocol(config=self._config, server_state=self._server_state,
                                            app_state=self._app_state)
        self._delegate = delegate
        delegate.connection_made(self.transport)
        delegate.data_received(raw)

    async def _serve(self, endpoint: Endpoint) -> None:
        try:
            await endpoint(self)
        except Exception as exc:
            log.warning("a chat socket's endpoint failed: %s", type(exc).__name__)
        if self._lost:
            return
        if not self._answered:
            self._respond(500, "Internal Server Error")
        elif self.conn.state is State.OPEN:
            await self.close(CLOSE_RESTART if self.draining else 1000)

    def _respond(self, status: int, text: str) -> None:
        self._answered = True
        self._request = None
        handshake = cast(ServerProtocol, self.conn)  # only called before the handshake is answered
        response = handshake.reject(status, text)
        handshake.send_response(response)
        self._push()
        self.transport.close()
        log.info("WebSocket %s [%d]", self.path, status)

    # -- the socket the endpoints use ---------------------------------------------
    @property
    def open(self) -> bool:
        return self._accepted and not self._lost and self.conn.state is State.OPEN

    async def accept(self) -> None:
        """Answer the handshake with 101 Switching Protocols (or, when the
        request is not a valid WebSocket upgrade, with the 4xx websockets
        chose; the endpoint then reads None)."""
        if self._answered or self._lost or self._request is None:
            return
        handshake = cast(ServerProtocol, self.conn)  # the handshake's parser until answered
        response = handshake.accept(self._request)
        self._request = None
        self._answered = True
        handshake.send_response(response)
        self._push()
        log.info("WebSocket %s [%s]", self.path, "accepted" if response.status_code == 101 else
                 response.status_code)  # never the client's address
        if response.status_code == 101:
            # RFC 6455 4.1: the client sends nothing before it has read the 101
            self.conn = Protocol(Side.SERVER, state=State.OPEN, max_size=MAX_SIZE, logger=log)
            self._accepted = True
        else:
            self.transport.close()

    async def deny(self, status: int, text: str) -> None:
        """Refuse the handshake with an HTTP status and a line of text."""
        if not self._answered and not self._lost:
            self._respond(status, text)

    async def close(self, code: int = 1000, reason: str = "") -> None:
        """Before the handshake is accepted: refuse it with 403. After: start
        the closing handshake (the client has 10 s to answer)."""
        if self._lost:
            return
        if not self._answered:
            self._respond(403, "")
            return
        if self.conn.state is State.OPEN:
            self.conn.send_close(code, reason)
            self._push()
            self._arm_close_timer()
            self._wake_reader()
            if self._paused_reading and not self._lost:  # the client's close reply must be read
                self._paused_reading = False            # (later data frames are dropped: _message)
                self.transport.resume_reading()

    async def receive(self) -> str | bytes | None:
        """The next message, or None once the connection is closing or gone."""
        while not self._messages:
            if self._lost or self.conn.state is not State.OPEN or self.draining:
                return None  # draining: all that was received is handled; the endpoint closes with 1012
            self._reader = asyncio.get_running_loop().create_future()
            try:
                await self._reader
            finally:
                self._reader = None
        message = self._messages.pop(0)
        if self._paused_reading and len(self._messages) < PAUSE_AT // 2 and not self._lost and not self.draining:
            self._paused_reading = False
            self.transport.resume_reading()
        return message

    async def send_many(self, frames: Sequence[bytes]) -> bool:
        """Send text frames (UTF-8 bytes) together: one write, one system
        call; False when the connection is closing or gone and nothing was
        sent. While the
        transport's buffer is over its high-water mark, wait for the client
        to read; one that reads nothing for WRITE_STALL_S is cut off (its
        widget or console reconnects and resumes by seq): otherwise the
        connection would wait for ever, since the close frame that would end
        it has to go out through the same full buffer."""
        while self._paused_writing and not self._lost:
            self._drain = asyncio.get_running_loop().create_future()
            try:
                await asyncio.wait_for(self._drain, WRITE_STALL_S)
            except TimeoutError:
                log.info("WebSocket %s: the client read nothing for %d s; cut off", self.path, WRITE_STALL_S)
                self.transport.abort()
                return False
            finally:
                self._drain = None
        if not self.open:
            return False
        self._push()  # what the parser has queued first (a pong), so nothing it holds is reordered
        chunks: list[bytes] = []
        for data in frames:
            chunks.append(text_frame_header(len(data)))
            chunks.append(data)
        if not self.transport.is_closing():
            self.transport.writelines(chunks)  # one system call for all of them
        return True

    # -- helpers ----------------------------------------------------------------------
    def _wake_reader(self) -> None:
        if self._reader is not None and not self._reader.done():
            self._reader.set_result(None)

    def _wake_writer(self) -> None:
        if self._drain is not None and not self._drain.done():
            self._drain.set_result(None)

    def _arm_close_timer(self) -> None:
        if self._close_timer is None and not self._lost:
            self._close_timer = asyncio.get_running_loop().call_later(CLOSE_TIMEOUT_S, self._abort)

    def _abort(self) -> None:
        self._close_timer = None
        if not self._lost:
            self.transport.abort()

