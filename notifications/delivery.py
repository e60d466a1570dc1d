"""What happens to a message after it left: receipts from the provider, final failures.

Receipts arrive in any order and may repeat; a row's status only moves forward
(pending < sending < sent < delivered/undelivered/failed), ``delivered`` is never overwritten,
and the first final failure wins. A resident-facing message that finally fails becomes a
call-back task on its case for the duty staff; the case side, told through
``hooks.on_final_failure``, adds a staff-only timeline entry.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Sequence

from sqlalchemy import select
from sqlalchemy.orm import Session

from notifications import hooks, templates
from notifications.models import FINAL_STATUSES, CallbackTask, SmsAttempt, SmsOutbox, SmsReceipt
from notifications.retry import RetryPolicy
from notifications.senders import TRANSIENT_CODES
from server.masking import mask_phone

log = logging.getLogger(__name__)

RANK = {"pending": 0, "sending": 1, "sent": 2, "delivered": 3, "undelivered": 3, "failed": 3}
# Provider statuses that say nothing new to us (the message is still on its way).
IN_FLIGHT_STATUSES = frozenset({"accepted", "queued", "scheduled", "sending"})


def clear_claim(row: SmsOutbox) -> None:
    row.claimed_by = None
    row.claimed_at = None
    row.claim_token = None


def fail(
    session: Session, row: SmsOutbox, *, status: str, code: str | None, error: str | None
) -> None:
    """Mark ``row`` finally failed and hand the resident to the duty staff."""
    row.status = status
    row.last_error_code = code
    row.last_error = error
    clear_claim(row)
    templates.redact(row)
    log.warning("sms %s to %s finally %s (code %s)", row.id, mask_phone(row.to_phone), status, code)
    create_callback_task(session, row)


def create_callback_task(session: Session, row: SmsOutbox) -> CallbackTask | None:
    """A call-back task for a resident-facing message of a case (once per message)."""
    if row.case_id is None or not templates.is_resident_facing(row.template):
        return None
    existing = session.scalar(select(CallbackTask).where(CallbackTask.outbox_id == row.id))
    if existing is not None:
        return existing
    code = row.last_error_code or "-"
    task = CallbackTask(
        case_id=row.case_id,
        outbox_id=row.id,
        phone=row.to_phone,
        reason=f"短信未送达（错误码 {code}），请电话告知居民：{row.body}",
        status="open",
    )
    session.add(task)
    session.flush()
    hooks.final_failure(
        session,
        hooks.FinalFailure(
            case_id=row.case_id,
            outbox_id=row.id,
            template=row.template,
            error_code=row.last_error_code,
            phone_masked=mask_phone(row.to_phone),
            callback_task_id=task.id,
        ),
    )
    return task


def record_receipt(
    session: Session,
    *,
    provider_sid: str,
    status: str,
    error_code: str | None,
    outbox_id: int | None,
    now: dt.datetime,
    policy: RetryPolicy,
) -> SmsOutbox | None:
    """Store a delivery receipt and apply it to its message (idempotent, any order)."""
    status = (status or "").lower()
    error_code = error_code or None
    row = session.scalar(
        select(SmsOutbox).where(SmsOutbox.provider_sid == provider_sid).with_for_update()
    )
    if row is None and outbox_id is not None:
        candidate = session.get(SmsOutbox, outbox_id, with_for_update=True)
        # The callback URL names the message: when its worker has not recorded the SID yet
        # (in flight, or crashed after the provider took it), the receipt proves it was sent
        # and the SID guards against sending it again. Any other state: a stale receipt of an
        # earlier attempt, kept but not applied.
        if candidate is not None and candidate.status == "sending" and not candidate.provider_sid:
            candidate.provider_sid = provider_sid
            attempt = session.scalar(
                select(SmsAttempt)
                .where(
                    SmsAttempt.outbox_id == candidate.id,
                    SmsAttempt.claim_token == candidate.claim_token,
                )
                .limit(1)
            )
            if attempt is not None and attempt.provider_sid is None:
                attempt.provider_sid = provider_sid
            row = candidate
    duplicate = session.scalar(
        select(SmsReceipt.id).where(
            SmsReceipt.provider_sid == provider_sid,
            SmsReceipt.status == status,
            SmsReceipt.error_code.is_(None)
            if error_code is None
            else SmsReceipt.error_code == error_code,
        )
    )
    if duplicate is not None:
        return row
    session.add(
        SmsReceipt(
            outbox_id=row.id if row is not None else None,
            provider_sid=provider_sid,
            status=status,
            error_code=error_code,
            received_at=now,
        )
    )
    if row is not None:
        apply_status(session, row, status=status, error_code=error_code, now=now, policy=policy)
    session.flush()
    return row


def apply_early_receipts_many(
    session: Session, rows: Sequence[SmsOutbox], *, now: dt.datetime, policy: RetryPolicy
) -> None:
    """Apply receipts that arrived for the rows' ``provider_sid`` before the SID was recorded
    (one query for all of them)."""
    by_sid = {row.provider_sid: row for row in rows if row.provider_sid}
    if not by_sid:
        return
    early = session.scalars(
        select(SmsReceipt)
        .where(SmsReceipt.provider_sid.in_(list(by_sid)), SmsReceipt.outbox_id.is_(None))
        .order_by(SmsReceipt.id)
    ).all()
    for receipt in early:
        row = by_sid[receipt.provider_sid]
        receipt.outbox_id = row.id
        apply_status(
            session,
            row,
            status=receipt.status,
            error_code=receipt.error_code,
            now=now,
            policy=policy,
        )


def apply_status(
    session: Session,
    row: SmsOutbox,
    *,
    status: str,
    error_code: str | None,
    now: dt.datetime,
    policy: RetryPolicy,
) -> None:
    """Move ``row`` forward according to one provider status."""
    if status == "sent":
        if RANK.get(row.status, 0) < RANK["sent"]:
            row.status = "sent"
            row.sent_at = row.sent_at or now
    elif status == "delivered":
        if row.status != "delivered":
            row.status = "delivered"
            row.delivered_at = now
            row.sent_at = row.sent_at or now
            # A late "delivered" after a failure report: the resident did get it.
            for task in session.scalars(
                select(CallbackTask).where(
                    CallbackTask.outbox_id == row.id, CallbackTask.status == "open"
                )
            ):
                task.status = "done"
                task.closed_at = now
                task.note = "短信后来已送达，无需回访。"
    elif status in ("undelivered", "failed"):
        if row.status in FINAL_STATUSES:
            return
        if error_code in TRANSIENT_CODES and not policy.exhausted(row.attempts):
            # The provider's queue overflowed (30001) or similar: send it again later.
            row.status = "pending"
            row.provider_sid = None
            row.last_error_code = error_code
            row.last_error = f"provider status {status}"
            row.next_attempt_at = now + policy.delay(row.attempts)
            clear_claim(row)
            return
        fail(session, row, status=status, code=error_code, error=f"provider status {status}")
