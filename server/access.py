"""The one place that decides what an actor may see and do.

Every endpoint asks here. Out-of-scope reads are NotFound (existence is not revealed);
forbidden actions on a visible case are Forbidden.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import and_, false, or_
from sqlalchemy.sql.elements import ColumnElement

from server.cases.models import Case, CaseEvent
from server.divisions.models import within
from server.errors import Conflict, Forbidden, NotFound, ValidationFailed

# Staff roles that see cases in their region.
CASE_READERS = frozenset({"operator", "grid_worker", "duty", "supervisor", "admin"})
# Every role that can hold a token.
ALL_ROLES = frozenset({"resident"}) | CASE_READERS
# Who may change their own profile through the API (staff profiles are managed by the admin
# CLI, because a staff member's region is their authority).
PROFILE_EDITORS = frozenset({"resident"})


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


def own_case_clause(resident_id: Any) -> ColumnElement[bool]:
    """SQL form of a resident's view: the cases of ``resident_id`` (a value, a bind
    parameter or a column)."""
    return Case.resident_id == resident_id


def event_visible(event: Any, *, staff: bool) -> bool:
    """Staff see a case's whole timeline; its resident only the events meant for them."""
    return staff or bool(event.resident_visible)


def resident_event_clause() -> ColumnElement[bool]:
    """SQL form of ``event_visible`` for a resident: the resident-visible timeline events."""
    return CaseEvent.resident_visible.is_(True)


def case_scope_clause(actor: Any) -> ColumnElement[bool]:
    """SQL form of ``can_view_case`` for lists: the cases ``actor`` may see."""
    if actor.role == "resident":
        return own_case_clause(actor.id)
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


def may_read_contact(actor: Any, case: Any, *, callback_open: bool = False) -> bool:
    """Whether ``actor`` may read ``case``'s full phone numbers: the staff who may act on it
    (the holder, the township's duty staff, the county supervisor, the operator who entered
    it) and, while the case has an open call-back task (``callback_open``), whoever may close
    it: they are to phone the resident. Everyone else sees them masked."""
    if not can_view_case(actor, case) or actor.role == "resident":
        return False
    if case.claimed_by_id is not None and case.claimed_by_id == actor.id:
        return True
    if callback_open and may_act(actor, case.status, "close_callback_task"):
        return not _held_by_other(actor, case)
    if actor.role == "duty":
        return bool(case.township_code) and in_scope(actor, case.township_code)
    if actor.role == "supervisor":
        return True  # visible to a supervisor: a case of their county (or its triage)
    if actor.role in {"operator", "grid_worker"}:
        return case.created_by_id is not None and case.created_by_id == actor.id
    return False


def require_contact(actor: Any, case: Any, *, callback_open: bool = False) -> Any:
    """Return ``case`` if ``actor`` may read its full phone numbers (``may_read_contact``);
    NotFound when the case is out of view, Forbidden when it is visible but calling the
    resident is not theirs to do."""
    require_view(actor, case)
    if not may_read_contact(actor, case, callback_open=callback_open):
        raise Forbidden(
            "只有认领人、本乡镇值班人员、区县督导、登记该案件的坐席或处理其回访任务的人员"
            "可以查看完整联系电话。",
            message_en=(
                "Only the holder, the township's duty staff, the county supervisor, the "
                "operator who entered the case or whoever works its call-back task may read "
                "its phone numbers."
            ),
        )
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
    # 承诺制: only the resident commits, for themselves.
    "sign_commitment": frozenset({"resident"}),
    "note": frozenset({"duty", "supervisor"}),
    "claim": frozenset({"duty", "supervisor"}),
    # Phoning a resident an SMS did not reach (call-back tasks).
    "close_callback_task": frozenset({"duty", "supervisor", "operator"}),
}

# Actions a duty officer may take on a case someone else holds (none: ask the holder, or the
# supervisor, who may act on any case of the county, release it first).
_HOLDER_FREE_ROLES = frozenset({"resident", "supervisor"})


def _held_by_other(actor: Any, case: Any) -> bool:
    holder = getattr(case, "claimed_by_id", None)
    return actor.role not in _HOLDER_FREE_ROLES and holder is not None and holder != actor.id


def permission_for(action: str, status: str) -> str:
    """The ACTION_ROLES key for ``action`` in ``status``: deciding above the township's
    authority (一事一议) is the county's approve/reject."""
    if status == "pending_county_approval" and action in {"approve", "reject"}:
        return f"county_{action}"
    return action


