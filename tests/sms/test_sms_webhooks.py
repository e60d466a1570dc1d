"""Twilio status callbacks (signed), call-back tasks, the admin outbox view, /readyz, CLI."""

from __future__ import annotations

from sqlalchemy import select

import notifications
from notifications.models import CallbackTask, SmsOutbox, SmsReceipt
from server.cases.models import CaseEvent
from server.masking import mask_phone
from tests import factories
from tests.fake_twilio import AUTH_TOKEN, PUBLIC_BASE_URL, sign, twilio_config
from tests.sms_helpers import COUNTY, TOWNSHIP, make_case

STATUS_PATH = "/api/v1/webhooks/twilio/status"


def post_status(
    client,
    *,
    sid,
    status,
    outbox=None,
    error_code=None,
    token=AUTH_TOKEN,
    signed=True,
    url_base=PUBLIC_BASE_URL,
):
    """POST a status callback as Twilio would (form-encoded, signed over the public URL)."""
    client.application.config.update(TWILIO_AUTH_TOKEN=AUTH_TOKEN, PUBLIC_BASE_URL=PUBLIC_BASE_URL)
    path = STATUS_PATH + (f"?outbox={outbox}" if outbox is not None else "")
    form = {"MessageSid": sid, "MessageStatus": status, "AccountSid": "AC1", "To": "+86139"}
    if error_code:
        form["ErrorCode"] = error_code
    headers = {"X-Twilio-Signature": sign(url_base + path, form, token)} if signed else {}
    return client.post(path, data=form, headers=headers)


def _sent_row(session, case=None, template="claimed", sid="SM" + "a" * 32):
    row = notifications.enqueue(
        session,
        case and "+8613900002222" or "+8613900001111",
        template,
        {"case_no": "UR-371102001-20261123-0001", "township": "日照街道"},
        case_id=case.id if case else None,
    )
    session.flush()
    row.status, row.provider_sid, row.attempts = "sent", sid, 1
    session.commit()
    return row


def test_signed_receipts_move_status_forward_only(client, session):
    row = _sent_row(session)
    assert post_status(client, sid=row.provider_sid, status="delivered").status_code == 204
    assert post_status(client, sid=row.provider_sid, status="sent").status_code == 204  # late
    assert post_status(client, sid=row.provider_sid, status="delivered").status_code == 204  # dup
    session.refresh(row)
    assert row.status == "delivered" and row.delivered_at is not None
    statuses = session.scalars(select(SmsReceipt.status).order_by(SmsReceipt.id)).all()
    assert statuses == ["delivered", "sent"]  # the duplicate is not stored twice


def test_failure_after_delivered_does_not_overwrite(client, session):
    row = _sent_row(session)
    post_status(client, sid=row.provider_sid, status="delivered")
    post_status(client, sid=row.provider_sid, status="undelivered", error_code="30003")
    session.refresh(row)
    assert row.status == "delivered"


def test_unsigned_forged_and_wrong_url_callbacks_are_403(client, session):
    row = _sent_row(session)
    sid = row.provider_sid
    assert post_status(client, sid=sid, status="delivered", signed=False).status_code == 403
    forged = post_status(client, sid=sid, status="delivered", token="not-the-token")
    assert forged.status_code == 403 and forged.get_json()["code"] == "invalid_signature"
    # Signed over the URL the app sees behind the proxy, not the public one: rejected.
    internal = post_status(client, sid=sid, status="delivered", url_base="http://localhost")
    assert internal.status_code == 403
    session.refresh(row)
    assert row.status == "sent"
    assert session.scalar(select(SmsReceipt)) is None


def test_tampered_form_is_403(client, session):
    row = _sent_row(session)
    client.application.config.update(TWILIO_AUTH_TOKEN=AUTH_TOKEN, PUBLIC_BASE_URL=PUBLIC_BASE_URL)
    form = {"MessageSid": row.provider_sid, "MessageStatus": "sent"}
    signature = sign(PUBLIC_BASE_URL + STATUS_PATH, form)
    form["MessageStatus"] = "failed"
    resp = client.post(STATUS_PATH, data=form, headers={"X-Twilio-Signature": signature})
    assert resp.status_code == 403


def test_no_public_url_configured_rejects(client, session):
    row = _sent_row(session)
    resp = post_status(client, sid=row.provider_sid, status="delivered")
    assert resp.status_code == 204
    client.application.config["PUBLIC_BASE_URL"] = ""
    form = {"MessageSid": row.provider_sid, "MessageStatus": "sent"}
    resp = client.post(STATUS_PATH, data=form, headers={"X-Twilio-Signature": "x"})
    assert resp.status_code == 403


def test_undelivered_resident_message_creates_callback_task_once(client, session):
    resident = factories.resident(session)
    case = make_case(session, resident)
    row = _sent_row(session, case=case)
    for _ in range(2):  # Twilio retries callbacks
        post_status(client, sid=row.provider_sid, status="undelivered", error_code="30006")
    post_status(client, sid=row.provider_sid, status="failed", error_code="30006")
    session.refresh(row)
    assert row.status == "undelivered" and row.last_error_code == "30006"
    [task] = session.scalars(select(CallbackTask)).all()
    assert task.case_id == case.id and task.status == "open"
    events = session.scalars(select(CaseEvent).where(CaseEvent.case_id == case.id)).all()
    assert [(e.action, e.resident_visible) for e in events] == [("sms_undelivered", False)]


