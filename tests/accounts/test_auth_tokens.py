"""Access and refresh tokens: rotation, reuse detection, logout, and forged tokens (401)."""

from __future__ import annotations

import base64
import datetime as dt
import json
import uuid

import jwt
import pytest
from sqlalchemy import select

from server.accounts.models import Account, AuthSession, RefreshToken
from server.db import utcnow
from tests import factories
from tests.signin import bearer, sign_in

PHONE = "+8613812345678"
KEY = "test-secret-key-with-enough-length-for-hs256"


def _refresh(client, token):
    return client.post("/api/v1/auth/refresh", json={"refresh_token": token})


def _me(client, token):
    return client.get("/api/v1/me", headers={"Authorization": f"Bearer {token}"})


def test_refresh_rotates(client, session):
    first = sign_in(client, session, PHONE)
    resp = _refresh(client, first["refresh_token"])
    assert resp.status_code == 200
    second = resp.get_json()
    assert second["refresh_token"] != first["refresh_token"]
    assert second["access_token"] != first["access_token"]
    assert second["token_type"] == "Bearer" and second["expires_in"] == 900
    assert _me(client, second["access_token"]).status_code == 200
    third = _refresh(client, second["refresh_token"])
    assert third.status_code == 200


def test_reuse_revokes_the_whole_family(client, session):
    first = sign_in(client, session, PHONE)
    second = _refresh(client, first["refresh_token"]).get_json()
    third = _refresh(client, second["refresh_token"]).get_json()
    # The old token comes back after its successor was used (a stolen copy): 401, and the
    # family is revoked.
    resp = _refresh(client, first["refresh_token"])
    assert resp.status_code == 401 and resp.get_json()["code"] == "refresh_invalid"
    assert _refresh(client, third["refresh_token"]).status_code == 401
    assert _me(client, third["access_token"]).status_code == 401
    session.expire_all()
    revoked = session.scalars(select(AuthSession.revoked_reason)).all()
    assert revoked == ["reuse"]


def test_retry_after_a_lost_answer_gets_a_new_pair(client, session):
    first = sign_in(client, session, PHONE)
    lost = _refresh(client, first["refresh_token"]).get_json()  # never reached the phone
    retry = _refresh(client, first["refresh_token"])
    assert retry.status_code == 200
    fresh = retry.get_json()
    assert fresh["refresh_token"] != lost["refresh_token"]
    assert _me(client, fresh["access_token"]).status_code == 200
    assert _refresh(client, fresh["refresh_token"]).status_code == 200
    # The pair that was lost is spent: if it turns up now it is a copy.
    assert _refresh(client, lost["refresh_token"]).status_code == 401
    session.expire_all()
    assert session.scalars(select(AuthSession.revoked_reason)).all() == ["reuse"]


def test_a_token_spent_by_a_retry_is_never_accepted(client, session):
    # R0 -> P1 (answer lost), R0 again -> P2: P1 was spent by the retry. If P1 turns up it is a
    # copy: refused, and the session ends, so no second live pair ever comes out of the family.
    first = sign_in(client, session, PHONE)
    p1 = _refresh(client, first["refresh_token"]).get_json()
    p2 = _refresh(client, first["refresh_token"]).get_json()
    resp = _refresh(client, p1["refresh_token"])
    assert resp.status_code == 401 and resp.get_json()["code"] == "refresh_invalid"
    assert _refresh(client, p2["refresh_token"]).status_code == 401
    assert _me(client, p2["access_token"]).status_code == 401
    session.expire_all()
    assert session.scalars(select(AuthSession.revoked_reason)).all() == ["reuse"]


def test_one_live_refresh_token_per_family_after_a_retry(client, session):
    first = sign_in(client, session, PHONE)
    _refresh(client, first["refresh_token"])
    p2 = _refresh(client, first["refresh_token"]).get_json()
    session.expire_all()
    live = session.scalars(select(RefreshToken).where(RefreshToken.used_at.is_(None))).all()
    assert len(live) == 1
    # The rightful client carries on with P2, and P2's successor in turn.
    p3 = _refresh(client, p2["refresh_token"])
    assert p3.status_code == 200, p3.get_json()
    assert _refresh(client, p3.get_json()["refresh_token"]).status_code == 200


