"""Case clocks: the 24-hour payment clock, the 5-working-day paperwork clock, the claim lease.

Working days are reckoned in Asia/Shanghai local dates. The ``chinese-calendar`` package
knows statutory holidays and make-up workdays (调休) up to its release year; administrator
overrides (``calendar_overrides``) win over it. For a year it does not know, Monday–Friday
plus the overrides is used, with a logged warning; these functions never raise for a date.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Mapping
from typing import Any

import chinese_calendar
from flask import current_app, has_app_context
from sqlalchemy import select
from sqlalchemy.orm import Session

from server.cases.workflow_models import CalendarOverride
from server.db import UTC

log = logging.getLogger(__name__)

# China has had no daylight saving time since 1991: a fixed offset is exact.
SHANGHAI = dt.timezone(dt.timedelta(hours=8), "Asia/Shanghai")
PAY_WINDOW = dt.timedelta(hours=24)
PAY_WARNING_BEFORE = dt.timedelta(hours=4)  # the warning fires 20 h after submission
PAPERWORK_WORKING_DAYS = 5
DEFAULT_URGENT_LEASE_MINUTES = 30
# No real calendar has this many non-working days in a row; guards a runaway override table.
_MAX_SCAN_DAYS = 400


def pay_due_at(submitted_at: dt.datetime) -> dt.datetime:
    """Urgent aid is paid within 24 hours of the request (000 §二(一)8)."""
    return submitted_at + PAY_WINDOW


def year_known(year: int) -> bool:
    """Whether the ``chinese-calendar`` package has the holidays of ``year``."""
    unknown: set[int] = set()
    is_workday(dt.date(year, 1, 1), {}, unknown)
    return not unknown


def is_workday(day: dt.date, overrides: Mapping[dt.date, bool], unknown: set[int]) -> bool:
    """Is ``day`` a working day? Records years the package does not know in ``unknown``."""
    if day in overrides:
        return overrides[day]
    try:
        return bool(chinese_calendar.is_workday(day))
    except (NotImplementedError, ValueError, KeyError):
        unknown.add(day.year)
        return day.weekday() < 5


def add_working_days(
    start: dt.datetime, days: int, overrides: Mapping[dt.date, bool] | None = None
) -> dt.datetime:
    """``start`` + ``days`` working days, same local time of day; counting starts the next day.

    Paid on Wednesday 2026-09-30 10:00 with National Day ahead: 10-08, 10-09, 10-10 (调休),
    10-12, 10-13 -> 2026-10-13 10:00 (+08:00).
    """
    overrides = overrides or {}
    local = start.astimezone(SHANGHAI)
    day = local.date()
    unknown: set[int] = set()
    counted = 0
    for _ in range(_MAX_SCAN_DAYS):
        day += dt.timedelta(days=1)
        if is_workday(day, overrides, unknown):
            counted += 1
            if counted == days:
                break
    else:  # pragma: no cover - only with an override table that abolishes working days
        log.error("no %d working days within %d days of %s", days, _MAX_SCAN_DAYS, local.date())
    if unknown:
        log.warning(
            "chinese-calendar has no data for %s: counted Monday-Friday plus administrator "
            "overrides; add the year's holidays with `flask --app wsgi calendar set`",
            ", ".join(str(y) for y in sorted(unknown)),
        )
    due_local = dt.datetime.combine(day, local.timetz())
    return due_local.astimezone(UTC)


def load_overrides(session: Session, *, since: dt.date) -> dict[dt.date, bool]:
    """Administrator overrides from ``since`` on (a small table)."""
    rows = session.execute(
        select(CalendarOverride.day, CalendarOverride.workday).where(CalendarOverride.day >= since)
    )
    return {day: workday for day, workday in rows}


def paperwork_due_at(session: Session, paid_at: dt.datetime) -> dt.datetime:
    """Urgent-aid paperwork is due 5 working days after payment (先行救助、事后补充)."""
    since = paid_at.astimezone(SHANGHAI).date()
    return add_working_days(paid_at, PAPERWORK_WORKING_DAYS, load_overrides(session, since=since))


def local_text(moment: dt.datetime | None) -> str:
    """A time as people in China read it: 10月13日 10:00."""
    if moment is None:
        return ""
    local = moment.astimezone(SHANGHAI)
    return f"{local.month}月{local.day}日 {local:%H:%M}"


def urgent_lease() -> dt.timedelta:
    """How long an urgent claim holds without activity (config URGENT_LEASE_MINUTES; the
    default outside an app context: worker, scripts)."""
    minutes = DEFAULT_URGENT_LEASE_MINUTES
    if has_app_context():
        minutes = int(current_app.config.get("URGENT_LEASE_MINUTES", minutes))
    return dt.timedelta(minutes=minutes)


def renew_lease(case: Any, actor: Any, now: dt.datetime) -> None:
    """Activity by the holder of an urgent claim restarts its lease."""
    if case.urgent and case.status == "claimed" and case.claimed_by_id == getattr(actor, "id", 0):
        case.lease_expires_at = now + urgent_lease()
