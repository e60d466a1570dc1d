"""Hotline entry (12349 operators; grid workers for a person they found).

Phone first: the caller's open cases the staff member may see are shown before the form, so
a call about an open case is answered, not entered twice. The form posts to the same staff
intake the API's ``POST /api/v1/intake`` runs (``server.cases.entry.enter``), with
``IntakeCreateSchema``'s validation and an idempotency key per form, so a double submit
enters one case. The township suggestion is the routing engine's own decision.
"""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Any

import marshmallow as ma
from flask import current_app, g, jsonify, redirect, render_template, request, url_for
from sqlalchemy import select

from server import access
from server.accounts.models import Account
from server.accounts.service import normalize_phone
from server.cases import entry, queries
from server.cases.aid_types import AID_TYPES, URGENT_AID_TYPE
from server.cases.models import OPEN_STATUSES, STATUS_LABELS, Case, CaseEvent
from server.cases.schemas import IntakeCreateSchema
from server.console import bp
from server.divisions.service import children, deployment_city
from server.errors import (
    DomainError,
    Forbidden,
    ValidationFailed,
    localize,
    translate_field_message,
)
from server.routing.gazetteer import gazetteer
from server.routing.rules import Evidence, route
from server.session import db_session

# The form's fields, as IntakeCreateSchema names them (empty ones are left out).
_FIELDS = (
    "phone",
    "name",
    "id_number",
    "aid_type",
    "township_code",
    "address",
    "description",
    "contact_phone",
    "notes",
)
_SCHEMA = IntakeCreateSchema()


def _require_entry_role() -> None:
    if g.actor.role not in access.INTAKE_ROLES:
        raise Forbidden(
            "只有热线坐席和网格员可以登记求助。", message_en="Operators and grid workers only."
        )


def _channel() -> str:
    return "proactive_discovery" if g.actor.role == "grid_worker" else "hotline"


def _open_cases(session: Any, phone: str) -> list[dict[str, Any]]:
    """The caller's open cases that this staff member may see, newest first."""
    cases, _ = queries.list_cases(session, actor=g.actor, page=1, per_page=50, phone=phone)
    names = _division_names(session)
    return [
        {
            "case": c,
            "status_label": STATUS_LABELS.get(c.status, c.status),
            "aid_label": AID_TYPES.get(c.aid_type, c.aid_type),
            "queue_name": names.get(c.township_code or c.county_code or "", "分拣队列"),
        }
        for c in cases
        if c.status in OPEN_STATUSES
    ]


def _division_names(session: Any) -> dict[str, str]:
    return gazetteer(session, deployment_city()).names


def _pickers(session: Any) -> dict[str, Any]:
    """County -> township choices of the deployment city (villages come from the API)."""
    counties = children(session, deployment_city())
    return {
        "counties": counties,
        "townships": {c.code: children(session, c.code) for c in counties},
    }


def _form(values: dict[str, Any], **context: Any) -> str:
    session = db_session()
    phone = values.get("phone") or ""
    return render_template(
        "console/hotline.html",
        values=values,
        aid_types=[(k, v) for k, v in AID_TYPES.items() if k != URGENT_AID_TYPE],
        channel=_channel(),
        open_cases=_open_cases(session, phone) if phone else None,
        idempotency_key=values.get("idempotency_key") or uuid.uuid4().hex,
        **_pickers(session),
        **context,
    )


@bp.route("/hotline")
def hotline() -> Any:
    """Step one, the caller's phone; then their open cases and the entry form."""
    _require_entry_role()
    raw = (request.args.get("phone") or "").strip()
    if not raw:
        return _form({})
    try:
        phone = normalize_phone(raw, mobile=False)
    except DomainError as exc:
        return _form({"raw_phone": raw}, errors=exc.errors or {}), exc.status
    return _form({"phone": phone, "raw_phone": raw})


