"""Case action services: claim, approve, pay, ask for information, transfer, refer, close, ...

Every service takes the session and the actor, checks access (server/access.py), moves the
case through the state machine (server/cases/state.py), writes a timeline event and, where
the resident cares, queues an SMS in the same transaction. Services only flush.
"""

from __future__ import annotations

import datetime as dt
import logging
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from sqlalchemy import bindparam, exists, select, update
from sqlalchemy.orm import Session
from sqlalchemy.orm.exc import StaleDataError

import notifications
from notifications.models import SmsOutbox
from server import access
from server.accounts.models import ROLE_LABELS, Account
from server.audit import AUDIT, entry_row, record
from server.cases import clocks, money, state
from server.cases.events import EVENTS, add_event, event_row
from server.cases.models import CHANNEL_LABELS, Case, CaseDocument
from server.db import DriverStatement, insert_rows, utcnow
from server.divisions.models import Division
from server.divisions.service import require_case_township
from server.errors import Conflict, NotFound, ValidationFailed
from server.roster.service import pagers_for_township, supervisors_to_alert
from server.routing.gazetteer import gazetteer

log = logging.getLogger(__name__)

DEFAULT_URGENT_LEASE_MINUTES = 30

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
DOCUMENT_KINDS = {
    "application": "救助申请书",
    "id_proof": "身份证明",
    "hardship_proof": "困难情况证明",
    "payment_receipt": "救助金发放签收单",
    "assessment": "核查（入户调查）记录",
    "other": "其他材料",
}
# 先行救助、事后补充: what must be on file before an urgent case that was paid can close.
PAPERWORK_REQUIRED = ("application", "payment_receipt")

# The queue's order: urgent first, then the earliest deadline, then first come.
QUEUE_ORDER = (
    Case.urgent.desc(),
    Case.pay_due_at.asc().nulls_last(),
    Case.created_at.asc(),
    Case.id.asc(),
)


def urgent_lease() -> dt.timedelta:
    """How long an urgent claim holds without activity (config URGENT_LEASE_MINUTES)."""
    minutes = DEFAULT_URGENT_LEASE_MINUTES
    try:
        from flask import current_app

        minutes = int(current_app.config.get("URGENT_LEASE_MINUTES", minutes))
    except RuntimeError:  # outside an app context (worker, scripts)
        pass
    return dt.timedelta(minutes=minutes)


# --- helpers --------------------------------------------------------------------------------


def division_name(session: Session, code: str | None) -> str:
    """The division's name, or its code when unknown (from the per-process gazetteer of the
    code's city; the database only for codes it does not hold)."""
    if not code:
        return ""
    if len(code) >= 4:
        name = gazetteer(session, code[:4]).name(code)
        if name:
            return name
    division = session.get(Division, code)
    return division.name if division else code


def resident_phone(session: Session, case: Case) -> str | None:
    """Where the resident is told: the contact phone of the request, else the account's."""
    if case.contact_phone:
        return case.contact_phone
    account = session.get(Account, case.resident_id)
    return account.phone if account else None


_NO_PHONE = object()


def tell_resident(
    session: Session, case: Case, template: str, *, phone: Any = _NO_PHONE, **params: Any
) -> None:
    """Queue an SMS to the resident in this transaction (skipped when no phone is known).
    ``phone``: the resident's phone when the caller already read it."""
    if phone is _NO_PHONE:
        phone = resident_phone(session, case)
    if not phone:
        log.info("no phone for case %s: %s SMS not queued", case.case_no, template)
        return
    notifications.enqueue(
        session, phone, template, {"case_no": case.case_no, **params}, case_id=case.id
    )


