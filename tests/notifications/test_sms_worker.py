"""The outbox worker with the real Twilio SDK against a local fake Twilio."""

from __future__ import annotations

import datetime as dt
import io
import json
import threading
import time

import pytest
from sqlalchemy import select, text

import notifications
from notifications.models import CallbackTask, SmsAttempt
from notifications.pacing import Pacer
from notifications.periodic import PERIODIC_LOCK_KEY
from notifications.retry import RetryPolicy
from notifications.senders import ConsoleSender, classify
from notifications.waiting import waiter_for
from server.cases.models import CaseEvent
from server.cases.workflow_models import Escalation
from server.db import utcnow
from server.routing import gazetteer as gazetteer_module
from server.session import database
from tests import factories
from tests.fake_twilio import ACCOUNT_SID, AUTH_TOKEN, FROM_NUMBER, PUBLIC_BASE_URL, twilio_config
from tests.sms_helpers import make_case, worker
from tests.workflow_support import people


def _attempts(session, row):
    return session.scalars(
        select(SmsAttempt).where(SmsAttempt.outbox_id == row.id).order_by(SmsAttempt.id)
    ).all()


def _enqueue(session, to="+8613900001111", template="claimed", case=None, **params):
    params = params or {"case_no": "UR-371102001-20261123-0042", "township": "日照街道"}
    row = notifications.enqueue(session, to, template, params, case_id=case.id if case else None)
    session.commit()
    return row


def test_console_backend_writes_one_json_line_per_sms(app, session, capsys):
    row = _enqueue(session)
    w = worker(app, SMS_BACKEND="console", SMS_SEND_RATE=0)
    assert w.run_once() == 1
    lines = [json.loads(line) for line in capsys.readouterr().err.splitlines() if '"sms"' in line]
    assert lines == [{"sms": {"to": "+8613900001111", "body": row.body, "id": row.id}}]
    session.refresh(row)
    assert row.status == "sent" and row.provider_sid == f"console-{row.id}"
    assert [a.outcome for a in _attempts(session, row)] == ["sent"]


def test_console_sender_stream() -> None:
    out = io.StringIO()
    assert ConsoleSender(out).send(to="+86139", body="你好", message_id=7, status_callback=None)
    assert json.loads(out.getvalue()) == {"sms": {"to": "+86139", "body": "你好", "id": 7}}


def test_twilio_request_carries_to_from_body_and_status_callback(app, session, fake_twilio):
    row = _enqueue(session)
    assert worker(app, **twilio_config(fake_twilio)).run_once() == 1
    [req] = fake_twilio.requests
    assert req.account_sid == ACCOUNT_SID
    assert req.auth == (ACCOUNT_SID, AUTH_TOKEN)
    assert req.form["To"] == "+8613900001111"
    assert req.form["From"] == FROM_NUMBER
    assert req.form["Body"] == row.body
    assert "UR02001-1123-0042" in req.form["Body"]  # masked case number
    assert req.form["StatusCallback"] == (
        f"{PUBLIC_BASE_URL}/api/v1/webhooks/twilio/status?outbox={row.id}"
    )
    session.refresh(row)
    assert row.status == "sent" and row.provider_sid == req.sid and row.sent_at is not None
    [attempt] = _attempts(session, row)
    assert (attempt.outcome, attempt.provider_sid, attempt.backend) == ("sent", req.sid, "twilio")


def test_twilio_messaging_service_instead_of_from(app, session, fake_twilio):
    _enqueue(session)
    cfg = twilio_config(fake_twilio, TWILIO_FROM="", TWILIO_MESSAGING_SERVICE_SID="MG" + "1" * 32)
    worker(app, **cfg).run_once()
    [req] = fake_twilio.requests
    assert req.form["MessagingServiceSid"] == "MG" + "1" * 32
    assert "From" not in req.form


def test_no_status_callback_without_public_url(app, session, fake_twilio):
    _enqueue(session)
    worker(app, **twilio_config(fake_twilio, PUBLIC_BASE_URL="")).run_once()
    assert "StatusCallback" not in fake_twilio.requests[0].form


