"""Timeline events: every change to a case writes one (``event_row`` builds every event row;
``add_events`` and ``add_event`` write them)."""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Sequence
from typing import Any

from sqlalchemy.orm import Session

from server.cases.models import CaseEvent
from server.db import insert_rows, utcnow

EVENTS = CaseEvent.__table__


def event_row(
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
) -> dict[str, Any]:
    """A timeline event row (actor, time, from/to, data) of case ``case_id``."""
    return {
        "case_id": case_id,
        "at": at or utcnow(),
        "actor_id": getattr(actor, "id", None),
        "actor_role": getattr(actor, "role", None),
        "action": action,
        "from_status": from_status,
        "to_status": to_status,
        "data": data,
        "resident_visible": resident_visible,
        "text_zh": text_zh,
    }


def add_events(session: Session, rows: Sequence[dict[str, Any]]) -> None:
    """Write event rows (from ``event_row``) now, in one multi-row INSERT, in their order (the
    timeline's order). The cases they belong to must be in the database already."""
    insert_rows(session, [(EVENTS, rows)])


def add_event(
    session: Session,
    *,
    case: Any,
    actor: Any,
    action: str,
    from_status: str | None = None,
    to_status: str | None = None,
    text_zh: str | None = None,
    data: dict[str, Any] | None = None,
    resident_visible: bool = True,
    at: dt.datetime | None = None,
) -> dict[str, Any]:
    """Append a timeline event (actor, time, from/to, data) to ``case``; returns its row."""
    row = event_row(
        case_id=case.id,
        actor=actor,
        action=action,
        from_status=from_status,
        to_status=to_status,
        text_zh=text_zh,
        data=data,
        resident_visible=resident_visible,
        at=at,
    )
    add_events(session, [row])
    return row
