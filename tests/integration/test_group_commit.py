"""Group commit (store/db.py): the write_core calls pending at the same moment
share one transaction, on SQLite and on PostgreSQL; one failing call does not
undo the others; a batch that PostgreSQL cancels to break a deadlock runs
again instead of failing its messages; and closing the database answers every
write still waiting."""

from __future__ import annotations

import asyncio
import hashlib
import threading
from datetime import UTC, datetime

import pytest
from sqlalchemy import func, insert, select, text, update
from sqlalchemy.exc import IntegrityError

from jutella.settings import Settings
from jutella.store.db import Database, StorageFault, create_engine
from jutella.store.models import Visitor

from tests.conftest import BOTH, run_async


@pytest.fixture(params=BOTH)
def backend(request):
    """The SQL dialect matters here: SQLite and PostgreSQL (tests/conftest.py)."""
    return request.param

V = Visitor.__table__
NOW = datetime(2026, 11, 27, 12, 0, tzinfo=UTC)


def _add(public_id: str):
    def job(conn):
        conn.execute(insert(V).values(public_id=public_id, token_hash=hashlib.sha256(public_id.encode()).hexdigest(), created_at=NOW,
                                      last_seen_at=NOW))
        if conn.dialect.name == "postgresql":
            return conn.execute(text("SELECT txid_current()")).scalar()
        return public_id
    return job


def test_pending_writes_share_a_transaction_and_a_failure_stays_its_own(database_url):
    async def scenario():
        db = Database(Settings(database_url=database_url).sqlalchemy_url, pool_size=2)
        try:
            await db.write_core(_add("first"))
            jobs = [_add(f"v{i}") for i in range(20)] + [_add("first")]  # the last breaks the unique id
            outcomes = await asyncio.gather(*(db.write_core(job) for job in jobs), return_exceptions=True)
            async with db.connection() as conn:
                ids = set((await conn.execute(select(V.c.public_id))).scalars())
        finally:
            await db.dispose()
        return db.dialect, outcomes, ids

    dialect, outcomes, ids = run_async(scenario())
    assert isinstance(outcomes[-1], IntegrityError)
    assert ids == {"first", *(f"v{i}" for i in range(20))}  # the others are stored
    if dialect == "postgresql":
        txids = outcomes[:-1]
        assert len(set(txids)) < len(txids), txids  # calls pending together committed together