def alert_supervisors(session: Session, *, case: Case, problem: str, now: dt.datetime) -> int:
    """SMS the county supervisor(s) on duty about ``case``; returns how many were queued."""
    county = case.queue_county
    if not county:
        return 0
    township = division_name(session, case.township_code or case.accountable_township_code)
    sent = 0
    for supervisor in supervisors_to_alert(session, county_code=county, at=now):
        if not supervisor.phone:
            continue
        notifications.enqueue(
            session,
            supervisor.phone,
            "escalation",
            {"case_no": case.case_no, "township": township or "区县分流", "problem": problem},
            case_id=case.id,
        )
        sent += 1
    if not sent:
        log.warning("escalation for case %s reached no supervisor of %s", case.case_no, county)
    return sent


def _page_township(session: Session, *, case: Case, now: dt.datetime) -> None:
    # An urgent case arriving in another township pages that township's duty officer(s).
    if not case.urgent or not case.township_code:
        return
    accounts, _ = pagers_for_township(session, township_code=case.township_code, at=now)
    township = division_name(session, case.township_code)
    for account in accounts:
        if account.phone:
            notifications.enqueue(
                session,
                account.phone,
                "duty_page",
                {
                    "case_no": case.case_no,
                    "township": township,
                    "channel": CHANNEL_LABELS[case.channel],
                },
                case_id=case.id,
            )


def _actor_label(actor: Any) -> str:
    return ROLE_LABELS.get(getattr(actor, "role", ""), "系统")


def _move_rows(
    *,
    case: Any,
    actor: Any,
    name: str,
    moved: tuple[str, str],
    text_zh: str,
    data: dict[str, Any] | None,
    resident_visible: bool = True,
    at: dt.datetime | None = None,
) -> list[tuple[Any, list[dict[str, Any]]]]:
    """The audit entry and the timeline event of a move ``moved`` = (from, to)."""
    before, after = moved
    audit_row = entry_row(
        actor=actor,
        action=f"case.{name}",
        target_type="case",
        target_id=case.id,
        data={"from": before, "to": after},
        at=at,
    )
    event = event_row(
        case_id=case.id,
        actor=actor,
        action=name,
        from_status=before,
        to_status=after,
        text_zh=text_zh,
        data=data,
        resident_visible=resident_visible,
        at=at,
    )
    return [(AUDIT, [audit_row]), (EVENTS, [event])]


def _move(
    session: Session,
    *,
    case: Any,
    actor: Any,
    action: str,
    text_zh: str,
    data: dict[str, Any] | None = None,
    resident_visible: bool = True,
    event_action: str | None = None,
) -> tuple[str, str]:
    """Apply ``action`` through the state machine and write its audit entry and timeline
    event (one statement on PostgreSQL). Returns (from, to)."""
    moved = state.apply(case, action)
    _touch(case)
    rows = _move_rows(
        case=case,
        actor=actor,
        name=event_action or action,
        moved=moved,
        text_zh=text_zh,
        data=data,
        resident_visible=resident_visible,
    )
    insert_rows(session, rows, notify=notifications.take_notify(session))
    return moved


def _clear_claim(case: Case) -> None:
    case.claimed_by_id = None
    case.claimed_at = None
    case.lease_expires_at = None


def _renew_lease(case: Case, actor: Any, now: dt.datetime) -> None:
    if case.urgent and case.status == "claimed" and case.claimed_by_id == getattr(actor, "id", 0):
        case.lease_expires_at = now + urgent_lease()


def _finish(case: Case, now: dt.datetime) -> None:
    _clear_lease(case)
    case.closed_at = now


def _clear_lease(case: Case) -> None:
    case.lease_expires_at = None


@contextmanager
def concurrent_update_is_conflict() -> Iterator[None]:
    """A concurrent change to the same case (row version, at any flush) becomes a 409."""
    try:
        yield
    except StaleDataError as exc:
        raise Conflict(
            "案件刚刚被其他人更新，请刷新后重试。",
            code="concurrent_update",
            message_en="The case was changed by someone else just now; reload and retry.",
        ) from exc


def flush(session: Session) -> None:
    """Flush; a concurrent change to the same case (row version) becomes a 409."""
    with concurrent_update_is_conflict():
        session.flush()


def _amount_text(fen: int) -> str:
    return f"{money.yuan(fen)} 元"


