"""Human-readable, unique case numbers: JJ371102004-20261123-0007."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import Integer, text
from sqlalchemy.orm import Session

from server.api import SHANGHAI

# 急 for urgent help, 申 for applications.
KIND_PREFIX = {True: "JJ", False: "SQ"}


# One statement for SQLite (3.35+) and PostgreSQL alike.
_NEXT_VALUE = text(
    "INSERT INTO case_counters (prefix, day, value) VALUES (:prefix, :day, 1) "
    "ON CONFLICT (prefix, day) DO UPDATE SET value = case_counters.value + 1 "
    "RETURNING value"
).columns(value=Integer)


def next_case_no(session: Session, *, urgent: bool, queue_code: str, now: dt.datetime) -> str:
    """Allocate the next number of the queue's day (atomic upsert, safe under concurrency)."""
    prefix = f"{KIND_PREFIX[urgent]}{queue_code}"
    day = now.astimezone(SHANGHAI).strftime("%Y%m%d")
    value = session.execute(_NEXT_VALUE, {"prefix": prefix, "day": day}).scalar_one()
    return f"{prefix}-{day}-{value:04d}"
