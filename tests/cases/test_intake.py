"""Intake: one-tap urgent help, applications, hotline entry, status and timeline, SMS rows."""

from __future__ import annotations

import datetime as dt
import uuid

from sqlalchemy import func, select

from notifications.models import SmsOutbox
from server.accounts.models import Account
from server.cases.models import Case, CaseEvent, IdempotencyKey
from server.roster.models import DutyShift
from tests import factories as f


def _sms(session, case_id, template):
    return session.scalars(
        select(SmsOutbox).where(
            SmsOutbox.case_id == uuid.UUID(str(case_id)), SmsOutbox.template == template
        )
    ).all()


def test_one_tap_with_township_creates_routed_case(app, client, session):
    me = f.resident(session)
    duty = f.staff(session, role="duty", region="371102004", phone="+8613900000001")
    f.on_duty(session, duty)
    resp = client.post(
        "/api/v1/urgent-requests",
        json={"township_code": "371102004"},
        headers={**f.auth(app, me), "Idempotency-Key": "tap-1"},
    )
    assert resp.status_code == 201, resp.get_json()
    body = resp.get_json()
    assert body["status"] == "queued" and body["urgent"] is True
    assert body["township"] == {"code": "371102004", "name": "秦楼街道"}
    assert body["case_no"].startswith("JJ371102004-")
    created = dt.datetime.fromisoformat(body["created_at"])
    assert created.utcoffset() == dt.timedelta(hours=8)
    assert dt.datetime.fromisoformat(body["pay_due_at"]) - created == dt.timedelta(hours=24)
    assert [e["action"] for e in body["timeline"]] == ["submit", "route"]
    assert len(_sms(session, body["id"], "urgent_receipt")) == 1
    pages = _sms(session, body["id"], "duty_page")
    assert [p.to_phone for p in pages] == ["+8613900000001"]


def test_empty_tap_still_creates_a_case_in_triage(app, client, session):
    me = f.resident(session)
    sup = f.staff(session, role="supervisor", region="371102", phone="+8613900000002")
    resp = client.post("/api/v1/urgent-requests", headers=f.auth(app, me))
    assert resp.status_code == 201, resp.get_json()
    body = resp.get_json()
    assert body["township"] is None
    assert body["queue"]["kind"] == "triage" and body["queue"]["code"] == "3711"
    case = session.get(Case, uuid.UUID(body["id"]))
    assert case.routing_evidence == "none"
    # nobody on the city roster: every supervisor of the city is paged
    assert [p.to_phone for p in _sms(session, body["id"], "duty_page")] == [sup.phone]


def test_retried_tap_returns_same_case(app, client, session):
    me = f.resident(session)
    headers = {**f.auth(app, me), "Idempotency-Key": "same-key"}
    first = client.post(
        "/api/v1/urgent-requests", json={"address": "莒县城阳街道"}, headers=headers
    )
    second = client.post(
        "/api/v1/urgent-requests", json={"address": "莒县城阳街道"}, headers=headers
    )
    assert first.status_code == 201 and second.status_code == 200
    assert first.get_json()["id"] == second.get_json()["id"]
    assert (
        session.scalar(select(func.count()).select_from(Case).where(Case.resident_id == me.id)) == 1
    )
    assert len(_sms(session, first.get_json()["id"], "urgent_receipt")) == 1


def test_same_key_different_body_is_422(app, client, session):
    me = f.resident(session)
    headers = {**f.auth(app, me), "Idempotency-Key": "k"}
    assert (
        client.post("/api/v1/urgent-requests", json={"address": "A"}, headers=headers).status_code
        == 201
    )
    resp = client.post("/api/v1/urgent-requests", json={"address": "B"}, headers=headers)
    assert resp.status_code == 422
    assert "Idempotency-Key" in resp.get_json()["errors"]


