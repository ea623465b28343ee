"""The chat sockets' way in: ``/ws/visitor`` and ``/ws/agent`` go straight
from the server to their endpoints.

Routing a WebSocket through FastAPI's router and middleware stack (its
exception middleware, its exit stacks, the router's scope copies) costs about
7 KiB a connection that lives as long as the socket, and a wrapper call on
every frame sent. None of it does anything for a socket: the endpoints check
the Origin and the session themselves, and the HTTP-only middleware (security
headers, gzip, error pages) passes WebSocket scopes through untouched. With
ten thousand widgets open the difference is 70 MB (docs/performance.md).

Every other scope, HTTP and unknown socket paths alike, goes on to the
application as before.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from starlette.types import ASGIApp, Receive, Scope, Send
from starlette.websockets import WebSocket

Endpoint = Callable[[WebSocket], Awaitable[None]]


class DirectSockets:
    def __init__(self, app: ASGIApp, *, routes: dict[str, Endpoint]):
        self.app = app
        self.routes = routes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "websocket":
            endpoint = self.routes.get(scope["path"])
            if endpoint is not None:
                await endpoint(WebSocket(scope, receive, send))
                return
        await self.app(scope, receive, send)