@bp.route("/hotline", methods=["POST"])
def hotline_enter() -> Any:
    """Enter the call: the API's staff intake; the case number to read back to the caller."""
    _require_entry_role()
    form = request.form
    values = {k: (form.get(k) or "").strip() for k in (*_FIELDS, "village", "county")}
    values["urgent"] = form.get("urgent") == "1"
    values["idempotency_key"] = form.get("idempotency_key") or ""
    values["raw_phone"] = values["phone"]
    data: dict[str, Any] = {k: values[k] for k in _FIELDS if values[k]}
    data["address"] = _with_village(values)
    data.update(channel=_channel(), urgent=values["urgent"])
    try:
        loaded = _SCHEMA.load({k: v for k, v in data.items() if v is not None})
    except ma.ValidationError as exc:
        errors = {k: [translate_field_message(m) for m in v] for k, v in _flat(exc).items()}
        return _form(values, errors=errors, message=localize("validation_error")), 422
    days = int(current_app.config["DUPLICATE_WINDOW_DAYS"])
    try:
        result = entry.enter(
            db_session(),
            actor=g.actor,
            data=loaded,
            idempotency_key=f"console-{values['idempotency_key'][:80]}"
            if values["idempotency_key"]
            else None,
            duplicate_window=dt.timedelta(days=days),
        )
    except DomainError as exc:
        message = localize(exc.code, exc.message, exc.message_en, **exc.params)
        return _form(values, errors=exc.errors or {}, message=message), exc.status
    joined = "" if result.created else "1"
    return redirect(url_for("console.hotline_entered", case_id=result.case.id, joined=joined))


def _flat(exc: ma.ValidationError) -> dict[str, list[str]]:
    messages = exc.normalized_messages()
    out: dict[str, list[str]] = {}
    for field, value in messages.items():
        if isinstance(value, dict):  # nested (location): not on this form
            value = [m for v in value.values() for m in v]
        out[field] = list(value)
    return out


def _with_village(values: dict[str, Any]) -> str | None:
    """The address, led by the chosen village (community) when it does not name it yet."""
    address = values.get("address") or ""
    village = values.get("village") or ""
    if village and village not in address:
        address = f"{village}{address}"
    return address or None


@bp.route("/hotline/cases/<uuid:case_id>")
def hotline_entered(case_id: uuid.UUID) -> Any:
    """The entered case: its number to read back, its queue and why, who was paged."""
    _require_entry_role()
    session = db_session()
    case = access.require_view(g.actor, session.get(Case, case_id))
    paged = session.scalar(
        select(CaseEvent.text_zh)
        .where(CaseEvent.case_id == case.id, CaseEvent.action == "page")
        .order_by(CaseEvent.id.desc())
        .limit(1)
    )
    names = _division_names(session)
    return render_template(
        "console/hotline_done.html",
        case=case,
        joined=request.args.get("joined") == "1",
        status_label=STATUS_LABELS.get(case.status, case.status),
        aid_label=AID_TYPES.get(case.aid_type, case.aid_type),
        queue_name=names.get(case.township_code or case.county_code or "", ""),
        paged=paged,
    )


@bp.route("/hotline/route")
def hotline_route() -> Any:
    """The routing engine's decision for what the form holds so far (nothing is written)."""
    _require_entry_role()
    session = db_session()
    gaz = gazetteer(session, deployment_city())
    args = request.args
    code = (args.get("township_code") or "").strip() or None
    person = _person(session, args.get("phone") or "")
    decision = route(
        Evidence(
            urgent=args.get("urgent") == "1",
            township_code=code if code and gaz.name(code) else None,
            address=(args.get("address") or "").strip()[:200] or None,
            reporter_township_code=access.require_intake(g.actor, _channel()),
            residence_township_code=person.residence_township_code if person else None,
            hukou_township_code=person.hukou_township_code if person else None,
        ),
        gaz,
    )
    return jsonify(
        township_code=decision.township_code,
        queue_name=gaz.name(decision.township_code or decision.county_code) or "",
        triage=decision.is_triage,
        evidence=decision.evidence,
        reason=decision.reason_zh,
    )


def _person(session: Any, raw: str) -> Account | None:
    """The caller's resident account, when the phone is one (for residence and hukou)."""
    try:
        phone = normalize_phone(raw, mobile=False) if raw.strip() else None
    except ValidationFailed:
        return None
    if phone is None:
        return None
    return session.scalar(select(Account).where(Account.phone == phone, Account.role == "resident"))
