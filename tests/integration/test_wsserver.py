"""jutella's own WebSocket server protocol (realtime/wsserver.py), over real
sockets: what a client sees at the edges (handshake refusals, bad frames,
floods, fragments, a restart, a client that never answers a close), and the
same chat through the ASGI adapter that other servers would use."""

from __future__ import annotations

import json
import socket
import time
import uuid

import pytest
from websockets.client import ClientProtocol
from websockets.exceptions import ConnectionClosed, InvalidStatus
from websockets.frames import Frame, Opcode
from websockets.protocol import State
from websockets.sync.client import connect
from websockets.uri import parse_uri

from jutella.realtime import wsserver

from tests.chat_clients import agent, visitor
from tests.conftest import start_live
from tests.helpers import add_staff, sign_in

@pytest.fixture
def backend():
    return "sqlite"  # the socket layer is the same whatever the database


@pytest.fixture
def settings_overrides():
    return {"max_messages_per_minute": 0}  # the flood below is about the socket, not the rate limit


def _chat_both_ways(live) -> None:
    add_staff(live, "aino@example.org", ["agent"], name="Aino")
    http = sign_in(live, "aino@example.org")
    a, _ = agent(live, http)
    v, _ = visitor(live)
    v.message("Hei, tarvitsen apua")
    conv = v.until(lambda f: f["type"] == "ack")["conversation"]
    a.send(type="subscribe", conversation=conv, last_seq=0)
    a.send(type="accept", conversation=conv)
    assert a.until(lambda f: f["type"] == "event" and f["seq"] == 1)["body"] == "Hei, tarvitsen apua"
    a.message("Hei! Miten voin auttaa?", conversation=conv)
    reply = v.until(lambda f: f["type"] == "event" and f.get("author") == "agent")
    assert reply["body"] == "Hei! Miten voin auttaa?"
    v.close()
    a.close()


def test_jutella_serves_its_chat_sockets_itself(live, monkeypatch):
    """The live servers run with SERVER_OPTIONS: the chat goes through
    ChatSocket, not through uvicorn's ASGI WebSocket protocol."""
    seen: list[str] = []
    original = wsserver.ChatSocket.accept

    async def spy(self):
        seen.append(self.path)
        await original(self)

    monkeypatch.setattr(wsserver.ChatSocket, "accept", spy)
    _chat_both_ways(live)
    assert sorted(seen) == ["/ws/agent", "/ws/visitor"]


def test_a_chat_works_the_same_through_the_asgi_adapter(settings, clock):
    """Under uvicorn's own WebSocket protocol (any ASGI server, in effect) the
    DirectSockets middleware serves the same endpoints."""
    live, stop = start_live(settings, clock, ws="websockets-sansio")
    try:
        _chat_both_ways(live)
        with pytest.raises(InvalidStatus) as info:
            connect(live.ws_url + "/ws/visitor", origin="https://evil.example", open_timeout=5)
        assert info.value.response.status_code == 403
    finally:
        stop()


def test_other_socket_paths_are_answered_by_the_application(live):
    with pytest.raises(InvalidStatus) as info:
        connect(live.ws_url + "/ws/nothing-here", origin=live.url, open_timeout=5)
    assert info.value.response.status_code == 403  # the router has no such WebSocket route
    with pytest.raises(InvalidStatus) as info:
        connect(live.ws_url + "/ws/visitor", origin="https://evil.example", open_timeout=5)
    assert info.value.response.status_code == 403


def test_a_message_in_fragments_and_a_flood_are_each_acked_once_in_order(live):
    v, _ = visitor(live)
    cid = uuid.uuid4().hex
    frame = json.dumps({"type": "message", "client_id": cid, "body": "pala " * 400})
    v.conn.send([frame[:100], frame[100:1500], frame[1500:]])  # three WebSocket frames, one message
    ack = v.until(lambda f: f["type"] == "ack")
    assert ack["client_id"] == cid

    # 300 messages without reading: reading from the socket pauses while they
    # wait, and every one is stored and acked, once, in order
    ids = [uuid.uuid4().hex for _ in range(300)]
    for i, client_id in enumerate(ids):
        v.send(type="message", client_id=client_id, body=f"viesti {i}")
    acks = [v.until(lambda f: f["type"] == "ack", timeout=30) for _ in ids]
    assert [a["client_id"] for a in acks] == ids
    seqs = [a["seq"] for a in acks]
    assert seqs == sorted(seqs) and len(set(seqs)) == 300
    v.close()


