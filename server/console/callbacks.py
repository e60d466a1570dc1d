"""Call-back tasks: residents an SMS did not reach, to be phoned.

The list holds the open tasks of the cases the staff member may see (``access``); marking
one "called" or "unreachable" closes it through the service the API's
``POST /cases/{id}/callback-tasks/{task}/done`` uses (``notifications.ops``), which notes
it on the case's staff timeline, the outcome leading the note.
"""

from __future__ import annotations

from typing import Any

import marshmallow as ma
from flask import flash, g, redirect, render_template, request, url_for
from sqlalchemy import select

from notifications import ops
from notifications.models import CallbackTask
from server import access
from server.api import Text
from server.cases.models import Case
from server.console import bp
from server.db import utcnow
from server.errors import DomainError, Forbidden, NotFound, ValidationFailed, localize
from server.masking import mask_phone
from server.session import db_session

LIST_LIMIT = 200
OUTCOMES = {"called": "已接通", "unreachable": "无法接通"}
_NOTE = Text(max_length=500, multiline=True, allow_empty=True)


def _require_reader() -> None:
    if g.actor.role not in access.CALLBACK_READERS:
        raise Forbidden("您的角色没有回访任务。", message_en="Your role has no call-back tasks.")


def _open_tasks(session: Any) -> list[dict[str, Any]]:
    """Open tasks of the cases ``g.actor`` may see, oldest first; the phone masked, the full
    number behind the case page's audited "显示号码 / 拨打" for whoever may call."""
    rows = session.execute(
        select(CallbackTask, Case)
        .join(Case, Case.id == CallbackTask.case_id)
        .where(CallbackTask.status == "open", access.case_scope_clause(g.actor))
        .order_by(CallbackTask.created_at, CallbackTask.id)
        .limit(LIST_LIMIT)
    )
    return [
        {
            "task": task,
            "case": case,
            "phone": mask_phone(task.phone),
            "may_call": access.may_read_contact(g.actor, case, callback_open=True),
        }
        for task, case in rows
    ]


def _page(**context: Any) -> Any:
    rows = _open_tasks(db_session())
    return render_template(
        "console/callbacks.html", rows=rows, outcomes=OUTCOMES, limit=LIST_LIMIT, **context
    )


@bp.route("/callbacks")
def callbacks() -> Any:
    """Open call-back tasks in the staff member's region."""
    _require_reader()
    return _page()


@bp.route("/callbacks/<int:task_id>", methods=["POST"])
def callback_done(task_id: int) -> Any:
    """Mark a task called or unreachable, with a note (the API's close, audited on the case)."""
    _require_reader()
    session = db_session()
    outcome = request.form.get("outcome") or ""
    typed = request.form.get("note") or ""
    try:
        task = session.get(CallbackTask, task_id)
        case = session.get(Case, task.case_id) if task is not None else None
        access.require_action(g.actor, case, "close_callback_task")
        if task is None:
            raise NotFound("未找到该回访任务。", message_en="Call-back task not found.")
        if outcome not in OUTCOMES:
            raise ValidationFailed("请选择回访结果。", errors={"outcome": ["请选择回访结果。"]})
        note = _NOTE.deserialize(typed) if typed.strip() else ""
    except DomainError as exc:
        message = localize(exc.code, exc.message, exc.message_en, **exc.params)
        return _page(failed={"task": task_id, "message": message, "note": typed}), exc.status
    except ma.ValidationError as exc:  # the note (control characters, too long)
        message = "备注" + "；".join(str(m) for m in exc.messages)
        return _page(failed={"task": task_id, "message": message, "note": typed}), 422
    label = OUTCOMES[outcome]
    ops.close_callback_task(
        session,
        task=task,
        actor=g.actor,
        note=f"{label}。{note}" if note else f"{label}。",
        now=utcnow(),
    )
    flash(f"已记录回访结果：{case.case_no} {label}", "success")
    return redirect(url_for("console.callbacks"))
