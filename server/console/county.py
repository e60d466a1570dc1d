"""A county supervisor's own work: triage (cases no township could be found for, assigned
with the API's ``assign``), 一事一议 (approvals above the township's authority, the API's
approve/reject), and case search across the county (the API's list: masked)."""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Any

import marshmallow as ma
from flask import flash, g, redirect, render_template, request, url_for
from sqlalchemy import select

from server import access
from server.accounts.service import normalize_phone
from server.cases import actions, money, queries
from server.cases.action_schemas import CaseActionSchema
from server.cases.aid_types import AID_TYPES
from server.cases.models import STATUS_LABELS, STATUSES, Case, CaseEvent
from server.console import bp
from server.console.reports import county_choice
from server.db import utcnow
from server.divisions.service import children, deployment_city
from server.errors import NotFound, ValidationFailed
from server.queues.service import list_queue
from server.reports.sla import day_start
from server.session import db_session

PAGE_SIZE = 50


def act(session: Any, *, case_id: str, fields: dict[str, Any]) -> Case:
    """One case action from a console form, through the API's schema and service."""
    try:
        key = uuid.UUID(case_id)
    except ValueError:
        raise NotFound("未找到该案件。", message_en="Case not found.") from None
    try:
        args = CaseActionSchema().load({k: v for k, v in fields.items() if v not in (None, "")})
    except ma.ValidationError as exc:
        raise ValidationFailed(errors=exc.messages) from None
    action = args.pop("action")
    return actions.perform(
        session, actor=g.actor, case_id=key, action=action, args=args, now=utcnow()
    )


@bp.route("/triage")
def triage() -> Any:
    """The county's triage queue (and the city's), with the router's reason."""
    session = db_session()
    code, name, counties = county_choice(session, g.actor)
    access.require_county_work(g.actor, code)
    queues = []
    for queue_code, label in ((code, f"{name}分拣队列"), (deployment_city(), "全市分拣队列")):
        access.require_triage(g.actor, queue_code)
        cases, total = list_queue(session, county_code=queue_code, page=1, per_page=PAGE_SIZE)
        queues.append({"label": label, "cases": cases, "total": total})
    return render_template(
        "console/triage.html",
        county_code=code,
        county_name=name,
        counties=counties,
        queues=queues,
        townships=children(session, code),
        aid_types=AID_TYPES,
        statuses=STATUS_LABELS,
    )


@bp.route("/triage/assign", methods=["POST"])
def triage_assign() -> Any:
    """Assign a triage case to a township (the API's ``assign``: paged, told, timelined)."""
    session = db_session()
    form = request.form
    case = act(
        session,
        case_id=form.get("case_id") or "",
        fields={
            "action": "assign",
            "township_code": form.get("township_code"),
            "reason": form.get("reason"),
        },
    )
    flash(f"已分派：{case.case_no}", "success")
    return redirect(url_for("console.triage", county=case.township_code[:6]))


def _proposals(session: Any, cases: list[Case]) -> dict[Any, dict[str, Any]]:
    """Why each case went to the county: the township's proposal event (the latest)."""
    found: dict[Any, dict[str, Any]] = {}
    if not cases:
        return found
    rows = session.execute(
        select(CaseEvent.case_id, CaseEvent.data, CaseEvent.at)
        .where(
            CaseEvent.case_id.in_([c.id for c in cases]),
            CaseEvent.to_status == "pending_county_approval",
        )
        .order_by(CaseEvent.id)
    )
    for case_id, data, at in rows:
        found[case_id] = {**(data or {}), "at": at}
    return found


@bp.route("/approvals")
def approvals() -> Any:
    """一事一议: the county's cases waiting for its approval, with amount, cap and reason."""
    session = db_session()
    code, name, counties = county_choice(session, g.actor)
    access.require_county_work(g.actor, code)
    cases = list(
        session.scalars(
            select(Case)
            .where(Case.county_code == code, Case.status == "pending_county_approval")
            .order_by(Case.updated_at)
        )
    )
    standard = money.get_standard(session, code)
    names = {t.code: t.name for t in children(session, code)}
    low_high = money.expenditure_range(standard) if standard else None
    return render_template(
        "console/approvals.html",
        county_code=code,
        county_name=name,
        counties=counties,
        cases=cases,
        proposals=_proposals(session, cases),
        standard=standard,
        low_high=low_high,
        names=names,
        aid_types=AID_TYPES,
        yuan=money.yuan,
        expenditure=money.EXPENDITURE_AID_TYPE,
    )


@bp.route("/approvals/decide", methods=["POST"])
def approvals_decide() -> Any:
    """Approve (with the amount, by default the proposed one, and a note) or reject (with a
    reason) a case waiting for the county."""
    session = db_session()
    form = request.form
    decision = form.get("decision")
    text = (form.get("reason") or "").strip()
    if not text:
        raise ValidationFailed(errors={"reason": ["请填写审批意见。"]})
    if decision == "approve":
        fields: dict[str, Any] = {"action": "approve", "note": text}
        amount = (form.get("amount_yuan") or "").strip()
        if amount:
            try:
                fields["amount_fen"] = money.parse_yuan(amount)
            except ValueError:
                raise ValidationFailed(errors={"amount_yuan": ["金额格式不正确。"]}) from None
    elif decision == "reject":
        fields = {"action": "reject", "reason": text}
    else:
        raise ValidationFailed(errors={"decision": ["请选择通过或不予通过。"]})
    case = act(session, case_id=form.get("case_id") or "", fields=fields)
    verdict = "审批通过" if case.status == "approved" else "不予通过"
    flash(f"{case.case_no}：{verdict}。", "success")
    return redirect(url_for("console.approvals", county=case.queue_county))


def _search_args() -> dict[str, Any]:
    args = request.args
    found: dict[str, Any] = {}
    if args.get("case_no"):
        found["case_no"] = args["case_no"].strip()
    if args.get("phone"):
        found["phone"] = normalize_phone(args["phone"], mobile=False)
    if args.get("name"):
        found["name"] = args["name"].strip()
    if args.get("status") in STATUSES:
        found["status"] = args["status"]
    for key, field, shift in (("from", "since", 0), ("to", "until", 1)):
        if args.get(key):
            try:
                day = dt.date.fromisoformat(args[key])
            except ValueError:
                raise ValidationFailed(errors={key: ["日期格式应为 YYYY-MM-DD。"]}) from None
            found[field] = day_start(day + dt.timedelta(days=shift))
    return found


@bp.route("/search")
def search() -> Any:
    """Find cases across the county by number, phone, name, status and date (masked, as
    the API's case list)."""
    session = db_session()
    access.require_county_read(g.actor, g.actor.region_code or "")
    filters = _search_args()
    rows, total = [], 0
    if filters:
        cases, total = queries.list_cases(
            session, actor=g.actor, page=1, per_page=PAGE_SIZE, **filters
        )
        rows = queries.summaries(session, cases, actor=g.actor)
    return render_template(
        "console/search.html",
        rows=rows,
        total=total,
        searched=bool(filters),
        statuses=STATUS_LABELS,
    )
