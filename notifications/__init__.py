"""SMS subsystem: templates, transactional outbox, senders, worker. Knows nothing of Flask."""

from __future__ import annotations

import uuid
from typing import Any

from sqlalchemy import text
from sqlalchemy.orm import Session

from notifications import templates
from notifications.models import SmsOutbox, SmsTemplateOverride

# PostgreSQL channel the worker LISTENs on; enqueue NOTIFYs it (delivered on commit only).
NOTIFY_CHANNEL = "aidline_sms_outbox"


def enqueue(
    session: Session,
    to: str,
    template: str,
    params: dict[str, Any],
    case_id: uuid.UUID | None = None,
) -> SmsOutbox:
    """Add an SMS to the outbox in the caller's transaction (sent only if it commits)."""
    override = session.get(SmsTemplateOverride, template)
    row = SmsOutbox(
        to_phone=to,
        template=template,
        params=params,
        body=templates.render(template, params, text=override.text if override else None),
        case_id=case_id,
        priority=templates.priority(template),
    )
    session.add(row)
    if session.get_bind().dialect.name == "postgresql":
        # NOTIFY is transactional: a rolled-back change wakes nobody, a commit wakes the
        # workers at once (an urgent page leaves within a second, not at the next poll).
        session.execute(text("SELECT pg_notify(:channel, '')"), {"channel": NOTIFY_CHANNEL})
    return row
