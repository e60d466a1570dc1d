"""The case state machine: one table of (status, action) -> status; the only writer of status.

Public actions are what clients send to ``POST /cases/{id}/actions``. Internal actions are
taken by the system on someone's behalf: ``create`` (intake: a new case, status ``NEW``),
``claim`` (the queue endpoint), ``request_county_approval`` (an ``approve`` above the
township's authority, 一事一议), ``expire_lease`` (the sweeper). *Whether* a move exists at
all is decided here; the rules that depend on more than the status are
server/cases/transitions.py's guards (money limits: server/cases/money.py; who: access.py).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from server.cases.models import STATUS_LABELS, STATUSES
from server.errors import Conflict

PUBLIC_ACTIONS = (
    "approve",
    "pay",
    "request_info",
    "supply_info",
    "reject",
    "transfer",
    "refer",
    "close",
    "withdraw",
    "release",
    "assign",
    "note",
)
INTERNAL_ACTIONS = ("create", "claim", "request_county_approval", "expire_lease")
ACTIONS = PUBLIC_ACTIONS + INTERNAL_ACTIONS

ACTION_LABELS = {
    "approve": "审批通过",
    "pay": "发放救助金",
    "request_info": "要求补充材料",
    "supply_info": "补充材料",
    "reject": "不予救助",
    "transfer": "转办其他乡镇",
    "refer": "转县级部门",
    "close": "办结",
    "withdraw": "撤回",
    "release": "退回队列",
    "assign": "分派乡镇",
    "note": "工作记录",
    "create": "提交",
    "claim": "认领",
    "request_county_approval": "报区县审批",
    "expire_lease": "认领超时退回",
}

# Statuses before any money has gone out: the resident may still withdraw.
_UNPAID_OPEN = ("queued", "claimed", "needs_info", "pending_county_approval", "approved")

# The status of a case not yet created.
NEW = None

TRANSITIONS: dict[tuple[str | None, str], str] = {
    # A new request joins a township queue (or a county's triage queue).
    (NEW, "create"): "queued",
    # Waiting in a township queue (or a county triage queue when township_code is NULL).
    ("queued", "claim"): "claimed",
    ("queued", "assign"): "queued",
    ("queued", "transfer"): "queued",
    ("queued", "refer"): "referred",
    ("queued", "withdraw"): "withdrawn",
    # Someone holds it.
    ("claimed", "approve"): "approved",
    ("claimed", "request_county_approval"): "pending_county_approval",
    ("claimed", "pay"): "paid",  # urgent only: 先行救助 (transitions.GUARDS)
    ("claimed", "request_info"): "needs_info",
    ("claimed", "reject"): "rejected",
    ("claimed", "transfer"): "queued",
    ("claimed", "refer"): "referred",
    ("claimed", "assign"): "queued",  # a supervisor's claimed triage case
    ("claimed", "release"): "queued",
    ("claimed", "expire_lease"): "queued",
    ("claimed", "withdraw"): "withdrawn",
    ("claimed", "note"): "claimed",
    # Waiting for the resident.
    ("needs_info", "supply_info"): "claimed",
    ("needs_info", "reject"): "rejected",
    ("needs_info", "transfer"): "queued",
    ("needs_info", "refer"): "referred",
    ("needs_info", "withdraw"): "withdrawn",
    ("needs_info", "note"): "needs_info",
    # Above the township's authority: the county decides (supervisors only, see access.py).
    ("pending_county_approval", "approve"): "approved",
    ("pending_county_approval", "reject"): "rejected",
    ("pending_county_approval", "withdraw"): "withdrawn",
    ("pending_county_approval", "note"): "pending_county_approval",
    # Approved, to be paid.
    ("approved", "pay"): "paid",
    ("approved", "withdraw"): "withdrawn",
    ("approved", "note"): "approved",
    # Paid: urgent cases complete their paperwork, then close.
    ("paid", "close"): "closed",
    ("paid", "note"): "paid",
    # closed, rejected, withdrawn, referred: final.
}

FINAL_STATUSES = tuple(s for s in STATUSES if not any(k[0] == s for k in TRANSITIONS))
# Statuses in which documents may be added (the paperwork window included).
DOCUMENT_STATUSES = ("claimed", "needs_info", "pending_county_approval", "approved", "paid")
UNPAID_OPEN_STATUSES = _UNPAID_OPEN

assert all(
    (s is NEW or s in STATUSES) and t in STATUSES and a in ACTIONS
    for (s, a), t in TRANSITIONS.items()
)


class IllegalTransition(Conflict):
    """The action does not exist in the case's current status (409)."""

    code = "illegal_transition"
    refusal: tuple[str, str, str, str] = ("", "", "", "")

    def for_caller(self, may: Callable[[str], bool]) -> IllegalTransition:
        """The same refusal listing only the actions the caller may take (``may(action)``)."""
        status, action, reason_zh, reason_en = self.refusal
        return refuse(status, action, reason_zh=reason_zh, reason_en=reason_en, may=may)


def allowed_actions(status: str | None) -> list[str]:
    """Public actions possible from ``status`` (what a client may try next)."""
    return [a for a in PUBLIC_ACTIONS if (status, a) in TRANSITIONS]


def refuse(
    status: str | None,
    action: str,
    *,
    reason_zh: str = "",
    reason_en: str = "",
    may: Callable[[str], bool] | None = None,
) -> IllegalTransition:
    """A 409 naming the current status and the allowed actions (those ``may`` admits, when
    given), with an optional reason."""
    allowed = [a for a in allowed_actions(status) if may is None or may(a)]
    refusal = (status, action, reason_zh, reason_en)
    label = STATUS_LABELS.get(status, status)
    others_may = not allowed and bool(allowed_actions(status))
    allowed_zh = "、".join(f"{ACTION_LABELS[a]}（{a}）" for a in allowed) or (
        "无（需由其他角色办理）" if others_may else "无（已结束）"
    )
    allowed_en = ", ".join(allowed) or ("none for your role" if others_may else "none")
    reason_zh = reason_zh or f"当前状态不能{ACTION_LABELS.get(action, action)}"
    reason_en = reason_en or f"'{action}' is not possible in this status"
    error = IllegalTransition(
        f"案件当前状态为「{label}」（{status}）：{reason_zh}。可执行的操作：{allowed_zh}。",
        message_en=(f"The case is '{status}': {reason_en}. Allowed actions: {allowed_en}."),
        errors={"action": [reason_zh], "status": [status], "allowed_actions": allowed},
    )
    error.refusal = refusal
    return error


def target(status: str | None, action: str) -> str:
    """The status ``action`` leads to from ``status``; IllegalTransition (409) if none."""
    try:
        return TRANSITIONS[(status, action)]
    except KeyError:
        raise refuse(status, action) from None


def apply(case: Any, action: str) -> tuple[str, str]:
    """Move ``case`` by ``action``; returns (from_status, to_status). The only status writer."""
    before = case.status
    after = target(before, action)
    case.status = after
    return before, after
