"""Sign-in services: SMS codes for residents, passwords for staff, rotating refresh tokens.

Keyword-only functions taking the session; they flush, the request boundary commits. Where a
refusal must still leave a trace (a wrong code's try, a failed password, a revoked token
family) they call ``keep_on_error`` so the counter survives the error response.

Neither codes nor tokens are ever logged or stored in clear: codes as HMAC-SHA256 under
SECRET_KEY bound to the phone number, refresh tokens (256 random bits) as SHA-256.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import logging
import math
import secrets
import uuid
from typing import Any

from flask import current_app
from sqlalchemy import delete, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

import notifications
from notifications import templates
from notifications.models import SmsOutbox
from server import sealing
from server.accounts.models import (
    Account,
    AuthSession,
    RefreshToken,
    SignInCode,
    StaffSignInThrottle,
)
from server.accounts.passwords import hash_password, needs_rehash, verify_password
from server.accounts.service import get_or_create_resident
from server.accounts.tokens import issue_access_token
from server.audit import record
from server.db import is_postgresql, utcnow
from server.errors import Forbidden, RateLimited, Unauthorized
from server.limits import client_address, enforce, private_key
from server.session import keep_on_error

log = logging.getLogger(__name__)

CODE_TTL = dt.timedelta(minutes=5)
CODE_MAX_TRIES = 5
CODE_TEMPLATE = "sign_in_code"
REDACTED_CODE = "******"


# --- SMS codes ------------------------------------------------------------------------------


def _code_hash(phone: str, code: str) -> str:
    key = current_app.config["SECRET_KEY"].encode()
    return hmac.new(key, f"sign-in:{phone}:{code}".encode(), hashlib.sha256).hexdigest()


def send_sign_in_code(session: Session, *, phone: str, now: dt.datetime | None = None) -> int:
    """Queue a fresh 6-digit code to ``phone`` (E.164); earlier codes stop working.

    Limited per phone (RATELIMIT_SMS_PER_PHONE). Returns the code's lifetime in seconds.
    The answer is the same whether or not the phone has an account.
    """
    now = now or utcnow()
    enforce(current_app.config["RATELIMIT_SMS_PER_PHONE"], scope="sms-code", key=private_key(phone))
    # Housekeeping, cheap and indexed: this phone's older codes and anybody's long-dead ones.
    session.execute(delete(SignInCode).where(SignInCode.phone == phone))
    session.execute(delete(SignInCode).where(SignInCode.expires_at < now - dt.timedelta(days=1)))
    code = f"{secrets.randbelow(1_000_000):06d}"
    session.add(
        SignInCode(
            phone=phone,
            code_hash=_code_hash(phone, code),
            created_at=now,
            expires_at=now + CODE_TTL,
        )
    )
    # Sealed: the code is never in clear in the database, not even while the SMS waits.
    notifications.enqueue(session, phone, CODE_TEMPLATE, {"code": sealing.seal(code)})
    session.flush()
    return int(CODE_TTL.total_seconds())


def _code_refused(code: str, zh: str, en: str, **errors: Any) -> Unauthorized:
    return Unauthorized(zh, code=code, message_en=en, errors={"code": [zh]} | errors)


def verify_sign_in_code(
    session: Session, *, phone: str, code: str, now: dt.datetime | None = None
) -> Account:
    """The resident of ``phone`` (created on first sign-in) if ``code`` is its live code.

    A code works once, for 5 minutes, and dies after 5 wrong tries. Attempts are limited per
    phone (RATELIMIT_VERIFY_PER_PHONE).
    """
    now = now or utcnow()
    enforce(
        current_app.config["RATELIMIT_VERIFY_PER_PHONE"], scope="sign-in", key=private_key(phone)
    )
    row = session.scalars(
        select(SignInCode)
        .where(SignInCode.phone == phone)
        .order_by(SignInCode.created_at.desc(), SignInCode.id.desc())
        .limit(1)
        .with_for_update()
    ).first()
    if row is None or row.used_at is not None or row.attempts >= CODE_MAX_TRIES:
        raise _code_refused(
            "code_expired",
            "验证码已失效，请重新获取。",
            "The code is no longer valid; request a new one.",
        )
    if row.expires_at <= now:
        raise _code_refused(
            "code_expired", "验证码已过期，请重新获取。", "The code has expired; request a new one."
        )
    if not hmac.compare_digest(row.code_hash, _code_hash(phone, str(code))):
        row.attempts += 1
        session.flush()
        keep_on_error(session)
        left = CODE_MAX_TRIES - row.attempts
        if left <= 0:
            raise _code_refused(
                "code_expired",
                "验证码错误次数过多，请重新获取。",
                "Too many wrong tries; request a new code.",
            )
        raise _code_refused(
            "code_invalid",
            f"验证码不正确，还可尝试 {left} 次。",
            f"Wrong code; {left} tries left.",
        )
    row.used_at = now
    account, created = get_or_create_resident(session, phone=phone)
    if not account.active:
        raise Forbidden(
            "该账号已停用，请联系 12349 热线。",
            code="account_disabled",
            message_en="This account is disabled.",
        )
    redact_sign_in_codes(session, phone=phone)
    if created:
        log.info("resident account %s created on first sign-in", account.id)
    session.flush()
    return account


def redact_sign_in_codes(session: Session, *, phone: str | None = None) -> int:
    """Blank the code out of sign-in SMS already handed to the provider (or given up on).

    The outbox must keep an unsent code to deliver it; once sent (or the code used) the clear
    code has no business in the database. The SMS worker may call this after sending.
    """
    query = select(SmsOutbox).where(
        SmsOutbox.template == CODE_TEMPLATE, SmsOutbox.status.not_in(("pending", "sending"))
    )
    if phone is not None:
        query = query.where(SmsOutbox.to_phone == phone)
    count = 0
    for row in session.scalars(query):
        if (row.params or {}).get("code") != REDACTED_CODE:
            row.params = {"code": REDACTED_CODE}
            row.body = templates.render(CODE_TEMPLATE, row.params)
            count += 1
    return count


# --- staff passwords ------------------------------------------------------------------------


# Failures further back than this are forgotten: a pair starts afresh the next day.
THROTTLE_MEMORY = dt.timedelta(days=1)


def authenticate_staff(
    session: Session,
    *,
    username: str,
    password: str,
    client: str | None = None,
    now: dt.datetime | None = None,
) -> Account:
    """The active staff account for ``username``/``password``, signing in from ``client``.

    Failures are counted per (username, client address): after STAFF_THROTTLE_FREE_FAILURES
    that pair waits, longer after each further failure (429 with Retry-After, even for the
    right password), while the same officer elsewhere is not held up. Unknown usernames are
    counted alike and every answer costs one password verification, so neither the answers
    nor their timing tell whether an account exists. ``staff unlock`` lifts the wait.
    """
    now = now or utcnow()
    # The request's client address unless told (the API and the console both sign in here).
    client_hash = private_key(f"staff-sign-in:{client or client_address()}")
    throttle = session.scalars(
        select(StaffSignInThrottle)
        .where(
            StaffSignInThrottle.username == username,
            StaffSignInThrottle.client_hash == client_hash,
        )
        .with_for_update()
    ).first()
    if throttle is not None and throttle.blocked_until and throttle.blocked_until > now:
        verify_password(None, password)  # the same cost as every other answer
        raise _throttled(throttle.blocked_until - now)
    account = session.scalars(
        select(Account).where(Account.username == username, Account.role != "resident")
    ).first()
    if not verify_password(account.password_hash if account else None, password):
        wait = _count_failure(session, username=username, client_hash=client_hash, now=now)
        if wait is not None and account is not None:
            log.warning("staff sign-in of account %s throttled after failures", account.id)
            record(
                session,
                actor=None,
                action="auth.staff_throttled",
                target_type="account",
                target_id=account.id,
                data={"wait_seconds": int(wait.total_seconds())},
            )
        session.flush()
        keep_on_error(session)
        if wait is not None:
            raise _throttled(wait)
        raise Unauthorized(
            "用户名或密码不正确。",
            code="invalid_credentials",
            message_en="Wrong username or password.",
        )
    if not account.active:
        raise Forbidden(
            "该账号已停用，请联系管理员。",
            code="account_disabled",
            message_en="This account is disabled.",
        )
    if throttle is not None:
        session.delete(throttle)
    if needs_rehash(account.password_hash or ""):
        account.password_hash = hash_password(password)
    record(
        session,
        actor=account,
        action="auth.staff_sign_in",
        target_type="account",
        target_id=account.id,
    )
    session.flush()
    return account


def _count_failure(
    session: Session, *, username: str, client_hash: str, now: dt.datetime
) -> dt.timedelta | None:
    """Count one failure of the pair; the wait it now has to serve, if any."""
    cfg = current_app.config
    table = StaffSignInThrottle.__table__
    # Housekeeping, indexed: a pair quiet for a day starts afresh (and unknown names go).
    session.execute(delete(table).where(table.c.last_failure_at < now - THROTTLE_MEMORY))
    dialect_insert = postgresql.insert if is_postgresql(session) else sqlite.insert
    insert = dialect_insert(table).values(
        username=username, client_hash=client_hash, failures=1, last_failure_at=now
    )
    # One statement, so two failures at once both count (no lost update, no duplicate row).
    failures = session.scalar(
        insert.on_conflict_do_update(
            index_elements=[table.c.username, table.c.client_hash],
            set_={
                "failures": table.c.failures + 1,
                "last_failure_at": now,
            },
        ).returning(table.c.failures)
    )
    free = int(cfg["STAFF_THROTTLE_FREE_FAILURES"])
    if failures is None or failures <= free:
        return None
    seconds = min(
        int(cfg["STAFF_THROTTLE_BASE_SECONDS"]) * 2 ** min(failures - free - 1, 30),
        int(cfg["STAFF_THROTTLE_MAX_SECONDS"]),
    )
    wait = dt.timedelta(seconds=seconds)
    session.execute(
        update(StaffSignInThrottle)
        .where(
            StaffSignInThrottle.username == username,
            StaffSignInThrottle.client_hash == client_hash,
        )
        .values(blocked_until=now + wait)
        .execution_options(synchronize_session=False)
    )
    return wait


def clear_staff_throttle(session: Session, *, username: str) -> int:
    """Lift every sign-in wait of ``username`` (``staff unlock``); the number of pairs."""
    result = session.execute(
        delete(StaffSignInThrottle).where(StaffSignInThrottle.username == username)
    )
    return int(result.rowcount or 0)


def _throttled(remaining: dt.timedelta) -> RateLimited:
    seconds = max(1, math.ceil(remaining.total_seconds()))
    minutes = math.ceil(seconds / 60)
    return RateLimited(
        f"登录失败次数过多，请 {minutes} 分钟后再试。"
        "如有紧急值班任务，请联系区县民政督导员或系统管理员解除限制。",
        code="sign_in_throttled",
        message_en=(
            f"Too many failed sign-ins; try again in {minutes} minute(s), or ask your county "
            "supervisor or an administrator to lift the limit."
        ),
        headers={"Retry-After": str(seconds)},
    )


# --- sessions and tokens --------------------------------------------------------------------


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
