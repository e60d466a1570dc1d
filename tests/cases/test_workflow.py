"""Case actions over HTTP: emergency aid first, county approval, transfer, refer, withdraw,
documents, who may act, SMS and timeline, concurrent actions."""

from __future__ import annotations

import datetime as dt
import threading
import uuid

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from server.cases import actions
from server.cases.models import Case
from server.db import utcnow
from server.errors import Conflict
from server.session import database
from tests import factories
from tests.factories import OTHER_TOWNSHIP, TOWNSHIP, auth
from tests.workflow_support import case_in, events, people, sms, upload


def act(client, app, account, case, **body):
    return client.post(f"/api/v1/cases/{case.id}/actions", json=body, headers=auth(app, account))


def doc(client, app, account, case, kind):
    return upload(client, app, account, case, kind)


def test_emergency_aid_first_paperwork_after(app, client, session):
    p = people(session)
    case = factories.case(session, resident_account=p.resident)
    claimed = client.post(f"/api/v1/townships/{TOWNSHIP}/queue/claim", headers=auth(app, p.duty))
    assert claimed.status_code == 200, claimed.json
    assert claimed.json["id"] == str(case.id) and claimed.json["status"] == "claimed"

    paid_at = utcnow() - dt.timedelta(minutes=2)  # cash handed over, recorded afterwards
    r = act(
        client,
        app,
        p.duty,
        case,
        action="pay",
        amount_fen=50_000,
        method="cash",
        reference="备用金-001",
        paid_at=paid_at.isoformat(),
    )
    assert r.status_code == 200, r.json
    assert r.json["status"] == "paid" and r.json["paid_amount_fen"] == 50_000
    assert r.json["paperwork_due_at"] is not None
    session.expire_all()
    case = session.get(Case, case.id)
    assert case.paid_at == paid_at.replace(microsecond=paid_at.microsecond)
    assert case.paperwork_due_at - case.paid_at >= dt.timedelta(days=5)
    assert case.lease_expires_at is None

    paid_sms = sms(session, case, "paid")
    assert len(paid_sms) == 1 and paid_sms[0].params["amount_yuan"] == "500.00"
    assert paid_sms[0].to_phone == p.resident.phone
    assert "500.00元" in paid_sms[0].body
    assert len(sms(session, case, "paperwork_due")) == 1
    assert len(sms(session, case, "claimed")) == 1

    # Paperwork not complete yet: closing is refused and says what is missing.
    r = act(client, app, p.duty, case, action="close")
    assert r.status_code == 409 and "救助申请书" in r.json["message"]
    assert doc(client, app, p.resident, case, "application").status_code == 201
    assert doc(client, app, p.resident, case, "hardship_proof").status_code == 201
    r = act(client, app, p.duty, case, action="close")
    assert r.status_code == 409 and "救助金发放签收单" in r.json["message"]
    assert doc(client, app, p.duty, case, "payment_receipt").status_code == 201
    r = act(client, app, p.duty, case, action="close")
    assert r.status_code == 200 and r.json["status"] == "closed"
    assert len(sms(session, case, "closed")) == 1
    assert doc(client, app, p.duty, case, "other").status_code == 409

    actions = [e.action for e in events(session, case)]
    assert actions == [
        "claim",
        "pay",
        "add_document",
        "add_document",
        "add_document",
        "paperwork_complete",
        "close",
    ]
    pay_event = events(session, case)[1]
    assert pay_event.actor_id == p.duty.id and pay_event.from_status == "claimed"
    assert pay_event.to_status == "paid" and "先行救助" in pay_event.text_zh
    assert pay_event.data["amount_fen"] == 50_000 and pay_event.data["within_24h"] is True


