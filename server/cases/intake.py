"""Intake: one-tap urgent help, applications, hotline and grid-worker entry.

Every new case is routed to exactly one queue, gets a timeline, a receipt SMS to the resident
and, when urgent, a page to the duty officers on the roster, all in the caller's transaction:
a failure anywhere rolls back the case, its events and its SMS together.

The one-tap path is the busiest write of a flood, and every statement counts (bench/README.md),
so intake is plain Core with as few statements as correctness allows:

1. lock the person's account row and read what routing needs (PostgreSQL: taps of one
   person are serialised, so two taps never open two urgent cases; SQLite serialises every
   writer anyway);
2. one look-up after the lock: the idempotency key, the person's open case of this kind, and
   everyone who could be paged (server/roster/service.py);
3. the day's case number (an upsert);
4. one write: the case, its timeline (submit, route, page), the audit entry, the receipt and
   the pages, and the idempotency key with its case (PostgreSQL: one statement, with the
   NOTIFY; elsewhere one INSERT per table).

A retry, a repeat tap and an application absorbed by an open case take the same steps 1-2
and then read what they return.

Who is "the same person" (one open urgent case each, and a repeat is folded in):

- the same account, i.e. the same phone (a resident's account is keyed by phone): the second
  request joins the open case, under the account's row lock; but only when the caller may
  view that case (``access.can_view_case``). A grid worker's report of a person whose open
  case lies outside the worker's region opens a new case in the worker's queue instead;
- the same ID number on another phone is only *probably* the same person (an ID number is
  claimed, not proven): never merged without a staff decision. The request opens its own
  case under its own phone (its township paged).

Both kinds of probable duplicate are linked: a staff-only ``possible_duplicate`` event on
each case (with the other case's id, never its content), for the staff who may see each.
On PostgreSQL, requests naming one ID number are serialised by a transaction-level advisory
lock on its keyed hash, so two hotline entries at once still see (and link) each other.

Folding a repeat into an open case is a write that depends on the case's status: the case
row is locked (``FOR NO KEY UPDATE``), its status re-checked, and its row version bumped,
the same version every transition checks (server/cases/locks.py). A case that ended
meanwhile takes no repeat: the request opens a new case and pages; a transition that read
the case before the repeat landed gets the 409 of a concurrent change and sees it on reload.

Idempotency: a retried key returns the case of its first answer, except when that answer
joined an open case which has since ended: the person's need outlived it, so the retry is
taken as a new request (joins their open case, or opens a new one and pages), and the key
then points at that case.
"""

from __future__ import annotations

import datetime as dt
import functools
import json
import logging
import uuid
import weakref
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from sqlalchemy import bindparam, func, literal_column, null, select, true, update
from sqlalchemy.orm import Session
from sqlalchemy.orm.attributes import set_committed_value

import notifications
from notifications.models import SmsOutbox
from server import access, audit
from server.accounts import idnumbers
from server.accounts.models import Account
from server.cases import clocks
from server.cases.aid_types import AID_TYPES, URGENT_AID_TYPE
from server.cases.events import EVENTS, event_row
from server.cases.models import CHANNEL_LABELS, OPEN_STATUSES, Case, IdempotencyKey, new_case_id
from server.cases.numbers import next_case_no
from server.db import DriverStatement, insert_rows, is_postgresql, utcnow
from server.divisions.service import deployment_city
from server.errors import Unauthorized, ValidationFailed
from server.roster.service import pagers_params, pagers_query, pick_pagers
from server.routing.gazetteer import gazetteer
from server.routing.rules import Decision, Evidence, Gazetteer, route

log = logging.getLogger(__name__)

NOTE_RETRY = "重复提交，已返回原案件。"
NOTE_OPEN_URGENT = "您已有一件正在办理的紧急求助，已为您返回该案件，工作人员会尽快联系您。"
NOTE_DUPLICATE = "此人已有同类正在办理的案件，本次登记已并入该案件。"


