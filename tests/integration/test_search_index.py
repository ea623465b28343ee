"""SQLite's full-text index kept in batches behind a watermark (migration
0025, store/search.py): a message is found by search the moment its sender
has the ack, whether or not the index has caught up; an erased message is
not found afterwards, indexed or not, and the index stays whole (a 'delete'
of a row an external-content FTS5 index never held would corrupt it); the
mark is in the database, so it survives a restart; downgrading brings the
trigger back with every message indexed. PostgreSQL (GIN, kept by each
transaction) must answer the same searches the same way."""

from __future__ import annotations

from sqlalchemy import text

from jutella.store import search
from jutella.store.db import Database, alembic_to
from jutella.store.search import matching_event_ids

import pytest

from tests.chat_clients import visitor
from tests.conftest import BOTH, run_async
from tests.helpers import add_staff, sign_in


@pytest.fixture(params=BOTH)
def backend(request):
    return request.param


def _ack(v, body: str) -> dict:
    cid = v.message(body)
    return v.until(lambda f: f["type"] == "ack" and f["client_id"] == cid)


def _search(http, q: str) -> list[str]:
    r = http.get("/api/v1/search", params={"q": q})
    assert r.status_code == 200, r.text
    return [hit["body"] for hit in r.json()]


async def _index_state(rt) -> tuple[int, int, str | None]:
    """(the mark, the highest event id, FTS5's integrity check: None when the
    index holds exactly the content table's bodies; meaningful when the mark
    is at the top: an external-content index's check compares it with the
    whole content table)."""
    async with rt.db.transaction() as s:
        mark = (await s.execute(text("SELECT indexed_upto FROM chat_event_fts_mark"))).scalar()
        top = (await s.execute(text("SELECT coalesce(max(id), 0) FROM chat_event"))).scalar()
        try:
            await s.execute(text("INSERT INTO chat_event_fts(chat_event_fts, rank) VALUES ('integrity-check', 1)"))
            broken = None
        except Exception as exc:  # noqa: BLE001 - the answer is the message
            broken = str(exc)
    return mark, top, broken


def test_search_finds_a_message_the_moment_it_is_acked_and_after_indexing(live, backend):
    add_staff(live, "aino@example.org", ["agent"], name="Aino")
    http = sign_in(live, "aino@example.org")
    v, _ = visitor(live)
    _ack(v, "Opiskelijanumeroni on 99173-AB")
    # not indexed yet on SQLite (the writer indexes every few hundred writes, housekeeping every 2 s)
    assert _search(http, "99173-ab") == ["Opiskelijanumeroni on 99173-AB"]
    assert _search(http, "numeroni") == ["Opiskelijanumeroni on 99173-AB"]
    live.call(search.catch_up, live.rt.db)
    if backend == "sqlite":
        mark, top, broken = live.call(_index_state, live.rt)
        assert mark == top and broken is None
    # found once, from the index now; the next message is in the tail, both are found
    _ack(v, "Toinen viesti: 99173-AB uudestaan")
    assert sorted(_search(http, "99173-AB")) == ["Opiskelijanumeroni on 99173-AB", "Toinen viesti: 99173-AB uudestaan"]
    assert _search(http, "uudestaan") == ["Toinen viesti: 99173-AB uudestaan"]
    assert _search(http, "ei löydy tällaista") == []
    v.close()


def test_erased_messages_are_not_found_indexed_or_not(live, backend):
    add_staff(live, "aino@example.org", ["agent"], name="Aino")
    add_staff(live, "chair@example.org", ["privacy"], name="Chair")
    http = sign_in(live, "aino@example.org")
    chair = sign_in(live, "chair@example.org")
    v, _ = visitor(live)
    conv = _ack(v, "Indexed secret QX7781 here")["conversation"]
    live.call(search.catch_up, live.rt.db)  # this one is in the index
    _ack(v, "Unindexed secret QX7782 here")  # this one above the mark
    other, _ = visitor(live)
    _ack(other, "Someone else says QX778 too")
    assert sorted(_search(http, "QX778")) == ["Indexed secret QX7781 here", "Someone else says QX778 too",
                                              "Unindexed secret QX7782 here"]

    sel = {"conversations": [conv], "offline_messages": []}
    counts = chair.post("/api/v1/privacy/erase", json={**sel, "confirm": True}).json()["counts"]
    assert counts["conversations"] == 1
    assert _search(http, "QX7781") == [] and _search(http, "QX7782") == []
    assert _search(http, "QX778") == ["Someone else says QX778 too"]
    if backend == "sqlite":
        # the index holds exactly the bodies there are: the erased indexed row's terms went, and
        # no 'delete' was sent for the row the index never held (that would fail the check)
        live.call(search.catch_up, live.rt.db)
        mark, top, broken = live.call(_index_state, live.rt)
        assert mark == top and broken is None
        # the index's own tables hold no trace of the erased words (scrub's 'optimize' rewrote them)
        async def fts_rows():
            async with live.rt.db.reader() as s:
                return (await s.execute(text("SELECT count(*) FROM chat_event_fts WHERE chat_event_fts MATCH :q"),
                                        {"q": '"QX7781"'})).scalar()
        assert live.call(fts_rows) == 0
    assert _search(http, "QX778") == ["Someone else says QX778 too"]
    v.close()
    other.close()


