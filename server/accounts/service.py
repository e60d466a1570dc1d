"""Account services (keyword-only; they flush, the caller commits)."""

from __future__ import annotations

from typing import Any

import phonenumbers
from sqlalchemy import select
from sqlalchemy.orm import Session

from server.accounts.models import SCOPE_LEVEL, STAFF_ROLES, Account
from server.accounts.passwords import hash_password
from server.divisions.models import Division
from server.errors import Conflict, ValidationFailed


def normalize_phone(raw: str, *, field: str = "phone") -> str:
    """Parse a Chinese mobile number (13812345678, +86 138..., 0086138...) to E.164."""
    text = (raw or "").strip()
    if text.startswith("00"):
        text = "+" + text[2:]
    try:
        number = phonenumbers.parse(text, "CN")
    except phonenumbers.NumberParseException as exc:
        raise ValidationFailed(errors={field: ["不是有效的手机号码。"]}) from exc
    if not phonenumbers.is_valid_number(number):
        raise ValidationFailed(errors={field: ["不是有效的手机号码。"]})
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


def create_staff(
    session: Session,
    *,
    username: str,
    password: str,
    role: str,
    region_code: str,
    phone: str | None = None,
    name: str | None = None,
) -> Account:
    """Create a staff account scoped to ``region_code`` (township, county or city code)."""
    if role not in STAFF_ROLES:
        raise ValidationFailed(errors={"role": [f"角色必须是 {', '.join(STAFF_ROLES)} 之一。"]})
    if len(password) < 10:
        raise ValidationFailed(errors={"password": ["密码至少 10 位。"]})
    region = session.get(Division, region_code)
    if region is None or len(region_code) != SCOPE_LEVEL[role]:
        raise ValidationFailed(
            errors={"region": [f"{role} 的辖区必须是 {SCOPE_LEVEL[role]} 位的有效区划代码。"]}
        )
    if session.scalar(select(Account.id).where(Account.username == username)):
        raise Conflict("用户名已存在。", message_en="Username already exists.")
    account = Account(
        role=role,
        username=username,
        password_hash=hash_password(password),
        region_code=region_code,
        phone=normalize_phone(phone) if phone else None,
        name=name,
    )
    session.add(account)
    session.flush()
    return account


def get_or_create_resident(session: Session, *, phone: str, **fields: Any) -> tuple[Account, bool]:
    """The resident account of an E.164 ``phone``, created when new."""
    account = session.scalar(
        select(Account).where(Account.phone == phone, Account.role == "resident")
    )
    if account is not None:
        return account, False
    account = Account(role="resident", phone=phone, **fields)
    session.add(account)
    session.flush()
    return account, True