class IntakeResult(tuple):
    """``(case, created)``, plus ``note`` and ``duplicate_of`` for the caller; for a case this
    request created, ``events`` (its timeline rows), ``resident`` and ``names`` (division
    code -> name) too, so the caller can answer without reading the case back."""

    case: Any
    created: bool

    def __new__(
        cls,
        case: Any,
        created: bool,
        note: str | None = None,
        duplicate_of: uuid.UUID | None = None,
        *,
        events: list[dict[str, Any]] | None = None,
        resident: Any = None,
        names: dict[str, str] | None = None,
    ) -> IntakeResult:
        obj = super().__new__(cls, (case, created))
        obj.note = note
        obj.duplicate_of = duplicate_of
        obj.events = events
        obj.resident = resident
        obj.names = names
        return obj

    @property
    def case(self) -> Case:
        return self[0]

    @property
    def created(self) -> bool:
        return self[1]


def request_fingerprint(endpoint: str, payload: dict[str, Any]) -> str:
    """A stable keyed hash of a request's meaning, to tell a retry from a different request.

    Keyed (``idnumbers.keyed_hash``): a body may carry an ID number, which an unkeyed hash
    would give away to a few thousand guesses."""
    canonical = json.dumps(payload, sort_keys=True, ensure_ascii=False, default=str)
    return idnumbers.keyed_hash(f"{endpoint}\n{canonical}")


# --- the person, locked -----------------------------------------------------------------

_ACCOUNTS = Account.__table__
_CASES = Case.__table__
_KEYS = IdempotencyKey.__table__
_OUTBOX = SmsOutbox.__table__


@dataclass
class Person:
    """What intake needs of the account of the person in need (read with its row lock)."""

    id: int
    phone: str | None
    name: str | None
    residence_township_code: str | None
    hukou_township_code: str | None
    id_number_hash: str | None
    id_number_masked: str | None


_PERSON_COLUMNS = (
    _ACCOUNTS.c.id,
    _ACCOUNTS.c.phone,
    _ACCOUNTS.c.name,
    _ACCOUNTS.c.residence_township_code,
    _ACCOUNTS.c.hukou_township_code,
    _ACCOUNTS.c.id_number_hash,
    _ACCOUNTS.c.id_number_masked,
    _ACCOUNTS.c.active,
)
_BY_ID = _ACCOUNTS.c.id == bindparam("account_id")
_PERSON = select(*_PERSON_COLUMNS).where(_BY_ID)
# FOR NO KEY UPDATE: exclusive among taps of the person, but rows that merely refer to the
# account (its cases, sessions, audit entries) can still be written by others meanwhile.
_PERSON_LOCKED = _PERSON.with_for_update(key_share=True)
# The tap's statements run on the driver's cursor (server/db.py DriverStatement).
_PERSON_READS = {True: DriverStatement(_PERSON_LOCKED), False: DriverStatement(_PERSON)}
_LOCK = select(_ACCOUNTS.c.id).where(_BY_ID).with_for_update(key_share=True)


def _locked(session: Session) -> set[int]:
    # Accounts locked by this transaction; keyed weakly by it, so the next one locks anew.
    by_txn = session.info.setdefault("locked_accounts", weakref.WeakKeyDictionary())
    return by_txn.setdefault(session.get_transaction(), set())


def _lock_account_id(session: Session, account_id: int) -> None:
    """Lock an account row for this transaction (PostgreSQL; SQLite serialises writers)."""
    if not is_postgresql(session):
        return
    locked = _locked(session)
    if account_id not in locked:
        session.connection().execute(_LOCK, {"account_id": account_id})
        locked.add(account_id)


