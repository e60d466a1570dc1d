"""Intake: one-tap urgent help, applications, hotline and grid-worker entry.

Every new case is routed to exactly one queue, gets a timeline, a receipt SMS to the resident
and, when urgent, a page to the duty officers on the roster, all in the caller's transaction:
a failure anywhere rolls back the case, its events and its SMS together.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import logging
import uuid
import weakref
from collections.abc import Callable
from typing import Any

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

import notifications
from server import audit
from server.accounts.models import Account
from server.cases import clocks
from server.cases.aid_types import AID_TYPES, URGENT_AID_TYPE
from server.cases.events import add_event
from server.cases.models import OPEN_STATUSES, Case, IdempotencyKey
from server.cases.numbers import next_case_no
from server.db import utcnow
from server.errors import ValidationFailed
from server.roster.service import pagers_for_township, supervisors_to_alert
from server.routing.gazetteer import gazetteer
from server.routing.rules import Decision, Evidence, route

log = logging.getLogger(__name__)

DEFAULT_CITY = "3711"

NOTE_RETRY = "重复提交，已返回原案件。"
NOTE_OPEN_URGENT = "您已有一件正在办理的紧急求助，已为您返回该案件，工作人员会尽快联系您。"
NOTE_DUPLICATE = "此人已有同类正在办理的案件，本次登记已并入该案件。"


class IntakeResult(tuple):
    """``(case, created)``, plus ``note`` and ``duplicate_of`` for the caller."""

    case: Case
    created: bool

    def __new__(
        cls,
        case: Case,
        created: bool,
        note: str | None = None,
        duplicate_of: uuid.UUID | None = None,
    ) -> IntakeResult:
        obj = super().__new__(cls, (case, created))
        obj.note = note
        obj.duplicate_of = duplicate_of
        return obj

    @property
    def case(self) -> Case:  # type: ignore[override]
        return self[0]

    @property
    def created(self) -> bool:  # type: ignore[override]
        return self[1]


def request_fingerprint(endpoint: str, payload: dict[str, Any]) -> str:
    """A stable hash of a request's meaning, to tell a retry from a different request."""
    canonical = json.dumps(payload, sort_keys=True, ensure_ascii=False, default=str)
    return hashlib.sha256(f"{endpoint}\n{canonical}".encode()).hexdigest()


def _deployment_city() -> str:
    try:
        from flask import current_app, has_app_context

        if has_app_context():
            return current_app.config.get("DEPLOYMENT_CITY", DEFAULT_CITY)
    except ImportError:  # pragma: no cover
        pass
    return DEFAULT_CITY


# --- idempotency ------------------------------------------------------------------------


def _claim_key(
    session: Session, *, account_id: int, key: str, endpoint: str, request_hash: str
) -> tuple[IdempotencyKey | None, Case | None]:
    """Reserve ``key`` for this request, or return the case of the earlier one.

    A concurrent request with the same key waits on the unique index (PostgreSQL) until the
    first commits, then sees its case; on SQLite write requests are serialised anyway.
    """
    existing = session.scalar(
        select(IdempotencyKey).where(
            IdempotencyKey.account_id == account_id, IdempotencyKey.key == key
        )
    )
    if existing is None:
        row = IdempotencyKey(
            account_id=account_id, key=key, endpoint=endpoint, request_hash=request_hash
        )
        try:
            with session.begin_nested():
                session.add(row)
                session.flush()
            return row, None
        except IntegrityError:
            existing = session.scalar(
                select(IdempotencyKey).where(
                    IdempotencyKey.account_id == account_id, IdempotencyKey.key == key
                )
            )
            if existing is None:  # pragma: no cover - the other request rolled back
                raise
    if existing.endpoint != endpoint or existing.request_hash != request_hash:
        raise ValidationFailed(
            "该幂等键已用于另一请求。",
            message_en="This Idempotency-Key was used for a different request.",
            errors={"Idempotency-Key": ["同一个幂等键只能用于同一请求，请为新请求生成新键。"]},
        )
    case = session.get(Case, existing.case_id) if existing.case_id else None
    return None, case


