"""Two hosts behind one nginx (issue 20, "What it must show", the two-host test).

Two ``jutella serve`` processes, host A and host B, each with a data dir of
its own, on one PostgreSQL database and one Redis (one shared prefix), behind
Debian's nginx started by the test with docs/deployment.md's blocks: the
server block of "Behind nginx with TLS" (TLS taken out) with the upstream of
"Several hosts behind one nginx" (both hosts, ``max_fails``/``fail_timeout``,
``proxy_next_upstream``), as ``tests/integration/test_behind_nginx.py``'s
``nginx`` fixture builds it. Every host has the same public URL (nginx's),
audit key and throttle secret, and trusts nginx's ``X-Forwarded-For``, as the
docs ask.

**How the clients get onto host A.** nginx balances round robin with no
stickiness (the docs want none), so the test starts only A at first: nginx,
finding B refusing connections, passes each request to A (``proxy_next_upstream
error``) and leaves B out for ``fail_timeout``. Everything the clients do
before B starts (the staff sign-in, the file's upload, the visitor's and the
agent's sockets) is therefore served by A, which nothing else could have
answered. B starts once those sockets are open; the test waits, by polling
``/metrics`` through nginx until B's answer (``jutella_housekeeper 0``)
comes back, until nginx has taken B back, as it does ``fail_timeout`` after
B's last refusal.

1. **The file.** Uploaded through nginx (so by A), it is served by B to the
   visitor and to staff signed in on A (one session for the cluster);
   neither host's data dir holds a byte of it, the database does. Erased
   through B (the privacy role's erasure of that visitor's conversation): both
   hosts and nginx answer 404, neither data dir holds any of its bytes, and
   neither do the database's rows nor the raw pages of the blob table and its
   TOAST table (as in test_filestore.py).
2. **The chat.** A visitor and an agent chat through nginx on A, both
   writing without pause (test_soak.py's writers); then each sends a burst
   without waiting for its acks and A is killed with ``kill -9`` under it.
   Both reconnect through nginx (only B is left) with the last seq each has,
   and resend, with the same client ids, whatever was not acked. Then every
   message is stored exactly once, each acked one under the seq of its ack;
   the seqs have no gap; each sender's messages are stored in the order it
   sent them; and the visitor and the agent were each shown every event of
   the conversation exactly once, in order, across the two hosts.
3. **The housekeeper.** A, started first, is the cluster's housekeeper, B
   not; after the kill B takes over within seconds. That retention and the
   outbox run once across hosts, also when the leader is killed in the
   middle of sending mail, is shown by test_housekeeper.py
   (``test_one_housekeeper_sends_each_mail_once_and_another_host_takes_over_when_it_is_killed``)
   and test_retention_and_notice.py
   (``test_the_first_daily_retention_runs_once_when_two_workers_start_together``);
   not repeated here.
"""

from __future__ import annotations

import random
import secrets
import threading
import time
import uuid

import httpx
import pytest

from jutella.store.leader import TRY_SECONDS

from tests.chat_clients import agent, visitor
from tests.conftest import REDIS_URL, need, redis_reachable
from tests.helpers import PASSWORD, eventually, http_client, run_cli
from tests.integration.test_behind_nginx import Via, nginx  # noqa: F401  (nginx: a fixture)
from tests.integration.test_filestore import (
    _every_byte_of,
    _every_byte_of_the_database,
    _every_page_of_the_blob_table,
    _pdf,
)
from tests.integration.test_housekeeper import is_housekeeper
from tests.integration.test_soak import Writer, check_store, collect, flood, resend_unacked

pytestmark = [pytest.mark.postgres, pytest.mark.redis]

BURST = 8  # messages each client sends, unacknowledged, just before A is killed


@pytest.fixture
def backend():
    """PostgreSQL; Redis is added by the test, one prefix for both hosts.
    (The ``pg+redis`` topology's ``server_process`` gives each server two
    workers and a prefix of its own: here each host is one worker, and they
    share Redis as two hosts of one cluster do.)"""
    need(redis_reachable(), "Redis is not reachable on 127.0.0.1:6379")
    return "postgresql"


def _send(w: Writer, conv: int | None) -> str:
    """One message, as test_soak.py's ``flood`` sends it."""
    cid = f"{w.name}-{uuid.uuid4().hex[:12]}"
    w.sent[cid] = (conv, f"{w.name} {len(w.sent)}")
    w.client.message(w.sent[cid][1], client_id=cid, **({} if conv is None else {"conversation": conv}))
    return cid