async def _until_a_session_waits_for_a_lock(db, timeout: float = 20) -> None:
    """PostgreSQL says a session of this database waits for a row lock."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while True:
        async with db.engine.connect() as conn:
            waiting = (await conn.execute(text(
                "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
                "AND wait_event_type = 'Lock'"))).scalar()
        if waiting:
            return
        assert loop.time() < deadline, "the batch never waited for the other transaction's row"
        await asyncio.sleep(0.02)


@pytest.mark.parametrize("backend", ["postgresql"])
def test_a_batch_cancelled_to_break_a_deadlock_runs_again(database_url):
    """Another transaction holds row B and will want row A; the batch takes A
    and then waits for B. PostgreSQL cancels the batch (it waited first); the
    batch runs again once the other has committed, and its write is stored."""
    async def scenario():
        db = Database(Settings(database_url=database_url).sqlalchemy_url, pool_size=3)
        runs = []
        try:
            await db.write_core(_add("a"))
            await db.write_core(_add("b"))
            async with db.engine.connect() as other:
                await other.begin()
                # PostgreSQL cancels the transaction whose deadlock check runs first: normally the batch's
                # (it waited first, deadlock_timeout 1 s), but on a loaded machine this one's check could
                # come first. Ten seconds here keeps the victim the batch, which the test is about.
                await other.execute(text("SET LOCAL deadlock_timeout = '10s'"))
                await other.execute(update(V).where(V.c.public_id == "b").values(last_seen_at=NOW))

                def job(conn):
                    runs.append(1)
                    conn.execute(update(V).where(V.c.public_id == "a").values(token_hash="x" * 64))
                    conn.execute(update(V).where(V.c.public_id == "b").values(token_hash="y" * 64))
                    return "stored"

                batch = asyncio.ensure_future(db.write_core(job))
                await _until_a_session_waits_for_a_lock(db)  # the batch holds A and waits for B
                await other.execute(update(V).where(V.c.public_id == "a").values(last_seen_at=NOW))
                await other.commit()
            result = await asyncio.wait_for(batch, 20)
            async with db.connection() as conn:
                hashes = dict((await conn.execute(select(V.c.public_id, V.c.token_hash))).all())
                count = (await conn.execute(select(func.count()).select_from(V))).scalar()
        finally:
            await db.dispose()
        return result, len(runs), hashes, count

    result, runs, hashes, count = run_async(scenario())
    assert result == "stored" and runs >= 2  # cancelled at least once, then run again
    assert (hashes["a"], hashes["b"], count) == ("x" * 64, "y" * 64, 2)


@pytest.mark.parametrize("backend", ["postgresql"])
def test_a_batch_takes_its_row_locks_in_conversation_order(database_url):
    """Two batches in flight that lock the same conversations in opposite
    orders would deadlock (and PostgreSQL notices only after a second). The
    writer runs a batch's calls in ascending order of the conversation they
    lock, those on one conversation in the order they came, calls without
    one last."""
    async def scenario():
        db = Database(Settings(database_url=database_url).sqlalchemy_url, pool_size=4)
        order: list[str] = []

        def blocker(conn):
            conn.execute(text("SELECT pg_sleep(0.4)"))

        def job(name):
            def run(conn):
                order.append(name)
                return conn.execute(text("SELECT txid_current()")).scalar()
            return run

        try:
            # both batch slots busy, so the next calls wait and go as one batch
            busy = [asyncio.ensure_future(db.write_core(blocker))]
            await asyncio.sleep(0.05)
            busy.append(asyncio.ensure_future(db.write_core(blocker)))
            await asyncio.sleep(0.05)
            calls = [("c5", 5), ("c2-first", 2), ("none", None), ("c2-second", 2), ("c1", 1)]
            txids = await asyncio.gather(*(db.write_core(job(name), lock=lock) for name, lock in calls))
            await asyncio.gather(*busy)
        finally:
            await db.dispose()
        return order, txids

    order, txids = run_async(scenario())
    assert len(set(txids)) == 1  # one batch
    assert order == ["c1", "c2-first", "c2-second", "c5", "none"]


@pytest.mark.parametrize("backend", ["postgresql"])
@pytest.mark.parametrize("workers, in_flight", [(1, 2), (2, 1), (3, 1)])
def test_a_hosts_workers_share_its_two_batches_in_flight(database_url, workers, in_flight):
    """store/db.py batches_in_flight: a host's only worker runs two write
    batches at once (the second starts while the first waits), each of two
    or more runs one, so that the host's workers together still have two in
    flight, not two each. Seen from a caller: while a batch waits for a row
    another transaction holds, a write submitted after it is stored at once
    by a lone worker, and only once that batch has ended by one of several."""
    async def scenario():
        db = Database(Settings(database_url=database_url).sqlalchemy_url, pool_size=4, workers=workers)
        other_engine = create_engine(db.url)
        other = await other_engine.connect()
        loop = asyncio.get_running_loop()
        started: asyncio.Queue = asyncio.Queue()
        try:
            await db.write_core(_add("held"))
            await other.begin()
            await other.execute(update(V).where(V.c.public_id == "held").values(last_seen_at=NOW))

            def blocker(conn):
                loop.call_soon_threadsafe(started.put_nowait, True)
                conn.execute(select(V.c.id).where(V.c.public_id == "held").with_for_update())
                return "blocker done"

            blocked = asyncio.ensure_future(db.write_core(blocker))
            await asyncio.wait_for(started.get(), 10)  # its batch is running
            running_at_once = db._pg_writer.in_flight
            await _until_a_session_waits_for_a_lock(db)
            second = asyncio.ensure_future(db.write_core(_add("second")))
            done, _ = await asyncio.wait({second}, timeout=3)
            stored_while_blocked = bool(done)
            await other.rollback()
            outcomes = await asyncio.wait_for(asyncio.gather(blocked, second), 10)
            async with db.connection() as conn:
                ids = set((await conn.execute(select(V.c.public_id))).scalars())
        finally:
            await other.close()
            await other_engine.dispose()
            await db.dispose()
        return running_at_once, stored_while_blocked, outcomes[0], ids

    running_at_once, stored_while_blocked, blocker_outcome, ids = run_async(scenario())
    assert running_at_once == in_flight
    assert stored_while_blocked is (in_flight == 2)
    assert blocker_outcome == "blocker done"
    assert ids == {"held", "second"}


def _stop_with_writes_pending(database_url, *, release_during_grace: bool):
    """Writes held up behind running batches, then Database.dispose(): what
    each caller got, how long the pending ones waited, and what is stored.

    Every batch slot is taken by a blocker that cannot finish on its own: on
    PostgreSQL it waits for a row that another connection holds locked, on
    SQLite it blocks the writer thread. Writes submitted after that wait in
    the writer's queue."""
    async def scenario():
        db = Database(Settings(database_url=database_url).sqlalchemy_url, pool_size=4)
        loop = asyncio.get_running_loop()
        await db.write_core(_add("held"))
        writer = db._pg_writer or db._sync_writer
        writer.STOP_GRACE = 10.0 if release_during_grace else 0.5
        started: asyncio.Queue = asyncio.Queue()
        release = threading.Event()
        # another client holds the row the blockers wait for on PostgreSQL (an
        # engine of its own: it outlives db.dispose() in this scenario)
        other_engine = create_engine(db.url)
        other = await other_engine.connect()
        if db.dialect == "postgresql":
            await other.begin()
            await other.execute(update(V).where(V.c.public_id == "held").values(last_seen_at=NOW))

        def blocker(conn):
            loop.call_soon_threadsafe(started.put_nowait, True)
            if conn.dialect.name == "postgresql":
                conn.execute(select(V.c.id).where(V.c.public_id == "held").with_for_update())
            else:
                release.wait(10)
            return "blocker done"

        async def let_go():
            release.set()
            if other.in_transaction():
                await other.rollback()

        try:
            blockers = []
            for _ in range(writer.in_flight):
                blockers.append(asyncio.ensure_future(db.write_core(blocker)))
                await asyncio.wait_for(started.get(), 10)  # its batch is running
            waiting = [asyncio.ensure_future(db.write_core(_add(f"w{i}"))) for i in range(5)]
            await asyncio.sleep(0)  # they are submitted (queued behind the blockers)
            t0 = loop.time()
            closing = asyncio.ensure_future(db.dispose())
            queued = await asyncio.wait_for(asyncio.gather(*waiting, return_exceptions=True), 5)
            queued_after = loop.time() - t0
            if release_during_grace:
                await let_go()
            running = await asyncio.wait_for(asyncio.gather(*blockers, return_exceptions=True), 15)
            if not release_during_grace:
                await let_go()
            await asyncio.wait_for(closing, 15)
            # the Database is usable again after dispose (a new writer)
            await db.write_core(_add("after"))
            async with db.connection() as conn:
                ids = set((await conn.execute(select(V.c.public_id))).scalars())
        finally:
            release.set()
            await other.close()
            await other_engine.dispose()
            await db.dispose()
        return queued, queued_after, running, ids

    return run_async(scenario())


