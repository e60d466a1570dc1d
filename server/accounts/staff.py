"""Administering staff accounts: disable, enable, unlock, reset the password, set phone and
region; the list with last sign-in. The CLI (``flask staff ...``) and the console's admin
pages call these; each change is audited (``actor`` None: the CLI)."""

from __future__ import annotations

from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from server.accounts.auth import revoke_account_sessions
from server.accounts.models import SCOPE_LEVEL, Account, AuthSession
from server.accounts.passwords import generate_password, hash_password
from server.accounts.service import normalize_phone
from server.accounts.staff_signin import clear_staff_throttle
from server.audit import record
from server.db import UTC
from server.divisions.models import Division
from server.errors import NotFound, ValidationFailed


def find_staff(session: Session, *, username: str | None = None, account_id: int | None = None):
    """A staff account by username or id; 404 otherwise (residents are not staff)."""
    query = select(Account).where(Account.role != "resident")
    if account_id is not None:
        query = query.where(Account.id == account_id)
    else:
        query = query.where(Account.username == username)
    account = session.scalar(query)
    if account is None:
        raise NotFound("未找到该工作人员账号。", message_en="No such staff account.")
    return account


def _audit(session: Session, actor: Any, account: Account, action: str, **data: Any) -> None:
    record(
        session,
        actor=actor,
        action=f"account.{action}",
        target_type="account",
        target_id=account.id,
        data={"via": "console" if actor is not None else "cli", **data},
    )


def set_active(session: Session, *, actor: Any, account: Account, active: bool) -> None:
    """Disable (its sessions end at once) or re-enable (its sign-in waits lifted) an account."""
    account.active = active
    if active:
        clear_staff_throttle(session, username=account.username or "")
    else:
        revoke_account_sessions(session, account_id=account.id, reason="disabled")
    session.flush()
    _audit(session, actor, account, "enabled" if active else "disabled")


def unlock(session: Session, *, actor: Any, account: Account) -> int:
    """Lift the sign-in wait after failed sign-ins, from every address; how many."""
    cleared = clear_staff_throttle(session, username=account.username or "")
    _audit(session, actor, account, "unlocked", cleared=cleared)
    return cleared


def reset_password(session: Session, *, actor: Any, account: Account) -> str:
    """A new one-time password (returned once, stored hashed): changed at the next sign-in;
    the account's sessions end and its sign-in waits are lifted."""
    password = generate_password()
    account.password_hash = hash_password(password)
    account.must_change_password = True
    revoke_account_sessions(session, account_id=account.id, reason="password_reset")
    clear_staff_throttle(session, username=account.username or "")
    session.flush()
    _audit(session, actor, account, "password_reset")
    return password


def update_contact(
    session: Session, *, actor: Any, account: Account, phone: str | None, region_code: str
) -> None:
    """Set a staff member's phone (paged when on duty) and region (their authority: a code of
    the role's level)."""
    level = SCOPE_LEVEL.get(account.role)
    if session.get(Division, region_code) is None or len(region_code) != level:
        raise ValidationFailed(errors={"region": [f"辖区必须是 {level} 位的有效区划代码。"]})
    old = {"phone": account.phone, "region": account.region_code}
    account.phone = normalize_phone(phone) if phone else None
    if region_code != account.region_code:
        # A new authority: what was signed in under the old one ends.
        revoke_account_sessions(session, account_id=account.id, reason="region_changed")
    account.region_code = region_code
    session.flush()
    _audit(session, actor, account, "updated", region_from=old["region"], region_to=region_code)


def staff_list(session: Session, *, region_code: str) -> list[tuple[Account, Any]]:
    """The staff accounts of a region with their last sign-in (None: never), by region and
    username."""
    last = (
        select(func.max(AuthSession.created_at))
        .where(AuthSession.account_id == Account.id)
        .correlate(Account)
        .scalar_subquery()
    )
    rows = session.execute(
        select(Account, last)
        .where(Account.role != "resident", Account.region_code.startswith(region_code))
        .order_by(Account.region_code, Account.username)
    )
    # SQLite returns the aggregate of a UTC column as naive UTC.
    return [(a, at.replace(tzinfo=UTC) if at and not at.tzinfo else at) for a, at in rows]
