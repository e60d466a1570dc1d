"""Reading cases: the resident's list and detail, staff look-ups by phone, the timeline."""

from __future__ import annotations

import uuid
from typing import Any

from flask import current_app
from sqlalchemy import bindparam, func, select
from sqlalchemy.orm import Session

from server import access, audit
from server.accounts.models import Account
from server.cases.aid_types import AID_TYPES
from server.cases.models import STATUS_LABELS, Case, CaseEvent
from server.divisions.models import Division
from server.errors import NotFound
from server.masking import mask_name, mask_phone
from server.routing.gazetteer import gazetteer


def _deployment_city() -> str:
    return current_app.config["DEPLOYMENT_CITY"]


# Prepared once: the resident's status read is the hottest path; plain Core rows skip the
# ORM's identity map and per-call statement construction.
_CASES = Case.__table__
_EVENTS = CaseEvent.__table__
_CASE_BY_ID = select(_CASES).where(_CASES.c.id == bindparam("case_id"))
_TIMELINE = (
    select(
        _EVENTS.c.at,
        _EVENTS.c.action,
        _EVENTS.c.to_status,
        _EVENTS.c.text_zh,
        _EVENTS.c.actor_role,
        _EVENTS.c.data,
        _EVENTS.c.resident_visible,
    )
    .where(_EVENTS.c.case_id == bindparam("case_id"))
    .order_by(_EVENTS.c.id)
)


def get_case(session: Session, *, actor: Any, case_id: Any) -> Any:
    """The case ``case_id`` (a read-only row) if ``actor`` may see it; 404 otherwise."""
    try:
        key = case_id if isinstance(case_id, uuid.UUID) else uuid.UUID(str(case_id))
    except ValueError:
        raise NotFound("未找到该案件。", message_en="Case not found.") from None
    row = session.connection().execute(_CASE_BY_ID, {"case_id": key}).one_or_none()
    return access.require_view(actor, row)


def list_cases(
    session: Session,
    *,
    actor: Any,
    page: int,
    per_page: int,
    phone: str | None = None,
    status: str | None = None,
    urgent: bool | None = None,
) -> tuple[list[Case], int]:
    """Cases visible to ``actor``, newest first; staff may filter by the person's phone."""
    query = select(Case).where(access.case_scope_clause(actor))
    if phone is not None:
        query = query.where(Case.subject_phone == phone)
    if status is not None:
        query = query.where(Case.status == status)
    if urgent is not None:
        query = query.where(Case.urgent.is_(urgent))
    total = session.scalar(select(func.count()).select_from(query.subquery())) or 0
    rows = session.scalars(
        query.order_by(Case.created_at.desc(), Case.id)
        .limit(per_page)
        .offset((page - 1) * per_page)
    ).all()
    return list(rows), total


def _names(session: Session, codes: set[str]) -> dict[str, str]:
    """Division names: the deployment city's from the per-process gazetteer, others queried."""
    codes.discard("")
    gaz = gazetteer(session, _deployment_city())
    names = {code: name for code in codes if (name := gaz.name(code))}
    missing = codes - names.keys()
    if missing:
        names.update(
            session.execute(
                select(Division.code, Division.name).where(Division.code.in_(missing))
            ).all()
        )
    return names


def _refs(case: Case, names: dict[str, str]) -> dict[str, Any]:
    township = (
        {"code": case.township_code, "name": names.get(case.township_code, case.township_code)}
        if case.township_code
        else None
    )
    if case.township_code:
        queue = {"kind": "township", **township}  # type: ignore[dict-item]
    else:
        code = case.county_code or ""
        queue = {"kind": "triage", "code": code, "name": f"{names.get(code, code)}分拣队列"}
    return {"township": township, "queue": queue}


def _person(session: Session, case: Case) -> dict[str, Any]:
    resident = session.get(Account, case.resident_id)
    return {
        "name": mask_name(resident.name) if resident else None,
        "phone": mask_phone(case.subject_phone),
        "id_number": resident.id_number_masked if resident else None,
    }


def summary(session: Session, case: Case, *, actor: Any, names: dict[str, str]) -> dict[str, Any]:
    """A list line: masked personal data only."""
    data = {
        "id": case.id,
        "case_no": case.case_no,
        "status": case.status,
        "status_label": STATUS_LABELS[case.status],
        "urgent": case.urgent,
        "aid_type": case.aid_type,
        "aid_type_label": AID_TYPES.get(case.aid_type, case.aid_type),
        "pay_due_at": case.pay_due_at,
        "created_at": case.created_at,
        **_refs(case, names),
    }
    if actor.is_staff:
        data["person"] = _person(session, case)
    return data


def summaries(session: Session, cases: list[Case], *, actor: Any) -> list[dict[str, Any]]:
    names = _names(session, {c.township_code or c.county_code or "" for c in cases})
    return [summary(session, c, actor=actor, names=names) for c in cases]


def timeline(session: Session, case: Any, *, staff: bool) -> list[dict[str, Any]]:
    """The case's events, oldest first; residents see only resident-visible ones."""
    if session.new or session.dirty:
        session.flush()  # Core reads below do not autoflush events added in this request
    out = []
    for ev in session.connection().execute(_TIMELINE, {"case_id": case.id}):
        if not staff and not ev.resident_visible:
            continue
        item: dict[str, Any] = {
            "at": ev.at,
            "action": ev.action,
            "status": ev.to_status,
            "text": ev.text_zh,
        }
        if staff:
            item["actor_role"] = ev.actor_role
            item["data"] = ev.data or {}
        out.append(item)
    return out


def detail(
    session: Session,
    case: Case,
    *,
    actor: Any,
    note: str | None = None,
    duplicate_of: Any = None,
    audit_read: bool = True,
) -> dict[str, Any]:
    """The full case with its timeline. A staff read is written to the audit trail."""
    staff = actor.is_staff
    names = _names(session, {case.township_code or case.county_code or ""})
    data = summary(session, case, actor=actor, names=names)
    data.update(
        channel=case.channel,
        routing={"evidence": case.routing_evidence or "", "reason": case.routing_reason or ""},
        address=case.address,
        location={"lat": case.lat, "lng": case.lng} if case.lat is not None else None,
        description=case.description,
        contact_phone=case.contact_phone,
        reason=case.reason,
        household_size=case.household_size,
        monthly_income_fen=case.monthly_income_fen,
        approved_amount_fen=case.approved_amount_fen,
        paid_amount_fen=case.paid_amount_fen,
        paid_at=case.paid_at,
        paperwork_due_at=case.paperwork_due_at,
        updated_at=case.updated_at,
        duplicate_of=duplicate_of,
        note=note,
        timeline=timeline(session, case, staff=staff),
    )
    if staff:
        data["staff_notes"] = case.staff_notes
        if audit_read:
            audit.record(
                session, actor=actor, action="case.read", target_type="case", target_id=case.id
            )
    return data
