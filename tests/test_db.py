"""The database core: times stored as aware UTC (naive ones refused), pooled connections
checked before use, SQLite's WAL settings."""

from __future__ import annotations

import datetime as dt

import pytest
from sqlalchemy import insert, select
from sqlalchemy.exc import StatementError

from server.audit import AUDIT
from server.db import utcnow


def _audit(action: str, at: dt.datetime) -> dict:
    return {"at": at, "action": action, "target_type": "t", "target_id": "1", "data": {"名": "值"}}


def test_times_round_trip_as_aware_utc(session):
    at = dt.datetime(2026, 1, 2, 11, 4, 5, 678901, tzinfo=dt.timezone(dt.timedelta(hours=8)))
    session.execute(insert(AUDIT).values(_audit("test.at", at)))
    got = session.execute(select(AUDIT.c.at, AUDIT.c.data).where(AUDIT.c.action == "test.at")).one()
    assert got.at == at and got.at.tzinfo == dt.UTC and got.data == {"名": "值"}


def test_naive_times_are_refused(session):
    naive = utcnow().replace(tzinfo=None)
    with pytest.raises(StatementError, match="naive"):
        session.execute(insert(AUDIT).values(_audit("test.naive", naive)))


def _pooled_pid(engine) -> int:
    with engine.connect() as conn:
        return conn.exec_driver_sql("SELECT pg_backend_pid()").scalar_one()


def test_a_dead_pooled_connection_is_replaced_before_use(database_url, engine):
    """A pooled connection killed while idle (a database restart in a quiet spell) is
    replaced before use: the request it would have served does not fail."""
    if engine.dialect.name != "postgresql":
        pytest.skip("a backend to kill: PostgreSQL pass only")
    from server import db

    pooled = db.make_engine(database_url, pool_size=1, max_overflow=0)
    try:
        pid = _pooled_pid(pooled)
        with engine.connect() as admin:
            admin.exec_driver_sql(f"SELECT pg_terminate_backend({pid})")
        assert _pooled_pid(pooled) != pid  # pinged, replaced, served
    finally:
        pooled.dispose()


def test_a_sqlite_file_checkpoints_its_wal_every_4000_pages(tmp_path):
    # SQLite's default (1,000 pages) copies the WAL inside a tap's commit more often.
    from server.db import make_engine

    engine = make_engine(f"sqlite:///{tmp_path / 'aidline.db'}")
    try:
        with engine.connect() as conn:
            assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
            assert conn.exec_driver_sql("PRAGMA wal_autocheckpoint").scalar() == 4000
    finally:
        engine.dispose()


def test_a_sqlite_wal_shrinks_back_after_a_bulk_write(tmp_path, monkeypatch):
    # A bulk load's WAL would otherwise stay on disk at its full size (1.4 GB after the bench's).
    from server import db

    monkeypatch.setattr(db, "WAL_SIZE_LIMIT_BYTES", 1024 * 1024)
    path = tmp_path / "aidline.db"
    engine = db.make_engine(f"sqlite:///{path}")
    wal = tmp_path / "aidline.db-wal"
    try:
        with engine.begin() as conn:
            conn.exec_driver_sql("CREATE TABLE bulk (x BLOB)")
        with engine.begin() as conn:  # 20 MB: past the 4,000-page checkpoint, in one commit
            conn.exec_driver_sql("INSERT INTO bulk VALUES (?)", [(bytes(1000),)] * 20_000)
        assert wal.stat().st_size > 16 * 1024 * 1024
        with engine.begin() as conn:  # the next write restarts the checkpointed WAL
            conn.exec_driver_sql("INSERT INTO bulk VALUES (x'00')")
        assert wal.stat().st_size <= 1024 * 1024
        with engine.connect() as conn:
            assert conn.exec_driver_sql("SELECT count(*) FROM bulk").scalar() == 20_001
    finally:
        engine.dispose()
