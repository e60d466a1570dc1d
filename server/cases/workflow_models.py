"""Workflow tables: county aid standards, holiday-calendar overrides, fired escalations."""

from __future__ import annotations

import datetime as dt
import uuid

from sqlalchemy import (
    BigInteger,
    Boolean,
    Date,
    ForeignKey,
    Integer,
    String,
    UniqueConstraint,
    Uuid,
)
from sqlalchemy.orm import Mapped, mapped_column

from server.db import Base, UTCDateTime, utcnow


class AidStandard(Base):
    """A county's aid standards and township authority, in integer fen (分)."""

    __tablename__ = "aid_standards"

    county_code: Mapped[str] = mapped_column(
        String(12), ForeignKey("divisions.code"), primary_key=True
    )
    # 城市/农村低保月标准 (per person per month).
    urban_monthly_fen: Mapped[int] = mapped_column(BigInteger)
    rural_monthly_fen: Mapped[int] = mapped_column(BigInteger)
    # What a township may pay at once to an urgent case before paperwork (先行救助).
    township_urgent_cap_fen: Mapped[int] = mapped_column(BigInteger)
    # Above this a township's approval goes to the county (一事一议).
    township_approval_cap_fen: Mapped[int] = mapped_column(BigInteger)
    updated_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)
    updated_by_id: Mapped[int | None] = mapped_column(ForeignKey("accounts.id"))


class CalendarOverride(Base):
    """An administrator's correction of the working-day calendar for one date."""

    __tablename__ = "calendar_overrides"

    day: Mapped[dt.date] = mapped_column(Date, primary_key=True)
    # True: a working day (调休上班); False: a holiday.
    workday: Mapped[bool] = mapped_column(Boolean)
    note: Mapped[str | None] = mapped_column(String(100))
    created_by_id: Mapped[int | None] = mapped_column(ForeignKey("accounts.id"))
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)


class Escalation(Base):
    """An escalation that has fired; the unique key makes each one fire once."""

    __tablename__ = "escalations"
    __table_args__ = (UniqueConstraint("case_id", "kind", "ref"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    case_id: Mapped[uuid.UUID] = mapped_column(
        Uuid, ForeignKey("cases.id", ondelete="CASCADE"), index=True
    )
    kind: Mapped[str] = mapped_column(String(30))
    # Distinguishes repeatable situations (e.g. each lease that expired); "" otherwise.
    ref: Mapped[str] = mapped_column(String(40), default="")
    fired_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    notified: Mapped[int] = mapped_column(Integer, default=0)