def test_late_delivered_closes_the_callback_task(client, session):
    resident = factories.resident(session)
    case = make_case(session, resident)
    row = _sent_row(session, case=case)
    post_status(client, sid=row.provider_sid, status="undelivered", error_code="30006")
    post_status(client, sid=row.provider_sid, status="delivered")
    session.refresh(row)
    assert row.status == "delivered"
    assert session.scalar(select(CallbackTask.status)) == "done"


def test_queue_overflow_receipt_requeues(client, session):
    row = _sent_row(session)
    post_status(client, sid=row.provider_sid, status="failed", error_code="30001")
    session.refresh(row)
    assert row.status == "pending" and row.provider_sid is None and row.last_error_code == "30001"
    # A repeat of that old receipt does not touch the queued retry.
    post_status(client, sid="SM" + "a" * 32, status="failed", error_code="30001", outbox=row.id)
    session.refresh(row)
    assert row.status == "pending" and row.provider_sid is None


def test_receipt_before_the_worker_recorded_the_sid(app, client, session, fake_twilio):
    """Any order: 'delivered' arrives while the worker is between send and record."""
    from tests.sms_helpers import worker

    notifications.enqueue(session, "+8613900001111", "withdrawn", {"case_no": "A-B-C"})
    session.commit()
    w = worker(app, **twilio_config(fake_twilio))
    [claim] = w.claim()
    sid = w.sender.send(
        to=claim.to, body=claim.body, message_id=claim.outbox_id, status_callback=None
    )
    post_status(client, sid=sid, status="delivered", outbox=claim.outbox_id)
    w.record(claim, outcome="sent", sid=sid)
    row = session.get(SmsOutbox, claim.outbox_id)
    session.refresh(row)
    assert row.status == "delivered" and row.provider_sid == sid and row.claim_token is None


def test_receipt_for_unknown_sid_is_kept_and_applied_later(app, session):
    from notifications.delivery import record_receipt
    from notifications.retry import RetryPolicy
    from server.db import utcnow
    from tests.sms_helpers import worker

    sid = "SM" + "b" * 32
    assert (
        record_receipt(
            session,
            provider_sid=sid,
            status="delivered",
            error_code=None,
            outbox_id=None,
            now=utcnow(),
            policy=RetryPolicy(),
        )
        is None
    )
    notifications.enqueue(session, "+8613900001111", "withdrawn", {"case_no": "A-B-C"})
    session.commit()
    w = worker(app, SMS_BACKEND="console", SMS_SEND_RATE=0)
    [claim] = w.claim()
    w.record(claim, outcome="sent", sid=sid)
    row = session.get(SmsOutbox, claim.outbox_id)
    session.refresh(row)
    assert row.status == "delivered"


# --- call-back tasks, admin, readiness, CLI ---------------------------------------------


def _failed_task(session):
    from notifications.delivery import fail

    resident = factories.resident(session)
    case = make_case(session, resident)
    row = _sent_row(session, case=case)
    fail(session, row, status="failed", code="21610", error="unsubscribed")
    session.commit()
    return case, session.scalar(select(CallbackTask).where(CallbackTask.outbox_id == row.id))


def test_duty_staff_list_and_close_callback_tasks(app, client, session):
    case, task = _failed_task(session)
    duty = factories.staff(session, role="duty", region=TOWNSHIP)
    session.commit()
    url = f"/api/v1/cases/{case.id}/callback-tasks"
    resp = client.get(url, headers=factories.auth(app, duty))
    assert resp.status_code == 200
    [item] = resp.get_json()
    assert item["id"] == task.id and item["status"] == "open" and "21610" in item["reason"]
    # Masked like every other list; the full number only through the audited contact read.
    assert item["phone"] == mask_phone(task.phone) and task.phone[3:] not in resp.text

    resp = client.post(
        f"{url}/{task.id}/done", json={"note": "已电话告知"}, headers=factories.auth(app, duty)
    )
    assert resp.status_code == 200 and resp.get_json()["status"] == "done"
    assert task.phone[3:] not in resp.text
    assert client.get(url, headers=factories.auth(app, duty)).get_json() == []
    done = client.get(url + "?status=done", headers=factories.auth(app, duty)).get_json()
    assert done[0]["note"] == "已电话告知" and done[0]["closed_by_id"] == duty.id
    actions = session.scalars(select(CaseEvent.action).where(CaseEvent.case_id == case.id)).all()
    assert list(actions) == ["sms_undelivered", "callback_done"]


