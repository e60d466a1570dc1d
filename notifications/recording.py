"""Recording what the provider said about a batch of claimed messages: one transaction
for the whole batch, each row changed only while its claim is current."""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy import bindparam, func, select, text, update
from sqlalchemy.orm import Session

from notifications import templates
from notifications.claiming import Claim
from notifications.delivery import apply_early_receipts_many, clear_claim, fail, mask_phone
from notifications.models import SmsAttempt, SmsOutbox
from notifications.retry import RetryPolicy
from server.db import is_postgresql

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Outcome:
    """What the provider said about one claimed message, to be recorded."""

    claim: Claim
    outcome: str  # sent | transient | permanent
    sid: str | None = None
    code: str | None = None
    error: str | None = None
    at: dt.datetime | None = None  # when the provider answered (None: when recorded)


_ATTEMPTS = SmsAttempt.__table__
# One executemany for a batch's attempts. The SID a receipt may have recorded meanwhile is
# kept when the provider call itself returned none.
_RECORD_ATTEMPT = (
    update(_ATTEMPTS)
    .where(_ATTEMPTS.c.id == bindparam("b_id"))
    .values(
        finished_at=bindparam("b_at"),
        provider_sid=func.coalesce(bindparam("b_sid"), _ATTEMPTS.c.provider_sid),
        error_code=bindparam("b_code"),
        error=bindparam("b_error"),
        outcome=bindparam("b_outcome"),
    )
)


def record_outcomes(
    session: Session,
    outcomes: Sequence[Outcome],
    *,
    now: dt.datetime,
    retry: RetryPolicy,
    async_record: bool = True,
) -> None:
    """Record attempts' outcomes in ``session``'s transaction and commit it; each row changes
    only if its claim is still current (``claim_token``). ``async_record``: on PostgreSQL
    without waiting for the WAL flush (``notifications.worker``'s docstring says why)."""
    if async_record and is_postgresql(session):
        session.execute(text("SET LOCAL synchronous_commit = off"))
    # Rows first, in id order (the receipt webhook also locks the row before its
    # attempt): no deadlock with it or with another worker.
    rows = {
        row.id: row
        for row in session.scalars(
            select(SmsOutbox)
            .where(SmsOutbox.id.in_([o.claim.outbox_id for o in outcomes]))
            .order_by(SmsOutbox.id)
            .with_for_update()
        )
    }
    # The attempts are ours alone: one executemany. "lost" written meanwhile by a
    # worker that recovered an expired claim is replaced by the truth (it did go out);
    # the row itself then belongs to the newer attempt and stays untouched below.
    session.execute(
        _RECORD_ATTEMPT,
        [
            {
                "b_id": o.claim.attempt_id,
                "b_at": o.at or now,
                "b_sid": o.sid,
                "b_code": o.code,
                "b_error": o.error,
                "b_outcome": o.outcome,
            }
            for o in outcomes
        ],
    )
    sent: list[SmsOutbox] = []
    for o in outcomes:
        row = rows.get(o.claim.outbox_id)
        if row is not None and _apply(session, row, o, now, retry):
            sent.append(row)
    apply_early_receipts_many(session, sent, now=now, policy=retry)
    session.commit()


def _apply(
    session: Session, row: SmsOutbox, o: Outcome, now: dt.datetime, retry: RetryPolicy
) -> bool:
    """Apply one outcome to its locked row; True when it recorded a provider SID."""
    claim = o.claim
    if row.claim_token != claim.token:
        log.warning(
            "sms %s: attempt %s finished (%s) after its claim expired",
            row.id,
            claim.attempt_no,
            o.outcome,
        )
        return False
    if o.outcome == "sent":
        row.provider_sid = o.sid
        if row.status == "sending":
            row.status = "sent"
            row.sent_at = o.at or now
        row.last_error_code = None
        row.last_error = None
        clear_claim(row)
        templates.redact(row)
        log.info("sms %s sent to %s (%s)", row.id, mask_phone(row.to_phone), o.sid)
        return bool(o.sid)
    if row.status != "sending":
        clear_claim(row)  # a receipt settled it meanwhile
    elif o.outcome == "transient" and not retry.exhausted(row.attempts):
        row.status = "pending"
        row.last_error_code = o.code
        row.last_error = o.error
        row.next_attempt_at = now + retry.delay(row.attempts)
        clear_claim(row)
        log.info(
            "sms %s: transient failure %s, retry at %s",
            row.id,
            o.code,
            # To the second: a microseconds field can read as a six-digit sign-in code
            # (tests/test_privacy.py scans every log line for those).
            row.next_attempt_at.isoformat(timespec="seconds"),
        )
    else:
        fail(session, row, status="failed", code=o.code, error=o.error)
    return False
