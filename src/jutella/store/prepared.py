"""Hot statements run straight on the database's own driver.

A message is a handful of small statements on the writer thread (read the
open conversation, look for a resend, take the next seq, insert the event).
SQLite runs each in microseconds; SQLAlchemy's execution machinery around it
(execution context, parameter processing, result metadata) cost several
times that, and on the writer thread that time holds the GIL the event loop
needs. A :class:`Prepared` statement is still written once, in Core, and is
compiled once per dialect and run on the driver itself with SQLAlchemy's
own bind and result processors (so values are stored and read back exactly
as through SQLAlchemy): on SQLite through ``sqlite3`` (which keeps the
prepared statement in its cache), on PostgreSQL through the asyncpg
connection under SQLAlchemy's adapter (asyncpg's statement cache; awaited
through SQLAlchemy's own greenlet bridge, so the callers stay plain
functions of a Connection run by ``run_sync``). On PostgreSQL SQLAlchemy's
execute around asyncpg cost 150-200 us of CPU a statement; the driver's own
call a quarter of that. The transaction is still SQLAlchemy's: a statement
run here first begins it the way the adapter's own cursor does.
docs/performance.md has the measurements.
"""

from __future__ import annotations

from datetime import UTC, datetime
from types import SimpleNamespace
from typing import Any

from sqlalchemy import JSON, Connection
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncConnection
from sqlalchemy.util import await_

from .types import UTCDateTime


_last_bound: tuple[datetime | None, str | None] = (None, None)  # the writer binds one "now" several times


def _utc_to_sqlite(value: datetime | None) -> str | None:
    """UTCDateTime's bind processing on SQLite, in one step: the same text
    (naive UTC, always with microseconds) as SQLAlchemy writes. The last
    value's text is remembered: a message binds the same ``now`` two or
    three times (the event's time, the conversation's activity)."""
    global _last_bound
    if value is None:
        return None
    last, text = _last_bound
    if value is last:
        return text
    tz = value.tzinfo
    if tz is None:
        raise ValueError("naive datetime given to the database")
    if tz is not UTC:
        value = value.astimezone(UTC)
    naive = value.replace(tzinfo=None)
    text = naive.isoformat(" ")  # isoformat(" ", "microseconds") takes twice as long
    if not naive.microsecond:
        text += ".000000"  # always with microseconds, as SQLAlchemy writes it
    _last_bound = (value, text)  # one tuple, replaced whole: safe from any thread
    return text


_parsed: dict[str, datetime] = {}  # stored text -> aware datetime; cleared when it grows past _PARSED_MAX
_PARSED_MAX = 4096


def _utc_from_sqlite(value: str | None) -> datetime | None:
    """The stored text back as an aware UTC datetime. A conversation's row is
    read for each of its messages with the same times in it (created,
    accepted): parsed once, kept in a small bounded table (datetimes are
    immutable, so sharing them is safe)."""
    if value is None:
        return None
    parsed = _parsed.get(value)
    if parsed is None:
        if len(_parsed) >= _PARSED_MAX:
            _parsed.clear()
        parsed = _parsed[value] = datetime.fromisoformat(value).replace(tzinfo=UTC)
    return parsed


def _json_bind(proc):
    """A JSON bind processor with its answer for None worked out once (a
    message's ``data`` is None: SQLAlchemy stores JSON ``null`` by running
    the serializer every time)."""
    null = proc(None)

    def process(value: Any) -> Any:
        return null if value is None else proc(value)

    return process


class _Plan:
    __slots__ = ("sql", "binds", "columns", "names", "converted")

    def __init__(self, statement, dialect, keys: tuple[str, ...] | None):
        compiled = statement.compile(dialect=dialect, column_keys=list(keys) if keys is not None else None)
        if compiled.positiontup is None:
            raise TypeError("a positional paramstyle is needed")
        procs = compiled._bind_processors

        sqlite = dialect.name == "sqlite"

        def bind_proc(name: str):
            if sqlite and isinstance(compiled.binds[name].type, UTCDateTime):
                return _utc_to_sqlite
            proc = procs.get(name)
            if proc is not None and isinstance(compiled.binds[name].type, JSON):
                return _json_bind(proc)
            return proc

        def result_proc(type_):
            return _utc_from_sqlite if sqlite and isinstance(type_, UTCDateTime) else \
                type_._cached_result_processor(dialect, None)

        # (parameter name, processor or None, the bind's default value)
        self.binds = [(name, bind_proc(name), compiled.binds[name].value) for name in compiled.positiontup]
        self.sql = compiled.string
        self.columns = [(col[0], result_proc(col[3])) for col in compiled._result_columns]
        # for rows into objects: the names in order, and only the columns that need converting
        # (most are taken as the driver gives them): 2 us instead of 4.5 for a conversation's row
        self.names = tuple(name for name, _proc in self.columns)
        last = {name: i for i, name in enumerate(self.names)}  # a name twice: the last one's value, as before
        self.converted = tuple((i, name, proc) for i, (name, proc) in enumerate(self.columns)
                               if proc is not None and last[name] == i)


def _object(plan: _Plan, row) -> SimpleNamespace:
    """A driver's row as an object with the columns as attributes, converted
    as SQLAlchemy would."""
    found = SimpleNamespace()
    values = found.__dict__
    values.update(zip(plan.names, row))
    for i, name, proc in plan.converted:
        values[name] = proc(row[i])
    return found


