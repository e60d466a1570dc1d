"""Staff sign in with a username and password, throttled per (username, client address).

Keyword-only functions taking the session; they flush, the request boundary commits. A failed
password is counted even though the request fails (``keep_on_error``).
"""

from __future__ import annotations

import datetime as dt
import logging
import math

from flask import current_app
from sqlalchemy import delete, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from server.accounts.models import (
    Account,
    StaffSignInThrottle,
)
from server.accounts.passwords import hash_password, needs_rehash, verify_password
from server.audit import record
from server.db import is_postgresql, utcnow
from server.errors import Forbidden, RateLimited, Unauthorized
from server.limits import client_address, private_key
from server.session import keep_on_error

log = logging.getLogger(__name__)


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