def test_the_mark_survives_a_restart_and_downgrade_brings_the_trigger_back(tmp_path):
    """SQLite only (the mark is SQLite's)."""
    url = f"sqlite+aiosqlite:///{tmp_path / 'm.sqlite3'}"
    now = "2026-12-07 10:00:00.000000"

    async def add(db, n0: int, n1: int):
        def job(conn):
            raw = conn.connection.dbapi_connection
            for i in range(n0, n1):
                raw.execute("INSERT INTO chat_event (conversation_id, seq, kind, author, body, created_at) "
                            "VALUES (1, ?, 'message', 'visitor', ?, ?)", (i, f"viesti numero {i:05d} kissa", now))
        await db.write_core(job)

    async def found(db, q: str) -> list[int]:
        async with db.reader() as s:
            return await matching_event_ids(s, q, limit=1000)

    async def state(db):
        async with db.engine.connect() as conn:
            mark = (await conn.exec_driver_sql("SELECT indexed_upto FROM chat_event_fts_mark")).scalar()
            indexed = (await conn.exec_driver_sql("SELECT count(*) FROM chat_event_fts_docsize")).scalar()
        return mark, indexed

    async def go():
        db = Database(url)
        await db.migrate()
        async with db.engine.begin() as conn:
            await conn.exec_driver_sql("INSERT INTO visitor (id, public_id, token_hash, created_at, last_seen_at) "
                                       f"VALUES (1, 'V-1', 'h1', '{now}', '{now}')")
            await conn.exec_driver_sql("INSERT INTO conversation (id, visitor_id, state, created_at, last_activity_at, "
                                       f"last_seq, agent_seen_seq, visitor_seen_seq) VALUES (1, 1, 'active', '{now}', "
                                       f"'{now}', 0, 0, 0)")
        await add(db, 1, 11)
        assert await search.catch_up(db) == 10
        first = await state(db)
        await add(db, 11, 16)  # above the mark when the process stops
        await db.dispose()

        db = Database(url)  # a restart
        await db.migrate()
        after_restart = await state(db)
        all_found = await found(db, "kissa")
        assert await search.catch_up(db) == 5  # only what was above the mark
        caught_up = await state(db)
        await add(db, 16, 18)
        async with db.engine.begin() as conn:
            # an indexed row and a row above the mark deleted, and each kind rectified
            await conn.exec_driver_sql("DELETE FROM chat_event WHERE seq IN (3, 17)")
            await conn.exec_driver_sql("UPDATE chat_event SET body = 'korjattu koira' WHERE seq IN (5, 16)")
        left = await found(db, "kissa")
        rectified = await found(db, "KOIRA")
        assert await search.catch_up(db) == 1  # 16
        async with db.engine.begin() as conn:  # the index holds exactly the bodies there are
            await conn.exec_driver_sql("INSERT INTO chat_event_fts(chat_event_fts, rank) VALUES ('integrity-check', 1)")
        assert sorted(await found(db, "koira")) == sorted(rectified) and await found(db, "numero 00005") == []

        async with db.engine.begin() as conn:
            await conn.run_sync(alembic_to("0024", down=True))
            triggers = set((await conn.exec_driver_sql(
                "SELECT name FROM sqlite_master WHERE type = 'trigger' AND name LIKE 'chat_event_fts%'")).scalars())
            # every message in the index after the downgrade (what was above the mark too)
            by_index = (await conn.exec_driver_sql(
                "SELECT count(*) FROM chat_event_fts WHERE chat_event_fts MATCH '\"kissa\"'")).scalar()
            await conn.exec_driver_sql("INSERT INTO chat_event_fts(chat_event_fts, rank) VALUES ('integrity-check', 1)")
        await db.migrate()  # and up again: the mark is the highest id
        up_again = await state(db)
        await db.dispose()
        return first, after_restart, all_found, caught_up, left, rectified, triggers, by_index, up_again

    first, after_restart, all_found, caught_up, left, rectified, triggers, by_index, up_again = run_async(go())
    assert first == (10, 10)
    assert after_restart == (10, 10)  # the mark is where it was; 11-15 are above it
    assert len(all_found) == 15  # ... and search finds them all
    assert caught_up == (15, 15)
    assert len(left) == 13  # 17 rows, two deleted (one indexed, one not), two rectified
    assert len(rectified) == 2
    assert triggers == {"chat_event_fts_ai", "chat_event_fts_ad", "chat_event_fts_au"}
    assert by_index == 13
    assert up_again == (17, 15)  # the highest id ever given (17, deleted) and every body indexed


