"""jutella's HTTP protocol class: uvicorn's httptools protocol, with slow clients let go.

``SERVER_OPTIONS`` (app.py) names this class as uvicorn's ``http`` protocol,
so ``jutella serve``, the benchmark and the test servers all use it. It is
uvicorn's ``HttpToolsProtocol`` unchanged (WebSocket upgrades still go on to
realtime/wsserver.ChatSocket), plus the two rules of realtime/slowclients.py:
a deadline for each request's headers and a cap per address on connections
still waiting for them. uvicorn has a keep-alive timeout but nothing for a
request that never finishes arriving.

What it uses of uvicorn (docs/sockets.md, "Other libraries' internals"): the
constructor uvicorn calls, ``connection_made``/``connection_lost``, the
parser callbacks ``on_message_begin`` (a request's first byte) and
``on_headers_complete`` (its headers are in; for an upgrade, just before the
hand-off), and the attributes ``client``, ``transport`` and ``loop``.

Without the lifespan state entry (an application other than jutella's) it
behaves exactly as uvicorn's.
"""

from __future__ import annotations

import asyncio
from typing import Any

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from jutella.realtime.slowclients import STATE_KEY, SlowClients

REQUEST_TIMEOUT = (b"HTTP/1.1 408 Request Timeout\r\ncontent-type: text/plain; charset=utf-8\r\n"
                   b"content-length: 26\r\nconnection: close\r\n\r\nThe request took too long.")


class HttpProtocol(HttpToolsProtocol):
    def __init__(self, config: Any, server_state: Any, app_state: dict[str, Any],
                 _loop: asyncio.AbstractEventLoop | None = None) -> None:
        super().__init__(config, server_state, app_state, _loop)
        self._slow: SlowClients | None = app_state.get(STATE_KEY)
        self._header_timer: asyncio.TimerHandle | None = None
        self._counted: str | None = None  # the key this connection is counted under while it waits
        self._started = False  # a byte of the awaited request has arrived

    # -- the connection ---------------------------------------------------------------
    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        if self._slow is not None:
            self._await_headers(self._slow)

    def connection_lost(self, exc: Exception | None) -> None:
        self._headers_done()
        super().connection_lost(exc)

    # -- the parser's callbacks ---------------------------------------------------------
    def on_message_begin(self) -> None:
        super().on_message_begin()
        if self._slow is None:
            return
        if self._header_timer is None:  # a later request on a kept-alive connection
            self._await_headers(self._slow)
        self._started = True

    def on_headers_complete(self) -> None:
        self._headers_done()  # first: for an upgrade uvicorn returns early and hands the connection on
        super().on_headers_complete()

    # -- the rules ------------------------------------------------------------------------
    def _await_headers(self, slow: SlowClients) -> None:
        counted = slow.enter(self.client[0] if self.client else None)
        if counted is False:
            self.transport.close()  # the address has its share of waiting connections
            return
        self._counted = counted
        self._started = False
        self._header_timer = self.loop.call_later(slow.header_timeout_s, self._headers_late)

    def _headers_done(self) -> None:
        if self._header_timer is not None:
            self._header_timer.cancel()
            self._header_timer = None
        if self._counted is not None and self._slow is not None:
            self._slow.leave(self._counted)
            self._counted = None

    def _headers_late(self) -> None:
        self._header_timer = None
        started = self._started
        self._headers_done()
        if self._slow is not None:
            self._slow.late()
        if self.transport.is_closing():
            return
        if started:
            self.transport.write(REQUEST_TIMEOUT)
        self.transport.close()
