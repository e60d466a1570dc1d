"""``flask staff create/disable/enable/unlock/reset-password`` and ``flask demo seed``."""

from __future__ import annotations

from sqlalchemy import func, select

from server.accounts import service
from server.accounts.models import Account
from server.accounts.passwords import verify_password
from server.audit import AuditEntry
from server.db import utcnow
from server.divisions.models import Division
from server.roster.service import pagers_for_township
from tests import factories


def _run(app, *args):
    return app.test_cli_runner().invoke(args=list(args))


def _create(
    app, username="duty9", password="a-long-password", role="duty", region="371102004", *extra
):
    return _run(
        app,
        "staff",
        "create",
        "--username",
        username,
        "--password",
        password,
        "--role",
        role,
        "--region",
        region,
        *extra,
    )


def test_staff_create(app, session):
    result = _create(app, "duty9", "a-long-password", "duty", "371102004", "--phone", "13812345678")
    assert result.exit_code == 0, result.output
    assert "a-long-password" not in result.output
    account = session.scalars(select(Account).where(Account.username == "duty9")).one()
    assert account.role == "duty" and account.region_code == "371102004"
    assert account.phone == "+8613812345678"
    assert verify_password(account.password_hash, "a-long-password")


def test_staff_create_refusals(app, session):
    assert _create(app).exit_code == 0
    assert _create(app).exit_code != 0  # username taken
    assert _create(app, "s1", "a-long-password", "supervisor", "371102004").exit_code != 0
    assert _create(app, "s2", "short", "duty", "371102004").exit_code != 0
    assert _create(app, "s3", "a-long-password", "duty", "999999999").exit_code != 0
    assert _create(app, "s4", "a-long-password", "resident", "371102004").exit_code != 0
    assert _create(app, "s5", "a-long-password", "admin", "3711").exit_code == 0


def test_staff_disable_ends_sessions(app, client, session):
    account = factories.staff(session, role="duty", region="371102004", username="duty7")
    headers = factories.auth(app, account)
    assert client.get("/api/v1/me", headers=headers).status_code == 200
    result = _run(app, "staff", "disable", "--username", "duty7")
    assert result.exit_code == 0, result.output
    assert client.get("/api/v1/me", headers=headers).status_code == 401
    login = {"username": "duty7", "password": factories._PASSWORD}
    assert client.post("/api/v1/auth/staff-token", json=login).status_code == 403
    assert _run(app, "staff", "enable", "--username", "duty7").exit_code == 0
    assert client.post("/api/v1/auth/staff-token", json=login).status_code == 200
    assert _run(app, "staff", "disable", "--username", "nobody").exit_code != 0


def test_staff_unlock_lifts_the_sign_in_wait(app, client, session):
    app.config["STAFF_THROTTLE_FREE_FAILURES"] = 0
    factories.staff(session, role="duty", region="371102004", username="duty8")
    wrong = {"username": "duty8", "password": "wrong"}
    for address in ("10.0.0.1", "10.0.0.2"):
        resp = client.post(
            "/api/v1/auth/staff-token", json=wrong, environ_base={"REMOTE_ADDR": address}
        )
        assert resp.status_code == 429
    login = {"username": "duty8", "password": factories._PASSWORD}
    for address in ("10.0.0.1", "10.0.0.2"):
        resp = client.post(
            "/api/v1/auth/staff-token", json=login, environ_base={"REMOTE_ADDR": address}
        )
        assert resp.status_code == 429
    result = _run(app, "staff", "unlock", "--username", "duty8")
    assert result.exit_code == 0 and "2 waiting" in result.output, result.output
    for address in ("10.0.0.1", "10.0.0.2"):
        resp = client.post(
            "/api/v1/auth/staff-token", json=login, environ_base={"REMOTE_ADDR": address}
        )
        assert resp.status_code == 200, resp.get_json()
    assert _run(app, "staff", "unlock", "--username", "nobody").exit_code != 0


