"""Timeline events: every change to a case writes one (the only writer is this function)."""

from __future__ import annotations

from typing import Any

from sqlalchemy.orm import Session

from server.cases.models import Case, CaseEvent
from server.db import utcnow


def add_event(
    session: Session,
    *,
    case: Case,
    actor: Any,
    action: str,
    from_status: str | None = None,
    to_status: str | None = None,
    text_zh: str | None = None,
    data: dict[str, Any] | None = None,
    resident_visible: bool = True,
) -> CaseEvent:
    """Append a timeline event (actor, time, from/to, data) to ``case``."""
    event = CaseEvent(
        case_id=case.id,
        at=utcnow(),
        actor_id=getattr(actor, "id", None),
        actor_role=getattr(actor, "role", None),
        action=action,
        from_status=from_status,
        to_status=to_status,
        data=data,
        text_zh=text_zh,
        resident_visible=resident_visible,
    )
    session.add(event)
    return event
