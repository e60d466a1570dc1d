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
from sqlalchemy import bindparam, select

from server.accounts.models import Account, AuthSession
from server.db import utcnow
from server.errors import Unauthorized
from server.session import db_session

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


# Built once: every authenticated request runs it, and a prepared Core statement skips the
# ORM's per-call statement construction.
_ACCOUNTS = Account.__table__
_SESSIONS = AuthSession.__table__
_ACTOR_BY_SESSION = (
    select(_ACCOUNTS.c.role, _ACCOUNTS.c.region_code, _ACCOUNTS.c.active)
    .select_from(_ACCOUNTS.join(_SESSIONS, _SESSIONS.c.account_id == _ACCOUNTS.c.id))
    .where(
        _ACCOUNTS.c.id == bindparam("account_id"),
        _SESSIONS.c.id == bindparam("session_id"),
        _SESSIONS.c.revoked_at.is_(None),
    )
)


def _resolve(claims: dict[str, Any]) -> Actor:
    """The actor of verified ``claims``: account active, session not revoked, role unchanged."""
    row = (
        db_session()
        .connection()
        .execute(_ACTOR_BY_SESSION, {"account_id": int(claims["sub"]), "session_id": claims["sid"]})
        .one_or_none()
    )
    if row is None or not row.active or row.role != claims.get("role"):
        raise Unauthorized(code="token_invalid")
    return Actor(id=int(claims["sub"]), role=row.role, region_code=row.region_code)


def current_actor() -> Actor:
    """The authenticated actor of this request; 401 without a valid bearer token."""
    actor = g.get("actor")
    if actor is not None:
        return actor
    header = request.headers.get("Authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise Unauthorized()
    claims = decode_access_token(token.strip())
    actor = _resolve(claims)
    g.actor = actor
    g.auth_session_id = claims["sid"]
    return actor