def may_act(actor: Any, status: str, action: str) -> bool:
    """Whether ``actor``'s role may take ``action`` on a case in ``status``."""
    return actor.role in ACTION_ROLES.get(permission_for(action, status), frozenset())


def require_action(actor: Any, case: Any, action: str) -> None:
    """NotFound when the case is invisible, Forbidden when the role may not act, Conflict
    (409) when a duty officer acts on a case another officer holds."""
    require_view(actor, case)
    if not may_act(actor, case.status, action):
        raise Forbidden(
            "您的角色不能执行该操作。", message_en="Your role may not perform this action."
        )
    if _held_by_other(actor, case):
        raise Conflict(
            "该案件已由其他工作人员认领办理；如需接手，请联系区县督导退回队列。",
            code="claimed_by_other",
            message_en="Another officer holds this case; a supervisor can release it.",
        )


# Who works a township's queue, and who sees a county's triage queue and reports.
QUEUE_ROLES = frozenset({"duty", "supervisor"})
COUNTY_ROLES = frozenset({"supervisor"})
COUNTY_READERS = frozenset({"supervisor", "admin"})


def _require_role(actor: Any, roles: frozenset[str]) -> None:
    if actor.role not in roles:
        raise Forbidden(
            "您的角色不能执行该操作。", message_en="Your role may not perform this action."
        )


def require_queue(actor: Any, township_code: str) -> None:
    """Duty staff of the township, or supervisors of its county (403 / 404 out of region)."""
    _require_role(actor, QUEUE_ROLES)
    require_region(actor, township_code)


def require_triage(actor: Any, county_code: str) -> None:
    """Supervisors of the county work its triage queue; every county supervisor of a city
    also works the city's triage queue (cases not even a county could be found for)."""
    _require_role(actor, COUNTY_ROLES)
    if len(county_code) == 4 and actor.region_code and within(county_code, actor.region_code):
        return
    require_region(actor, county_code)


def require_county_work(actor: Any, county_code: str) -> None:
    """A county's own decisions (triage, 一事一议): its supervisors (403 / 404 out of
    region)."""
    _require_role(actor, COUNTY_ROLES)
    require_region(actor, county_code)


def require_county_read(actor: Any, county_code: str) -> None:
    """County settings and reports: its supervisors, and administrators above it."""
    _require_role(actor, COUNTY_READERS)
    require_region(actor, county_code)


# Who keeps a county's duty roster (排班).
ROSTER_ROLES = frozenset({"supervisor", "admin"})


def require_roster(actor: Any, code: str) -> None:
    """The duty roster of a county (or one of its townships): its supervisors and the
    administrators above it (403 other roles, 404 out of region)."""
    _require_role(actor, ROSTER_ROLES)
    require_region(actor, code)


def ledger_phones_in_clear(actor: Any, county_code: str) -> bool:
    """Whether ``actor``'s ledger (台账) export of ``county_code`` shows full phone numbers:
    its supervisors may call every case of the county (``may_read_contact``); administrators
    get them masked. ID numbers are masked for everyone, everywhere."""
    region = actor.region_code
    return actor.role == "supervisor" and bool(region) and within(region, county_code)


def require_admin(actor: Any, code: str | None = None) -> None:
    """Administrators (of a region containing ``code`` when given)."""
    _require_role(actor, frozenset({"admin"}))
    if code is not None:
        require_region(actor, code)


# Who reads call-back tasks (residents an SMS did not reach, to phone).
CALLBACK_READERS = frozenset({"operator", "duty", "supervisor", "admin"})

# Who enters a case for someone else: the 12349 hotline and grid workers.
INTAKE_ROLES = ("operator", "grid_worker")


def require_intake(actor: Any, channel: str) -> str | None:
    """A staff intake on ``channel`` is allowed (else 422); returns the township a grid worker
    reports from (routing evidence), None for an operator."""
    if actor.role == "operator" and channel == "proactive_discovery":
        raise ValidationFailed(errors={"channel": ["主动发现由网格员登记。"]})
    return actor.region_code if actor.role == "grid_worker" else None


def require_phone_search(actor: Any) -> None:
    """Only staff look cases up by a person's phone (403 for residents)."""
    if not actor.is_staff:
        raise Forbidden(
            "只有工作人员可以按电话查询。", message_en="Only staff may search by phone."
        )


def require_region(actor: Any, code: str) -> None:
    """Staff may act on a township/county queue only inside their region (else 404)."""
    if not actor.region_code or not within(actor.region_code, code):
        raise NotFound("未找到该区域。", message_en="Region not found.")
