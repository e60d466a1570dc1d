"""The one way a case changes status: ``transition``.

It asks the state table (server/cases/state.py) whether the move exists, runs the rules that
depend on more than the status (``GUARDS``), writes the new status, and records the move on
the timeline and in the audit trail, all in the caller's transaction. Creation (``create``),
the claim, the lease's expiry, every public action and the sweeper's moves go through it.
What a move does besides (money, the claim's holder, the SMS) is up to its caller.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from typing import Any

from sqlalchemy.orm import Session

import notifications
from server import audit
from server.cases import state
from server.cases.events import add_event
from server.cases.models import Case
from server.db import utcnow
from server.documents import checklist


def _urgent_only_before_approval(session: Session, case: Case) -> None:
    if case.status == "claimed" and not case.urgent:
        raise state.refuse(
            case.status,
            "pay",
            reason_zh="非急难型案件须先审批（approve）再发放",
            reason_en="only urgent cases are paid before approval",
        )


def _triage_only(session: Session, case: Case) -> None:
    if case.township_code is not None:
        raise state.refuse(
            case.status,
            "assign",
            reason_zh="案件已在乡镇队列，请改用转办（transfer）",
            reason_en="the case is in a township queue already; use transfer",
        )


def _paperwork_complete(session: Session, case: Case) -> None:
    # The closing checklist of the case's aid type (server/documents/checklist.py).
    missing = checklist.missing_for_close(session, case)
    if missing:
        labels = "、".join(checklist.KINDS[k] for k in missing)
        raise state.refuse(
            case.status,
            "close",
            reason_zh=f"材料未齐，缺少：{labels}",
            reason_en=f"paperwork incomplete, missing: {', '.join(missing)}",
        )


# Rules of a move beyond the state table (money limits depend on the amount asked and stay
# with the action; who may act is server/access.py).
GUARDS: dict[str, Callable[[Session, Case], None]] = {
    "pay": _urgent_only_before_approval,
    "assign": _triage_only,
    "close": _paperwork_complete,
}


def check(session: Session, case: Case, action: str) -> str:
    """The status ``action`` would lead ``case`` to, or IllegalTransition (409): the state
    table first, then the move's guards."""
    after = state.target(case.status, action)
    guard = GUARDS.get(action)
    if guard is not None:
        guard(session, case)
    return after


def transition(
    session: Session,
    case: Case,
    action: str,
    *,
    actor: Any,
    text_zh: str,
    data: dict[str, Any] | None = None,
    resident_visible: bool = True,
    event_action: str | None = None,
    audit_data: dict[str, Any] | None = None,
    at: dt.datetime | None = None,
) -> tuple[str | None, str]:
    """Move ``case`` by ``action`` (``check``), stamp it, and write the timeline event
    (``event_action``, default ``action``; ``data``, ``text_zh``) and the audit entry
    (``case.<action>`` with from, to and ``audit_data``), stamped ``at`` (default: when
    written, after any wait for the row lock). Returns (from, to)."""
    check(session, case, action)
    before, after = state.apply(case, action)
    notifications.announce(session)  # open queue pages see the move at once
    # A write on the case row in every move, so the row version guards it; set before the
    # audit entry is written, which may flush the case.
    case.updated_at = at or utcnow()
    name = event_action or action
    audit.record(
        session,
        actor=actor,
        action=f"case.{action}",
        target_type="case",
        target_id=case.id,
        data={"from": before, "to": after, **(audit_data or {})},
    )
    add_event(
        session,
        case_id=case.id,
        actor=actor,
        action=name,
        from_status=before,
        to_status=after,
        text_zh=text_zh,
        data=data,
        resident_visible=resident_visible,
        # Stamped after the audit entry: the timeline's move is the last row of the move.
        at=at or utcnow(),
    )
    return before, after
