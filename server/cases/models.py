"""Cases, their timeline events, and idempotency keys (documents: server/documents/models.py)."""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Float,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
    Uuid,
    false,
    text,
)
from sqlalchemy.orm import Mapped, mapped_column, relationship
from uuid6 import uuid7

from server.db import Base, UTCDateTime, utcnow

STATUSES = (
    "queued",
    "claimed",
    "needs_info",
    "pending_county_approval",
    "approved",
    "paid",
    "closed",
    "rejected",
    "withdrawn",
    "referred",
)
OPEN_STATUSES = ("queued", "claimed", "needs_info", "pending_county_approval", "approved", "paid")
STATUS_LABELS = {
    "queued": "待受理",
    "claimed": "办理中",
    "needs_info": "待补充材料",
    "pending_county_approval": "待区县审批",
    "approved": "已审批",
    "paid": "已发放",
    "closed": "已办结",
    "rejected": "未通过",
    "withdrawn": "已撤回",
    "referred": "已转县级部门",
}
CHANNEL_LABELS = {
    "app": "手机应用",
    "miniprogram": "小程序",
    "hotline": "12349 热线",
    "proactive_discovery": "主动发现",
    "walk_in": "窗口受理",
    "sms": "短信",
}
CHANNELS = tuple(CHANNEL_LABELS)


def new_case_id() -> uuid.UUID:
    """A new case's id: a UUIDv7, its first 48 bits the time, 74 random bits from the OS.

    Unguessable as a UUIDv4 is for all purposes here (a guess must hit 74 random bits within
    one millisecond; others' cases answer 404 anyway), but time-ordered, so a new case's
    entry goes on the last leaf page of every index keyed by case id (the cases' own, the
    events', the outbox's) instead of a random page among millions, which each SQLite
    checkpoint must then sync while the write lock is held (bench/results/decisions.md).
    The time it carries is no secret: the case number shows the day and the count already.
    """
    return uuid7()


class Case(Base):
    """One request for help: an urgent one-tap request or an application.

    ``status`` is written only by the state machine (server/cases/state.py).
    A case with ``township_code`` NULL sits in the triage queue of ``county_code``
    (or of the deployment city, when even the county is unknown).
    """

    __tablename__ = "cases"
    __table_args__ = (
        Index("ix_cases_triage", "county_code", "status", "urgent", "created_at"),
        Index("ix_cases_resident_created", "resident_id", "created_at"),
        Index("ix_cases_subject_phone", "subject_phone", "aid_type", "status"),
        # Only cases with an ID number: nothing looks a NULL up (migration 0009).
        Index(
            "ix_cases_subject_id_hash",
            "subject_id_hash",
            "aid_type",
            "status",
            sqlite_where=text("subject_id_hash IS NOT NULL"),
            postgresql_where=text("subject_id_hash IS NOT NULL"),
        ),
    )

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=new_case_id)
    case_no: Mapped[str] = mapped_column(String(40), unique=True)
    urgent: Mapped[bool] = mapped_column(Boolean, default=False)
    aid_type: Mapped[str] = mapped_column(String(40))
    status: Mapped[str] = mapped_column(String(30), default="queued")
    channel: Mapped[str] = mapped_column(String(30))
    resident_id: Mapped[int] = mapped_column(ForeignKey("accounts.id"))
    created_by_id: Mapped[int | None] = mapped_column(ForeignKey("accounts.id"))
    # The person in need, for cross-channel duplicate detection.
    subject_phone: Mapped[str | None] = mapped_column(String(20))
    subject_id_hash: Mapped[str | None] = mapped_column(String(64))
    # Where the case is queued now.
    township_code: Mapped[str | None] = mapped_column(String(12), ForeignKey("divisions.code"))
    county_code: Mapped[str | None] = mapped_column(String(12), ForeignKey("divisions.code"))
    # The first township that received it stays accountable for the 24 h (survives transfers).
    accountable_township_code: Mapped[str | None] = mapped_column(
        String(12), ForeignKey("divisions.code")
    )
    routing_evidence: Mapped[str | None] = mapped_column(String(40))
    routing_reason: Mapped[str | None] = mapped_column(Text)
    # What the resident or operator told us.
    lat: Mapped[float | None] = mapped_column(Float)
    lng: Mapped[float | None] = mapped_column(Float)
    address: Mapped[str | None] = mapped_column(String(300))
    description: Mapped[str | None] = mapped_column(Text)
    contact_phone: Mapped[str | None] = mapped_column(String(20))
    household_size: Mapped[int | None] = mapped_column(Integer)
    monthly_income_fen: Mapped[int | None] = mapped_column(BigInteger)
    reason: Mapped[str | None] = mapped_column(Text)
    staff_notes: Mapped[str | None] = mapped_column(Text)
    duplicate_of_id: Mapped[uuid.UUID | None] = mapped_column(Uuid, ForeignKey("cases.id"))
    # Work in progress.
    claimed_by_id: Mapped[int | None] = mapped_column(ForeignKey("accounts.id"))
    claimed_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    lease_expires_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    referred_department: Mapped[str | None] = mapped_column(String(40))
    # Money, integer fen.
    approved_amount_fen: Mapped[int | None] = mapped_column(BigInteger)
    paid_amount_fen: Mapped[int | None] = mapped_column(BigInteger)
    pay_method: Mapped[str | None] = mapped_column(String(30))
    pay_reference: Mapped[str | None] = mapped_column(String(100))
    paid_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    # Clocks.
    pay_due_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    paperwork_due_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    # When the closing checklist was first complete (server/documents): stops that clock.
    paperwork_done_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)
    closed_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    # Optimistic lock: two concurrent actions on one case cannot both win.
    version: Mapped[int] = mapped_column(Integer, default=1, server_default=text("1"))

    events: Mapped[list[CaseEvent]] = relationship(
        back_populates="case", order_by="CaseEvent.id", lazy="raise_on_sql"
    )

    __mapper_args__ = {"version_id_col": version}

    @property
    def queue_county(self) -> str:
        """The county the case belongs to: its county code, else its township's county ("" if
        neither is set)."""
        return self.county_code or (self.township_code or "")[:6]


