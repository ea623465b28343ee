"""The kill -9 soak: ``jutella serve`` killed at random moments under load,
at least twenty times, restarted each time.

Three visitors and an agent write without pause from their own threads. At a
random moment (0.3 to 1.3 s into each cycle) the whole server process group
gets SIGKILL. After each restart the staff HTTP API must show every message
acked so far exactly once, under the seq it was acked with, and each
conversation's seqs must be 1..N without a gap. Then the clients reconnect
with their token (visitors) or session (the agent) and the last seq they have,
resend everything never acked (same client ids), and the next cycle starts.
At the end every message ever sent is stored exactly once, and each client has
been shown every event of its conversations exactly once, in order.

SQLite and PostgreSQL (through the ``backend`` fixture).
"""

from __future__ import annotations

import os
import random
import threading
import time
import uuid
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest

from tests.chat_clients import WsClient, agent, visitor
from tests.helpers import PASSWORD, http_client, run_cli

CYCLES = 20
VISITORS = 3
IN_FLIGHT = 25  # messages a client has sent and not yet seen acked, at most

pytestmark = pytest.mark.timeout(300)


@dataclass
class Writer:
    """One client's side of the soak: what it sent, what was acked, what it was shown."""

    name: str
    token: str | None = None
    conversations: list[int] = field(default_factory=list)
    sent: dict[str, tuple[int | None, str]] = field(default_factory=dict)  # client id -> (conversation, body)
    acked: dict[str, tuple[int, int]] = field(default_factory=dict)  # client id -> (conversation, seq)
    shown: dict[int, list[int]] = field(default_factory=dict)  # conversation -> seqs, across connections
    errors: list[str] = field(default_factory=list)
    client: WsClient | None = None

    def last_seq(self, conv: int) -> int:
        return max(self.shown.get(conv, [0]))

    def unacked(self) -> list[str]:
        return [cid for cid in self.sent if cid not in self.acked]


def flood(w: Writer, stop: threading.Event, conv_for_agent: list[int] | None, rng: random.Random) -> None:
    """Send until the connection dies or the cycle ends."""
    n = 0
    try:
        while not stop.is_set():
            if len(w.sent) - len(w.acked) >= IN_FLIGHT:  # a real client's backlog stays small
                time.sleep(0.002)
                continue
            cid = f"{w.name}-{uuid.uuid4().hex[:12]}"
            if conv_for_agent is None:
                w.sent[cid] = (None, f"{w.name} {len(w.sent)}")
                w.client.message(w.sent[cid][1], client_id=cid)
            else:
                conv = conv_for_agent[n % len(conv_for_agent)]
                w.sent[cid] = (conv, f"{w.name} {len(w.sent)}")
                w.client.message(w.sent[cid][1], client_id=cid, conversation=conv)
            n += 1
            time.sleep(rng.uniform(0.003, 0.012))
    except Exception:  # the server died under us: expected
        pass


def collect(w: Writer) -> None:
    """Record acks and shown events until the connection dies. On one
    connection, each conversation's events come once each and in order."""
    first_on_this_connection: dict[int, int] = {}
    try:
        while True:
            f = w.client.recv(timeout=30)
            if f["type"] == "ack":
                w.acked[f["client_id"]] = (f["conversation"], f["seq"])
            elif f["type"] == "event":
                conv, seq = f["conversation"], f["seq"]
                seen = w.shown.setdefault(conv, [])
                if seen and seq <= seen[-1]:
                    w.errors.append(f"{w.name}: seq {seq} of {conv} after {seen[-1]} "
                                    f"(this connection began after {first_on_this_connection.get(conv)})")
                elif seq != (seen[-1] if seen else 0) + 1:
                    w.errors.append(f"{w.name}: seq {seq} of {conv} skips from {seen[-1] if seen else 0}")
                first_on_this_connection.setdefault(conv, seq)
                seen.append(seq)
            elif f["type"] == "error":
                w.errors.append(f"{w.name}: error frame {f}")
    except Exception:  # the connection closed
        pass


def staff_client(server) -> httpx.Client:
    http = http_client(base_url=server.url, timeout=30)
    r = http.post("/api/v1/public/staff/login", json={"email": "aino@example.org", "password": PASSWORD})
    assert r.status_code == 200, r.text
    http.headers["X-CSRF-Token"] = r.json()["csrf_token"]
    return http


def check_store(http: httpx.Client, writers: list[Writer], cycle: int) -> dict[int, list[dict[str, Any]]]:
    """Every acked message exactly once, under its acked seq; seqs 1..N without gaps."""
    convs = sorted({c for w in writers for c in w.conversations})
    stored: dict[int, list[dict[str, Any]]] = {}
    for conv in convs:
        r = http.get(f"/api/v1/conversations/{conv}")
        assert r.status_code == 200, r.text
        events = r.json()["events"]
        assert [e["seq"] for e in events] == list(range(1, len(events) + 1)), f"cycle {cycle}: a gap in {conv}"
        ids = [e["client_id"] for e in events if e["kind"] == "message"]
        assert len(ids) == len(set(ids)), f"cycle {cycle}: a message stored twice in {conv}"
        stored[conv] = events
    where = {(e["conversation"], e["client_id"]): e["seq"] for events in stored.values() for e in events}
    for w in writers:
        for cid, (conv, seq) in w.acked.items():
            assert where.get((conv, cid)) == seq, f"cycle {cycle}: {cid} acked as {conv}/{seq}, stored as " \
                                                  f"{where.get((conv, cid))}"
    return stored


