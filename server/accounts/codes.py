"""Residents sign in with a 6-digit code sent by SMS.

Keyword-only functions taking the session; they flush, the request boundary commits. A wrong
code's try is kept even though the request fails (``keep_on_error``). Codes are never logged
or stored in clear: as HMAC-SHA256 under SECRET_KEY bound to the phone number, and sealed in
the SMS outbox until sent.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import logging
import secrets
from typing import Any

from flask import current_app
from sqlalchemy import delete, select
from sqlalchemy.orm import Session

import notifications
from notifications import templates
from notifications.models import SmsOutbox
from server import sealing
from server.accounts.models import (
    Account,
    SignInCode,
)
from server.accounts.service import get_or_create_resident
from server.db import utcnow
from server.errors import Forbidden, Unauthorized
from server.limits import enforce, private_key
from server.session import keep_on_error

log = logging.getLogger(__name__)

CODE_TTL = dt.timedelta(minutes=5)
CODE_MAX_TRIES = 5
CODE_TEMPLATE = "sign_in_code"
REDACTED_CODE = "******"


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