def test_open_urgent_case_is_returned_with_note(app, client, session):
    me = f.resident(session)
    first = client.post(
        "/api/v1/urgent-requests", json={}, headers={**f.auth(app, me), "Idempotency-Key": "a"}
    )
    again = client.post(
        "/api/v1/urgent-requests",
        json={"description": "还在等"},
        headers={**f.auth(app, me), "Idempotency-Key": "b"},
    )
    assert again.status_code == 200
    body = again.get_json()
    assert body["id"] == first.get_json()["id"] == body["duplicate_of"]
    assert body["note"]
    events = session.scalars(
        select(CaseEvent.action).where(CaseEvent.case_id == uuid.UUID(body["id"]))
    ).all()
    assert "repeat_request" in events


def test_urgent_bad_input_is_422(app, client, session):
    me = f.resident(session)
    h = f.auth(app, me)
    cases = [
        ({"township_code": "999999999"}, "township_code"),
        ({"township_code": "371102"}, "township_code"),
        ({"location": {"lat": 91, "lng": 0}}, "location"),
        ({"location": {"lat": "x", "lng": 0}}, "location"),
        ({"address": "x" * 201}, "address"),
        ({"contact_phone": "12345"}, "contact_phone"),
        ({"description": 5}, "description"),
    ]
    for body, field in cases:
        resp = client.post("/api/v1/urgent-requests", json=body, headers=h)
        assert resp.status_code == 422, (body, resp.get_json())
        assert field in resp.get_json()["errors"], (body, resp.get_json())
    assert (
        session.scalar(select(func.count()).select_from(Case).where(Case.resident_id == me.id)) == 0
    )


def test_staff_cannot_tap(app, client, session):
    duty = f.staff(session, role="duty", region="371102004")
    assert client.post("/api/v1/urgent-requests", headers=f.auth(app, duty)).status_code == 403


def test_application_and_duplicate(app, client, session):
    me = f.resident(session)
    body = {
        "aid_type": "minimum_living",
        "reason": "失业，无收入",
        "household_size": 3,
        "monthly_income_fen": 80000,
        "address": "日照市东港区秦楼街道泰安路88号",
    }
    first = client.post("/api/v1/applications", json=body, headers=f.auth(app, me))
    assert first.status_code == 201, first.get_json()
    data = first.get_json()
    assert data["case_no"].startswith("SQ371102004-")
    assert data["urgent"] is False and data["pay_due_at"] is None
    assert data["monthly_income_fen"] == 80000
    assert len(_sms(session, data["id"], "receipt")) == 1
    again = client.post(
        "/api/v1/applications", json={**body, "reason": "再次申请"}, headers=f.auth(app, me)
    )
    assert again.status_code == 200
    assert again.get_json()["duplicate_of"] == data["id"]
    other = client.post(
        "/api/v1/applications", json={**body, "aid_type": "medical"}, headers=f.auth(app, me)
    )
    assert other.status_code == 201


def test_application_validation(app, client, session):
    me = f.resident(session)
    h = f.auth(app, me)
    for body, field in [
        ({"aid_type": "temporary_emergency", "reason": "x"}, "aid_type"),
        ({"aid_type": "nonsense", "reason": "x"}, "aid_type"),
        ({"aid_type": "medical"}, "reason"),
        ({"aid_type": "medical", "reason": "x", "monthly_income_fen": -1}, "monthly_income_fen"),
        ({"aid_type": "medical", "reason": "x", "monthly_income_fen": 1.5}, "monthly_income_fen"),
        ({"aid_type": "medical", "reason": "x", "household_size": 0}, "household_size"),
    ]:
        resp = client.post("/api/v1/applications", json=body, headers=h)
        assert resp.status_code == 422 and field in resp.get_json()["errors"], body


def test_aid_types_listed():
    from server.app import create_app

    app = create_app({"DATABASE_URL": "sqlite://", "SECRET_KEY": "x" * 40})
    items = app.test_client().get("/api/v1/aid-types").get_json()
    labels = {i["code"]: i["label"] for i in items}
    assert labels["minimum_living"] == "最低生活保障"
    assert {i["code"] for i in items if not i["application"]} == {"temporary_emergency"}


