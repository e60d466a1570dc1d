"""Supervisors' and administrators' dashboard (the county SLA report with charts) and the
exports page (the ledger, 台账, and the dashboard's figures as .xlsx or CSV)."""

from __future__ import annotations

import datetime as dt
from typing import Any, NamedTuple

import marshmallow as ma
from flask import g, render_template, request
from sqlalchemy import or_, select

from server import access, audit
from server.api import DateRangeArgsSchema
from server.cases.clocks import SHANGHAI
from server.console import bp, charts
from server.db import utcnow
from server.divisions.models import Division
from server.errors import ValidationFailed
from server.queues.service import require_division
from server.reports import files, ledger, sla
from server.reports.routes import LedgerArgsSchema, this_month
from server.session import db_session

# The dashboard's table as exported, in the page's order.
FIGURES = (
    ("township_name", "乡镇（街道）"),
    ("urgent_cases", "紧急求助（件）"),
    ("paid_within_24h", "24小时内发放（件）"),
    ("paid_within_24h_pct", "24小时内发放率（%）"),
    ("paid_late", "超时发放（件）"),
    ("median_minutes_to_pay", "发放用时中位数（分钟）"),
    ("p90_minutes_to_pay", "发放用时P90（分钟）"),
    ("overdue_now", "当前超时未发放（件）"),
    ("escalations", "督办（次）"),
    ("paperwork_overdue", "手续逾期（件）"),
    ("open_applications_7d", "在办申请≤7天"),
    ("open_applications_30d", "在办申请8–30天"),
    ("open_applications_older", "在办申请>30天"),
    ("on_duty_tonight", "今晚有人值班"),
)


def county_choice(session: Any, actor: Any, *, city: bool = False) -> tuple[str, str, list[Any]]:
    """The county a supervisor's or administrator's page shows (``?county=``, else the
    first of theirs), its name, and the counties they may choose from; 403 for other roles,
    404 for a county outside their region (``access``). ``city``: someone whose region is a
    whole city may also choose the city itself (全市, listed first)."""
    region = actor.region_code or ""
    counties = []
    if actor.role in access.COUNTY_READERS and region:
        counties = session.execute(
            select(Division.code, Division.name)
            .where(
                Division.level == "county",
                or_(Division.code == region, Division.parent_code == region),
            )
            .order_by(Division.code)
        ).all()
    whole = city and len(region) == 4 and bool(counties)
    code = request.values.get("county") or (counties[0].code if counties else region[:6])
    access.require_county_read(actor, code)
    if whole and code == region:
        name = require_division(session, code, "city")
    else:
        name = require_division(session, code, "county")
    if whole:
        counties = [Choice(region, "全市"), *counties]
    return code, name, counties


class Choice(NamedTuple):
    """One entry of the county picker."""

    code: str
    name: str


def _period() -> tuple[dt.date | None, dt.date | None]:
    raw = {k: request.args[k] for k in ("from", "to") if request.args.get(k)}
    try:
        loaded = DateRangeArgsSchema().load(raw)
    except ma.ValidationError as exc:
        raise ValidationFailed(errors=exc.messages) from None
    return loaded.get("since"), loaded.get("until")


def duration(minutes: float | None) -> str:
    """Minutes as a supervisor reads them: 45 分钟, 3 小时 20 分, 2 天 4 小时."""
    if minutes is None:
        return "—"
    total = int(round(minutes))
    days, rest = divmod(total, 1440)
    hours, mins = divmod(rest, 60)
    if days:
        return f"{days} 天 {hours} 小时"
    if hours:
        return f"{hours} 小时 {mins} 分"
    return f"{mins} 分钟"


bp.add_app_template_filter(duration, "duration")


@bp.route("/dashboard")
def dashboard() -> Any:
    """The county at a glance: per township and in total, the 24-hour record of the period,
    what is overdue now, who is on duty tonight; daily trend and township charts."""
    session = db_session()
    code, name, counties = county_choice(session, g.actor, city=True)
    since, until = _period()
    report = sla.sla_report(session, region_code=code, since=since, until=until, now=utcnow())
    return render_template(
        "console/dashboard.html",
        county_code=code,
        county_name=name,
        counties=counties,
        city=len(code) == 4,
        report=report,
        trend_svg=charts.trend(report["days"]),
        township_svg=charts.townships(report["townships"]),
        unstaffed=[r for r in report["townships"] if not r["on_duty_tonight"]],
    )


@bp.route("/dashboard/export")
def dashboard_export() -> Any:
    """The dashboard's figures (townships and total) as .xlsx or CSV."""
    session = db_session()
    code, name, _ = county_choice(session, g.actor, city=True)
    fmt = request.args.get("format", "xlsx")
    if fmt not in files.FORMATS:
        raise ValidationFailed(errors={"format": ["请选择 xlsx 或 csv。"]})
    since, until = _period()
    report = sla.sla_report(session, region_code=code, since=since, until=until, now=utcnow())
    audit.record(
        session,
        actor=g.actor,
        action="sla.export",
        target_type="city" if len(code) == 4 else "county",
        target_id=code,
        data={"from": str(report["since"]), "to": str(report["until"]), "format": fmt},
    )
    rows = [
        [_cell(key, row[key]) for key, _ in FIGURES]
        for row in [*report["townships"], report["total"]]
    ]
    title = f"{name}紧急救助时限报表{report['since']:%Y%m%d}-{report['until']:%Y%m%d}"
    headers = [h for _, h in FIGURES]
    if len(code) == 4:
        headers[0] = "区县"  # the city's report: a row per county
    out = files.table_file(fmt, headers, rows, title="时限报表")
    return files.download(out, fmt=fmt, filename=title, ascii_name=f"sla-{code}")


def _cell(key: str, value: Any) -> Any:
    if key == "on_duty_tonight":
        return "是" if value else "否"
    return value


@bp.route("/exports")
def exports() -> Any:
    """The export page: the ledger of a month, the dashboard's figures of a period."""
    session = db_session()
    code, name, counties = county_choice(session, g.actor)
    today = dt.datetime.now(SHANGHAI).date()
    return render_template(
        "console/exports.html",
        county_code=code,
        county_name=name,
        counties=counties,
        month=f"{this_month():%Y-%m}",
        since=today - dt.timedelta(days=sla.DEFAULT_SLA_DAYS - 1),
        until=today,
        phones_in_clear=access.ledger_phones_in_clear(g.actor, code),
    )


@bp.route("/exports/ledger")
def ledger_export() -> Any:
    """Download a county's ledger of a month (the API's export: same masking, audited)."""
    session = db_session()
    code, _, _ = county_choice(session, g.actor)
    try:
        args = LedgerArgsSchema().load(
            {k: request.args[k] for k in ("month", "format") if request.args.get(k)}
        )
    except ma.ValidationError as exc:
        raise ValidationFailed(errors=exc.messages) from None
    fmt = args["format"]
    out, title, ascii_name = ledger.export_ledger(
        session,
        actor=g.actor,
        county_code=code,
        month=args.get("month") or this_month(),
        fmt=fmt,
    )
    return files.download(out, fmt=fmt, filename=title, ascii_name=ascii_name)
