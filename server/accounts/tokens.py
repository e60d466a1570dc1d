"""JWT access tokens (PyJWT, HS256 pinned) and the request's actor."""

from __future__ import annotations

import datetime as dt
import uuid
from dataclasses import dataclass
from typing import Any

import jwt
from flask import current_app, g, request

from server.db import utcnow
from server.errors import Unauthorized

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


def issue_access_token(account: Any, *, now: dt.datetime | None = None) -> tuple[str, int]:
    """A signed access token for ``account`` and its lifetime in seconds."""
    now = now or utcnow()
    ttl = int(current_app.config["ACCESS_TOKEN_TTL"])
    claims = {
        "iss": ISSUER,
        "sub": str(account.id),
        "role": account.role,
        "region": account.region_code,
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
            options={"require": ["exp", "iat", "sub", "jti"]},
        )
    except jwt.PyJWTError as exc:
        raise Unauthorized(code="token_invalid") from exc
    if claims.get("typ") != "access" or not str(claims.get("sub", "")).isdigit():
        raise Unauthorized(code="token_invalid")
    return claims


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
    actor = Actor(
        id=int(claims["sub"]), role=claims.get("role", ""), region_code=claims.get("region")
    )
    g.actor = actor
    return actor