def test_paid_at_rules(app, client, session):
    p = people(session)
    case = case_in(session, "claimed", p, created_at=utcnow() - dt.timedelta(hours=3))
    future = (utcnow() + dt.timedelta(minutes=10)).isoformat()
    r = act(client, app, p.duty, case, action="pay", amount_fen=100, method="cash", paid_at=future)
    assert r.status_code == 422 and "paid_at" in r.json["errors"]
    before = (case.created_at - dt.timedelta(minutes=1)).isoformat()
    r = act(client, app, p.duty, case, action="pay", amount_fen=100, method="cash", paid_at=before)
    assert r.status_code == 422 and "paid_at" in r.json["errors"]
    naive = "2026-01-01T10:00:00"
    r = act(client, app, p.duty, case, action="pay", amount_fen=100, method="cash", paid_at=naive)
    assert r.status_code == 422
    r = act(client, app, p.duty, case, action="pay", amount_fen=100, method="cash")
    assert r.status_code == 200


def test_ordinary_case_is_not_paid_before_approval(app, client, session):
    p = people(session)
    case = case_in(session, "claimed", p, urgent=False, aid_type="medical")
    r = act(client, app, p.duty, case, action="pay", amount_fen=100, method="cash")
    assert r.status_code == 409
    assert r.json["errors"]["status"] == ["claimed"]
    assert "approve" in r.json["errors"]["allowed_actions"]
    assert act(client, app, p.duty, case, action="approve", amount_fen=80_000).status_code == 200
    r = act(client, app, p.duty, case, action="pay", amount_fen=80_001, method="bank_transfer")
    assert r.status_code == 422
    r = act(client, app, p.duty, case, action="pay", amount_fen=80_000, method="bank_transfer")
    assert r.status_code == 200 and r.json["paperwork_due_at"] is None
    assert [s.template for s in sms(session, case)] == ["approved", "paid"]
    # The checklist drives closing for every aid type, not only urgent aid.
    r = act(client, app, p.duty, case, action="close")
    assert r.status_code == 409 and "身份证明" in r.json["message"]
    for kind in ("application", "id_proof", "hardship_proof", "payment_receipt"):
        assert doc(client, app, p.duty, case, kind).status_code == 201
    assert act(client, app, p.duty, case, action="close").status_code == 200


def test_above_township_authority_goes_to_county(app, client, session):
    p = people(session)
    case = case_in(session, "claimed", p, urgent=False, aid_type="temporary_expenditure")
    high = 12 * 105_000 + 1  # above 12× the urban standard and the township cap
    r = act(client, app, p.duty, case, action="approve", amount_fen=high)
    assert r.status_code == 200 and r.json["status"] == "pending_county_approval"
    alerts = sms(session, case, "escalation")
    assert [a.to_phone for a in alerts] == [p.supervisor.phone]
    assert sms(session, case, "approved") == []

    # The township cannot decide it; the county can (一事一议).
    assert act(client, app, p.duty, case, action="approve").status_code == 403
    assert act(client, app, p.duty, case, action="reject", reason="x").status_code == 403
    r = act(client, app, p.supervisor, case, action="approve")
    assert r.status_code == 200 and r.json["status"] == "approved"
    assert r.json["approved_amount_fen"] == high
    assert sms(session, case, "approved")[0].params["amount_yuan"] == "12600.01"
    assert events(session, case)[-1].data["level"] == "county"


def test_county_rejects(app, client, session):
    p = people(session)
    case = case_in(session, "pending_county_approval", p, urgent=False)
    r = act(client, app, p.supervisor, case, action="reject", reason="家庭收入超过标准")
    assert r.status_code == 200 and r.json["status"] == "rejected"
    assert sms(session, case, "rejected")[0].params["reason"] == "家庭收入超过标准"


def test_supervisor_approves_above_cap_directly(app, client, session):
    p = people(session)
    case = case_in(session, "claimed", p, holder=p.supervisor, urgent=False)
    r = act(client, app, p.supervisor, case, action="approve", amount_fen=2_000_000)
    assert r.status_code == 200 and r.json["status"] == "approved"


