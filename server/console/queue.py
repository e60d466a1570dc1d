"""The duty officer's home: the township queue, live arrivals, claim the next case."""

from __future__ import annotations

import datetime as dt
import time
from typing import Any

from flask import current_app, flash, g, jsonify, redirect, render_template, request, url_for
from sqlalchemy import select

from server import access
from server.cases.aid_types import AID_TYPES
from server.cases.claim import claim_next
from server.cases.models import CHANNEL_LABELS, CHANNELS, OPEN_STATUSES, STATUS_LABELS
from server.console import auth, bp
from server.console import live as live_channel
from server.db import utcnow
from server.divisions.models import Division
from server.queues import service
from server.session import database, db_session

PAGE_SIZE = 100
# When a countdown turns amber, then red (seconds left).
PAY_AMBER, PAY_RED = 6 * 3600, 2 * 3600
CLAIM_AMBER, CLAIM_RED = 5 * 60, 0


def _townships(session: Any, actor: Any) -> list[Division]:
    """The townships whose queue ``actor`` may open (a supervisor: every one of the county)."""
    if actor.role not in access.QUEUE_ROLES or not actor.region_code:
        return []
    if len(actor.region_code) == 9:
        division = session.get(Division, actor.region_code)
        return [division] if division else []
    return list(
        session.scalars(
            select(Division)
            .where(Division.level == "township", Division.parent_code == actor.region_code)
            .order_by(Division.code)
        )
    )


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


def _row(case: Any, now: dt.datetime, claim_minutes: int) -> dict[str, Any]:
    claim_due = None
    if case.urgent and case.status == "queued":
        claim_due = case.created_at + dt.timedelta(minutes=claim_minutes)
    return {
        "case": case,
        "status_label": STATUS_LABELS.get(case.status, case.status),
        "aid_label": AID_TYPES.get(case.aid_type, case.aid_type),
        "channel_label": CHANNEL_LABELS.get(case.channel, case.channel),
        "waiting_since": case.created_at.isoformat(),
        "pay_due": case.pay_due_at.isoformat() if case.pay_due_at and not case.paid_at else None,
        "claim_due": claim_due.isoformat() if claim_due else None,
        "mine": case.claimed_by_id == g.actor.id,
    }


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
    cases, total = service.list_queue(
        session,
        township_code=code,
        claimed_by_id=actor.id if mine else None,
        page=1,
        per_page=PAGE_SIZE,
        **filters,
    )
    now = utcnow()
    minutes = int(current_app.config["URGENT_CLAIM_MINUTES"])
    rows = [_row(c, now, minutes) for c in cases]
    context = {
        "township_code": code,
        "township_name": name,
        "townships": townships,
        "urgent_rows": [r for r in rows if r["case"].urgent],
        "other_rows": [r for r in rows if not r["case"].urgent],
        "total": total,
        "shown": len(rows),
        "mine": mine,
        "filters": filters,
        "statuses": [(s, STATUS_LABELS[s]) for s in OPEN_STATUSES],
        "aid_types": list(AID_TYPES.items()),
        "channels": [(c, CHANNEL_LABELS.get(c, c)) for c in CHANNELS],
        "pulse": service.queue_pulse(session, township_code=code),
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
