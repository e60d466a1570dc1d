"""Send order under a backlog: pages and sign-in codes first (first come first served between
them), receipts still moving (the share by age), a pool of senders each paced, nothing lost."""

from __future__ import annotations

import collections
import time
from typing import Any

import pytest
from sqlalchemy import func, select

import notifications
from notifications import templates
from notifications.models import SmsAttempt, SmsOutbox
from notifications.pacing import Pacer
from server.session import database
from tests.fake_twilio import twilio_config
from tests.sms_helpers import drain_together, worker

POOL = "+15005550001,+15005550002,+15005550003"


def _page(session: Any, n: int) -> SmsOutbox:
    return notifications.enqueue(
        session,
        f"+86139100{n:05d}",
        "duty_page",
        {
            "case_no": f"UR-371102001-20261201-{n:04d}",
            "township": "日照街道",
            "channel": "手机应用",
        },
    )


def _code(session: Any, n: int) -> SmsOutbox:
    return notifications.enqueue(session, f"+86139200{n:05d}", "sign_in_code", {"code": "123456"})


def _receipt(session: Any, n: int, template: str = "claimed") -> SmsOutbox:
    return notifications.enqueue(
        session,
        f"+86139300{n:05d}",
        template,
        {
            "case_no": f"UR-371102001-20261201-{n:04d}",
            "township": "日照街道",
            "channel": "手机应用",
        },
    )


def _sent_to(fake: Any) -> list[str]:
    return [r.form["To"] for r in fake.requests]


def test_priority_is_decided_by_template_and_stored_at_enqueue(session) -> None:
    urgent = {name for name in templates.TEMPLATES if templates.is_urgent(name)}
    assert urgent == {"duty_page", "sign_in_code", "escalation", "escalation_digest"}
    # Pages and codes share the first place: neither can starve the other.
    assert templates.priority("duty_page") == templates.priority("sign_in_code") == 0
    assert _code(session, 1).priority == 0 and _receipt(session, 1).priority > 1


def test_pages_and_codes_are_claimed_before_older_receipts(app, session, fake_twilio):
    for n in range(30):
        _receipt(session, n, ("claimed", "urgent_receipt", "receipt")[n % 3])
    page, code = _page(session, 1), _code(session, 1)
    session.commit()
    # One long code: two messages a claim, and both are the late urgent ones.
    w = worker(app, **twilio_config(fake_twilio, SMS_SEND_RATE=1))
    claims = w.claim()
    assert [c.outbox_id for c in claims] == [page.id, code.id]


def test_a_sign_in_code_is_not_held_behind_later_pages(app, session, fake_twilio):
    """First come first served between pages and codes: a flood of pages after a code does
    not keep a resident waiting for it (codes once ranked below every page)."""
    _page(session, 0)
    code = _code(session, 1)
    for n in range(1, 6):
        _page(session, n)
    session.commit()
    w = worker(app, **twilio_config(fake_twilio, SMS_BATCH_SIZE=1, SMS_FAIR_SHARE=0))
    assert w.drain() == 7
    assert _sent_to(fake_twilio).index(code.to_phone) == 1


def test_receipts_still_move_while_pages_flood_in(app, session, fake_twilio):
    """More pages arrive than the sender can carry: the share by age still sends every
    receipt (in order of age), and the pages keep all but one in SMS_FAIR_SHARE sends."""
    receipts = [_receipt(session, n) for n in range(3)]
    session.commit()
    w = worker(app, **twilio_config(fake_twilio, SMS_BATCH_SIZE=1, SMS_FAIR_SHARE=5))
    for n in range(20):
        _page(session, 2 * n)
        _page(session, 2 * n + 1)  # two new pages for every message sent
        session.commit()
        (claim,) = w.claim()
        w.send(claim)
    sent = _sent_to(fake_twilio)
    receipt_phones = [r.to_phone for r in receipts]
    assert [p for p in sent if p in receipt_phones] == receipt_phones
    # The k-th receipt left at the 5k-th send: the flood's pages took the other four.
    assert [sent.index(p) + 1 for p in receipt_phones] == [5, 10, 15]
    assert sum(p.startswith("+86139100") for p in sent) == 17