# --- claim ----------------------------------------------------------------------------------


_CASES = Case.__table__
_ACCOUNTS = Account.__table__
_OUTBOX = SmsOutbox.__table__
# What a claim reads of the case: what it decides on and what QueueCaseSchema shows.
_CLAIM_COLUMNS = (
    "id",
    "case_no",
    "urgent",
    "aid_type",
    "status",
    "channel",
    "resident_id",
    "township_code",
    "county_code",
    "accountable_township_code",
    "address",
    "description",
    "contact_phone",
    "subject_phone",
    "claimed_by_id",
    "claimed_at",
    "lease_expires_at",
    "referred_department",
    "approved_amount_fen",
    "paid_amount_fen",
    "paid_at",
    "pay_due_at",
    "paperwork_due_at",
    "created_at",
    "updated_at",
    "closed_at",
    "version",
)


def _next_queued(triage: bool) -> Any:
    # The resident account's phone comes with the case (for the "claimed" SMS). A scalar
    # subquery, not a join: only the case row is locked.
    phone = (
        select(_ACCOUNTS.c.phone)
        .where(_ACCOUNTS.c.id == _CASES.c.resident_id)
        .scalar_subquery()
        .label("account_phone")
    )
    query = select(*(_CASES.c[name] for name in _CLAIM_COLUMNS), phone).where(
        _CASES.c.status == "queued"
    )
    if triage:
        query = query.where(
            _CASES.c.township_code.is_(None), _CASES.c.county_code == bindparam("code")
        )
    else:
        query = query.where(_CASES.c.township_code == bindparam("code"))
    return query.order_by(*QUEUE_ORDER).limit(1).with_for_update(skip_locked=True, of=_CASES)


# Prepared once and run on the driver's cursor (the claim is a hot path, server/db.py
# DriverStatement): the next case of a township / triage queue.
_NEXT_IN_TOWNSHIP = DriverStatement(_next_queued(triage=False))
_NEXT_IN_TRIAGE = DriverStatement(_next_queued(triage=True))

# The claim's write, guarded by the row version read with the case (a concurrent change is a
# conflict, as for the ORM's version counter). It also says whether the case was ever claimed
# before: evaluated by this statement (after the row lock), so it sees every committed claim.
_CLAIM_UPDATE = DriverStatement(
    update(_CASES)
    .where(_CASES.c.id == bindparam("case_id"), _CASES.c.version == bindparam("old_version"))
    .values(
        status=bindparam("status"),
        claimed_by_id=bindparam("claimed_by_id"),
        claimed_at=bindparam("claimed_at"),
        lease_expires_at=bindparam("lease_expires_at"),
        updated_at=bindparam("updated_at"),
        version=_CASES.c.version + 1,
    )
    .returning(
        exists()
        .where(EVENTS.c.case_id == bindparam("case_id"), EVENTS.c.action == "claim")
        .label("claimed_before")
    )
)


class ClaimedCase:
    """A claimed case as QueueCaseSchema shows it: the columns read, as attributes."""

    def __init__(self, values: dict[str, Any]) -> None:
        self.__dict__.update(values)


