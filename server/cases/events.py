"""Timeline events: every change to a case writes one (``add_event``)."""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Any

from sqlalchemy.orm import Session

from server.cases.models import CaseEvent
from server.db import utcnow


def add_event(
    session: Session,
    *,
    case_id: uuid.UUID,
    actor: Any,
    action: str,
    from_status: str | None = None,
    to_status: str | None = None,
    text_zh: str | None = None,
    data: dict[str, Any] | None = None,
    resident_visible: bool = True,
    at: dt.datetime | None = None,
) -> CaseEvent:
    """Append a timeline event (actor, time, from/to, data) to case ``case_id``; events of one
    flush are written in the order they were added (the timeline's order)."""
    event = CaseEvent(
        case_id=case_id,
        at=at or utcnow(),
        actor_id=getattr(actor, "id", None),
        actor_role=getattr(actor, "role", None),
        action=action,
        from_status=from_status,
        to_status=to_status,
        text_zh=text_zh,
        data=data,
        resident_visible=resident_visible,
    )
    session.add(event)
    return event
