"""The one place that picks a dialect's INSERT for ``ON CONFLICT`` statements.

SQLAlchemy's generic ``insert`` has no ``on_conflict_do_nothing``; SQLite's and
PostgreSQL's each have their own with the same call shape. Callers hand over
what they write through (a Connection, or an AsyncSession's ``get_bind()``)."""

from __future__ import annotations

from typing import Any

from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert


def insert(bind: Any, table: Any) -> Any:
    """``INSERT`` into ``table`` in the dialect of ``bind`` (anything with a
    SQLAlchemy ``dialect``: SQLite's or PostgreSQL's)."""
    return (sqlite_insert if bind.dialect.name == "sqlite" else pg_insert)(table)
