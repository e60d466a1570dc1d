"""The gunicorn worker: a process whose threads are all taken leaves a new connection to an
idle sibling for a moment before taking it itself (server/gthread.py; the effect on load
spread is measured by ``make bench``: bench/results/decisions.md)."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import pytest
from gunicorn.workers.gthread import ThreadWorker as GunicornThreadWorker

from server import gthread


@pytest.fixture
def worker(monkeypatch: pytest.MonkeyPatch) -> Any:
    steps: list[Any] = []
    monkeypatch.setattr(gthread.time, "sleep", lambda s: steps.append(("wait", s)))
    monkeypatch.setattr(
        GunicornThreadWorker, "accept", lambda self, listener: steps.append("accept")
    )
    w = object.__new__(gthread.ThreadWorker)
    w.cfg = SimpleNamespace(threads=4)
    w.steps = steps
    return w


@pytest.mark.parametrize("open_connections", [0, 1, 3])
def test_takes_a_connection_while_a_thread_is_free(worker: Any, open_connections: int) -> None:
    worker.nr_conns = open_connections
    worker.accept(object())
    assert worker.steps == ["accept"]


@pytest.mark.parametrize("open_connections", [4, 9])
def test_waits_for_a_sibling_when_its_threads_are_taken(worker: Any, open_connections: int) -> None:
    worker.nr_conns = open_connections
    worker.accept(object())
    # Then takes it anyway: a connection is never left waiting on the listener.
    assert worker.steps == [("wait", gthread.ACCEPT_DEFER_SECONDS), "accept"]


def test_is_the_configured_worker(monkeypatch: pytest.MonkeyPatch) -> None:
    import runpy
    from pathlib import Path

    monkeypatch.delenv("GUNICORN_WORKER_CLASS", raising=False)
    conf = runpy.run_path(str(Path(__file__).resolve().parent.parent / "gunicorn.conf.py"))
    assert conf["worker_class"] == "server.gthread.ThreadWorker"


@pytest.mark.parametrize(
    ("env", "threads"),
    [
        ({}, 1),  # the embedded default database: SQLite
        ({"DATABASE_URL": "sqlite:////srv/aidline/aidline.db"}, 1),
        ({"DATABASE_URL": "postgresql+psycopg://aidline@db/aidline"}, 4),
        ({"DATABASE_URL": "postgresql+psycopg://aidline@db/aidline", "GUNICORN_THREADS": "8"}, 8),
        ({"GUNICORN_THREADS": "2"}, 2),
    ],
)
def test_threads_per_process_follow_the_database(
    monkeypatch: pytest.MonkeyPatch, env: dict[str, str], threads: int
) -> None:
    import runpy
    from pathlib import Path

    monkeypatch.delenv("DATABASE_URL", raising=False)
    monkeypatch.delenv("GUNICORN_THREADS", raising=False)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    conf = runpy.run_path(str(Path(__file__).resolve().parent.parent / "gunicorn.conf.py"))
    assert conf["threads"] == threads


def test_live_requests_wait_beside_the_apis_threads(monkeypatch: pytest.MonkeyPatch) -> None:
    import threading

    monkeypatch.setenv("GUNICORN_LIVE_THREADS", "3")
    w = object.__new__(gthread.ThreadWorker)
    w.cfg = SimpleNamespace(threads=1)
    w.live_slots = threading.BoundedSemaphore(gthread.live_threads())
    w.api_slots = threading.BoundedSemaphore(w.cfg.threads)
    seen: list[Any] = []

    def app(environ: dict[str, Any], start_response: Any) -> list[bytes]:
        api_free = w.api_slots.acquire(blocking=False)
        if api_free:
            w.api_slots.release()
        seen.append((environ["PATH_INFO"], environ.get("aidline.live_slots"), api_free))
        return [b""]

    gated = w._gated(app)
    gated({"PATH_INFO": "/console/live"}, None)
    gated({"PATH_INFO": "/api/v1/cases"}, None)
    live, api = seen
    # The live channel gets the waiting slots and takes no API thread ...
    assert live[1] is w.live_slots and live[2] is True
    # ... every other request runs within the API's own threads.
    assert api[1] is None and api[2] is False
    assert w.get_thread_pool()._max_workers == 1 + 3