def test_transient_errors_retry_until_sent(app, session, fake_twilio):
    row = _enqueue(session)
    fake_twilio.answer((429, 20429), (500, 20500), (503, 20503))
    assert worker(app, **twilio_config(fake_twilio)).run_once() == 4
    session.refresh(row)
    assert row.status == "sent" and row.attempts == 4
    attempts = _attempts(session, row)
    assert [a.outcome for a in attempts] == ["transient", "transient", "transient", "sent"]
    assert [a.error_code for a in attempts] == ["20429", "20500", "20503", None]
    assert len(fake_twilio.requests) == 4


def test_transient_error_waits_for_backoff(app, session, fake_twilio):
    row = _enqueue(session)
    fake_twilio.answer((429, 20429))
    w = worker(
        app, **twilio_config(fake_twilio, SMS_RETRY_BASE_SECONDS=60, SMS_RETRY_MAX_SECONDS=3600)
    )
    before = utcnow()
    assert w.run_once() == 1  # not due again within this run
    session.refresh(row)
    assert row.status == "pending" and row.last_error_code == "20429"
    wait = (row.next_attempt_at - before).total_seconds()
    assert 30 <= wait <= 61  # base 60 s, half of it jittered
    assert w.run_once() == 0


def test_backoff_is_exponential_with_jitter_and_capped() -> None:
    low = RetryPolicy(base_seconds=10, max_seconds=100, rng=lambda: 0.0)
    high = RetryPolicy(base_seconds=10, max_seconds=100, rng=lambda: 1.0)
    assert [low.delay(n).total_seconds() for n in (1, 2, 3, 4, 5)] == [5, 10, 20, 40, 50]
    assert [high.delay(n).total_seconds() for n in (1, 2, 3, 4, 5)] == [10, 20, 40, 80, 100]
    assert RetryPolicy(max_attempts=3).exhausted(3)


@pytest.mark.parametrize(
    ("status", "code", "transient"),
    [
        (429, 20429, True),
        (500, 20500, True),
        (503, None, True),
        (400, 30001, True),
        (400, 21211, False),
        (400, 21610, False),
        (400, 21999, False),
        (None, None, True),
    ],
)
def test_classification(status, code, transient) -> None:
    assert classify(status, code, "x").transient is transient


def test_network_error_is_transient(app, session):
    import socket

    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    sock.close()  # nothing listens there now
    row = _enqueue(session)
    cfg = {
        "SMS_BACKEND": "twilio",
        "TWILIO_ACCOUNT_SID": ACCOUNT_SID,
        "TWILIO_AUTH_TOKEN": AUTH_TOKEN,
        "TWILIO_FROM": FROM_NUMBER,
        "TWILIO_API_BASE": f"http://127.0.0.1:{port}",
        "SMS_SEND_RATE": 0,
        "SMS_RETRY_BASE_SECONDS": 60,
    }
    worker(app, **cfg).run_once()
    session.refresh(row)
    assert row.status == "pending" and row.attempts == 1
    assert _attempts(session, row)[0].outcome == "transient"


def test_permanent_error_fails_at_once_and_creates_callback_task(app, session, fake_twilio):
    resident = factories.resident(session)
    case = make_case(session, resident)
    row = _enqueue(session, to=resident.phone, case=case)
    fake_twilio.answer((400, 21211))
    worker(app, **twilio_config(fake_twilio)).run_once()
    session.refresh(row)
    assert row.status == "failed" and row.last_error_code == "21211"
    assert len(fake_twilio.requests) == 1
    [task] = session.scalars(select(CallbackTask).where(CallbackTask.case_id == case.id)).all()
    assert task.status == "open" and task.phone == resident.phone and task.outbox_id == row.id
    assert "21211" in task.reason and row.body in task.reason
    [event] = session.scalars(select(CaseEvent).where(CaseEvent.case_id == case.id)).all()
    assert event.action == "sms_undelivered" and event.resident_visible is False
    assert resident.phone not in event.text_zh  # masked in the timeline


