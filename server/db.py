"""Database core: declarative base, column types, engine factory. No Flask here.

The notifications package and the CLI use this module as well as the web app.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from typing import Any

from sqlalchemy import (
    DateTime,
    MetaData,
    Table,
    bindparam,
    create_engine,
    event,
    insert,
    literal_column,
    select,
    union_all,
)
from sqlalchemy.engine import Engine
from sqlalchemy.orm import DeclarativeBase
from sqlalchemy.types import TypeDecorator

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
        if dialect.name == "sqlite":
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
    kwargs.setdefault("pool_pre_ping", True)
    return create_engine(url, **kwargs)


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
        cur.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Any) -> None:
        mode = conn.get_execution_options().get("sqlite_begin", "")
        conn.exec_driver_sql(f"BEGIN {mode}".strip())


# --- multi-row, multi-table inserts -----------------------------------------------------------

# Prepared statements by shape: (dialect, ((table, columns, rows), ...), notify channel).
_INSERTS: dict[tuple[Any, ...], Any] = {}


def _insert(table: Table, columns: tuple[str, ...], n: int, prefix: str) -> Any:
    def bind(i: int, c: str) -> Any:
        return bindparam(f"{prefix}{i}_{c}", type_=table.c[c].type)

    if n == 1:
        return insert(table).values({c: bind(0, c) for c in columns})
    # Several rows as INSERT ... SELECT ... UNION ALL SELECT ...: unlike a multi-row VALUES
    # (which SQLAlchemy compiles anew on every execution) it is compiled once and cached.
    # The rows are inserted, and numbered, in their order.
    rows = [select(*(bind(i, c) for c in columns)) for i in range(n)]
    return insert(table).from_select(list(columns), union_all(*rows), include_defaults=False)


def _prepared(dialect: str, shape: tuple[tuple[Table, tuple[str, ...], int], ...], notify: str):
    key = (dialect, shape, notify)
    stmt = _INSERTS.get(key)
    if stmt is None:
        inserts = [_insert(table, cols, n, f"t{k}_") for k, (table, cols, n) in enumerate(shape)]
        if dialect == "postgresql":
            # Data-modifying CTEs: every insert in one round trip. Foreign keys are checked
            # at the end of the statement, so a case and the rows that refer to it may share one.
            head = select(
                literal_column(f"pg_notify('{notify}', '')") if notify else literal_column("1")
            )
            stmt = head.add_cte(*(ins.cte(f"w{k}") for k, ins in enumerate(inserts)))
        else:
            stmt = inserts
        _INSERTS[key] = stmt
    return stmt


def insert_rows(
    session: Any, inserts: Sequence[tuple[Table, Sequence[dict[str, Any]]]], *, notify: str = ""
) -> None:
    """Insert ``rows`` into each ``table`` (every row of a table with the same keys), in the
    session's transaction: one statement on PostgreSQL (data-modifying CTEs, with
    ``pg_notify(notify)`` when a channel is given), one multi-row INSERT per table elsewhere.

    Plain Core: no ORM objects, no RETURNING; statements are prepared once per shape. Rows
    must be complete (Python-side column defaults are not applied). Pending ORM objects are
    flushed first, since rows may refer to them.
    """
    inserts = [(table, rows) for table, rows in inserts if rows]
    if not inserts:
        return
    if session.new:
        session.flush()  # ORM objects these rows may refer to (a Core statement does not autoflush)
    conn = session.connection()
    dialect = conn.dialect.name
    shape = tuple((table, tuple(rows[0]), len(rows)) for table, rows in inserts)
    params = [
        {f"t{k}_{i}_{col}": value for i, row in enumerate(rows) for col, value in row.items()}
        for k, (_table, rows) in enumerate(inserts)
    ]
    stmt = _prepared(dialect, shape, notify if dialect == "postgresql" else "")
    if dialect == "postgresql":
        conn.execute(stmt, {k: v for p in params for k, v in p.items()})
        return
    for ins, p in zip(stmt, params, strict=True):
        conn.execute(ins, p)


def is_sqlite(engine_or_session: Any) -> bool:
    """True when the bound database is SQLite."""
    bind = getattr(engine_or_session, "bind", engine_or_session)
    return bind.dialect.name == "sqlite"
