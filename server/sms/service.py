"""SMS administration services (the web side of ``notifications``, which knows no Flask)."""

from __future__ import annotations

from typing import Any

from sqlalchemy.orm import Session

from notifications import ops
from notifications.templates import TEMPLATES
from server import audit
from server.db import utcnow
from server.errors import NotFound, ValidationFailed


def update_template(session: Session, *, actor: Any, name: str, text: str | None) -> dict[str, Any]:
    """Override template ``name``'s wording (None restores the default), audited; returns the
    template as listed. 404 for an unknown template, 422 for wording it cannot use."""
    if name not in TEMPLATES:
        raise NotFound("没有该短信模板。", message_en="No such SMS template.")
    try:
        ops.set_template_text(session, name=name, text=text, actor_id=actor.id)
    except ValueError as exc:
        raise ValidationFailed(errors={"text": [f"模板文字无效：{exc}"]}) from exc
    audit.record(
        session,
        actor=actor,
        action="sms_template.update",
        target_type="sms_template",
        target_id=name,
        data={"text": text},
    )
    return next(t for t in ops.template_texts(session) if t["name"] == name)


def retry(session: Session, *, actor: Any, ids: list[int]) -> int:
    """Queue finally failed messages again; audited. How many were queued."""
    rows = ops.retry_failed(session, now=utcnow(), ids=ids)
    for row in rows:
        audit.record(
            session, actor=actor, action="sms.retry", target_type="sms_outbox", target_id=row.id
        )
    return len(rows)
