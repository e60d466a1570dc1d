"""Signed-in sessions: access tokens with rotating refresh tokens, logout and revocation.

How one signs in: ``server.accounts.codes`` (residents, SMS codes) and
``server.accounts.staff_signin`` (staff, passwords). Keyword-only functions taking the
session; they flush, the request boundary commits. A revoked token family is kept even though
the request fails (``keep_on_error``). Refresh tokens (256 random bits) are stored as SHA-256,
never in clear.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import logging
import secrets
import uuid
from typing import Any

from flask import current_app
from sqlalchemy import select, update
from sqlalchemy.orm import Session

from server.accounts.models import (
    Account,
    AuthSession,
    RefreshToken,
)
from server.accounts.tokens import issue_access_token
from server.db import utcnow
from server.errors import Unauthorized
from server.session import keep_on_error

log = logging.getLogger(__name__)


def _token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def _new_refresh_token(session: Session, auth_session: AuthSession, now: dt.datetime) -> str:
    token = secrets.token_urlsafe(32)
    ttl = dt.timedelta(seconds=int(current_app.config["REFRESH_TOKEN_TTL"]))
    session.add(
        RefreshToken(
            session_id=auth_session.id,
            token_hash=_token_hash(token),
            created_at=now,
            expires_at=now + ttl,
        )
    )
    return token


def _token_pair(
    session: Session, account: Account, auth_session: AuthSession, now: dt.datetime
) -> dict[str, Any]:
    refresh = _new_refresh_token(session, auth_session, now)
    access, ttl = issue_access_token(account, session_id=auth_session.id, now=now)
    session.flush()
    return {
        "access_token": access,
        "refresh_token": refresh,
        "token_type": "Bearer",
        "expires_in": ttl,
    }


def start_session(
    session: Session, *, account: Account, now: dt.datetime | None = None
) -> dict[str, Any]:
    """Open a signed-in session for ``account``: access token + first refresh token."""
    now = now or utcnow()
    auth_session = AuthSession(
        id=uuid.uuid4(), account_id=account.id, created_at=now, last_used_at=now
    )
    session.add(auth_session)
    session.flush()
    return _token_pair(session, account, auth_session, now)


def _refresh_refused() -> Unauthorized:
    return Unauthorized(
        "登录已失效，请重新登录。",
        code="refresh_invalid",
        message_en="The refresh token is invalid, expired or revoked; sign in again.",
    )


def revoke_session(
    session: Session, *, session_id: uuid.UUID, reason: str, now: dt.datetime | None = None
) -> None:
    """End a signed-in session: its refresh tokens and access tokens stop working."""
    session.execute(
        update(AuthSession)
        .where(AuthSession.id == session_id, AuthSession.revoked_at.is_(None))
        .values(revoked_at=now or utcnow(), revoked_reason=reason)
        .execution_options(synchronize_session="fetch")
    )


def revoke_account_sessions(session: Session, *, account_id: int, reason: str) -> None:
    """End every signed-in session of an account (disabled, password reset)."""
    session.execute(
        update(AuthSession)
        .where(AuthSession.account_id == account_id, AuthSession.revoked_at.is_(None))
        .values(revoked_at=utcnow(), revoked_reason=reason)
        .execution_options(synchronize_session="fetch")
    )


def refresh(session: Session, *, token: str, now: dt.datetime | None = None) -> dict[str, Any]:
    """Exchange a refresh token for a new pair; the old one is spent.

    A spent token presented again means it was copied: the whole session is revoked (401),
    so the thief's copy and the rightful client's both stop and the user signs in again.
    Except a retry: within ``REFRESH_REUSE_GRACE_SECONDS`` and before the pair it was
    exchanged for has been used, the client gets a new pair and the unused one is spent
    (superseded): a superseded token is never a retry, so one family has one live pair.
    """
    now = now or utcnow()
    row = session.scalars(
        select(RefreshToken).where(RefreshToken.token_hash == _token_hash(token)).with_for_update()
    ).first()
    if row is None:
        raise _refresh_refused()
    auth_session = session.get(AuthSession, row.session_id, with_for_update=True)
    if auth_session is None or auth_session.revoked_at is not None:
        raise _refresh_refused()
    retry = (
        row.used_at is not None
        and row.superseded_at is None
        and _retry_of_lost_answer(session, row, now)
    )
    if row.used_at is not None and not retry:
        log.warning("refresh token reused; session %s revoked", auth_session.id)
        revoke_session(session, session_id=auth_session.id, reason="reuse", now=now)
        keep_on_error(session)
        raise _refresh_refused()
    if row.expires_at <= now:
        raise _refresh_refused()
    account = session.get(Account, auth_session.account_id)
    if account is None or not account.active:
        revoke_session(session, session_id=auth_session.id, reason="disabled", now=now)
        keep_on_error(session)
        raise _refresh_refused()
    if retry:
        # The pair given for this token never reached the client: spend it, so if it does
        # turn up later it is a copy and revokes the session like any other reuse.
        session.execute(
            update(RefreshToken)
            .where(RefreshToken.session_id == auth_session.id, RefreshToken.used_at.is_(None))
            .values(used_at=now, superseded_at=now)
            .execution_options(synchronize_session=False)
        )
    else:
        row.used_at = now
    auth_session.last_used_at = now
    return _token_pair(session, account, auth_session, now)


def _retry_of_lost_answer(session: Session, row: RefreshToken, now: dt.datetime) -> bool:
    """A spent token presented again within the grace period while the token it was exchanged
    for is still unused: the client retried a refresh whose answer it never received (a
    dropped mobile connection), not a copy being replayed."""
    grace = dt.timedelta(seconds=int(current_app.config["REFRESH_REUSE_GRACE_SECONDS"]))
    if row.used_at is None or now - row.used_at > grace:
        return False
    successor_used = session.scalar(
        select(RefreshToken.id).where(
            RefreshToken.session_id == row.session_id,
            RefreshToken.created_at >= row.used_at,
            RefreshToken.used_at.is_not(None),
        )
    )
    return successor_used is None


def logout(session: Session, *, token: str | None, session_id: uuid.UUID | None = None) -> None:
    """Revoke the session of ``token`` (and/or ``session_id``); unknown tokens are ignored."""
    ids = {session_id} if session_id else set()
    if token:
        found = session.scalar(
            select(RefreshToken.session_id).where(RefreshToken.token_hash == _token_hash(token))
        )
        if found:
            ids.add(found)
    for sid in ids:
        revoke_session(session, session_id=sid, reason="logout")
    session.flush()
