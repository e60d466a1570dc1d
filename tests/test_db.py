"""insert_rows: several tables in one call (one statement on PostgreSQL), rows in their order,
values round-trip (aware times, UUIDs, JSON), pending ORM objects flushed first."""

from __future__ import annotations

import datetime as dt
import uuid

import pytest
from sqlalchemy import bindparam, event, select
from sqlalchemy.exc import StatementError

from server.audit import AUDIT
from server.cases.events import EVENTS, event_row
from server.cases.models import Case
from server.db import insert_rows, utcnow
from tests import factories


def _audit(i: int, at: dt.datetime) -> dict:
    return {
        "at": at,
        "actor_id": None,
        "actor_role": None,
        "action": f"test.{i}",
        "target_type": "t",
        "target_id": str(i),
        "ip": None,
        "data": {"i": i, "名": "值", "nested": [1, None, True]},
    }


def test_rows_of_several_tables_in_order(session, connection):
    resident = factories.resident(session)
    case = Case(
        id=uuid.uuid4(),
        case_no=f"T-{uuid.uuid4().hex[:8]}",
        urgent=True,
        aid_type="temporary_emergency",
        channel="app",
        resident_id=resident.id,
    )
    session.add(case)  # pending: insert_rows flushes it before the events that refer to it
    at = dt.datetime(2026, 1, 2, 3, 4, 5, 678901, tzinfo=dt.UTC)
    events = [event_row(case_id=case.id, actor=None, action=f"e{i}", at=at) for i in range(7)]
    audits = [_audit(i, at) for i in range(120)]  # more than one SQLite chunk
    seen: list[str] = []

    def log(conn, cursor, statement, *args):
        seen.append(statement)

    event.listen(connection, "before_cursor_execute", log)
    insert_rows(session, [(EVENTS, events), (AUDIT, audits)])
    event.remove(connection, "before_cursor_execute", log)
    writes = [s for s in seen if "INSERT INTO case_events" in s or "INSERT INTO audit_log" in s]
    if connection.dialect.name == "postgresql":
        assert len(writes) == 1  # one round trip for both tables
    got = session.execute(
        select(EVENTS.c.action, EVENTS.c.at)
        .where(EVENTS.c.case_id == case.id)
        .order_by(EVENTS.c.id)
    ).all()
    assert [g.action for g in got] == [f"e{i}" for i in range(7)]
    assert got[0].at == at
    rows = session.execute(
        select(AUDIT.c.action, AUDIT.c.data, AUDIT.c.at)
        .where(AUDIT.c.action.startswith("test."))
        .order_by(AUDIT.c.id)
    ).all()
    assert [r.action for r in rows] == [f"test.{i}" for i in range(120)]
    assert rows[5].data == {"i": 5, "名": "值", "nested": [1, None, True]}
    assert rows[5].at == at


def test_naive_times_are_refused(session):
    naive = utcnow().replace(tzinfo=None)
    # PostgreSQL: refused while encoding the rows; SQLite: by the column type (UTCDateTime).
    with pytest.raises((ValueError, StatementError), match="naive"):
        insert_rows(session, [(AUDIT, [_audit(1, naive)])])


def _pooled_pid(engine) -> int:
    with engine.connect() as conn:
        return conn.exec_driver_sql("SELECT pg_backend_pid()").scalar_one()


@pytest.mark.parametrize("idle_threshold", [0.0, 3600.0])
def test_idle_pooled_connection_is_checked_before_use(
    database_url, engine, monkeypatch, idle_threshold
):
    """A pooled connection killed while idle (a database restart in a quiet spell) is replaced
    before use once it has been idle PING_AFTER_IDLE_SECONDS; a busy one is not pinged."""
    if engine.dialect.name != "postgresql":
        pytest.skip("a backend to kill: PostgreSQL pass only")
    from sqlalchemy import exc as sa_exc

    from server import db

    monkeypatch.setattr(db, "PING_AFTER_IDLE_SECONDS", idle_threshold)
    pooled = db.make_engine(database_url, pool_size=1, max_overflow=0)
    try:
        pid = _pooled_pid(pooled)
        with engine.connect() as admin:
            admin.exec_driver_sql(f"SELECT pg_terminate_backend({pid})")
        if idle_threshold == 0.0:
            assert _pooled_pid(pooled) != pid  # pinged, replaced, served
        else:
            # Not idle long enough to ping: the dead connection fails its statement once...
            with pytest.raises(sa_exc.OperationalError):
                _pooled_pid(pooled)
            assert _pooled_pid(pooled) != pid  # ...and the pool has replaced it
    finally:
        pooled.dispose()


