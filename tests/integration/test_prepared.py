"""store/prepared.py: the hot statements run on sqlite3 or asyncpg directly must
store and read back exactly what SQLAlchemy itself would (datetimes, JSON,
booleans), and fail with SQLAlchemy's exceptions."""

from datetime import UTC, datetime, timedelta, timezone

import pytest
from sqlalchemy import create_engine, insert, select
from sqlalchemy.exc import IntegrityError

from jutella.chat import actions as A
from jutella.store.models import Base, ChatEvent, Conversation, SubjectFlag, Visitor
from jutella.store.db import configure_sqlite
from jutella.store.prepared import Prepared


_INSERT_EVENT = Prepared(insert(ChatEvent.__table__).returning(ChatEvent.__table__.c.id), insert=True)


@pytest.fixture()
def engine(tmp_path):
    engine = create_engine(f"sqlite:///{tmp_path / 'p.db'}")
    configure_sqlite(engine)  # as jutella opens SQLite: its pragmas and SQL functions (chat/access.py's email hash)
    Base.metadata.create_all(engine)
    yield engine
    engine.dispose()


def test_raw_sqlite_path_round_trips_like_sqlalchemy(engine):
    now = datetime(2026, 11, 27, 13, 5, 7, 123456, tzinfo=UTC)
    with engine.begin() as conn:
        conn.execute(insert(Visitor).values(id=1, public_id="v1", token_hash="h", created_at=now, last_seen_at=now))
        conn.execute(insert(Conversation).values(id=5, visitor_id=1, state="waiting", created_at=now,
                                                 last_activity_at=now, last_seq=0, agent_seen_seq=0,
                                                 visitor_seen_seq=0))
        later = now + timedelta(seconds=3)
        ev = A.core_append(conn, 5, later, kind="state", author="system", data={"state": "active", "ä": [1]})
        assert ev.seq == 1
        msg = A.core_append(conn, 5, later, kind="message", author="visitor", body="Hei", client_id="c-1")
        assert msg.seq == 2
        # read back through the ORM's own types
        rows = conn.execute(select(ChatEvent.__table__).order_by(ChatEvent.seq)).all()
        assert [(r.seq, r.created_at, r.data, r.body) for r in rows] == [
            (1, later, {"state": "active", "ä": [1]}, None), (2, later, None, "Hei")]
        # the same text as SQLAlchemy writes, so that SQL compares them rightly
        text_raw = conn.exec_driver_sql("SELECT created_at FROM chat_event WHERE seq = 1").scalar()
        text_orm = conn.exec_driver_sql("SELECT created_at FROM conversation").scalar()
        assert (text_raw, text_orm) == ("2026-11-27 13:05:10.123456", "2026-11-27 13:05:07.123456")
        whole = datetime(2026, 11, 27, 15, 0, tzinfo=UTC) + timedelta(hours=2)  # no microseconds; +02:00 below
        A._SET_SEQ.run(conn, {"b_conv": 5, "b_seq": 3, "b_now": whole.astimezone(timezone(timedelta(hours=2)))})
        assert conn.exec_driver_sql("SELECT last_activity_at FROM conversation").scalar() == \
            "2026-11-27 17:00:00.000000"
        conv = A._OPEN_CONV.first(conn, {"b_visitor": 1})
        assert (conv.id, conv.last_seq, conv.last_activity_at, conv.created_at, conv.restricted) == \
            (5, 3, whole, now, False)
        assert conv.created_at.tzinfo is not None
        dup = A._core_existing(conn, 5, "c-1")
        assert (dup.seq, dup.body, dup.created_at) == (2, "Hei", later)
        assert A._core_existing(conn, 5, "c-2") is None
        conn.execute(insert(SubjectFlag).values(kind="restriction", visitor_id=1, created_at=now))
        assert A._OPEN_CONV.first(conn, {"b_visitor": 1}).restricted is True
        with pytest.raises(IntegrityError):  # the resend race surfaces as SQLAlchemy's exception
            _INSERT_EVENT.scalar(conn, {"conversation_id": 5, "seq": 3, "created_at": later, "agent_id": None,
                                          "body": "again", "client_id": "c-1", "data": None,
                                          "kind": "message", "author": "visitor"})


def test_raw_row_equals_sqlalchemy_row(engine):
    """(PostgreSQL's driver path: the test below.)"""
    now = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)
    statement = select(Visitor.__table__).where(Visitor.id == 1)
    with engine.begin() as conn:
        conn.execute(insert(Visitor).values(id=1, public_id="v1", token_hash="h", created_at=now, last_seen_at=now))
        raw = Prepared(statement).first(conn, {})
        plain = conn.execute(statement).first()
        assert vars(raw) == dict(plain._mapping)


