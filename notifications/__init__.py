"""SMS subsystem: templates, transactional outbox, senders, worker. Knows nothing of Flask."""

from __future__ import annotations

import uuid
from typing import Any

from sqlalchemy.orm import Session

from notifications import templates
from notifications.models import SmsOutbox


def enqueue(
    session: Session,
    to: str,
    template: str,
    params: dict[str, Any],
    case_id: uuid.UUID | None = None,
) -> SmsOutbox:
    """Add an SMS to the outbox in the caller's transaction (sent only if it commits)."""
    row = SmsOutbox(
        to_phone=to,
        template=template,
        params=params,
        body=templates.render(template, params),
        case_id=case_id,
        priority=templates.priority(template),
    )
    session.add(row)
    return row
