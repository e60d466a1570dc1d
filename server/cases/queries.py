"""Reading cases: the resident's list and detail, staff look-ups by phone, the timeline."""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Any

from sqlalchemy import and_, bindparam, func, select
from sqlalchemy.orm import Session

from notifications import ops as sms_ops
from server import access, audit
from server.accounts import tokens
from server.accounts.models import Account
from server.cases.aid_types import AID_TYPES
from server.cases.models import STATUS_LABELS, Case, CaseEvent
from server.divisions.models import Division
from server.divisions.service import deployment_city
from server.documents import service as documents
from server.errors import NotFound
from server.masking import mask_name, mask_phone
from server.routing.gazetteer import gazetteer

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
    case_no: str | None = None,
    name: str | None = None,
    since: dt.datetime | None = None,
    until: dt.datetime | None = None,
) -> tuple[list[Case], int]:
    """Cases visible to ``actor``, newest first; staff may filter by the person's phone, the
    case number, the resident's name (exact) and the submission time [since, until)."""
    query = select(Case).where(access.case_scope_clause(actor))
    if phone is not None:
        query = query.where(Case.subject_phone == phone)
    if case_no is not None:
        query = query.where(Case.case_no == case_no)
    if name is not None:
        named = select(Account.id).where(Account.role == "resident", Account.name == name)
        query = query.where(Case.resident_id.in_(named))
    if since is not None:
        query = query.where(Case.created_at >= since)
    if until is not None:
        query = query.where(Case.created_at < until)
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
    gaz = gazetteer(session, deployment_city())
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
        queue = {"kind": "township", **township}
    else:
        code = case.county_code or ""
        queue = {"kind": "triage", "code": code, "name": f"{names.get(code, code)}分拣队列"}
    return {"township": township, "queue": queue}


def _person(session: Session, case: Case, resident: Any = None) -> dict[str, Any]:
    resident = resident or session.get(Account, case.resident_id)
    return {
        "name": mask_name(resident.name) if resident else None,
        "phone": mask_phone(case.subject_phone),
        "id_number": resident.id_number_masked if resident else None,
    }


def summary(
    session: Session,
    case: Case,
    *,
    actor: Any,
    names: dict[str, str],
    person: Any = None,
) -> dict[str, Any]:
    """A list line: masked personal data only (``person``: the case's resident account, when
    the caller has it already)."""
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
        data["person"] = _person(session, case, person)
    return data


def summaries(session: Session, cases: list[Case], *, actor: Any) -> list[dict[str, Any]]:
    names = _names(session, {c.township_code or c.county_code or "" for c in cases})
    return [summary(session, c, actor=actor, names=names) for c in cases]


def _event_item(ev: Any, *, staff: bool) -> dict[str, Any]:
    item: dict[str, Any] = {
        "at": ev.at,
        "action": ev.action,
        "status": ev.to_status,
        "text": ev.text_zh,
    }
    if staff:
        item["actor_role"] = ev.actor_role
        item["data"] = ev.data or {}
    return item


def timeline(session: Session, case: Any, *, staff: bool) -> list[dict[str, Any]]:
    """The case's events, oldest first; residents see only resident-visible ones."""
    if session.new or session.dirty:
        session.flush()  # Core reads below do not autoflush events added in this request
    return [
        _event_item(ev, staff=staff)
        for ev in session.connection().execute(_TIMELINE, {"case_id": case.id})
        if access.event_visible(ev, staff=staff)
    ]


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
    events = timeline(session, case, staff=actor.is_staff)
    data = case_body(
        session, case, actor=actor, events=events, note=note, duplicate_of=duplicate_of
    )
    if actor.is_staff:
        data["documents"] = documents.overview(session, actor=actor, case=case)
    if actor.is_staff and audit_read:
        audit.record(
            session, actor=actor, action="case.read", target_type="case", target_id=case.id
        )
    return data