def _with_key(
    session: Session,
    *,
    actor: Any,
    key: str | None,
    endpoint: str,
    request_hash: str | None,
    create: Any,
) -> IntakeResult:
    if not key:
        return create()
    if isinstance(actor, Account) or getattr(actor, "role", None) == "resident":
        # Lock before touching the key row: its FK takes a share lock on the account, and a
        # later FOR UPDATE on it would deadlock with a concurrent tap.
        _lock_account_id(session, actor.id)
    row, case = _claim_key(
        session,
        account_id=actor.id,
        key=key,
        endpoint=endpoint,
        request_hash=request_hash or "",
    )
    if row is None and case is not None:
        return IntakeResult(case, False, NOTE_RETRY)
    result = create()
    if row is not None:
        row.case_id = result.case.id
        session.flush()
    return result


# --- creation ---------------------------------------------------------------------------


def _lock_resident(session: Session, resident: Account) -> None:
    # Two taps with different keys at once must not open two urgent cases: serialise per
    # resident on PostgreSQL (SQLite serialises all writers already).
    _lock_account_id(session, resident.id)


def _lock_account_id(session: Session, account_id: int) -> None:
    if session.get_bind().dialect.name != "postgresql":
        return
    # Once per transaction is enough; keyed weakly by the transaction so a later one locks anew.
    by_txn = session.info.setdefault("locked_accounts", weakref.WeakKeyDictionary())
    locked = by_txn.setdefault(session.get_transaction(), set())
    if account_id not in locked:
        session.execute(select(Account.id).where(Account.id == account_id).with_for_update())
        locked.add(account_id)


def _open_cases(
    session: Session,
    *,
    resident: Account,
    urgent: bool | None = None,
    aid_type: str | None = None,
    since: dt.datetime | None = None,
    subject_id_hash: str | None = None,
) -> list[Case]:
    who = Case.resident_id == resident.id
    if subject_id_hash:
        who = who | (Case.subject_id_hash == subject_id_hash)
    query = select(Case).where(who, Case.status.in_(OPEN_STATUSES))
    if urgent is not None:
        query = query.where(Case.urgent.is_(urgent))
    if aid_type:
        query = query.where(Case.aid_type == aid_type)
    if since:
        query = query.where(Case.created_at >= since)
    return list(session.scalars(query.order_by(Case.created_at.desc())))


def _create_case(
    session: Session,
    *,
    resident: Account,
    actor: Any,
    urgent: bool,
    aid_type: str,
    channel: str,
    now: dt.datetime,
    township_code: str | None,
    address: str | None,
    lat: float | None,
    lng: float | None,
    reporter_township_code: str | None = None,
    subject_id_hash: str | None = None,
    **details: Any,
) -> Case:
    gaz = gazetteer(session, _deployment_city())
    decision = route(
        Evidence(
            urgent=urgent,
            township_code=township_code,
            address=address,
            reporter_township_code=reporter_township_code,
            residence_township_code=resident.residence_township_code,
            hukou_township_code=resident.hukou_township_code,
            has_location=lat is not None and lng is not None,
        ),
        gaz,
    )
    queue_code = decision.township_code or decision.county_code
    case = Case(
        id=uuid.uuid4(),
        case_no=next_case_no(session, urgent=urgent, queue_code=queue_code, now=now),
        urgent=urgent,
        aid_type=aid_type,
        channel=channel,
        resident_id=resident.id,
        created_by_id=getattr(actor, "id", None),
        subject_phone=resident.phone,
        subject_id_hash=subject_id_hash or resident.id_number_hash,
        township_code=decision.township_code,
        county_code=decision.county_code,
        accountable_township_code=decision.township_code,
        routing_evidence=decision.evidence,
        routing_reason=decision.reason_zh,
        address=address,
        lat=lat,
        lng=lng,
        pay_due_at=clocks.pay_due_at(now) if urgent else None,
        created_at=now,
        updated_at=now,
        **details,
    )
    session.add(case)
    session.flush()
    queue_name = _queue_name(gaz, decision)
    kind = "紧急求助" if urgent else f"{AID_TYPES[aid_type]}申请"
    add_event(
        session,
        case=case,
        actor=actor,
        action="submit",
        to_status="queued",
        text_zh=f"已收到您的{kind}。",
        data={"channel": channel},
    )
    add_event(
        session,
        case=case,
        actor=None,
        action="route",
        to_status="queued",
        text_zh=f"已转{queue_name}办理。"
        if decision.township_code
        else "正在为您确定办理的乡镇（街道），请稍候。",
        data={
            "evidence": decision.evidence,
            "township_code": decision.township_code,
            "queue_code": queue_code,
            "reason": decision.reason_zh,
        },
    )
    audit.record(
        session,
        actor=actor,
        action="case.create",
        target_type="case",
        target_id=case.id,
        data={"channel": channel, "urgent": urgent},
    )
    _notify_new_case(
        session, case=case, resident=resident, decision=decision, queue_name=queue_name, now=now
    )
    return case


