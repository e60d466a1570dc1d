"""Helpers for the SMS tests: cases to attach messages to, workers wired to the test app."""

from __future__ import annotations

import itertools
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from flask import Flask
from sqlalchemy.orm import Session

import notifications
from server.cases.models import Case
from server.worker import build_worker

TOWNSHIP = "371102001"  # 日照街道, 东港区
COUNTY = "371102"
_seq = itertools.count(1)


def make_case(session: Session, resident: Any, **fields: Any) -> Case:
    """A queued urgent case of ``resident`` in 日照街道 (intake is not needed here)."""
    n = next(_seq)
    values: dict[str, Any] = {
        "case_no": f"UR-{TOWNSHIP}-20261123-{n:04d}",
        "urgent": True,
        "aid_type": "temporary_emergency",
        "status": "queued",
        "channel": "app",
        "resident_id": resident.id,
        "township_code": TOWNSHIP,
        "county_code": COUNTY,
        "subject_phone": resident.phone,
    }
    values.update(fields)
    case = Case(**values)
    session.add(case)
    session.flush()
    return case


def worker(app: Flask, *, worker_id: str | None = None, **config: Any):
    """A worker for ``app`` after applying ``config``."""
    app.config.update(config)
    return build_worker(app, worker_id=worker_id)


@contextmanager
def sleeping_worker(app: Flask, fake_twilio: Any) -> Iterator[None]:
    """A worker running in a thread, asleep when the block starts: on PostgreSQL on LISTEN
    with a 30 s poll (only a NOTIFY wakes it in time), on SQLite between 0.05 s polls. Stopped
    after the block (a last message interrupts the LISTEN wait)."""
    from notifications.waiting import waiter_for
    from server.session import database
    from tests.fake_twilio import twilio_config

    pg = database(app).engine.dialect.name == "postgresql"
    w = worker(app, **twilio_config(fake_twilio, SMS_POLL_SECONDS=30 if pg else 0.05))
    stop = threading.Event()
    thread = threading.Thread(
        target=w.run_forever, args=(stop, waiter_for(database(app).engine, stop))
    )
    thread.start()
    try:
        time.sleep(0.3)  # the worker is asleep on LISTEN / between polls
        yield
    finally:
        stop.set()
        if pg:
            with database(app).new_session() as s, s.begin():
                notifications.enqueue(s, "+8613700000005", "withdrawn", {"case_no": "A-B-C"})
        thread.join(35)
    assert not thread.is_alive()


def drain_together(workers: list[Any], *, timeout: float) -> None:
    """Start ``workers`` at one barrier, each draining the outbox in its own thread."""
    errors: list[BaseException] = []
    start = threading.Barrier(len(workers))

    def run(w: Any) -> None:
        try:
            start.wait()
            w.drain()
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(w,)) for w in workers]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout)
    assert not errors, errors