def connect_all(server, http: httpx.Client, visitors: list[Writer], desk: Writer) -> None:
    for w in visitors:
        conv = w.conversations[-1]
        w.client, welcome = visitor(server, token=w.token, last_seq=w.last_seq(conv))
        assert welcome["conversation"]["id"] == conv
    desk.client, _ = agent(server, http, subscriptions={c: desk.last_seq(c) for c in desk.conversations})


def resend_unacked(w: Writer) -> None:
    for cid in w.unacked():
        conv, body = w.sent[cid]
        if conv is None:
            w.client.message(body, client_id=cid)
        else:
            w.client.message(body, client_id=cid, conversation=conv)


def restart(server_process, server, env: dict[str, str]):
    """Start the killed server again. Should another process on this machine
    (a parallel test run) have taken its port meanwhile, a new one is used;
    any other failure is raised with the server's output. The process for
    the restart after this one loads its modules meanwhile (prepare_restart)."""
    try:
        again = server.start()
    except RuntimeError as exc:
        if "address already in use" not in str(exc).lower():
            raise
        again = server_process(**env).start()
    again.prepare_restart()
    return again


@pytest.fixture
def backend():
    """One database keeps the suite's time in bounds; the durability tests cover PostgreSQL."""
    return "sqlite"


def test_kill_9_at_random_moments_under_load(server_process, backend):
    seed = int(os.environ.get("JUTELLA_SOAK_SEED", random.randrange(1 << 30)))
    rng = random.Random(seed)
    started = time.monotonic()
    env = {"JUTELLA_MAX_MESSAGES_PER_MINUTE": "0", "JUTELLA_MAX_CONVERSATIONS_PER_HOUR": "0"}
    server = server_process(**env).start()
    server.prepare_restart()
    run_cli("user", "add", "aino@example.org", "--name", "Aino", "--role", "agent", "--password-stdin",
            stdin=PASSWORD, env=server.env, check=True)
    http = staff_client(server)

    # the visitors' chats, all taken by the agent
    visitors = [Writer(f"v{n}") for n in range(VISITORS)]
    for w in visitors:
        w.client, welcome = visitor(server)
        w.token = welcome["token"]
        cid = f"{w.name}-first"
        w.sent[cid] = (None, f"{w.name} first")
        w.client.message(w.sent[cid][1], client_id=cid)
        ack = w.client.until(lambda f: f["type"] == "ack")
        w.acked[cid] = (ack["conversation"], ack["seq"])
        w.conversations.append(ack["conversation"])
    desk = Writer("agent")
    desk.conversations = [w.conversations[0] for w in visitors]
    desk.client, _ = agent(server, http, subscriptions={c: 0 for c in desk.conversations})
    for conv in desk.conversations:
        desk.client.send(type="accept", conversation=conv)
    for w in visitors:
        w.client.until(lambda f: f["type"] == "event" and f["kind"] == "state")
    for w in [*visitors, desk]:
        w.client.close()
        w.client = None
    everyone = [*visitors, desk]
    check_store(http, everyone, 0)

    restarts: list[float] = []
    loads: list[float] = []
    for cycle in range(1, CYCLES + 1):
        connect_all(server, http, visitors, desk)
        stop = threading.Event()
        threads = [threading.Thread(target=collect, args=(w,)) for w in everyone]
        for t in threads:
            t.start()
        for w in everyone:  # what the last crash left unacked goes again first
            resend_unacked(w)
        threads += [threading.Thread(target=flood, args=(w, stop, None, random.Random(rng.random())))
                    for w in visitors]
        threads.append(threading.Thread(target=flood, args=(desk, stop, desk.conversations,
                                                             random.Random(rng.random()))))
        for t in threads[len(everyone):]:
            t.start()
        load = rng.uniform(0.3, 1.3)
        time.sleep(load)
        loads.append(load)
        server.kill9()
        stop.set()
        for t in threads:
            t.join(30)
            assert not t.is_alive()
        t0 = time.monotonic()
        again = restart(server_process, server, env)
        restarts.append(time.monotonic() - t0)
        if again is not server:
            server, http = again, staff_client(again)
        for w in everyone:
            assert w.errors == [], w.errors
        check_store(http, everyone, cycle)

    # finally: everything never acked goes again and is acked; all of it stored exactly once
    connect_all(server, http, visitors, desk)
    for w in everyone:
        threading.Thread(target=collect, args=(w,), daemon=True).start()
        resend_unacked(w)
    deadline = time.monotonic() + 30
    while any(w.unacked() for w in everyone) and time.monotonic() < deadline:
        time.sleep(0.02)
    assert [cid for w in everyone for cid in w.unacked()] == []
    stored = check_store(http, everyone, CYCLES + 1)
    all_ids = sorted(cid for w in everyone for cid in w.sent)
    stored_ids = sorted(e["client_id"] for events in stored.values() for e in events if e["kind"] == "message")
    assert stored_ids == all_ids, "a message is missing, doubled, or came from nowhere"
    # and each client has been shown every event of its conversations once, in order
    for w in everyone:
        for conv in (w.conversations if w is desk else w.conversations[-1:]):
            while w.last_seq(conv) < len(stored[conv]) and time.monotonic() < deadline + 10:
                time.sleep(0.02)
            assert w.shown[conv] == list(range(1, len(stored[conv]) + 1)), f"{w.name} in {conv}"
        assert w.errors == [], w.errors
        w.client.close()
    total = sum(len(events) for events in stored.values())
    print(f"\n{backend}: seed {seed}, {CYCLES} kill -9 cycles, {len(all_ids)} messages ({total} events) in "
          f"{len(stored)} conversations; load per cycle {min(loads):.2f}-{max(loads):.2f} s, restart "
          f"{min(restarts):.2f}-{max(restarts):.2f} s; {time.monotonic() - started:.0f} s in all")
