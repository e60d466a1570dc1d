"""JWT access tokens (PyJWT, HS256 pinned) and the request's actor.

Access tokens are short-lived and carry ``sub`` (account id), ``role``, ``region`` and ``sid``
(the signed-in session). Every authenticated request also does one primary-key look-up of the
account joined to its session, so a disabled account or a logged-out session stops working at
once rather than when the token expires, and role/region always come from the database.
"""

from __future__ import annotations

import datetime as dt
import uuid
from dataclasses import dataclass
from typing import Any

import jwt
from flask import current_app, g, request
from sqlalchemy import and_, bindparam, select
from sqlalchemy.sql.elements import ColumnElement

from server.accounts.models import Account, AuthSession
from server.db import utcnow
from server.errors import Forbidden, Unauthorized
from server.session import db_session, expect_writes

ALGORITHM = "HS256"
ISSUER = "aidline"


@dataclass(frozen=True)
class Actor:
    """Who is calling: account id, role and region scope (division code prefix)."""

    id: int
    role: str
    region_code: str | None = None

    @property
    def is_staff(self) -> bool:
        return self.role != "resident"


def issue_access_token(
    account: Any, *, session_id: uuid.UUID, now: dt.datetime | None = None
) -> tuple[str, int]:
    """A signed access token for ``account`` in signed-in session ``session_id``, and its TTL."""
    now = now or utcnow()
    ttl = int(current_app.config["ACCESS_TOKEN_TTL"])
    claims = {
        "iss": ISSUER,
        "sub": str(account.id),
        "role": account.role,
        "region": account.region_code,
        "sid": str(session_id),
        "typ": "access",
        "jti": uuid.uuid4().hex,
        "iat": int(now.timestamp()),
        "exp": int((now + dt.timedelta(seconds=ttl)).timestamp()),
    }
    return jwt.encode(claims, current_app.config["SECRET_KEY"], algorithm=ALGORITHM), ttl


def decode_access_token(token: str) -> dict[str, Any]:
    """Verify signature (HS256 only), expiry and type; raise Unauthorized otherwise."""
    try:
        claims = jwt.decode(
            token,
            current_app.config["SECRET_KEY"],
            algorithms=[ALGORITHM],
            issuer=ISSUER,
            options={"require": ["exp", "iat", "sub", "jti", "sid"]},
        )
    except jwt.PyJWTError as exc:
        raise Unauthorized(code="token_invalid") from exc
    if claims.get("typ") != "access" or not str(claims.get("sub", "")).isdigit():
        raise Unauthorized(code="token_invalid")
    try:
        claims["sid"] = uuid.UUID(str(claims["sid"]))
    except ValueError as exc:
        raise Unauthorized(code="token_invalid") from exc
    return claims


# The account and its signed-in session: what every authenticated request checks.
_ACCOUNTS = Account.__table__
_SESSIONS = AuthSession.__table__
SIGNED_IN_FROM = _ACCOUNTS.join(_SESSIONS, _SESSIONS.c.account_id == _ACCOUNTS.c.id)
# What ``signed_in_actor`` needs of the row (the role and active flag are compared here, not
# in SQL: ``role = 'resident'`` would let PostgreSQL pick the partial index on residents'
# phones over the primary key when the table has no statistics yet).
SIGNED_IN_COLUMNS = (_ACCOUNTS.c.role, _ACCOUNTS.c.region_code, _ACCOUNTS.c.active)


def signed_in_clause(*, account_id: Any, session_id: Any) -> ColumnElement[bool]:
    """Over ``SIGNED_IN_FROM``: account ``account_id`` signed in with session ``session_id``,
    not revoked. Values or bind parameters, so a hot statement can fold the check in."""
    return and_(
        _ACCOUNTS.c.id == account_id,
        _SESSIONS.c.id == session_id,
        _SESSIONS.c.revoked_at.is_(None),
    )


_ACTOR_BY_SESSION = (
    select(*SIGNED_IN_COLUMNS, _ACCOUNTS.c.must_change_password)
    .select_from(SIGNED_IN_FROM)
    .where(signed_in_clause(account_id=bindparam("account_id"), session_id=bindparam("session_id")))
)


def signed_in_row(account_id: int, session_id: Any) -> Any:
    """The ``SIGNED_IN_COLUMNS`` and ``must_change_password`` of account ``account_id``
    signed in with session ``session_id`` (an API token's or the console's), None when the
    session is unknown or revoked; ``signed_in_actor`` decides on it."""
    params = {"account_id": account_id, "session_id": session_id}
    return db_session().execute(_ACTOR_BY_SESSION, params).first()


def _resolve(claims: dict[str, Any]) -> Actor:
    """The actor of verified ``claims``: account active, session not revoked, role unchanged."""
    if claims.get("role") != "resident":
        expect_writes()  # a staff read is audited
    row = signed_in_row(int(claims["sub"]), claims["sid"])
    actor = signed_in_actor(claims, row)
    if actor is None:
        raise Unauthorized(code="token_invalid")
    if row.must_change_password and request.endpoint not in PASSWORD_CHANGE_ENDPOINTS:
        raise Forbidden(
            "管理员为您设置的初始密码须先修改：请登录工作台（/console/）修改密码后再使用。",
            code="password_change_required",
            message_en="Change the password an administrator set first: sign in to the "
            "console (/console/) and change it.",
        )
    return actor


# What a staff member whose password an administrator set may still do with a token (the
# password itself is changed in the console, /console/password).
PASSWORD_CHANGE_ENDPOINTS = frozenset({"auth.Logout"})


def signed_in_actor(claims: dict[str, Any], row: Any) -> Actor | None:
    """The actor of verified ``claims``, given the ``SIGNED_IN_COLUMNS`` of the row a
    statement found with ``signed_in_clause`` (or None): the account must be active and its
    role still the token's. Recorded as the request's actor; None when refused."""
    if row is None or not row.active or row.role != claims.get("role"):
        return None
    actor = Actor(id=int(claims["sub"]), role=row.role, region_code=row.region_code)
    g.actor = actor
    g.auth_session_id = claims["sid"]
    return actor


def request_claims() -> dict[str, Any]:
    """The verified claims of the request's bearer token (no database); 401 without one."""
    header = request.headers.get("Authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise Unauthorized()
    return decode_access_token(token.strip())


def current_actor() -> Actor:
    """The authenticated actor of this request; 401 without a valid bearer token."""
    actor = g.get("actor")
    if actor is not None:
        return actor
    return _resolve(request_claims())
