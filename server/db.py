"""Database core: declarative base, column types, engine factory. No Flask here.

The notifications package and the CLI use this module as well as the web app.
"""

from __future__ import annotations

import datetime as dt
import json
import time
import uuid
from collections.abc import Sequence
from types import SimpleNamespace
from typing import Any

from sqlalchemy import (
    JSON,
    DateTime,
    MetaData,
    String,
    Table,
    bindparam,
    cast,
    create_engine,
    event,
    func,
    insert,
    literal_column,
    null,
    select,
    text,
    union_all,
)
from sqlalchemy import exc as sa_exc
from sqlalchemy.engine import Engine
from sqlalchemy.orm import DeclarativeBase, Session
from sqlalchemy.types import TypeDecorator, UserDefinedType

UTC = dt.UTC

NAMING_CONVENTION = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    """Declarative base of every Aidline table."""

    metadata = MetaData(naming_convention=NAMING_CONVENTION)


class UTCDateTime(TypeDecorator):
    """A timezone-aware datetime stored as UTC on every backend (SQLite included)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: dt.datetime | None, dialect: Any) -> Any:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime: Aidline stores timezone-aware times only")
        value = value.astimezone(UTC)
        if not is_postgresql(dialect):
            return value.replace(tzinfo=None)
        return value

    def process_result_value(self, value: dt.datetime | None, dialect: Any) -> Any:
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value.astimezone(UTC)


def utcnow() -> dt.datetime:
    """The current time, timezone-aware UTC."""
    return dt.datetime.now(UTC)


def make_engine(url: str, **kwargs: Any) -> Engine:
    """Create an engine; SQLite gets WAL, foreign keys and explicit BEGIN handling."""
    if url.startswith("sqlite"):
        connect_args = kwargs.pop("connect_args", {})
        connect_args.setdefault("check_same_thread", False)
        connect_args.setdefault("timeout", 30)
        engine = create_engine(url, connect_args=connect_args, **kwargs)
        _configure_sqlite(engine, in_memory=":memory:" in url or url.rstrip("/") == "sqlite:")
        return engine
    engine = create_engine(url, **kwargs)
    if not kwargs.get("pool_pre_ping"):
        _ping_after_idle(engine)
    return engine


# A pooled connection is checked for life before use only when it has sat idle this long
# (a database restart or a dropped connection happens in a quiet spell). SQLAlchemy's
# pool_pre_ping pings on every checkout: a round trip more on every request, under load too.
# A connection that dies while busy fails its request (503) and the pool replaces them all.
PING_AFTER_IDLE_SECONDS = 5.0


def _ping_after_idle(engine: Engine) -> None:
    @event.listens_for(engine, "checkin")
    def _idle_from(_dbapi_conn: Any, record: Any) -> None:
        record.info["idle_since"] = time.monotonic()

    @event.listens_for(engine, "checkout")
    def _ping_if_idle(dbapi_conn: Any, record: Any, _proxy: Any) -> None:
        since = record.info.pop("idle_since", None)
        if since is None or time.monotonic() - since < PING_AFTER_IDLE_SECONDS:
            return
        try:
            alive = engine.dialect.do_ping(dbapi_conn)
        except Exception as exc:  # the driver's own error for a dead connection
            raise sa_exc.DisconnectionError() from exc
        if not alive:
            raise sa_exc.DisconnectionError()


# SQLite copies the WAL into the database (a checkpoint) inside the commit that takes the WAL
# past this many pages, while that writer still holds the one write lock. Fewer, larger
# checkpoints copy the pages a flood rewrites again and again (index leaves, the day's case
# counter) once each instead of once per 1,000 pages (SQLite's default): more writes a second
# for a slightly longer tail (bench/results/decisions.md).
WAL_AUTOCHECKPOINT_PAGES = 4000

# A transaction bigger than that (an import, a bulk load) leaves a WAL file of its size on disk
# until the last connection closes. Past this size SQLite truncates it when the WAL is next
# restarted. A flood's WAL (4,000 pages of 4 KiB) stays below it, so the writers never pay for
# a truncation.
WAL_SIZE_LIMIT_BYTES = 64 * 1024 * 1024


def _configure_sqlite(engine: Engine, *, in_memory: bool) -> None:
    # pysqlite's own transaction handling defers BEGIN and breaks SAVEPOINT; take it over
    # (SQLAlchemy's documented recipe) so we can also say BEGIN IMMEDIATE where we must
    # serialise writers (queue claims, every write request).
    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_conn: Any, _record: Any) -> None:
        dbapi_conn.isolation_level = None
        cur = dbapi_conn.cursor()
        cur.execute("PRAGMA foreign_keys=ON")
        cur.execute("PRAGMA busy_timeout=30000")
        if not in_memory:
            cur.execute("PRAGMA journal_mode=WAL")
            cur.execute("PRAGMA synchronous=NORMAL")
            cur.execute(f"PRAGMA wal_autocheckpoint={WAL_AUTOCHECKPOINT_PAGES}")
            cur.execute(f"PRAGMA journal_size_limit={WAL_SIZE_LIMIT_BYTES}")
        cur.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Any) -> None:
        mode = conn.get_execution_options().get("sqlite_begin", "")
        # On the driver's cursor, as the hot statements: every write request begins here.
        _BEGIN[mode].fetch(conn, {})


# --- multi-row, multi-table inserts -----------------------------------------------------------

# Statements by shape: (dialect, ((table, columns[, rows]), ...), notify channel).
_INSERTS: dict[tuple[Any, ...], Any] = {}


def _json_value(value: Any) -> Any:
    if isinstance(value, dt.datetime):
        if value.tzinfo is None:
            raise ValueError("naive datetime: Aidline stores timezone-aware times only")
        return value.isoformat()
    if isinstance(value, uuid.UUID):
        return str(value)
    raise TypeError(f"cannot insert {type(value).__name__} through JSON")


class _RowType(UserDefinedType):
    """The row type of a table (PostgreSQL), for ``CAST(NULL AS table)``."""

    cache_ok = True

    def __init__(self, table: str) -> None:
        self.table = table

    def get_col_spec(self, **_kw: Any) -> str:
        return self.table


def _postgres_insert(shape: tuple[tuple[Table, tuple[str, ...]], ...], notify: str) -> Any:
    # Data-modifying CTEs: every insert in one round trip (foreign keys are checked at the end
    # of the statement, so a case and the rows that refer to it may share one). Each table's
    # rows travel as one JSON array: one parameter a table, so the statement stays short,
    # psycopg caches its parsing and PostgreSQL its plan (a parameter per value would be
    # hundreds, converted one by one and re-parsed on every tap). Rows go in, and are
    # numbered, in array order.
    ctes = []
    for k, (table, columns) in enumerate(shape):
        rows = (
            func.json_populate_recordset(
                cast(null(), _RowType(table.name)), cast(bindparam(f"t{k}", type_=String), JSON)
            )
            .table_valued(*columns, with_ordinality="ordinality")
            .alias("r")
        )
        picked = select(*(rows.c[c] for c in columns)).order_by(rows.c.ordinality)
        ctes.append(insert(table).from_select(columns, picked, include_defaults=False).cte(f"w{k}"))
    head = func.pg_notify(notify, "") if notify else literal_column("1")
    return select(head).add_cte(*ctes)


def _insert(table: Table, columns: tuple[str, ...], n: int) -> Any:
    def bind(i: int, c: str) -> Any:
        return bindparam(f"r{i}_{c}", type_=table.c[c].type)

    if n == 1:
        return insert(table).values({c: bind(0, c) for c in columns})
    # Several rows as INSERT ... SELECT ... UNION ALL SELECT ...: unlike a multi-row VALUES
    # (which SQLAlchemy compiles anew on every execution) it is compiled once and cached.
    # The rows are inserted, and numbered, in their order.
    rows = [select(*(bind(i, c) for c in columns)) for i in range(n)]
    return insert(table).from_select(list(columns), union_all(*rows), include_defaults=False)


def insert_rows(
    session: Any, inserts: Sequence[tuple[Table, Sequence[dict[str, Any]]]], *, notify: str = ""
) -> None:
    """Insert ``rows`` into each ``table`` (every row of a table with the same keys), in the
    session's transaction and in their order: on PostgreSQL in one statement (with
    ``pg_notify(notify)`` when a channel is given), elsewhere one INSERT per table.

    Plain Core on the driver's cursor (``DriverStatement``): no ORM objects, no RETURNING;
    statements are built and compiled once per shape. Rows must be complete (Python-side
    column defaults are not applied) and their values plain (str, numbers, bool, None, aware
    datetimes, UUIDs, and dicts/lists for JSON columns). Pending ORM objects are flushed
    first, since rows may refer to them.
    """
    inserts = [(table, rows) for table, rows in inserts if rows]
    if not inserts:
        return
    if session.new:
        session.flush()  # ORM objects these rows may refer to (a Core statement does not autoflush)
    conn = session.connection()
    if is_postgresql(conn):
        shape = tuple((table, tuple(rows[0])) for table, rows in inserts)
        key = ("postgresql", shape, notify)
        stmt = _INSERTS.get(key)
        if stmt is None:
            stmt = _INSERTS[key] = DriverStatement(_postgres_insert(shape, notify))
        stmt.fetch(
            conn,
            {
                f"t{k}": json.dumps(rows, default=_json_value, ensure_ascii=False)
                for k, (_table, rows) in enumerate(inserts)
            },
        )
        return
    for table, all_rows in inserts:
        columns = tuple(all_rows[0])
        for start in range(0, len(all_rows), _CHUNK):
            rows = all_rows[start : start + _CHUNK]
            key = ("", table, columns, len(rows))
            stmt = _INSERTS.get(key)
            if stmt is None:
                stmt = _INSERTS[key] = DriverStatement(_insert(table, columns, len(rows)))
            params = {f"r{i}_{c}": value for i, row in enumerate(rows) for c, value in row.items()}
            stmt.fetch(conn, params)


# Rows a statement at most (SQLite: compound SELECTs have a limit, and one statement is
# prepared per row count).
_CHUNK = 50


def is_postgresql(bind: Any) -> bool:
    """True when ``bind`` (a Session, Connection, Engine or Dialect) is PostgreSQL, the one
    other database than SQLite."""
    if isinstance(bind, Session):
        bind = bind.get_bind()
    return getattr(bind, "dialect", bind).name == "postgresql"


# --- hot statements straight on the driver ----------------------------------------------------


def _parameters(compiled: Any, dialect: Any) -> Any:
    """The function that turns a statement's values into the driver's parameters: what
    ``construct_params`` and the types' bind processors do, in one pass over slots made once
    instead of three passes over every value. A value is
    looked up by its bind's key, then by its compiled name, else the bind's own value; a
    required bind without a value is an error, as in SQLAlchemy. None is passed as NULL."""
    escaped = compiled.escaped_bind_names or {}
    slots = []
    for bind, name in compiled.bind_names.items():
        process = bind.type.dialect_impl(dialect).bind_processor(dialect)
        slots.append((name, escaped.get(name, name), bind.key, bind, process))

    def values_of(values: dict[str, Any]) -> dict[str, Any]:
        out = {}
        for name, out_name, key, bind, process in slots:
            if key in values:
                value = values[key]
            elif name in values:
                value = values[name]
            elif bind.required:
                raise sa_exc.InvalidRequestError(
                    f"A value is required for bind parameter {key!r}", code="cd3x"
                )
            else:
                value = bind.effective_value
            out[out_name] = value if process is None or value is None else process(value)
        return out

    if not compiled.positional:
        return values_of
    # Positional (SQLite's qmark): a name used twice in the statement is sent twice.
    order = [escaped.get(name, name) for name in compiled.positiontup]

    def positional(values: dict[str, Any]) -> tuple[Any, ...]:
        out = values_of(values)
        return tuple([out[name] for name in order])

    return positional


class DriverRows:
    """The rows a ``DriverStatement`` fetched, as the driver gave them; ``values`` converts
    the named columns of one row (only those) with SQLAlchemy's result processors."""

    __slots__ = ("rows", "_index", "_processors")

    def __init__(self, rows: list[Any], index: dict[str, int], processors: list[Any]) -> None:
        self.rows = rows
        self._index = index
        self._processors = processors

    def values(self, row: Any, names: Sequence[str]) -> dict[str, Any]:
        out = {}
        for name in names:
            i = self._index[name]
            value, process = row[i], self._processors[i]
            out[name] = value if process is None or value is None else process(value)
        return out

    def first(self, names: Sequence[str] | None = None) -> dict[str, Any] | None:
        """The named columns (all when None) of the first row, converted; None without rows."""
        if not self.rows:
            return None
        return self.values(self.rows[0], tuple(self._index) if names is None else names)

    def records(self) -> list[SimpleNamespace]:
        """Every row, every column converted, as attributes (for a few rows)."""
        names = tuple(self._index)
        return [SimpleNamespace(**self.values(row, names)) for row in self.rows]