def _lock_subject(session: Session, subject_id_hash: str) -> None:
    """Serialise the requests naming one ID number, until this transaction ends (PostgreSQL;
    SQLite serialises writers). Taken after the person's and the key owner's row locks."""
    if is_postgresql(session):
        key = int(subject_id_hash[:15], 16)  # 60 bits of the keyed hash: a bigint
        session.connection().execute(select(func.pg_advisory_xact_lock(key)))


def _person(session: Session, resident: Any) -> Any:
    """The person in need, their account row locked: an Account as given (its in-memory
    state counts), or, for an account id, a Person read by the locking statement."""
    if not isinstance(resident, int):
        if session.new:
            session.flush()  # a resident created by this request: the lock needs its row
        _lock_account_id(session, resident.id)
        return resident
    postgres = is_postgresql(session)
    values = _PERSON_READS[postgres].fetch(session.connection(), {"account_id": resident}).first()
    if values is None or not values.pop("active"):
        raise Unauthorized(code="token_invalid")
    if postgres:
        _locked(session).add(resident)
    return Person(**values)


# --- one look-up after the lock ---------------------------------------------------------


# The open statuses written into the statement: a bound IN list is expanded anew on every
# execution (a quarter of the look-up's CPU).
_OPEN = [literal_column(f"'{status}'") for status in OPEN_STATUSES]


@functools.cache
def _look_up_query(*, key: bool, urgent: bool, by_subject: bool, pagers: str | None) -> Any:
    """Idempotency key id, the person's newest open case of this kind, and (``pagers``: the
    queue's kind) everyone who could be paged, in one statement: the first two as columns
    of one row, joined to every pager row (so there is a row even when nobody is paged)."""
    cases = _CASES.c
    who = cases.resident_id == bindparam("resident_id")
    if by_subject:
        who = who | (cases.subject_id_hash == bindparam("subject_id_hash"))
    kind = (
        cases.urgent.is_(True)
        if urgent
        else (cases.aid_type == bindparam("aid_type")) & (cases.created_at >= bindparam("since"))
    )
    order = [cases.created_at.desc()]
    if by_subject:
        # The person's own open case first; another phone's case of the ID is only linked.
        order.insert(0, (cases.resident_id == bindparam("resident_id")).desc())
    open_case = (
        select(cases.id)
        .where(who, cases.status.in_(_OPEN), kind)
        .order_by(*order)
        .limit(1)
        .scalar_subquery()
    )
    key_id = (
        select(_KEYS.c.id)
        .where(_KEYS.c.account_id == bindparam("key_owner"), _KEYS.c.key == bindparam("key"))
        .scalar_subquery()
        if key
        else null()
    )
    found = select(key_id.label("key_id"), open_case.label("open_id"))
    if pagers is None:
        return DriverStatement(found)
    anchor = found.subquery("found")
    roster = pagers_query(pagers)
    return DriverStatement(select(anchor, roster).select_from(anchor.outerjoin(roster, true())))


@dataclass
class _Found:
    key_id: int | None
    open_id: uuid.UUID | None
    pagers: list[Any]
    paged_as: str


def _look_up(
    session: Session,
    *,
    person: Any,
    key_owner: int,
    key: str | None,
    urgent: bool,
    aid_type: str,
    since: dt.datetime | None,
    subject_id_hash: str | None,
    queue_code: str,
    now: dt.datetime,
) -> _Found:
    params: dict[str, Any] = {"resident_id": person.id}
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
    rows = query.fetch(session.connection(), params).records()
    paged, who = pick_pagers(rows) if urgent else ([], "")
    return _Found(rows[0].key_id, rows[0].open_id, paged, who)


# --- idempotency ------------------------------------------------------------------------


def _earlier_request(
    session: Session, key_id: int, *, actor: Any, endpoint: str, request_hash: str
) -> IntakeResult | IdempotencyKey:
    """The answer to a retry: the case of the earlier request with this key (422 when the key
    was used for another request); or the key itself when its first answer joined an open
    case that has since ended (the retry is then a new request, see the module docstring).

    A blank stored fingerprint (written before fingerprints were keyed) matches on the
    endpoint alone."""
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
        return existing
    return IntakeResult(access.require_view(actor, case), False, NOTE_RETRY)