def test_demo_seed_prints_credentials_once(app, session, monkeypatch):
    # argon2 for ~70 accounts would dominate the suite; the hashing itself is tested elsewhere.
    monkeypatch.setattr(service, "hash_password", lambda p: f"plain:{p}")
    first = _run(app, "demo", "seed")
    assert first.exit_code == 0, first.output
    lines = [line.split() for line in first.output.splitlines()[1:]]
    by_role: dict[str, list[list[str]]] = {}
    for line in lines:
        by_role.setdefault(line[0], []).append(line)
    townships = session.scalar(
        select(func.count()).where(Division.level == "township", Division.code.startswith("3711"))
    )
    assert len(by_role["duty"]) == townships > 50
    assert len(by_role["admin"]) == 1 and len(by_role["operator"]) == 1
    assert {line[3] for line in by_role["supervisor"]} >= {"371102", "371121", "371122"}
    # Every printed password is that account's password.
    role, username, password, region = lines[0]
    stored = session.scalar(select(Account.password_hash).where(Account.username == username))
    assert stored == f"plain:{password}"
    # Demo duty officers have phones and are on the roster, so a demo urgent tap pages one.
    pagers, who = pagers_for_township(session, township_code="371102004", at=utcnow())
    assert who == "duty"
    duty = session.scalar(select(Account.id).where(Account.username == "duty371102004"))
    assert [p.id for p in pagers] == [duty]
    assert pagers[0].phone and pagers[0].phone.startswith("+86170")

    second = _run(app, "demo", "seed")
    assert second.exit_code == 0
    assert "already present" in second.output
    assert password not in second.output


def _reset(app, username):
    result = _run(app, "staff", "reset-password", "--username", username)
    assert result.exit_code == 0, result.output
    password = result.output.splitlines()[1].strip()
    assert len(password) >= 10
    return result, password


def test_staff_reset_password(app, client, session, caplog):
    free_failures = app.config["STAFF_THROTTLE_FREE_FAILURES"]
    app.config["STAFF_THROTTLE_FREE_FAILURES"] = 0
    account = factories.staff(session, role="duty", region="371102004", username="duty6")
    headers = factories.auth(app, account)
    wrong = {"username": "duty6", "password": "wrong"}
    assert client.post("/api/v1/auth/staff-token", json=wrong).status_code == 429
    app.config["STAFF_THROTTLE_FREE_FAILURES"] = free_failures
    old_hash = account.password_hash

    result, password = _reset(app, "duty6")

    session.refresh(account)
    assert account.must_change_password is True
    assert account.password_hash != old_hash and password not in account.password_hash
    # Its sessions ended; the sign-in wait from the failures above is lifted.
    assert client.get("/api/v1/me", headers=headers).status_code == 401
    old = {"username": "duty6", "password": factories._PASSWORD}
    assert client.post("/api/v1/auth/staff-token", json=old).status_code == 401
    new = {"username": "duty6", "password": password}
    resp = client.post("/api/v1/auth/staff-token", json=new)
    assert resp.status_code == 200, resp.get_json()
    entry = session.scalars(
        select(AuditEntry).where(
            AuditEntry.action == "account.password_reset",
            AuditEntry.target_id == str(account.id),
        )
    ).one()
    # Printed once, and nowhere else: not in the audit entry, not in the logs.
    assert result.output.count(password) == 1
    assert password not in repr(entry.data)
    assert password not in caplog.text
    # A second reset prints a new one; the first is never shown again and stops working.
    again, second = _reset(app, "duty6")
    assert second != password and password not in again.output
    assert client.post("/api/v1/auth/staff-token", json=new).status_code == 401


def test_staff_reset_password_refusals(app, session):
    result = _run(app, "staff", "reset-password", "--username", "nobody")
    assert result.exit_code != 0
    assert "no such staff account: nobody" in result.output
    factories.resident(session, username="resident5")
    result = _run(app, "staff", "reset-password", "--username", "resident5")
    assert result.exit_code != 0
