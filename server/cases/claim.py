"""Who holds a case: the claim of the next queued case, its release, the urgent lease's expiry.

PostgreSQL: the claim's ``SELECT ... FOR UPDATE SKIP LOCKED`` lets concurrent claimers take
different rows. SQLite: the request's transaction began with ``BEGIN IMMEDIATE``
(server/session.py), so claims are serialised. Either way no case is handed to two people,
and the write is guarded by the case's row version (server/cases/locks.py).
"""

from __future__ import annotations

import datetime as dt
import logging
from typing import Any

from sqlalchemy import bindparam, exists, select
from sqlalchemy.orm import Session

import notifications
from server.accounts.models import ROLE_LABELS, Account
from server.cases import clocks
from server.cases.locks import concurrent_update_is_conflict
from server.cases.models import Case, CaseEvent
from server.cases.notices import division_name
from server.cases.transitions import transition
from server.db import utcnow

log = logging.getLogger(__name__)

# The queue's order: urgent first, then the earliest deadline, then first come.
QUEUE_ORDER = (
    Case.urgent.desc(),
    Case.pay_due_at.asc().nulls_last(),
    Case.created_at.asc(),
    Case.id.asc(),
)


def clear_claim(case: Case) -> None:
    """Nobody holds ``case`` any more."""
    case.claimed_by_id = None
    case.claimed_at = None
    case.lease_expires_at = None


def _next_queued(*, triage: bool) -> Any:
    # The resident account's phone comes with the case (for the "claimed" SMS): a scalar
    # subquery, not a join, so only the case row is locked.
    phone = select(Account.phone).where(Account.id == Case.resident_id).scalar_subquery()
    query = select(Case, phone).where(Case.status == "queued")
    if triage:
        query = query.where(Case.township_code.is_(None), Case.county_code == bindparam("code"))
    else:
        query = query.where(Case.township_code == bindparam("code"))
    return query.order_by(*QUEUE_ORDER).limit(1).with_for_update(skip_locked=True, of=Case)


# Built once: a statement object keeps its cache key, so each claim skips computing it.
_NEXT = {triage: _next_queued(triage=triage) for triage in (False, True)}
_CLAIMED_BEFORE = select(
    exists().where(CaseEvent.case_id == bindparam("case_id"), CaseEvent.action == "claim")
)


def claim_next(
    session: Session,
    *,
    actor: Any,
    township_code: str | None = None,
    county_code: str | None = None,
    township_name: str | None = None,
    now: dt.datetime | None = None,
) -> Case | None:
    """Hand ``actor`` the next queued case of a township queue (or of a county's triage
    queue): urgent first, earliest deadline first. None when the queue is empty.
    ``township_name``: the township's name when the caller knows it already."""
    now = now or utcnow()
    found = session.execute(
        _NEXT[not township_code], {"code": township_code or county_code}
    ).first()
    if found is None:
        return None
    case, account_phone = found
    # Asked after the row lock, so it sees every committed claim: the resident hears once,
    # at the first claim (not again after a release).
    claimed_before = session.scalar(_CLAIMED_BEFORE, {"case_id": case.id})
    if township_code and township_name is None:
        township_name = division_name(session, township_code)
    township = township_name or "区县民政部门"
    lease = clocks.urgent_lease()
    # Any flush from here on (an SMS template read autoflushes) checks the row version.
    with concurrent_update_is_conflict():
        transition(
            session,
            case,
            "claim",
            actor=actor,
            text_zh=f"{township}工作人员已受理，正在办理。",
            data={"lease_minutes": int(lease.total_seconds() // 60) if case.urgent else None},
        )
        case.claimed_by_id = actor.id
        case.claimed_at = now
        case.lease_expires_at = now + lease if case.urgent else None
        phone = case.contact_phone or account_phone
        if not claimed_before and phone:
            params = {"case_no": case.case_no, "township": township}
            notifications.enqueue(session, phone, "claimed", params, case_id=case.id)
        elif not claimed_before:
            log.info("no phone for case %s: claimed SMS not queued", case.case_no)
        session.flush()
    return case


def release(session: Session, actor: Any, case: Case, args: dict, now: dt.datetime) -> None:
    """The holder (or a supervisor) puts the case back in its queue."""
    transition(
        session,
        case,
        "release",
        actor=actor,
        text_zh=f"{ROLE_LABELS.get(getattr(actor, 'role', ''), '系统')}退回队列"
        + (f"：{args['reason']}" if args.get("reason") else "。"),
        data={"reason": args.get("reason"), "held_by": case.claimed_by_id},
        resident_visible=False,
    )
    clear_claim(case)


def expire_lease(session: Session, case: Case, *, actor: Any) -> None:
    """An urgent claim untouched past its lease goes back to its queue (the sweeper)."""
    holder = case.claimed_by_id
    transition(
        session,
        case,
        "expire_lease",
        actor=actor,
        text_zh="认领后超时未处理，已退回乡镇队列。",
        data={"held_by": holder},
        resident_visible=False,
        audit_data={"held_by": holder},
    )
    clear_claim(case)
