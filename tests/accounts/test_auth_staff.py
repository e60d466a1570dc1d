"""Staff sign-in: argon2 passwords, throttling per (username, address), disabled accounts."""

from __future__ import annotations

import datetime as dt

import jwt
from sqlalchemy import select

from server.accounts.models import Account, StaffSignInThrottle
from server.db import utcnow
from tests import factories
from tests.signin import bearer

PASSWORD = factories._PASSWORD


def _login(client, username, password=PASSWORD):
    return client.post(
        "/api/v1/auth/staff-token", json={"username": username, "password": password}
    )


def test_staff_sign_in_carries_role_and_region(app, client, session):
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


def test_password_is_argon2(session):
    factories.staff(session, role="admin", region="3711", username="adm")
    stored = session.scalar(select(Account.password_hash).where(Account.username == "adm"))
    assert stored.startswith("$argon2id$") and PASSWORD not in stored


def test_wrong_password_and_unknown_user_look_alike(client, session):
    factories.staff(session, role="duty", region="371102004", username="duty1")
    a = _login(client, "duty1", "wrong password")
    b = _login(client, "nobody", "wrong password")
    assert a.status_code == b.status_code == 401
    assert a.get_json() == b.get_json()
    assert a.get_json()["code"] == "invalid_credentials"


def _throttle(session, username):
    session.expire_all()
    return session.scalars(
        select(StaffSignInThrottle).where(StaffSignInThrottle.username == username)
    ).all()


def _expire_wait(session, username):
    for row in _throttle(session, username):
        row.blocked_until = utcnow() - dt.timedelta(seconds=1)
    session.flush()


def test_failures_slow_that_address_only(app, client, session):
    app.config["STAFF_THROTTLE_FREE_FAILURES"] = 3
    factories.staff(session, role="duty", region="371102004", username="duty1")
    for _ in range(3):
        assert _login(client, "duty1", "bad").status_code == 401
    resp = _login(client, "duty1", "bad")
    assert resp.status_code == 429
    body = resp.get_json()
    assert body["code"] == "sign_in_throttled"
    assert 25 <= int(resp.headers["Retry-After"]) <= 30
    # Chinese by default, and it says what to do: wait, or ask the supervisor or admin.
    assert "1 分钟后再试" in body["message"]
    assert "督导员" in body["message"] and "管理员" in body["message"]
    # While the wait lasts even the right password is refused from that address ...
    assert _login(client, "duty1").status_code == 429
    # ... but whoever typed those passwords cannot keep the officer out elsewhere.
    elsewhere = client.post(
        "/api/v1/auth/staff-token",
        json={"username": "duty1", "password": PASSWORD},
        environ_base={"REMOTE_ADDR": "10.0.0.7"},
    )
    assert elsewhere.status_code == 200, elsewhere.get_json()
    english = client.post(
        "/api/v1/auth/staff-token",
        json={"username": "duty1", "password": PASSWORD},
        headers={"Accept-Language": "en"},
    )
    assert english.status_code == 429 and "supervisor" in english.get_json()["message"]


