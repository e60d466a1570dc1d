"""The SLA sweeper: escalate what is late, once, to the county supervisor(s) on duty.

Run by the worker (``flask --app wsgi worker [--once]``) as a periodic job. Each escalation
is recorded in ``escalations`` under a unique key, inside a savepoint: if two workers sweep
at once, or the sweep runs every minute, a supervisor is told once per situation.

| kind | when | what happens |
|---|---|---|
| ``unclaimed`` | urgent case still queued past the claim target | supervisor told |
| ``lease_expired`` | urgent claim untouched past its lease | back to the queue, supervisor told |
| ``pay_due_warning`` | urgent case unpaid 20 h after the request | supervisor told |
| ``pay_due_breach`` | urgent case unpaid past the 24 h | supervisor told |
| ``paperwork_overdue`` | paid urgent case, paperwork past its 5 working days | supervisor told |
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Callable
from typing import Any

from sqlalchemy import and_, exists, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session
from sqlalchemy.orm.exc import StaleDataError

from server.audit import record
from server.cases import clocks, state
from server.cases.events import add_event
from server.cases.models import Case
from server.cases.workflow import alert_supervisors, division_name
from server.cases.workflow_models import Escalation
from server.db import is_sqlite

log = logging.getLogger(__name__)

DEFAULT_CLAIM_TARGET = dt.timedelta(minutes=15)
BATCH = 200

PROBLEMS = {
    "unclaimed": "紧急求助超时无人认领",
    "lease_expired": "认领后超时未处理，已退回队列",
    "pay_due_warning": "距24小时发放时限不足4小时",
    "pay_due_breach": "已超过24小时发放时限仍未发放",
    "paperwork_overdue": "先行救助手续逾期未补齐",
}


class SystemActor:
    """The sweeper as the actor of timeline events."""

    id = None
    role = "system"


SYSTEM = SystemActor()


def _not_fired(kind: str, ref: Any = "") -> Any:
    return ~exists().where(
        and_(Escalation.case_id == Case.id, Escalation.kind == kind, Escalation.ref == ref)
    )


def _candidates(session: Session, query: Any) -> list[Case]:
    # On PostgreSQL, concurrent sweepers (several workers) skip each other's rows.
    query = query.order_by(Case.created_at).limit(BATCH)
    if not is_sqlite(session):
        query = query.with_for_update(skip_locked=True)
    return list(session.scalars(query.execution_options(populate_existing=True)))


def _fire(
    session: Session,
    *,
    case: Case,
    kind: str,
    now: dt.datetime,
    ref: str = "",
    change: Callable[[], None] | None = None,
) -> bool:
    """Record escalation (case, kind, ref) once, apply ``change``, write the event and tell
    the supervisors - all in one savepoint, so a duplicate or a race undoes all of it."""
    try:
        with session.begin_nested():
            row = Escalation(case_id=case.id, kind=kind, ref=ref, fired_at=now)
            session.add(row)
            session.flush()
            if change is not None:
                change()
            township = division_name(session, case.township_code)
            add_event(
                session,
                case=case,
                actor=SYSTEM,
                action=f"escalation.{kind}",
                text_zh=f"督办：{PROBLEMS[kind]}（{township or '区县分流'}），已通知区县民政督导。",
                data={"kind": kind, "ref": ref or None, "at": now.isoformat()},
                resident_visible=False,
            )
            row.notified = alert_supervisors(session, case=case, problem=PROBLEMS[kind], now=now)
            session.flush()
    except (IntegrityError, StaleDataError):
        # Fired already (another worker) or the case moved under us: nothing to do.
        log.info("escalation %s of case %s skipped (already fired or case changed)", kind, case.id)
        return False
    log.warning("escalation %s: case %s", kind, case.case_no)
    return True


def _expire_lease(session: Session, case: Case, now: dt.datetime) -> Callable[[], None]:
    def change() -> None:
        holder = case.claimed_by_id
        before, after = state.apply(case, "expire_lease")
        case.claimed_by_id = None
        case.claimed_at = None
        case.lease_expires_at = None
        record(
            session,
            actor=SYSTEM,
            action="case.expire_lease",
            target_type="case",
            target_id=case.id,
            data={"from": before, "to": after, "held_by": holder},
        )
        add_event(
            session,
            case=case,
            actor=SYSTEM,
            action="expire_lease",
            from_status=before,
            to_status=after,
            text_zh="认领后超时未处理，已退回乡镇队列。",
            data={"held_by": holder},
            resident_visible=False,
        )
        session.flush()

    return change


def sweep(
    session: Session,
    now: dt.datetime,
    *,
    claim_target: dt.timedelta = DEFAULT_CLAIM_TARGET,
) -> dict[str, int]:
    """Run every SLA check once at ``now``; flushes only. Returns how many fired per kind."""
    fired = dict.fromkeys(PROBLEMS, 0)
    unpaid = Case.status.in_(state.UNPAID_OPEN_STATUSES)

    for case in _candidates(
        session,
        select(Case).where(
            Case.urgent.is_(True),
            Case.status == "claimed",
            Case.lease_expires_at.is_not(None),
            Case.lease_expires_at <= now,
        ),
    ):
        ref = case.claimed_at.isoformat() if case.claimed_at else ""
        if _fire(
            session,
            case=case,
            kind="lease_expired",
            ref=ref[:40],
            now=now,
            change=_expire_lease(session, case, now),
        ):
            fired["lease_expired"] += 1

    checks: list[tuple[str, Any]] = [
        (
            "unclaimed",
            select(Case).where(
                Case.urgent.is_(True),
                Case.status == "queued",
                Case.created_at <= now - claim_target,
                _not_fired("unclaimed"),
            ),
        ),
        (
            "pay_due_breach",
            select(Case).where(
                Case.urgent.is_(True),
                unpaid,
                Case.pay_due_at <= now,
                _not_fired("pay_due_breach"),
            ),
        ),
        (
            "pay_due_warning",
            select(Case).where(
                Case.urgent.is_(True),
                unpaid,
                Case.pay_due_at > now,
                Case.pay_due_at <= now + clocks.PAY_WARNING_BEFORE,
                _not_fired("pay_due_warning"),
            ),
        ),
        (
            "paperwork_overdue",
            select(Case).where(
                Case.status == "paid",
                Case.paperwork_due_at.is_not(None),
                Case.paperwork_due_at <= now,
                _not_fired("paperwork_overdue"),
            ),
        ),
    ]
    for kind, query in checks:
        for case in _candidates(session, query):
            if _fire(session, case=case, kind=kind, now=now):
                fired[kind] += 1
    return fired


def periodic_job(claim_minutes: int) -> Callable[[Session, dt.datetime], None]:
    """The sweep as the worker's periodic job ``(session, now) -> None``."""
    target = dt.timedelta(minutes=claim_minutes)

    def sla_sweep(session: Session, now: dt.datetime) -> None:
        counts = sweep(session, now, claim_target=target)
        if any(counts.values()):
            log.info("SLA sweep: %s", counts)

    return sla_sweep