def test_driver_statement_converts_only_what_is_read(engine, session):
    """DriverStatement's values are those of a Core execute, for the columns asked for."""
    from server.db import DriverStatement

    case = factories.case(session)
    at = dt.datetime(2026, 1, 2, 3, 4, 5, 678_000, tzinfo=dt.UTC)
    insert_rows(session, [(EVENTS, [event_row(case_id=case.id, actor=None, action="e0", at=at)])])
    stmt = (
        select(EVENTS.c.case_id, EVENTS.c.at, EVENTS.c.action, EVENTS.c.resident_visible)
        .where(EVENTS.c.case_id == bindparam("case_id"))
        .order_by(EVENTS.c.id)
    )
    want = session.execute(stmt, {"case_id": case.id}).one()
    found = DriverStatement(stmt).fetch(session.connection(), {"case_id": case.id})
    got = found.values(found.rows[-1], ("case_id", "at", "action", "resident_visible"))
    assert got == want._asdict() and got["at"] == at and got["at"].tzinfo is not None
    assert found.values(found.rows[-1], ("action",)) == {"action": "e0"}
    assert found.first() == want._asdict() and found.first(("action",)) == {"action": "e0"}
    none = DriverStatement(stmt).fetch(session.connection(), {"case_id": uuid.uuid4()})
    assert none.rows == [] and none.first() is None


def test_driver_statement_writes_as_core_does(session):
    """A write on the driver's cursor stores what a Core execute stores (the types' bind
    processors: aware time, JSON), and RETURNING comes back converted."""
    from sqlalchemy import insert

    from server.db import DriverStatement

    at = dt.datetime(2026, 1, 2, 3, 4, 5, 678_000, tzinfo=dt.UTC)
    row = {**_audit(7, at), "action": "driver.write"}
    write = DriverStatement(insert(AUDIT).values({c: bindparam(c) for c in row}))
    assert write.fetch(session.connection(), row).rows == []
    returning = DriverStatement(
        insert(AUDIT).values({c: bindparam(c) for c in row}).returning(AUDIT.c.at, AUDIT.c.data)
    )
    found = returning.fetch(session.connection(), {**row, "action": "driver.returning"})
    assert found.records()[0].at == at and found.records()[0].data == row["data"]
    session.execute(insert(AUDIT).values({**row, "action": "core.write"}))
    stored = session.execute(
        select(AUDIT.c.action, AUDIT.c.at, AUDIT.c.data)
        .where(AUDIT.c.action.in_(["driver.write", "driver.returning", "core.write"]))
        .order_by(AUDIT.c.id)
    ).all()
    assert [r.action for r in stored] == ["driver.write", "driver.returning", "core.write"]
    assert {(r.at, str(r.data)) for r in stored} == {(at, str(row["data"]))}
    raw = session.connection().exec_driver_sql(
        "SELECT at, data FROM audit_log WHERE action IN ('driver.write', 'core.write')"
    )
    assert len({tuple(map(str, r)) for r in raw}) == 1  # the same bytes in the table


def test_driver_statement_on_a_dead_connection(database_url, engine, monkeypatch):
    """A pooled connection that died under DriverStatement fails that statement with
    SQLAlchemy's error (a 503 at the request boundary) and is not handed out again."""
    if engine.dialect.name != "postgresql":
        pytest.skip("a backend to kill: PostgreSQL pass only")
    from sqlalchemy import exc as sa_exc
    from sqlalchemy import literal_column

    from server import db

    monkeypatch.setattr(db, "PING_AFTER_IDLE_SECONDS", 3600.0)
    pooled = db.make_engine(database_url, pool_size=1, max_overflow=0)
    pid_of = db.DriverStatement(select(literal_column("pg_backend_pid()").label("pid")))
    try:
        found = pid_of.fetch(pooled, {})
        pid = found.rows[0][0]
        with engine.connect() as admin:
            admin.exec_driver_sql(f"SELECT pg_terminate_backend({pid})")
        with pytest.raises(sa_exc.OperationalError) as failed:
            pid_of.fetch(pooled, {})
        assert failed.value.connection_invalidated
        assert pid_of.fetch(pooled, {}).rows[0][0] != pid
        with pooled.connect() as conn:  # back in the pool out of autocommit
            assert conn.connection.driver_connection.autocommit is False
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