def test_transfer_keeps_accountability_and_clock(app, client, session):
    p = people(session)
    other_duty = factories.staff(
        session, role="duty", region=OTHER_TOWNSHIP, phone="+8613800000003"
    )
    case = case_in(session, "claimed", p)
    due = case.pay_due_at
    r = act(
        client,
        app,
        p.duty,
        case,
        action="transfer",
        township_code=OTHER_TOWNSHIP,
        reason="求助人实际在石臼街道",
    )
    assert r.status_code == 200, r.json
    assert r.json["status"] == "queued" and r.json["township_code"] == OTHER_TOWNSHIP
    assert r.json["accountable_township_code"] == TOWNSHIP
    assert r.json["claimed_by_id"] is None
    session.expire_all()
    assert session.get(Case, case.id).pay_due_at == due
    event = events(session, case)[-1]
    assert "24小时发放时限" in event.text_zh and "日照街道" in event.text_zh
    assert sms(session, case, "transferred")[0].params["township"] == "石臼街道"
    # The first township no longer sees it; the new one claims it.
    assert act(client, app, p.duty, case, action="note", message="x").status_code == 404
    r = client.post(
        f"/api/v1/townships/{OTHER_TOWNSHIP}/queue/claim", headers=auth(app, other_duty)
    )
    assert r.status_code == 200 and r.json["id"] == str(case.id)
    bad = act(
        client, app, other_duty, case, action="transfer", township_code="371102999", reason="x"
    )
    assert bad.status_code == 422 and "township_code" in bad.json["errors"]


def test_refer_to_county_department(app, client, session):
    p = people(session)
    case = case_in(session, "claimed", p, urgent=False, aid_type="medical")
    r = act(
        client, app, p.duty, case, action="refer", department="medical_insurance", reason="大病"
    )
    assert r.status_code == 200 and r.json["status"] == "referred"
    assert r.json["referred_department"] == "medical_insurance"
    assert sms(session, case, "referred")[0].params["department"] == "东港区医保局"
    r = act(client, app, p.duty, case, action="refer", department="nasa", reason="x")
    assert r.status_code == 422


def test_request_and_supply_info(app, client, session):
    p = people(session)
    case = case_in(session, "claimed", p)
    r = act(client, app, p.duty, case, action="request_info", message="请上传医院诊断证明")
    assert r.status_code == 200 and r.json["status"] == "needs_info"
    assert r.json["lease_expires_at"] is None
    assert sms(session, case, "info_requested")[0].params["message"] == "请上传医院诊断证明"
    assert doc(client, app, p.resident, case, "hardship_proof").status_code == 201
    r = act(client, app, p.resident, case, action="supply_info", message="已上传")
    assert r.status_code == 200 and r.json["status"] == "claimed"
    assert "lease_expires_at" not in r.json  # the resident's view: no staff internals
    session.refresh(case)
    assert case.lease_expires_at is not None  # the holder gets a fresh lease


def test_resident_withdraws_only_own_unpaid_case(app, client, session):
    p = people(session)
    stranger = factories.resident(session)
    case = case_in(session, "approved", p)
    assert act(client, app, stranger, case, action="withdraw").status_code == 404
    assert act(client, app, p.resident, case, action="approve", amount_fen=1).status_code == 403
    r = act(client, app, p.resident, case, action="withdraw", reason="问题已解决")
    assert r.status_code == 200 and r.json["status"] == "withdrawn"
    assert len(sms(session, case, "withdrawn")) == 1
    paid = case_in(session, "paid", p)
    r = act(client, app, p.resident, paid, action="withdraw")
    assert r.status_code == 409 and r.json["errors"]["status"] == ["paid"]


def test_only_the_holder_acts_on_a_claimed_case(app, client, session):
    p = people(session)
    case = case_in(session, "claimed", p)
    r = act(client, app, p.duty2, case, action="pay", amount_fen=100, method="cash")
    assert r.status_code == 409 and r.json["code"] == "claimed_by_other"
    # A supervisor can take it back for the queue; then a colleague claims it.
    assert (
        act(client, app, p.supervisor, case, action="release", reason="值班人员离岗").status_code
        == 200
    )
    r = client.post(f"/api/v1/townships/{TOWNSHIP}/queue/claim", headers=auth(app, p.duty2))
    assert r.json["claimed_by_id"] == p.duty2.id
    assert len(sms(session, case, "claimed")) == 1  # the resident is told once