def _key_rows(
    *,
    actor: Any,
    key: str | None,
    endpoint: str,
    request_hash: str | None,
    now: dt.datetime,
    retried: IdempotencyKey | None = None,
) -> list[dict[str, Any]]:
    """The idempotency key's row (its ``case_id`` still to be set), or none without a key.

    Written with the request's other rows, without a read of its own: the look-up found no
    such key after the key owner's row lock (PostgreSQL; SQLite serialises writers), so no
    concurrent request can be writing it. None either for a ``retried`` key taken as a new
    request: its row exists, and ``_point_key`` re-points it."""
    if not key or retried is not None:
        return []
    return [
        {
            "account_id": actor.id,
            "key": key,
            "endpoint": endpoint,
            "request_hash": request_hash or "",
            "folded_in": False,
            "created_at": now,
        }
    ]


# --- creation ---------------------------------------------------------------------------


def _create_case(
    session: Session,
    *,
    gaz: Gazetteer,
    decision: Decision,
    found: _Found,
    resident: Any,
    actor: Any,
    urgent: bool,
    aid_type: str,
    channel: str,
    now: dt.datetime,
    address: str | None,
    lat: float | None,
    lng: float | None,
    subject_id_hash: str | None,
    key_rows: list[dict[str, Any]],
    details: dict[str, Any],
    duplicate: Case | None = None,
) -> IntakeResult:
    queue_code = decision.township_code or decision.county_code
    case_id = new_case_id()
    case_no = next_case_no(session, urgent=urgent, queue_code=queue_code, now=now)
    case = {
        "id": case_id,
        "case_no": case_no,
        "urgent": urgent,
        "aid_type": aid_type,
        "status": "queued",
        "channel": channel,
        "resident_id": resident.id,
        "created_by_id": getattr(actor, "id", None),
        "subject_phone": resident.phone,
        "subject_id_hash": subject_id_hash or resident.id_number_hash,
        "township_code": decision.township_code,
        "county_code": decision.county_code,
        "accountable_township_code": decision.township_code,
        "routing_evidence": decision.evidence,
        "routing_reason": decision.reason_zh,
        "address": address,
        "lat": lat,
        "lng": lng,
        "pay_due_at": clocks.pay_due_at(now) if urgent else None,
        "created_at": now,
        "updated_at": now,
        "version": 1,
        **details,
    }
    queue_name = _queue_name(gaz, decision)
    kind = "紧急求助" if urgent else f"{AID_TYPES[aid_type]}申请"
    events = [
        event_row(
            case_id=case_id,
            actor=actor,
            action="submit",
            to_status="queued",
            text_zh=f"已收到您的{kind}。",
            data={"channel": channel},
            at=now,
        ),
        event_row(
            case_id=case_id,
            actor=None,
            action="route",
            to_status="queued",
            text_zh=f"已转{queue_name}办理。"
            if decision.township_code
            else "正在为您确定办理的乡镇（街道），请稍候。",
            data={
                "evidence": decision.evidence,
                "township_code": decision.township_code,
                "queue_code": queue_code,
                "reason": decision.reason_zh,
            },
            at=now,
        ),
    ]
    sms = []
    params = {"case_no": case_no, "township": queue_name}
    if resident.phone:
        template = "urgent_receipt" if urgent else "receipt"
        sms.append(notifications.outbox_row(session, resident.phone, template, params, case_id))
    if urgent:
        # How the need came in, never who or where exactly: a page is read on a locked screen.
        page = {**params, "channel": CHANNEL_LABELS[channel]}
        paged = []
        for staff in found.pagers:
            if staff.phone:
                sms.append(
                    notifications.outbox_row(session, staff.phone, "duty_page", page, case_id)
                )
                paged.append(staff.id)
        if not paged:
            log.warning("urgent case %s: nobody with a phone to page in %s", case_no, queue_code)
        events.append(
            event_row(
                case_id=case_id,
                actor=None,
                action="page",
                resident_visible=False,
                text_zh="已短信通知值班人员。" if paged else "无可通知的值班人员，请督导关注。",
                data={"paged_account_ids": paged, "role": found.paged_as},
                at=now,
            )
        )
    entries = [
        audit.entry_row(
            actor=actor,
            action="case.create",
            target_type="case",
            target_id=case_id,
            data={"channel": channel, "urgent": urgent},
            at=now,
        )
    ]
    linked: list[dict[str, Any]] = []
    if duplicate is not None:
        reason = "same_phone" if duplicate.resident_id == resident.id else "same_id_number"
        events.append(_duplicate_event(case_id, duplicate.id, reason, now))
        linked.append(_duplicate_event(duplicate.id, case_id, reason, now))
        entries.append(
            audit.entry_row(
                actor=actor,
                action="case.possible_duplicate",
                target_type="case",
                target_id=duplicate.id,
                data={"case_id": str(case_id), "reason": reason},
                at=now,
            )
        )
    insert_rows(
        session,
        [
            (_CASES, [case]),
            (EVENTS, events + linked),
            (audit.AUDIT, entries),
            (_OUTBOX, sms),
            (_KEYS, [{**row, "case_id": case_id} for row in key_rows]),
        ],
        notify=notifications.take_notify(session),
    )
    names = {code: name for code in {queue_code} if (name := gaz.name(code))}
    return IntakeResult(NewCase(case), True, events=events, resident=resident, names=names)


