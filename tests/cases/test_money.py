"""Money rules at the boundaries: 3× and 12× the urban standard, the township caps."""

from __future__ import annotations

import pytest

from server.cases import money
from server.cases.models import Case
from server.errors import ValidationFailed
from tests import factories
from tests.factories import COUNTY, auth
from tests.workflow_support import case_in, people

URBAN = money.DEMO_STANDARDS_FEN["urban_monthly_fen"]  # 1050 元
APPROVAL_CAP = money.DEMO_STANDARDS_FEN["township_approval_cap_fen"]  # 12600 元
URGENT_CAP = money.DEMO_STANDARDS_FEN["township_urgent_cap_fen"]  # 2000 元


@pytest.mark.parametrize(
    ("fen", "text"), [(0, "0.00"), (1, "0.01"), (50_000, "500.00"), (1_260_001, "12600.01")]
)
def test_yuan(fen, text):
    assert money.yuan(fen) == text


@pytest.mark.parametrize(
    ("text", "fen"), [("1050", 105_000), ("1050.5", 105_050), ("0.01", 1), (" 7.10 ", 710)]
)
def test_parse_yuan(text, fen):
    assert money.parse_yuan(text) == fen


@pytest.mark.parametrize("text", ["abc", "-1", "1.001", "nan", "inf", "", "1e9999", "500元"])
def test_parse_yuan_refuses(text):
    with pytest.raises(ValueError):
        money.parse_yuan(text)


@pytest.fixture
def standard(session):
    return factories.aid_standard(session)


@pytest.mark.parametrize(
    ("amount", "level"),
    [
        (3 * URBAN, "township"),  # the 3× floor itself
        (12 * URBAN, "township"),  # the 12× ceiling itself (= the demo approval cap)
        (12 * URBAN + 1, "county"),  # above: 一事一议
    ],
)
def test_expenditure_range(standard, amount, level):
    route = money.approval_route(
        standard=standard, aid_type="temporary_expenditure", amount_fen=amount
    )
    assert route.level == level
    if level == "county":
        assert "12 倍" in route.reason_zh


def test_expenditure_below_three_times_is_refused(standard):
    with pytest.raises(ValidationFailed) as info:
        money.approval_route(
            standard=standard, aid_type="temporary_expenditure", amount_fen=3 * URBAN - 1
        )
    assert "3 倍" in info.value.errors["amount_fen"][0]


@pytest.mark.parametrize(
    ("amount", "level"),
    [(1, "township"), (APPROVAL_CAP, "township"), (APPROVAL_CAP + 1, "county")],
)
def test_township_approval_cap(standard, amount, level):
    route = money.approval_route(standard=standard, aid_type="medical", amount_fen=amount)
    assert route.level == level


def test_zero_is_not_an_amount(standard):
    with pytest.raises(ValidationFailed):
        money.approval_route(standard=standard, aid_type="medical", amount_fen=0)
    with pytest.raises(ValidationFailed):
        money.check_emergency_payment(standard=standard, amount_fen=0)


def test_urgent_cap(standard):
    money.check_emergency_payment(standard=standard, amount_fen=URGENT_CAP)
    with pytest.raises(ValidationFailed) as info:
        money.check_emergency_payment(standard=standard, amount_fen=URGENT_CAP + 1)
    assert "2000.00" in info.value.errors["amount_fen"][0]


def test_standard_validation(session):
    with pytest.raises(ValidationFailed) as info:
        factories.aid_standard(session, township_urgent_cap_fen=APPROVAL_CAP + 1)
    assert "township_urgent_cap_fen" in info.value.errors
    with pytest.raises(ValidationFailed):
        factories.aid_standard(session, urban_monthly_fen=0)


# --- over HTTP --------------------------------------------------------------------------------


def act(client, app, account, case, **body):
    return client.post(f"/api/v1/cases/{case.id}/actions", json=body, headers=auth(app, account))


@pytest.mark.parametrize(("amount", "status"), [(URGENT_CAP, 200), (URGENT_CAP + 1, 422)])
def test_emergency_payment_cap_over_http(app, client, session, amount, status):
    p = people(session)
    case = case_in(session, "claimed", p)
    r = act(client, app, p.duty, case, action="pay", amount_fen=amount, method="cash")
    assert r.status_code == status