# In the claim order (server/cases/claim.py QUEUE_ORDER): the next case of a township queue
# is the first index entry, whatever the queue's length (migration 0006, bench/README.md).
Index(
    "ix_cases_queue",
    Case.township_code,
    Case.status,
    Case.urgent.desc(),
    Case.pay_due_at,
    Case.created_at,
    Case.id,
)


class CaseEvent(Base):
    """A timeline entry: who did what to the case, when, from which status to which."""

    __tablename__ = "case_events"
    __table_args__ = (Index("ix_case_events_case_id_id", "case_id", "id"),)

    id: Mapped[int] = mapped_column(
        BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True
    )
    case_id: Mapped[uuid.UUID] = mapped_column(Uuid, ForeignKey("cases.id", ondelete="CASCADE"))
    at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    actor_id: Mapped[int | None] = mapped_column(ForeignKey("accounts.id"))
    actor_role: Mapped[str | None] = mapped_column(String(20))
    action: Mapped[str] = mapped_column(String(40))
    from_status: Mapped[str | None] = mapped_column(String(30))
    to_status: Mapped[str | None] = mapped_column(String(30))
    data: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    resident_visible: Mapped[bool] = mapped_column(Boolean, default=True)
    text_zh: Mapped[str | None] = mapped_column(Text)

    case: Mapped[Case] = relationship(back_populates="events", lazy="raise_on_sql")


class IdempotencyKey(Base):
    """A client's Idempotency-Key: a retried request returns the first one's case."""

    __tablename__ = "idempotency_keys"
    __table_args__ = (UniqueConstraint("account_id", "key"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    account_id: Mapped[int] = mapped_column(ForeignKey("accounts.id"))
    key: Mapped[str] = mapped_column(String(100))
    endpoint: Mapped[str] = mapped_column(String(100))
    request_hash: Mapped[str] = mapped_column(String(64))
    case_id: Mapped[uuid.UUID | None] = mapped_column(Uuid, ForeignKey("cases.id"))
    # The first answer joined the person's open case (no case of its own): a retry after
    # that case ended is taken as a new request (server/cases/intake.py).
    folded_in: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)


class CaseCounter(Base):
    """Per-queue, per-day sequence for human-readable case numbers."""

    __tablename__ = "case_counters"

    prefix: Mapped[str] = mapped_column(String(30), primary_key=True)
    day: Mapped[str] = mapped_column(String(8), primary_key=True)
    value: Mapped[int] = mapped_column(Integer, default=0)
