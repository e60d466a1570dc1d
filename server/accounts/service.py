"""Account services (keyword-only; they flush, the caller commits)."""

from __future__ import annotations

from typing import Any

import phonenumbers
from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from server.accounts.idnumbers import protect_id_number, validate_id_number
from server.accounts.models import SCOPE_LEVEL, STAFF_ROLES, Account, AuthSession
from server.accounts.passwords import hash_password, verify_password
from server.audit import record
from server.db import utcnow
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
    must_change_password: bool = False,
) -> Account:
    """Create a staff account scoped to ``region_code`` (township, county or city code)."""
    if role not in STAFF_ROLES:
        raise ValidationFailed(errors={"role": [f"角色必须是 {', '.join(STAFF_ROLES)} 之一。"]})
    check_password_rules(password)
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
        must_change_password=must_change_password,
    )
    session.add(account)
    session.flush()
    return account


def check_password_rules(password: str, field: str = "password") -> None:
    """422 unless ``password`` is acceptable for a staff account (at least 10 characters)."""
    if len(password) < 10:
        raise ValidationFailed(errors={field: ["密码至少 10 位。"]})


def change_own_password(
    session: Session, *, account: Account, current: str, new: str, keep_session: Any = None
) -> None:
    """A staff member replaces their password (``current`` must be right); the admin-set flag
    clears, and every other signed-in session of the account ends."""
    if not verify_password(account.password_hash, current):
        raise ValidationFailed(errors={"current_password": ["当前密码不正确。"]})
    check_password_rules(new, "new_password")
    if new == current:
        raise ValidationFailed(errors={"new_password": ["新密码不能与当前密码相同。"]})
    account.password_hash = hash_password(new)
    account.must_change_password = False
    others = update(AuthSession).where(
        AuthSession.account_id == account.id, AuthSession.revoked_at.is_(None)
    )
    if keep_session is not None:
        others = others.where(AuthSession.id != keep_session)
    session.execute(
        others.values(revoked_at=utcnow(), revoked_reason="password").execution_options(
            synchronize_session=False
        )
    )
    record(
        session,
        actor=account,
        action="auth.password_changed",
        target_type="account",
        target_id=account.id,
    )
    session.flush()


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


ID_NUMBER_TAKEN = (
    "该身份证号已绑定在其他账号上，不能重复绑定。如确为本人身份证号，请拨打12349热线"
    "或联系所在乡镇（街道）核实处理。"
)
ID_NUMBER_TAKEN_EN = (
    "This ID number is bound to another account. If it is yours, call the 12349 hotline or "
    "your township office to have it checked."
)


def id_number_holder(session: Session, digest: str) -> int | None:
    """The id of the account bound to the ID number with keyed hash ``digest``, if any."""
    return session.scalar(select(Account.id).where(Account.id_number_hash == digest))


def bind_id_number(session: Session, *, account: Account, value: str) -> bool:
    """Bind a validated ID number to ``account``; False (nothing changed) when another
    account holds it. The unique index decides between two claims at once (the loser's
    savepoint rolls back), so an ID number never ends up on two accounts."""
    enc, digest, masked = protect_id_number(value)
    if account.id_number_hash == digest:
        return True
    holder = id_number_holder(session, digest)
    if holder is not None and holder != account.id:
        return False
    try:
        with session.begin_nested():
            account.id_number_enc, account.id_number_hash, account.id_number_masked = (
                enc,
                digest,
                masked,
            )
            session.flush()
    except IntegrityError:
        # The savepoint's rollback expired the account: it reads back what it held.
        return False
    return True


def unbind_id_number(session: Session, *, value: str, by: str, reason: str) -> Account | None:
    """Remove an ID number from the account holding it (a staff decision after a dispute),
    audited with who decided and why; None when no account holds it."""
    digest = protect_id_number(value)[1]
    account = session.scalar(select(Account).where(Account.id_number_hash == digest))
    if account is None:
        return None
    account.id_number_enc = account.id_number_hash = account.id_number_masked = None
    session.flush()
    record(
        session,
        actor=None,
        action="account.id_number_unbind",
        target_type="account",
        target_id=account.id,
        data={"by": by, "reason": reason},
    )
    return account


def update_profile(
    session: Session, *, actor: Any, account: Account, changes: dict[str, Any]
) -> Account:
    """Apply a resident's own profile changes (validated; the ID number stored protected;
    409 when another account holds it).

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
            if not bind_id_number(session, account=account, value=value):
                raise Conflict(
                    ID_NUMBER_TAKEN,
                    code="id_number_taken",
                    message_en=ID_NUMBER_TAKEN_EN,
                    errors={"id_number": [ID_NUMBER_TAKEN]},
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