@pytest.mark.parametrize(
    ("amount", "code", "result"),
    [
        (3 * URBAN - 1, 422, None),
        (3 * URBAN, 200, "approved"),
        (12 * URBAN, 200, "approved"),
        (12 * URBAN + 1, 200, "pending_county_approval"),
    ],
)
def test_expenditure_approval_over_http(app, client, session, amount, code, result):
    p = people(session)
    case = case_in(session, "claimed", p, urgent=False, aid_type="temporary_expenditure")
    r = act(client, app, p.duty, case, action="approve", amount_fen=amount)
    assert r.status_code == code, r.json
    if result:
        assert r.json["status"] == result and r.json["approved_amount_fen"] == amount
    else:
        session.expire_all()
        assert session.get(Case, case.id).status == "claimed"


def test_county_keeps_the_three_times_floor(app, client, session):
    p = people(session)
    case = case_in(
        session, "pending_county_approval", p, urgent=False, aid_type="temporary_expenditure"
    )
    r = act(client, app, p.supervisor, case, action="approve", amount_fen=3 * URBAN - 1)
    assert r.status_code == 422


def test_missing_standard_is_a_clear_409(app, client, session):
    p = people(session)
    case = factories.case(session, resident_account=p.resident, township="371103001")
    duty = factories.staff(session, role="duty", region="371103001")
    client.post("/api/v1/townships/371103001/queue/claim", headers=auth(app, duty))
    r = act(client, app, duty, case, action="pay", amount_fen=100, method="cash")
    assert r.status_code == 409 and r.json["code"] == "aid_standard_missing"


def test_aid_standards_api(app, client, session):
    p = people(session)
    admin, supervisor = auth(app, p.admin), auth(app, p.supervisor)
    body = {
        "urban_monthly_fen": 110_000,
        "rural_monthly_fen": 90_000,
        "township_urgent_cap_fen": 300_000,
        "township_approval_cap_fen": 1_320_000,
    }
    r = client.put(f"/api/v1/counties/{COUNTY}/aid-standards", json=body, headers=admin)
    assert r.status_code == 200, r.json
    assert r.json["expenditure_min_fen"] == 330_000 and r.json["expenditure_max_fen"] == 1_320_000
    r = client.get(f"/api/v1/counties/{COUNTY}/aid-standards", headers=supervisor)
    assert r.status_code == 200 and r.json["urban_monthly_fen"] == 110_000
    assert (
        client.put(
            f"/api/v1/counties/{COUNTY}/aid-standards", json=body, headers=supervisor
        ).status_code
        == 403
    )
    assert (
        client.get(
            f"/api/v1/counties/{COUNTY}/aid-standards", headers=auth(app, p.duty)
        ).status_code
        == 403
    )
    assert (
        client.get("/api/v1/counties/371103/aid-standards", headers=supervisor).status_code == 404
    )
    r = client.put(
        f"/api/v1/counties/{COUNTY}/aid-standards",
        json={**body, "urban_monthly_fen": 1100.5},
        headers=admin,
    )
    assert r.status_code == 422
    r = client.put("/api/v1/counties/371102001/aid-standards", json=body, headers=admin)
    assert r.status_code == 404
    assert client.get("/api/v1/counties/371103/aid-standards", headers=admin).status_code == 404


def test_standards_cli(app, session):
    runner = app.test_cli_runner()
    result = runner.invoke(
        args=[
            "standards",
            "set",
            "--county",
            "371103",
            "--urban",
            "1050",
            "--rural",
            "840.5",
            "--urgent-cap",
            "2000",
            "--approval-cap",
            "12600",
        ]
    )
    assert result.exit_code == 0, result.output
    result = runner.invoke(args=["standards", "show", "--county", "371103"])
    assert "urban 1050.00 rural 840.50" in result.output
    assert "expenditure 3150.00–12600.00" in result.output
    bad = runner.invoke(
        args=[
            "standards",
            "set",
            "--county",
            "371103",
            "--urban",
            "10.001",
            "--rural",
            "1",
            "--urgent-cap",
            "1",
            "--approval-cap",
            "1",
        ]
    )
    assert bad.exit_code != 0


def test_demo_seed_sets_standards(app, session):
    assert money.seed_demo_standards(session, city="3711") == 5
    assert money.seed_demo_standards(session, city="3711") == 0
    assert money.get_standard(session, "371122").urban_monthly_fen == URBAN
