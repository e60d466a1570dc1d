"""Staff sign-in: argon2 passwords, lockout after repeated failures, disabled accounts."""

from __future__ import annotations

import datetime as dt

import jwt
from sqlalchemy import select

from server.accounts.models import Account
from server.db import utcnow
from tests import factories
from tests.signin import bearer

PASSWORD = factories._PASSWORD


def _login(client, username, password=PASSWORD):  # type: ignore[no-untyped-def]
    return client.post(
        "/api/v1/auth/staff-token", json={"username": username, "password": password}
    )


def test_staff_sign_in_carries_role_and_region(app, client, session):  # type: ignore[no-untyped-def]
    duty = factories.staff(session, role="duty", region="371102004", username="duty1")
    resp = _login(client, "duty1")
    assert resp.status_code == 200, resp.get_json()
    tokens = resp.get_json()
    claims = jwt.decode(
        tokens["access_token"], app.config["SECRET_KEY"], algorithms=["HS256"], issuer="aidline"
    )
    assert claims["sub"] == str(duty.id)
    assert claims["role"] == "duty" and claims["region"] == "371102004"
    assert {"exp", "iat", "jti", "sid"} <= set(claims)
    me = client.get("/api/v1/me", headers=bearer(tokens)).get_json()
    assert me["username"] == "duty1" and me["region_code"] == "371102004"


def test_password_is_argon2(session):  # type: ignore[no-untyped-def]
    factories.staff(session, role="admin", region="3711", username="adm")
    stored = session.scalar(select(Account.password_hash).where(Account.username == "adm"))
    assert stored.startswith("$argon2id$") and PASSWORD not in stored


def test_wrong_password_and_unknown_user_look_alike(client, session):  # type: ignore[no-untyped-def]
    factories.staff(session, role="duty", region="371102004", username="duty1")
    a = _login(client, "duty1", "wrong password")
    b = _login(client, "nobody", "wrong password")
    assert a.status_code == b.status_code == 401
    assert a.get_json() == b.get_json()
    assert a.get_json()["code"] == "invalid_credentials"


def test_lockout_after_repeated_failures(app, client, session):  # type: ignore[no-untyped-def]
    app.config["STAFF_LOCKOUT_THRESHOLD"] = 3
    account = factories.staff(session, role="duty", region="371102004", username="duty1")
    assert _login(client, "duty1", "bad").status_code == 401
    assert _login(client, "duty1", "bad").status_code == 401
    session.expire_all()
    assert session.get(Account, account.id).failed_logins == 2  # survived the 401s
    resp = _login(client, "duty1", "bad")
    assert resp.status_code == 429
    assert resp.get_json()["code"] == "account_locked"
    assert 14 * 60 < int(resp.headers["Retry-After"]) <= 15 * 60
    # Even the right password is refused while locked.
    resp = _login(client, "duty1")
    assert resp.status_code == 429 and int(resp.headers["Retry-After"]) > 0
    # When the lock has passed, the right password works and the counters reset.
    session.expire_all()
    row = session.get(Account, account.id)
    row.locked_until = utcnow() - dt.timedelta(seconds=1)
    session.flush()
    assert _login(client, "duty1").status_code == 200
    session.expire_all()
    row = session.get(Account, account.id)
    assert row.failed_logins == 0 and row.locked_until is None


def test_success_resets_failure_count(client, session):  # type: ignore[no-untyped-def]
    account = factories.staff(session, role="duty", region="371102004", username="duty1")
    _login(client, "duty1", "bad")
    assert _login(client, "duty1").status_code == 200
    session.expire_all()
    assert session.get(Account, account.id).failed_logins == 0


def test_disabled_staff_cannot_sign_in(client, session):  # type: ignore[no-untyped-def]
    factories.staff(session, role="duty", region="371102004", username="duty1", active=False)
    resp = _login(client, "duty1")
    assert resp.status_code == 403 and resp.get_json()["code"] == "account_disabled"
    # The wrong password does not reveal that the account exists and is disabled.
    assert _login(client, "duty1", "bad").get_json()["code"] == "invalid_credentials"


def test_residents_have_no_password_sign_in(client, session):  # type: ignore[no-untyped-def]
    factories.resident(session, phone="+8613812345678", username="res", password_hash="x")
    assert _login(client, "res", "x").status_code == 401


def test_password_not_echoed_on_validation_error(client):  # type: ignore[no-untyped-def]
    resp = client.post(
        "/api/v1/auth/staff-token", json={"username": "a", "password": "s3cret-pw", "x": 1}
    )
    assert resp.status_code == 422
    assert "s3cret-pw" not in resp.get_data(as_text=True)


def test_sign_ins_and_lockouts_audited(app, client, session):  # type: ignore[no-untyped-def]
    from server.audit import AuditEntry

    app.config["STAFF_LOCKOUT_THRESHOLD"] = 1
    account = factories.staff(session, role="duty", region="371102004", username="duty1")
    _login(client, "duty1")
    _login(client, "duty1", "bad")
    actions = session.scalars(
        select(AuditEntry.action).where(AuditEntry.target_id == str(account.id))
    ).all()
    assert sorted(actions) == ["auth.staff_locked", "auth.staff_sign_in"]


def test_production_hasher_parameters() -> None:
    # The suite swaps in a cheap hasher (tests/conftest.py); the module's own is argon2id with
    # argon2-cffi's RFC 9106 defaults, checked here on a fresh import.
    import importlib

    from server.accounts import passwords

    fresh = importlib.reload(passwords)
    try:
        assert fresh._hasher.memory_cost >= 65536 and fresh._hasher.time_cost >= 3
        assert fresh.hash_password("x" * 12).startswith("$argon2id$")
    finally:
        from argon2 import PasswordHasher

        fresh._hasher = PasswordHasher(time_cost=1, memory_cost=8, parallelism=1)
