"""Duty shifts."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import ForeignKey, Index, Integer
from sqlalchemy.orm import Mapped, mapped_column

from server.db import Base, UTCDateTime, utcnow


class DutyShift(Base):
    """One staff member on duty between ``starts_at`` and ``ends_at``."""

    __tablename__ = "duty_shifts"
    # Who is on duty at a moment: the region's staff (few) first, then each one's shifts that
    # have not ended (those of the coming days), never the years of shifts already over.
    __table_args__ = (Index("ix_duty_shifts_account_ends", "account_id", "ends_at"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    account_id: Mapped[int] = mapped_column(ForeignKey("accounts.id"))
    starts_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)
    ends_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
