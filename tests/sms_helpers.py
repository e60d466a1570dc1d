"""Helpers for the SMS tests: cases to attach messages to, workers wired to the test app."""

from __future__ import annotations

import itertools
from typing import Any

from flask import Flask
from sqlalchemy.orm import Session

from server.cases.models import Case
from server.worker import build_worker

TOWNSHIP = "371102001"  # 日照街道, 东港区
COUNTY = "371102"
_seq = itertools.count(1)


def make_case(session: Session, resident: Any, **fields: Any) -> Case:
    """A queued urgent case of ``resident`` in 日照街道 (intake is not needed here)."""
    n = next(_seq)
    values: dict[str, Any] = {
        "case_no": f"UR-{TOWNSHIP}-20261123-{n:04d}",
        "urgent": True,
        "aid_type": "temporary_emergency",
        "status": "queued",
        "channel": "app",
        "resident_id": resident.id,
        "township_code": TOWNSHIP,
        "county_code": COUNTY,
        "subject_phone": resident.phone,
    }
    values.update(fields)
    case = Case(**values)
    session.add(case)
    session.flush()
    return case


def worker(app: Flask, *, worker_id: str | None = None, **config: Any):  # type: ignore[no-untyped-def]
    """A worker for ``app`` after applying ``config``."""
    app.config.update(config)
    return build_worker(app, worker_id=worker_id)
