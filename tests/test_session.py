"""The request boundary's SQLite writer queue: write requests take turns (threads and
processes), wait without polling SQLite's busy handler, give up after the busy timeout (503),
and release their turn on every path; a write request's token check runs before its turn and
``commit_now`` hands the turn on before the answer is sent. Runs on its own SQLite file
whatever the test database."""

from __future__ import annotations

import fcntl
import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from flask import Flask, Response, jsonify
from sqlalchemy import text
from sqlalchemy.engine import Engine

from server.errors import register_error_handlers
from server.session import WriterQueue, commit_now, database, db_session, read_bind
from server.session import init_app as init_db


@pytest.fixture
def tiny(tmp_path: Path) -> Flask:
    """A bare app on a fresh SQLite file with views that write, fail, or read."""
    app = Flask(__name__)
    app.config["DATABASE_URL"] = f"sqlite:///{tmp_path / 'w.db'}"
    register_error_handlers(app)
    init_db(app)
    spans: list[tuple[float, float]] = []
    app.config["spans"] = spans

    @app.post("/ok")
    def ok() -> Response:
        db_session()  # the turn is ours from here to the end of the request
        start = time.monotonic()
        time.sleep(0.01)
        spans.append((start, time.monotonic()))
        return Response(status=200)

    @app.post("/refused")
    def refused() -> Response:
        db_session()
        return Response(status=422)

    @app.post("/boom")
    def boom() -> Response:
        db_session()
        raise RuntimeError("view failed")

    @app.get("/read")
    def read() -> Response:
        db_session()
        return Response(status=200)

    @app.post("/early")
    def early() -> Response:
        # A token check, then the request's writes, committed before the answer is sent.
        queue = database().writers
        bind = read_bind()
        with bind.connect() as conn:
            checked = conn.execute(text("SELECT 1")).scalar_one()
        free_while_checking = _free(queue)
        session = db_session()
        held_while_writing = not _free(queue)
        session.execute(
            text("INSERT INTO child (id, parent_id) VALUES (1, :p)"), {"p": app.config["p"]}
        )
        commit_now(session)
        return jsonify(
            checked_outside_transaction=isinstance(bind, Engine) and checked == 1,
            free_while_checking=free_while_checking,
            held_while_writing=held_while_writing,
            free_after_commit=_free(queue),
        )

    yield app
    database(app).engine.dispose()


def _free(queue: WriterQueue) -> bool:
    """Neither a thread of this process nor another process holds the writers' turn."""
    if queue.busy:
        return False
    fd = os.open(f"{queue.path}.writers", os.O_RDWR | os.O_CREAT)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        return True
    except BlockingIOError:
        return False
    finally:
        os.close(fd)


def test_the_turn_is_released_on_every_path(tiny: Flask) -> None:
    queue = database(tiny).writers
    assert queue is not None and queue.path
    client = tiny.test_client()
    for path, status in (("/ok", 200), ("/refused", 422), ("/boom", 500), ("/ok", 200)):
        assert client.post(path).status_code == status
        assert _free(queue), path
    assert client.get("/read").status_code == 200 and _free(queue)


def test_writers_of_one_process_take_turns(tiny: Flask) -> None:
    barrier = threading.Barrier(8)
    codes: list[int] = []

    def write() -> None:
        client = tiny.test_client()
        barrier.wait()
        codes.append(client.post("/ok").status_code)

    threads = [threading.Thread(target=write) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert codes == [200] * 8
    spans = sorted(tiny.config["spans"])
    assert all(a_end <= b_start for (_, a_end), (b_start, _) in zip(spans, spans[1:], strict=False))


_HOLDER = """
import sys, time
from server.session import WriterQueue
q = WriterQueue(sys.argv[1])
q.acquire()
print("held", flush=True)
time.sleep(float(sys.argv[2]))
q.release()
"""


def test_a_writer_in_another_process_is_waited_for(tiny: Flask) -> None:
    queue = database(tiny).writers
    assert queue is not None
    with subprocess.Popen(
        [sys.executable, "-c", _HOLDER, str(queue.path), "0.4"],
        stdout=subprocess.PIPE,
        text=True,
        cwd=Path(__file__).resolve().parents[1],
    ) as holder:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "held"
        start = time.monotonic()
        assert tiny.test_client().post("/ok").status_code == 200
        assert time.monotonic() - start >= 0.2  # it waited for the other process's turn
    assert _free(queue)


def test_a_turn_never_handed_on_is_a_503_after_the_busy_timeout(tiny: Flask) -> None:
    queue = database(tiny).writers
    assert queue is not None
    queue.timeout = 0.2
    stuck = threading.Event()
    done = threading.Event()

    def stuck_writer() -> None:  # a writer of this process that does not finish
        queue.acquire()
        stuck.set()
        done.wait(10)
        queue.release()

    holder = threading.Thread(target=stuck_writer)
    holder.start()
    try:
        assert stuck.wait(10)
        r = tiny.test_client().post("/ok")
        assert r.status_code == 503 and r.get_json()["code"] == "database_unavailable"
        assert queue.busy  # the stuck writer still holds its turn
    finally:
        done.set()
        holder.join(10)
    assert tiny.test_client().post("/ok").status_code == 200
    assert _free(queue)


def test_token_check_before_the_turn_and_commit_now_hands_it_on(tiny: Flask) -> None:
    queue = database(tiny).writers
    with database(tiny).engine.begin() as conn:
        conn.execute(text("CREATE TABLE parent (id INTEGER PRIMARY KEY)"))
        conn.execute(
            text(
                "CREATE TABLE child (id INTEGER PRIMARY KEY, parent_id INTEGER "
                "REFERENCES parent (id) DEFERRABLE INITIALLY DEFERRED)"
            )
        )
        conn.execute(text("INSERT INTO parent (id) VALUES (1)"))
    client = tiny.test_client()
    tiny.config["p"] = 1
    r = client.post("/early")
    assert r.status_code == 200 and r.get_json() == {
        "checked_outside_transaction": True,
        "free_while_checking": True,
        "held_while_writing": True,
        "free_after_commit": True,
    }
    # A commit that fails (a deferred foreign key) answers 409 in the uniform shape, nothing
    # written, the turn handed on.
    tiny.config["p"] = 99
    with database(tiny).engine.begin() as conn:
        assert conn.execute(text("SELECT parent_id FROM child")).scalar_one() == 1
        conn.execute(text("DELETE FROM child"))
    r = client.post("/early")
    assert r.status_code == 409 and r.get_json()["code"] == "conflict"
    with database(tiny).engine.connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM child")).scalar_one() == 0
    assert _free(queue)


def test_each_waiting_writer_is_woken_alone_in_arrival_order() -> None:
    queue = WriterQueue(None)
    queue.acquire()
    got: list[int] = []

    def writer(i: int) -> None:
        queue.acquire()
        got.append(i)

    threads = []
    for i in range(3):
        threads.append(threading.Thread(target=writer, args=(i,)))
        threads[-1].start()
        deadline = time.monotonic() + 10
        while len(queue._waiting) < i + 1 and time.monotonic() < deadline:
            time.sleep(0.001)
    wake_ups = list(queue._waiting.values())
    assert len(wake_ups) == 3
    for served in range(3):
        queue.release()  # hands the turn to the next waiter only
        deadline = time.monotonic() + 10
        while len(got) < served + 1 and time.monotonic() < deadline:
            time.sleep(0.001)
        assert got == list(range(served + 1))
        assert [e.is_set() for e in wake_ups] == [k <= served for k in range(3)]
    queue.release()
    for t in threads:
        t.join(10)
    assert not queue.busy
