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