def test_retries_exhausted_fail_with_callback_task(app, session, fake_twilio):
    resident = factories.resident(session)
    case = make_case(session, resident)
    row = _enqueue(session, to=resident.phone, case=case)
    fake_twilio.answer(*[(500, 20500)] * 3)
    worker(app, **twilio_config(fake_twilio, SMS_MAX_ATTEMPTS=3)).run_once()
    session.refresh(row)
    assert row.status == "failed" and row.attempts == 3 and len(fake_twilio.requests) == 3
    assert session.scalar(select(CallbackTask).where(CallbackTask.outbox_id == row.id))


def test_staff_page_failure_makes_no_callback_task(app, session, fake_twilio):
    resident = factories.resident(session)
    case = make_case(session, resident)
    row = _enqueue(
        session,
        template="duty_page",
        case=case,
        case_no=case.case_no,
        township="日照街道",
        channel="手机应用",
    )
    fake_twilio.answer((400, 21211))
    worker(app, **twilio_config(fake_twilio)).run_once()
    session.refresh(row)
    assert row.status == "failed"
    assert session.scalar(select(CallbackTask)) is None


def test_urgent_pages_go_first(app, session, fake_twilio):
    _enqueue(session, to="+8613900000001")
    _enqueue(
        session,
        to="+8613900000002",
        template="duty_page",
        case_no="UR-371102001-20261123-0001",
        township="日照街道",
        channel="手机应用",
    )
    worker(app, **twilio_config(fake_twilio)).run_once()
    assert [r.form["To"] for r in fake_twilio.requests] == ["+8613900000002", "+8613900000001"]


def test_sign_in_code_is_sealed_while_waiting_and_blanked_once_sent_or_failed(
    app, session, fake_twilio
):
    from server import sealing

    with app.app_context():
        sealed = {code: sealing.seal(code) for code in ("482913", "735118")}
    sent = _enqueue(session, to="+8613900001212", template="sign_in_code", code=sealed["482913"])
    failed = _enqueue(session, to="+8613900001213", template="sign_in_code", code=sealed["735118"])
    for row, code in ((sent, "482913"), (failed, "735118")):
        # Waiting to be sent, the code is in the outbox only sealed.
        assert code not in row.body and code not in json.dumps(row.params), row.body
        assert "******" in row.body
    fake_twilio.answer("ok", (400, 21211))  # the first goes out, the second fails for good
    worker(app, **twilio_config(fake_twilio)).run_once()
    for row, code in ((sent, "482913"), (failed, "735118")):
        session.refresh(row)
        assert row.status in {"sent", "failed"}
        assert code not in row.body and code not in json.dumps(row.params), row.body
    delivered = [r.form["Body"] for r in fake_twilio.requests]
    assert any("482913" in body for body in delivered)


def test_a_code_sealed_with_a_key_the_worker_lacks_fails_alone(app, session, fake_twilio):
    """A message that cannot be opened fails on its own (redacted, logged); it does not stop
    the worker from sending every other message, a duty page first of all."""
    from server import sealing

    with app.app_context():
        sealed = sealing.seal("482913")
    lost = _enqueue(session, to="+8613900001214", template="sign_in_code", code=sealed)
    page = _enqueue(
        session,
        to="+8613900000002",
        template="duty_page",
        case_no="UR-371102001-20261123-0009",
        township="日照街道",
        channel="手机应用",
    )
    other_key = {"SECRET_KEY": "another-secret-key-with-enough-length-for-hs256"}
    worker(app, **twilio_config(fake_twilio), **other_key).run_once()
    session.refresh(lost)
    session.refresh(page)
    assert lost.status == "failed" and lost.last_error_code == "sealed_key_missing"
    assert "sealed:" not in json.dumps(lost.params) and "482913" not in lost.body
    assert page.status == "sent"
    assert [r.form["To"] for r in fake_twilio.requests] == ["+8613900000002"]


