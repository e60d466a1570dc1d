"""Resident sign-in: phone + SMS code -> tokens; wrong, expired and reused codes."""

from __future__ import annotations

import datetime as dt

import pytest
from sqlalchemy import select, update

from notifications.models import SmsOutbox
from server.accounts.models import Account, SignInCode
from server.db import utcnow
from tests import factories
from tests.signin import bearer, latest_code, request_code, sign_in

PHONE = "+8613812345678"


def _token(client, phone, code):
    return client.post("/api/v1/auth/token", json={"phone": phone, "code": code})


def test_happy_path_creates_resident_once(client, session):
    resp = client.post("/api/v1/auth/sms-code", json={"phone": "13812345678"})
    assert resp.status_code == 202
    body = resp.get_json()
    assert body == {"expires_in": 300, "resend_after": 60}
    code = latest_code(session, PHONE)
    assert len(code) == 6 and code.isdigit()
    assert code not in resp.get_data(as_text=True)

    resp = _token(client, "13812345678", code)
    assert resp.status_code == 200, resp.get_json()
    tokens = resp.get_json()
    assert tokens["token_type"] == "Bearer"
    assert tokens["expires_in"] == 900
    assert tokens["access_token"] and tokens["refresh_token"]
    assert code not in resp.get_data(as_text=True)

    accounts = session.scalars(select(Account).where(Account.phone == PHONE)).all()
    assert [(a.role, a.phone) for a in accounts] == [("resident", PHONE)]

    me = client.get("/api/v1/me", headers=bearer(tokens))
    assert me.status_code == 200
    assert me.get_json()["phone"] == PHONE and me.get_json()["role"] == "resident"

    # Signing in again (a second device, a minute later) reaches the same account.
    from server.limits import limiter

    limiter.reset()
    tokens2 = sign_in(client, session, PHONE)
    me2 = client.get("/api/v1/me", headers=bearer(tokens2)).get_json()
    assert me2["id"] == me.get_json()["id"]


@pytest.mark.parametrize("raw", ["13812345678", "+86 138 1234 5678", "008613812345678"])
def test_phone_formats_normalised(client, session, raw):
    code = request_code(client, session, raw, e164=PHONE)
    resp = _token(client, raw, code)
    assert resp.status_code == 200
    assert session.scalar(select(Account.phone).where(Account.phone == PHONE)) == PHONE


@pytest.mark.parametrize(
    "raw", ["12345", "1381234567a", "+1 202 555 0100", "", "010-1234", "+86 10 6552 9988"]
)
def test_invalid_phone_is_field_error(client, raw):
    resp = client.post("/api/v1/auth/sms-code", json={"phone": raw})
    assert resp.status_code == 422
    body = resp.get_json()
    assert body["code"] == "validation_error" and "phone" in body["errors"]


def test_missing_and_malformed_fields(client):
    assert client.post("/api/v1/auth/sms-code", json={}).status_code == 422
    resp = _token(client, PHONE, "12ab56")
    assert resp.status_code == 422 and "code" in resp.get_json()["errors"]
    resp = client.post("/api/v1/auth/token", json={"phone": PHONE, "code": "123456", "x": 1})
    assert resp.status_code == 422 and "x" in resp.get_json()["errors"]


def test_code_is_stored_hashed_with_expiry(client, session):
    code = request_code(client, session, PHONE)
    row = session.scalars(select(SignInCode).where(SignInCode.phone == PHONE)).one()
    assert code not in row.code_hash and len(row.code_hash) == 64
    assert (
        dt.timedelta(minutes=4, seconds=50) < row.expires_at - utcnow() <= dt.timedelta(minutes=5)
    )
    sms = session.scalars(select(SmsOutbox).where(SmsOutbox.to_phone == PHONE)).one()
    assert sms.template == "sign_in_code" and code not in sms.body and "******" in sms.body
    assert code not in str(sms.params)  # sealed, even while the SMS waits to be sent


def test_wrong_code_counts_and_kills_after_five(client, session):
    code = request_code(client, session, PHONE)
    wrong = f"{(int(code) + 1) % 1_000_000:06d}"
    for left in (4, 3, 2, 1):
        resp = _token(client, PHONE, wrong)
        assert resp.status_code == 401
        body = resp.get_json()
        assert body["code"] == "code_invalid"
        assert str(left) in body["errors"]["code"][0]
    # The tries survived the error responses (committed despite the 401).
    session.expire_all()
    assert session.scalar(select(SignInCode.attempts).where(SignInCode.phone == PHONE)) == 4
    resp = _token(client, PHONE, wrong)
    assert resp.status_code == 401 and resp.get_json()["code"] == "code_expired"
    # Dead now, even with the right code.
    resp = _token(client, PHONE, code)
    assert resp.status_code == 401 and resp.get_json()["code"] == "code_expired"
    assert session.scalar(select(Account.id).where(Account.phone == PHONE)) is None


def test_expired_code_refused(client, session):
    code = request_code(client, session, PHONE)
    session.execute(
        update(SignInCode)
        .where(SignInCode.phone == PHONE)
        .values(expires_at=utcnow() - dt.timedelta(seconds=1))
    )
    session.flush()
    resp = _token(client, PHONE, code)
    assert resp.status_code == 401
    assert resp.get_json()["code"] == "code_expired"


def test_code_single_use(client, session):
    code = request_code(client, session, PHONE)
    assert _token(client, PHONE, code).status_code == 200
    resp = _token(client, PHONE, code)
    assert resp.status_code == 401 and resp.get_json()["code"] == "code_expired"


def test_no_code_requested(client):
    resp = _token(client, PHONE, "123456")
    assert resp.status_code == 401 and resp.get_json()["code"] == "code_expired"


def test_new_code_replaces_old(client, session):
    from server.limits import limiter

    first = request_code(client, session, PHONE)
    limiter.reset()
    second = request_code(client, session, PHONE)
    if first != second:
        assert _token(client, PHONE, first).status_code == 401
    assert _token(client, PHONE, second).status_code == 200


def test_code_bound_to_phone(client, session):
    code = request_code(client, session, PHONE)
    other = "+8613912345678"
    request_code(client, session, other)
    resp = _token(client, other, code)
    # Another phone's code does not work (unless the two random codes happen to coincide).
    assert resp.status_code in (200, 401)
    if latest_code(session, other) != code:
        assert resp.status_code == 401


def test_disabled_resident_cannot_sign_in(client, session):
    factories.resident(session, phone=PHONE, active=False)
    code = request_code(client, session, PHONE)
    resp = _token(client, PHONE, code)
    assert resp.status_code == 403 and resp.get_json()["code"] == "account_disabled"


def test_english_messages(client, session):
    request_code(client, session, PHONE)
    resp = client.post(
        "/api/v1/auth/token",
        json={"phone": PHONE, "code": "000000"},
        headers={"Accept-Language": "en"},
    )
    assert resp.status_code == 401
    assert resp.get_json()["message"] in {
        "Wrong code; 4 tries left.",
        "The code is no longer valid; request a new one.",
    }
