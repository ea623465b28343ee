"""Loss tests: a dropped connection and a killed server lose nothing that was
acked, and show nothing twice."""

from __future__ import annotations

import threading
import time
import uuid

import pytest
from websockets.exceptions import ConnectionClosed

from tests.chat_clients import agent, visitor
from tests.conftest import TOPOLOGIES
from tests.helpers import PASSWORD, add_staff, http_client, run_cli, sign_in


@pytest.fixture(params=TOPOLOGIES)
def backend(request):
    """Runs on all three topologies (one process on SQLite, on PostgreSQL, two servers on PostgreSQL + Redis)."""
    return request.param


def is_event(f):
    return f["type"] == "event"


def drain_events(client, want_seq: int, timeout: float = 10) -> list[dict]:
    """Read until the event with want_seq has arrived; return all events seen."""
    got = []
    deadline = time.time() + timeout
    while not got or got[-1]["seq"] < want_seq:
        got.append(client.until(is_event, timeout=max(0.1, deadline - time.time())))
    return got


def test_dropped_connections_on_both_sides_lose_and_repeat_nothing(live):
    add_staff(live, "aino@example.org", ["agent"])
    http = sign_in(live, "aino@example.org")
    v, w = visitor(live)
    v.message("alku")
    conv = v.until(lambda f: f["type"] == "ack")["conversation"]
    a, _ = agent(live, http, subscriptions={conv: 0})
    a.send(type="accept", conversation=conv)
    v_seen = [e["seq"] for e in drain_events(v, 2)]
    a_seen = [e["seq"] for e in drain_events(a, 2)]

    # both sockets drop; each side keeps writing into the void: these are never acked
    v.conn.close()
    a.conn.close()
    unacked_v = [str(uuid.uuid4()) for _ in range(3)]
    unacked_a = [str(uuid.uuid4()) for _ in range(3)]
    # the agent's tab reconnects first and resends; the visitor resends after
    a2, _ = agent(live, http, subscriptions={conv: a_seen[-1]})
    for n, cid in enumerate(unacked_a):
        a2.message(f"agent {n}", client_id=cid, conversation=conv)
    v2, _ = visitor(live, token=w["token"], last_seq=v_seen[-1])
    for n, cid in enumerate(unacked_v):
        v2.message(f"visitor {n}", client_id=cid)
        v2.message(f"visitor {n}", client_id=cid)  # and a duplicate resend for good measure
    last = 2 + 3 + 3
    v_all = v_seen + [e["seq"] for e in drain_events(v2, last)]
    a_all = a_seen + [e["seq"] for e in drain_events(a2, last)]
    assert v_all == list(range(1, last + 1))
    assert a_all == list(range(1, last + 1))
    bodies = [e["body"] for e in http.get(f"/api/v1/conversations/{conv}").json()["events"] if e["kind"] == "message"]
    assert sorted(bodies) == sorted(["alku"] + [f"agent {n}" for n in range(3)] + [f"visitor {n}" for n in range(3)])


def test_kill_9_loses_no_acked_message_and_both_sides_carry_on(server_process):
    # a deliberate flood: the per-visitor message limit is lifted for it
    server = server_process(JUTELLA_MAX_MESSAGES_PER_MINUTE="0").start()
    server.prepare_restart()  # the restart's process loads its modules meanwhile
    run_cli("user", "add", "aino@example.org", "--name", "Aino", "--role", "agent", "--password-stdin",
            stdin=PASSWORD, env=server.env, check=True)
    http = http_client(base_url=server.url)
    r = http.post("/api/v1/public/staff/login", json={"email": "aino@example.org", "password": PASSWORD})
    http.headers["X-CSRF-Token"] = r.json()["csrf_token"]
    v, w = visitor(server)
    v.message("first")
    conv = v.until(lambda f: f["type"] == "ack")["conversation"]
    a, _ = agent(server, http, subscriptions={conv: 0})
    a.send(type="accept", conversation=conv)

    acked: dict[str, int] = {}
    sent: list[str] = []
    stop = threading.Event()

    def flood() -> None:
        try:
            while not stop.is_set():
                cid = str(uuid.uuid4())
                sent.append(cid)
                v.message(f"m {len(sent)}", client_id=cid)
                time.sleep(0.002)
        except Exception:
            pass

    def collect() -> None:
        try:
            while True:
                f = v.recv(timeout=10)
                if f["type"] == "ack":
                    acked[f["client_id"]] = f["seq"]
        except Exception:
            pass

    threads = [threading.Thread(target=flood), threading.Thread(target=collect)]
    for t in threads:
        t.start()
    while len(acked) < 30:
        time.sleep(0.01)
    server.kill9()
    stop.set()
    for t in threads:
        t.join(15)
    assert len(acked) >= 30 and len(sent) > len(acked) - 1

    server.start()
    http = http_client(base_url=server.url)
    r = http.post("/api/v1/public/staff/login", json={"email": "aino@example.org", "password": PASSWORD})
    http.headers["X-CSRF-Token"] = r.json()["csrf_token"]
    events = http.get(f"/api/v1/conversations/{conv}").json()["events"]
    stored = [e["client_id"] for e in events if e["author"] == "visitor"]
    for cid, seq in acked.items():
        assert stored.count(cid) == 1, "an acked message is missing or doubled"
    assert [e["seq"] for e in events] == list(range(1, len(events) + 1))

    # the visitor's client resends everything never acked; nothing is doubled
    v2, _ = visitor(server, token=w["token"], last_seq=0)
    unacked = [cid for cid in sent if cid not in acked]
    for cid in unacked:
        v2.message("resent", client_id=cid)
    for _ in unacked:
        v2.until(lambda f: f["type"] == "ack")
    events = http.get(f"/api/v1/conversations/{conv}").json()["events"]
    stored = [e["client_id"] for e in events if e["author"] == "visitor"]
    assert sorted(set(stored)) == sorted(stored)
    assert set(sent) <= set(stored)
    # both carry on
    a2, _ = agent(server, http, subscriptions={conv: len(events)})
    a2.message("still here", conversation=conv)
    assert v2.until(lambda f: f["type"] == "event" and f.get("body") == "still here")["author"] == "agent"
    v2.message("me too")
    assert a2.until(lambda f: f["type"] == "event" and f.get("body") == "me too")["author"] == "visitor"