_DUPLICATE_TEXT = {
    "same_phone": "同一电话另有正在办理的案件（不在本登记人辖区），未合并，请督导核对。",
    "same_id_number": "同一身份证号另有正在办理的案件（不同电话），未合并，请督导核对是否同一人。",
}


def _duplicate_event(
    case_id: uuid.UUID, other_id: uuid.UUID, reason: str, now: dt.datetime
) -> dict[str, Any]:
    # The other case's id only: whoever may see this case may not see that one.
    return event_row(
        case_id=case_id,
        actor=None,
        action="possible_duplicate",
        resident_visible=False,
        text_zh=_DUPLICATE_TEXT[reason],
        data={"case_id": str(other_id), "reason": reason},
        at=now,
    )


class NewCase:
    """A case this request created, as written: its columns as attributes."""

    def __init__(self, values: dict[str, Any]) -> None:
        self.__dict__.update(dict.fromkeys(_CASES.c.keys()), **values)  # unset columns: None


def _queue_name(gaz: Any, decision: Decision) -> str:
    if decision.township_code:
        return gaz.name(decision.township_code) or decision.township_code
    return f"{gaz.name(decision.county_code) or decision.county_code}民政部门"


def _open_case_locked(session: Session, case_id: uuid.UUID) -> Case | None:
    """The case found by the look-up, its row locked as a transition's write locks it (FOR
    NO KEY UPDATE: events and documents may still refer to it), read afresh; None when it
    ended meanwhile."""
    case = session.get(Case, case_id, with_for_update={"key_share": True}, populate_existing=True)
    return case if case is not None and case.status in OPEN_STATUSES else None


