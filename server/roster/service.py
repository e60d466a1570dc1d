"""Who to page: duty officers of a township, supervisors of a county, at a moment."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from typing import Any

from sqlalchemy import bindparam, literal_column, select, union_all
from sqlalchemy.orm import Session

from server import access, audit
from server.accounts.models import Account
from server.errors import NotFound, ValidationFailed
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


# --- whom to page ---------------------------------------------------------------------------
#
# The rule, in tiers (the first tier with anyone in it is paged):
#   0. a township's duty officers on the roster;
#   1. its county's supervisors on the roster;
#   2. every active supervisor of the county;
#   3. (the city's triage queue) every active supervisor of the city's counties.
# One statement reads every tier at once (``pagers_query``), so a caller can fold it into a
# statement it sends anyway; ``pick_pagers`` applies the rule to the rows.

_ACCOUNTS = Account.__table__
_SHIFTS = DutyShift.__table__
DUTY_TIER = 0


def _tier(tier: int, role: str, region: Any, *, rostered: bool) -> Any:
    query = select(
        literal_column(str(tier)).label("tier"), _ACCOUNTS.c.id, _ACCOUNTS.c.phone
    ).where(region, _ACCOUNTS.c.role == role, _ACCOUNTS.c.active.is_(True))
    if rostered:
        query = (
            query.join(_SHIFTS, _SHIFTS.c.account_id == _ACCOUNTS.c.id)
            .where(_SHIFTS.c.starts_at <= bindparam("at"), _SHIFTS.c.ends_at > bindparam("at"))
            .distinct()
        )
    return query


def pagers_query(kind: str) -> Any:
    """(tier, id, phone) of everyone the rule could page for a queue of ``kind`` (township,
    county or city), best tier first. Parameters: ``township``, ``county``, ``city``, ``at``."""
    county = _ACCOUNTS.c.region_code == bindparam("county")
    tiers = {
        "township": [
            _tier(0, "duty", _ACCOUNTS.c.region_code == bindparam("township"), rostered=True),
            _tier(1, "supervisor", county, rostered=True),
            _tier(2, "supervisor", county, rostered=False),
        ],
        "county": [
            _tier(1, "supervisor", county, rostered=True),
            _tier(2, "supervisor", county, rostered=False),
        ],
        "city": [
            _tier(
                3,
                "supervisor",
                _ACCOUNTS.c.region_code.startswith(bindparam("city")),
                rostered=False,
            )
        ],
    }[kind]
    return union_all(*tiers).subquery("pagers")


def pagers_params(region_code: str, at: dt.datetime) -> tuple[str, dict[str, Any]]:
    """The ``pagers_query`` kind and parameters for a queue's region (township, county or
    city code)."""
    if len(region_code) >= 9:
        return "township", {"township": region_code, "county": region_code[:6], "at": at}
    if len(region_code) == 6:
        return "county", {"county": region_code, "at": at}
    return "city", {"city": region_code}


def pick_pagers(rows: Iterable[Any]) -> tuple[list[Any], str]:
    """The rows (``id``, ``phone``) of the best tier with anyone in it, ordered by account,
    and who they are ("duty" or "supervisor")."""
    rows = [r for r in rows if r.tier is not None]
    if not rows:
        return [], "supervisor"
    best = min(r.tier for r in rows)
    chosen = sorted((r for r in rows if r.tier == best), key=lambda r: r.id)
    return chosen, "duty" if best == DUTY_TIER else "supervisor"


_PAGERS: dict[str, Any] = {}


def _read_pagers(session: Session, kind: str, params: dict[str, Any]) -> tuple[list[Any], str]:
    query = _PAGERS.get(kind)
    if query is None:
        query = _PAGERS[kind] = select(pagers_query(kind))
    return pick_pagers(session.connection().execute(query, params))


def pagers(session: Session, *, region_code: str, at: dt.datetime) -> tuple[list[Any], str]:
    """Whom a new urgent case in the queue of ``region_code`` pages (township: its duty
    officers on the roster, else the county's supervisors; county: its supervisors; city:
    the supervisors of its counties), as rows with ``id`` and ``phone``, and who they are."""
    return _read_pagers(session, *pagers_params(region_code, at))


def supervisors_to_alert(session: Session, *, county_code: str, at: dt.datetime) -> list[Any]:
    """County supervisors on duty now; every active supervisor of the county when none is
    (rows with ``id`` and ``phone``)."""
    return _read_pagers(session, "county", {"county": county_code, "at": at})[0]


def pagers_for_township(
    session: Session, *, township_code: str, at: dt.datetime
) -> tuple[list[Any], str]:
    """Whom a new urgent case pages: the township's duty officers on the roster, else the
    county supervisor(s). Returns the accounts (``id``, ``phone``) and which of the two it is."""
    return pagers(session, region_code=township_code, at=at)


# --- the roster as supervisors keep it --------------------------------------------------------

# The night a township must have someone on duty for, in local (Asia/Shanghai) hours.
NIGHT_STARTS, NIGHT_ENDS = dt.time(20), dt.time(8)


def night_of(now: dt.datetime) -> tuple[dt.datetime, dt.datetime]:
    """The night ``now`` is in, or the coming one: [20:00, 08:00 next day), local time."""
    from server.cases.clocks import SHANGHAI

    local = now.astimezone(SHANGHAI)
    day = local.date() - dt.timedelta(days=1) if local.time() < NIGHT_ENDS else local.date()
    start = dt.datetime.combine(day, NIGHT_STARTS, tzinfo=SHANGHAI)
    end = dt.datetime.combine(day + dt.timedelta(days=1), NIGHT_ENDS, tzinfo=SHANGHAI)
    return start, end


def townships_on_duty(
    session: Session, *, township_codes: Iterable[str], start: dt.datetime, end: dt.datetime
) -> set[str]:
    """Those of ``township_codes`` with an active duty officer on a shift overlapping
    [start, end)."""
    return set(
        session.scalars(
            select(Account.region_code)
            .join(DutyShift, DutyShift.account_id == Account.id)
            .where(
                Account.role == "duty",
                Account.active.is_(True),
                Account.region_code.in_(list(township_codes)),
                DutyShift.starts_at < end,
                DutyShift.ends_at > start,
            )
            .distinct()
        )
    )


def shifts_between(
    session: Session, *, township_codes: Iterable[str], start: dt.datetime, end: dt.datetime
) -> list[tuple[DutyShift, Account]]:
    """The shifts of the townships' duty officers overlapping [start, end), by start."""
    return [
        (shift, account)
        for shift, account in session.execute(
            select(DutyShift, Account)
            .join(Account, Account.id == DutyShift.account_id)
            .where(
                Account.role == "duty",
                Account.region_code.in_(list(township_codes)),
                DutyShift.starts_at < end,
                DutyShift.ends_at > start,
            )
            .order_by(DutyShift.starts_at, Account.id)
        )
    ]


