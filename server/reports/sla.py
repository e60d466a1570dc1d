"""The SLA report of a county (per township and for the county) or of a city (per county and
for the city): the 24-hour record of urgent cases in a period, what is overdue now, and who is
on duty tonight. The API's ``GET /counties/{code}/sla``, the console's dashboard and its
exports all read it."""

from __future__ import annotations

import datetime as dt
import math
import statistics
from collections import Counter, defaultdict
from typing import Any

from sqlalchemy import func, select, true
from sqlalchemy.orm import Session

from server.cases.clocks import SHANGHAI
from server.cases.models import OPEN_STATUSES, STATUSES, Case, CaseEvent
from server.cases.state import UNPAID_OPEN_STATUSES
from server.cases.workflow_models import Escalation
from server.db import UTC
from server.divisions.service import children
from server.roster.service import night_of, townships_on_duty
from server.routing.gazetteer import gazetteer

DEFAULT_SLA_DAYS = 30
# Ages of open ordinary applications (days since submission): up to 7, up to 30, older.
APPLICATION_AGES = (7, 30)

# The counts of a row (summed for the county total).
COUNTS = (
    "open_urgent",
    "urgent_cases",
    "paid_within_24h",
    "paid_late",
    "open_past_due",
    "overdue_now",
    "escalations",
    "paperwork_overdue",
    "open_applications_7d",
    "open_applications_30d",
    "open_applications_older",
)


def day_start(day: dt.date) -> dt.datetime:
    """Local midnight of ``day`` in UTC."""
    return dt.datetime.combine(day, dt.time(), tzinfo=SHANGHAI).astimezone(UTC)


def _minutes(delta: dt.timedelta) -> float:
    return round(delta.total_seconds() / 60, 1)


def _median(values: list[float]) -> float | None:
    return round(statistics.median(values), 1) if values else None


def _p90(values: list[float]) -> float | None:
    # Nearest rank: a time that 90 % of the cases were paid within.
    if not values:
        return None
    ordered = sorted(values)
    return ordered[math.ceil(0.9 * len(ordered)) - 1]


def _pct(part: int, whole: int) -> float | None:
    return round(100 * part / whole, 1) if whole else None


def _utc(value: Any) -> dt.datetime | None:
    # SQLite returns an aggregate of a UTC column as naive UTC.
    if value is not None and value.tzinfo is None:
        return value.replace(tzinfo=UTC)
    return value


def _empty(code: str, name: str) -> dict[str, Any]:
    return {"township_code": code, "township_name": name, **dict.fromkeys(COUNTS, 0)}


def _current(session: Session, counties: list[str], now: dt.datetime) -> Any:
    """Per township of ``counties``, what is open now: unpaid urgent cases (and those past
    their 24 h), paperwork past its deadline, ordinary applications by age."""
    urgent, ordinary = Case.urgent.is_(True), Case.urgent.is_(False)
    unpaid = urgent & Case.status.in_(UNPAID_OPEN_STATUSES)
    week, month = (now - dt.timedelta(days=d) for d in APPLICATION_AGES)
    return session.execute(
        select(
            Case.township_code,
            func.count().filter(unpaid).label("open_urgent"),
            func.count().filter(unpaid & (Case.pay_due_at < now)).label("overdue_now"),
            func.count()
            .filter((Case.status == "paid") & (Case.paperwork_due_at < now))
            .label("paperwork_overdue"),
            func.count().filter(ordinary & (Case.created_at >= week)).label("open_applications_7d"),
            func.count()
            .filter(ordinary & (Case.created_at < week) & (Case.created_at >= month))
            .label("open_applications_30d"),
            func.count()
            .filter(ordinary & (Case.created_at < month))
            .label("open_applications_older"),
        )
        .where(Case.county_code.in_(counties), Case.status.in_(OPEN_STATUSES))
        .group_by(Case.township_code)
    )


def _period(
    session: Session, region_code: str, townships: list[str], since: dt.date, until: dt.date
) -> Any:
    """The urgent cases submitted in the period whose accountable (first) township is one of
    ``townships``: submitted, first claimed, paid, due, status, escalations fired."""
    first_claim = (
        select(func.min(CaseEvent.at))
        .where(CaseEvent.case_id == Case.id, CaseEvent.action == "claim")
        .correlate(Case)
        .scalar_subquery()
    )
    escalations = (
        select(func.count()).where(Escalation.case_id == Case.id).correlate(Case).scalar_subquery()
    )
    # A case moves only within the city, so its county now is one of the city's: every
    # column of ix_cases_triage is then bounded (county, status, urgent, the period) and the
    # read touches the period's urgent cases of the city, never the years before.
    gaz = gazetteer(session, region_code[:4])
    counties = sorted(code for code in gaz.names if len(code) == 6) or [region_code[:6]]
    return session.execute(
        select(
            Case.accountable_township_code.label("township_code"),
            Case.created_at,
            Case.paid_at,
            Case.pay_due_at,
            Case.status,
            first_claim.label("claimed_at"),
            escalations.label("escalations"),
        ).where(
            Case.county_code.in_(counties),
            Case.status.in_(STATUSES),
            Case.urgent == true(),
            Case.created_at >= day_start(since),
            Case.created_at < day_start(until + dt.timedelta(days=1)),
            Case.accountable_township_code.in_(townships),
        )
    )


