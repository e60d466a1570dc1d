"""Who to page: duty officers of a township, supervisors of a county, at a moment."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable

from sqlalchemy import select
from sqlalchemy.orm import Session

from server.accounts.models import Account
from server.errors import ValidationFailed
from server.roster.models import DutyShift


def add_shift(
    session: Session, *, account: Account, starts_at: dt.datetime, ends_at: dt.datetime
) -> DutyShift:
    """Put a staff member on the roster for [starts_at, ends_at)."""
    if not account.is_staff or account.role not in {"duty", "supervisor"}:
        raise ValidationFailed(errors={"username": ["只有值班人员和区县督导可以排班。"]})
    if starts_at.tzinfo is None or ends_at.tzinfo is None:
        raise ValidationFailed(errors={"from": ["时间必须带时区，例如 2026-11-23T08:00+08:00。"]})
    if ends_at <= starts_at:
        raise ValidationFailed(errors={"to": ["结束时间必须晚于开始时间。"]})
    shift = DutyShift(account_id=account.id, starts_at=starts_at, ends_at=ends_at)
    session.add(shift)
    session.flush()
    return shift


def on_duty(
    session: Session, *, region_code: str, at: dt.datetime, roles: Iterable[str] = ("duty",)
) -> list[Account]:
    """Active staff of ``roles`` scoped exactly to ``region_code`` with a shift covering ``at``."""
    query = (
        select(Account)
        .join(DutyShift, DutyShift.account_id == Account.id)
        .where(
            Account.region_code == region_code,
            Account.role.in_(tuple(roles)),
            Account.active.is_(True),
            DutyShift.starts_at <= at,
            DutyShift.ends_at > at,
        )
        .order_by(Account.id)
        .distinct()
    )
    return list(session.scalars(query))


def supervisors_to_alert(session: Session, *, county_code: str, at: dt.datetime) -> list[Account]:
    """County supervisors on duty now; every active supervisor of the county when none is."""
    rostered = on_duty(session, region_code=county_code, at=at, roles=("supervisor",))
    if rostered:
        return rostered
    return list(
        session.scalars(
            select(Account)
            .where(
                Account.region_code == county_code,
                Account.role == "supervisor",
                Account.active.is_(True),
            )
            .order_by(Account.id)
        )
    )


def pagers_for_township(
    session: Session, *, township_code: str, at: dt.datetime
) -> tuple[list[Account], str]:
    """Whom a new urgent case pages: the township's duty officers on the roster, else the
    county supervisor(s). Returns the accounts and which of the two it is."""
    duty = on_duty(session, region_code=township_code, at=at)
    if duty:
        return duty, "duty"
    return supervisors_to_alert(session, county_code=township_code[:6], at=at), "supervisor"
