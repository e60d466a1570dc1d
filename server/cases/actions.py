"""What staff and residents do to a case (``POST /cases/{id}/actions``): approve, pay, ask for
information, transfer, refer, close, withdraw, release, assign, note.

``perform`` reads the case row-locked, checks access (server/access.py) and the move
(server/cases/transitions.py), then runs the action's handler: its own checks (money, the
target township), the move through ``transition``, and the resident's SMS, in the caller's
transaction. Services only flush.
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Callable
from typing import Any

from sqlalchemy.orm import Session

from server import access
from server.cases import clocks, money, state, transitions
from server.cases.claim import clear_claim, release
from server.cases.locks import case_for_write, concurrent_update_is_conflict
from server.cases.models import Case
from server.cases.notices import alert_supervisors, division_name, page_township, tell_resident
from server.cases.transitions import transition
from server.db import utcnow
from server.divisions.service import require_case_township
from server.documents import checklist
from server.errors import ValidationFailed

# County departments a case can be referred to (一门受理、协同办理), with Chinese labels.
DEPARTMENTS = {
    "medical_insurance": "医保局",
    "education": "教育局",
    "housing": "住建局",
    "human_resources": "人社局",
    "justice": "司法局（法律援助）",
    "health": "卫健局",
    "emergency_management": "应急管理局",
    "disabled_persons_federation": "残联",
    "womens_federation": "妇联",
    "trade_union": "总工会",
    "charity": "慈善总会",
}
PAY_METHODS = {
    "cash": "现金",
    "bank_transfer": "银行转账",
    "social_security_card": "社保卡",
    "in_kind": "实物",
    "other": "其他方式",
}


def _amount_text(fen: int) -> str:
    return f"{money.yuan(fen)} 元"


def _finish(case: Case, now: dt.datetime) -> None:
    case.lease_expires_at = None
    case.closed_at = now


def _approve(session: Session, actor: Any, case: Case, args: dict, now: dt.datetime) -> None:
    county = case.queue_county
    standard = money.require_standard(session, county)
    if case.status == "pending_county_approval":
        # The county decides (一事一议): it may confirm or change the proposed amount, but the
        # 3× floor of expenditure-type aid still holds.
        amount = args.get("amount_fen")
        if amount is None:
            amount = case.approved_amount_fen or 0
        money.approval_route(standard=standard, aid_type=case.aid_type, amount_fen=amount)
        case.approved_amount_fen = amount
        transition(
            session,
            case,
            "approve",
            actor=actor,
            text_zh=f"区县民政部门审批通过（一事一议），救助金额 {_amount_text(amount)}。",
            data={"amount_fen": amount, "level": "county", "note": args.get("note")},
        )
        tell_resident(session, case, "approved", amount_yuan=money.yuan(amount))
        return
    amount = args.get("amount_fen")
    if amount is None:
        raise ValidationFailed(errors={"amount_fen": ["必填项。"]})
    route = money.approval_route(standard=standard, aid_type=case.aid_type, amount_fen=amount)
    if route.level == "county" and actor.role != "supervisor":
        case.approved_amount_fen = amount  # the proposed amount, until the county decides
        transition(
            session,
            case,
            "request_county_approval",
            actor=actor,
            event_action="approve",
            text_zh=f"拟救助 {_amount_text(amount)}，{route.reason_zh}，已报区县民政部门审批。",
            data={"amount_fen": amount, "level": "county", "reason": route.reason_zh},
        )
        alert_supervisors(
            session, case=case, problem=f"拟救助{money.yuan(amount)}元待区县审批", now=now
        )
        return
    case.approved_amount_fen = amount
    level = "county" if actor.role == "supervisor" else "township"
    transition(
        session,
        case,
        "approve",
        actor=actor,
        text_zh=f"审批通过，救助金额 {_amount_text(amount)}。",
        data={
            "amount_fen": amount,
            "level": level,
            "reason": route.reason_zh or None,
            "note": args.get("note"),
        },
    )
    tell_resident(session, case, "approved", amount_yuan=money.yuan(amount))


def _pay(session: Session, actor: Any, case: Case, args: dict, now: dt.datetime) -> None:
    amount = args["amount_fen"]
    emergency = case.status == "claimed"  # urgent only (transitions.GUARDS)
    if emergency:
        standard = money.require_standard(session, case.queue_county)
        money.check_emergency_payment(standard=standard, amount_fen=amount)
    else:
        money.check_approved_payment(approved_fen=case.approved_amount_fen, amount_fen=amount)
    paid_at = args.get("paid_at") or now
    money.check_paid_at(paid_at=paid_at, submitted_at=case.created_at, now=now)

    case.paid_amount_fen = amount
    case.pay_method = args["method"]
    case.pay_reference = args.get("reference")
    case.paid_at = paid_at
    case.lease_expires_at = None
    method = PAY_METHODS.get(args["method"], args["method"])
    text = f"已发放救助金 {_amount_text(amount)}（{method}，{clocks.local_text(paid_at)}）"
    if case.urgent:
        case.paperwork_due_at = clocks.paperwork_due_at(session, paid_at)
        text += f"；先行救助，相关手续请于 {clocks.local_text(case.paperwork_due_at)} 前补齐"
    within = case.pay_due_at is None or paid_at <= case.pay_due_at
    transition(
        session,
        case,
        "pay",
        actor=actor,
        text_zh=text + "。",
        data={
            "amount_fen": amount,
            "method": args["method"],
            "reference": args.get("reference"),
            "paid_at": paid_at.isoformat(),
            "emergency": emergency,
            "pay_due_at": case.pay_due_at.isoformat() if case.pay_due_at else None,
            "within_24h": within if case.urgent else None,
            "paperwork_due_at": (
                case.paperwork_due_at.isoformat() if case.paperwork_due_at else None
            ),
        },
    )
    checklist.note_paperwork(session, case=case, actor=actor, now=now)
    tell_resident(session, case, "paid", amount_yuan=money.yuan(amount))
    if case.urgent and case.paperwork_due_at and case.paperwork_done_at is None:
        tell_resident(
            session, case, "paperwork_due", due_date=clocks.local_text(case.paperwork_due_at)
        )


def _request_info(session: Session, actor: Any, case: Case, args: dict, now: dt.datetime) -> None:
    message = args["message"]
    transition(
        session,
        case,
        "request_info",
        actor=actor,
        text_zh=f"需要补充材料：{message}",
        data={"message": message},
    )
    case.lease_expires_at = None
    tell_resident(session, case, "info_requested", message=message)


def _supply_info(session: Session, actor: Any, case: Case, args: dict, now: dt.datetime) -> None:
    message = args.get("message")
    documents = checklist.supplied_documents(session, case, args.get("document_ids") or [])
    labels = "、".join(checklist.KINDS[d.kind] for d in documents)
    transition(
        session,
        case,
        "supply_info",
        actor=actor,
        text_zh="已补充材料"
        + (f"：{message}" if message else "")
        + (f"（{labels}）" if labels else "")
        + "。",
        data={"message": message, "document_ids": [d.id for d in documents]},
    )
    if case.urgent:
        # The officer who asked gets a fresh lease to act on what arrived.
        case.lease_expires_at = now + clocks.urgent_lease()


def _reject(session: Session, actor: Any, case: Case, args: dict, now: dt.datetime) -> None:
    reason = args["reason"]
    county = case.status == "pending_county_approval"
    transition(
        session,
        case,
        "reject",
        actor=actor,
        text_zh=("区县民政部门审批未通过：" if county else "不予救助：") + reason,
        data={"reason": reason, "level": "county" if county else "township"},
    )
    _finish(case, now)
    tell_resident(session, case, "rejected", reason=reason)


def _transfer(session: Session, actor: Any, case: Case, args: dict, now: dt.datetime) -> None:
    target = require_case_township(session, args["township_code"])
    if target.code == case.township_code:
        raise ValidationFailed(errors={"township_code": ["案件已在该乡镇（街道）。"]})
    previous = case.township_code
    if case.accountable_township_code is None:
        case.accountable_township_code = previous or target.code
    reason = args["reason"]
    text = f"已转至{target.name}办理：{reason}"
    if case.urgent and case.pay_due_at and case.paid_at is None:
        accountable = division_name(session, case.accountable_township_code)
        text += (
            f"（24小时发放时限仍为 {clocks.local_text(case.pay_due_at)}，"
            f"首接乡镇{accountable}负责）"
        )
    transition(
        session,
        case,
        "transfer",
        actor=actor,
        text_zh=text,
        data={
            "from_township_code": previous,
            "to_township_code": target.code,
            "reason": reason,
            "accountable_township_code": case.accountable_township_code,
            "pay_due_at": case.pay_due_at.isoformat() if case.pay_due_at else None,
        },
    )
    case.township_code = target.code
    case.county_code = target.code[:6]
    clear_claim(case)
    tell_resident(session, case, "transferred", township=target.name)
    page_township(session, case=case, now=now)


def _assign(session: Session, actor: Any, case: Case, args: dict, now: dt.datetime) -> None:
    target = require_case_township(session, args["township_code"])
    transition(
        session,
        case,
        "assign",
        actor=actor,
        text_zh=f"已分派至{target.name}办理。"
        + (f"{args['reason']}" if args.get("reason") else ""),
        data={"to_township_code": target.code, "reason": args.get("reason")},
    )
    case.township_code = target.code
    case.county_code = target.code[:6]
    if case.accountable_township_code is None:
        case.accountable_township_code = target.code
    clear_claim(case)
    tell_resident(session, case, "transferred", township=target.name)
    page_township(session, case=case, now=now)


def _refer(session: Session, actor: Any, case: Case, args: dict, now: dt.datetime) -> None:
    department = args["department"]
    county = division_name(session, case.queue_county)
    label = f"{county}{DEPARTMENTS[department]}"
    transition(
        session,
        case,
        "refer",
        actor=actor,
        text_zh=f"已转{label}办理：{args['reason']}",
        data={"department": department, "reason": args["reason"]},
    )
    case.referred_department = department
    _finish(case, now)
    tell_resident(session, case, "referred", department=label)


def _close(session: Session, actor: Any, case: Case, args: dict, now: dt.datetime) -> None:
    transition(
        session,
        case,
        "close",
        actor=actor,
        text_zh="案件已办结。" + (args.get("note") or ""),
        data={"note": args.get("note")},
    )
    _finish(case, now)
    tell_resident(session, case, "closed")


def _withdraw(session: Session, actor: Any, case: Case, args: dict, now: dt.datetime) -> None:
    reason = args.get("reason")
    transition(
        session,
        case,
        "withdraw",
        actor=actor,
        text_zh="申请人已撤回申请" + (f"：{reason}" if reason else "。"),
        data={"reason": reason},
    )
    _finish(case, now)
    tell_resident(session, case, "withdrawn")


def _note(session: Session, actor: Any, case: Case, args: dict, now: dt.datetime) -> None:
    transition(
        session,
        case,
        "note",
        actor=actor,
        text_zh=args["message"],
        data={"message": args["message"]},
        resident_visible=False,
    )
    clocks.renew_lease(case, actor, now)


_HANDLERS: dict[str, Callable[[Session, Any, Case, dict, dt.datetime], None]] = {
    "approve": _approve,
    "pay": _pay,
    "request_info": _request_info,
    "supply_info": _supply_info,
    "reject": _reject,
    "transfer": _transfer,
    "refer": _refer,
    "close": _close,
    "withdraw": _withdraw,
    "release": release,
    "assign": _assign,
    "note": _note,
}
assert set(_HANDLERS) == set(state.PUBLIC_ACTIONS)


def perform(
    session: Session,
    *,
    actor: Any,
    case_id: uuid.UUID,
    action: str,
    args: dict[str, Any],
    now: dt.datetime | None = None,
) -> Case:
    """Perform a public action on a case (access, state machine, event, SMS), then flush."""
    now = now or utcnow()
    case = case_for_write(session, case_id)
    access.require_action(actor, case, action)
    status = case.status
    try:
        # 409 before the action's own checks when the move is absent or its guard refuses.
        transitions.check(session, case, action)
        with concurrent_update_is_conflict():
            _HANDLERS[action](session, actor, case, args, now)
            session.flush()
    except state.IllegalTransition as exc:
        # Name only the next steps this caller can take (a resident is not told to approve).
        raise exc.for_caller(lambda a: access.may_act(actor, status, a)) from None
    return case