@pytest.mark.parametrize("backend", ["sqlite"])  # SQLite's index only
def test_the_writer_indexes_every_few_hundred_writes(in_process, monkeypatch):
    """Without a housekeeping round (in_process runs none): after INDEX_EVERY
    writes the writer's batch has brought the index up to date itself."""
    monkeypatch.setattr(search, "INDEX_EVERY", 20)
    rt = in_process.rt
    now = "2026-12-07 10:00:00.000000"

    async def go():
        async with rt.db.engine.begin() as conn:
            await conn.exec_driver_sql("INSERT INTO visitor (id, public_id, token_hash, created_at, last_seen_at) "
                                       f"VALUES (1, 'V-1', 'h1', '{now}', '{now}')")
            await conn.exec_driver_sql("INSERT INTO conversation (id, visitor_id, state, created_at, last_activity_at, "
                                       f"last_seq, agent_seen_seq, visitor_seen_seq) VALUES (1, 1, 'active', '{now}', "
                                       f"'{now}', 0, 0, 0)")
        for i in range(1, 26):
            def job(conn, i=i):
                conn.connection.dbapi_connection.execute(
                    "INSERT INTO chat_event (conversation_id, seq, kind, author, body, created_at) "
                    "VALUES (1, ?, 'message', 'visitor', ?, ?)", (i, f"rivi {i}", now))
            await rt.db.write_core(job)
        return await _index_state(rt)

    mark, top, _ = in_process.call(go)
    assert 20 <= mark < top == 25


@pytest.mark.parametrize("backend", ["postgresql"])  # the GIN index is PostgreSQL's
def test_postgres_indexes_each_message_in_its_own_transaction(database_url):
    """Migration 0026: the GIN index keeps no pending list (``fastupdate``
    off), so no insert has to merge one (a stall of ~150 ms for the batch
    that meets it, docs/performance.md "Session 15"); a message written after
    the change is found through the index at once; downgrading restores
    PostgreSQL's default and upgrading turns it off again."""
    url = database_url.replace("postgresql://", "postgresql+asyncpg://", 1)
    now = "2026-12-08 10:00:00+00"

    async def options(conn) -> list[str] | None:
        return (await conn.exec_driver_sql(
            "SELECT reloptions FROM pg_class WHERE relname = 'ix_chat_event_body_fts'")).scalar()

    async def go():
        db = Database(url)
        await db.migrate()
        async with db.engine.begin() as conn:
            after_upgrade = await options(conn)
            await conn.exec_driver_sql("INSERT INTO visitor (id, public_id, token_hash, created_at, last_seen_at) "
                                       f"VALUES (1, 'V-1', 'h1', '{now}', '{now}')")
            await conn.exec_driver_sql("INSERT INTO conversation (id, visitor_id, state, created_at, last_activity_at, "
                                       f"last_seq, agent_seen_seq, visitor_seen_seq) VALUES (1, 1, 'active', '{now}', "
                                       f"'{now}', 0, 0, 0)")
            await conn.exec_driver_sql("INSERT INTO chat_event (conversation_id, seq, kind, author, body, created_at) "
                                       f"VALUES (1, 1, 'message', 'visitor', 'hiljainen kissa', '{now}')")
        async with db.engine.begin() as conn:
            # the planner takes the index when it must (a scan of one row would win otherwise)
            await conn.exec_driver_sql("SET LOCAL enable_seqscan = off")
            plan = "\n".join((await conn.exec_driver_sql(
                "EXPLAIN SELECT id FROM chat_event WHERE to_tsvector('simple', coalesce(body, '')) "
                "@@ plainto_tsquery('simple', 'kissa')")).scalars())
            by_index = (await conn.exec_driver_sql(
                "SELECT count(*) FROM chat_event WHERE to_tsvector('simple', coalesce(body, '')) "
                "@@ plainto_tsquery('simple', 'kissa')")).scalar()
        async with db.engine.begin() as conn:
            await conn.run_sync(alembic_to("0025", down=True))
            after_downgrade = await options(conn)
        await db.migrate()
        async with db.engine.begin() as conn:
            up_again = await options(conn)
        async with db.reader() as s:
            found = await matching_event_ids(s, "kissa", limit=10)
        await db.dispose()
        return after_upgrade, plan, by_index, after_downgrade, up_again, found

    after_upgrade, plan, by_index, after_downgrade, up_again, found = run_async(go())
    assert after_upgrade == ["fastupdate=off"]
    assert "ix_chat_event_body_fts" in plan and by_index == 1
    assert after_downgrade is None  # PostgreSQL's default (on)
    assert up_again == ["fastupdate=off"]
    assert len(found) == 1