def test_callback_tasks_are_scoped(app, client, session):
    case, task = _failed_task(session)
    other = factories.staff(session, role="duty", region="371102002")
    supervisor = factories.staff(session, role="supervisor", region=COUNTY)
    admin = factories.staff(session, role="admin", region="3711")
    resident = session.get(factories.Account, case.resident_id)
    session.commit()
    url = f"/api/v1/cases/{case.id}/callback-tasks"
    assert client.get(url, headers=factories.auth(app, other)).status_code == 404
    assert client.get(url, headers=factories.auth(app, resident)).status_code == 403
    assert client.get(url, headers=factories.auth(app, supervisor)).status_code == 200
    done = f"{url}/{task.id}/done"
    assert client.post(done, json={}, headers=factories.auth(app, admin)).status_code == 403
    assert client.post(done, json={}, headers=factories.auth(app, other)).status_code == 404
    assert (
        client.post(
            f"{url}/999999/done", json={}, headers=factories.auth(app, supervisor)
        ).status_code
        == 404
    )


def test_admin_outbox_lists_by_status_paginated(app, client, session):
    for _ in range(3):
        notifications.enqueue(session, "+8613912345678", "withdrawn", {"case_no": "A-B-C"})
    _sent_row(session)
    admin = factories.staff(session, role="admin", region="3711")
    duty = factories.staff(session, role="duty", region=TOWNSHIP)
    session.commit()
    resp = client.get(
        "/api/v1/admin/outbox?status=pending&per_page=2", headers=factories.auth(app, admin)
    )
    assert resp.status_code == 200
    body = resp.get_json()
    assert body["total"] == 3 and len(body["items"]) == 2 and body["page"] == 1
    item = body["items"][0]
    assert item["to"] == "139****5678" and item["status"] == "pending"
    assert "body" not in item  # sign-in codes must not leak through the ops view
    everything = client.get("/api/v1/admin/outbox", headers=factories.auth(app, admin)).get_json()
    assert everything["total"] == 4
    bad = client.get("/api/v1/admin/outbox?status=nope", headers=factories.auth(app, admin))
    assert bad.status_code == 422
    assert client.get("/api/v1/admin/outbox", headers=factories.auth(app, duty)).status_code == 403
    assert client.get("/api/v1/admin/outbox").status_code == 401


def test_readyz_reports_outbox_counts(client, session):
    notifications.enqueue(session, "+8613912345678", "withdrawn", {"case_no": "A-B-C"})
    session.commit()
    details = client.get("/readyz").get_json()["details"]
    assert details["sms_outbox"]["pending"] == 1 and details["sms_outbox"]["failed"] == 0
    assert details["sms_oldest_due_seconds"] is not None


def test_cli_failures_and_retry(app, session):
    case, _task = _failed_task(session)
    row = session.scalar(select(SmsOutbox).where(SmsOutbox.case_id == case.id))
    runner = app.test_cli_runner()
    out = runner.invoke(args=["sms", "failures"])
    assert out.exit_code == 0, out.output
    assert f"{row.id}\tfailed\t21610" in out.output and "139****2222" in out.output
    assert runner.invoke(args=["sms", "retry"]).exit_code != 0
    out = runner.invoke(args=["sms", "retry", str(row.id)])
    assert out.exit_code == 0 and f"queued 1 message(s) again: {row.id}" in out.output
    session.refresh(row)
    assert row.status == "pending" and row.attempts == 0
    out = runner.invoke(args=["sms", "stats"])
    assert "pending\t1" in out.output


def test_cli_worker_once(app, session, fake_twilio):
    notifications.enqueue(session, "+8613912345678", "withdrawn", {"case_no": "A-B-C"})
    session.commit()
    app.config.update(twilio_config(fake_twilio))
    out = app.test_cli_runner().invoke(args=["worker", "--once"])
    assert out.exit_code == 0, out.output
    assert len(fake_twilio.requests) == 1


def test_admin_overrides_template_wording(app, client, session):
    admin = factories.staff(session, role="admin", region="3711")
    duty = factories.staff(session, role="duty", region=TOWNSHIP)
    session.commit()
    h = factories.auth(app, admin)
    listed = client.get("/api/v1/admin/sms-templates", headers=h).get_json()
    closed = next(t for t in listed if t["name"] == "closed")
    assert closed["parameters"] == ["case_no"] and closed["overridden"] is False

    url = "/api/v1/admin/sms-templates/closed"
    resp = client.put(url, json={"text": "【指尖办】{case_no}已办结。"}, headers=h)
    assert resp.status_code == 200 and resp.get_json()["overridden"] is True
    row = notifications.enqueue(
        session, "+8613912345678", "closed", {"case_no": "JJ1-20261123-0001"}
    )
    assert row.body == "【指尖办】JJ1-1123-0001已办结。"

    for bad in ("{amount_yuan}元", "{case_no", "{0}", ""):
        resp = client.put(url, json={"text": bad}, headers=h)
        assert resp.status_code == 422, bad
    assert (
        client.put("/api/v1/admin/sms-templates/nope", json={"text": "x"}, headers=h).status_code
        == 404
    )
    assert client.put(url, json={"text": "x"}, headers=factories.auth(app, duty)).status_code == 403
    assert client.put(url, json={"text": None}, headers=h).get_json()["overridden"] is False