def _take_in(w: Writer) -> None:
    """What the client's socket was shown so far (read with ``until``), in the
    writer's record, before ``collect`` reads the rest."""
    for f in w.client.frames:
        if f.get("type") == "ack":
            w.acked[f["client_id"]] = (f["conversation"], f["seq"])
        elif f.get("type") == "event":
            w.shown.setdefault(f["conversation"], []).append(f["seq"])


def _start(*targets) -> list[threading.Thread]:
    threads = [threading.Thread(target=fn, args=args, daemon=True) for fn, *args in targets]
    for t in threads:
        t.start()
    return threads


def test_two_hosts_behind_nginx_share_files_and_a_chat_survives_kill_9_of_its_host(
        server_process, nginx, database_url, tmp_path):
    cluster = {"JUTELLA_REDIS_URL": REDIS_URL, "JUTELLA_REDIS_PREFIX": f"jt-{uuid.uuid4().hex[:10]}",
               "JUTELLA_AUDIT_KEY": secrets.token_hex(32), "JUTELLA_THROTTLE_SECRET": secrets.token_hex(32),
               "JUTELLA_TRUSTED_PROXIES": "127.0.0.1", "JUTELLA_MAX_MESSAGES_PER_MINUTE": "0"}
    dirs = {host: tmp_path / f"host-{host}" for host in "ab"}
    a = server_process(JUTELLA_DATA_DIR=str(dirs["a"]), **cluster)
    b = server_process(JUTELLA_DATA_DIR=str(dirs["b"]), **cluster)
    proxy = nginx(a, b)  # upstream { server A ...; server B ...; }: B is not listening yet
    for host in (a, b):
        host.env["JUTELLA_PUBLIC_URL"] = proxy.url  # the one address browsers use
    a.start()
    env = {k: v for k, v in a.env.items() if k.startswith("JUTELLA_")}
    run_cli("user", "add", "aino@example.org", "--name", "Aino", "--role", "agent", "--role", "privacy",
            "--password-stdin", stdin=PASSWORD, env=env, check=True)
    via = Via(url=proxy.url, ws_url=proxy.ws_url)
    eventually(lambda: is_housekeeper(a), 10)

    # -- on A (B is down): staff signs in, a visitor uploads a file, a visitor and the agent chat --
    staff = http_client(base_url=proxy.url, timeout=15)
    login = staff.post("/api/v1/public/staff/login", json={"email": "aino@example.org", "password": PASSWORD})
    assert login.status_code == 200, login.text
    csrf = login.json()["csrf_token"]
    staff.headers["X-CSRF-Token"] = csrf

    marker = "TWO-HOSTS-NGINX-" + secrets.token_hex(8)
    content = _pdf(marker + " " + secrets.token_hex(32 * 1024))  # 64 KiB: kept out of line (TOAST)
    uploader, welcome = visitor(via)
    uploader.message(f"Olen {marker}, liite tulossa")
    uploader.until(lambda f: f["type"] == "ack")
    token = {"X-Jutella-Visitor": welcome["token"]}
    r = httpx.post(proxy.url + "/api/v1/public/attachments", headers=token, timeout=15,
                   files={"file": ("liite.pdf", content, "application/pdf")})
    assert r.status_code == 201, r.text
    url = r.json()["url"]
    uploader.close()

    v, desk = Writer("visitor"), Writer("agent")
    v.client, welcome = visitor(via)
    v.token = welcome["token"]
    _send(v, None)
    conv = v.client.until(lambda f: f["type"] == "ack")["conversation"]
    v.conversations.append(conv)
    desk.conversations.append(conv)
    desk.client, _ = agent(via, staff, subscriptions={conv: 0})
    desk.client.send(type="accept", conversation=conv)
    v.client.until(lambda f: f["type"] == "event" and f["kind"] == "state")

    # -- B starts: it serves the file A took, and erases it --------------------------------------
    b.start()
    assert is_housekeeper(b) is False
    got = httpx.get(b.url + url, headers=token, timeout=15)  # to the visitor
    assert got.status_code == 200 and got.content == content
    assert got.headers["content-type"] == "application/pdf"
    on_b = http_client(base_url=b.url, timeout=15, cookies=staff.cookies, headers={"X-CSRF-Token": csrf})
    assert on_b.get(url).content == content  # to staff, with the session made on A
    for host in "ab":
        assert marker.encode() not in _every_byte_of(dirs[host]), host
    assert marker.encode() in _every_byte_of_the_database(database_url)
    windows = [content[i:i + 48] for i in range(64, len(content) - 48, 4096)]  # each within a TOAST chunk, mostly
    pages = _every_page_of_the_blob_table(database_url)
    assert marker.encode() in pages and sum(w in pages for w in windows) > len(windows) // 2  # the scan sees them

    matches = on_b.get("/api/v1/privacy/subjects", params={"q": marker}).json()
    erased = sorted({m["id"] for m in matches if m["kind"] == "conversation"})
    assert len(erased) == 1 and erased != [conv]
    r = on_b.post("/api/v1/privacy/erase", json={"conversations": erased, "offline_messages": [], "emails": [],
                                                 "confirm": True})
    assert r.status_code == 200 and r.json()["counts"]["attachments"] == 1, r.text
    for side in (a.url, b.url, proxy.url):
        assert httpx.get(side + url, headers=token, timeout=15).status_code == 404, side
    for host in "ab":
        assert marker.encode() not in _every_byte_of(dirs[host]), host
    everything = _every_byte_of_the_database(database_url)
    assert marker.encode() not in everything and marker.encode().hex().encode() not in everything
    assert content not in everything
    pages = _every_page_of_the_blob_table(database_url)
    assert marker.encode() not in pages and not any(w in pages for w in windows)

    # nginx takes B back fail_timeout after its last refusal: until then every request still goes to A
    eventually(lambda: is_housekeeper(proxy) is False, 15)  # B's /metrics answered through nginx

    # -- the chat on A, under load; A killed with kill -9 while messages are on their way ---------
    for w in (v, desk):
        _take_in(w)
    everyone = [v, desk]
    rng = random.Random()
    stop = threading.Event()
    collectors = _start(*((collect, w) for w in everyone))
    floods = _start((flood, v, stop, None, random.Random(rng.random())),
                    (flood, desk, stop, [conv], random.Random(rng.random())))
    eventually(lambda: len(v.acked) >= 40 and len(desk.acked) >= 40, 15)
    stop.set()
    for t in floods:
        t.join(5)
        assert not t.is_alive()
    for _ in range(BURST):  # not waited for
        _send(v, None)
        _send(desk, conv)
    a.kill9()
    for t in collectors:  # nginx closes their sockets as A's close
        t.join(10)
        assert not t.is_alive()
    unacked = {w.name: len(w.unacked()) for w in everyone}
    assert all(unacked.values()), f"A acked the whole burst before it died: {unacked}"
    for w in everyone:
        assert w.errors == [], w.errors
    killed_at = time.monotonic()

    # -- both reconnect through nginx (to B, the one left) and resume -----------------------------
    v.client, welcome = visitor(via, token=v.token, last_seq=v.last_seq(conv))
    assert welcome["conversation"]["id"] == conv
    desk.client, _ = agent(via, staff, subscriptions={conv: desk.last_seq(conv)})
    collectors = _start(*((collect, w) for w in everyone))
    for w in everyone:
        resend_unacked(w)
    eventually(lambda: not any(w.unacked() for w in everyone), 15)
    stored = check_store(staff, everyone, 1)[conv]  # through nginx: B; every ack's seq, no gap, none twice
    ids = [e["client_id"] for e in stored if e["kind"] == "message"]
    assert sorted(ids) == sorted(cid for w in everyone for cid in w.sent), "a message is missing or extra"
    for w in everyone:
        assert [cid for cid in ids if cid in w.sent] == list(w.sent), f"{w.name}'s messages out of order"
    eventually(lambda: all(w.last_seq(conv) >= len(stored) for w in everyone), 10)
    for w in everyone:
        assert w.shown[conv] == list(range(1, len(stored) + 1)), w.name  # each event once, in order
        assert w.errors == [], w.errors
    eventually(lambda: is_housekeeper(b), 3 * TRY_SECONDS + 2)
    takeover = time.monotonic() - killed_at
    for w in everyone:
        w.client.close()
    for t in collectors:
        t.join(10)
    assert "[emerg]" not in proxy.log() and "[alert]" not in proxy.log()
    print(f"\ntwo hosts: {len(ids)} messages, {sum(unacked.values())} unacked at the kill and resent; "
          f"B the housekeeper within {takeover:.1f} s of the kill")