def test_waits_grow_with_each_further_failure(app, client, session):
    app.config.update(
        STAFF_THROTTLE_FREE_FAILURES=2,
        STAFF_THROTTLE_BASE_SECONDS=30,
        STAFF_THROTTLE_MAX_SECONDS=100,
    )
    factories.staff(session, role="duty", region="371102004", username="duty1")
    _login(client, "duty1", "bad")
    _login(client, "duty1", "bad")
    waits = []
    for _ in range(4):
        resp = _login(client, "duty1", "bad")
        assert resp.status_code == 429
        waits.append(int(resp.headers["Retry-After"]))
        _expire_wait(session, "duty1")
    assert [w // 10 for w in waits] == [3, 6, 10, 10]  # 30, 60, then the 100 s cap
    # The wait is over: the right password works and the address starts afresh.
    assert _login(client, "duty1").status_code == 200
    assert _throttle(session, "duty1") == []


def test_unknown_username_is_throttled_alike(app, client, session):
    app.config["STAFF_THROTTLE_FREE_FAILURES"] = 2
    factories.staff(session, role="duty", region="371102004", username="duty1")
    known = [_login(client, "duty1", "bad") for _ in range(4)]
    unknown = [_login(client, "nobody", "bad") for _ in range(4)]
    for a, b in zip(known, unknown, strict=True):
        assert a.status_code == b.status_code
        assert a.get_json() == b.get_json()
        assert a.headers.get("Retry-After") == b.headers.get("Retry-After")
    assert [r.status_code for r in known] == [401, 401, 429, 429]


def test_success_resets_failure_count(app, client, session):
    app.config["STAFF_THROTTLE_FREE_FAILURES"] = 2
    factories.staff(session, role="duty", region="371102004", username="duty1")
    _login(client, "duty1", "bad")
    _login(client, "duty1", "bad")
    assert _login(client, "duty1").status_code == 200
    assert _throttle(session, "duty1") == []
    assert _login(client, "duty1", "bad").status_code == 401  # two free failures again


def test_client_address_is_not_stored_in_clear(client, session):
    client.post(
        "/api/v1/auth/staff-token",
        json={"username": "duty1", "password": "bad"},
        environ_base={"REMOTE_ADDR": "10.1.2.3"},
    )
    (row,) = _throttle(session, "duty1")
    assert row.failures == 1 and "10.1.2.3" not in row.client_hash


def test_sign_in_answers_do_the_same_work(app, client, session):
    """Unknown user, known user with a wrong password, throttled: each verifies exactly one
    argon2 hash made with the parameters in use, so their timing tells nothing. (Counted, not
    timed: wall-clock comparisons are unreliable on a shared machine.)"""
    from argon2 import extract_parameters

    from server.accounts import passwords

    real = passwords._hasher
    verified: list[str] = []

    class Spy(type(real)):
        def verify(self, hash, password):
            verified.append(hash)
            return super().verify(hash, password)

    spy = Spy.from_parameters(real._parameters)
    passwords._hasher = spy
    try:
        app.config["STAFF_THROTTLE_FREE_FAILURES"] = 1
        duty = factories.staff(session, role="duty", region="371102004", username="duty1")
        duty.password_hash = passwords.hash_password(PASSWORD)
        session.flush()

        def attempt(username: str, address: str) -> tuple[int, list[str]]:
            verified.clear()
            resp = client.post(
                "/api/v1/auth/staff-token",
                json={"username": username, "password": "wrong password"},
                environ_base={"REMOTE_ADDR": address},
            )
            return resp.status_code, list(verified)

        for _ in range(2):
            attempt("duty1", "10.9.9.9")  # this address is now waiting
        answers = {
            "known": attempt("duty1", "10.0.1.1"),
            "unknown": attempt("nobody", "10.0.2.1"),
            "throttled": attempt("duty1", "10.9.9.9"),
        }
    finally:
        passwords._hasher = real
    assert {kind: status for kind, (status, _) in answers.items()} == {
        "known": 401,
        "unknown": 401,
        "throttled": 429,
    }
    for kind, (_, hashes) in answers.items():
        assert len(hashes) == 1, (kind, hashes)
        assert extract_parameters(hashes[0]) == spy._parameters, kind


def test_disabled_staff_cannot_sign_in(client, session):
    factories.staff(session, role="duty", region="371102004", username="duty1", active=False)
    resp = _login(client, "duty1")
    assert resp.status_code == 403 and resp.get_json()["code"] == "account_disabled"
    # The wrong password does not reveal that the account exists and is disabled.
    assert _login(client, "duty1", "bad").get_json()["code"] == "invalid_credentials"


def test_residents_have_no_password_sign_in(client, session):
    factories.resident(session, phone="+8613812345678", username="res", password_hash="x")
    assert _login(client, "res", "x").status_code == 401


def test_password_not_echoed_on_validation_error(client):
    resp = client.post(
        "/api/v1/auth/staff-token", json={"username": "a", "password": "s3cret-pw", "x": 1}
    )
    assert resp.status_code == 422
    assert "s3cret-pw" not in resp.get_data(as_text=True)


def test_sign_ins_and_throttles_audited(app, client, session):
    from server.audit import AuditEntry

    app.config["STAFF_THROTTLE_FREE_FAILURES"] = 0
    account = factories.staff(session, role="duty", region="371102004", username="duty1")
    _login(client, "duty1")
    _login(client, "duty1", "bad")
    actions = session.scalars(
        select(AuditEntry.action).where(AuditEntry.target_id == str(account.id))
    ).all()
    assert sorted(actions) == ["auth.staff_sign_in", "auth.staff_throttled"]


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


def test_a_password_the_administrator_set_must_be_changed_before_the_api_answers(client, session):
    factories.staff(
        session, role="operator", region="3711", username="op-new", must_change_password=True
    )
    resp = _login(client, "op-new")
    assert resp.status_code == 200  # signing in is how the change starts
    tokens = resp.get_json()
    for method, path in (("get", "/api/v1/me"), ("get", "/api/v1/cases?phone=13800000000")):
        refused = getattr(client, method)(path, headers=bearer(tokens))
        assert refused.status_code == 403, path
        body = refused.get_json()
        assert body["code"] == "password_change_required"
        assert "修改密码" in body["message"] and "/console/" in body["message"]
    # Signing out still works: the token's session ends.
    out = client.post("/api/v1/auth/logout", json={}, headers=bearer(tokens))
    assert out.status_code == 204
    assert client.get("/api/v1/me", headers=bearer(tokens)).status_code == 401
    account = session.scalar(select(Account).where(Account.username == "op-new"))
    account.must_change_password = False
    session.flush()
    again = _login(client, "op-new").get_json()
    assert client.get("/api/v1/me", headers=bearer(again)).status_code == 200