def test_duty_page_goes_before_an_escalation_backlog(app, session, fake_twilio):
    for n in range(3):
        _enqueue(
            session,
            to=f"+861390000100{n}",
            template="escalation",
            case_no=f"UR-371102001-20261123-00{n}1",
            township="日照街道",
            problem="超过24小时未发放",
        )
    for n in range(2):
        _enqueue(
            session,
            to=f"+861390000200{n}",
            template="escalation_digest",
            count=200,
            summary="超时无人认领200件",
            townships="日照街道",
            case_nos=[f"UR-371102001-20261123-0{n}{k:02d}" for k in range(3)],
        )
    _enqueue(
        session,
        to="+8613900000002",
        template="duty_page",
        case_no="UR-371102001-20261123-0009",
        township="日照街道",
        channel="手机应用",
    )
    worker(app, **twilio_config(fake_twilio)).run_once()
    assert fake_twilio.requests[0].form["To"] == "+8613900000002"
    assert len(fake_twilio.requests) == 6


def test_rolled_back_change_sends_nothing(app, session, fake_twilio):
    notifications.enqueue(session, "+8613900001111", "withdrawn", {"case_no": "X-1-2"})
    session.rollback()
    assert worker(app, **twilio_config(fake_twilio)).run_once() == 0
    assert fake_twilio.requests == []


def test_template_override_is_used(app, session, fake_twilio):
    from notifications.models import SmsTemplateOverride

    session.add(SmsTemplateOverride(name="withdrawn", text="【指尖办】{case_no}已撤回，谢谢。"))
    session.flush()
    row = _enqueue(session, template="withdrawn", case_no="UR-371102001-20261123-0007")
    assert row.body == "【指尖办】UR02001-1123-0007已撤回，谢谢。"


# --- crashes ------------------------------------------------------------------------------


def test_worker_killed_between_claim_and_record_loses_nothing(app, session, fake_twilio):
    row = _enqueue(session)
    cfg = twilio_config(fake_twilio, SMS_SENDING_TIMEOUT_SECONDS=120)
    dead = worker(app, worker_id="dead", **cfg)
    [claim] = dead.claim()  # ... and the process dies here: nothing recorded
    session.refresh(row)
    assert row.status == "sending" and row.claimed_by == "dead"

    alive = worker(app, worker_id="alive", **cfg)
    assert alive.run_once() == 0  # the claim is young: the dead worker may still be busy
    later = utcnow() + dt.timedelta(seconds=121)
    alive.clock = lambda: later
    assert alive.run_once() == 1
    session.refresh(row)
    assert row.status == "sent" and row.attempts == 2 and row.claimed_by is None
    assert [(a.worker_id, a.outcome) for a in _attempts(session, row)] == [
        ("dead", "lost"),
        ("alive", "sent"),
    ]
    assert len(fake_twilio.requests) == 1


def test_late_record_of_an_expired_claim_does_not_overwrite(app, session, fake_twilio):
    row = _enqueue(session)
    cfg = twilio_config(fake_twilio, SMS_SENDING_TIMEOUT_SECONDS=120)
    slow = worker(app, worker_id="slow", **cfg)
    [claim] = slow.claim()
    later = utcnow() + dt.timedelta(seconds=121)
    other = worker(app, worker_id="other", **cfg)
    other.clock = lambda: later
    assert other.run_once() == 1
    session.refresh(row)
    sid = row.provider_sid
    slow.record(claim, outcome="transient", code="20500", error="late")  # wakes up at last
    session.refresh(row)
    assert row.status == "sent" and row.provider_sid == sid and row.last_error is None


def test_receipt_during_crash_window_prevents_a_second_send(app, client, session, fake_twilio):
    from tests.sms.test_sms_webhooks import post_status

    row = _enqueue(session)
    cfg = twilio_config(fake_twilio, SMS_SENDING_TIMEOUT_SECONDS=120)
    dead = worker(app, worker_id="dead", **cfg)
    [claim] = dead.claim()
    sid = dead.sender.send(
        to=claim.to, body=claim.body, message_id=claim.outbox_id, status_callback=None
    )  # Twilio took it; the worker dies before recording
    assert post_status(client, sid=sid, status="queued", outbox=row.id).status_code == 204
    session.refresh(row)
    assert row.status == "sending" and row.provider_sid == sid

    alive = worker(app, worker_id="alive", **cfg)
    later = utcnow() + dt.timedelta(seconds=121)
    alive.clock = lambda: later
    alive.run_once()
    session.refresh(row)
    assert row.status == "sent" and row.provider_sid == sid
    assert len(fake_twilio.requests) == 1  # not sent twice
    [attempt] = _attempts(session, row)
    assert attempt.outcome == "lost" and attempt.provider_sid == sid


