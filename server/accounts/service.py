"""Account services (keyword-only; they flush, the caller commits)."""

from __future__ import annotations

from typing import Any

import phonenumbers
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from server.accounts.idnumbers import protect_id_number, validate_id_number
from server.accounts.models import SCOPE_LEVEL, STAFF_ROLES, Account
from server.accounts.passwords import hash_password
from server.audit import record
from server.divisions.models import Division
from server.divisions.service import require_township
from server.errors import Conflict, ValidationFailed


def normalize_phone(raw: str, *, field: str = "phone", mobile: bool = True) -> str:
    """Parse a Chinese number (13812345678, +86 138..., 0086138...) to E.164, or a 422.

    Only +86 numbers; with ``mobile`` (the default: sign-in codes and SMS need one) only
    mobile numbers. Pass ``mobile=False`` for a contact number that may be a landline.
    """
    text = (raw or "").strip()
    if text.startswith("00"):
        text = "+" + text[2:]
    try:
        number = phonenumbers.parse(text, "CN")
    except phonenumbers.NumberParseException as exc:
        raise ValidationFailed(errors={field: ["不是有效的手机号码。"]}) from exc
    if number.country_code != 86 or not phonenumbers.is_valid_number(number):
        raise ValidationFailed(errors={field: ["不是有效的手机号码。"]})
    kind = phonenumbers.number_type(number)
    if mobile and kind not in (
        phonenumbers.PhoneNumberType.MOBILE,
        phonenumbers.PhoneNumberType.FIXED_LINE_OR_MOBILE,
    ):
        raise ValidationFailed(errors={field: ["请填写可接收短信的手机号码。"]})
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
    """The resident account of an E.164 ``phone``, created when new.

    Two first sign-ins racing for one phone end with one account (the unique index decides;
    the loser re-reads inside its savepoint).
    """
    query = select(Account).where(Account.phone == phone, Account.role == "resident")
    account = session.scalar(query)
    if account is not None:
        return account, False
    try:
        with session.begin_nested():
            account = Account(role="resident", phone=phone, **fields)
            session.add(account)
            session.flush()
    except IntegrityError:
        account = session.scalar(query)
        if account is None:
            raise
        return account, False
    return account, True


PROFILE_FIELDS = ("name", "id_number", "residence_township_code", "hukou_township_code")


def update_profile(
    session: Session, *, actor: Any, account: Account, changes: dict[str, Any]
) -> Account:
    """Apply a resident's own profile changes (validated; the ID number stored protected).

    The audit entry names the fields changed, never their values.
    """
    changed: list[str] = []
    if "name" in changes:
        account.name = changes["name"] or None
        changed.append("name")
    if "id_number" in changes:
        raw = changes["id_number"]
        if raw in (None, ""):
            account.id_number_enc = account.id_number_hash = account.id_number_masked = None
        else:
            value = validate_id_number(raw, field="id_number", session=session)
            enc, digest, masked = protect_id_number(value)
            account.id_number_enc, account.id_number_hash, account.id_number_masked = (
                enc,
                digest,
                masked,
            )
        changed.append("id_number")
    for field in ("residence_township_code", "hukou_township_code"):
        if field in changes:
            code = changes[field]
            if code:
                require_township(session, code, field=field)
            setattr(account, field, code or None)
            changed.append(field)
    if changed:
        session.flush()
        record(
            session,
            actor=actor,
            action="account.profile_update",
            target_type="account",
            target_id=account.id,
            data={"fields": changed},
        )
    return account
