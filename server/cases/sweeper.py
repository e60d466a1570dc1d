"""The SLA sweeper: escalate what is late, once, to the county supervisor(s) on duty.

Run by the worker (``flask --app wsgi worker [--once]``) as a periodic job, in a thread apart
from its sends and, on PostgreSQL, in one worker at a time (notifications/worker.py). Each
escalation is recorded in ``escalations`` under a unique key, inside a savepoint: if two
sweeps overlap all the same, or the sweep runs every minute, a supervisor is told once per
situation.

| kind | when | what happens |
|---|---|---|
| ``unclaimed`` | urgent case still queued past the claim target | supervisor told |
| ``lease_expired`` | urgent claim untouched past its lease | back to the queue, supervisor told |
| ``pay_due_warning`` | urgent case unpaid 20 h after the request | supervisor told |
| ``pay_due_breach`` | urgent case unpaid past the 24 h | supervisor told |
| ``paperwork_overdue`` | paid urgent case, paperwork past its 5 working days | supervisor told |

Each escalation is its own record and timeline event; the supervisors are told once per
sweep: a supervisor with one escalation gets the case's ``escalation`` SMS, one with several
a single ``escalation_digest`` (how many, of which kinds, where, the first case numbers), all
in the sweep's transaction. A flood's backlog is then a few messages, not one per case queued
behind the duty pages.
"""

from __future__ import annotations

import datetime as dt
import functools
import logging
import time
import uuid
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import and_, exists, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session
from sqlalchemy.orm.exc import StaleDataError

import notifications
from server.cases import clocks, state
from server.cases.claim import expire_lease
from server.cases.events import add_event
from server.cases.models import Case
from server.cases.notices import division_name
from server.cases.workflow_models import Escalation
from server.db import is_postgresql
from server.roster.service import supervisors_to_alert

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
# The same, as short as a digest line can take, in the order a supervisor should read them.
DIGEST_LABELS = {
    "pay_due_breach": "超24小时未发放",
    "lease_expired": "认领后超时退回",
    "unclaimed": "超时无人认领",
    "pay_due_warning": "临近24小时时限",
    "paperwork_overdue": "手续逾期",
}
DIGEST_CASES = 3  # case numbers a digest names
DIGEST_TOWNSHIPS = 3  # townships a digest names


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
    if is_postgresql(session):
        query = query.with_for_update(skip_locked=True)
    return list(session.scalars(query.execution_options(populate_existing=True)))


@dataclass
class _Fired:
    case_id: uuid.UUID
    case_no: str
    kind: str
    county: str
    township: str
    escalation: Escalation


@dataclass
class Digest:
    """The escalations one sweep fired, told to the supervisors at its end: one SMS per
    supervisor's phone (the case's ``escalation`` message when it is one case, else an
    ``escalation_digest``)."""

    fired: list[_Fired] = field(default_factory=list)

    def add(self, session: Session, case: Case, kind: str, escalation: Escalation) -> None:
        township = division_name(session, case.township_code or case.accountable_township_code)
        self.fired.append(
            _Fired(
                case_id=case.id,
                case_no=case.case_no,
                kind=kind,
                county=case.queue_county,
                township=township or "区县分流",
                escalation=escalation,
            )
        )

    def send(self, session: Session, now: dt.datetime) -> int:
        """Queue the messages in the caller's transaction; returns how many."""
        order = list(DIGEST_LABELS)
        fired = sorted(self.fired, key=lambda f: order.index(f.kind))  # stable: then as fired
        by_county: dict[str, list[_Fired]] = {}
        for f in fired:
            by_county.setdefault(f.county, []).append(f)
        by_phone: dict[str, list[_Fired]] = {}
        for county, items in by_county.items():
            found = supervisors_to_alert(session, county_code=county, at=now) if county else []
            phones = list(dict.fromkeys(s.phone for s in found if s.phone))
            for f in items:
                f.escalation.notified = len(phones)
                if not phones:
                    log.warning(
                        "escalation for case %s reached no supervisor of %s", f.case_no, county
                    )
            for phone in phones:
                by_phone.setdefault(phone, []).extend(items)
        for phone, items in by_phone.items():
            if len(items) == 1:
                [f] = items
                notifications.enqueue(
                    session,
                    phone,
                    "escalation",
                    {"case_no": f.case_no, "township": f.township, "problem": PROBLEMS[f.kind]},
                    case_id=f.case_id,
                )
            else:
                notifications.enqueue(session, phone, "escalation_digest", _digest_params(items))
        session.flush()
        return len(by_phone)


def _digest_params(items: list[_Fired]) -> dict[str, Any]:
    kinds = Counter(f.kind for f in items)
    summary = "、".join(f"{label}{kinds[k]}件" for k, label in DIGEST_LABELS.items() if k in kinds)
    townships = [name for name, _ in Counter(f.township for f in items).most_common()]
    named = "、".join(townships[:DIGEST_TOWNSHIPS])
    return {
        "count": len(items),
        "summary": summary,
        "townships": named + ("等" if len(townships) > DIGEST_TOWNSHIPS else ""),
        "case_nos": [f.case_no for f in items[:DIGEST_CASES]],
    }


def _fire(
    session: Session,
    digest: Digest,
    *,
    case: Case,
    kind: str,
    now: dt.datetime,
    ref: str = "",
    change: Callable[[], None] | None = None,
) -> bool:
    """Record escalation (case, kind, ref) once, apply ``change`` and write the event in one
    savepoint, so a duplicate or a race undoes all of it; then add it to ``digest`` (the
    supervisors are told when the sweep ends)."""
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
                case_id=case.id,
                actor=SYSTEM,
                action=f"escalation.{kind}",
                text_zh=f"督办：{PROBLEMS[kind]}（{township or '区县分流'}），已通知区县民政督导。",
                data={"kind": kind, "ref": ref or None, "at": now.isoformat()},
                resident_visible=False,
            )
            session.flush()
    except (IntegrityError, StaleDataError):
        # Fired already (another worker) or the case moved under us: nothing to do.
        log.info("escalation %s of case %s skipped (already fired or case changed)", kind, case.id)
        return False
    digest.add(session, case, kind, row)
    log.warning("escalation %s: case %s", kind, case.case_no)
    return True


def sweep(
    session: Session,
    now: dt.datetime,
    *,
    claim_target: dt.timedelta = DEFAULT_CLAIM_TARGET,
) -> dict[str, int]:
    """Run every SLA check once at ``now`` and tell the supervisors (one SMS each); flushes
    only. Returns how many fired per kind."""
    fired = dict.fromkeys(PROBLEMS, 0)
    digest = Digest()
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
            digest,
            case=case,
            kind="lease_expired",
            ref=ref[:40],
            now=now,
            change=functools.partial(expire_lease, session, case, actor=SYSTEM),
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
                Case.paperwork_done_at.is_(None),  # the checklist was complete in time
                _not_fired("paperwork_overdue"),
            ),
        ),
    ]
    for kind, query in checks:
        for case in _candidates(session, query):
            if _fire(session, digest, case=case, kind=kind, now=now):
                fired[kind] += 1
    digest.send(session, now)
    return fired


def periodic_job(claim_minutes: int) -> Callable[[Session, dt.datetime], None]:
    """The sweep as the worker's periodic job ``(session, now) -> None``."""
    target = dt.timedelta(minutes=claim_minutes)

    def sla_sweep(session: Session, now: dt.datetime) -> None:
        started = time.monotonic()
        counts = sweep(session, now, claim_target=target)
        if any(counts.values()):
            log.info("SLA sweep: %s in %.2f s", counts, time.monotonic() - started)

    return sla_sweep
