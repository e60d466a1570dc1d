"""Queue listings and the county SLA report."""

from __future__ import annotations

import datetime as dt
import statistics
from collections import defaultdict
from typing import Any

from sqlalchemy import Select, func, select
from sqlalchemy.orm import Session

from server.cases.claim import QUEUE_ORDER
from server.cases.clocks import SHANGHAI
from server.cases.models import OPEN_STATUSES, Case, CaseEvent
from server.cases.state import UNPAID_OPEN_STATUSES
from server.db import UTC
from server.divisions.models import Division
from server.errors import NotFound
from server.routing.gazetteer import gazetteer

DEFAULT_SLA_DAYS = 30


# A code's length gives its level (server/divisions/models.py).
_LEVEL_BY_LENGTH = {2: "province", 4: "city", 6: "county", 9: "township", 12: "village"}


def require_division(session: Session, code: str, level: str | tuple[str, ...]) -> str:
    """The name of the division with ``code`` at ``level`` (one level or several); 404
    otherwise. From the per-process gazetteer of the code's city when it holds the code."""
    levels = (level,) if isinstance(level, str) else level
    name = gazetteer(session, code[:4]).name(code) if len(code) >= 4 else None
    if name is not None and _LEVEL_BY_LENGTH.get(len(code)) in levels:
        return name
    division = session.get(Division, code)
    if division is None or division.level not in levels:
        raise NotFound("未找到该区域。", message_en="Region not found.")
    return division.name


def list_queue(
    session: Session, *, page: int = 1, per_page: int = 20, **filters: Any
) -> tuple[list[Case], int]:
    """One page of a queue's open cases (``queue_query``'s filters) in claim order, and how
    many there are in all."""
    query = queue_query(**filters)
    total = session.scalar(select(func.count()).select_from(query.subquery())) or 0
    items = session.scalars(
        query.order_by(*QUEUE_ORDER).offset((page - 1) * per_page).limit(per_page)
    ).all()
    return list(items), total


def queue_query(
    *,
    township_code: str | None = None,
    county_code: str | None = None,
    status: str | None = None,
    aid_type: str | None = None,
    urgent: bool | None = None,
    channel: str | None = None,
    claimed_by_id: int | None = None,
) -> Select[Any]:
    """The open cases of a township queue (or a county's triage queue) with these filters,
    ``claimed_by_id`` for the cases one staff member holds ("my cases"): ``select(Case)``,
    unordered (narrow it with ``with_only_columns``)."""
    query = select(Case).where(Case.status.in_((status,) if status else OPEN_STATUSES))
    if township_code:
        query = query.where(Case.township_code == township_code)
    else:
        query = query.where(Case.township_code.is_(None), Case.county_code == county_code)
    if aid_type:
        query = query.where(Case.aid_type == aid_type)
    if urgent is not None:
        query = query.where(Case.urgent.is_(urgent))
    if channel:
        query = query.where(Case.channel == channel)
    if claimed_by_id is not None:
        query = query.where(Case.claimed_by_id == claimed_by_id)
    return query


def _day_start(day: dt.date) -> dt.datetime:
    return dt.datetime.combine(day, dt.time(), tzinfo=SHANGHAI).astimezone(UTC)


def _minutes(delta: dt.timedelta) -> float:
    return round(delta.total_seconds() / 60, 1)


def _median(values: list[float]) -> float | None:
    return round(statistics.median(values), 1) if values else None


