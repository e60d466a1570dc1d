"""GET/PATCH /api/v1/me: the resident's profile; staff read their own, read-only."""

from __future__ import annotations

from sqlalchemy import select

from server.accounts.idnumbers import decrypt_id_number
from server.accounts.models import Account
from server.audit import AuditEntry
from tests import factories
from tests.conftest import SENSITIVE

ID = "371102199001011232"
SENSITIVE.add(ID)


def test_resident_reads_profile(app, client, session):
    account = factories.resident(session, phone="+8613812345678", name="张三")
    resp = client.get("/api/v1/me", headers=factories.auth(app, account))
    assert resp.status_code == 200
    body = resp.get_json()
    assert body["id"] == account.id and body["role"] == "resident"
    assert body["role_label"] == "居民" and body["name"] == "张三"
    assert body["phone"] == "+8613812345678" and body["id_number_masked"] is None


def test_resident_updates_profile(app, client, session):
    account = factories.resident(session)
    headers = factories.auth(app, account)
    resp = client.patch(
        "/api/v1/me",
        json={
            "name": "  李四 ",
            "id_number": ID.lower(),
            "residence_township_code": "371102004",
            "hukou_township_code": "371121001",
        },
        headers=headers,
    )
    assert resp.status_code == 200, resp.get_json()
    body = resp.get_json()
    assert body["name"] == "李四"
    assert body["id_number_masked"] == "371102********1232"
    assert body["residence_township_code"] == "371102004"
    assert body["residence_township_name"].startswith("山东省日照市东港区")
    assert body["hukou_township_code"] == "371121001"
    assert ID not in resp.get_data(as_text=True)
    assert "id_number" not in body

    session.expire_all()
    row = session.get(Account, account.id)
    assert row.id_number_masked == "371102********1232"
    with app.app_context():
        assert decrypt_id_number(row.id_number_enc) == ID
    assert ID not in (row.id_number_hash or "")

    audit = session.scalars(
        select(AuditEntry).where(AuditEntry.action == "account.profile_update")
    ).one()
    assert audit.target_id == str(account.id)
    assert sorted(audit.data["fields"]) == sorted(
        ["name", "id_number", "residence_township_code", "hukou_township_code"]
    )
    assert ID not in str(audit.data)


def test_partial_update_and_clear(app, client, session):
    account = factories.resident(session, name="王五")
    headers = factories.auth(app, account)
    client.patch("/api/v1/me", json={"id_number": ID}, headers=headers)
    body = client.patch("/api/v1/me", json={"name": "王五五"}, headers=headers).get_json()
    assert body["id_number_masked"] == "371102********1232" and body["name"] == "王五五"
    body = client.patch(
        "/api/v1/me", json={"id_number": None, "name": None}, headers=headers
    ).get_json()
    assert body["id_number_masked"] is None and body["name"] is None
    session.expire_all()
    row = session.get(Account, account.id)
    assert row.id_number_enc is None and row.id_number_hash is None


def test_invalid_fields_are_422(app, client, session):
    headers = factories.auth(app, factories.resident(session))
    cases = [
        ({"id_number": "371102199001011233"}, "id_number"),
        ({"id_number": "12345"}, "id_number"),
        ({"residence_township_code": "371102"}, "residence_township_code"),  # a county
        ({"residence_township_code": "999999999"}, "residence_township_code"),
        ({"hukou_township_code": "abc"}, "hukou_township_code"),
        ({"name": "a\x00b"}, "name"),
        ({"name": "x" * 51}, "name"),
        ({"phone": "+8613900000000"}, "phone"),  # not changeable here
        ({"role": "admin"}, "role"),
    ]
    for payload, field in cases:
        resp = client.patch("/api/v1/me", json=payload, headers=headers)
        assert resp.status_code == 422, (payload, resp.get_json())
        assert field in resp.get_json()["errors"], (payload, resp.get_json())
        assert "371102199001011233" not in resp.get_data(as_text=True)


def test_staff_read_only(app, client, session):
    staff = factories.staff(session, role="supervisor", region="371102", name="督导")
    headers = factories.auth(app, staff)
    body = client.get("/api/v1/me", headers=headers).get_json()
    assert body["role"] == "supervisor" and body["region_code"] == "371102"
    assert body["region_name"] == "山东省日照市东港区"
    resp = client.patch("/api/v1/me", json={"name": "x"}, headers=headers)
    assert resp.status_code == 403


def test_anonymous_401(client):
    assert client.get("/api/v1/me").status_code == 401
    assert client.patch("/api/v1/me", json={"name": "x"}).status_code == 401


def test_an_id_number_bound_to_another_account_is_refused(app, client, session):
    holder = factories.resident(session)
    other = factories.resident(session)
    assert (
        client.patch("/api/v1/me", json={"id_number": ID}, headers=factories.auth(app, holder))
    ).status_code == 200
    resp = client.patch(
        "/api/v1/me", json={"name": "王五", "id_number": ID}, headers=factories.auth(app, other)
    )
    assert resp.status_code == 409, resp.get_json()
    body = resp.get_json()
    assert body["code"] == "id_number_taken" and "12349" in body["message"]
    assert ID not in str(body)
    session.expire_all()
    refused = session.get(Account, other.id)
    assert refused.id_number_hash is None and refused.name is None  # nothing half-written
    en = client.patch(
        "/api/v1/me",
        json={"id_number": ID},
        headers={**factories.auth(app, other), "Accept-Language": "en"},
    )
    assert en.status_code == 409 and "hotline" in en.get_json()["message"]
    # the holder binding it again is no conflict
    again = client.patch("/api/v1/me", json={"id_number": ID}, headers=factories.auth(app, holder))
    assert again.status_code == 200


def test_the_database_refuses_one_id_number_on_two_accounts(session):
    import pytest
    from sqlalchemy.exc import IntegrityError

    a, b = factories.resident(session), factories.resident(session)
    a.id_number_hash = b.id_number_hash = "f" * 64
    with pytest.raises(IntegrityError), session.begin_nested():
        session.flush()