def claim_next(
    session: Session,
    *,
    actor: Any,
    township_code: str | None = None,
    county_code: str | None = None,
    township_name: str | None = None,
    now: dt.datetime | None = None,
) -> ClaimedCase | None:
    """Hand ``actor`` the next queued case of a township queue (or of a county's triage
    queue): urgent first, earliest deadline first. None when the queue is empty.
    ``township_name``: the township's name when the caller knows it already.

    PostgreSQL: ``SELECT ... FOR UPDATE SKIP LOCKED`` - concurrent claimers take different
    rows. SQLite: the request's transaction began with ``BEGIN IMMEDIATE`` (server/session.py),
    so claims are serialised. Either way no case is handed to two people.

    Plain Core statements (the ORM's unit of work cost more than the claim's SQL): the
    locking SELECT, the guarded UPDATE, and one INSERT for the audit entry, the timeline event
    and the SMS (on PostgreSQL with the NOTIFY).
    """
    now = now or utcnow()
    query = _NEXT_IN_TOWNSHIP if township_code else _NEXT_IN_TRIAGE
    conn = session.connection()
    values = query.fetch(conn, {"code": township_code or county_code}).first()
    if values is None:
        return None
    account_phone = values.pop("account_phone")
    case = ClaimedCase(values)
    if township_code and township_name is None:
        township_name = division_name(session, township_code)
    township = township_name or "区县民政部门"
    lease = urgent_lease()
    moved = state.apply(case, "claim")
    case.claimed_by_id = actor.id
    case.claimed_at = now
    case.lease_expires_at = now + lease if case.urgent else None
    case.updated_at = now
    updated = _CLAIM_UPDATE.fetch(
        conn,
        {
            "case_id": case.id,
            "old_version": case.version,
            "status": case.status,
            "claimed_by_id": case.claimed_by_id,
            "claimed_at": case.claimed_at,
            "lease_expires_at": case.lease_expires_at,
            "updated_at": case.updated_at,
        },
    ).first()
    if updated is None:  # the row version moved under us
        with concurrent_update_is_conflict():
            raise StaleDataError(f"case {case.id} changed during the claim")
    case.version += 1
    claimed_before = updated["claimed_before"]
    sms: list[dict[str, Any]] = []
    phone = case.contact_phone or account_phone
    if not claimed_before and phone:
        # The resident hears once, at the first claim (not again after a release).
        params = {"case_no": case.case_no, "township": township}
        sms.append(notifications.outbox_row(session, phone, "claimed", params, case.id, now=now))
    elif not claimed_before:
        log.info("no phone for case %s: claimed SMS not queued", case.case_no)
    rows = _move_rows(
        case=case,
        actor=actor,
        name="claim",
        moved=moved,
        text_zh=f"{township}工作人员已受理，正在办理。",
        data={"lease_minutes": int(lease.total_seconds() // 60) if case.urgent else None},
        at=now,
    )
    insert_rows(session, [*rows, (_OUTBOX, sms)], notify=notifications.take_notify(session))
    return case


# --- actions --------------------------------------------------------------------------------


def _approve(session: Session, actor: Any, case: Case, args: dict, now: dt.datetime) -> None:
    state.target(case.status, "approve")
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
        _move(
            session,
            case=case,
            actor=actor,
            action="approve",
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
        _move(
            session,
            case=case,
            actor=actor,
            action="request_county_approval",
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
    _move(
        session,
        case=case,
        actor=actor,
        action="approve",
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
    state.target(case.status, "pay")
    amount = args["amount_fen"]
    emergency = case.status == "claimed"
    if emergency:
        if not case.urgent:
            raise state.refuse(
                case.status,
                "pay",
                reason_zh="非急难型案件须先审批（approve）再发放",
                reason_en="only urgent cases are paid before approval",
            )
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
    _clear_lease(case)
    method = PAY_METHODS.get(args["method"], args["method"])
    text = f"已发放救助金 {_amount_text(amount)}（{method}，{clocks.local_text(paid_at)}）"
    if case.urgent:
        case.paperwork_due_at = clocks.paperwork_due_at(session, paid_at)
        text += f"；先行救助，相关手续请于 {clocks.local_text(case.paperwork_due_at)} 前补齐"
    within = case.pay_due_at is None or paid_at <= case.pay_due_at
    _move(
        session,
        case=case,
        actor=actor,
        action="pay",
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
    tell_resident(session, case, "paid", amount_yuan=money.yuan(amount))
    if case.urgent and case.paperwork_due_at:
        tell_resident(
            session, case, "paperwork_due", due_date=clocks.local_text(case.paperwork_due_at)
        )


def _request_info(session: Session, actor: Any, case: Case, args: dict, now: dt.datetime) -> None:
    message = args["message"]
    _move(
        session,
        case=case,
        actor=actor,
        action="request_info",
        text_zh=f"需要补充材料：{message}",
        data={"message": message},
    )
    _clear_lease(case)
    tell_resident(session, case, "info_requested", message=message)


def _supply_info(session: Session, actor: Any, case: Case, args: dict, now: dt.datetime) -> None:
    message = args.get("message")
    _move(
        session,
        case=case,
        actor=actor,
        action="supply_info",
        text_zh="已补充材料" + (f"：{message}" if message else "。"),
        data={"message": message},
    )
    if case.urgent:
        # The officer who asked gets a fresh lease to act on what arrived.
        case.lease_expires_at = now + urgent_lease()


def _reject(session: Session, actor: Any, case: Case, args: dict, now: dt.datetime) -> None:
    reason = args["reason"]
    county = case.status == "pending_county_approval"
    _move(
        session,
        case=case,
        actor=actor,
        action="reject",
        text_zh=("区县民政部门审批未通过：" if county else "不予救助：") + reason,
        data={"reason": reason, "level": "county" if county else "township"},
    )
    _finish(case, now)
    tell_resident(session, case, "rejected", reason=reason)


def _transfer(session: Session, actor: Any, case: Case, args: dict, now: dt.datetime) -> None:
    state.target(case.status, "transfer")
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
    _move(
        session,
        case=case,
        actor=actor,
        action="transfer",
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
    _clear_claim(case)
    tell_resident(session, case, "transferred", township=target.name)
    _page_township(session, case=case, now=now)


def _assign(session: Session, actor: Any, case: Case, args: dict, now: dt.datetime) -> None:
    state.target(case.status, "assign")
    if case.township_code is not None:
        raise state.refuse(
            case.status,
            "assign",
            reason_zh="案件已在乡镇队列，请改用转办（transfer）",
            reason_en="the case is in a township queue already; use transfer",
        )
    target = require_case_township(session, args["township_code"])
    _move(
        session,
        case=case,
        actor=actor,
        action="assign",
        text_zh=f"已分派至{target.name}办理。"
        + (f"{args['reason']}" if args.get("reason") else ""),
        data={"to_township_code": target.code, "reason": args.get("reason")},
    )
    case.township_code = target.code
    case.county_code = target.code[:6]
    if case.accountable_township_code is None:
        case.accountable_township_code = target.code
    _clear_claim(case)
    tell_resident(session, case, "transferred", township=target.name)
    _page_township(session, case=case, now=now)


def _refer(session: Session, actor: Any, case: Case, args: dict, now: dt.datetime) -> None:
    department = args["department"]
    county = division_name(session, case.queue_county)
    label = f"{county}{DEPARTMENTS[department]}"
    _move(
        session,
        case=case,
        actor=actor,
        action="refer",
        text_zh=f"已转{label}办理：{args['reason']}",
        data={"department": department, "reason": args["reason"]},
    )
    case.referred_department = department
    _finish(case, now)
    tell_resident(session, case, "referred", department=label)


def _close(session: Session, actor: Any, case: Case, args: dict, now: dt.datetime) -> None:
    state.target(case.status, "close")
    if case.urgent:
        missing = missing_paperwork(session, case)
        if missing:
            labels = "、".join(DOCUMENT_KINDS[k] for k in missing)
            raise state.refuse(
                case.status,
                "close",
                reason_zh=f"先行救助手续未补齐，缺少：{labels}",
                reason_en=f"paperwork incomplete, missing: {', '.join(missing)}",
            )
    _move(
        session,
        case=case,
        actor=actor,
        action="close",
        text_zh="案件已办结。" + (args.get("note") or ""),
        data={"note": args.get("note")},
    )
    _finish(case, now)
    tell_resident(session, case, "closed")


def _withdraw(session: Session, actor: Any, case: Case, args: dict, now: dt.datetime) -> None:
    reason = args.get("reason")
    _move(
        session,
        case=case,
        actor=actor,
        action="withdraw",
        text_zh="申请人已撤回申请" + (f"：{reason}" if reason else "。"),
        data={"reason": reason},
    )
    _finish(case, now)
    tell_resident(session, case, "withdrawn")


def _release(session: Session, actor: Any, case: Case, args: dict, now: dt.datetime) -> None:
    _move(
        session,
        case=case,
        actor=actor,
        action="release",
        text_zh=f"{_actor_label(actor)}退回队列"
        + (f"：{args['reason']}" if args.get("reason") else "。"),
        data={"reason": args.get("reason"), "held_by": case.claimed_by_id},
        resident_visible=False,
    )
    _clear_claim(case)


def _note(session: Session, actor: Any, case: Case, args: dict, now: dt.datetime) -> None:
    _move(
        session,
        case=case,
        actor=actor,
        action="note",
        text_zh=args["message"],
        data={"message": args["message"]},
        resident_visible=False,
    )
    _renew_lease(case, actor, now)


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
    "release": _release,
    "assign": _assign,
    "note": _note,
}
assert set(_HANDLERS) == set(state.PUBLIC_ACTIONS)


def case_for_write(session: Session, case_id: uuid.UUID) -> Case:
    """The case, row-locked for this transaction (404 when absent): every write that depends
    on its status reads it here, so the status it checks is the one it writes against."""
    # FOR NO KEY UPDATE on PostgreSQL: concurrent writers of the case queue here and then see
    # the committed status; the events' foreign-key checks (KEY SHARE) are not blocked.
    # SQLite serialises write transactions already (server/session.py).
    with concurrent_update_is_conflict():  # a copy held in the session older than the row
        case = session.get(Case, case_id, with_for_update={"key_share": True})
    if case is None:
        raise NotFound("未找到该案件。", message_en="Case not found.")
    return case


def _touch(case: Any, now: dt.datetime | None = None) -> None:
    # A write on the case row, so the row-version check guards every status-dependent write
    # (a note or a document changes nothing else on the row).
    case.updated_at = now or utcnow()


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
        state.target(status, action)  # 409 before any other check when the move is absent
        with concurrent_update_is_conflict():
            _HANDLERS[action](session, actor, case, args, now)
            session.flush()
    except state.IllegalTransition as exc:
        # Name only the next steps this caller can take (a resident is not told to approve).
        raise exc.for_caller(lambda a: access.may_act(actor, status, a)) from None
    return case


# --- documents ------------------------------------------------------------------------------


def missing_paperwork(session: Session, case: Case) -> list[str]:
    """Required paperwork kinds not yet on file for ``case``."""
    have = set(session.scalars(select(CaseDocument.kind).where(CaseDocument.case_id == case.id)))
    return [kind for kind in PAPERWORK_REQUIRED if kind not in have]


def add_document(
    session: Session,
    *,
    actor: Any,
    case_id: uuid.UUID,
    kind: str,
    note: str | None = None,
    file_ref: str | None = None,
    now: dt.datetime | None = None,
) -> CaseDocument:
    """Record supplementary material on an open case (the paperwork window included)."""
    now = now or utcnow()
    case = case_for_write(session, case_id)
    access.require_action(actor, case, "add_document")
    if case.status not in state.DOCUMENT_STATUSES:
        raise state.refuse(
            case.status,
            "add_document",
            reason_zh="该状态下不能添加材料",
            reason_en="documents cannot be added in this status",
        )
    document = CaseDocument(
        case_id=case.id, kind=kind, note=note, file_ref=file_ref, added_by_id=actor.id
    )
    session.add(document)
    # Material is part of the record (closing depends on it): audited like a transition.
    record(
        session,
        actor=actor,
        action="case.add_document",
        target_type="case",
        target_id=case.id,
        data={"kind": kind},
    )
    add_event(
        session,
        case=case,
        actor=actor,
        action="add_document",
        text_zh=f"已添加材料：{DOCUMENT_KINDS[kind]}",
        data={"kind": kind, "note": note},
    )
    with concurrent_update_is_conflict():
        _renew_lease(case, actor, now)
        _touch(case, now)
        session.flush()
    return document
