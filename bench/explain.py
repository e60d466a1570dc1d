"""EXPLAIN every query a request runs, on the benchmark database, inside a rolled-back
transaction: the request goes through the app in-process (the same code the server runs),
its SQL is captured, and each SELECT/UPDATE/DELETE is explained with its real parameters
(``EXPLAIN (ANALYZE, BUFFERS)`` on PostgreSQL, ``EXPLAIN QUERY PLAN`` on SQLite).
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from flask import Flask
from sqlalchemy import event
from sqlalchemy.engine import Engine

from server.session import database

# Tables whose full scan would make a hot path grow with the years of data.
BIG_TABLES = (
    "cases",
    "case_events",
    "sms_outbox",
    "audit_log",
    "idempotency_keys",
    "accounts",
    "duty_shifts",
)
_WRITES_ROWS = re.compile(r"\bINSERT\s+INTO\b", re.IGNORECASE)
_EXPLAINABLE = re.compile(r"^\s*(SELECT|UPDATE|DELETE|WITH)\b", re.IGNORECASE)


def full_scans(dialect: str, plan: str) -> list[str]:
    """Big tables the plan reads in full (``Seq Scan`` on PostgreSQL, ``SCAN t`` on SQLite, or
    a SQLite skip-scan, ``ANY(column)``: a seek for every value of the index's first column)."""
    found = []
    for name in BIG_TABLES:
        if dialect == "postgresql":
            pattern = rf"Seq Scan on {name}\b"
        else:
            # "SCAN t" (or "SCAN TABLE t"), with or without "USING INDEX": every row is read;
            # only "SEARCH t USING INDEX" is a look-up, unless it skip-scans ("ANY(c)").
            pattern = rf"\bSCAN (TABLE )?{name}\b|\bSEARCH {name} USING .*\(ANY\("
        if re.search(pattern, plan):
            found.append(name)
    return found


@contextmanager
def capturing(engine: Engine) -> Iterator[list[tuple[str, Any, bool]]]:
    """Collect ``(statement, parameters, executemany)`` of everything sent to the database."""
    captured: list[tuple[str, Any, bool]] = []

    def capture(conn, cursor, statement, parameters, context, executemany):
        captured.append((statement, parameters, executemany))

    event.listen(engine, "before_cursor_execute", capture)
    try:
        yield captured
    finally:
        event.remove(engine, "before_cursor_execute", capture)


def capture_request(
    app: Flask,
    method: str,
    path: str,
    *,
    headers: dict[str, str] | None = None,
    json_body: Any = None,
) -> tuple[Any, list[tuple[str, Any, bool]]]:
    """Run one request in-process for real (committed) and return its response and SQL."""
    with capturing(database(app).engine) as captured:
        resp = app.test_client().open(path, method=method, headers=headers or {}, json=json_body)
    return resp, captured


def explain_request(
    app: Flask,
    method: str,
    path: str,
    *,
    headers: dict[str, str] | None = None,
    json_body: Any = None,
) -> dict[str, Any]:
    """Run one request in-process in a transaction that is rolled back; explain its SQL."""
    db = database(app)
    engine = db.engine
    dialect = engine.dialect.name
    conn = engine.connect()
    trans = conn.begin()
    saved = dict(db.sessionmaker.kw)
    db.sessionmaker.configure(bind=conn, join_transaction_mode="create_savepoint")
    try:
        with capturing(engine) as captured:
            client = app.test_client()
            resp = client.open(path, method=method, headers=headers or {}, json=json_body)
            status = resp.status_code
        queries = []
        for statement, params, many in captured:
            if many or not _EXPLAINABLE.match(statement):
                continue
            if dialect != "postgresql":
                prefix = "EXPLAIN QUERY PLAN "
            elif _WRITES_ROWS.search(statement):
                # ANALYZE would run the insert again: the request's keys are taken already.
                prefix = "EXPLAIN (COSTS OFF) "
            else:
                prefix = "EXPLAIN (ANALYZE, BUFFERS, COSTS OFF) "
            rows = conn.exec_driver_sql(prefix + statement, params).all()
            if dialect == "postgresql":
                plan = "\n".join(r[0] for r in rows)
            else:
                plan = "\n".join(f"{'  ' * _depth(rows, r)}{r[-1]}" for r in rows)
            queries.append(
                {
                    "sql": _squash(statement),
                    "plan": plan,
                    "full_scans": full_scans(dialect, plan),
                }
            )
    finally:
        trans.rollback()
        conn.close()
        db.sessionmaker.kw.clear()
        db.sessionmaker.kw.update(saved)
    return {
        "request": f"{method} {path}",
        "status": status,
        "database": dialect,
        "queries": queries,
        "full_scans": sorted({t for q in queries for t in q["full_scans"]}),
    }


def _depth(rows: list[Any], row: Any) -> int:
    # SQLite rows are (id, parent, notused, detail); indent by the parent chain.
    parents = {r[0]: r[1] for r in rows}
    depth, parent = 0, row[1]
    while parent:
        depth += 1
        parent = parents.get(parent, 0)
    return depth


def _squash(sql: str) -> str:
    return re.sub(r"\s+", " ", sql).strip()


# --- index checks (moved out of the test suite: they pin plans, not behaviour) -------------

# (index, a statement that must find rows through it): the partial indexes of migration 0009
# leave NULLs out and still serve a look-up by value.
PARTIAL_INDEX_LOOKUPS = {
    "ix_cases_subject_id_hash": "SELECT id FROM cases WHERE resident_id = 1 OR "
    "(subject_id_hash = 'ab' AND aid_type = 'medical' AND status = 'queued')",
    "ix_sms_outbox_provider_sid": "SELECT id FROM sms_outbox WHERE provider_sid = 'SM1'",
}


def _plan(conn: Any, sql: str, params: Any = None) -> str:
    if conn.dialect.name == "postgresql":
        return "\n".join(r[0] for r in conn.exec_driver_sql(f"EXPLAIN {sql}", params))
    return "\n".join(str(r[-1]) for r in conn.exec_driver_sql(f"EXPLAIN QUERY PLAN {sql}", params))


def index_checks(app: Flask, backlog: int = 1500) -> list[dict[str, Any]]:
    """Plans that must use an index, in a transaction rolled back afterwards: the partial
    indexes by value, and the SMS claim reading ``ix_sms_outbox_pending_priority`` in send
    order (no sort of the backlog per claim) with ``backlog`` receipts queued."""
    import notifications
    from server.worker import build_worker

    db = database(app)
    conn = db.engine.connect()
    trans = conn.begin()
    saved = dict(db.sessionmaker.kw)
    db.sessionmaker.configure(bind=conn, join_transaction_mode="create_savepoint")
    checks = []
    try:
        if conn.dialect.name == "postgresql":
            conn.exec_driver_sql("SET LOCAL enable_seqscan = off")  # as on a table of years
        for name, sql in PARTIAL_INDEX_LOOKUPS.items():
            plan = _plan(conn, sql)
            checks.append({"check": f"{name} serves a look-up", "ok": name in plan, "plan": plan})
        if conn.dialect.name == "postgresql":
            conn.exec_driver_sql("SET LOCAL enable_seqscan = on")
        with db.new_session() as session:
            for n in range(backlog):
                params = {"case_no": f"X-{n}", "township": "日照街道", "channel": "手机应用"}
                notifications.enqueue(session, f"+86139300{n:05d}", "claimed", params)
            for n in range(20):
                params = {"case_no": f"P-{n}", "township": "日照街道", "channel": "手机应用"}
                notifications.enqueue(session, f"+86139100{n:05d}", "duty_page", params)
            session.commit()
        if conn.dialect.name == "postgresql":
            conn.exec_driver_sql("ANALYZE sms_outbox")  # autovacuum's job in a deployment
        with capturing(db.engine) as captured, app.app_context():
            app.config["SMS_FAIR_SHARE"] = 0
            build_worker(app).claim()
        claim = [
            (s, p)
            for s, p, _many in captured
            if "FROM sms_outbox" in s and "ORDER BY sms_outbox.priority" in s and "'pending'" in s
        ]
        plan = _plan(conn, *claim[0]) if claim else "(claim statement not found)"
        ok = "ix_sms_outbox_pending_priority" in plan and not re.search("Sort|TEMP B-TREE", plan)
        checks.append({"check": "SMS claim reads the pending index in send order", "ok": ok})
        checks[-1]["plan"] = plan
    finally:
        trans.rollback()
        conn.close()
        db.sessionmaker.kw.clear()
        db.sessionmaker.kw.update(saved)
    return checks


if __name__ == "__main__":
    # python -m bench.explain: the index checks on DATABASE_URL (migrated; left unchanged).
    from server.app import create_app

    for found in index_checks(create_app()):
        print("ok  " if found["ok"] else "FAIL", found["check"])
        if not found["ok"]:
            print(found["plan"])