def test_operator_enters_case_by_phone_only(app, client, session):
    op = f.staff(session, role="operator", region="3711")
    resp = client.post(
        "/api/v1/intake",
        json={
            "phone": "138 1234 5678",
            "channel": "hotline",
            "urgent": True,
            "notes": "来电称家中失火",
            "address": "五莲县洪凝街道",
        },
        headers=f.auth(app, op),
    )
    assert resp.status_code == 201, resp.get_json()
    body = resp.get_json()
    assert body["channel"] == "hotline"
    assert body["township"]["code"] == "371121001"
    assert body["person"]["phone"] == "138****5678"
    assert body["staff_notes"] == "来电称家中失火"
    # the caller later signs in as a resident and sees the case

    resident = session.scalar(select(Account).where(Account.phone == "+8613812345678"))
    mine = client.get("/api/v1/cases", headers=f.auth(app, resident)).get_json()
    assert [c["id"] for c in mine["items"]] == [body["id"]]
    # and the operator finds it by the caller's phone
    found = client.get("/api/v1/cases?phone=13812345678", headers=f.auth(app, op)).get_json()
    assert [c["id"] for c in found["items"]] == [body["id"]]


def test_an_intake_records_a_contact_person_whose_phone_differs(app, client, session):
    op = f.staff(session, role="operator", region="3711")
    resp = client.post(
        "/api/v1/intake",
        json={
            "phone": "13812340077",
            "channel": "hotline",
            "urgent": True,
            "name": "李阿姨",
            "contact_phone": "0633-8221234",
        },
        headers=f.auth(app, op),
    )
    assert resp.status_code == 201, resp.get_json()
    case = session.scalar(select(Case).where(Case.case_no == resp.get_json()["case_no"]))
    assert case.contact_phone == "+866338221234"
    bad = client.post(
        "/api/v1/intake",
        json={"phone": "13812340078", "channel": "hotline", "urgent": True, "contact_phone": "1"},
        headers=f.auth(app, op),
    )
    assert bad.status_code == 422 and "contact_phone" in bad.get_json()["errors"]


def test_hotline_duplicate_is_linked(app, client, session):
    op = f.staff(session, role="operator", region="3711")
    body = {
        "phone": "13812345679",
        "channel": "hotline",
        "aid_type": "medical",
        "reason": "住院费用",
    }
    first = client.post("/api/v1/intake", json=body, headers=f.auth(app, op))
    me = session.scalar(select(f.Account).where(f.Account.phone == "+8613812345679"))
    second = client.post(
        "/api/v1/applications",
        json={"aid_type": "medical", "reason": "同上"},
        headers=f.auth(app, me),
    )
    assert first.status_code == 201 and second.status_code == 200
    assert second.get_json()["duplicate_of"] == first.get_json()["id"]


def test_grid_worker_report_goes_to_their_township(app, client, session):
    grid = f.staff(session, role="grid_worker", region="371122001")
    resp = client.post(
        "/api/v1/intake",
        json={
            "phone": "13812340000",
            "channel": "proactive_discovery",
            "aid_type": "extreme_poverty",
            "reason": "独居老人",
        },
        headers=f.auth(app, grid),
    )
    assert resp.status_code == 201
    assert resp.get_json()["township"]["code"] == "371122001"
    assert resp.get_json()["routing"]["evidence"] == "reporter"


def test_operator_cannot_enter_a_proactive_discovery(app, client, session):
    op = f.staff(session, role="operator", region="3711")
    resp = client.post(
        "/api/v1/intake",
        json={
            "phone": "13812340002",
            "channel": "proactive_discovery",
            "aid_type": "extreme_poverty",
            "reason": "独居老人",
        },
        headers=f.auth(app, op),
    )
    assert resp.status_code == 422
    assert resp.get_json()["errors"] == {"channel": ["主动发现由网格员登记。"]}
    assert session.scalar(select(func.count()).select_from(Case)) == 0


