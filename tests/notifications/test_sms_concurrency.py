"""Several workers at once, on committed data: each message once, wake-ups, a killed process.

These run on both databases: FOR UPDATE SKIP LOCKED and LISTEN/NOTIFY on PostgreSQL, the
serialised BEGIN IMMEDIATE claim and polling on SQLite.
"""

from __future__ import annotations

import collections
import datetime as dt
import os
import signal
import subprocess
import sys
from pathlib import Path

from sqlalchemy import func, select

import notifications
from notifications.models import SmsAttempt, SmsOutbox
from server.db import utcnow
from server.session import database
from tests.fake_twilio import twilio_config
from tests.sms_helpers import drain_together, sleeping_worker, worker

ROOT = Path(__file__).resolve().parents[2]


def _enqueue_many(app, n):
    with database(app).new_session() as session:
        # As the app writes (server/session.py): on SQLite a deferred transaction that reads
        # (the template overrides) and then writes fails at once with "database is locked"
        # if a polling worker committed in between; BEGIN IMMEDIATE waits for the lock.
        session.connection(execution_options={"sqlite_begin": "IMMEDIATE"})
        rows = [
            notifications.enqueue(session, f"+86139{i:08d}", "withdrawn", {"case_no": f"A-B-{i}"})
            for i in range(n)
        ]
        session.commit()
        return [r.id for r in rows]


def test_parallel_workers_send_each_message_once(committed_app, fake_twilio):
    ids = _enqueue_many(committed_app, 30)
    cfg = twilio_config(fake_twilio, SMS_BATCH_SIZE=3)
    workers = [worker(committed_app, worker_id=f"w{i}", **cfg) for i in range(3)]
    drain_together(workers, timeout=30)
    sent = collections.Counter(
        int(r.form["StatusCallback"].rsplit("=", 1)[1]) for r in fake_twilio.requests
    )
    assert sorted(sent) == sorted(ids) and set(sent.values()) == {1}
    with database(committed_app).new_session() as session:
        statuses = session.execute(
            select(SmsOutbox.status, func.count()).group_by(SmsOutbox.status)
        ).all()
        assert statuses == [("sent", 30)]
        assert session.scalar(select(func.count()).select_from(SmsAttempt)) == 30
        by_worker = session.execute(
            select(SmsAttempt.worker_id, func.count()).group_by(SmsAttempt.worker_id)
        ).all()
    assert sum(n for _, n in by_worker) == 30


def test_running_worker_wakes_up_for_a_new_message(committed_app, fake_twilio):
    """PostgreSQL: NOTIFY on commit wakes the worker long before its 30 s poll.
    SQLite: the poll interval (tiny here) is the wake-up."""
    with sleeping_worker(committed_app, fake_twilio):
        [outbox_id] = _enqueue_many(committed_app, 1)
        assert fake_twilio.received.wait(3), "worker did not wake up"
    assert fake_twilio.requests[0].form["StatusCallback"].endswith(f"={outbox_id}")


def test_killed_worker_process_loses_nothing(committed_app, fake_twilio, database_url):
    """A real `flask worker` process is SIGKILLed while Twilio holds its request: the message
    is recovered and sent again (at-least-once: the resident may get it twice)."""
    [outbox_id] = _enqueue_many(committed_app, 1)
    fake_twilio.answer("hang")
    env = {
        **os.environ,
        **{k: str(v) for k, v in twilio_config(fake_twilio).items()},
        "DATABASE_URL": database_url,
        "SECRET_KEY": "test-secret-key-with-enough-length-for-hs256",
    }
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "flask",
            "--app",
            "wsgi",
            "worker",
            "--once",
            "--worker-id",
            "doomed",
        ],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    try:
        assert fake_twilio.received.wait(30), proc.stderr.read().decode() if proc.poll() else ""
        proc.send_signal(signal.SIGKILL)
        proc.wait(10)
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.stderr.close()
    fake_twilio.release.set()

    with database(committed_app).new_session() as session:
        row = session.get(SmsOutbox, outbox_id)
        assert row.status == "sending" and row.claimed_by == "doomed"

    rescuer = worker(committed_app, worker_id="rescuer", **twilio_config(fake_twilio))
    later = utcnow() + dt.timedelta(seconds=301)
    rescuer.clock = lambda: later
    assert rescuer.run_once() == 1

    with database(committed_app).new_session() as session:
        row = session.get(SmsOutbox, outbox_id)
        assert row.status == "sent" and row.provider_sid
        attempts = session.execute(
            select(SmsAttempt.worker_id, SmsAttempt.outcome)
            .where(SmsAttempt.outbox_id == outbox_id)
            .order_by(SmsAttempt.id)
        ).all()
    assert attempts == [("doomed", "lost"), ("rescuer", "sent")]
    assert len(fake_twilio.bodies_for(outbox_id)) == 2