def test_reuse_after_the_grace_period_revokes(client, session):
    first = sign_in(client, session, PHONE)
    _refresh(client, first["refresh_token"])
    spent = session.scalar(select(RefreshToken).where(RefreshToken.used_at.is_not(None)))
    spent.used_at = utcnow() - dt.timedelta(seconds=31)
    session.flush()
    assert _refresh(client, first["refresh_token"]).status_code == 401
    session.expire_all()
    assert session.scalars(select(AuthSession.revoked_reason)).all() == ["reuse"]


def test_reuse_leaves_other_devices_alone(client, session):
    from server.limits import limiter

    phone_a = sign_in(client, session, PHONE)
    limiter.reset()
    phone_b = sign_in(client, session, PHONE)
    next_a = _refresh(client, phone_a["refresh_token"]).get_json()
    _refresh(client, next_a["refresh_token"])
    assert _refresh(client, phone_a["refresh_token"]).status_code == 401  # reuse on device A
    assert _me(client, phone_b["access_token"]).status_code == 200
    assert _refresh(client, phone_b["refresh_token"]).status_code == 200


def test_unknown_and_expired_refresh(client, session):
    assert _refresh(client, "not-a-token").status_code == 401
    tokens = sign_in(client, session, PHONE)
    for row in session.scalars(select(RefreshToken)):
        row.expires_at = utcnow() - dt.timedelta(seconds=1)
    session.flush()
    assert _refresh(client, tokens["refresh_token"]).status_code == 401


def test_refresh_tokens_stored_as_hashes(client, session):
    tokens = sign_in(client, session, PHONE)
    hashes = session.scalars(select(RefreshToken.token_hash)).all()
    assert len(hashes) == 1 and tokens["refresh_token"] not in hashes[0]


def test_logout_revokes(client, session):
    tokens = sign_in(client, session, PHONE)
    resp = client.post("/api/v1/auth/logout", json={"refresh_token": tokens["refresh_token"]})
    assert resp.status_code == 204
    assert _refresh(client, tokens["refresh_token"]).status_code == 401
    assert _me(client, tokens["access_token"]).status_code == 401
    # Logging out twice, or with an unknown token, is harmless.
    assert client.post("/api/v1/auth/logout", json={"refresh_token": "x"}).status_code == 204


def test_logout_with_bearer_only(client, session):
    tokens = sign_in(client, session, PHONE)
    resp = client.post("/api/v1/auth/logout", json={}, headers=bearer(tokens))
    assert resp.status_code == 204
    assert _me(client, tokens["access_token"]).status_code == 401
    assert _refresh(client, tokens["refresh_token"]).status_code == 401


def test_disabled_account_stops_at_once(client, session):
    tokens = sign_in(client, session, PHONE)
    account = session.scalars(select(Account).where(Account.phone == PHONE)).one()
    account.active = False
    session.flush()
    assert _me(client, tokens["access_token"]).status_code == 401
    assert _refresh(client, tokens["refresh_token"]).status_code == 401


def test_role_change_invalidates_token(app, client, session):
    staff = factories.staff(session, role="duty", region="371102004")
    headers = factories.auth(app, staff)
    assert client.get("/api/v1/me", headers=headers).status_code == 200
    staff.role = "operator"
    session.flush()
    assert client.get("/api/v1/me", headers=headers).status_code == 401


# --- forged and broken access tokens ----------------------------------------------------


def _claims(app, session):
    account = factories.resident(session)
    headers = factories.auth(app, account)
    token = headers["Authorization"].split()[1]
    return jwt.decode(token, KEY, algorithms=["HS256"], issuer="aidline")