def test_intake_requires_aid_type_unless_urgent(app, client, session):
    op = f.staff(session, role="operator", region="3711")
    resp = client.post(
        "/api/v1/intake",
        json={"phone": "13812340001", "channel": "hotline"},
        headers=f.auth(app, op),
    )
    assert resp.status_code == 422 and "aid_type" in resp.get_json()["errors"]
    resp = client.post(
        "/api/v1/intake",
        json={"phone": "123", "channel": "hotline", "urgent": True},
        headers=f.auth(app, op),
    )
    assert resp.status_code == 422 and "phone" in resp.get_json()["errors"]


def test_resident_cannot_see_anothers_case(app, client, session):
    a, b = f.resident(session), f.resident(session)
    case_id = client.post("/api/v1/urgent-requests", headers=f.auth(app, a)).get_json()["id"]
    assert client.get(f"/api/v1/cases/{case_id}", headers=f.auth(app, a)).status_code == 200
    resp = client.get(f"/api/v1/cases/{case_id}", headers=f.auth(app, b))
    assert resp.status_code == 404 and resp.get_json()["code"] == "not_found"
    assert client.get("/api/v1/cases/not-a-uuid", headers=f.auth(app, a)).status_code == 404
    assert client.get(f"/api/v1/cases?phone={a.phone}", headers=f.auth(app, b)).status_code == 403


def test_status_timeline_hides_staff_events(app, client, session):
    me = f.resident(session)
    case_id = client.post(
        "/api/v1/urgent-requests", json={"township_code": "371102004"}, headers=f.auth(app, me)
    ).get_json()["id"]
    mine = client.get(f"/api/v1/cases/{case_id}", headers=f.auth(app, me)).get_json()
    assert [e["action"] for e in mine["timeline"]] == ["submit", "route"]
    assert all("data" not in e for e in mine["timeline"])
    duty = f.staff(session, role="duty", region="371102004")
    staff_view = client.get(f"/api/v1/cases/{case_id}", headers=f.auth(app, duty)).get_json()
    assert "page" in [e["action"] for e in staff_view["timeline"]]
    assert staff_view["timeline"][1]["data"]["evidence"] == "explicit_township"
    other = f.staff(session, role="duty", region="371122001")
    assert client.get(f"/api/v1/cases/{case_id}", headers=f.auth(app, other)).status_code == 404


def test_resident_list_is_paginated_newest_first(app, client, session):
    me = f.resident(session)
    ids = []
    for aid in ("medical", "education", "housing"):
        ids.append(
            client.post(
                "/api/v1/applications",
                json={"aid_type": aid, "reason": "x"},
                headers=f.auth(app, me),
            ).get_json()["id"]
        )
    page = client.get("/api/v1/cases?per_page=2", headers=f.auth(app, me)).get_json()
    assert page["total"] == 3 and len(page["items"]) == 2
    page2 = client.get("/api/v1/cases?per_page=2&page=2", headers=f.auth(app, me)).get_json()
    assert [c["id"] for c in page["items"] + page2["items"]] == list(reversed(ids))


def test_failure_rolls_back_everything(app, client, session, monkeypatch):
    import notifications
    from server.audit import AuditEntry
    from server.cases import queries
    from server.cases.models import CaseCounter

    me = f.resident(session)

    def boom(*args, **kwargs):
        raise RuntimeError("outbox down")

    def count(model):
        return session.scalar(select(func.count()).select_from(model))

    # The outbox fails while the tap is being written; then everything is written and the
    # answer fails: either way nothing of the tap stays.
    monkeypatch.setattr(notifications, "enqueue", boom)
    resp = client.post(
        "/api/v1/urgent-requests", headers={**f.auth(app, me), "Idempotency-Key": "x"}
    )
    assert resp.status_code == 500
    monkeypatch.undo()
    monkeypatch.setattr(queries, "detail", boom)
    resp = client.post(
        "/api/v1/urgent-requests", headers={**f.auth(app, me), "Idempotency-Key": "x"}
    )
    assert resp.status_code == 500
    assert (
        session.scalar(select(func.count()).select_from(Case).where(Case.resident_id == me.id)) == 0
    )
    for model in (CaseEvent, SmsOutbox, IdempotencyKey, CaseCounter, AuditEntry):
        assert count(model) == 0, model


