"""A case is placed, transferred or assigned only to a township of DEPLOYMENT_CITY: anything
else is a 422 that says so (a resident is told the hotline), nothing is written, nobody is
told a bare code."""

from __future__ import annotations

import pytest
from sqlalchemy import func, select

from notifications.models import SmsOutbox
from server.cases.models import Case, CaseEvent
from server.divisions.service import require_case_township
from server.errors import ValidationFailed
from tests import factories
from tests.factories import COUNTY, auth
from tests.workflow_support import case_in, events, people, sms

BEIJING = "110105001"  # 建外街道, 北京市朝阳区: a real township, outside 日照市
NO_SUCH = "371102999"


def _count(session, model):
    return session.scalar(select(func.count()).select_from(model))


def _refused_outside(r, *, resident: bool) -> None:
    assert r.status_code == 422, r.json
    assert r.json["code"] == "outside_deployment_area"
    assert "日照市" in r.json["message"] and "township_code" in r.json["errors"]
    assert ("12349" in r.json["message"]) is resident


@pytest.mark.parametrize(
    ("path", "body"),
    [
        ("/api/v1/urgent-requests", {"township_code": BEIJING, "description": "摔倒了"}),
        (
            "/api/v1/applications",
            {"aid_type": "medical", "reason": "住院", "township_code": BEIJING},
        ),
    ],
)
def test_a_resident_cannot_place_a_case_outside_the_city(app, client, session, path, body):
    resident = factories.resident(session)
    before = (_count(session, Case), _count(session, SmsOutbox))
    r = client.post(path, json=body, headers=auth(app, resident))
    _refused_outside(r, resident=True)
    assert "本服务只覆盖日照市" in r.json["message"]
    assert (_count(session, Case), _count(session, SmsOutbox)) == before
    english = client.post(path, json=body, headers={**auth(app, resident), "Accept-Language": "en"})
    assert english.status_code == 422 and "12349" in english.json["message"]
    assert "covers 日照市 only" in english.json["message"]


def test_an_operator_cannot_enter_a_case_outside_the_city(app, client, session):
    operator = factories.staff(session, role="operator", region="3711")
    before = _count(session, Case)
    body = {"phone": "13812340000", "channel": "hotline", "urgent": True, "township_code": BEIJING}
    r = client.post("/api/v1/intake", json=body, headers=auth(app, operator))
    _refused_outside(r, resident=False)
    assert "建外街道" in r.json["message"]
    assert _count(session, Case) == before


@pytest.mark.parametrize("action", ["transfer", "assign"])
@pytest.mark.parametrize("code", [BEIJING, NO_SUCH])
def test_no_transfer_or_assign_outside_the_city(app, client, session, action, code):
    p = people(session)
    triage = action == "assign"
    case = case_in(session, "queued" if triage else "claimed", p, triage=triage)
    who = p.supervisor if triage else p.duty
    r = client.post(
        f"/api/v1/cases/{case.id}/actions",
        json={"action": action, "township_code": code, "reason": "家在北京"},
        headers=auth(app, who),
    )
    if code == BEIJING:
        _refused_outside(r, resident=False)
    else:
        assert r.status_code == 422 and r.json["code"] == "validation_error"
    session.expire_all()
    fresh = session.get(Case, case.id)
    assert fresh.township_code == (None if triage else case.township_code)
    assert fresh.county_code == COUNTY
    assert events(session, case) == [] and sms(session, case) == []


def test_the_one_validator(app, session):
    with app.app_context():
        assert require_case_township(session, "371102001").name == "日照街道"
        assert require_case_township(session, "371121001").name == "洪凝街道"
        for code, error in (
            (BEIJING, "outside_deployment_area"),
            ("370202001", "outside_deployment_area"),  # 青岛市: same province, other city
            (NO_SUCH, "validation_error"),
            ("371102", "validation_error"),  # a county
            ("37110200100", "validation_error"),
            ("x", "validation_error"),
        ):
            with pytest.raises(ValidationFailed) as info:
                require_case_township(session, code, field="to")
            assert info.value.code == error and "to" in info.value.errors
        # Another deployment serves another city.
        assert require_case_township(session, BEIJING, city="1101").name == "建外街道"


def test_sms_name_the_township_never_its_code(app, client, session):
    p = people(session)
    case = case_in(session, "queued", p, triage=True)
    r = client.post(
        f"/api/v1/cases/{case.id}/actions",
        json={"action": "assign", "township_code": "371121001"},
        headers=auth(app, p.supervisor),
    )
    assert r.status_code == 200, r.json
    [told] = sms(session, case, "transferred")
    assert "洪凝街道" in told.body and "371121001" not in told.body
    assert [e.action for e in events(session, case)] == ["assign"]
    assert session.scalar(select(CaseEvent.text_zh).where(CaseEvent.case_id == case.id)).startswith(
        "已分派至洪凝街道"
    )
