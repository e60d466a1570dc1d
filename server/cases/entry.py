"""What each door does before intake: a request's fields as intake's ``Need``, and a
staff member's entry of a caller (12349 hotline) or a person found (grid worker).

The API's ``POST /api/v1/intake`` and the console's hotline form both call ``enter``: the
same role rules (``access.require_intake``), phone and ID-number handling, routing and
paging (``server.cases.intake``).
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy.orm import Session

from server import access
from server.accounts import idnumbers
from server.accounts.models import Account
from server.accounts.service import bind_id_number, get_or_create_resident, normalize_phone
from server.cases import intake
from server.divisions.service import require_case_township


def need(
    session: Session,
    data: dict[str, Any],
    *,
    channel: str,
    resident: bool,
    idempotency_key: str | None,
    **more: Any,
) -> intake.Need:
    """What an intake request (``data``: its schema's load) tells intake, ``more`` besides
    (a township outside the deployment area is a 422; a resident is told the hotline)."""
    loc = data.get("location") or {}
    contact = data.get("contact_phone")
    code = data.get("township_code")
    return intake.Need(
        channel=channel,
        township_code=require_case_township(session, code, resident=resident).code
        if code
        else None,
        address=data.get("address") or None,
        lat=loc.get("lat"),
        lng=loc.get("lng"),
        contact_phone=normalize_phone(contact, field="contact_phone", mobile=False)
        if contact
        else None,
        description=data.get("description") or None,
        reason=data.get("reason") or None,
        household_size=data.get("household_size"),
        monthly_income_fen=data.get("monthly_income_fen"),
        idempotency_key=idempotency_key,
        **more,
    )


def enter(
    session: Session,
    *,
    actor: Any,
    data: dict[str, Any],
    idempotency_key: str | None,
    duplicate_window: dt.timedelta,
) -> intake.IntakeResult:
    """Enter a case for a caller or a person found, from ``IntakeCreateSchema``'s ``data``:
    their account by phone (created when new), an ID number bound when theirs is unset, then
    intake (urgent: the township's duty officers paged; else an application)."""
    reporter = access.require_intake(actor, data["channel"])
    phone = normalize_phone(data["phone"], mobile=False)
    resident, _ = get_or_create_resident(session, phone=phone)
    # Before the name: a lost race for the ID number rolls back the binding's savepoint.
    id_hash = _id_number_hash(session, resident, data.get("id_number"))
    if data.get("name") and not resident.name:
        resident.name = data["name"]
    request = need(
        session,
        data,
        channel=data["channel"],
        resident=False,
        idempotency_key=idempotency_key,
        staff_notes=data.get("notes") or None,
        request_hash=intake.request_fingerprint("intake", data),
        reporter_township_code=reporter,
        subject_id_hash=id_hash,
    )
    if data["urgent"]:
        return intake.submit_urgent(session, resident=resident, actor=actor, need=request)
    return intake.submit_application(
        session,
        resident=resident,
        actor=actor,
        aid_type=data["aid_type"],
        need=request,
        duplicate_window=duplicate_window,
    )


def _id_number_hash(session: Session, resident: Account, raw: str | None) -> str | None:
    """Validate a caller's ID number and bind it to their account when it has none and no
    other account holds it; returns its keyed hash for duplicate checks."""
    if not raw:
        return resident.id_number_hash
    value = idnumbers.validate_id_number(raw, field="id_number")
    if not resident.id_number_hash:
        bind_id_number(session, account=resident, value=value)
    return idnumbers.id_number_hash(value)