def test_staff_out_of_region_and_wrong_roles(app, client, session):
    p = people(session)
    case = case_in(session, "claimed", p)
    far = factories.staff(session, role="duty", region="371103001")
    operator = factories.staff(session, role="operator", region="3711")
    assert act(client, app, far, case, action="note", message="x").status_code == 404
    assert act(client, app, operator, case, action="note", message="x").status_code == 403
    assert act(client, app, p.duty, case, action="supply_info").status_code == 403
    r = client.post(f"/api/v1/cases/{case.id}/actions", json={"action": "note", "message": "x"})
    assert r.status_code == 401


def test_action_arguments_are_validated(app, client, session):
    p = people(session)
    case = case_in(session, "claimed", p)
    r = act(client, app, p.duty, case, action="pay", amount_fen=100)
    assert r.status_code == 422 and r.json["errors"]["method"] == ["必填项。"]
    r = act(client, app, p.duty, case, action="reject", reason="x", amount_fen=1)
    assert r.status_code == 422 and "amount_fen" in r.json["errors"]
    r = act(client, app, p.duty, case, action="fly")
    assert r.status_code == 422
    r = act(client, app, p.duty, case, action="pay", amount_fen=1.5, method="cash")
    assert r.status_code == 422
    r = act(client, app, p.duty, case, action="approve")
    assert r.status_code == 422 and "amount_fen" in r.json["errors"]
    r = client.post(
        "/api/v1/cases/00000000-0000-0000-0000-000000000000/actions",
        json={"action": "close"},
        headers=auth(app, p.duty),
    )
    assert r.status_code == 404


def test_illegal_action_409_lists_only_the_callers_actions(app, client, session):
    p = people(session)
    case = case_in(session, "claimed", p, urgent=False, aid_type="medical")
    r = act(client, app, p.resident, case, action="supply_info", message="补充")
    assert r.status_code == 409 and r.json["code"] == "illegal_transition"
    allowed = r.json["errors"]["allowed_actions"]
    assert allowed and set(allowed) <= {"withdraw", "supply_info"}
    assert "approve" not in r.json["message"]
    r = act(client, app, p.duty, case, action="supply_info", message="补充")
    assert r.status_code == 403  # not the duty officer's action at all
    r = act(client, app, p.duty, case, action="close")
    assert "approve" in r.json["errors"]["allowed_actions"]
    assert "withdraw" not in r.json["errors"]["allowed_actions"]


def test_illegal_action_409_names_status_and_allowed(app, client, session):
    p = people(session)
    case = case_in(session, "closed", p)
    r = act(client, app, p.duty, case, action="pay", amount_fen=100, method="cash")
    assert r.status_code == 409 and r.json["code"] == "illegal_transition"
    assert "已办结" in r.json["message"]
    assert r.json["errors"]["allowed_actions"] == []
    r = client.post(
        f"/api/v1/cases/{case.id}/actions",
        json={"action": "pay", "amount_fen": 100, "method": "cash"},
        headers={**auth(app, p.duty), "Accept-Language": "en"},
    )
    assert "The case is 'closed'" in r.json["message"]


def test_note_renews_an_urgent_lease(app, client, session):
    p = people(session)
    case = case_in(session, "claimed", p, lease_expires_at=utcnow() + dt.timedelta(minutes=1))
    r = act(client, app, p.duty, case, action="note", message="正在赶往现场")
    assert r.status_code == 200
    lease = dt.datetime.fromisoformat(r.json["lease_expires_at"])
    assert lease > utcnow() + dt.timedelta(minutes=25)
    assert events(session, case)[-1].resident_visible is False


