"""Concurrent taps with real commits: one key -> exactly one case; one person -> one open case."""

from __future__ import annotations

import threading

from sqlalchemy import func, select

from notifications.models import SmsOutbox
from server.accounts.models import Account
from server.cases.models import Case
from server.session import database
from tests import factories as f


def _resident(app, phone):
    with database(app).new_session() as s, s.begin():
        account = Account(role="resident", phone=phone)
        s.add(account)
    return account


def _fire(app, n, make_headers, body):
    barrier = threading.Barrier(n)
    results: list = [None] * n

    def tap(i: int) -> None:
        client = app.test_client()
        barrier.wait()
        resp = client.post("/api/v1/urgent-requests", json=body, headers=make_headers(i))
        results[i] = (resp.status_code, resp.get_json())

    threads = [threading.Thread(target=tap, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    return results


def _count(app, model, **where):
    with database(app).new_session() as s:
        q = select(func.count()).select_from(model)
        for k, v in where.items():
            q = q.where(getattr(model, k) == v)
        return s.scalar(q)


def test_concurrent_retries_with_one_key_make_one_case(committed_app):
    me = _resident(committed_app, "+8613700000001")
    headers = {**f.auth(committed_app, me), "Idempotency-Key": "concurrent-tap"}
    results = _fire(committed_app, 6, lambda i: headers, {"address": "莒县城阳街道"})
    statuses = sorted(r[0] for r in results)
    assert statuses == [200] * 5 + [201], results
    assert len({r[1]["id"] for r in results}) == 1
    assert _count(committed_app, Case, resident_id=me.id) == 1
    case_id = results[0][1]["id"]
    import uuid

    assert (
        _count(committed_app, SmsOutbox, case_id=uuid.UUID(case_id), template="urgent_receipt") == 1
    )


def test_concurrent_taps_with_different_keys_make_one_open_case(committed_app):
    me = _resident(committed_app, "+8613700000002")
    auth = f.auth(committed_app, me)
    results = _fire(committed_app, 5, lambda i: {**auth, "Idempotency-Key": f"k{i}"}, {})
    assert sorted(r[0] for r in results) == [200] * 4 + [201], results
    assert len({r[1]["id"] for r in results}) == 1
    assert _count(committed_app, Case, resident_id=me.id) == 1


def test_concurrent_hotline_entries_with_one_key_make_one_case(committed_app):
    """The key belongs to the operator, not the caller: their row lock serialises the
    retries (the key's row is written without a read of its own)."""
    with database(committed_app).new_session() as s, s.begin():
        op = Account(role="operator", username="op-concurrent", region_code="3711")
        s.add(op)
    headers = {**f.auth(committed_app, op), "Idempotency-Key": "call-1"}
    body = {"phone": "13700000003", "channel": "hotline", "urgent": True, "notes": "来电"}
    barrier = threading.Barrier(4)
    results: list = [None] * 4

    def enter(i: int) -> None:
        client = committed_app.test_client()
        barrier.wait()
        resp = client.post("/api/v1/intake", json=body, headers=headers)
        results[i] = (resp.status_code, resp.get_json())

    threads = [threading.Thread(target=enter, args=(i,)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert sorted(r[0] for r in results) == [200] * 3 + [201], results
    assert len({r[1]["id"] for r in results}) == 1
    assert _count(committed_app, Case, created_by_id=op.id) == 1


def test_a_tap_wakes_a_sleeping_sms_worker(committed_app, fake_twilio):
    """PostgreSQL: the NOTIFY sent at the tap's commit wakes the worker asleep on LISTEN,
    which sends the receipt long before its 30 s poll. SQLite: the (tiny) poll interval is
    the wake-up."""
    from tests.sms_helpers import sleeping_worker

    me = _resident(committed_app, "+8613700000004")
    with sleeping_worker(committed_app, fake_twilio):
        resp = committed_app.test_client().post(
            "/api/v1/urgent-requests", headers=f.auth(committed_app, me)
        )
        assert resp.status_code == 201
        assert fake_twilio.received.wait(3), "the worker did not wake up"
    assert fake_twilio.requests[0].form["To"] == "+8613700000004"
