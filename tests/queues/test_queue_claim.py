"""The claim path: division names from the gazetteer and the template from the cache (no
reads of them per claim), what it writes, and the division checks behind the queue routes."""

from __future__ import annotations

import pytest
from sqlalchemy import event, select, update

from server.audit import AuditEntry
from server.cases import state
from server.cases.claim import claim_next
from server.cases.models import Case
from server.errors import Conflict, NotFound
from server.queues.routes import TRIAGE_LEVELS
from server.queues.schemas import QueueCaseSchema
from server.queues.service import require_division
from tests import factories
from tests.factories import COUNTY, TOWNSHIP, auth
from tests.workflow_support import events, people, sms


def _claim(client, app, account):
    return client.post(f"/api/v1/townships/{TOWNSHIP}/queue/claim", headers=auth(app, account))


def test_claim_reads_no_division_account_or_template_rows(app, client, session, connection):
    p = people(session)
    first = factories.case(session, resident_account=p.resident)
    second = factories.case(session, resident_account=p.resident, contact_phone="+8613811112222")
    session.commit()
    assert _claim(client, app, p.duty).status_code == 200  # warms the per-process caches

    seen: list[str] = []

    def log(conn, cursor, statement, *args):
        seen.append(statement)

    headers = auth(app, p.duty2)
    event.listen(connection, "before_cursor_execute", log)
    r = client.post(f"/api/v1/townships/{TOWNSHIP}/queue/claim", headers=headers)
    event.remove(connection, "before_cursor_execute", log)
    assert r.status_code == 200 and r.json["id"] == str(second.id)
    assert not any("FROM divisions" in s or "sms_template_overrides" in s for s in seen)
    # The "claimed" SMS go to the account's phone, or the request's contact phone.
    assert [s.to_phone for s in sms(session, first)] == [p.resident.phone]
    assert [s.to_phone for s in sms(session, second)] == ["+8613811112222"]
    assert sms(session, second)[0].params["township"] == "日照街道"


def test_claim_when_no_phone_is_known(app, client, session):
    p = people(session)
    p.resident.phone = None
    case = factories.case(session, resident_account=p.resident)
    session.commit()
    r = _claim(client, app, p.duty)
    assert r.status_code == 200 and r.json["id"] == str(case.id)
    assert sms(session, case) == []


def test_require_division_from_the_gazetteer_and_the_table(session):
    assert require_division(session, TOWNSHIP, "township") == "日照街道"
    assert require_division(session, "3711", TRIAGE_LEVELS) == "日照市"
    assert require_division(session, "371102", TRIAGE_LEVELS) == "东港区"
    assert require_division(session, "110101001", "township")  # outside the deployment city
    assert require_division(session, "37", "province") == "山东省"
    for code, level in (
        ("371102", "township"),  # a county where a township is wanted
        (TOWNSHIP, TRIAGE_LEVELS),
        ("371102999", "township"),  # no such township
        ("3799", "city"),
    ):
        with pytest.raises(NotFound):
            require_division(session, code, level)


def test_claim_writes_event_audit_and_sms_and_answers_like_the_schema(app, client, session):
    p = people(session)
    case = factories.case(session, resident_account=p.resident, address="日照市东港区")
    session.commit()
    r = _claim(client, app, p.duty)
    assert r.status_code == 200
    session.expire_all()
    fresh = session.get(Case, case.id)
    assert fresh.status == "claimed" and fresh.claimed_by_id == p.duty.id
    assert fresh.version == 2 and fresh.lease_expires_at is not None
    # The lean answer is exactly what the schema makes of the case as stored.
    assert r.json == QueueCaseSchema().dump(fresh)
    [ev] = events(session, case)
    assert (ev.action, ev.from_status, ev.to_status, ev.actor_id) == (
        "claim",
        "queued",
        "claimed",
        p.duty.id,
    )
    assert ev.text_zh == "日照街道工作人员已受理，正在办理。"
    assert ev.data == {"lease_minutes": 30}
    audit = session.scalars(select(AuditEntry).where(AuditEntry.target_id == str(case.id))).all()
    assert [(a.action, a.actor_id, a.data) for a in audit] == [
        ("case.claim", p.duty.id, {"from": "queued", "to": "claimed"})
    ]
    [text] = [m.body for m in sms(session, case)]
    assert "日照街道" in text


def test_the_resident_hears_of_the_first_claim_only(app, client, session):
    p = people(session)
    case = factories.case(session, resident_account=p.resident)
    session.commit()
    assert _claim(client, app, p.duty).json["id"] == str(case.id)
    r = client.post(
        f"/api/v1/cases/{case.id}/actions",
        json={"action": "release", "reason": "外出"},
        headers=auth(app, p.duty),
    )
    assert r.status_code == 200
    again = _claim(client, app, p.duty2)
    assert again.json["id"] == str(case.id) and again.json["claimed_by_id"] == p.duty2.id
    assert [e.action for e in events(session, case)] == ["claim", "release", "claim"]
    assert [m.template for m in sms(session, case)] == ["claimed"]


def test_triage_claim_names_the_county(app, client, session):
    p = people(session)
    case = factories.case(
        session, resident_account=p.resident, township=None, county=COUNTY, urgent=False
    )
    session.commit()
    r = client.post(f"/api/v1/counties/{COUNTY}/triage/claim", headers=auth(app, p.supervisor))
    assert r.status_code == 200 and r.json["lease_expires_at"] is None
    [ev] = events(session, case)
    assert ev.text_zh == "区县民政部门工作人员已受理，正在办理。"
    assert ev.data == {"lease_minutes": None}
    assert sms(session, case)[0].params["township"] == "区县民政部门"


def test_a_row_version_moved_under_the_claim_is_a_conflict(app, session, monkeypatch):
    """Someone changes the case between the claim's read and its write: 409, nothing kept."""
    p = people(session)
    case = factories.case(session, resident_account=p.resident)
    session.commit()
    real_apply = state.apply

    def apply_after_a_concurrent_change(obj, action):
        # As another transaction would: the claim's copy of the case does not see it.
        session.execute(
            update(Case)
            .where(Case.id == obj.id)
            .values(version=Case.version + 1)
            .execution_options(synchronize_session=False)
        )
        return real_apply(obj, action)

    monkeypatch.setattr(state, "apply", apply_after_a_concurrent_change)
    with app.test_request_context():
        work = session.begin_nested()
        with pytest.raises(Conflict) as info:
            claim_next(session, actor=p.duty, township_code=TOWNSHIP)
        work.rollback()
    assert info.value.code == "concurrent_update"
    session.expire_all()
    assert session.get(Case, case.id).status == "queued"
    assert events(session, case) == [] and sms(session, case) == []