# --- concurrency ----------------------------------------------------------------------------


def _setup_committed(app):
    with database(app).new_session() as s, s.begin():
        p = people(s)
        case = case_in(s, "claimed", p)
    return p, case


def test_stale_version_is_a_conflict(committed_app):
    """Two sessions load the same case; the second to write loses with 409."""
    p, case = _setup_committed(committed_app)
    db = database(committed_app)
    first: Session = db.new_session()
    second: Session = db.new_session()
    try:
        with committed_app.app_context():
            a = first.get(Case, case.id)
            b = second.get(Case, case.id)
            assert a.version == b.version
            # The second reader's transaction ends (a page shown to an officer); its copy of
            # the case stays in memory (expire_on_commit=False) and goes stale.
            second.commit()
            actions.perform(
                first,
                actor=p.duty,
                case_id=case.id,
                action="pay",
                args={"amount_fen": 100, "method": "cash"},
            )
            first.commit()
            with pytest.raises(Conflict) as info:
                actions.perform(
                    second, actor=p.resident, case_id=case.id, action="withdraw", args={}
                )
            assert info.value.code == "concurrent_update"
            second.rollback()
    finally:
        first.close()
        second.close()
    with db.new_session() as s:
        assert s.get(Case, case.id).status == "paid"


def test_concurrent_conflicting_actions_one_wins(committed_app):
    """The resident withdraws while the officer pays: exactly one succeeds, the other 409."""
    p, case = _setup_committed(committed_app)
    client = committed_app.test_client()
    results: dict[str, int] = {}
    barrier = threading.Barrier(2)
    requests = {
        "pay": (p.duty, {"action": "pay", "amount_fen": 100, "method": "cash"}),
        "withdraw": (p.resident, {"action": "withdraw"}),
    }
    headers = {name: auth(committed_app, who) for name, (who, _) in requests.items()}

    def run(name: str) -> None:
        barrier.wait()
        r = client.post(
            f"/api/v1/cases/{case.id}/actions", json=requests[name][1], headers=headers[name]
        )
        results[name] = r.status_code

    threads = [threading.Thread(target=run, args=(n,)) for n in requests]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(results.values()) == [200, 409], results
    with database(committed_app).new_session() as s:
        final = s.get(Case, case.id)
        winner = "paid" if results["pay"] == 200 else "withdrawn"
        assert final.status == winner
        assert final.version > 1
        assert len(s.scalars(select(Case)).all()) == 1


def test_one_tap_to_closed_through_intake(app, client, session):
    """The resident's one tap (intake) -> claim -> 先行救助 -> paperwork -> closed, and the
    resident's own view of the case shows the workflow's timeline."""
    p = people(session)
    tap = client.post(
        "/api/v1/urgent-requests",
        json={"township_code": TOWNSHIP, "description": "钱包丢失，无法回家"},
        headers={**auth(app, p.resident), "Idempotency-Key": "tap-e2e"},
    )
    assert tap.status_code == 201, tap.json
    case_id = tap.json["id"]
    r = client.post(f"/api/v1/townships/{TOWNSHIP}/queue/claim", headers=auth(app, p.duty))
    assert r.status_code == 200 and r.json["id"] == case_id
    case = session.get(Case, uuid.UUID(case_id))
    r = act(client, app, p.duty, case, action="pay", amount_fen=20_000, method="cash")
    assert r.status_code == 200, r.json
    for kind in ("application", "hardship_proof", "payment_receipt"):
        assert doc(client, app, p.duty, case, kind).status_code == 201
    assert act(client, app, p.duty, case, action="close").status_code == 200
    mine = client.get(f"/api/v1/cases/{case_id}", headers=auth(app, p.resident))
    assert mine.status_code == 200 and mine.json["status"] == "closed"
    actions = [e["action"] for e in mine.json["timeline"]]
    assert actions[-3:] == ["add_document", "paperwork_complete", "close"] and "pay" in actions