@pytest.mark.parametrize("backend", ["postgresql"])
def test_asyncpg_path_round_trips_like_sqlalchemy_and_stays_in_the_batch_transaction(database_url):
    """On PostgreSQL a Prepared statement runs on the asyncpg connection under
    SQLAlchemy's adapter: the same values stored and read back as through
    SQLAlchemy, SQLAlchemy's exceptions, and inside the batch's transaction
    (a statement that begins it is undone with the rest when the job fails)."""
    from sqlalchemy import text

    from jutella.chat.errors import ChatError
    from jutella.settings import Settings
    from jutella.store.db import Database

    from tests.conftest import run_async

    now = datetime(2026, 11, 27, 13, 5, 7, 123456, tzinfo=UTC)
    later = now + timedelta(seconds=3)

    async def scenario():
        db = Database(Settings(database_url=database_url).sqlalchemy_url, pool_size=2)
        try:
            async with db.engine.begin() as conn:
                vid = (await conn.execute(insert(Visitor).values(public_id="v1", token_hash="h", created_at=now,
                                                                 last_seen_at=now).returning(Visitor.id))).scalar()
                cid = (await conn.execute(insert(Conversation).values(
                    visitor_id=vid, state="waiting", created_at=now, last_activity_at=now, last_seq=0,
                    agent_seen_seq=0, visitor_seen_seq=0).returning(Conversation.id))).scalar()

            def appends(conn):
                ev = A.core_append(conn, cid, later, kind="state", author="system", data={"state": "active", "ä": [1]})
                msg = A.core_append(conn, cid, later, kind="message", author="visitor", body="Hei", client_id="c-1",
                                    once=True)
                resend = A.core_append(conn, cid, later, kind="message", author="visitor", body="Hei",
                                       client_id="c-1", once=True)
                note = A.core_append(conn, cid, later + timedelta(seconds=1), kind="note", author="agent",
                                     body="n", activity=False)
                with pytest.raises(ChatError):
                    A.core_append(conn, cid + 1000, later, kind="message", author="visitor", body="x")
                conv = A._OPEN_CONV.first(conn, {"b_visitor": vid})
                dup = A._core_existing(conn, cid, "c-1")
                statement = select(Conversation.__table__).where(Conversation.id == cid)
                raw, plain = Prepared(statement).first(conn, {}), conn.execute(statement).first()
                return ev.seq, msg.seq, resend, note.seq, conv, dup, vars(raw) == dict(plain._mapping)

            ev_seq, msg_seq, resend, note_seq, conv, dup, same = await db.write_core(appends, lock=cid)
            assert (ev_seq, msg_seq, resend, note_seq, same) == (1, 2, None, 3, True)
            assert (conv.id, conv.last_seq, conv.last_activity_at, conv.created_at, conv.restricted) == \
                (cid, 3, later, now, False)  # the note is not activity
            assert (dup.seq, dup.body, dup.created_at) == (2, "Hei", later)
            async with db.engine.connect() as conn:
                rows = (await conn.execute(select(ChatEvent.__table__).where(ChatEvent.conversation_id == cid)
                                           .order_by(ChatEvent.seq))).all()
            assert [(r.seq, r.created_at, r.data, r.body) for r in rows] == [
                (1, later, {"state": "active", "ä": [1]}, None), (2, later, None, "Hei"),
                (3, later + timedelta(seconds=1), None, "n")]

            def resend_race(conn):  # the resend race surfaces as SQLAlchemy's exception
                return _INSERT_EVENT.scalar(conn, {"conversation_id": cid, "seq": 9, "created_at": later,
                                                   "agent_id": None, "body": "again", "client_id": "c-1",
                                                   "data": None, "kind": "message", "author": "visitor"})
            with pytest.raises(IntegrityError):
                await db.write_core(resend_race)

            def begins_then_fails(conn):  # the raw statement is the transaction's first
                A.core_append(conn, cid, later, kind="message", author="visitor", body="lost", client_id="c-2")
                raise RuntimeError("after the append")
            with pytest.raises(RuntimeError):
                await db.write_core(begins_then_fails)
            async with db.engine.connect() as conn:
                return (await conn.execute(text("SELECT last_seq FROM conversation WHERE id = :c"), {"c": cid})
                        ).scalar(), (await conn.execute(select(ChatEvent.seq).where(
                            ChatEvent.conversation_id == cid, ChatEvent.client_id == "c-2"))).all()
        finally:
            await db.dispose()

    last_seq, lost = run_async(scenario())
    assert (last_seq, lost) == (3, [])