def copy_shifts(session: Session, *, township_codes: Iterable[str], week_start: dt.datetime) -> int:
    """Copy the duty officers' shifts that started in the week before ``week_start`` one week
    on, skipping any already there; returns how many were added."""
    week = dt.timedelta(days=7)
    codes = list(township_codes)
    previous = session.execute(
        select(DutyShift)
        .join(Account, Account.id == DutyShift.account_id)
        .where(
            Account.role == "duty",
            Account.active.is_(True),
            Account.region_code.in_(codes),
            DutyShift.starts_at >= week_start - week,
            DutyShift.starts_at < week_start,
        )
    ).scalars()
    existing = {
        (s.account_id, s.starts_at, s.ends_at)
        for s, _ in shifts_between(
            session, township_codes=codes, start=week_start, end=week_start + week + week
        )
    }
    added = 0
    for shift in list(previous):
        key = (shift.account_id, shift.starts_at + week, shift.ends_at + week)
        if key in existing:
            continue
        session.add(DutyShift(account_id=key[0], starts_at=key[1], ends_at=key[2]))
        existing.add(key)
        added += 1
    session.flush()
    return added


def remove_shift(session: Session, *, actor: Any, shift_id: int) -> tuple[DutyShift, Account]:
    """Take a shift off the roster (its township's supervisors, administrators above);
    404 when it is not there or out of the actor's region. Audited."""
    found = session.execute(
        select(DutyShift, Account)
        .join(Account, Account.id == DutyShift.account_id)
        .where(DutyShift.id == shift_id)
    ).first()
    if found is None or not found[1].region_code:
        raise NotFound("未找到该班次。", message_en="Shift not found.")
    shift, account = found
    access.require_roster(actor, account.region_code)
    audit.record(
        session,
        actor=actor,
        action="roster.remove",
        target_type="account",
        target_id=account.id,
        data={"starts_at": shift.starts_at.isoformat(), "ends_at": shift.ends_at.isoformat()},
    )
    session.delete(shift)
    session.flush()
    return shift, account
