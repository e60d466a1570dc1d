"""SMS tables: outbox, attempts, delivery receipts, inbound messages, call-back tasks,
template overrides. No Flask here: the worker and the app share them."""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
    Uuid,
    text,
)
from sqlalchemy.orm import Mapped, mapped_column

from server.db import Base, UTCDateTime, utcnow

OUTBOX_STATUSES = ("pending", "sending", "sent", "delivered", "undelivered", "failed")
# Statuses a row never leaves on its own (only an operator's retry moves it back).
FINAL_STATUSES = ("delivered", "undelivered", "failed")

_BigId = BigInteger().with_variant(Integer, "sqlite")


class SmsOutbox(Base):
    """One SMS to send, written in the same transaction as the change it reports.

    ``status``: pending (due at ``next_attempt_at``) -> sending (claimed by a worker, see
    ``claim_token``) -> sent (accepted by the provider, ``provider_sid``) -> delivered /
    undelivered / failed (from the provider's receipts, or failed after a permanent error or
    the last retry).
    """

    __tablename__ = "sms_outbox"
    __table_args__ = (
        Index("ix_sms_outbox_due", "status", "next_attempt_at", "priority"),
        # The worker's claim in send order: what is pending, by priority, first due first
        # (notifications.claiming.due_rows); a backlog of receipts is never sorted per claim.
        Index(
            "ix_sms_outbox_pending_priority",
            "priority",
            "next_attempt_at",
            "id",
            sqlite_where=text("status = 'pending'"),
            postgresql_where=text("status = 'pending'"),
        ),
        # Only rows the provider has named: delivery reports look a sid up (migration 0009).
        Index(
            "ix_sms_outbox_provider_sid",
            "provider_sid",
            sqlite_where=text("provider_sid IS NOT NULL"),
            postgresql_where=text("provider_sid IS NOT NULL"),
        ),
    )

    id: Mapped[int] = mapped_column(_BigId, primary_key=True, autoincrement=True)
    to_phone: Mapped[str] = mapped_column(String(20))
    template: Mapped[str] = mapped_column(String(40))
    params: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    body: Mapped[str] = mapped_column(Text)
    case_id: Mapped[uuid.UUID | None] = mapped_column(
        Uuid, ForeignKey("cases.id", ondelete="SET NULL"), index=True
    )
    # Lower is sooner, set at enqueue from ``templates.priority`` (the one place it is
    # decided): duty pages and sign-in codes go before escalations, those before receipts.
    priority: Mapped[int] = mapped_column(Integer, default=5)
    status: Mapped[str] = mapped_column(String(20), default="pending")
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    provider_sid: Mapped[str | None] = mapped_column(String(64))
    last_error_code: Mapped[str | None] = mapped_column(String(20))
    last_error: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    sent_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    updated_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)
    # The current claim: which worker, when, and a token only that claim knows, so a worker
    # that outlived its claim (recovered by another) cannot overwrite the newer attempt.
    claimed_by: Mapped[str | None] = mapped_column(String(64))
    claimed_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    claim_token: Mapped[str | None] = mapped_column(String(32))
    delivered_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)


class SmsAttempt(Base):
    """One try to hand a message to the provider (``outcome`` NULL while in flight)."""

    __tablename__ = "sms_attempts"
    __table_args__ = (Index("ix_sms_attempts_outbox_id_id", "outbox_id", "id"),)

    id: Mapped[int] = mapped_column(_BigId, primary_key=True, autoincrement=True)
    outbox_id: Mapped[int] = mapped_column(_BigId, ForeignKey("sms_outbox.id", ondelete="CASCADE"))
    attempt_no: Mapped[int] = mapped_column(Integer)
    claim_token: Mapped[str] = mapped_column(String(32))
    worker_id: Mapped[str] = mapped_column(String(64))
    backend: Mapped[str] = mapped_column(String(20))
    started_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    finished_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    # sent, transient, permanent, or lost (its worker died before recording it)
    outcome: Mapped[str | None] = mapped_column(String(20))
    provider_sid: Mapped[str | None] = mapped_column(String(64))
    error_code: Mapped[str | None] = mapped_column(String(20))
    error: Mapped[str | None] = mapped_column(Text)


class SmsReceipt(Base):
    """A delivery status callback from the provider, kept as received (any order)."""

    __tablename__ = "sms_receipts"
    __table_args__ = (Index("ix_sms_receipts_provider_sid", "provider_sid", "status"),)

    id: Mapped[int] = mapped_column(_BigId, primary_key=True, autoincrement=True)
    outbox_id: Mapped[int | None] = mapped_column(
        _BigId, ForeignKey("sms_outbox.id", ondelete="CASCADE"), index=True
    )
    provider_sid: Mapped[str] = mapped_column(String(64))
    status: Mapped[str] = mapped_column(String(20))
    error_code: Mapped[str | None] = mapped_column(String(20))
    received_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)


class SmsInbound(Base):
    """An SMS a resident sent us (feature phones): what it asked and what we did."""

    __tablename__ = "sms_inbound"
    __table_args__ = (Index("ix_sms_inbound_from_phone_received_at", "from_phone", "received_at"),)

    id: Mapped[int] = mapped_column(_BigId, primary_key=True, autoincrement=True)
    provider_sid: Mapped[str] = mapped_column(String(64), unique=True)
    from_phone: Mapped[str] = mapped_column(String(32))
    body: Mapped[str] = mapped_column(Text)
    intent: Mapped[str] = mapped_column(String(20))
    case_id: Mapped[uuid.UUID | None] = mapped_column(
        Uuid, ForeignKey("cases.id", ondelete="SET NULL")
    )
    received_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)


class CallbackTask(Base):
    """ "SMS not delivered - phone the resident": work for the case's duty staff."""

    __tablename__ = "callback_tasks"
    __table_args__ = (
        UniqueConstraint("outbox_id"),
        Index("ix_callback_tasks_case_id_status", "case_id", "status"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    case_id: Mapped[uuid.UUID] = mapped_column(Uuid, ForeignKey("cases.id", ondelete="CASCADE"))
    outbox_id: Mapped[int] = mapped_column(_BigId, ForeignKey("sms_outbox.id", ondelete="CASCADE"))
    phone: Mapped[str] = mapped_column(String(20))
    reason: Mapped[str] = mapped_column(Text)
    status: Mapped[str] = mapped_column(String(10), default="open")  # open | done
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    closed_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    closed_by_id: Mapped[int | None] = mapped_column(ForeignKey("accounts.id"))
    note: Mapped[str | None] = mapped_column(Text)


class SmsTemplateOverride(Base):
    """An administrator's wording for a template (same name, same parameters)."""

    __tablename__ = "sms_template_overrides"

    name: Mapped[str] = mapped_column(String(40), primary_key=True)
    text: Mapped[str] = mapped_column(Text)
    updated_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)
    updated_by_id: Mapped[int | None] = mapped_column(ForeignKey("accounts.id"))