def sla_report(
    session: Session,
    *,
    region_code: str,
    since: dt.date | None,
    until: dt.date | None,
    now: dt.datetime,
) -> dict[str, Any]:
    """Per township of a county (``region_code`` of 6 digits; of 4, a city: per county, its
    townships summed) and for the whole: urgent cases submitted in [since, until] (local
    dates; default the last 30 days) — paid within 24 h (count, %), paid late, unpaid past
    due, median minutes to first claim, median and 90th percentile minutes to payment,
    escalations fired; and now — unpaid urgent cases (past due among them), paperwork past
    its deadline, open ordinary applications by age, and whether a duty officer is on the
    roster tonight (a county's row: in every township; ``unstaffed_townships`` says how
    many lack one). A case counts for its accountable (first) township, which keeps the 24 h
    after a transfer. ``days``: the daily trend. The rows are under ``townships``."""
    today = now.astimezone(SHANGHAI).date()
    until = until or today
    since = since or until - dt.timedelta(days=DEFAULT_SLA_DAYS - 1)
    city = len(region_code) == 4
    rows = {d.code: _empty(d.code, d.name) for d in children(session, region_code)}
    counties = list(rows) if city else [region_code]
    # Each township of the report and the row it counts in (itself, or its county).
    row_of = (
        {t.code: c for c in counties for t in children(session, c)}
        if city
        else {code: code for code in rows}
    )
    for found in _current(session, counties, now):
        row = rows.get(row_of.get(found.township_code or "", ""))
        if row is not None:
            for key, value in found._mapping.items():
                if key != "township_code":
                    row[key] += value

    days = {
        since + dt.timedelta(days=i): {"urgent_cases": 0, "paid_within_24h": 0}
        for i in range((until - since).days + 1)
    }
    to_claim: dict[str, list[float]] = defaultdict(list)
    to_pay: dict[str, list[float]] = defaultdict(list)
    for case in _period(session, region_code, list(row_of), since, until):
        code = row_of.get(case.township_code)
        if code is None:
            continue
        day = days.get(case.created_at.astimezone(SHANGHAI).date())
        _count(case, rows[code], day, to_claim[code], to_pay[code], now)

    night = night_of(now)
    on_duty = townships_on_duty(session, township_codes=list(row_of), start=night[0], end=night[1])
    unstaffed = Counter(code for township, code in row_of.items() if township not in on_duty)
    total = _empty(region_code, "合计")
    for code, row in rows.items():
        _figures(row, to_claim[code], to_pay[code])
        row["on_duty_tonight"] = not unstaffed[code]
        row["unstaffed_townships"] = unstaffed[code]
        for key in COUNTS:
            total[key] += row[key]
    _figures(total, _all(to_claim), _all(to_pay))
    total["on_duty_tonight"] = not unstaffed
    total["unstaffed_townships"] = sum(unstaffed.values())
    return {
        "county_code": region_code,
        "since": since,
        "until": until,
        "night": {"starts_at": night[0], "ends_at": night[1]},
        "townships": list(rows.values()),
        "total": total,
        "days": [
            {
                **counts,
                "day": day,
                "paid_within_24h_pct": _pct(counts["paid_within_24h"], counts["urgent_cases"]),
            }
            for day, counts in days.items()
        ],
    }


def _count(
    case: Any,
    row: dict[str, Any],
    day: dict[str, int] | None,
    to_claim: list[float],
    to_pay: list[float],
    now: dt.datetime,
) -> None:
    """Add one urgent case of the period to its township's row and to its day's trend."""
    row["urgent_cases"] += 1
    row["escalations"] += case.escalations or 0
    if day is not None:
        day["urgent_cases"] += 1
    claimed_at = _utc(case.claimed_at)
    if claimed_at is not None:
        to_claim.append(_minutes(claimed_at - case.created_at))
    if case.paid_at is not None:
        to_pay.append(_minutes(case.paid_at - case.created_at))
        if case.pay_due_at is None or case.paid_at <= case.pay_due_at:
            row["paid_within_24h"] += 1
            if day is not None:
                day["paid_within_24h"] += 1
        else:
            row["paid_late"] += 1
    elif case.status in UNPAID_OPEN_STATUSES and case.pay_due_at and case.pay_due_at < now:
        row["open_past_due"] += 1


def _all(by_township: dict[str, list[float]]) -> list[float]:
    return [v for values in by_township.values() for v in values]


def _figures(row: dict[str, Any], to_claim: list[float], to_pay: list[float]) -> None:
    row["paid_within_24h_pct"] = _pct(row["paid_within_24h"], row["urgent_cases"])
    row["median_minutes_to_claim"] = _median(to_claim)
    row["median_minutes_to_pay"] = _median(to_pay)
    row["p90_minutes_to_pay"] = _p90(to_pay)
