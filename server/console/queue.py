"""The duty officer's home: the township queue, live arrivals, claim the next case."""

from __future__ import annotations

import datetime as dt
import time
from typing import Any, NamedTuple

from flask import current_app, flash, g, jsonify, redirect, render_template, request, url_for
from sqlalchemy import func, select

from server import access
from server.cases.aid_types import AID_TYPES
from server.cases.claim import QUEUE_ORDER, claim_next
from server.cases.models import CHANNEL_LABELS, CHANNELS, OPEN_STATUSES, STATUS_LABELS, Case
from server.console import auth, bp
from server.console import live as live_channel
from server.db import utcnow
from server.divisions.models import Division
from server.errors import NotFound
from server.queues import service
from server.session import database, db_session

# Rows per lane and page: the urgent lane is read first, the rest behind a "more" link.
LANE_ROWS = 20
_KEPT_ARGS = ("township", "view", "status", "aid_type", "channel")
# When a countdown turns amber, then red (seconds left).
PAY_AMBER, PAY_RED = 6 * 3600, 2 * 3600
CLAIM_AMBER, CLAIM_RED = 5 * 60, 0
# What a row shows (the description cut where the template's truncate would cut it).
_ROW_COLUMNS = (
    Case.id,
    Case.case_no,
    Case.urgent,
    Case.status,
    Case.aid_type,
    Case.channel,
    Case.claimed_by_id,
    Case.address,
    func.substr(Case.description, 1, 66).label("description"),
    Case.created_at,
    Case.pay_due_at,
    Case.paid_at,
)


class Township(NamedTuple):
    code: str
    name: str


class Row(NamedTuple):
    """One case as its queue row shows it (times as ISO strings for the page's clocks)."""

    id: Any
    case_no: str
    urgent: bool
    mine: bool
    status_label: str
    aid_label: str
    channel_label: str
    address: str | None
    description: str | None
    since: str
    claim_due: str | None
    pay_due: str | None


def _townships(session: Any, actor: Any) -> list[Township]:
    """The townships whose queue ``actor`` may open (a supervisor: every one of the county)."""
    if actor.role not in access.QUEUE_ROLES or not actor.region_code:
        return []
    if len(actor.region_code) == 9:
        try:
            name = service.require_division(session, actor.region_code, "township")
        except NotFound:
            return []
        return [Township(actor.region_code, name)]
    return [
        Township(code, name)
        for code, name in session.execute(
            select(Division.code, Division.name)
            .where(Division.level == "township", Division.parent_code == actor.region_code)
            .order_by(Division.code)
        )
    ]


def _choice(name: str, allowed: Any) -> str | None:
    value = request.args.get(name) or None
    return value if value in allowed else None


def _filters() -> dict[str, Any]:
    urgent = {"1": True, "0": False}.get(request.args.get("urgent", ""))
    return {
        "status": _choice("status", OPEN_STATUSES),
        "aid_type": _choice("aid_type", AID_TYPES),
        "channel": _choice("channel", CHANNELS),
        "urgent": urgent,
    }


def _page_number() -> int:
    raw = request.args.get("page", "")
    if not (raw.isascii() and raw.isdigit() and len(raw) <= 5):
        return 1  # anything else (missing, negative, huge, not a number): the first page
    return max(int(raw), 1)


def _row(case: Any, actor_id: int, claim_minutes: int) -> Row:
    claim_due = None
    if case.urgent and case.status == "queued":
        claim_due = case.created_at + dt.timedelta(minutes=claim_minutes)
    return Row(
        id=case.id,
        case_no=case.case_no,
        urgent=case.urgent,
        mine=case.claimed_by_id == actor_id,
        status_label=STATUS_LABELS.get(case.status, case.status),
        aid_label=AID_TYPES.get(case.aid_type, case.aid_type),
        channel_label=CHANNEL_LABELS.get(case.channel, case.channel),
        address=case.address,
        description=case.description,
        since=case.created_at.isoformat(timespec="seconds"),
        claim_due=claim_due.isoformat(timespec="seconds") if claim_due else None,
        pay_due=(
            case.pay_due_at.isoformat(timespec="seconds")
            if case.pay_due_at and not case.paid_at
            else None
        ),
    )


