"""Administrator settings of the workflow: county aid standards and calendar overrides."""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import extract, select
from sqlalchemy.orm import Session

from server.audit import record
from server.cases import clocks, money
from server.cases.workflow_models import AidStandard, CalendarOverride
from server.errors import NotFound


def get_standard(session: Session, county_code: str) -> AidStandard:
    """The county's standards; 404 when none are set."""
    standard = money.get_standard(session, county_code)
    if standard is None:
        raise NotFound("该区县尚未设置救助标准。", message_en="No aid standards set.")
    return standard


def put_standard(session: Session, *, actor: Any, county_code: str, **values: int) -> AidStandard:
    """Set the county's standards (audited)."""
    standard = money.set_standard(session, county_code=county_code, actor=actor, **values)
    record(
        session,
        actor=actor,
        action="aid_standards.set",
        target_type="county",
        target_id=county_code,
        data=values,
    )
    return standard


def list_overrides(session: Session, *, year: int | None = None) -> list[CalendarOverride]:
    """Calendar overrides, by date (of one year when given)."""
    query = select(CalendarOverride).order_by(CalendarOverride.day)
    if year is not None:
        query = query.where(extract("year", CalendarOverride.day) == year)
    return list(session.scalars(query))


def set_override(
    session: Session, *, actor: Any, day: dt.date, workday: bool, note: str | None
) -> CalendarOverride:
    """Mark ``day`` a holiday (workday False) or a working day (调休, True)."""
    row = session.get(CalendarOverride, day)
    if row is None:
        row = CalendarOverride(day=day)
        session.add(row)
    row.workday = workday
    row.note = note
    row.created_by_id = getattr(actor, "id", None)
    session.flush()
    record(
        session,
        actor=actor,
        action="calendar.set",
        target_type="calendar",
        target_id=day.isoformat(),
        data={"workday": workday, "note": note},
    )
    return row


def delete_override(session: Session, *, actor: Any, day: dt.date) -> None:
    """Remove the override of ``day`` (404 if none)."""
    row = session.get(CalendarOverride, day)
    if row is None:
        raise NotFound("该日期没有调整记录。", message_en="No override for that date.")
    session.delete(row)
    session.flush()
    record(
        session,
        actor=actor,
        action="calendar.delete",
        target_type="calendar",
        target_id=day.isoformat(),
    )


# From this month on, next year's holidays should be known (the State Council publishes them
# around November).
CALENDAR_WARNING_MONTH = 11


def calendar_gap(session: Session, *, today: dt.date) -> int | None:
    """Next year, from 1 November, when neither ``chinese-calendar`` nor an administrator's
    override knows its holidays (its paperwork deadlines would count Monday–Friday only)."""
    year = today.year + 1
    if today.month < CALENDAR_WARNING_MONTH or clocks.year_known(year):
        return None
    return None if list_overrides(session, year=year) else year