def _queue_name(gaz: Any, decision: Decision) -> str:
    if decision.township_code:
        return gaz.name(decision.township_code) or decision.township_code
    return f"{gaz.name(decision.county_code) or decision.county_code}民政部门"


def _notify_new_case(
    session: Session,
    *,
    case: Case,
    resident: Account,
    decision: Decision,
    queue_name: str,
    now: dt.datetime,
) -> None:
    if resident.phone:
        template = "urgent_receipt" if case.urgent else "receipt"
        notifications.enqueue(
            session,
            resident.phone,
            template,
            {"case_no": case.case_no, "township": queue_name},
            case_id=case.id,
        )
    if not case.urgent:
        return
    if decision.township_code:
        pagers, who = pagers_for_township(session, township_code=decision.township_code, at=now)
    else:
        pagers, who = _triage_supervisors(session, decision.county_code, now), "supervisor"
    paged = []
    for staff in pagers:
        if staff.phone:
            notifications.enqueue(
                session,
                staff.phone,
                "duty_page",
                {"case_no": case.case_no, "township": queue_name},
                case_id=case.id,
            )
            paged.append(staff.id)
    if not paged:
        log.warning(
            "urgent case %s: nobody with a phone to page in %s",
            case.case_no,
            case.township_code or case.county_code,
        )
    add_event(
        session,
        case=case,
        actor=None,
        action="page",
        resident_visible=False,
        text_zh="已短信通知值班人员。" if paged else "无可通知的值班人员，请督导关注。",
        data={"paged_account_ids": paged, "role": who},
    )


def _triage_supervisors(session: Session, region: str, now: dt.datetime) -> list[Account]:
    if len(region) == 6:
        return supervisors_to_alert(session, county_code=region, at=now)
    # The city triage queue: every county's supervisors of the city.
    return list(
        session.scalars(
            select(Account)
            .where(
                Account.role == "supervisor",
                Account.active.is_(True),
                Account.region_code.startswith(region),
            )
            .order_by(Account.id)
        )
    )


def _record_repeat(
    session: Session, *, case: Case, actor: Any, channel: str, details: dict[str, Any]
) -> None:
    kept = {k: v for k, v in details.items() if v not in (None, "")}
    add_event(
        session,
        case=case,
        actor=actor,
        action="repeat_request",
        resident_visible=False,
        text_zh="同一人再次求助或登记，已并入本案件。",
        data={"channel": channel, **kept},
    )


def _submit(
    session: Session,
    *,
    resident: Account,
    actor: Any,
    channel: str,
    urgent: bool,
    aid_type: str,
    since: dt.datetime | None,
    note: str,
    endpoint: str,
    idempotency_key: str | None,
    request_hash: str | None,
    on_repeat: Callable[[], None] | None,
    now: dt.datetime,
    subject_id_hash: str | None,
    township_code: str | None,
    address: str | None,
    lat: float | None,
    lng: float | None,
    reporter_township_code: str | None,
    **details: Any,
) -> IntakeResult:
    """Return the person's open case of this kind (recording the new details on it), or a new
    case; under the client's idempotency key and the person's row lock."""

    def create() -> IntakeResult:
        _lock_resident(session, resident)
        open_same = _open_cases(
            session,
            resident=resident,
            urgent=True if urgent else None,
            aid_type=None if urgent else aid_type,
            since=since,
            subject_id_hash=subject_id_hash,
        )
        if open_same:
            if on_repeat is not None:
                on_repeat()
            case = open_same[0]
            repeat = {"address": address, "lat": lat, "lng": lng, **details}
            _record_repeat(session, case=case, actor=actor, channel=channel, details=repeat)
            return IntakeResult(case, False, note, duplicate_of=case.id)
        case = _create_case(
            session,
            resident=resident,
            actor=actor,
            urgent=urgent,
            aid_type=aid_type,
            channel=channel,
            now=now,
            township_code=township_code,
            address=address,
            lat=lat,
            lng=lng,
            reporter_township_code=reporter_township_code,
            subject_id_hash=subject_id_hash,
            **details,
        )
        return IntakeResult(case, True)

    return _with_key(
        session,
        actor=actor,
        key=idempotency_key,
        endpoint=endpoint,
        request_hash=request_hash,
        create=create,
    )


