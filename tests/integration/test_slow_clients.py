"""Slow clients let go (issue 15; realtime/slowclients.py, realtime/httpserver.py).

A connection that never finishes its request headers is closed after the
header deadline (408 when part of a request came), a kept-alive one as much
as a new one, and a WebSocket upgrade too; an address may keep only so many
connections waiting for their headers, and one more is closed at once while
other addresses are served as before. The clients are raw sockets: they send
exactly the bytes a slow client would, and see what it would see.
"""

from __future__ import annotations

import socket
import time

import httpx
import pytest

from tests.chat_clients import visitor
from tests.helpers import HTTP_TLS, eventually, http_client

DEADLINE = 0.5  # seconds: the tests' header deadline (the default is 10)


@pytest.fixture
def backend():
    return "sqlite"


@pytest.fixture
def settings_overrides():
    return {"request_header_timeout_seconds": DEADLINE, "max_waiting_connections_per_address": 3}


def raw(url: str, source: str = "127.0.0.1") -> socket.socket:
    host, port = url.removeprefix("http://").split(":")
    sock = socket.socket()
    sock.bind((source, 0))
    sock.settimeout(10)  # far beyond the deadline: a server that keeps the connection fails the test here
    sock.connect((host, int(port)))
    return sock


def read_to_end(sock: socket.socket) -> tuple[bytes, float]:
    """What the server sent until it closed the connection, and how long that took."""
    start = time.monotonic()
    got = b""
    while chunk := sock.recv(4096):
        got += chunk
    return got, time.monotonic() - start


def waiting(live) -> float:
    return live.rt.metrics.registry.get_sample_value("jutella_waiting_connections")


def test_half_a_request_line_is_closed_with_408_after_the_deadline(server_process):
    """Against `jutella serve`, its deadline set by the environment variable."""
    server = server_process(JUTELLA_REQUEST_HEADER_TIMEOUT_SECONDS=str(DEADLINE)).start()
    idle = raw(server.url)  # sends nothing at all
    slow = raw(server.url)
    slow.sendall(b"GET /healthz HT")
    got, took = read_to_end(slow)
    assert got.startswith(b"HTTP/1.1 408 "), got
    assert DEADLINE * 0.5 <= took < DEADLINE + 3
    assert read_to_end(idle)[0] == b""  # closed without a word: it never asked anything
    assert httpx.get(server.url + "/healthz").status_code == 200  # the server is as it was


def test_a_kept_alive_connection_whose_next_request_stalls_is_closed(live):
    sock = raw(live.url)
    sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
    first = b""
    while b"\r\n\r\n" not in first or not first.rstrip().endswith(b"}"):
        first += sock.recv(4096)
    assert first.startswith(b"HTTP/1.1 200 ")
    sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n")  # and never the blank line
    got, took = read_to_end(sock)
    assert got.startswith(b"HTTP/1.1 408 "), got
    assert took < DEADLINE + 3


def test_a_websocket_upgrade_that_never_completes_is_let_go_and_finished_ones_stay(live):
    v, _ = visitor(live)  # a whole handshake, just before
    stalled = raw(live.url)
    stalled.sendall(b"GET /ws/visitor HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\n"
                    b"Connection: Upgrade\r\nSec-WebSocket-Version: 13\r\n")
    got, took = read_to_end(stalled)
    assert got.startswith(b"HTTP/1.1 408 "), got
    assert took < DEADLINE + 3
    # the deadline is for the request, not for the socket it became: the
    # visitor's, older than the stalled one, is past it and still open
    v.send(type="ping")
    assert v.until(lambda f: f["type"] == "pong")
    v.close()


# a deadline long enough for the test to see the cap at work
@pytest.mark.parametrize("settings_overrides", [{"request_header_timeout_seconds": 60,
                                                 "max_waiting_connections_per_address": 3}])
def test_an_address_at_its_cap_of_waiting_connections_gets_no_more_and_others_are_served(live):
    stalled = []
    for _ in range(3):
        sock = raw(live.url)
        sock.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n")
        stalled.append(sock)
    eventually(lambda: waiting(live) == 3)

    extra = raw(live.url)  # the fourth from 127.0.0.1: closed as soon as it is accepted
    got, took = read_to_end(extra)
    assert got == b"" and took < 5
    assert live.rt.metrics.registry.get_sample_value("jutella_slow_clients_total", {"outcome": "refused"}) == 1

    # meanwhile another address is served, HTTP and chat alike
    other = http_client(base_url=live.url, timeout=10,
                         transport=httpx.HTTPTransport(local_address="127.0.0.2", verify=HTTP_TLS))
    assert other.get("/healthz").status_code == 200
    v, _ = visitor(live, source="127.0.0.2")
    v.close()

    # when the waiting ones go, the address is served again
    for sock in stalled:
        sock.close()
    eventually(lambda: waiting(live) == 0)
    assert httpx.get(live.url + "/healthz", timeout=10).status_code == 200

