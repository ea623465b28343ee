"""Full-text search over message bodies behind one interface: SQLite's FTS5
(trigram tokenizer, so parts of words, emails and numbers match) or
PostgreSQL's full-text search (to_tsvector('simple', ...) with a GIN index).

On SQLite the index is brought up to date in batches (migration 0025,
docs/performance.md): ``index_tail`` adds every message above the watermark
row ``chat_event_fts_mark.indexed_upto`` and moves the mark. The writer
thread runs it every ``INDEX_EVERY`` writes inside one of its batches, and
the housekeeping round runs it every two seconds (``catch_up``). A search
reads the index below the mark and the few rows above it (the *tail*)
directly, so a message is found the moment it is acknowledged."""

from __future__ import annotations

from sqlalchemy import Connection, text
from sqlalchemy.ext.asyncio import AsyncSession

# the writer thread brings the index up to date after this many writes (messages, mostly):
# one FTS5 segment for a few hundred messages instead of one for each commit's few
# (500: about the fewest instructions per message measured, docs/performance.md)
INDEX_EVERY = 500

_READ_MARK = "SELECT indexed_upto FROM chat_event_fts_mark WHERE id = 1"


def index_tail(conn: Connection) -> int:
    """SQLite, inside the caller's write transaction: index every message
    above the mark and move the mark to the highest id there is. Ids only
    grow (0009) and the write transaction holds SQLite's one write lock, so
    nothing can appear below the new mark afterwards. The number of rows
    indexed. On PostgreSQL nothing (its index is kept by each transaction)."""
    if conn.dialect.name != "sqlite":
        return 0
    raw = conn.connection.dbapi_connection
    mark = raw.execute(_READ_MARK).fetchone()[0]
    top = raw.execute("SELECT max(id) FROM chat_event").fetchone()[0]
    if top is None or top <= mark:
        return 0
    cursor = raw.execute("INSERT INTO chat_event_fts(rowid, body) SELECT id, body FROM chat_event "
                         "WHERE id > ? AND id <= ? AND body IS NOT NULL", (mark, top))
    added = cursor.rowcount
    raw.execute("UPDATE chat_event_fts_mark SET indexed_upto = ? WHERE id = 1", (top,))
    return added


async def catch_up(db) -> int:
    """Index what is above the mark now, as one write of the group-commit
    writer (it joins a batch: no commit of its own). The housekeeping round
    calls it, so an idle server's last messages are indexed too."""
    if db.dialect != "sqlite":
        return 0
    return await db.write_core(index_tail)


def _fts5_phrase(query: str) -> str:
    return '"' + query.replace('"', '""') + '"'


async def matching_event_ids(session: AsyncSession, query: str, *, limit: int = 200) -> list[int]:
    """Ids of chat events whose body matches ``query``, best first."""
    query = " ".join(query.split())
    if not query:
        return []
    dialect = session.bind.dialect.name
    if dialect == "sqlite":
        if len(query) >= 3:
            # The tail first, then the index: if index_tail commits in between, a row moves from
            # the tail into the index and is found twice (kept once), never not at all. The tail
            # is matched as the trigram phrase matches: the query as a substring, case folded.
            folded = query.lower()
            tail = await session.execute(text(
                "SELECT id, body FROM chat_event WHERE id > (SELECT indexed_upto FROM chat_event_fts_mark "
                "WHERE id = 1) AND body IS NOT NULL ORDER BY id DESC"))
            ids = [i for i, body in tail if folded in body.lower()][:limit]
            sql = text("SELECT rowid FROM chat_event_fts WHERE chat_event_fts MATCH :q ORDER BY rank LIMIT :n")
            rows = await session.execute(sql, {"q": _fts5_phrase(query), "n": limit})
            seen = set(ids)
            ids += [r[0] for r in rows if r[0] not in seen]
            return ids[:limit]
        # trigrams need three characters
        sql = text("SELECT id FROM chat_event WHERE body LIKE :q ESCAPE '\\' ORDER BY id DESC LIMIT :n")
        rows = await session.execute(sql, {"q": "%" + _like(query) + "%", "n": limit})
        return [r[0] for r in rows]
    sql = text(
        "SELECT id FROM chat_event WHERE to_tsvector('simple', coalesce(body, '')) @@ websearch_to_tsquery('simple', :q) "
        "OR body ILIKE :like ESCAPE '\\' "
        "ORDER BY ts_rank(to_tsvector('simple', coalesce(body, '')), websearch_to_tsquery('simple', :q)) DESC, id DESC "
        "LIMIT :n"
    )
    rows = await session.execute(sql, {"q": query, "like": "%" + _like(query) + "%", "n": limit})
    return [r[0] for r in rows]


def _like(value: str) -> str:
    return value.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
