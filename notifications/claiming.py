"""Which outbox rows a worker claims next, in send order, and what becomes of a claim whose
worker died. The worker (``notifications.worker``) claims, sends and records."""

from __future__ import annotations

import datetime as dt
import logging
from dataclasses import dataclass
from typing import Any

from sqlalchemy import and_, func, literal_column, select, true
from sqlalchemy.orm import Session

from notifications.delivery import clear_claim, fail
from notifications.models import SmsAttempt, SmsOutbox
from notifications.retry import RetryPolicy
from server.db import is_postgresql

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Claim:
    """A message this worker holds: send it, then record the outcome under ``token``."""

    outbox_id: int
    attempt_id: int
    attempt_no: int
    token: str
    to: str
    body: str


def due_rows(
    session: Session, *, now: dt.datetime, stale: dt.datetime, size: int, fair_slots: int
) -> list[SmsOutbox]:
    """Lock up to ``size`` rows to send now (rows other workers hold are skipped).

    The send order, in full: claims of dead workers first (they have waited longest);
    then pending rows by ``priority`` (``templates.priority``: duty pages and sign-in
    codes, then escalations, then receipts), first due first within a priority - except
    that every ``fair_share``-th row a worker claims is the one due longest of all. So a
    flood of pages and codes takes at most all but one in ``fair_share`` sends of each
    worker, and a receipt waits at most ``fair_share`` sends for each row due before it,
    never for ever. ``fair_slots`` of the ``size`` are the worker's share by age.
    """
    rows = list(
        session.scalars(
            select(SmsOutbox)
            .where(SmsOutbox.status == "sending", SmsOutbox.claimed_at < stale)
            .order_by(SmsOutbox.priority, SmsOutbox.id)
            .limit(size)
            .with_for_update(skip_locked=True)
        )
    )
    # 'pending' as a literal: a partial index (WHERE status = 'pending') serves only a
    # query that names the value itself, not a bound parameter.
    terms = (SmsOutbox.status == literal_column("'pending'"), SmsOutbox.next_attempt_at <= now)
    if not is_postgresql(session):
        # Without statistics (SQLite gathers none unless told) the planner took the range
        # on ix_sms_outbox_due and sorted the whole backlog per claim: "both terms hold for
        # most rows" makes the index in send order the cheaper plan.
        terms = tuple(func.likely(t) for t in terms)
    due = and_(*terms)
    # The share by age is locked first, so the priority query cannot take its place; the
    # batch then goes out in priority order (a page due now still leaves before it).
    fair = _locked_due(
        session,
        due,
        (SmsOutbox.next_attempt_at, SmsOutbox.id),
        rows,
        min(fair_slots, size - len(rows)),
    )
    first = _locked_due(
        session,
        due,
        (SmsOutbox.priority, SmsOutbox.next_attempt_at, SmsOutbox.id),
        rows + fair,
        size - len(rows) - len(fair),
    )
    return rows + sorted(first + fair, key=lambda r: (r.priority, r.next_attempt_at, r.id))


def _locked_due(
    session: Session, due: Any, order: tuple[Any, ...], taken: list[SmsOutbox], limit: int
) -> list[SmsOutbox]:
    if limit <= 0:
        return []
    ids = [row.id for row in taken]
    return list(
        session.scalars(
            select(SmsOutbox)
            .where(due, SmsOutbox.id.not_in(ids) if ids else true())
            .order_by(*order)
            .limit(limit)
            .with_for_update(skip_locked=True)
        )
    )


def recover(session: Session, row: SmsOutbox, now: dt.datetime, retry: RetryPolicy) -> bool:
    """A claim whose worker died: True when the message must be sent again."""
    lost = session.scalars(
        select(SmsAttempt).where(SmsAttempt.outbox_id == row.id, SmsAttempt.outcome.is_(None))
    ).all()
    for attempt in lost:
        attempt.outcome = "lost"
        attempt.finished_at = now
        attempt.error = f"claim of {attempt.worker_id} expired without a recorded outcome"
    log.warning(
        "sms %s: claim by %s expired; recovering (attempt %s)",
        row.id,
        row.claimed_by,
        row.attempts,
    )
    if row.provider_sid:
        # A receipt already proved the provider took it: settle, do not send twice.
        row.status = "sent"
        row.sent_at = row.sent_at or now
        clear_claim(row)
        return False
    if retry.exhausted(row.attempts):
        fail(session, row, status="failed", code="lost", error="worker lost every attempt")
        return False
    return True
