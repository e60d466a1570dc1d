"""The worker records a batch's outcomes in one transaction: crashes mid-batch, claim tokens,
the record interval, and ``synchronous_commit = off`` only for recording (PostgreSQL)."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
from sqlalchemy import event, select, update

import notifications
from notifications.models import SmsAttempt, SmsOutbox
from notifications.recording import Outcome
from server.db import utcnow
from tests.fake_twilio import twilio_config
from tests.sms_helpers import worker


class _Crash(BaseException):
    """The worker process dies (nothing after this point runs)."""


def _enqueue(session, n):
    rows = [
        notifications.enqueue(session, f"+86139000011{i:02d}", "withdrawn", {"case_no": f"A-{i}"})
        for i in range(n)
    ]
    session.commit()
    return rows


def _attempts(session, row):
    return [
        a.outcome
        for a in session.scalars(
            select(SmsAttempt).where(SmsAttempt.outbox_id == row.id).order_by(SmsAttempt.id)
        )
    ]


class _DiesAfter:
    """A sender that hands ``n`` messages to the real one, then raises ``exc``."""

    def __init__(self, real: Any, n: int, exc: type[BaseException]) -> None:
        self.real, self.n, self.exc, self.name = real, n, exc, real.name

    def send(self, **kwargs: Any) -> str:
        if self.n == 0:
            raise self.exc()
        self.n -= 1
        return self.real.send(**kwargs)


def _count_records(w):
    calls: list[int] = []
    real = w.record_many

    def record_many(outcomes, now=None):
        calls.append(len(outcomes))
        real(outcomes, now)

    w.record_many = record_many
    return calls


def test_batch_outcomes_are_recorded_in_one_transaction(app, session, fake_twilio):
    failed, retried, sent = _enqueue(session, 3)
    fake_twilio.answer((400, 21211), (429, 20429))
    w = worker(
        app, **twilio_config(fake_twilio, SMS_RETRY_BASE_SECONDS=60, SMS_RETRY_MAX_SECONDS=3600)
    )
    calls = _count_records(w)
    assert w.drain() == 3
    assert calls == [3]
    for row in (failed, retried, sent):
        session.refresh(row)
    assert (failed.status, failed.last_error_code, failed.claim_token) == ("failed", "21211", None)
    assert (retried.status, retried.last_error_code, retried.claimed_by) == (
        "pending",
        "20429",
        None,
    )
    assert sent.status == "sent" and sent.provider_sid and sent.claim_token is None
    assert [_attempts(session, r) for r in (failed, retried, sent)] == [
        ["permanent"],
        ["transient"],
        ["sent"],
    ]
    attempt = session.scalars(select(SmsAttempt).where(SmsAttempt.outbox_id == sent.id)).one()
    assert attempt.provider_sid == sent.provider_sid and attempt.finished_at is not None


def test_crash_mid_batch_loses_nothing_and_a_receipt_prevents_a_resend(
    app, client, session, fake_twilio
):
    from tests.sms.test_sms_webhooks import post_status

    first, second, third = _enqueue(session, 3)
    cfg = twilio_config(fake_twilio, SMS_SENDING_TIMEOUT_SECONDS=120)
    dead = worker(app, worker_id="dead", **cfg)
    dead.sender = _DiesAfter(dead.sender, 2, _Crash)
    dead.record_many = lambda *a, **k: None  # killed: nothing after the sends is recorded
    with pytest.raises(_Crash):
        dead.drain()
    assert len(fake_twilio.requests) == 2  # the first two went out, unrecorded
    for row in (first, second, third):
        session.refresh(row)
        assert row.status == "sending" and row.claimed_by == "dead"
    # Twilio's receipt for the first arrives during the crash window.
    sid = fake_twilio.requests[0].sid
    assert post_status(client, sid=sid, status="queued", outbox=first.id).status_code == 204

    alive = worker(app, worker_id="alive", **cfg)
    assert alive.run_once() == 0  # the claims are young: the dead worker may still be busy
    later = utcnow() + dt.timedelta(seconds=121)
    alive.clock = lambda: later
    assert alive.run_once() == 2
    for row in (first, second, third):
        session.refresh(row)
        assert row.status == "sent" and row.claim_token is None
    assert first.provider_sid == sid
    assert _attempts(session, first) == ["lost"]  # settled by the receipt: not sent again
    assert _attempts(session, second) == ["lost", "sent"]  # the documented duplicate
    assert _attempts(session, third) == ["lost", "sent"]  # never went out before
    sent_to = [r.form["StatusCallback"].rsplit("=", 1)[1] for r in fake_twilio.requests]
    assert sorted(sent_to) == sorted(map(str, [first.id, second.id, second.id, third.id]))


def test_interrupted_batch_records_what_went_out(app, session, fake_twilio):
    first, second, third = _enqueue(session, 3)
    cfg = twilio_config(fake_twilio, SMS_SENDING_TIMEOUT_SECONDS=120)
    w = worker(app, worker_id="stopping", **cfg)
    w.sender = _DiesAfter(w.sender, 2, KeyboardInterrupt)
    with pytest.raises(KeyboardInterrupt):
        w.drain()
    for row in (first, second, third):
        session.refresh(row)
    assert [first.status, second.status, third.status] == ["sent", "sent", "sending"]
    assert _attempts(session, third) == [None]

    later = utcnow() + dt.timedelta(seconds=121)
    alive = worker(app, worker_id="alive", **cfg)
    alive.clock = lambda: later
    assert alive.run_once() == 1
    session.refresh(third)
    assert third.status == "sent" and _attempts(session, third) == ["lost", "sent"]
    assert len(fake_twilio.requests) == 3  # nothing twice


def test_batch_record_changes_only_rows_whose_claim_is_current(app, session, fake_twilio):
    taken, kept = _enqueue(session, 2)
    cfg = twilio_config(fake_twilio, SMS_SENDING_TIMEOUT_SECONDS=120)
    slow = worker(app, worker_id="slow", **cfg)
    claims = slow.claim()
    outcomes = [slow.attempt(c) for c in claims]  # both went out; slow stalls before recording
    # ... long enough for one claim to expire and be taken over.
    session.execute(
        update(SmsOutbox)
        .where(SmsOutbox.id == taken.id)
        .values(claimed_at=utcnow() - dt.timedelta(seconds=121))
    )
    session.commit()
    other = worker(app, worker_id="other", **cfg)
    assert other.run_once() == 1
    session.refresh(taken)
    other_sid = taken.provider_sid
    assert taken.status == "sent" and other_sid

    slow.record_many(outcomes)
    session.refresh(taken)
    session.refresh(kept)
    assert taken.status == "sent" and taken.provider_sid == other_sid  # the newer attempt's
    assert kept.status == "sent" and kept.provider_sid == outcomes[1].sid
    assert _attempts(session, taken) == ["sent", "sent"]  # the truth replaces "lost"
    assert _attempts(session, kept) == ["sent"]


def test_record_interval_bounds_the_unrecorded_sends(app, session, fake_twilio):
    _enqueue(session, 3)
    w = worker(app, **twilio_config(fake_twilio))
    w.settings.record_interval = 0.0
    calls = _count_records(w)
    assert w.drain() == 3
    assert calls == [1, 1, 1]


def test_only_the_record_transaction_commits_asynchronously(app, session, connection, fake_twilio):
    _enqueue(session, 2)
    statements: list[str] = []

    @event.listens_for(connection, "before_cursor_execute")
    def _log(conn, cursor, statement, *args):
        statements.append(statement)

    w = worker(app, **twilio_config(fake_twilio))
    claims = w.claim()
    in_claim, statements[:] = list(statements), []
    w.send_batch(claims)
    in_record = list(statements)
    event.remove(connection, "before_cursor_execute", _log)

    async_commit = "SET LOCAL synchronous_commit = off"
    assert not any(async_commit in s for s in in_claim)
    expected = 1 if connection.dialect.name == "postgresql" else 0
    assert sum(async_commit in s for s in in_record) == expected


def test_outcome_without_a_provider_answer_time_uses_the_record_time(app, session, fake_twilio):
    [row] = _enqueue(session, 1)
    w = worker(app, **twilio_config(fake_twilio))
    [claim] = w.claim()
    w.record_many([Outcome(claim, "sent", sid="SMmanual")])
    session.refresh(row)
    assert row.status == "sent" and row.provider_sid == "SMmanual" and row.sent_at is not None
