"""The access version: one counter that moves whenever who may see what
changes (a restriction set or lifted, a role, a department membership, an
account disabled). A reader that remembers the number it last saw knows,
by one primary-key read, whether what it decided since may be stale: an
agent's socket checks it after the hub lost notifications (docs/protocol.md,
``access_changed``).

It lives in ``store/`` because every subsystem that changes access bumps it
inside its own transaction, ``accounts/`` included, which may import nothing
above ``store/``. The row is ``system_setting`` ``access_version`` with the
value ``{"v": <int>}``; it is created by the first bump.
"""

from __future__ import annotations

from sqlalchemy import Connection, select, update
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession

from . import dialect
from .models import SystemSetting

KEY = "access_version"


def core_bump_access_version(conn: Connection) -> int:
    """Add one to the access version inside the caller's transaction and
    return the new number. Call it last in the transaction: the row lock it
    takes (PostgreSQL) is then always the last one taken, so two actions
    cannot deadlock on it. The first bump on several workers at once is safe:
    INSERT ... ON CONFLICT DO NOTHING waits for the other insert instead of
    failing the whole action with a duplicate key (as app._daily_retention
    may, where losing is harmless)."""
    conn.execute(dialect.insert(conn, SystemSetting).values(key=KEY, value={"v": 0}).on_conflict_do_nothing(
        index_elements=[SystemSetting.key]))
    value = conn.execute(select(SystemSetting.value).where(SystemSetting.key == KEY).with_for_update()).scalar_one()
    version = int((value or {}).get("v", 0)) + 1
    conn.execute(update(SystemSetting).where(SystemSetting.key == KEY).values(value={"v": version}))
    return version


async def bump_access_version(session: AsyncSession) -> int:
    """:func:`core_bump_access_version` inside an AsyncSession's transaction,
    after the session's pending changes (so the counter's lock is the last)."""
    await session.flush()
    return await session.run_sync(lambda sync: core_bump_access_version(sync.connection()))


async def read_access_version(conn: AsyncConnection | AsyncSession) -> int:
    """The current access version (0 before the first change)."""
    value = (await conn.execute(select(SystemSetting.value).where(SystemSetting.key == KEY))).scalar_one_or_none()
    return int((value or {}).get("v", 0))