def test_stop_fails_each_pending_write_at_once_and_each_stuck_batch_after_a_grace(database_url):
    """Closing the database (shutdown) with writes pending: each waiting
    caller gets a StorageFault at once (its write was never run), each batch
    still running gets one when it does not end within STOP_GRACE. Nobody is
    left waiting for ever, and nothing of the refused writes is stored."""
    queued, queued_after, running, ids = _stop_with_writes_pending(database_url, release_during_grace=False)
    assert all(isinstance(o, StorageFault) and o.kind == "unavailable" and "not stored" in str(o)
               for o in queued), queued
    assert queued_after < 0.5  # not after the running batches' grace
    assert all(isinstance(o, StorageFault) and "may or may not" in str(o) for o in running), running
    assert ids == {"held", "after"}


def test_stop_lets_a_running_batch_finish_within_its_grace(database_url):
    """A batch that ends within STOP_GRACE gives its callers their real outcome."""
    queued, _after, running, ids = _stop_with_writes_pending(database_url, release_during_grace=True)
    assert all(isinstance(o, StorageFault) for o in queued), queued
    assert running and all(o == "blocker done" for o in running), running
    assert ids == {"held", "after"}


@pytest.mark.parametrize("backend", ["postgresql"])
def test_a_busy_writer_keeps_its_connection_drops_one_that_failed_and_closes_it_when_stopped(database_url,
                                                                                           monkeypatch):
    """Batches close together run on the same connection (no pool checkout
    and pre-ping each); a kept connection that died makes its batch fail with
    a StorageFault and is not used again (the next write is stored); closing
    the database closes the kept connection."""
    from jutella.store.db import PgGroupWriter

    monkeypatch.setattr(PgGroupWriter, "KEEP_IDLE", 60.0)  # kept whatever this machine's load

    def pid(conn):
        return conn.execute(text("SELECT pg_backend_pid()")).scalar()

    async def scenario():
        db = Database(Settings(database_url=database_url).sqlalchemy_url, pool_size=2)
        other = create_engine(Settings(database_url=database_url).sqlalchemy_url, pool_size=1)
        try:
            first = await db.write_core(pid)
            second = await db.write_core(pid)
            async with other.connect() as conn:
                await conn.execute(text("SELECT pg_terminate_backend(:p)"), {"p": second})
            try:
                await db.write_core(_add("lost"))
                failed = None
            except StorageFault as exc:
                failed = exc.kind
            third = await db.write_core(pid)
            await db.write_core(_add("stored"))
            await db.dispose()
            deadline = asyncio.get_running_loop().time() + 20
            while True:  # the backend of the kept connection ends once it is closed
                async with other.connect() as conn:
                    left = (await conn.execute(text("SELECT count(*) FROM pg_stat_activity WHERE pid = :p"),
                                               {"p": third})).scalar()
                    ids = set((await conn.execute(select(V.c.public_id))).scalars())
                if not left or asyncio.get_running_loop().time() > deadline:
                    break
                await asyncio.sleep(0.02)
        finally:
            await db.dispose()
            await other.dispose()
        return first, second, failed, third, left, ids

    first, second, failed, third, left, ids = run_async(scenario())
    assert first == second  # kept between batches
    assert failed == "unavailable" and third != second  # the dead one was dropped
    assert left == 0 and ids == {"stored"}
