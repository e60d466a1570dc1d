"""Operations on the outbox: lists, counts, manual retries, call-back tasks. No Flask."""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from notifications import hooks, templates
from notifications.delivery import clear_claim
from notifications.models import OUTBOX_STATUSES, CallbackTask, SmsOutbox, SmsTemplateOverride

FAILED_STATUSES = ("failed", "undelivered")


def list_outbox(
    session: Session, *, status: str | None, page: int, per_page: int
) -> tuple[list[SmsOutbox], int]:
    """Outbox rows, newest first, optionally of one status; and the total count."""
    query = select(SmsOutbox)
    if status:
        query = query.where(SmsOutbox.status == status)
    total = session.scalar(select(func.count()).select_from(query.subquery())) or 0
    rows = session.scalars(
        query.order_by(SmsOutbox.id.desc()).offset((page - 1) * per_page).limit(per_page)
    ).all()
    return list(rows), int(total)


def counts_by_status(session: Session) -> dict[str, int]:
    """How many outbox rows are in each status (every status listed, zeros included)."""
    counts = dict.fromkeys(OUTBOX_STATUSES, 0)
    for status, n in session.execute(
        select(SmsOutbox.status, func.count()).group_by(SmsOutbox.status)
    ):
        counts[status] = int(n)
    return counts


def oldest_due_age(session: Session, *, now: dt.datetime) -> float | None:
    """Seconds the oldest due pending message has waited (None when nothing is due)."""
    oldest = session.scalar(
        select(func.min(SmsOutbox.next_attempt_at)).where(
            SmsOutbox.status == "pending", SmsOutbox.next_attempt_at <= now
        )
    )
    if oldest is None:
        return None
    if oldest.tzinfo is None:  # SQLite aggregate results bypass the column type
        oldest = oldest.replace(tzinfo=dt.UTC)
    return round((now - oldest).total_seconds(), 1)


def retry_failed(
    session: Session, *, now: dt.datetime, ids: list[int] | None = None
) -> list[SmsOutbox]:
    """Queue finally failed messages again (all of them, or those in ``ids``)."""
    query = select(SmsOutbox).where(SmsOutbox.status.in_(FAILED_STATUSES)).with_for_update()
    if ids:
        query = query.where(SmsOutbox.id.in_(ids))
    rows = list(session.scalars(query.order_by(SmsOutbox.id)))
    for row in rows:
        row.status = "pending"
        row.attempts = 0  # a fresh budget; the attempts table keeps the history
        row.next_attempt_at = now
        row.provider_sid = None
        clear_claim(row)
    session.flush()
    return rows


def callback_tasks(session: Session, *, case_id: uuid.UUID, status: str | None) -> list[Any]:
    """Call-back tasks of a case, oldest first."""
    query = select(CallbackTask).where(CallbackTask.case_id == case_id)
    if status:
        query = query.where(CallbackTask.status == status)
    return list(session.scalars(query.order_by(CallbackTask.id)))


def close_callback_task(
    session: Session,
    *,
    task: CallbackTask,
    actor: Any,
    note: str | None,
    now: dt.datetime,
) -> CallbackTask:
    """Mark a call-back task done and tell the case side (``hooks``); idempotent."""
    if task.status == "done":
        return task
    task.status = "done"
    task.closed_at = now
    task.closed_by_id = actor.id
    task.note = note
    hooks.callback_done(
        session,
        hooks.CallbackDone(case_id=task.case_id, callback_task_id=task.id, actor=actor, note=note),
    )
    session.flush()
    return task


# --- template wording ---------------------------------------------------------------------

MAX_TEMPLATE_LENGTH = 300


def template_texts(session: Session) -> list[dict[str, Any]]:
    """Every template: its default text, the administrator's override if any, its priority."""
    overrides = {o.name: o for o in session.scalars(select(SmsTemplateOverride))}
    return [
        {
            "name": name,
            "default_text": text,
            "text": overrides[name].text if name in overrides else text,
            "overridden": name in overrides,
            "parameters": sorted(templates.placeholders(text)),
            "priority": priority,
        }
        for name, (text, priority) in templates.TEMPLATES.items()
    ]


def set_template_text(
    session: Session, *, name: str, text: str | None, actor_id: int | None
) -> SmsTemplateOverride | None:
    """Override a template's wording (None restores the default). ValueError when invalid:
    unknown template, unknown or malformed placeholders, too long."""
    if name not in templates.TEMPLATES:
        raise ValueError("unknown template")
    existing = session.get(SmsTemplateOverride, name)
    if text is None:
        if existing is not None:
            session.delete(existing)
            session.flush()
        return None
    text = text.strip()
    allowed = templates.placeholders(templates.TEMPLATES[name][0])
    try:
        used = templates.placeholders(text)
        templates.render(name, dict.fromkeys(allowed, "x"), text=text)
    except (ValueError, KeyError, IndexError) as exc:
        raise ValueError(f"malformed placeholders; allowed: {sorted(allowed)}") from exc
    if not text or len(text) > MAX_TEMPLATE_LENGTH or not used <= allowed:
        raise ValueError(
            f"1-{MAX_TEMPLATE_LENGTH} characters, placeholders among {sorted(allowed)}"
        )
    if existing is None:
        existing = SmsTemplateOverride(name=name, text=text, updated_by_id=actor_id)
        session.add(existing)
    else:
        existing.text = text
        existing.updated_by_id = actor_id
    session.flush()
    return existing