def case_body(
    session: Session,
    case: Any,
    *,
    actor: Any,
    events: list[dict[str, Any]],
    note: str | None = None,
    duplicate_of: Any = None,
    names: dict[str, str] | None = None,
    person: Any = None,
) -> dict[str, Any]:
    """The CaseSchema fields of ``case`` (an entity or a row) as ``actor`` sees them, with
    its timeline ``events``; ``names`` and ``person`` when the caller has them already."""
    code = case.township_code or case.county_code or ""
    if names is None or code not in names:
        names = _names(session, {code})
    data = summary(session, case, actor=actor, names=names, person=person)
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
        timeline=events,
    )
    if actor.is_staff:
        data["staff_notes"] = case.staff_notes
    return data


# The resident's status read, the hottest path, in one statement: the case, its
# resident-visible timeline, and what proves the caller may read it — the token's session
# live (tokens.signed_in_clause), the case that account's own (access.own_case_clause), and
# the account's role and active flag for tokens.signed_in_actor.
_ACCOUNTS = Account.__table__
# The case columns CaseSchema shows a resident.
# fmt: off
_RESIDENT_VIEW_COLUMNS = (
    "id", "case_no", "status", "urgent", "aid_type", "channel", "township_code", "county_code",
    "routing_evidence", "routing_reason", "address", "lat", "lng", "description",
    "contact_phone", "reason", "household_size", "monthly_income_fen", "approved_amount_fen",
    "paid_amount_fen", "paid_at", "pay_due_at", "paperwork_due_at", "created_at", "updated_at",
)
# fmt: on
_OWN_CASE_READ = (
    select(
        *(_CASES.c[name] for name in _RESIDENT_VIEW_COLUMNS),
        *tokens.SIGNED_IN_COLUMNS,
        _EVENTS.c.id.label("event_id"),
        _EVENTS.c.at,
        _EVENTS.c.action,
        _EVENTS.c.to_status,
        _EVENTS.c.text_zh,
    )
    .select_from(
        tokens.SIGNED_IN_FROM.join(_CASES, access.own_case_clause(_ACCOUNTS.c.id)).outerjoin(
            _EVENTS, and_(_EVENTS.c.case_id == _CASES.c.id, access.resident_event_clause())
        )
    )
    .where(
        _CASES.c.id == bindparam("case_id"),
        tokens.signed_in_clause(
            account_id=bindparam("account_id"), session_id=bindparam("session_id")
        ),
    )
    .order_by(_EVENTS.c.id)
)


def resident_read(
    session: Session, *, claims: dict[str, Any], case_id: uuid.UUID
) -> dict[str, Any] | None:
    """A resident reading their own case: its ``case_body``, from one statement that also
    authenticates the verified token ``claims`` (a resident's: the caller checks the role);
    the caller becomes the request's actor. None when that finds nothing (not their case, no
    such case, session revoked, account disabled): the full path answers those."""
    rows = session.execute(
        _OWN_CASE_READ,
        {"case_id": case_id, "account_id": int(claims["sub"]), "session_id": claims["sid"]},
    ).all()
    if not rows:
        return None
    first = rows[0]
    resident = tokens.signed_in_actor(claims, first)
    if resident is None:
        return None
    events = [_event_item(row, staff=False) for row in rows if row.event_id is not None]
    # A resident's body needs only the division name (staff also see the person).
    return case_body(session, first, actor=resident, events=events)


def contact(session: Session, case: Any, *, actor: Any) -> dict[str, Any]:
    """A case's full phone numbers for the staff who may call (``access.require_contact``,
    told whether the case has an open call-back task); the read is written to the audit
    trail."""
    access.require_contact(actor, case, callback_open=callback_open(session, case))
    phone = case.subject_phone
    if not phone:
        phone = session.scalar(select(Account.phone).where(Account.id == case.resident_id))
    audit.record(
        session, actor=actor, action="case.read_contact", target_type="case", target_id=case.id
    )
    return {
        "case_id": case.id,
        "case_no": case.case_no,
        "phone": phone,
        "contact_phone": case.contact_phone,
    }


def callback_open(session: Session, case: Any) -> bool:
    """Whether ``case`` has an open call-back task (a resident an SMS did not reach)."""
    return bool(sms_ops.callback_tasks(session, case_id=case.id, status="open"))