def test_receipt_and_page_exactly_once_per_case(app, client, session):
    duty1 = f.staff(session, role="duty", region="371122001", phone="+8613900000011")
    duty2 = f.staff(session, role="duty", region="371122001", phone="+8613900000012")
    off = f.staff(session, role="duty", region="371122001", phone="+8613900000013")
    f.on_duty(session, duty1)
    f.on_duty(session, duty2)
    _ = off  # not on the roster
    me = f.resident(session)
    h = {**f.auth(app, me), "Idempotency-Key": "once"}
    for _ in range(3):
        case_id = client.post(
            "/api/v1/urgent-requests", json={"address": "莒县城阳街道"}, headers=h
        ).get_json()["id"]
    assert len(_sms(session, case_id, "urgent_receipt")) == 1
    pages = sorted(p.to_phone for p in _sms(session, case_id, "duty_page"))
    assert pages == ["+8613900000011", "+8613900000012"]


def test_city_triage_case_is_worked_by_county_supervisors(app, client, session):
    me = f.resident(session)
    case_id = client.post("/api/v1/urgent-requests", headers=f.auth(app, me)).get_json()["id"]
    sup = f.staff(session, role="supervisor", region="371122")
    h = f.auth(app, sup)
    listed = client.get("/api/v1/counties/3711/triage", headers=h).get_json()
    assert [c["id"] for c in listed["items"]] == [case_id]
    claimed = client.post("/api/v1/counties/3711/triage/claim", headers=h)
    assert claimed.status_code == 200 and claimed.get_json()["id"] == case_id
    resp = client.post(
        f"/api/v1/cases/{case_id}/actions",
        headers=h,
        json={"action": "assign", "township_code": "371122001"},
    )
    assert resp.status_code == 200, resp.get_json()
    assert resp.get_json()["status"] == "queued"
    duty = f.staff(session, role="duty", region="371122001")
    mine = client.post("/api/v1/townships/371122001/queue/claim", headers=f.auth(app, duty))
    assert mine.status_code == 200 and mine.get_json()["id"] == case_id
    # duty staff do not see the city's triage queue
    assert client.get("/api/v1/counties/3711/triage", headers=f.auth(app, duty)).status_code == 403
    other_city = f.staff(session, role="supervisor", region="370202")
    assert (
        client.get("/api/v1/counties/3711/triage", headers=f.auth(app, other_city)).status_code
        == 404
    )


# --- the answer of an intake request is the case as a read shows it --------------------------


def _read(client, app, headers, body):
    """GET of the case an intake answer names, with that answer's note and duplicate link."""
    read = client.get(f"/api/v1/cases/{body['id']}", headers=headers)
    assert read.status_code == 200
    return {**read.get_json(), "note": body["note"], "duplicate_of": body["duplicate_of"]}