def submit_urgent(
    session: Session,
    *,
    resident: Account,
    actor: Any,
    channel: str,
    township_code: str | None = None,
    lat: float | None = None,
    lng: float | None = None,
    address: str | None = None,
    description: str | None = None,
    contact_phone: str | None = None,
    idempotency_key: str | None = None,
    request_hash: str | None = None,
    reporter_township_code: str | None = None,
    staff_notes: str | None = None,
    subject_id_hash: str | None = None,
    on_repeat: Callable[[], None] | None = None,
    now: dt.datetime | None = None,
) -> IntakeResult:
    """One-tap urgent help: never refused for lack of detail; one open urgent case a person.

    ``on_repeat`` runs when the person already has an open urgent case (not for a retry of
    the same tap); it may raise to throttle repeated taps — a first request never reaches it.
    """
    return _submit(
        session,
        resident=resident,
        actor=actor,
        channel=channel,
        urgent=True,
        aid_type=URGENT_AID_TYPE,
        since=None,
        note=NOTE_OPEN_URGENT,
        endpoint="urgent",
        idempotency_key=idempotency_key,
        request_hash=request_hash,
        on_repeat=on_repeat,
        now=now or utcnow(),
        subject_id_hash=subject_id_hash,
        township_code=township_code,
        address=address,
        lat=lat,
        lng=lng,
        reporter_township_code=reporter_township_code,
        description=description,
        contact_phone=contact_phone,
        staff_notes=staff_notes,
    )


def submit_application(
    session: Session,
    *,
    resident: Account,
    actor: Any,
    channel: str,
    aid_type: str,
    reason: str | None = None,
    household_size: int | None = None,
    monthly_income_fen: int | None = None,
    township_code: str | None = None,
    address: str | None = None,
    lat: float | None = None,
    lng: float | None = None,
    description: str | None = None,
    contact_phone: str | None = None,
    idempotency_key: str | None = None,
    request_hash: str | None = None,
    reporter_township_code: str | None = None,
    staff_notes: str | None = None,
    subject_id_hash: str | None = None,
    duplicate_window: dt.timedelta = dt.timedelta(days=30),
    now: dt.datetime | None = None,
) -> IntakeResult:
    """An application for a non-urgent aid type, with household facts; an open case of the
    same person and aid type within ``duplicate_window`` absorbs it."""
    now = now or utcnow()
    if aid_type not in AID_TYPES or aid_type == URGENT_AID_TYPE:
        raise ValidationFailed(errors={"aid_type": ["不支持的救助类型。"]})
    return _submit(
        session,
        resident=resident,
        actor=actor,
        channel=channel,
        urgent=False,
        aid_type=aid_type,
        since=now - duplicate_window,
        note=NOTE_DUPLICATE,
        endpoint="applications",
        idempotency_key=idempotency_key,
        request_hash=request_hash,
        on_repeat=None,
        now=now,
        subject_id_hash=subject_id_hash,
        township_code=township_code,
        address=address,
        lat=lat,
        lng=lng,
        reporter_township_code=reporter_township_code,
        reason=reason,
        household_size=household_size,
        monthly_income_fen=monthly_income_fen,
        description=description,
        contact_phone=contact_phone,
        staff_notes=staff_notes,
    )
