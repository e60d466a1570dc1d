"""The request boundary on SQLite: write requests take the write lock when they open their
session (``BEGIN IMMEDIATE``) and take turns, a lock held past the busy timeout is a 503, a
refused or failed request writes nothing, and a commit that fails is a 409. Runs on its own
SQLite file whatever the test database."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import pytest
from flask import Flask, Response
from sqlalchemy import event, text

from server.errors import register_error_handlers
from server.session import database, db_session
from server.session import init_app as init_db


@pytest.fixture
def tiny(tmp_path: Path) -> Flask:
    """A bare app on a fresh SQLite file with views that write, fail, or read."""
    app = Flask(__name__)
    app.config["DATABASE_URL"] = f"sqlite:///{tmp_path / 'w.db'}"
    register_error_handlers(app)
    init_db(app)
    with database(app).engine.begin() as conn:
        conn.execute(text("CREATE TABLE parent (id INTEGER PRIMARY KEY)"))
        conn.execute(
            text(
                "CREATE TABLE child (id INTEGER PRIMARY KEY, parent_id INTEGER "
                "REFERENCES parent (id) DEFERRABLE INITIALLY DEFERRED)"
            )
        )
        conn.execute(text("INSERT INTO parent (id) VALUES (1)"))
    spans: list[tuple[float, float]] = []
    app.config["spans"] = spans

    def write(parent: int = 1) -> None:
        db_session().execute(text("INSERT INTO child (parent_id) VALUES (:p)"), {"p": parent})

    @app.post("/ok")
    def ok() -> Response:
        write()  # the write lock is ours from here to the end of the request
        start = time.monotonic()
        time.sleep(0.01)
        spans.append((start, time.monotonic()))
        return Response(status=200)

    @app.post("/refused")
    def refused() -> Response:
        write()
        return Response(status=422)

    @app.post("/boom")
    def boom() -> Response:
        write()
        raise RuntimeError("view failed")

    @app.post("/orphan")
    def orphan() -> Response:
        write(parent=99)  # a deferred foreign key: fails at the commit
        return Response(status=200)

    yield app
    database(app).engine.dispose()


def _children(app: Flask) -> int:
    with database(app).engine.connect() as conn:
        return conn.execute(text("SELECT count(*) FROM child")).scalar_one()


def test_refused_and_failed_requests_write_nothing(tiny: Flask) -> None:
    client = tiny.test_client()
    for path, status in (("/refused", 422), ("/boom", 500), ("/ok", 200)):
        assert client.post(path).status_code == status
    assert _children(tiny) == 1


def test_a_commit_that_fails_is_a_409_and_writes_nothing(tiny: Flask) -> None:
    r = tiny.test_client().post("/orphan")
    assert r.status_code == 409 and r.get_json()["code"] == "conflict"
    assert _children(tiny) == 0


def test_writers_of_one_process_take_turns(tiny: Flask) -> None:
    barrier = threading.Barrier(8)
    codes: list[int] = []

    def post() -> None:
        client = tiny.test_client()
        barrier.wait()
        codes.append(client.post("/ok").status_code)

    threads = [threading.Thread(target=post) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert codes == [200] * 8
    assert _children(tiny) == 8
    spans = sorted(tiny.config["spans"])
    assert all(a_end <= b_start for (_, a_end), (b_start, _) in zip(spans, spans[1:], strict=False))


def test_a_write_lock_held_past_the_busy_timeout_is_a_503(tiny: Flask) -> None:
    engine = database(tiny).engine
    engine.dispose()

    @event.listens_for(engine, "connect")
    def _short_wait(dbapi_conn, _record) -> None:
        dbapi_conn.execute("PRAGMA busy_timeout=200")

    with engine.connect().execution_options(sqlite_begin="IMMEDIATE") as holder:
        holder.exec_driver_sql("SELECT 1")  # another writer, holding the lock
        start = time.monotonic()
        r = tiny.test_client().post("/ok")
        assert r.status_code == 503 and r.get_json()["code"] == "database_unavailable"
        assert time.monotonic() - start >= 0.15  # it waited for the lock first
        holder.rollback()
    assert tiny.test_client().post("/ok").status_code == 200