def test_intake_answers_are_the_case_as_read(app, client, session):
    """Pins the response of every intake path (new case, retry, open case, duplicate, staff
    entry, triage, a township outside the deployment city) to the case read back by GET."""
    duty = f.staff(session, role="duty", region="371102004", phone="+8613900000031")
    f.on_duty(session, duty)
    f.staff(session, role="supervisor", region="371122", phone="+8613900000032")
    me = f.resident(session, residence_township_code="371121001")
    other = f.resident(session)
    op = f.staff(session, role="operator", region="3711")
    mine, op_h, other_h = f.auth(app, me), f.auth(app, op), f.auth(app, other)
    full = {
        "township_code": "371102004",
        "location": {"lat": 35.42, "lng": 119.52},
        "address": "日照市东港区泰安路88号",
        "description": "家中老人突发疾病",
        "contact_phone": "0633-8888888",
    }
    answers = []
    r = client.post("/api/v1/urgent-requests", json=full, headers={**mine, "Idempotency-Key": "p1"})
    assert r.status_code == 201
    answers.append((mine, r))
    retry = client.post(
        "/api/v1/urgent-requests", json=full, headers={**mine, "Idempotency-Key": "p1"}
    )
    assert retry.status_code == 200 and retry.get_json()["note"]
    answers.append((mine, retry))
    repeat = client.post(
        "/api/v1/urgent-requests",
        json={"description": "还在等"},
        headers={**mine, "Idempotency-Key": "p2"},
    )
    assert repeat.status_code == 200 and repeat.get_json()["duplicate_of"] == r.get_json()["id"]
    answers.append((mine, repeat))
    empty = client.post("/api/v1/urgent-requests", headers=other_h)  # triage, no key
    assert empty.status_code == 201 and empty.get_json()["township"] is None
    answers.append((other_h, empty))
    outside = client.post(
        "/api/v1/applications",
        json={"aid_type": "medical", "reason": "住院", "township_code": "371121001"},
        headers=other_h,
    )
    assert outside.status_code == 201 and outside.get_json()["township"]["code"] == "371121001"
    answers.append((other_h, outside))
    application = client.post(
        "/api/v1/applications",
        json={"aid_type": "minimum_living", "reason": "失业", "household_size": 2},
        headers={**mine, "Idempotency-Key": "p3"},
    )
    assert application.status_code == 201
    answers.append((mine, application))
    for urgent in (True, False):
        hotline = client.post(
            "/api/v1/intake",
            json={
                "phone": "13812349999",
                "name": "张三",
                "channel": "hotline",
                "urgent": urgent,
                "aid_type": "medical",
                "reason": "住院费用",
                "notes": "来电人情绪激动",
                "address": "莒县城阳街道",
            },
            headers={**op_h, "Idempotency-Key": f"h{urgent}"},
        )
        assert hotline.status_code == 201, hotline.get_json()
        answers.append((op_h, hotline))
    for headers, answer in answers:
        assert answer.get_json() == _read(client, app, headers, answer.get_json())


def test_a_tap_pages_and_keeps_its_key(app, client, session):
    """A tap with an Idempotency-Key pages the township's duty officer and records the key
    against the new case."""
    duty = f.staff(session, role="duty", region="371102004", phone="+8613900000041")
    f.on_duty(session, duty)
    me = f.resident(session)
    headers = {**f.auth(app, me), "Idempotency-Key": "count-me"}
    r = client.post("/api/v1/urgent-requests", json={"township_code": "371102004"}, headers=headers)
    assert r.status_code == 201
    assert [s.template for s in _sms(session, r.get_json()["id"], "duty_page")] == ["duty_page"]
    key = session.scalar(select(IdempotencyKey).where(IdempotencyKey.key == "count-me"))
    assert key.case_id == uuid.UUID(r.get_json()["id"]) and key.endpoint == "urgent"


def test_the_duty_roster_look_up_skips_shifts_already_over(session):
    """Every urgent tap asks who is on duty: among years of past shifts, the one on now.
    (Its plan, an index on account and end, is bench/explain.py's to check.)"""
    from server.roster.service import pagers

    duty = f.staff(session, role="duty", region="371102004", phone="+8613900000021")
    other = f.staff(session, role="duty", region="371102002", phone="+8613900000022")
    now = dt.datetime.now(dt.UTC)
    for account in (duty, other):
        session.add_all(
            DutyShift(
                account_id=account.id,
                starts_at=now - dt.timedelta(days=day, hours=2),
                ends_at=now - dt.timedelta(days=day, hours=-6),
            )
            for day in range(1, 400)
        )
    f.on_duty(session, duty)
    rows, who = pagers(session, region_code="371102004", at=now)
    assert who == "duty" and [r.phone for r in rows] == ["+8613900000021"]