def _fold_in(
    session: Session,
    *,
    case: Case,
    actor: Any,
    channel: str,
    details: dict[str, Any],
    key_rows: list[dict[str, Any]],
    now: dt.datetime,
) -> None:
    """Record a repeat on ``case`` (locked, open) and bump its row version, so a transition
    that read the case before this repeat is a 409 instead of ending it unseen."""
    kept = {k: v for k, v in details.items() if v not in (None, "")}
    event = event_row(
        case_id=case.id,
        actor=actor,
        action="repeat_request",
        resident_visible=False,
        text_zh="同一人再次求助或登记，已并入本案件。",
        data={"channel": channel, **kept},
        at=now,
    )
    # The version only: a repeat adds to the timeline, it does not change the case's fields
    # (updated_at stays, so earlier answers remain the case as read).
    version = session.execute(
        update(_CASES)
        .where(_CASES.c.id == case.id, _CASES.c.version == case.version)
        .values(version=_CASES.c.version + 1, updated_at=_CASES.c.updated_at)
        .returning(_CASES.c.version)
    ).scalar_one()
    set_committed_value(case, "version", version)
    insert_rows(
        session,
        [
            (EVENTS, [event]),
            (_KEYS, [{**r, "case_id": case.id, "folded_in": True} for r in key_rows]),
        ],
    )


def _point_key(key: IdempotencyKey | None, result: IntakeResult) -> IntakeResult:
    """A retried key taken as a new request answers with its new outcome from now on."""
    if key is not None:
        key.case_id = result.case.id
        key.folded_in = not result.created
    return result


def _submit(
    session: Session,
    *,
    resident: Any,
    actor: Any,
    channel: str,
    urgent: bool,
    aid_type: str,
    since: dt.datetime | None,
    note: str,
    endpoint: str,
    idempotency_key: str | None,
    request_hash: str | None,
    on_repeat: Callable[[], None] | None,
    on_new: Callable[[], None] | None,
    now: dt.datetime,
    subject_id_hash: str | None,
    township_code: str | None,
    address: str | None,
    lat: float | None,
    lng: float | None,
    reporter_township_code: str | None,
    **details: Any,
) -> IntakeResult:
    """Return the case of an earlier request with the same idempotency key; else the person's
    open case of this kind that the caller may view (recording the new details on it); else
    a new case, linked to a probable duplicate it may not join. Under the person's row lock
    (and the key owner's, when another account holds the key; and the ID number's)."""
    person = _person(session, resident)
    if idempotency_key:
        _lock_account_id(session, actor.id)  # the key owner: the person, or the operator
    if subject_id_hash:
        _lock_subject(session, subject_id_hash)
    gaz = gazetteer(session, deployment_city())
    decision = route(
        Evidence(
            urgent=urgent,
            township_code=township_code,
            address=address,
            reporter_township_code=reporter_township_code,
            residence_township_code=person.residence_township_code,
            hukou_township_code=person.hukou_township_code,
            has_location=lat is not None and lng is not None,
        ),
        gaz,
    )
    found = _look_up(
        session,
        person=person,
        key_owner=actor.id,
        key=idempotency_key,
        urgent=urgent,
        aid_type=aid_type,
        since=since,
        subject_id_hash=subject_id_hash,
        queue_code=decision.township_code or decision.county_code,
        now=now,
    )
    retried = None
    if found.key_id is not None:
        earlier = _earlier_request(
            session,
            found.key_id,
            actor=actor,
            endpoint=endpoint,
            request_hash=request_hash or "",
        )
        if isinstance(earlier, IntakeResult):
            return earlier
        retried = earlier
    key_rows = _key_rows(
        actor=actor,
        key=idempotency_key,
        endpoint=endpoint,
        request_hash=request_hash,
        now=now,
        retried=retried,
    )
    duplicate = None
    if found.open_id is not None and (open_case := _open_case_locked(session, found.open_id)):
        if open_case.resident_id == person.id and access.can_view_case(actor, open_case):
            if on_repeat is not None:
                on_repeat()
            repeat = {"address": address, "lat": lat, "lng": lng, **details}
            _fold_in(
                session,
                case=open_case,
                actor=actor,
                channel=channel,
                details=repeat,
                key_rows=key_rows,
                now=now,
            )
            result = IntakeResult(open_case, False, note, duplicate_of=open_case.id)
            return _point_key(retried, result)
        duplicate = open_case
    if on_new is not None:
        on_new()
    result = _create_case(
        session,
        gaz=gaz,
        decision=decision,
        found=found,
        resident=person,
        actor=actor,
        urgent=urgent,
        aid_type=aid_type,
        channel=channel,
        now=now,
        address=address,
        lat=lat,
        lng=lng,
        subject_id_hash=subject_id_hash,
        key_rows=key_rows,
        details=details,
        duplicate=duplicate,
    )
    return _point_key(retried, result)