def _b64(data: dict | bytes) -> str:
    raw = data if isinstance(data, bytes) else json.dumps(data).encode()
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def test_valid_token_accepted(app, client, session):
    claims = _claims(app, session)
    assert _me(client, jwt.encode(claims, KEY, algorithm="HS256")).status_code == 200


def test_alg_none_rejected(app, client, session):
    claims = _claims(app, session)
    token = f"{_b64({'alg': 'none', 'typ': 'JWT'})}.{_b64(claims)}."
    resp = _me(client, token)
    assert resp.status_code == 401 and resp.get_json()["code"] == "token_invalid"
    assert _me(client, jwt.encode(claims, None, algorithm="none")).status_code == 401


def test_other_algorithm_rejected(app, client, session):
    claims = _claims(app, session)
    long_key = KEY * 2  # HS512 wants a longer key; still the server's secret material
    assert _me(client, jwt.encode(claims, long_key, algorithm="HS512")).status_code == 401


def test_wrong_key_rejected(app, client, session):
    claims = _claims(app, session)
    token = jwt.encode(claims, "another-secret-key-with-enough-length-x", algorithm="HS256")
    assert _me(client, token).status_code == 401


def test_expired_rejected(app, client, session):
    claims = _claims(app, session)
    past = int((utcnow() - dt.timedelta(hours=1)).timestamp())
    claims.update(iat=past - 900, exp=past)
    assert _me(client, jwt.encode(claims, KEY, algorithm="HS256")).status_code == 401


def test_a_token_signed_with_another_key_is_refused(app, client, session):
    claims = _claims(app, session)
    token = jwt.encode(claims, KEY, algorithm="HS256")
    assert _me(client, token).status_code == 200
    app.config["SECRET_KEY"] = "another-secret-key-with-enough-length-x"
    assert _me(client, token).status_code == 401


def test_tampered_rejected(app, client, session):
    claims = _claims(app, session)
    token = jwt.encode(claims, KEY, algorithm="HS256")
    header, payload, signature = token.split(".")
    forged = dict(claims, role="admin", region="3711")
    assert _me(client, f"{header}.{_b64(forged)}.{signature}").status_code == 401
    flipped = signature[:-2] + ("A" if signature[-2] != "A" else "B") + signature[-1]
    assert _me(client, f"{header}.{payload}.{flipped}").status_code == 401


def test_claims_checked(app, client, session):
    claims = _claims(app, session)
    for bad in (
        {"typ": "refresh"},
        {"iss": "someone-else"},
        {"sid": str(uuid.uuid4())},  # a session that does not exist
        {"sid": "not-a-uuid"},
        {"sub": "abc"},
        {"sub": "999999"},
    ):
        assert _me(client, jwt.encode(claims | bad, KEY, algorithm="HS256")).status_code == 401, bad
    for missing in ("exp", "sid", "sub", "jti"):
        partial = {k: v for k, v in claims.items() if k != missing}
        assert _me(client, jwt.encode(partial, KEY, algorithm="HS256")).status_code == 401


def test_malformed_headers(client):
    for value in ("", "Bearer", "Bearer ", "Basic abc", "Bearer a.b.c", "Bearer x" * 100):
        resp = client.get("/api/v1/me", headers={"Authorization": value} if value else {})
        assert resp.status_code == 401
        assert resp.get_json()["code"] in {"unauthorized", "token_invalid"}


def test_a_public_key_is_never_taken_as_the_hmac_secret():
    """A public key given as the HS256 secret (the algorithm-confusion attack) is refused
    every time, also after the app's own key has verified a token."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ec

    public = (
        ec.generate_private_key(ec.SECP256R1())
        .public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    )
    token = jwt.encode({"sub": "1"}, KEY, algorithm="HS256")
    assert jwt.decode(token, KEY, algorithms=["HS256"]) == {"sub": "1"}
    for _ in range(2):
        with pytest.raises(jwt.InvalidKeyError):
            jwt.decode(token, public, algorithms=["HS256"])
