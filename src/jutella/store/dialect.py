"""The one place that picks a dialect's INSERT for ``ON CONFLICT`` statements.

SQLAlchemy's generic ``insert`` has no ``on_conflict_do_nothing``; SQLite's and
PostgreSQL's each have their own with the same call shape. Callers hand over the
dialect name of the connection or session they write through."""

from __future__ import annotations

from typing import Any

from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert


def insert(dialect_name: str, table: Any) -> Any:
    """``INSERT`` into ``table`` for the named dialect (``"sqlite"`` or ``"postgresql"``)."""
    return (sqlite_insert if dialect_name == "sqlite" else pg_insert)(table)