def test_strict_priority_when_the_share_is_off(app, session, fake_twilio):
    _receipt(session, 0)
    session.commit()
    w = worker(app, **twilio_config(fake_twilio, SMS_BATCH_SIZE=1, SMS_FAIR_SHARE=0))
    for n in range(12):
        _page(session, n)
        session.commit()
        (claim,) = w.claim()
        w.send(claim)
    assert all(p.startswith("+86139100") for p in _sent_to(fake_twilio))


def test_pool_senders_rotate(app, session, fake_twilio):
    for n in range(6):
        _receipt(session, n)
    session.commit()
    w = worker(app, **twilio_config(fake_twilio, TWILIO_FROM=POOL))
    assert w.sender.lanes == 3
    assert w.drain() == 6
    assert [r.form["From"] for r in fake_twilio.requests] == POOL.split(",") * 2


def test_a_messaging_service_is_one_lane_paced_by_twilio(app, fake_twilio):
    w = worker(
        app,
        **twilio_config(fake_twilio, TWILIO_FROM="", TWILIO_MESSAGING_SERVICE_SID="MG" + "1" * 32),
    )
    assert w.sender.lanes == 1


def test_pool_pacer_paces_each_sender_at_its_own_rate() -> None:
    now = [0.0]
    slept: list[float] = []

    def sleep(seconds: float) -> None:
        slept.append(round(seconds, 3))
        now[0] += seconds

    pacer = Pacer(1, lanes=3, clock=lambda: now[0], sleep=sleep)
    sends = [(pacer.wait(), now[0]) for _ in range(7)]
    assert [lane for lane, _ in sends] == [0, 1, 2, 0, 1, 2, 0]
    # Three senders at once, then each again one second after its last send.
    assert [at for _, at in sends] == [0.0, 0.0, 0.0, 1.0, 1.0, 1.0, 2.0]
    assert pacer.rate == 3.0


def test_worker_paces_each_pool_sender(app, session, fake_twilio):
    for n in range(6):
        _receipt(session, n)
    session.commit()
    w = worker(app, **twilio_config(fake_twilio, TWILIO_FROM=POOL, SMS_SEND_RATE=20))
    sent_at: dict[str, list[float]] = collections.defaultdict(list)
    real = w.sender.send

    def send(**kwargs: Any) -> str:
        sent_at[w.sender.from_numbers[kwargs["lane"]]].append(time.monotonic())
        return real(**kwargs)

    w.sender.send = send
    assert w.drain() == 6
    assert sorted(sent_at) == sorted(POOL.split(","))
    for times in sent_at.values():
        assert len(times) == 2
        assert times[1] - times[0] >= 0.045  # 20/s on each number


def _enqueue_mixed(app: Any, n: int) -> list[int]:
    with database(app).new_session() as session:
        session.connection(execution_options={"sqlite_begin": "IMMEDIATE"})
        makers = (_receipt, _page, _code, _receipt)
        rows = [makers[k % len(makers)](session, k) for k in range(n)]
        session.commit()
        return [r.id for r in rows]


@pytest.mark.parametrize("round_", range(3))
def test_parallel_workers_lose_nothing_with_priorities_and_share(
    committed_app, fake_twilio, round_
):
    """Three workers at once (SKIP LOCKED on PostgreSQL) over a mixed backlog, each claim
    taking rows by priority and by age: every message goes out exactly once."""
    ids = _enqueue_mixed(committed_app, 60)
    cfg = twilio_config(fake_twilio, TWILIO_FROM=POOL, SMS_BATCH_SIZE=4, SMS_FAIR_SHARE=3)
    workers = [worker(committed_app, worker_id=f"w{i}", **cfg) for i in range(3)]
    drain_together(workers, timeout=60)
    sent = collections.Counter(
        int(r.form["StatusCallback"].rsplit("=", 1)[1]) for r in fake_twilio.requests
    )
    assert sorted(sent) == sorted(ids) and set(sent.values()) == {1}
    with database(committed_app).new_session() as session:
        statuses = session.execute(
            select(SmsOutbox.status, func.count()).group_by(SmsOutbox.status)
        ).all()
        assert statuses == [("sent", 60)]
        attempts = session.execute(
            select(SmsAttempt.outbox_id, func.count()).group_by(SmsAttempt.outbox_id)
        ).all()
    assert sorted(i for i, _ in attempts) == sorted(ids) and {c for _, c in attempts} == {1}
