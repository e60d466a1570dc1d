"""Queue listings and what an open queue page polls (the SLA report: server/reports/sla.py)."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Select, func, select
from sqlalchemy.orm import Session

from server.cases.claim import QUEUE_ORDER
from server.cases.models import OPEN_STATUSES, Case
from server.divisions.models import Division
from server.errors import NotFound
from server.routing.gazetteer import gazetteer

# A code's length gives its level (server/divisions/models.py).
_LEVEL_BY_LENGTH = {2: "province", 4: "city", 6: "county", 9: "township", 12: "village"}


def require_division(session: Session, code: str, level: str | tuple[str, ...]) -> str:
    """The name of the division with ``code`` at ``level`` (one level or several); 404
    otherwise. From the per-process gazetteer of the code's city when it holds the code."""
    levels = (level,) if isinstance(level, str) else level
    name = gazetteer(session, code[:4]).name(code) if len(code) >= 4 else None
    if name is not None and _LEVEL_BY_LENGTH.get(len(code)) in levels:
        return name
    division = session.get(Division, code)
    if division is None or division.level not in levels:
        raise NotFound("未找到该区域。", message_en="Region not found.")
    return division.name


def list_queue(
    session: Session, *, page: int = 1, per_page: int = 20, **filters: Any
) -> tuple[list[Case], int]:
    """One page of a queue's open cases (``queue_query``'s filters) in claim order, and how
    many there are in all."""
    query = queue_query(**filters)
    total = session.scalar(select(func.count()).select_from(query.subquery())) or 0
    items = session.scalars(
        query.order_by(*QUEUE_ORDER).offset((page - 1) * per_page).limit(per_page)
    ).all()
    return list(items), total


def queue_query(
    *,
    township_code: str | None = None,
    county_code: str | None = None,
    status: str | None = None,
    aid_type: str | None = None,
    urgent: bool | None = None,
    channel: str | None = None,
    claimed_by_id: int | None = None,
) -> Select[Any]:
    """The open cases of a township queue (or a county's triage queue) with these filters,
    ``claimed_by_id`` for the cases one staff member holds ("my cases"): ``select(Case)``,
    unordered (narrow it with ``with_only_columns``)."""
    query = select(Case).where(Case.status.in_((status,) if status else OPEN_STATUSES))
    if township_code:
        query = query.where(Case.township_code == township_code)
    else:
        query = query.where(Case.township_code.is_(None), Case.county_code == county_code)
    if aid_type:
        query = query.where(Case.aid_type == aid_type)
    if urgent is not None:
        query = query.where(Case.urgent.is_(urgent))
    if channel:
        query = query.where(Case.channel == channel)
    if claimed_by_id is not None:
        query = query.where(Case.claimed_by_id == claimed_by_id)
    return query


def queue_pulse(session: Session, *, township_code: str) -> dict[str, Any]:
    """What an open queue page polls for (one aggregate over the township's open cases): how
    many are open (and urgent), how many wait to be claimed and how many of those are urgent,
    the newest urgent arrival, and a stamp that changes whenever any open case changes."""
    queued = Case.status == "queued"
    urgent_queued = queued & Case.urgent.is_(True)
    row = session.execute(
        select(
            func.count(),
            func.count().filter(Case.urgent.is_(True)),
            func.count().filter(queued),
            func.count().filter(urgent_queued),
            func.max(Case.created_at).filter(urgent_queued),
            func.max(Case.updated_at),
        ).where(Case.township_code == township_code, Case.status.in_(OPEN_STATUSES))
    ).one()
    total, urgent_open, waiting, urgent, newest_urgent, changed = row
    return {
        "open": total,
        "urgent_open": urgent_open,
        "queued": waiting,
        "urgent_queued": urgent,
        "newest_urgent_at": str(newest_urgent) if newest_urgent else None,
        "stamp": f"{total}:{changed}",
    }
