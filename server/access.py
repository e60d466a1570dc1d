"""The one place that decides what an actor may see and do.

Every endpoint asks here. Out-of-scope reads are NotFound (existence is not revealed);
forbidden actions on a visible case are Forbidden.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import and_, false, or_
from sqlalchemy.sql.elements import ColumnElement

from server.cases.models import Case
from server.divisions.models import within
from server.errors import Forbidden, NotFound

# Staff roles that see cases in their region.
CASE_READERS = frozenset({"operator", "grid_worker", "duty", "supervisor", "admin"})


def in_scope(actor: Any, township_code: str | None, county_code: str | None = None) -> bool:
    """True when a case queued at ``township_code`` (or triage ``county_code``) is in scope."""
    region = actor.region_code
    if not region:
        return False
    if township_code:
        return within(region, township_code)
    # A triage case has no township: it belongs to its county (or the city) queue; only
    # staff scoped at or above that level see it, and every county supervisor of the city
    # works the city's triage queue (cases not even a county could be found for).
    if not county_code:
        return False
    if within(region, county_code):
        return True
    return actor.role == "supervisor" and len(county_code) == 4 and within(county_code, region)


def case_scope_clause(actor: Any) -> ColumnElement[bool]:
    """SQL form of ``can_view_case`` for lists: the cases ``actor`` may see."""
    if actor.role == "resident":
        return Case.resident_id == actor.id
    region = actor.region_code
    if actor.role not in CASE_READERS or not region:
        return false()
    triage = Case.township_code.is_(None)
    clause = or_(
        Case.township_code.startswith(region), and_(triage, Case.county_code.startswith(region))
    )
    if actor.role == "supervisor":
        clause = or_(clause, and_(triage, Case.county_code == region[:4]))
    return clause


def can_view_case(actor: Any, case: Any) -> bool:
    """A resident sees their own cases; staff see cases whose queue lies in their region."""
    if actor.role == "resident":
        return case.resident_id == actor.id
    if actor.role not in CASE_READERS:
        return False
    return in_scope(actor, case.township_code, case.county_code)


def require_view(actor: Any, case: Any) -> Any:
    """Return ``case`` if visible to ``actor``; NotFound otherwise."""
    if case is None or not can_view_case(actor, case):
        raise NotFound("未找到该案件。", message_en="Case not found.")
    return case


# Which roles may perform which case action (the state machine decides *when*).
ACTION_ROLES: dict[str, frozenset[str]] = {
    "approve": frozenset({"duty", "supervisor"}),
    "pay": frozenset({"duty", "supervisor"}),
    "request_info": frozenset({"duty", "supervisor"}),
    "supply_info": frozenset({"resident"}),
    "reject": frozenset({"duty", "supervisor"}),
    "transfer": frozenset({"duty", "supervisor"}),
    "refer": frozenset({"duty", "supervisor"}),
    "close": frozenset({"duty", "supervisor"}),
    "withdraw": frozenset({"resident"}),
    "release": frozenset({"duty", "supervisor"}),
    "assign": frozenset({"supervisor"}),
    "county_approve": frozenset({"supervisor"}),
    "county_reject": frozenset({"supervisor"}),
    "add_document": frozenset({"resident", "duty", "supervisor"}),
    # Phoning a resident an SMS did not reach (call-back tasks).
    "close_callback_task": frozenset({"duty", "supervisor", "operator"}),
}


def require_action(actor: Any, case: Any, action: str) -> None:
    """Raise NotFound when the case is invisible, Forbidden when the role may not act."""
    require_view(actor, case)
    if actor.role not in ACTION_ROLES.get(action, frozenset()):
        raise Forbidden(
            "您的角色不能执行该操作。", message_en="Your role may not perform this action."
        )


def require_region(actor: Any, code: str) -> None:
    """Staff may act on a township/county queue only inside their region (else 404)."""
    if not actor.region_code or not within(actor.region_code, code):
        raise NotFound("未找到该区域。", message_en="Region not found.")
