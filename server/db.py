"""Database core: declarative base, column types, engine factory. No Flask here.

The notifications package and the CLI use this module as well as the web app.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import DateTime, MetaData, create_engine, event
from sqlalchemy.engine import Engine
from sqlalchemy.orm import DeclarativeBase, Session
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
    """Create an engine; SQLite gets WAL, foreign keys and explicit BEGIN handling, other
    databases a ping of each pooled connection before use."""
    if url.startswith("sqlite"):
        connect_args = kwargs.pop("connect_args", {})
        connect_args.setdefault("check_same_thread", False)
        connect_args.setdefault("timeout", 30)
        engine = create_engine(url, connect_args=connect_args, **kwargs)
        _configure_sqlite(engine, in_memory=":memory:" in url or url.rstrip("/") == "sqlite:")
        return engine
    # A pooled connection is checked for life before use: a database restart or a dropped
    # connection costs no request (one that dies mid-request fails with a 503).
    kwargs.setdefault("pool_pre_ping", True)
    return create_engine(url, **kwargs)


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
        conn.exec_driver_sql(f"BEGIN {mode}".strip())


def is_postgresql(bind: Any) -> bool:
    """True when ``bind`` (a Session, Connection, Engine or Dialect) is PostgreSQL, the one
    other database than SQLite."""
    if isinstance(bind, Session):
        bind = bind.get_bind()
    return getattr(bind, "dialect", bind).name == "postgresql"