class DriverStatement:
    """A statement run on the connection's driver cursor without SQLAlchemy's per-execution
    machinery (execution context, Result, a conversion of every column of every row):
    compiled once per dialect, its parameters and the columns read converted by the types'
    own processors. For the hot paths only (the status read, the token check, the urgent
    tap's statements), where that machinery cost more CPU than the statement itself
    (bench/results/decisions.md). Listeners of ``before_cursor_execute`` and ``do_execute``
    see the statement as usual. A SELECT, or a write with or without RETURNING.

    On a Connection (the request's session's) it runs inside that connection's transaction.
    On an Engine it runs outside a transaction (PostgreSQL in autocommit, SQLite's
    connections are in autocommit already): one round trip, for a read.
    """

    def __init__(self, statement: Any) -> None:
        self.statement = statement
        # A write without RETURNING, or a statement of text: ()
        self.names = tuple(getattr(statement, "exported_columns", {}).keys())
        self._compiled: dict[str, Any] = {}

    def _prepared(self, dialect: Any) -> tuple[str, Any, dict[str, int]]:
        prepared = self._compiled.get(dialect.name)
        if prepared is None:
            compiled = self.statement.compile(dialect=dialect)
            if compiled.post_compile_params:  # expanding IN lists: rendered per execution
                raise ValueError("DriverStatement: no expanding or literal-execute parameters")
            if getattr(compiled, "insert_prefetch", None) or getattr(
                compiled, "update_prefetch", None
            ):
                # Python-side column defaults are computed by SQLAlchemy's execution context.
                raise ValueError("DriverStatement: give every column that has a Python default")
            params = _parameters(compiled, dialect)

            index = {name: i for i, name in enumerate(self.names)}
            prepared = self._compiled[dialect.name] = (compiled.string, params, index)
        return prepared

    def _processors(self, dialect: Any, cursor: Any) -> list[Any]:
        key = dialect.name + ":result"
        processors = self._compiled.get(key)
        if processors is None:
            # Once: the driver builds the description anew on every call (psycopg: an
            # object per column).
            processors = self._compiled[key] = [
                col.type.dialect_impl(dialect).result_processor(dialect, desc[1])
                for col, desc in zip(
                    self.statement.exported_columns, cursor.description, strict=True
                )
            ]
        return processors

    def fetch(self, bind: Any, values: dict[str, Any]) -> DriverRows:
        """Run with ``values`` on ``bind`` (an Engine or a Connection); all rows. Driver
        errors surface as SQLAlchemy's, a lost connection invalidated, as from execute.
        ``before_cursor_execute`` listeners get ``conn=None`` when run on an Engine."""
        if not isinstance(bind, Engine):
            return self._run(bind.dialect, bind.connection, bind, values)
        # A pooled driver connection (the pool's checkout and checkin events still run), in
        # autocommit on PostgreSQL for the one statement: no BEGIN and ROLLBACK round trips.
        pooled = bind.raw_connection()
        autocommit = is_postgresql(bind)
        try:
            if autocommit:
                pooled.driver_connection.autocommit = True
            rows = self._run(bind.dialect, pooled, bind, values)
            if autocommit:
                pooled.driver_connection.autocommit = False
        except BaseException:
            pooled.invalidate()  # in doubt, or left in autocommit: not back to the pool
            raise
        finally:
            pooled.close()
        return rows

    def _run(self, dialect: Any, pooled: Any, bind: Any, values: dict[str, Any]) -> DriverRows:
        sql, params, index = self._prepared(dialect)
        args = params(values)
        conn = None if isinstance(bind, Engine) else bind
        cursor = pooled.cursor()
        try:
            for listener in bind.dispatch.before_cursor_execute:
                sql, args = listener(conn, cursor, sql, args, None, False)
            for handler in dialect.dispatch.do_execute:  # as SQLAlchemy runs them (fault tests)
                if handler(cursor, sql, args, None):
                    break
            else:
                cursor.execute(sql, args)
            if not self.names:  # a write without RETURNING (PostgreSQL may return its key)
                rows, processors = [], []
            else:
                rows, processors = cursor.fetchall(), self._processors(dialect, cursor)
        except dialect.loaded_dbapi.Error as exc:
            lost = dialect.is_disconnect(exc, pooled.dbapi_connection, cursor)
            if lost and conn is not None:
                conn.invalidate(exc)
            raise sa_exc.DBAPIError.instance(
                sql, args, exc, dialect.loaded_dbapi.Error, connection_invalidated=lost
            ) from exc
        finally:
            cursor.close()
        return DriverRows(rows, index, processors)


# SQLite's BEGIN by mode (``sqlite_begin`` execution option): plain, or IMMEDIATE for writers.
_BEGIN = {mode: DriverStatement(text(f"BEGIN {mode}".strip())) for mode in ("", "IMMEDIATE")}
