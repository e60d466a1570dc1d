"""Human-readable, unique case numbers: JJ371102004-20261123-0007."""

from __future__ import annotations

import datetime as dt

from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from server.api import SHANGHAI
from server.cases.models import CaseCounter

# 急 for urgent help, 申 for applications.
KIND_PREFIX = {True: "JJ", False: "SQ"}


def next_case_no(session: Session, *, urgent: bool, queue_code: str, now: dt.datetime) -> str:
    """Allocate the next number of the queue's day (atomic upsert, safe under concurrency)."""
    prefix = f"{KIND_PREFIX[urgent]}{queue_code}"
    day = now.astimezone(SHANGHAI).strftime("%Y%m%d")
    insert = postgresql.insert if session.get_bind().dialect.name == "postgresql" else sqlite.insert
    stmt = insert(CaseCounter).values(prefix=prefix, day=day, value=1)
    stmt = stmt.on_conflict_do_update(
        index_elements=["prefix", "day"], set_={"value": CaseCounter.value + 1}
    ).returning(CaseCounter.value)
    value = session.execute(stmt).scalar_one()
    return f"{prefix}-{day}-{value:04d}"
