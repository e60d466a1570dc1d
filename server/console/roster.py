"""The duty roster (排班): a week of a county's townships × days, add and remove shifts, copy
last week; a township with nobody on duty tonight is red."""

from __future__ import annotations

import datetime as dt
from typing import Any

from flask import flash, g, redirect, render_template, request, url_for
from sqlalchemy import select

from server import access, audit
from server.accounts.models import Account
from server.cases.clocks import SHANGHAI
from server.console import bp
from server.console.reports import county_choice
from server.db import utcnow
from server.divisions.service import children
from server.errors import NotFound, ValidationFailed
from server.roster import service
from server.session import db_session

DAY_NAMES = "一二三四五六日"


def _monday(text: str | None) -> dt.date:
    today = dt.datetime.now(SHANGHAI).date()
    try:
        day = dt.date.fromisoformat(text) if text else today
    except ValueError:
        day = today
    return day - dt.timedelta(days=day.weekday())


def _local_start(day: dt.date) -> dt.datetime:
    return dt.datetime.combine(day, dt.time(), tzinfo=SHANGHAI)


def _label(shift: Any, day: dt.date) -> str | None:
    """How the cell of ``day`` shows a shift: from the day it starts ("20:00–次日08:00"), and
    on each whole day a longer shift covers ("全天"); None on the morning a night ends."""
    start, end = shift.starts_at.astimezone(SHANGHAI), shift.ends_at.astimezone(SHANGHAI)
    if start.date() == day:
        nights = (end.date() - start.date()).days
        ends = {0: "", 1: "次日"}.get(nights, f"{end:%m-%d} ")
        return f"{start:%H:%M}–{ends}{end:%H:%M}"
    if start.date() < day and end > _local_start(day + dt.timedelta(days=1)):
        return "全天"
    return None


@bp.route("/roster")
def roster() -> Any:
    """A week of the county's duty roster: townships × days, tonight's gaps in red."""
    session = db_session()
    code, name, counties = county_choice(session, g.actor)
    access.require_roster(g.actor, code)
    monday = _monday(request.args.get("week"))
    days = [monday + dt.timedelta(days=i) for i in range(7)]
    townships = children(session, code)
    codes = [t.code for t in townships]
    officers = session.scalars(
        select(Account)
        .where(Account.role == "duty", Account.active.is_(True), Account.region_code.in_(codes))
        .order_by(Account.region_code, Account.username)
    ).all()
    cells: dict[tuple[str, dt.date], list[dict[str, Any]]] = {}
    shifts = service.shifts_between(
        session,
        township_codes=codes,
        start=_local_start(days[0]),
        end=_local_start(days[-1] + dt.timedelta(days=1)),
    )
    for shift, account in shifts:
        for day in days:
            label = _label(shift, day)
            if label is not None:
                who = account.name or account.username
                cells.setdefault((account.region_code, day), []).append(
                    {"id": shift.id, "who": who, "when": label}
                )
    night = service.night_of(utcnow())
    on_duty = service.townships_on_duty(session, township_codes=codes, start=night[0], end=night[1])
    return render_template(
        "console/roster.html",
        county_code=code,
        county_name=name,
        counties=counties,
        townships=townships,
        officers=officers,
        days=days,
        day_names=DAY_NAMES,
        today=dt.datetime.now(SHANGHAI).date(),
        cells=cells,
        on_duty=on_duty,
        night=night,
        monday=monday,
        prev_week=monday - dt.timedelta(days=7),
        next_week=monday + dt.timedelta(days=7),
    )


def _back(county: str, week: Any) -> Any:
    return redirect(url_for("console.roster", county=county, week=str(week)))


@bp.route("/roster/add", methods=["POST"])
def roster_add() -> Any:
    """Put a duty officer of the county on the roster for one shift (local times; an end at
    or before the start is the next day's)."""
    session = db_session()
    form = request.form
    raw = form.get("account_id") or ""
    account = session.get(Account, int(raw)) if raw.isdigit() else None
    if account is None or account.role != "duty" or not account.region_code:
        raise NotFound("未找到该值班人员。", message_en="Duty officer not found.")
    access.require_roster(g.actor, account.region_code)
    try:
        day = dt.date.fromisoformat(form.get("day") or "")
        starts = dt.time.fromisoformat(form.get("starts") or "")
        ends = dt.time.fromisoformat(form.get("ends") or "")
    except ValueError:
        raise ValidationFailed(errors={"day": ["请填写日期和起止时间。"]}) from None
    starts_at = dt.datetime.combine(day, starts, tzinfo=SHANGHAI)
    ends_at = dt.datetime.combine(day, ends, tzinfo=SHANGHAI)
    if ends_at <= starts_at:
        ends_at += dt.timedelta(days=1)
    service.add_shift(session, account=account, starts_at=starts_at, ends_at=ends_at)
    audit.record(
        session,
        actor=g.actor,
        action="roster.add",
        target_type="account",
        target_id=account.id,
        data={"starts_at": starts_at.isoformat(), "ends_at": ends_at.isoformat()},
    )
    flash(f"已排班：{account.name or account.username} {starts_at:%m-%d %H:%M} 起。", "success")
    return _back(account.region_code[:6], _monday(form.get("week")))


@bp.route("/roster/remove", methods=["POST"])
def roster_remove() -> Any:
    """Take one shift off the roster."""
    raw = request.form.get("shift_id") or ""
    if not raw.isdigit():
        raise NotFound("未找到该班次。", message_en="Shift not found.")
    _, account = service.remove_shift(db_session(), actor=g.actor, shift_id=int(raw))
    flash(f"已删除 {account.name or account.username} 的一个班次。", "info")
    return _back(account.region_code[:6], _monday(request.form.get("week")))


@bp.route("/roster/copy", methods=["POST"])
def roster_copy() -> Any:
    """Copy last week's shifts of the county's townships into the week shown."""
    session = db_session()
    code = request.form.get("county") or ""
    access.require_roster(g.actor, code)
    monday = _monday(request.form.get("week"))
    codes = [t.code for t in children(session, code)]
    added = service.copy_shifts(session, township_codes=codes, week_start=_local_start(monday))
    audit.record(
        session,
        actor=g.actor,
        action="roster.copy",
        target_type="county",
        target_id=code,
        data={"week": str(monday), "added": added},
    )
    flash(f"已复制上周排班：新增 {added} 个班次。", "success")
    return _back(code, monday)
