"""The chat sockets under an ASGI server other than jutella's own.

``jutella serve`` (and the benchmark and the test servers) run uvicorn with
realtime/wsserver.ChatSocket as its WebSocket protocol, which serves
``/ws/visitor`` and ``/ws/agent`` without ASGI at all. Anyone who mounts
jutella's application under another ASGI server gets the same endpoints
through this middleware instead: it takes the two paths before FastAPI's
router and middleware (which cost about 7 KiB a connection for the socket's
whole life and do nothing for it: the endpoints check the Origin and the
session themselves) and adapts Starlette's WebSocket to the endpoints'
Socket (realtime/connection.Socket).

Every other scope, HTTP and unknown socket paths alike, goes on to the
application as before.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from typing import Any

from starlette.responses import PlainTextResponse
from starlette.types import ASGIApp, Receive, Scope, Send
from starlette.websockets import WebSocket, WebSocketDisconnect, WebSocketState

from jutella.clientaddr import Network, client_address

Endpoint = Callable[[Any], Awaitable[None]]


class AsgiSocket:
    __slots__ = ("ws", "headers", "client_host")

    def __init__(self, ws: WebSocket, trusted: Sequence[Network] = ()):
        self.ws = ws
        self.headers = ws.headers
        # the client's address by jutella/clientaddr.py's one rule: a throttle key, never stored or logged
        self.client_host = client_address(ws.client.host if ws.client else None,
                                          ws.headers.getlist("x-forwarded-for"), trusted)

    @property
    def open(self) -> bool:
        return (self.ws.client_state == WebSocketState.CONNECTED
                and self.ws.application_state == WebSocketState.CONNECTED)

    async def accept(self) -> None:
        await self.ws.accept()

    async def deny(self, status: int, text: str) -> None:
        await self.ws.send_denial_response(PlainTextResponse(text, status_code=status))

    async def close(self, code: int = 1000, reason: str = "") -> None:
        if self.ws.application_state == WebSocketState.DISCONNECTED:
            return
        try:
            await self.ws.close(code, reason)
        except (RuntimeError, WebSocketDisconnect, OSError):  # the client is already gone
            pass

    async def receive(self) -> str | bytes | None:
        try:
            message = await self.ws.receive()
        except (RuntimeError, WebSocketDisconnect):
            return None
        if message["type"] == "websocket.disconnect":
            return None
        text = message.get("text")
        return text if text is not None else (message.get("bytes") or b"")

    async def send_many(self, frames: Sequence[bytes]) -> bool:
        for data in frames:  # ASGI sends one message at a time
            if not self.open:
                return False
            try:
                await self.ws.send_text(data.decode())
            except (RuntimeError, WebSocketDisconnect, OSError):  # the server side closed the socket under us
                return False
        return True


class DirectSockets:
    def __init__(self, app: ASGIApp, *, routes: dict[str, Endpoint], trusted: Sequence[Network] = ()):
        self.app = app
        self.routes = routes
        self.trusted = tuple(trusted)  # settings.trusted_proxies

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "websocket":
            endpoint = self.routes.get(scope["path"])
            if endpoint is not None:
                await endpoint(AsgiSocket(WebSocket(scope, receive, send), self.trusted))
                return
        await self.app(scope, receive, send)