def test_lost_every_time_fails_eventually(app, session, fake_twilio):
    row = _enqueue(session)
    cfg = twilio_config(fake_twilio, SMS_SENDING_TIMEOUT_SECONDS=1, SMS_MAX_ATTEMPTS=2)
    now = utcnow()
    for i in range(2):
        w = worker(app, worker_id=f"w{i}", **cfg)
        w.claim(now + dt.timedelta(seconds=2 * i))
    w = worker(app, **cfg)
    w.clock = lambda: now + dt.timedelta(seconds=10)
    assert w.run_once() == 0
    session.refresh(row)
    assert row.status == "failed" and row.last_error_code == "lost"


# --- pacing and periodic jobs -------------------------------------------------------------


def test_pacer_spaces_sends() -> None:
    now = [0.0]
    slept: list[float] = []

    def sleep(seconds: float) -> None:
        slept.append(round(seconds, 3))
        now[0] += seconds

    pacer = Pacer(4, clock=lambda: now[0], sleep=sleep)
    for _ in range(3):
        pacer.wait()
    assert slept == [0.25, 0.25]
    assert Pacer(0, clock=lambda: 0.0, sleep=sleep).interval == 0


def test_worker_honours_send_rate(app, session, fake_twilio):
    for _ in range(3):
        _enqueue(session)
    w = worker(app, **twilio_config(fake_twilio, SMS_SEND_RATE=20))
    started = time.monotonic()
    assert w.run_once() == 3
    assert time.monotonic() - started >= 0.1  # three sends at 20/s: two gaps of 50 ms


def test_periodic_jobs_run_and_commit_each(app, session):
    from server.audit import AuditEntry

    seen = []

    def good(s, now):
        s.add(AuditEntry(action="sweep", target_type="x", target_id="1", at=now))
        s.flush()
        seen.append("good")

    def broken(s, now):
        s.add(AuditEntry(action="broken", target_type="x", target_id="2", at=now))
        raise RuntimeError("boom")

    app.extensions["aidline.periodic_jobs"] = [broken, good]
    worker(app, SMS_BACKEND="console").run_once()
    assert seen == ["good"]
    actions = set(session.scalars(select(AuditEntry.action)))
    assert "sweep" in actions and "broken" not in actions


def _lock_holders(engine):
    """Backends of this database holding the periodic jobs' advisory lock (PostgreSQL)."""
    with engine.connect() as conn:
        return conn.scalars(
            text(
                "SELECT pid FROM pg_locks l JOIN pg_database d ON d.oid = l.database "
                "WHERE l.locktype = 'advisory' AND l.granted AND l.classid = 0 "
                "AND l.objid = :key AND d.datname = current_database()"
            ),
            {"key": PERIODIC_LOCK_KEY},
        ).all()


def test_periodic_jobs_never_hold_up_sends(committed_app, fake_twilio):
    """A sweep in progress (here: one that does not finish) does not stop the sends: the jobs
    run in their own thread; the worker stops them when it stops."""
    entered, release = threading.Event(), threading.Event()

    def slow_sweep(session, now):
        entered.set()
        release.wait(30)

    committed_app.extensions["aidline.periodic_jobs"] = [slow_sweep]
    w = worker(committed_app, **twilio_config(fake_twilio))
    engine = database(committed_app).engine
    stop = threading.Event()
    thread = threading.Thread(target=w.run_forever, args=(stop, waiter_for(engine, stop)))
    thread.start()
    try:
        assert entered.wait(10), "periodic jobs did not start"
        with database(committed_app).new_session() as s:
            if engine.dialect.name == "sqlite":
                # The polling worker takes the write lock every few ms: take it up front too
                # (a read transaction upgraded to a writer fails at once when it is held).
                s.connection(execution_options={"sqlite_begin": "IMMEDIATE"})
            notifications.enqueue(s, "+8613900001111", "withdrawn", {"case_no": "A-B-1"})
            s.commit()
        assert fake_twilio.received.wait(5), "the send waited for the sweep"
        assert not release.is_set()
    finally:
        release.set()
        stop.set()
        thread.join(30)
    assert not thread.is_alive()
    assert "aidline-periodic-jobs" not in {t.name for t in threading.enumerate()}
    if engine.dialect.name == "postgresql":
        assert _lock_holders(engine) == []  # given up on the way out


