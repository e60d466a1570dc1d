"""The case page: who and where, the routing decision, both clocks, the staff timeline,
documents and call-back tasks, and every action the officer may take now as a form.

Each form posts to a view that calls the API's own service (``actions.perform``,
``documents.service.upload``, ``queries.contact``); which forms are offered comes from the
state table (``state.allowed_actions``) and ``access.require_action``, as for the API. A
refused action renders the page again with the service's Chinese message beside its form and
what was typed kept; the refused request writes nothing (a 4xx rolls the request back).
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import marshmallow as ma
from flask import flash, g, redirect, render_template, request, url_for
from sqlalchemy import select

from notifications import ops as sms_ops
from server import access
from server.accounts.models import ROLE_LABELS, Account
from server.cases import actions, money, queries, state
from server.cases.action_schemas import ACTION_FIELDS, CaseActionSchema
from server.cases.clocks import SHANGHAI
from server.cases.models import CHANNEL_LABELS, OPEN_STATUSES
from server.console import bp
from server.console.queue import PAY_AMBER, PAY_RED
from server.db import utcnow
from server.divisions.service import deployment_city
from server.documents import checklist
from server.documents import service as documents
from server.documents.routes import file_response
from server.errors import DomainError, ValidationFailed, error_body, localize
from server.masking import mask_phone
from server.routing.gazetteer import gazetteer
from server.routing.rules import EVIDENCE_LABELS
from server.session import db_session

# When the paperwork countdown turns amber, then red (seconds left).
PAPERWORK_AMBER, PAPERWORK_RED = 48 * 3600, 24 * 3600
# Timeline entries that are not actions of the state table.
EVENT_LABELS = {
    **state.ACTION_LABELS,
    "submit": "提交",
    "route": "分派",
    "page": "呼叫值班",
    "repeat_request": "再次求助",
    "possible_duplicate": "疑似重复",
    "add_document": "添加材料",
    "sms_undelivered": "短信未送达",
    "callback_done": "已回访",
}
# The form field of each amount the API takes in fen: officers type yuan.
_YUAN_FIELDS = {"amount_fen": "amount_yuan"}
_PAID_AT_FORMAT = "%Y-%m-%dT%H:%M:%S"
# The inputs of the page's forms (templates/console/case.html).
FORM_FIELDS = frozenset(
    {"amount_yuan", "method", "reference", "paid_at", "message", "reason", "note"}
    | {"township_code", "department", "kind", "file"}
)
# The API's schemas (instances: built once).
_ACTION_SCHEMA = CaseActionSchema()


@bp.route("/cases/<case_id>")
def case_page(case_id: str) -> Any:
    """The case as the officer works it (a staff read: audited as the API's)."""
    return _render(case_id)


@bp.route("/cases/<case_id>/actions", methods=["POST"])
def case_action(case_id: str) -> Any:
    """One action on the case through ``actions.perform`` (the API's service)."""
    session = db_session()
    case = queries.get_case(session, actor=g.actor, case_id=case_id)
    action = request.form.get("action", "")
    try:
        args = _action_args(action, request.form)
        moved = actions.perform(
            session, actor=g.actor, case_id=case.id, action=action, args=args, now=utcnow()
        )
    except DomainError as error:
        return _refused(case_id, action, error)
    flash(f"已完成：{state.ACTION_LABELS.get(action, action)}（{case.case_no}）", "success")
    if not access.can_view_case(g.actor, moved):  # transferred out of the officer's region
        return redirect(url_for("console.queue"))
    return redirect(url_for("console.case_page", case_id=case.id))


@bp.route("/cases/<case_id>/documents", methods=["POST"])
def case_document(case_id: str) -> Any:
    """Upload a document (a photo from the phone's camera, a scan) through the API's service:
    the same checks, the same storage."""
    kind = (request.form.get("kind") or "").strip()
    note = (request.form.get("note") or "").strip() or None
    upload = request.files.get("file")
    try:
        errors = {}
        if kind not in checklist.FILE_KINDS:
            errors["kind"] = ["请选择材料类型。"]
        if upload is None or not upload.filename:
            errors["file"] = ["请选择要上传的文件（照片或 PDF）。"]
        if note and len(note) > 500:
            errors["note"] = ["不能超过 500 个字符。"]
        if errors:
            raise ValidationFailed(errors=errors)
        clean = documents.checked_file(upload.stream.read(documents.max_bytes() + 1))
        session = db_session()
        case = queries.get_case(session, actor=g.actor, case_id=case_id)
        documents.upload(
            session, actor=g.actor, case_id=case.id, kind=kind, note=note, clean=clean, now=utcnow()
        )
    except DomainError as error:
        return _refused(case_id, "add_document", error)
    flash(f"已添加材料：{checklist.KINDS[kind]}", "success")
    return redirect(url_for("console.case_page", case_id=case_id) + "#documents")


@bp.route("/cases/<case_id>/documents/<int:document_id>")
@bp.route("/cases/<case_id>/documents/<int:document_id>/thumbnail", endpoint="case_thumbnail")
def case_document_file(case_id: str, document_id: int) -> Any:
    """A document's file or thumbnail, as the API serves it (a staff read: audited)."""
    session = db_session()
    case = queries.get_case(session, actor=g.actor, case_id=case_id)
    thumbnail = request.endpoint == "console.case_thumbnail"
    document, data, content_type = documents.download(
        session, actor=g.actor, case=case, document_id=document_id, thumbnail=thumbnail
    )
    return file_response(case, document, data, content_type, thumbnail=thumbnail)


@bp.route("/cases/<case_id>/contact", methods=["POST"])
def case_contact(case_id: str) -> Any:
    """The full phone numbers, for the staff who may call (``GET /cases/{id}/contact``'s rules,
    audited); shown on the page, never put in a URL or the cookie."""
    session = db_session()
    case = queries.get_case(session, actor=g.actor, case_id=case_id)
    try:
        contact = queries.contact(session, case, actor=g.actor)
    except DomainError as error:
        return _refused(case_id, "contact", error)
    return _render(case_id, contact=contact)


def _action_args(action: str, form: Any) -> dict[str, Any]:
    """The API's arguments of ``action`` from the form, checked by the API's schema: only the
    fields the action takes, amounts typed in yuan, ``paid_at`` in Asia/Shanghai."""
    if action not in ACTION_FIELDS:
        raise ValidationFailed(errors={"action": ["请选择要执行的操作。"]})
    required, optional = ACTION_FIELDS[action]
    data: dict[str, Any] = {"action": action}
    for name in sorted(required | optional):
        raw = (form.get(_YUAN_FIELDS.get(name, name)) or "").strip()
        if not raw:
            continue
        if name in _YUAN_FIELDS:
            try:
                data[name] = money.parse_yuan(raw)
            except ValueError:
                raise ValidationFailed(
                    errors={name: ["请输入以元为单位的金额，最多两位小数，例如 500 或 500.50。"]}
                ) from None
        elif name == "paid_at":
            # A datetime-local input's value: Beijing time, to the minute or the second.
            data[name] = {16: f"{raw}:00+08:00", 19: f"{raw}+08:00"}.get(len(raw), raw)
        else:
            data[name] = raw
    args = _load(_ACTION_SCHEMA, data)
    args.pop("action")
    return args


def _load(schema: ma.Schema, data: dict[str, Any]) -> dict[str, Any]:
    try:
        return schema.load(data)
    except ma.ValidationError as exc:
        raise ValidationFailed(errors=exc.normalized_messages()) from None


bp.add_app_template_filter(money.yuan, "yuan")


def _refused(case_id: str, action: str, error: DomainError) -> Any:
    """The page again with the service's message at the refused form, its values kept; the
    refusal's status (4xx: the request's writes roll back)."""
    db_session().rollback()
    # A state-table refusal's "errors" name the status and the next steps, which its
    # message says already; other refusals' errors are per field.
    fields = None if isinstance(error, state.IllegalTransition) else error.errors
    body = error_body(
        error.code, localize(error.code, error.message, error.message_en, **error.params), fields
    )
    errors = {_YUAN_FIELDS.get(k, k): v for k, v in body["errors"].items()}
    refusal = {
        "action": action,
        "message": body["message"],
        "fields": errors,
        # Messages of fields the form does not show (said in the alert instead).
        "other": [m for k, v in errors.items() if k not in FORM_FIELDS for m in _texts(v)],
    }
    return _render(case_id, refusal=refusal, typed=request.form), error.status, error.headers


def _texts(value: Any) -> list[str]:
    if isinstance(value, list):
        return [str(v) for v in value]
    return [str(value)]


def _render(
    case_id: str,
    *,
    contact: dict[str, Any] | None = None,
    refusal: dict[str, Any] | None = None,
    typed: Any = None,
) -> str:
    session = db_session()
    actor = g.actor
    case = queries.get_case(session, actor=actor, case_id=case_id)
    body = queries.detail(session, case, actor=actor)
    offered, blocked = _offered(actor, case)
    # The form open at first: what the case waits for (urgent aid is paid before approval).
    firsts = ("pay", "approve", "close") if case.urgent else ("approve", "pay", "close")
    primary = next((a for a in firsts if a in offered), None)
    may_document = (
        case.status in state.DOCUMENT_STATUSES and _refusal(actor, case, "add_document") is None
    )
    paperwork = body["documents"]  # the checklist (documents.service.overview)
    on_file = paperwork["documents"]
    tasks = sms_ops.callback_tasks(session, case_id=case.id, status=None)
    people = _people(
        session,
        {case.claimed_by_id, *(d.added_by_id for d in on_file), *(t.closed_by_id for t in tasks)},
    )
    now = utcnow()
    context = {
        "case": case,
        "body": body,
        "contact": contact,
        "may_call": access.may_read_contact(
            actor, case, callback_open=any(t.status == "open" for t in tasks)
        ),
        "masked_contact_phone": mask_phone(case.contact_phone),
        "channel_label": CHANNEL_LABELS.get(case.channel, case.channel),
        "evidence_label": EVIDENCE_LABELS.get(case.routing_evidence or "", "未记录"),
        "holder": people.get(case.claimed_by_id),
        "held_by_me": case.claimed_by_id == actor.id,
        "lease_until": case.lease_expires_at if case.status == "claimed" else None,
        "is_open": case.status in OPEN_STATUSES,
        "clocks": _clocks(case, now),
        "timeline": [_event(item) for item in reversed(body["timeline"])],
        "documents": [
            {
                "id": d.id,
                "kind": checklist.KINDS.get(d.kind, d.kind),
                "note": d.note,
                "by": people.get(d.added_by_id),
                "at": d.created_at,
                "file": d.storage_key is not None or d.kind == "commitment",
                "thumbnail": d.storage_key is not None
                and (d.content_type or "").startswith("image/"),
                "purged": d.purged_at is not None,
            }
            for d in on_file
        ],
        "missing": [k["label"] for k in paperwork["missing"]]
        if case.status in OPEN_STATUSES
        else [],
        "paperwork": paperwork,
        "may_call_back": actor.role in access.CALLBACK_READERS
        and any(t.status == "open" for t in tasks),
        "tasks": [
            {"task": t, "phone": mask_phone(t.phone), "by": people.get(t.closed_by_id)}
            for t in tasks
        ],
        "offered": sorted(offered, key=lambda a: a != primary),
        "primary": primary,
        "blocked": blocked,
        "may_document": may_document,
        "action_labels": state.ACTION_LABELS,
        "document_kinds": [(k, checklist.KINDS[k]) for k in checklist.FILE_KINDS],
        "pay_methods": list(actions.PAY_METHODS.items()),
        "departments": list(actions.DEPARTMENTS.items()),
        "townships": _townships(session, exclude=case.township_code, first=case.county_code or ""),
        "default_amount": money.yuan(case.approved_amount_fen) if case.approved_amount_fen else "",
        "now_local": now.astimezone(SHANGHAI).strftime(_PAID_AT_FORMAT),
        "refusal": refusal,
        "typed": typed if refusal else None,
        "thresholds": {"pay": (PAY_AMBER, PAY_RED), "paperwork": (PAPERWORK_AMBER, PAPERWORK_RED)},
    }
    return render_template("console/case.html", **context)


def _refusal(actor: Any, case: Any, action: str) -> str | None:
    """Why ``access`` refuses ``actor`` the ``action`` on ``case`` (None: allowed)."""
    try:
        access.require_action(actor, case, action)
    except DomainError as error:
        return localize(error.code, error.message, error.message_en, **error.params)
    return None


def _offered(actor: Any, case: Any) -> tuple[list[str], str | None]:
    """The actions of the state table in the case's status that ``access`` lets ``actor``
    take now, and, when there are some but none for them, the API's reason."""
    offered: list[str] = []
    reasons: list[str] = []
    for action in state.allowed_actions(case.status):
        reason = _refusal(actor, case, action)
        if reason is None:
            offered.append(action)
        else:
            reasons.append(reason)
    return offered, None if offered or not reasons else reasons[0]


def _people(session: Any, ids: set[Any]) -> dict[int, str]:
    """Who did what, for the page: a staff member's name (role); the resident as 申请人 (their
    name stays masked, as everywhere on the page)."""
    ids.discard(None)
    if not ids:
        return {}
    rows = session.execute(
        select(Account.id, Account.name, Account.username, Account.role).where(Account.id.in_(ids))
    )
    return {
        r.id: "申请人"
        if r.role == "resident"
        else f"{r.name or r.username}（{ROLE_LABELS.get(r.role, r.role)}）"
        for r in rows
    }


def _clocks(case: Any, now: dt.datetime) -> list[dict[str, Any]]:
    """The 24-hour pay clock of an urgent case and the paperwork clock after payment."""
    clocks = []
    if case.urgent and case.pay_due_at:
        if case.paid_at:
            within = case.paid_at <= case.pay_due_at
            clocks.append(
                {
                    "kind": "pay",
                    "done": f"已于 {_local(case.paid_at)} 发放"
                    + ("（24 小时内）" if within else "（超过 24 小时）"),
                    "late": not within,
                }
            )
        elif case.status in OPEN_STATUSES:
            clocks.append({"kind": "pay", "deadline": case.pay_due_at.isoformat()})
    if case.paperwork_due_at:
        if case.status in OPEN_STATUSES:
            clocks.append({"kind": "paperwork", "deadline": case.paperwork_due_at.isoformat()})
        elif case.closed_at:
            clocks.append(
                {
                    "kind": "paperwork",
                    "done": f"手续已于 {_local(case.closed_at)} 办结",
                    "late": case.closed_at > case.paperwork_due_at,
                }
            )
    return clocks


def _local(moment: dt.datetime) -> str:
    return moment.astimezone(SHANGHAI).strftime("%m-%d %H:%M")


def _event(item: dict[str, Any]) -> dict[str, Any]:
    return {
        **item,
        "label": EVENT_LABELS.get(item["action"], item["action"]),
        "role": ROLE_LABELS.get(item.get("actor_role") or "", "系统"),
    }


def _townships(session: Any, *, exclude: str | None, first: str) -> list[dict[str, Any]]:
    """The deployment city's townships by county (the case's county first), for transfers."""
    gaz = gazetteer(session, deployment_city())
    counties: dict[str, list[tuple[str, str]]] = {}
    for code, name in sorted(gaz.names.items()):
        if len(code) == 9 and code != exclude:
            counties.setdefault(code[:6], []).append((code, name))
    order = sorted(counties, key=lambda c: (c != first, c))
    return [{"code": c, "name": gaz.name(c) or c, "townships": counties[c]} for c in order]
