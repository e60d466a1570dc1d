"""What intake looks up before it decides, under the person's row lock: the person, the
idempotency key, the person's open case of this kind, and whom a new urgent case would page.

PostgreSQL: the person's account row is locked (``FOR NO KEY UPDATE``), so two taps of one
person are serialised and never open two urgent cases; requests naming one ID number are
serialised by a transaction-level advisory lock on its keyed hash. SQLite serialises every
writer anyway (``BEGIN IMMEDIATE``, server/session.py).
"""

from __future__ import annotations

import datetime as dt
import functools
import uuid
import weakref
from dataclasses import dataclass
from typing import Any

from sqlalchemy import bindparam, func, null, select, true
from sqlalchemy.orm import Session

from server import access
from server.accounts.models import Account
from server.cases.models import OPEN_STATUSES, Case, IdempotencyKey
from server.db import is_postgresql
from server.errors import Unauthorized, ValidationFailed
from server.roster.service import pagers_params, pagers_query, pick_pagers


def _locked(session: Session) -> set[int]:
    # Accounts locked by this transaction; keyed weakly by it, so the next one locks anew.
    by_txn = session.info.setdefault("locked_accounts", weakref.WeakKeyDictionary())
    return by_txn.setdefault(session.get_transaction(), set())


def lock_account(session: Session, account_id: int) -> None:
    """Lock an account row for this transaction (``FOR NO KEY UPDATE``: exclusive among taps
    of the person, while rows that merely refer to the account can still be written)."""
    locked = _locked(session)
    if account_id not in locked:
        session.execute(
            select(Account.id).where(Account.id == account_id).with_for_update(key_share=True)
        )
        locked.add(account_id)


def lock_subject(session: Session, subject_id_hash: str) -> None:
    """Serialise the requests naming one ID number, until this transaction ends (PostgreSQL;
    SQLite serialises writers). Taken after the person's and the key owner's row locks."""
    if is_postgresql(session):
        key = int(subject_id_hash[:15], 16)  # 60 bits of the keyed hash: a bigint
        session.execute(select(func.pg_advisory_xact_lock(key)))


def person(session: Session, resident: Account | int) -> Account:
    """The person in need, their account row locked: an Account as given (its in-memory
    state counts), or the active account of that id, read with its lock."""
    if isinstance(resident, int):
        account = session.get(Account, resident, with_for_update={"key_share": True})
        if account is None or not account.active:
            raise Unauthorized(code="token_invalid")
        _locked(session).add(account.id)
        return account
    if session.new:
        session.flush()  # a resident created by this request: the lock needs its row
    lock_account(session, resident.id)
    return resident


@functools.cache
def _look_up_query(*, key: bool, urgent: bool, by_subject: bool, pagers: str | None) -> Any:
    """Idempotency key id, the person's newest open case of this kind, and (``pagers``: the
    queue's kind) everyone who could be paged, in one statement: the first two as columns
    of one row, joined to every pager row (so there is a row even when nobody is paged)."""
    who = Case.resident_id == bindparam("resident_id")
    if by_subject:
        who = who | (Case.subject_id_hash == bindparam("subject_id_hash"))
    kind = (
        Case.urgent.is_(True)
        if urgent
        else (Case.aid_type == bindparam("aid_type")) & (Case.created_at >= bindparam("since"))
    )
    order = [Case.created_at.desc()]
    if by_subject:
        # The person's own open case first; another phone's case of the ID is only linked.
        order.insert(0, (Case.resident_id == bindparam("resident_id")).desc())
    open_case = (
        select(Case.id)
        .where(who, Case.status.in_(OPEN_STATUSES), kind)
        .order_by(*order)
        .limit(1)
        .scalar_subquery()
    )
    key_id = (
        select(IdempotencyKey.id)
        .where(
            IdempotencyKey.account_id == bindparam("key_owner"),
            IdempotencyKey.key == bindparam("key"),
        )
        .scalar_subquery()
        if key
        else null()
    )
    found = select(key_id.label("key_id"), open_case.label("open_id"))
    if pagers is None:
        return found
    anchor = found.subquery("found")
    roster = pagers_query(pagers)
    return select(anchor, roster).select_from(anchor.outerjoin(roster, true()))


@dataclass
class Found:
    """What the look-up found: the key's row id, the open case's id, whom to page."""

    key_id: int | None
    open_id: uuid.UUID | None
    pagers: list[Any]
    paged_as: str


def look_up(
    session: Session,
    *,
    resident_id: int,
    key_owner: int,
    key: str | None,
    urgent: bool,
    aid_type: str,
    since: dt.datetime | None,
    subject_id_hash: str | None,
    queue_code: str,
    now: dt.datetime,
) -> Found:
    """The key, the open case and the pagers of a request, in one statement."""
    params: dict[str, Any] = {"resident_id": resident_id}
    pager_kind = None
    if urgent:
        pager_kind, roster = pagers_params(queue_code, now)
        params.update(roster)
    else:
        params.update(aid_type=aid_type, since=since)
    if key:
        params.update(key_owner=key_owner, key=key)
    if subject_id_hash:
        params["subject_id_hash"] = subject_id_hash
    query = _look_up_query(
        key=bool(key), urgent=urgent, by_subject=bool(subject_id_hash), pagers=pager_kind
    )
    rows = session.execute(query, params).all()
    paged, who = pick_pagers(rows) if urgent else ([], "")
    return Found(rows[0].key_id, rows[0].open_id, paged, who)


def earlier_request(
    session: Session, key_id: int, *, actor: Any, endpoint: str, request_hash: str
) -> tuple[IdempotencyKey, Case | None]:
    """The key of an earlier request and the case to answer a retry with (422 when the key
    was used for another request; 404 when the caller may not view the case); no case when
    the key's first answer joined an open case that has since ended: the person's need
    outlived it, so the retry is a new request. A blank stored fingerprint (written before
    fingerprints were keyed) matches on the endpoint alone."""
    existing = session.get(IdempotencyKey, key_id)
    if (
        existing is None
        or existing.endpoint != endpoint
        or (existing.request_hash and existing.request_hash != request_hash)
    ):
        raise ValidationFailed(
            "该幂等键已用于另一请求。",
            message_en="This Idempotency-Key was used for a different request.",
            errors={"Idempotency-Key": ["同一个幂等键只能用于同一请求，请为新请求生成新键。"]},
        )
    case = session.get(Case, existing.case_id) if existing.case_id else None
    if case is not None and existing.folded_in and case.status not in OPEN_STATUSES:
        return existing, None
    return existing, access.require_view(actor, case)


def open_case_locked(session: Session, case_id: uuid.UUID) -> Case | None:
    """The case found by the look-up, its row locked as a transition's write locks it (FOR
    NO KEY UPDATE: events and documents may still refer to it), read afresh; None when it
    ended meanwhile."""
    case = session.get(Case, case_id, with_for_update={"key_share": True}, populate_existing=True)
    return case if case is not None and case.status in OPEN_STATUSES else None
