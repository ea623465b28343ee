"""Faults of what jutella stands on: SQLite locked by another process or full,
PostgreSQL cut off, Redis and SMTP down. Each gives a clear, translated
refusal or status, stores nothing half-way, and recovers without loss: what
was refused is resent by the same client and stored exactly once.
(docs/faults.md)"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import threading
import time

import httpx
import pytest
from sqlalchemy import event, func, select

from jutella.store.models import ChatEvent, Conversation, OfflineMessage
from jutella.i18n import gettext

from tests.chat_clients import visitor
from tests.conftest import BOTH, free_port
from tests.helpers import add_staff, outbox_idle, run_cli, sign_in


@pytest.fixture(params=BOTH)
def backend(request):
    """The SQL dialect matters here: SQLite and PostgreSQL (tests/conftest.py)."""
    return request.param

FORM = {"name": "Maija Meikäläinen", "email": "maija@example.fi", "message": "Milloin toimisto on auki?",
        "lang": "fi", "browser_key": "browser-a"}
BUSY_FI = gettext("fi", "The chat is busy right now. Your message was not sent; try again in a moment.")
FULL_EN = "The server cannot store anything right now. Your message was not sent; try again later."


def sqlite_path(live) -> str:
    return live.rt.settings.sqlalchemy_url.split("///", 1)[1]


# -- another process holding SQLite's write lock -------------------------------------------
LOCKER = """
import sqlite3, sys
c = sqlite3.connect(sys.argv[1], isolation_level=None, timeout=30)
c.execute("BEGIN IMMEDIATE")
print("locked", flush=True)
sys.stdin.readline()
c.execute("ROLLBACK")
"""


class WriteLock:
    """A separate process that takes the database's write lock (BEGIN
    IMMEDIATE, as a backup or a CLI command would) and holds it until released."""

    def __init__(self, path: str):
        self.proc = subprocess.Popen([sys.executable, "-c", LOCKER, path], stdin=subprocess.PIPE,
                                     stdout=subprocess.PIPE, text=True)
        assert self.proc.stdout.readline().strip() == "locked"

    def release(self) -> None:
        if self.proc.poll() is None:
            self.proc.stdin.write("\n")
            self.proc.stdin.flush()
            self.proc.wait(10)


@pytest.fixture
def write_lock():
    made: list[WriteLock] = []

    def take(path: str) -> WriteLock:
        made.append(WriteLock(path))
        return made[-1]

    yield take
    for lock in made:
        lock.release()


def stored(live, client_id: str) -> int:
    async def q():
        async with live.rt.db.reader() as s:
            return (await s.execute(select(func.count()).select_from(ChatEvent).where(
                ChatEvent.client_id == client_id))).scalar_one()
    return live.call(q)


def offline_count(live) -> int:
    async def q():
        async with live.rt.db.reader() as s:
            return (await s.execute(select(func.count()).select_from(OfflineMessage))).scalar_one()
    return live.call(q)


def assert_consistent(live) -> None:
    """Every conversation's last_seq is its events' highest seq and there are no gaps:
    no event was stored without its conversation update, nor the other way round."""
    async def q():
        async with live.rt.db.reader() as s:
            convs = (await s.execute(select(Conversation.id, Conversation.last_seq))).all()
            out = []
            for cid, last in convs:
                seqs = (await s.execute(select(ChatEvent.seq).where(ChatEvent.conversation_id == cid)
                                        .order_by(ChatEvent.seq))).scalars().all()
                out.append((last, seqs))
            return out
    for last, seqs in live.call(q):
        assert seqs == list(range(1, last + 1))


def no_ack_for(client, client_id: str) -> bool:
    return not any(f.get("type") == "ack" and f.get("client_id") == client_id for f in client.frames)


# -- 1. SQLite locked ------------------------------------------------------------------------
@pytest.mark.parametrize("backend", ["sqlite"])
@pytest.mark.parametrize("settings_overrides", [{"sqlite_busy_timeout_ms": 300}])
def test_sqlite_locked_refuses_clearly_and_the_resend_is_stored_once(live, write_lock, caplog):
    add_staff(live, "aino@example.org", ["agent"])
    staff = sign_in(live, "aino@example.org")
    assert live.client().post("/api/v1/public/offline-messages", json=FORM).status_code == 201
    mid = staff.get("/api/v1/offline-messages").json()[0]["id"]
    v, _ = visitor(live, lang="fi")
    v.message("ennen", client_id="m-before")
    assert v.until(lambda f: f["type"] == "ack")["seq"] == 1

    lock = write_lock(sqlite_path(live))
    started = time.monotonic()
    v.message("lukittuna", client_id="m-locked")
    err = v.until(lambda f: f["type"] == "error", timeout=10)
    assert time.monotonic() - started < 5  # the busy timeout, not a hang
    assert (err["code"], err["client_id"], err["message"]) == ("busy", "m-locked", BUSY_FI)
    assert BUSY_FI != "The chat is busy right now. Your message was not sent; try again in a moment."  # translated
    assert no_ack_for(v, "m-locked") and stored(live, "m-locked") == 0

    # HTTP state changes, the public form and a staff action: 503, a clear
    # message, Retry-After, nothing written
    r = live.client(headers={"Accept-Language": "fi"}).post("/api/v1/public/offline-messages", json=FORM)
    assert r.status_code == 503 and r.headers["retry-after"] == "2"
    assert r.json()["error"]["code"] == "busy"
    assert r.json()["error"]["message"] == gettext(
        "fi", "The service is busy right now. Nothing was saved; try again in a moment.")
    r = staff.post(f"/api/v1/offline-messages/{mid}/close")
    assert r.status_code == 503 and r.json()["error"] == {
        "code": "busy", "message": "The service is busy right now. Nothing was saved; try again in a moment."}
    assert offline_count(live) == 1

    lock.release()
    # the same connection is still usable; the resend is stored exactly once
    v.message("lukittuna", client_id="m-locked")
    ack = v.until(lambda f: f["type"] == "ack" and f["client_id"] == "m-locked")
    assert ack["seq"] == 2
    v.message("lukittuna", client_id="m-locked")  # a second resend: acked again, not stored again
    assert v.until(lambda f: f["type"] == "ack" and f["client_id"] == "m-locked")["seq"] == 2
    assert stored(live, "m-locked") == 1
    assert staff.get(f"/api/v1/offline-messages/{mid}").json()["state"] == "new"  # the close did not happen
    assert staff.post(f"/api/v1/offline-messages/{mid}/close").json()["state"] == "closed"
    assert live.client().post("/api/v1/public/offline-messages", json=FORM).status_code == 201
    assert offline_count(live) == 2

    # an agent's message: the same refusal on the console's socket
    from tests.chat_clients import agent

    a, _ = agent(live, staff, subscriptions={ack["conversation"]: 0})
    lock = write_lock(sqlite_path(live))
    a.message("Hetki", client_id="a-locked", conversation=ack["conversation"])
    err = a.until(lambda f: f["type"] == "error", timeout=10)
    assert (err["code"], err["client_id"]) == ("busy", "a-locked") and no_ack_for(a, "a-locked")
    assert stored(live, "a-locked") == 0
    lock.release()
    a.message("Hetki", client_id="a-locked", conversation=ack["conversation"])
    a.until(lambda f: f["type"] == "ack" and f["client_id"] == "a-locked")
    assert stored(live, "a-locked") == 1
    assert_consistent(live)
    lines = [r.getMessage() for r in caplog.records if "storage fault" in r.getMessage()]
    assert len(lines) == 4 and all("lukittuna" not in line and "maija" not in line.lower() for line in lines)


# -- 2. disk full ----------------------------------------------------------------------------
def _set_max_pages(db, pages: int | None):
    """SQLite's PRAGMA max_page_count (per connection) on every connection of
    the server: pages=None lifts the limit. Writes that need a new page then
    fail with SQLITE_FULL, "database or disk is full", like a full disk."""
    value = pages if pages is not None else 1073741823

    async def run():
        listeners = db.__dict__.setdefault("_test_page_limit", [])
        for fn in listeners:
            event.remove(db.engine.sync_engine, "connect", fn)
        listeners.clear()

        def on_connect(dbapi_conn, _record):
            dbapi_conn.execute(f"PRAGMA max_page_count={value}")

        event.listen(db.engine.sync_engine, "connect", on_connect)
        listeners.append(on_connect)
        await db.engine.dispose()  # pooled connections reopen with the limit
        writer = db._sync_writer
        if writer is not None:
            def on_writer():
                raw = writer.engine.raw_connection()
                try:
                    raw.driver_connection.execute(f"PRAGMA max_page_count={value}")
                finally:
                    raw.close()
            await writer.executor.run(on_writer)  # on the writer's own thread, after what is queued
    return run


@pytest.mark.parametrize("backend", ["sqlite"])
def test_disk_full_refuses_clearly_writes_nothing_partial_and_recovers(live):
    v, _ = visitor(live, lang="en")
    v.message("first", client_id="m-1")
    assert v.until(lambda f: f["type"] == "ack")["seq"] == 1

    live.call(_set_max_pages(live.rt.db, 1))  # no page beyond the current size
    big = "x" * 3900
    refused = None
    for i in range(2, 12):  # the current pages' free room goes first, then the disk is "full"
        cid = f"m-{i}"
        v.message(big, client_id=cid)
        frame = v.until(lambda f: f.get("client_id") == cid and f["type"] in ("ack", "error"), timeout=10)
        if frame["type"] == "error":
            refused = frame
            break
    assert refused is not None, "the page limit never filled up"
    assert (refused["code"], refused["message"]) == ("storage_full", FULL_EN)
    assert stored(live, refused["client_id"]) == 0
    assert_consistent(live)
    acked = int(refused["client_id"][2:]) - 1

    forms = 0
    for i in range(8):  # likewise: the table's free room first
        r = live.client().post("/api/v1/public/offline-messages",
                               json={**FORM, "message": "y" * 3900, "browser_key": f"b-{i}"})
        if r.status_code != 201:
            break
        forms += 1
    assert r.status_code == 507 and r.headers["retry-after"] == "60"
    assert r.json()["error"] == {"code": "storage_full", "message": "The server cannot store anything right now. "
                                                                    "Nothing was saved; try again later."}
    assert offline_count(live) == forms

    live.call(_set_max_pages(live.rt.db, None))
    v.message(big, client_id=refused["client_id"])
    ack = v.until(lambda f: f["type"] == "ack" and f["client_id"] == refused["client_id"], timeout=10)
    assert ack["seq"] == acked + 1
    assert stored(live, refused["client_id"]) == 1
    assert live.client().post("/api/v1/public/offline-messages", json=FORM).status_code == 201
    assert_consistent(live)


# -- the CLI ----------------------------------------------------------------------------------
@pytest.mark.parametrize("backend", ["sqlite"])
def test_cli_on_a_locked_database_prints_one_line_and_exits_1(database_url, tmp_path, write_lock):
    env = {**os.environ, "JUTELLA_DATABASE_URL": database_url, "JUTELLA_DATA_DIR": str(tmp_path / "data"),
           "JUTELLA_SQLITE_BUSY_TIMEOUT_MS": "200"}
    lock = write_lock(database_url.split("///", 1)[1])
    r = subprocess.run([sys.executable, "-m", "jutella.cli", "user", "add", "aino@example.org", "--name", "Aino",
                        "--role", "agent", "--password-stdin"], input="correct horse battery staple\n",
                       capture_output=True, text=True, env=env, timeout=60)
    assert r.returncode == 1
    assert "Traceback" not in r.stderr
    assert r.stderr.strip().count("\n") == 0 and r.stderr.startswith("jutella: the database is locked")
    lock.release()
    r = run_cli("user", "list", env=env)  # a reading, in this process: the process boundary was the refusal above
    assert r.returncode == 0 and "aino@example.org" not in r.stdout  # nothing was half-written


# -- 3. PostgreSQL outage ----------------------------------------------------------------------
class TcpProxy:
    """An asyncio TCP proxy in a thread of its own, between the server and
    PostgreSQL. cut() closes every connection and the listening socket (new
    connections are refused); restore() listens again on the same port."""

    def __init__(self, target_port: int):
        self.target_port = target_port
        self.port = free_port()
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()
        self.server: asyncio.base_events.Server | None = None
        self.writers: set[asyncio.StreamWriter] = set()
        self.restore()

    def _call(self, coro):
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(10)

    async def _pipe(self, reader, writer):
        try:
            while data := await reader.read(65536):
                writer.write(data)
                await writer.drain()
        except (OSError, asyncio.CancelledError):
            pass
        finally:
            writer.close()

    async def _handle(self, c_reader, c_writer):
        try:
            s_reader, s_writer = await asyncio.open_connection("127.0.0.1", self.target_port)
        except OSError:
            c_writer.close()
            return
        self.writers.update((c_writer, s_writer))
        await asyncio.gather(self._pipe(c_reader, s_writer), self._pipe(s_reader, c_writer))
        self.writers.difference_update((c_writer, s_writer))

    def restore(self) -> None:
        async def start():
            self.server = await asyncio.start_server(self._handle, "127.0.0.1", self.port, reuse_address=True)
        self._call(start())

    def cut(self) -> None:
        async def stop():
            if self.server:
                self.server.close()
                self.server = None
            for w in list(self.writers):
                w.transport.abort()
            self.writers.clear()
        self._call(stop())

    def close(self) -> None:
        self.cut()
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(5)


@pytest.fixture
def pg_proxy():
    proxy = TcpProxy(5432)
    yield proxy
    proxy.close()


def wait_health(live, status: str, timeout: float = 15) -> httpx.Response:
    deadline = time.monotonic() + timeout
    while True:
        r = live.client().get("/healthz")
        if r.json()["status"] == status or time.monotonic() > deadline:
            assert r.json()["status"] == status, r.json()
            return r
        time.sleep(0.1)


@pytest.mark.parametrize("backend", ["postgresql"])
def test_postgresql_outage_refuses_clearly_and_recovers_without_loss(request, database_url, pg_proxy, tmp_path,
                                                                     clock):
    from tests.conftest import start_live
    from jutella.settings import Settings

    port = free_port()
    proxied = database_url.replace("127.0.0.1:5432", f"127.0.0.1:{pg_proxy.port}")
    assert proxied != database_url
    settings = Settings(database_url=proxied, data_dir=tmp_path / "data", host="127.0.0.1", port=port,
                        public_url=f"http://127.0.0.1:{port}", database_timeout_seconds=2)
    live, stop = start_live(settings, clock)
    request.addfinalizer(stop)
    started = time.monotonic()

    v, _ = visitor(live)
    v.message("before 1", client_id="p-1")
    v.message("before 2", client_id="p-2")
    acks = [v.until(lambda f: f["type"] == "ack")["seq"] for _ in range(2)]
    assert sorted(acks) == [1, 2]

    pg_proxy.cut()
    t = time.monotonic()
    r = live.client().get("/healthz")
    assert time.monotonic() - t < 4  # bounded: a refused or hung database counts as down
    assert r.status_code == 503 and r.json() == {"status": "unavailable", "database": "unavailable"}

    v.message("during", client_id="p-3")
    err = v.until(lambda f: f["type"] == "error", timeout=10)
    assert (err["code"], err["client_id"]) == ("unavailable", "p-3")
    assert "database" in err["message"]
    r = live.client().post("/api/v1/public/offline-messages", json=FORM)
    assert r.status_code == 503 and r.json()["error"]["code"] == "unavailable" and r.headers["retry-after"] == "5"
    # a widget connecting meanwhile is told to try again later (1013) and reconnects with backoff
    from websockets.exceptions import ConnectionClosed
    from websockets.sync.client import connect

    with connect(live.ws_url + "/ws/visitor", origin=live.url, open_timeout=5) as ws:
        ws.send('{"type": "hello", "token": null, "last_seq": 0, "lang": "en"}')
        with pytest.raises(ConnectionClosed) as closed:
            while True:
                ws.recv(timeout=10)
        assert closed.value.rcvd.code == 1013

    pg_proxy.restore()
    r = wait_health(live, "ok")
    assert r.status_code == 200 and r.json() == {"status": "ok"}
    # the same socket stayed open; the pool replaced its dead connections
    v.message("during", client_id="p-3")
    assert v.until(lambda f: f["type"] == "ack" and f["client_id"] == "p-3")["seq"] == 3
    assert no_ack_for(v, "p-4")
    assert [stored(live, f"p-{i}") for i in (1, 2, 3)] == [1, 1, 1]
    assert_consistent(live)
    assert live.client().post("/api/v1/public/offline-messages", json=FORM).status_code == 201
    assert time.monotonic() - started < 30


# -- 5. SMTP outage ----------------------------------------------------------------------------
@pytest.mark.parametrize("backend", ["sqlite"])
def test_smtp_outage_shows_in_healthz_and_the_mail_goes_out_once_when_it_returns(live, smtp, clock):
    live.rt.settings.smtp_host = "127.0.0.1"
    live.rt.settings.smtp_port = smtp.port  # the sink is not started yet: connections are refused
    live.rt.settings.smtp_from = "chat@jamko.example"
    assert live.client().get("/healthz").json() == {"status": "ok"}
    add_staff(live, "aino@example.org", ["agent"])
    http = sign_in(live, "aino@example.org")
    assert live.client().post("/api/v1/public/offline-messages", json=FORM).status_code == 201
    mid = http.get("/api/v1/offline-messages").json()[0]["id"]
    assert http.post(f"/api/v1/offline-messages/{mid}/reply", json={"body": "Vastaus"}).status_code == 201

    r = wait_health(live, "degraded")
    assert r.status_code == 200 and r.json() == {"status": "degraded", "mail": "failing"}
    reply = http.get(f"/api/v1/offline-messages/{mid}").json()["replies"][0]
    assert reply["delivery"] == "queued" and reply["error"]  # the console's offline view shows it

    smtp.start()
    clock.advance(minutes=5)  # past the backoff
    assert len(smtp.wait_for(1)) == 1
    r = wait_health(live, "ok")
    assert r.json() == {"status": "ok"}
    clock.advance(hours=1)
    assert outbox_idle(live)  # the worker polls again: nothing more is sent
    assert len(smtp.messages) == 1


@pytest.mark.parametrize("backend", ["sqlite"])
def test_a_mail_waiting_too_long_shows_as_delayed(live, clock):
    from jutella.mail import outbox

    async def queue_one():
        async with live.rt.db.transaction() as s:
            row = outbox.enqueue(s, live.rt, kind="reply", to_addr="maija@example.fi", to_name=None,
                                 subject="Re", body_text="x", body_html=None)
            row.next_attempt_at = clock.now().replace(year=clock.now().year + 1)  # not tried yet
    live.call(queue_one)
    assert live.client().get("/healthz").json() == {"status": "ok"}
    clock.advance(minutes=16)
    assert live.client().get("/healthz").json() == {"status": "degraded", "mail": "delayed"}


def test_only_faults_of_the_storage_are_classified_as_such():
    import sqlite3

    from sqlalchemy.exc import IntegrityError, OperationalError

    from jutella.store.db import storage_fault

    def wrapped(msg: str) -> OperationalError:
        return OperationalError("INSERT ...", {}, sqlite3.OperationalError(msg))

    assert storage_fault(wrapped("database is locked")).kind == "locked"
    assert storage_fault(wrapped("database or disk is full")).kind == "full"
    assert storage_fault(sqlite3.OperationalError("database is locked")).kind == "locked"
    assert storage_fault(wrapped("no such table: x")) is None  # a bug, not a fault to retry
    assert storage_fault(IntegrityError("INSERT ...", {}, sqlite3.IntegrityError("UNIQUE"))) is None
    assert storage_fault(FileNotFoundError("/tmp/export.zip")) is None  # not the database's
    assert storage_fault(ValueError("database is locked")) is None


def test_a_write_transaction_waits_for_another_writers_commit_instead_of_failing(tmp_path):
    """Found by the benchmark: a deferred transaction that read and then wrote
    failed at once with "database is locked" (SQLite's busy handler is not
    used for that upgrade) when another connection committed in between,
    e.g. an accept while the message writer thread committed a batch. Write
    transactions now begin IMMEDIATE and wait their turn."""
    import sqlite3

    from sqlalchemy import text

    from jutella.store.db import Database

    from tests.conftest import run_async

    path = tmp_path / "jutella.sqlite3"

    async def scenario() -> tuple[int, list[str]]:
        db = Database(f"sqlite+aiosqlite:///{path}", busy_timeout_ms=5000)
        await db.migrate()
        other = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
        held = threading.Event()

        def hold() -> None:
            other.execute("BEGIN IMMEDIATE")
            held.set()
            time.sleep(0.5)
            other.execute("INSERT INTO system_setting(key, value) VALUES ('other', '1')")
            other.execute("COMMIT")

        thread = threading.Thread(target=hold)
        thread.start()
        held.wait(5)
        try:
            async with db.transaction() as s:
                seen = (await s.execute(text("SELECT count(*) FROM system_setting"))).scalar_one()
                await s.execute(text("INSERT INTO system_setting(key, value) VALUES ('mine', '2')"))
            async with db.reader() as s:
                keys = list((await s.execute(text("SELECT key FROM system_setting ORDER BY key"))).scalars())
        finally:
            thread.join()
            other.close()
            await db.dispose()
        return seen, keys

    seen, keys = run_async(scenario())
    assert seen == 1  # it began after the other writer's commit, so it read that row
    assert keys == ["mine", "other"]


def test_a_failing_job_in_a_write_batch_undoes_only_its_own_writes(tmp_path):
    """The SQLite writer runs pending jobs in one transaction without a
    SAVEPOINT each; when one raises (after writing), the batch is rolled back
    and run again job by job in SAVEPOINTs: the others are stored once, the
    failing one's write is not."""
    from sqlalchemy import text

    from jutella.store.db import Database

    from tests.conftest import run_async

    async def scenario() -> tuple[list, list[str]]:
        db = Database(f"sqlite+aiosqlite:///{tmp_path / 'jutella.sqlite3'}")
        await db.migrate()

        def job(key: str, fail: bool = False):
            def work(conn):
                conn.execute(text("INSERT INTO system_setting(key, value) VALUES (:k, '1')"), {"k": key})
                if fail:
                    raise ValueError("refused after writing")
                return key
            return work

        try:
            results = await asyncio.gather(db.write_core(job("a")), db.write_core(job("b", fail=True)),
                                           db.write_core(job("c")), return_exceptions=True)
            alone = await asyncio.gather(db.write_core(job("d", fail=True)), return_exceptions=True)
            async with db.reader() as s:
                keys = list((await s.execute(text("SELECT key FROM system_setting ORDER BY key"))).scalars())
        finally:
            await db.dispose()
        return [r if isinstance(r, str) else type(r).__name__ for r in results + alone], keys

    results, keys = run_async(scenario())
    assert results == ["a", "ValueError", "c", "ValueError"]
    assert keys == ["a", "c"]