def _lane_totals(session: Any, query: Any, filtered: bool, pulse: dict[str, Any]) -> dict:
    """Open cases per lane: the pulse's counts, or one grouped count when filters narrow."""
    if not filtered:
        return {True: pulse["urgent_open"], False: pulse["open"] - pulse["urgent_open"]}
    counts = dict(
        session.execute(
            query.with_only_columns(Case.urgent, func.count()).group_by(Case.urgent)
        ).all()
    )
    return {True: counts.get(True, 0), False: counts.get(False, 0)}


@bp.route("/")
def queue() -> Any:
    """The township's open cases: urgent lane first, earliest deadline first."""
    session = db_session()
    actor = g.actor
    townships = _townships(session, actor)
    if not townships:
        return render_template("console/home.html")
    code = request.args.get("township") or townships[0].code
    access.require_queue(actor, code)
    name = service.require_division(session, code, "township")
    filters = _filters()
    mine = request.args.get("view") == "mine"
    page = _page_number()
    query = service.queue_query(
        township_code=code, claimed_by_id=actor.id if mine else None, **filters
    )
    pulse = service.queue_pulse(session, township_code=code)
    narrowed = mine or any(v is not None for v in filters.values())
    totals = _lane_totals(session, query, narrowed, pulse)
    minutes = int(current_app.config["URGENT_CLAIM_MINUTES"])
    lanes = []
    for urgent in (True, False):
        if filters["urgent"] is not None and filters["urgent"] is not urgent:
            continue
        found = session.execute(
            query.where(Case.urgent.is_(urgent))
            .with_only_columns(*_ROW_COLUMNS)
            .order_by(*QUEUE_ORDER)
            .offset((page - 1) * LANE_ROWS)
            .limit(LANE_ROWS)
        ).all()
        if found:
            rows = [_row(c, actor.id, minutes) for c in found]
            lanes.append({"urgent": urgent, "rows": rows, "total": totals[urgent]})
    # The lane links keep the township, view and filters (known names only).
    args = {k: request.args[k] for k in _KEPT_ARGS if request.args.get(k)}
    context = {
        # The case page's address without the id: one url_for per page, not one per row.
        "case_url": url_for("console.case_page", case_id="ID").removesuffix("ID"),
        "township_code": code,
        "township_name": name,
        "townships": townships,
        "lanes": lanes,
        "first": (page - 1) * LANE_ROWS,
        "page": page,
        "lane_args": args,
        "mine": mine,
        "filters": filters,
        "statuses": [(s, STATUS_LABELS[s]) for s in OPEN_STATUSES],
        "aid_types": list(AID_TYPES.items()),
        "channels": [(c, CHANNEL_LABELS.get(c, c)) for c in CHANNELS],
        "pulse": pulse,
        "thresholds": {
            "pay": (PAY_AMBER, PAY_RED),
            "claim": (CLAIM_AMBER, CLAIM_RED),
        },
    }
    if request.headers.get("X-Console-Passive") == "rows":
        return render_template("console/_queue_rows.html", **context)
    return render_template("console/queue.html", **context)


@bp.route("/live")
def live() -> Any:
    """What the open queue page asks for: counts, newest urgent arrival, a change stamp; on
    PostgreSQL, given the page's ``since`` stamp, once that changes (a long poll)."""
    code = request.args.get("township") or ""
    access.require_queue(g.actor, code)
    session = db_session()

    def read() -> dict[str, Any]:
        try:
            return service.queue_pulse(session, township_code=code)
        finally:
            session.rollback()  # no connection held while the request waits

    wait = float(current_app.config["CONSOLE_LIVE_WAIT_SECONDS"])
    idle_left = auth.idle_seconds_left()  # signed out on time although a request waits
    pulse, waits = live_channel.pulse_after(
        database().engine,
        key=code,
        since=request.args.get("since"),
        read=read,
        until=time.monotonic() + max(0.0, min(wait, idle_left)),
    )
    return jsonify({**pulse, "waits": waits})


@bp.route("/claim", methods=["POST"])
def claim() -> Any:
    """Claim the next case of the township's queue (the API's claim: never one case twice)."""
    session = db_session()
    code = request.form.get("township") or ""
    access.require_queue(g.actor, code)
    name = service.require_division(session, code, "township")
    case = claim_next(session, actor=g.actor, township_code=code, township_name=name, now=utcnow())
    if case is None:
        flash("队列中没有待认领的案件。", "info")
        return redirect(url_for("console.queue", township=code))
    flash(f"已认领：{case.case_no}", "success")
    return redirect(url_for("console.queue", township=code, view="mine"))