def test_bad_frames_close_with_the_code_that_says_why(live):
    v, _ = visitor(live)
    v.conn.send(b'{"type":"typing","active":true}\xff', text=True)  # not UTF-8
    with pytest.raises(ConnectionClosed) as info:
        v.recv(timeout=5)
    assert info.value.rcvd.code == 1007

    v, _ = visitor(live)
    v.conn.send("x" * (wsserver.MAX_SIZE + 1))
    with pytest.raises(ConnectionClosed) as info:
        v.recv(timeout=5)
    assert info.value.rcvd.code == 1009


def test_a_restart_closes_open_chats_with_1012_and_the_chat_resumes(settings, clock):
    live, stop = start_live(settings, clock)
    try:
        v, welcome = visitor(live)
        v.message("ennen")
        ack = v.until(lambda f: f["type"] == "ack")
    finally:
        stop()  # uvicorn's graceful shutdown
    with pytest.raises(ConnectionClosed) as info:
        while True:
            v.recv(timeout=5)
    assert info.value.rcvd.code == 1012

    live, stop = start_live(settings, clock)
    try:
        token = next(f for f in v.frames if f["type"] == "welcome")["token"]
        v2, welcome = visitor(live, token=token, last_seq=0)
        assert welcome["conversation"]["id"] == ack["conversation"]
        assert v2.until(lambda f: f["type"] == "event" and f["seq"] == ack["seq"])["body"] == "ennen"
        v2.close()
    finally:
        stop()


def _raw_client(live, path: str) -> tuple[socket.socket, ClientProtocol]:
    """A client that speaks WebSocket by hand, so that it can stop answering."""
    client = ClientProtocol(parse_uri(live.ws_url + path), origin=None)
    sock = socket.create_connection(("127.0.0.1", int(live.url.rsplit(":", 1)[1])), timeout=5)
    request = client.connect()
    request.headers["Origin"] = live.url
    client.send_request(request)
    sock.sendall(b"".join(client.data_to_send()))
    while client.state is State.CONNECTING:
        client.receive_data(sock.recv(65536))
    assert client.events_received()[0].status_code == 101
    return sock, client


def test_a_client_that_never_answers_our_close_is_cut_off(live, monkeypatch):
    monkeypatch.setattr(wsserver, "CLOSE_TIMEOUT_S", 0.5)
    sock, client = _raw_client(live, "/ws/visitor")
    client.send_text(b'{"type":"hello","token":"made-up-token","last_seq":0}')
    sock.sendall(b"".join(client.data_to_send()))
    t0 = time.monotonic()
    received = b""
    while chunk := sock.recv(65536):  # read, and never send the close frame back
        received += chunk
    assert time.monotonic() - t0 < 5  # cut off after CLOSE_TIMEOUT_S, not left open
    client.receive_data(received)
    frames = [e for e in client.events_received() if isinstance(e, Frame)]
    assert frames[-1].opcode is Opcode.CLOSE and client.close_rcvd.code == 4401
    sock.close()


class FakeTransport:
    """The transport side of asyncio, recorded: the sans-I/O way to drive
    ChatSocket through states a real client cannot easily produce."""

    def __init__(self) -> None:
        self.written = b""
        self.closing = self.aborted = False

    def get_extra_info(self, name, default=None):
        return ("127.0.0.1", 40000) if name == "peername" else default

    def write(self, data: bytes) -> None:
        self.written += data

    def writelines(self, chunks) -> None:
        self.written += b"".join(chunks)

    def is_closing(self) -> bool:
        return self.closing

    def close(self) -> None:
        self.closing = True

    def abort(self) -> None:
        self.closing = self.aborted = True

    def pause_reading(self) -> None: ...

    def resume_reading(self) -> None: ...


