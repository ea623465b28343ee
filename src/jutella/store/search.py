"""Full-text search over message bodies behind one interface: SQLite's FTS5
(trigram tokenizer, so parts of words, emails and numbers match) or
PostgreSQL's full-text search (to_tsvector('simple', ...) with a GIN index)."""

from __future__ import annotations

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession


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
            sql = text("SELECT rowid FROM chat_event_fts WHERE chat_event_fts MATCH :q ORDER BY rank LIMIT :n")
            rows = await session.execute(sql, {"q": _fts5_phrase(query), "n": limit})
        else:  # trigrams need three characters
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
