"""The duty page and masked case numbers: a masked number tells the city's queues apart, and
the page names the township and the kind of need, never the person."""

from __future__ import annotations

import uuid

from sqlalchemy import select

from notifications.models import SmsOutbox
from notifications.templates import mask_case_no, render
from server.routing.gazetteer import gazetteer
from tests import factories as f


def test_masked_numbers_are_unambiguous_within_the_city(session):
    gaz = gazetteer(session, "3711")
    queues = [c for c in gaz.names if len(c) in (4, 6, 9)]  # the city, counties, townships
    assert len(queues) > 60
    for kind in ("JJ", "SQ"):
        masked = {mask_case_no(f"{kind}{code}-20261201-0001") for code in queues}
        assert len(masked) == len(queues)
    # The day the attack run saw: 秦楼街道 and 石臼街道, both 0001 of 12-01.
    assert mask_case_no("JJ371102004-20261201-0001") == "JJ02004-1201-0001"
    assert mask_case_no("JJ371102002-20261201-0001") == "JJ02002-1201-0001"
    assert mask_case_no("JJ371102-20261201-0001") == "JJ02-1201-0001"  # county triage
    assert mask_case_no("JJ3711-20261201-0001") == "JJ3711-1201-0001"  # city triage
    page = render(
        "duty_page",
        {"case_no": "JJ371102004-20261201-0001", "township": "秦楼街道", "channel": "12349 热线"},
    )
    assert page == "【指尖办】12349 热线紧急求助JJ02004-1201-0001，秦楼街道，请立即认领处理。"


def _on_duty(session, township, phone):
    return f.on_duty(session, f.staff(session, role="duty", region=township, phone=phone))


def test_two_townships_pages_differ_and_name_no_one(app, client, session):
    taps = {
        "371102004": ("秦楼街道", "东港区秦楼街道泰安路88号3单元401"),
        "371102002": ("石臼街道", "东港区石臼街道海滨二路16号"),
    }
    bodies = {}
    for code, (name, address) in taps.items():
        _on_duty(session, code, f"+86139000{code[-5:]}")
        resident = f.resident(session, name="张三丰")
        r = client.post(
            "/api/v1/urgent-requests",
            json={
                "address": address,
                "description": "张三丰摔倒了",
                "contact_phone": "13911112222",
            },
            headers=f.auth(app, resident),
        )
        assert r.status_code == 201 and r.json["township"]["code"] == code, r.json
        [page] = session.scalars(
            select(SmsOutbox).where(
                SmsOutbox.case_id == uuid.UUID(r.json["id"]), SmsOutbox.template == "duty_page"
            )
        ).all()
        body = page.body
        assert mask_case_no(r.json["case_no"]) in body and code[4:] in body
        assert "紧急求助" in body and name in body and len(body) <= 70
        assert body.startswith("【指尖办】手机应用紧急求助")  # how the need came in
        for personal in ("张", "泰安路", "海滨", "401", "16号", "13911112222", resident.phone[3:]):
            assert personal not in body, (personal, body)
        bodies[code] = body
    assert len(set(bodies.values())) == 2


def test_pages_say_how_the_need_came_in_on_intake_and_transfer(app, client, session):
    """Urgent aid is one aid type (急难型), so a page tells a hotline call from a tap, here and
    in the township the case moves to; the notes stay off it."""
    first = _on_duty(session, "371102004", "+8613900002004")
    second = _on_duty(session, "371102002", "+8613900002002")
    op = f.staff(session, role="operator", region="3711")
    r = client.post(
        "/api/v1/intake",
        json={
            "phone": "13812345601",
            "channel": "hotline",
            "urgent": True,
            "aid_type": "medical",
            "township_code": "371102004",
            "notes": "来电称老人突发疾病",
        },
        headers=f.auth(app, op),
    )
    assert r.status_code == 201, r.json
    case_id = uuid.UUID(r.json["id"])
    claim = client.post("/api/v1/townships/371102004/queue/claim", headers=f.auth(app, first))
    assert claim.status_code == 200 and claim.json["id"] == str(case_id)
    moved = client.post(
        f"/api/v1/cases/{case_id}/actions",
        json={"action": "transfer", "township_code": "371102002", "reason": "人在石臼街道"},
        headers=f.auth(app, first),
    )
    assert moved.status_code == 200, moved.json
    pages = session.scalars(
        select(SmsOutbox)
        .where(SmsOutbox.case_id == case_id, SmsOutbox.template == "duty_page")
        .order_by(SmsOutbox.id)
    ).all()
    assert [p.to_phone for p in pages] == [first.phone, second.phone]
    for page, township in zip(pages, ("秦楼街道", "石臼街道"), strict=True):
        assert page.body.startswith("【指尖办】12349 热线紧急求助"), page.body
        assert township in page.body and "老人" not in page.body
        assert len(page.body) <= 70
