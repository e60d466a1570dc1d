"""Bugs the reliability suites found, pinned by name (the catalogue rows find them too)."""

from __future__ import annotations

from tests.fake_twilio import AUTH_TOKEN, PUBLIC_BASE_URL, sign
from tests.reliability import support as r


def test_nul_in_a_plain_string_field_is_422_not_500(app, client, session):
    """PostgreSQL cannot store NUL: it used to reach the INSERT and fail as a 500."""
    app.config.update(TWILIO_AUTH_TOKEN=AUTH_TOKEN, PUBLIC_BASE_URL=PUBLIC_BASE_URL)
    path = "/api/v1/webhooks/twilio/status"
    form = {"MessageSid": "SM\x00x", "MessageStatus": "delivered"}
    before = r.row_counts(session)
    resp = client.post(
        path, data=form, headers={"X-Twilio-Signature": sign(PUBLIC_BASE_URL + path, form)}
    )
    assert resp.status_code == 422, resp.get_json()
    assert set(r.assert_error_shape(resp)["errors"]) == {"MessageSid"}
    assert r.row_counts(session) == before


def test_task_id_beyond_the_integer_range_is_404_not_500(app, client, session):
    """A 20-digit task id used to overflow the database integer (500)."""
    world = r.seed_world(app, session)
    resp = client.post(
        f"/api/v1/cases/{world.case_id}/callback-tasks/99999999999999999999/done",
        json={},
        headers=world.auth("duty"),
    )
    assert resp.status_code == 404
    r.assert_error_shape(resp)


def test_lone_surrogate_in_a_plain_string_field_is_422_not_500(client, session):
    """A JSON-escaped lone surrogate used to reach .encode() (password, token hash): 500."""
    for path, body in [
        ("/api/v1/auth/staff-token", b'{"username": "a\\ud800", "password": "x"}'),
        ("/api/v1/auth/refresh", b'{"refresh_token": "\\udfff"}'),
    ]:
        resp = client.post(path, data=body, content_type="application/json")
        assert resp.status_code == 422, (path, resp.get_json())
        assert r.assert_error_shape(resp)["errors"]


def test_rare_cjk_and_emoji_names_and_addresses_are_stored_intact(app, client, session):
    """Names are masked in responses, so the catalogue cannot see them: check the database."""
    import uuid

    from server.accounts.models import Account
    from server.cases.models import Case
    from tests import factories as f

    name, address = "𠀀𪚥😀王", "𡃁村👨‍👩‍👧 3号"
    operator = f.staff(session, role="operator", region=r.CITY)
    resp = client.post(
        "/api/v1/intake",
        json={
            "phone": "13712340099",
            "name": name,
            "channel": "hotline",
            "urgent": True,
            "address": address,
        },
        headers={**f.auth(app, operator), "Idempotency-Key": "cjk"},
    )
    assert resp.status_code == 201, resp.get_json()
    assert resp.get_json()["address"] == address
    case = session.get(Case, uuid.UUID(resp.get_json()["id"]))
    assert case.address == address
    assert session.get(Account, case.resident_id).name == name


def test_issue_19_inputs_that_were_500s_are_422(app, client, session):
    """The attack run's 500s (overflowing dates, a from after the default to, a pay time that
    overflows when converted to UTC, a lone surrogate in a key) are clear 422s now."""
    from tests.factories import auth
    from tests.workflow_support import case_in, people

    world = r.seed_world(app, session)
    sla = f"/api/v1/counties/{r.COUNTY}/sla"
    for query, field in [
        ("from=0001-01-01", "from"),
        ("to=9999-12-31", "to"),
        ("from=2099-01-01", "from"),  # after the default end (today): reversed
        ("from=2026-05-02&to=2026-05-01", "from"),
    ]:
        resp = client.get(f"{sla}?{query}", headers=world.auth("supervisor"))
        assert resp.status_code == 422, (query, resp.get_json())
        assert set(r.assert_error_shape(resp)["errors"]) == {field}, query
    p = people(session)
    case = case_in(session, "claimed", p)
    duty = auth(app, p.duty)
    before = r.row_counts(session)
    resp = client.post(
        f"/api/v1/cases/{case.id}/actions",
        json={
            "action": "pay",
            "amount_fen": 100,
            "method": "cash",
            "paid_at": "9999-12-31T23:00:00-05:00",
        },
        headers=duty,
    )
    assert resp.status_code == 422, resp.get_json()
    assert set(r.assert_error_shape(resp)["errors"]) == {"paid_at"}
    resp = client.post(
        "/api/v1/urgent-requests",
        data=b'{"\\ud800": 1}',
        content_type="application/json",
        headers={**world.auth("resident"), "Idempotency-Key": "surrogate-key"},
    )
    assert resp.status_code == 422, resp.get_data()
    assert r.assert_error_shape(resp)["errors"] == {"\\ud800": ["字段名包含无效字符。"]}
    assert r.row_counts(session) == before