def sla_report(
    session: Session,
    *,
    county_code: str,
    since: dt.date | None,
    until: dt.date | None,
    now: dt.datetime,
) -> dict[str, Any]:
    """Per township of the county: open urgent cases now; for urgent cases submitted in
    [since, until] (local dates): paid within 24 h, paid late, open past due, median minutes
    from submission to first claim and to payment. A case counts for its accountable
    (first) township, which keeps the 24 h after a transfer."""
    today = now.astimezone(SHANGHAI).date()
    until = until or today
    since = since or until - dt.timedelta(days=DEFAULT_SLA_DAYS - 1)
    townships = session.scalars(
        select(Division)
        .where(Division.level == "township", Division.parent_code == county_code)
        .order_by(Division.code)
    ).all()
    rows: dict[str, dict[str, Any]] = {
        t.code: {
            "township_code": t.code,
            "township_name": t.name,
            "open_urgent": 0,
            "urgent_cases": 0,
            "paid_within_24h": 0,
            "paid_late": 0,
            "open_past_due": 0,
        }
        for t in townships
    }

    open_now = session.execute(
        select(Case.township_code, func.count())
        .where(
            Case.urgent.is_(True),
            Case.status.in_(UNPAID_OPEN_STATUSES),
            Case.township_code.startswith(county_code),
        )
        .group_by(Case.township_code)
    )
    for code, count in open_now:
        if code in rows:
            rows[code]["open_urgent"] = count

    accountable = func.coalesce(Case.accountable_township_code, Case.township_code)
    first_claim = (
        select(CaseEvent.case_id, func.min(CaseEvent.at).label("at"))
        .where(CaseEvent.action == "claim")
        .group_by(CaseEvent.case_id)
        .subquery()
    )
    cases = session.execute(
        select(Case, accountable, first_claim.c.at)
        .outerjoin(first_claim, first_claim.c.case_id == Case.id)
        .where(
            Case.urgent.is_(True),
            accountable.startswith(county_code),
            Case.created_at >= _day_start(since),
            Case.created_at < _day_start(until + dt.timedelta(days=1)),
        )
    )
    to_claim: dict[str, list[float]] = defaultdict(list)
    to_pay: dict[str, list[float]] = defaultdict(list)
    for case, code, claimed_at in cases:
        row = rows.get(code)
        if row is None:
            continue
        row["urgent_cases"] += 1
        if claimed_at is not None:
            if claimed_at.tzinfo is None:  # SQLite returns the aggregate as naive UTC
                claimed_at = claimed_at.replace(tzinfo=UTC)
            to_claim[code].append(_minutes(claimed_at - case.created_at))
        if case.paid_at is not None:
            to_pay[code].append(_minutes(case.paid_at - case.created_at))
            if case.pay_due_at is None or case.paid_at <= case.pay_due_at:
                row["paid_within_24h"] += 1
            else:
                row["paid_late"] += 1
        elif (
            case.status in UNPAID_OPEN_STATUSES
            and case.pay_due_at is not None
            and case.pay_due_at < now
        ):
            row["open_past_due"] += 1
    for code, row in rows.items():
        row["median_minutes_to_claim"] = _median(to_claim[code])
        row["median_minutes_to_pay"] = _median(to_pay[code])
    return {
        "county_code": county_code,
        "since": since,
        "until": until,
        "townships": list(rows.values()),
    }


def queue_pulse(session: Session, *, township_code: str) -> dict[str, Any]:
    """What an open queue page polls for (one aggregate over the township's open cases): how
    many are open (and urgent), how many wait to be claimed and how many of those are urgent,
    the newest urgent arrival, and a stamp that changes whenever any open case changes."""
    queued = Case.status == "queued"
    urgent_queued = queued & Case.urgent.is_(True)
    row = session.execute(
        select(
            func.count(),
            func.count().filter(Case.urgent.is_(True)),
            func.count().filter(queued),
            func.count().filter(urgent_queued),
            func.max(Case.created_at).filter(urgent_queued),
            func.max(Case.updated_at),
        ).where(Case.township_code == township_code, Case.status.in_(OPEN_STATUSES))
    ).one()
    total, urgent_open, waiting, urgent, newest_urgent, changed = row
    return {
        "open": total,
        "urgent_open": urgent_open,
        "queued": waiting,
        "urgent_queued": urgent,
        "newest_urgent_at": str(newest_urgent) if newest_urgent else None,
        "stamp": f"{total}:{changed}",
    }