def _drive(endpoint) -> FakeTransport:
    """Open a ChatSocket on a fake transport with a browser's handshake and
    run ``endpoint(socket)`` on it to the end."""
    import asyncio
    from types import SimpleNamespace

    from tests.conftest import run_async

    async def scenario() -> FakeTransport:
        state = SimpleNamespace(connections=set(), tasks=set())
        sock = wsserver.ChatSocket(config=None, server_state=state,
                                   app_state={wsserver.STATE_KEY: {"/ws/visitor": endpoint}})
        transport = FakeTransport()
        sock.connection_made(transport)
        client = ClientProtocol(parse_uri("ws://127.0.0.1:1/ws/visitor"))
        client.send_request(client.connect())
        sock.data_received(b"".join(client.data_to_send()))
        await asyncio.wait_for(asyncio.gather(*state.tasks), 5)
        return transport

    return run_async(scenario())


def test_a_client_that_reads_nothing_from_a_full_buffer_is_cut_off(monkeypatch):
    """While the transport's buffer is over its high-water mark a send waits
    for the client to read; a client that reads nothing for WRITE_STALL_S is
    cut off (otherwise the connection would wait for ever: the close frame
    that would end it has to go out through the same full buffer)."""
    monkeypatch.setattr(wsserver, "WRITE_STALL_S", 0.2)
    outcome = {}

    async def endpoint(sock) -> None:
        await sock.accept()
        sock.pause_writing()  # what the transport calls when its buffer is over the high-water mark
        outcome["sent"] = await sock.send_many([b'{"type":"presence","agents_online":true}'])

    transport = _drive(endpoint)
    assert transport.written.startswith(b"HTTP/1.1 101 Switching Protocols")
    assert outcome["sent"] is False and transport.aborted
    assert b"agents_online" not in transport.written


def test_a_client_that_reads_again_in_time_gets_what_waited(monkeypatch):
    import asyncio

    monkeypatch.setattr(wsserver, "WRITE_STALL_S", 5.0)
    outcome = {}

    async def endpoint(sock) -> None:
        await sock.accept()
        sock.pause_writing()
        asyncio.get_running_loop().call_later(0.1, sock.resume_writing)  # the client read: below the low-water mark
        outcome["sent"] = await sock.send_many([b'{"n":1}', b'{"n":2}'])

    transport = _drive(endpoint)
    assert outcome["sent"] is True and not transport.aborted
    assert b'{"n":1}' in transport.written and b'{"n":2}' in transport.written


def test_a_visitors_ack_and_the_event_of_its_message_leave_in_one_write(live, monkeypatch):
    """In a chat under way, the hub delivers the event to the visitor's own
    subscription during the publish, before the ack is queued; the outbound
    task then sends both together: one system call a message for the sender
    (docs/performance.md)."""
    writes: list[list[dict]] = []
    original = wsserver.ChatSocket.send_many

    async def spy(self, frames):
        if self.path == "/ws/visitor":
            writes.append([json.loads(f) for f in frames])
        return await original(self, frames)

    monkeypatch.setattr(wsserver.ChatSocket, "send_many", spy)
    v, _ = visitor(live)
    v.message("ensimmäinen")  # starts the chat: followed after the commit, its event read back first
    v.until(lambda f: f["type"] == "ack")
    for n in range(3):
        v.message(f"viesti {n}")
        ack = v.until(lambda f: f["type"] == "ack")
        v.until(lambda f: f["type"] == "event" and f["seq"] == ack["seq"])
        together = [w for w in writes if any(f["type"] == "ack" and f["seq"] == ack["seq"] for f in w)]
        assert len(together) == 1
        assert [f["type"] for f in together[0] if f.get("seq") == ack["seq"]] == ["ack", "event"], together
    v.close()