class Prepared:
    """A Core statement compiled once, run on the raw driver where that is SQLite."""

    __slots__ = ("statement", "insert", "_plans")

    def __init__(self, statement, *, insert: bool = False):
        self.statement = statement
        self.insert = insert  # an INSERT whose columns are the keys of its parameters
        self._plans: dict[Any, _Plan] = {}

    def _plan(self, dialect, params: dict[str, Any]) -> _Plan:
        keys = tuple(params) if self.insert else None
        plan = self._plans.get((dialect.name, keys))  # one process may use both (the tests, a migration)
        if plan is None:
            plan = self._plans[(dialect.name, keys)] = _Plan(self.statement, dialect, keys)
        return plan

    @staticmethod
    def _values(plan: _Plan, params: dict[str, Any]) -> list[Any]:
        values = []
        for name, proc, default in plan.binds:
            value = params.get(name, default)
            values.append(proc(value) if proc is not None else value)  # None too, as SQLAlchemy does (JSON null)
        return values

    def _raw(self, conn: Connection, params: dict[str, Any]):
        plan = self._plan(conn.dialect, params)
        values = self._values(plan, params)
        dbapi = conn.connection.dbapi_connection
        try:
            return plan, dbapi.execute(plan.sql, values)
        except conn.dialect.loaded_dbapi.Error as exc:
            # the same exceptions as through SQLAlchemy (IntegrityError, storage faults)
            raise DBAPIError.instance(plan.sql, values, exc, conn.dialect.loaded_dbapi.Error,
                                      dialect=conn.dialect) from exc

    def _asyncpg(self, conn: Connection, params: dict[str, Any], row: bool):
        """On PostgreSQL: the statement on the asyncpg connection itself, in the
        transaction SQLAlchemy's adapter keeps (begun here when this is the
        transaction's first statement, as the adapter's cursor begins it).
        Uses the adapter's ``_connection``, ``_transaction`` and
        ``_start_transaction``, ``_handle_exception`` (SQLAlchemy 2.1's
        asyncpg dialect; docs/sockets.md lists the internals)."""
        plan = self._plan(conn.dialect, params)
        values = self._values(plan, params)
        adapter = conn.connection.dbapi_connection
        error = conn.dialect.loaded_dbapi.Error
        try:
            try:
                if adapter._transaction is None:
                    await_(adapter._start_transaction())
                driver = adapter._connection
                if row:
                    return plan, await_(driver.fetchrow(plan.sql, *values))
                await_(driver.execute(plan.sql, *values))
                return plan, None
            except Exception as exc:
                if not isinstance(exc, error):
                    adapter._handle_exception(exc)  # raises asyncpg's error as the adapter's DBAPI error
                raise
        except error as exc:
            # the same exceptions as through SQLAlchemy (IntegrityError, a deadlock's sqlstate, faults)
            raise DBAPIError.instance(plan.sql, values, exc, error, dialect=conn.dialect,
                                      connection_invalidated=conn.dialect.is_disconnect(exc, adapter, None)) \
                from exc

    def _row(self, conn: Connection, params: dict[str, Any]):
        """(plan, the first row or None) on the driver, or None when the
        connection's driver is neither sqlite3 nor asyncpg."""
        dialect = conn.dialect
        if dialect.name == "sqlite":
            plan, cursor = self._raw(conn, params)
            found = cursor.fetchone()
            cursor.close()
            return plan, found
        if dialect.driver == "asyncpg":
            return self._asyncpg(conn, params, True)
        return None

    def first(self, conn: Connection, params: dict[str, Any]) -> SimpleNamespace | None:
        """The first row as an object with the columns as attributes, or None."""
        got = self._row(conn, params)
        if got is None:
            row = conn.execute(self.statement, params).first()
            return SimpleNamespace(**row._mapping) if row is not None else None
        plan, row = got
        return None if row is None else _object(plan, row)

    async def fetch_each(self, conn: AsyncConnection, params: list[dict[str, Any]]) -> list[SimpleNamespace]:
        """PostgreSQL: the statement once for each set of parameters, all in
        one round trip (asyncpg's ``fetchmany``: one implicit transaction,
        committed when it returns, or nothing at all when it raises); each
        execution's rows as objects, in order. For a statement that returns
        exactly one row each time, that is one row per set of parameters.
        The connection must not be in a transaction. asyncpg's own
        exceptions come out as they are."""
        plan = self._plan(conn.dialect, params[0])
        driver = (await conn.get_raw_connection()).driver_connection
        rows = await driver.fetchmany(plan.sql, [self._values(plan, p) for p in params])
        return [_object(plan, row) for row in rows]

    def scalar(self, conn: Connection, params: dict[str, Any]) -> Any:
        """The first column of the first row (None when there is none)."""
        got = self._row(conn, params)
        if got is None:
            return conn.execute(self.statement, params).scalar()
        plan, row = got
        if row is None:
            return None
        proc = plan.columns[0][1]
        return proc(row[0]) if proc is not None else row[0]

    def run(self, conn: Connection, params: dict[str, Any]) -> None:
        """Run it for its effect."""
        if conn.dialect.name == "sqlite":
            _plan, cursor = self._raw(conn, params)
            cursor.close()
        elif conn.dialect.driver == "asyncpg":
            self._asyncpg(conn, params, False)
        else:
            conn.execute(self.statement, params)