def test_one_worker_runs_the_periodic_jobs(committed_app):
    """PostgreSQL: the worker holding the advisory lock runs the jobs, the others stand by
    and take over once its connection is gone. SQLite (one worker): every worker runs them."""
    runs: list[str] = []
    committed_app.extensions["aidline.periodic_jobs"] = [lambda s, now: runs.append("run")]
    engine = database(committed_app).engine
    pg = engine.dialect.name == "postgresql"
    first = worker(committed_app, worker_id="first", SMS_BACKEND="console").periodic
    second = worker(committed_app, worker_id="second", SMS_BACKEND="console").periodic
    try:
        assert first.run() is True
        assert second.run() is (not pg)
        assert first.run() is True  # still the one
        assert len(runs) == (3 if not pg else 2)
        if pg:
            [holder] = _lock_holders(engine)
            # The leader's connection dies (a crashed worker, a restarted database backend).
            with engine.connect() as conn:
                conn.execute(text("SELECT pg_terminate_backend(:pid)"), {"pid": holder})
            deadline = time.monotonic() + 10
            while _lock_holders(engine) and time.monotonic() < deadline:
                time.sleep(0.05)
            assert second.run() is True  # took over
            assert first.run() is False  # noticed, and stands by
            assert len(runs) == 3
            second.release()
            assert _lock_holders(engine) == []
            assert first.run() is True
    finally:
        first.release()
        second.release()


def test_worker_once_skips_the_jobs_another_worker_runs(committed_app):
    runs: list[str] = []
    committed_app.extensions["aidline.periodic_jobs"] = [lambda s, now: runs.append("run")]
    pg = database(committed_app).engine.dialect.name == "postgresql"
    leader = worker(committed_app, worker_id="leader", SMS_BACKEND="console").periodic
    try:
        assert leader.run()
        out = committed_app.test_cli_runner().invoke(args=["worker", "--once"])
        assert out.exit_code == 0, out.output
        assert ("another worker runs them" in out.output) is pg
        assert len(runs) == (1 if pg else 2)
    finally:
        leader.release()
    assert worker(committed_app, SMS_BACKEND="console").run_periodic() is True


def test_a_fresh_workers_first_sweep_escalates(committed_app, monkeypatch):
    """The sweep's SMS names the township, from the per-process gazetteer, which a fresh
    worker loads inside the sweep's transaction. On SQLite that transaction holds the write
    lock (BEGIN IMMEDIATE): the load must read through it. It used to open a second
    connection, which queued behind its own transaction's lock until the busy timeout (30 s):
    every sweep of a fresh SQLite worker failed, and overdue urgent cases never escalated."""
    monkeypatch.setattr(gazetteer_module, "_cache", {})  # as in a process just started
    with database(committed_app).new_session() as s:
        p = people(s)
        late = factories.case(
            s, resident_account=p.resident, created_at=utcnow() - dt.timedelta(minutes=16)
        )
        s.commit()
        case_id = late.id
    periodic = worker(committed_app, SMS_BACKEND="console").periodic
    started = time.monotonic()
    try:
        assert periodic.run() is True
    finally:
        periodic.release()
    assert time.monotonic() - started < 10
    with database(committed_app).new_session() as s:
        fired = s.scalars(select(Escalation.kind).where(Escalation.case_id == case_id)).all()
    assert fired == ["unclaimed"]