def submit_urgent(
    session: Session,
    *,
    resident: Account | int,
    actor: Any,
    channel: str,
    township_code: str | None = None,
    lat: float | None = None,
    lng: float | None = None,
    address: str | None = None,
    description: str | None = None,
    contact_phone: str | None = None,
    idempotency_key: str | None = None,
    request_hash: str | None = None,
    reporter_township_code: str | None = None,
    staff_notes: str | None = None,
    subject_id_hash: str | None = None,
    on_repeat: Callable[[], None] | None = None,
    on_new: Callable[[], None] | None = None,
    now: dt.datetime | None = None,
) -> IntakeResult:
    """One-tap urgent help: never refused for lack of detail; one open urgent case a person.

    ``resident``: the person's Account, or the id of a resident's own account (read with its
    row lock here). ``on_repeat`` runs when the person already has an open urgent case (not
    for a retry of the same tap), ``on_new`` before a new case is opened; either may raise
    to throttle (``on_new`` must let a person's first request through).
    """
    return _submit(
        session,
        resident=resident,
        actor=actor,
        channel=channel,
        urgent=True,
        aid_type=URGENT_AID_TYPE,
        since=None,
        note=NOTE_OPEN_URGENT,
        endpoint="urgent",
        idempotency_key=idempotency_key,
        request_hash=request_hash,
        on_repeat=on_repeat,
        on_new=on_new,
        now=now or utcnow(),
        subject_id_hash=subject_id_hash,
        township_code=township_code,
        address=address,
        lat=lat,
        lng=lng,
        reporter_township_code=reporter_township_code,
        description=description,
        contact_phone=contact_phone,
        staff_notes=staff_notes,
    )


def submit_application(
    session: Session,
    *,
    resident: Account | int,
    actor: Any,
    channel: str,
    aid_type: str,
    reason: str | None = None,
    household_size: int | None = None,
    monthly_income_fen: int | None = None,
    township_code: str | None = None,
    address: str | None = None,
    lat: float | None = None,
    lng: float | None = None,
    description: str | None = None,
    contact_phone: str | None = None,
    idempotency_key: str | None = None,
    request_hash: str | None = None,
    reporter_township_code: str | None = None,
    staff_notes: str | None = None,
    subject_id_hash: str | None = None,
    duplicate_window: dt.timedelta = dt.timedelta(days=30),
    now: dt.datetime | None = None,
) -> IntakeResult:
    """An application for a non-urgent aid type, with household facts; an open case of the
    same person and aid type within ``duplicate_window`` absorbs it."""
    now = now or utcnow()
    if aid_type not in AID_TYPES or aid_type == URGENT_AID_TYPE:
        raise ValidationFailed(errors={"aid_type": ["不支持的救助类型。"]})
    return _submit(
        session,
        resident=resident,
        actor=actor,
        channel=channel,
        urgent=False,
        aid_type=aid_type,
        since=now - duplicate_window,
        note=NOTE_DUPLICATE,
        endpoint="applications",
        idempotency_key=idempotency_key,
        request_hash=request_hash,
        on_repeat=None,
        on_new=None,
        now=now,
        subject_id_hash=subject_id_hash,
        township_code=township_code,
        address=address,
        lat=lat,
        lng=lng,
        reporter_township_code=reporter_township_code,
        reason=reason,
        household_size=household_size,
        monthly_income_fen=monthly_income_fen,
        description=description,
        contact_phone=contact_phone,
        staff_notes=staff_notes,
    )
