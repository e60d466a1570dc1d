"""A new case: its row, its timeline (submit, route, page), the resident's receipt, the duty
pages, and the link to a probable duplicate (server/cases/intake.py decides when)."""

from __future__ import annotations

import datetime as dt
import logging
from typing import Any

from sqlalchemy.orm import Session

import notifications
from server import audit
from server.accounts.models import Account
from server.cases import clocks
from server.cases.aid_types import AID_TYPES
from server.cases.events import add_event
from server.cases.lookup import Found
from server.cases.models import CHANNEL_LABELS, Case, new_case_id
from server.cases.numbers import next_case_no
from server.cases.transitions import transition
from server.routing.rules import Decision, Gazetteer

log = logging.getLogger(__name__)


def _queue_name(gaz: Any, decision: Decision) -> str:
    if decision.township_code:
        return gaz.name(decision.township_code) or decision.township_code
    return f"{gaz.name(decision.county_code) or decision.county_code}民政部门"


_DUPLICATE_TEXT = {
    "same_phone": "同一电话另有正在办理的案件（不在本登记人辖区），未合并，请督导核对。",
    "same_id_number": "同一身份证号另有正在办理的案件（不同电话），未合并，请督导核对是否同一人。",
}


def link_duplicate(
    session: Session, *, case: Case, duplicate: Case, person: Account, actor: Any, now: dt.datetime
) -> None:
    """A staff-only ``possible_duplicate`` event on each case (the other case's id only:
    whoever may see one may not see the other) and an audit entry on the older one."""
    reason = "same_phone" if duplicate.resident_id == person.id else "same_id_number"
    for this, other in ((case, duplicate), (duplicate, case)):
        add_event(
            session,
            case_id=this.id,
            actor=None,
            action="possible_duplicate",
            resident_visible=False,
            text_zh=_DUPLICATE_TEXT[reason],
            data={"case_id": str(other.id), "reason": reason},
            at=now,
        )
    audit.record(
        session,
        actor=actor,
        action="case.possible_duplicate",
        target_type="case",
        target_id=duplicate.id,
        data={"case_id": str(case.id), "reason": reason},
    )


def create_case(
    session: Session,
    *,
    gaz: Gazetteer,
    decision: Decision,
    found: Found,
    person: Account,
    actor: Any,
    urgent: bool,
    aid_type: str,
    channel: str,
    subject_id_hash: str | None,
    details: dict[str, Any],
    now: dt.datetime,
) -> Case:
    """A new case in the queue ``decision`` chose (``details``: its fields from the request),
    with its timeline (submit, route, page), the resident's receipt and, when urgent, the
    pages (``found.pagers``)."""
    queue_code = decision.township_code or decision.county_code
    case = Case(
        id=new_case_id(),
        case_no=next_case_no(session, urgent=urgent, queue_code=queue_code, now=now),
        urgent=urgent,
        aid_type=aid_type,
        channel=channel,
        resident_id=person.id,
        created_by_id=getattr(actor, "id", None),
        subject_phone=person.phone,
        subject_id_hash=subject_id_hash or person.id_number_hash,
        township_code=decision.township_code,
        county_code=decision.county_code,
        accountable_township_code=decision.township_code,
        routing_evidence=decision.evidence,
        routing_reason=decision.reason_zh,
        pay_due_at=clocks.pay_due_at(now) if urgent else None,
        created_at=now,
        **details,
    )
    session.add(case)
    kind = "紧急求助" if urgent else f"{AID_TYPES[aid_type]}申请"
    transition(
        session,
        case,
        "create",
        actor=actor,
        text_zh=f"已收到您的{kind}。",
        data={"channel": channel},
        event_action="submit",
        audit_data={"channel": channel, "urgent": urgent},
        at=now,
    )
    session.flush()  # the case's row before the outbox rows that refer to it
    queue_name = _queue_name(gaz, decision)
    add_event(
        session,
        case_id=case.id,
        actor=None,
        action="route",
        to_status=case.status,
        text_zh=f"已转{queue_name}办理。"
        if decision.township_code
        else "正在为您确定办理的乡镇（街道），请稍候。",
        data={
            "evidence": decision.evidence,
            "township_code": decision.township_code,
            "queue_code": queue_code,
            "reason": decision.reason_zh,
        },
        at=now,
    )
    params = {"case_no": case.case_no, "township": queue_name}
    if person.phone:
        template = "urgent_receipt" if urgent else "receipt"
        notifications.enqueue(session, person.phone, template, params, case_id=case.id)
    if urgent:
        # How the need came in, never who or where exactly: a page is read on a locked screen.
        page = {**params, "channel": CHANNEL_LABELS[channel]}
        paged = []
        for staff in found.pagers:
            if staff.phone:
                notifications.enqueue(session, staff.phone, "duty_page", page, case_id=case.id)
                paged.append(staff.id)
        if not paged:
            log.warning(
                "urgent case %s: nobody with a phone to page in %s", case.case_no, queue_code
            )
        add_event(
            session,
            case_id=case.id,
            actor=None,
            action="page",
            resident_visible=False,
            text_zh="已短信通知值班人员。" if paged else "无可通知的值班人员，请督导关注。",
            data={"paged_account_ids": paged, "role": found.paged_as},
            at=now,
        )
    return case
