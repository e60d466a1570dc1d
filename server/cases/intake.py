"""Intake: one-tap urgent help, applications, hotline and grid-worker entry.

Every new case is routed to exactly one queue, gets a timeline, a receipt SMS to the resident
and, when urgent, a page to the duty officers on the roster, all in the caller's transaction:
a failure anywhere rolls back the case, its events and its SMS together. A request first
takes the person's row lock and looks up its idempotency key, the person's open case of this
kind and whom to page (server/cases/lookup.py).

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
import json
import logging
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from sqlalchemy.orm import Session
from sqlalchemy.orm.attributes import flag_modified

from server import access
from server.accounts import idnumbers
from server.accounts.models import Account
from server.cases import creation, lookup
from server.cases.aid_types import AID_TYPES, URGENT_AID_TYPE
from server.cases.events import add_event
from server.cases.models import Case, IdempotencyKey
from server.db import utcnow
from server.divisions.service import deployment_city
from server.errors import ValidationFailed
from server.routing.gazetteer import gazetteer
from server.routing.rules import Evidence, route

log = logging.getLogger(__name__)

NOTE_RETRY = "重复提交，已返回原案件。"
NOTE_OPEN_URGENT = "您已有一件正在办理的紧急求助，已为您返回该案件，工作人员会尽快联系您。"
NOTE_DUPLICATE = "此人已有同类正在办理的案件，本次登记已并入该案件。"


@dataclass(frozen=True)
class Need:
    """What a request tells intake, whatever its channel: where, what, how to reach the
    person, the household facts of an application, and its idempotency key."""

    channel: str
    township_code: str | None = None
    address: str | None = None
    lat: float | None = None
    lng: float | None = None
    description: str | None = None
    contact_phone: str | None = None
    staff_notes: str | None = None
    reason: str | None = None
    household_size: int | None = None
    monthly_income_fen: int | None = None
    # Hotline and grid-worker entry: the reporter's township, the person's ID number's hash.
    reporter_township_code: str | None = None
    subject_id_hash: str | None = None
    idempotency_key: str | None = None
    request_hash: str | None = None


# What a case keeps of a Need, and what a repeat folded into an open case records.
_CASE_FIELDS = (
    "address",
    "lat",
    "lng",
    "description",
    "contact_phone",
    "staff_notes",
    "reason",
    "household_size",
    "monthly_income_fen",
)


@dataclass(frozen=True)
class IntakeResult:
    """The case a request is answered with, whether this request created it, and for the
    caller a ``note`` and the open case it joined (``duplicate_of``)."""

    case: Case
    created: bool
    note: str | None = None
    duplicate_of: uuid.UUID | None = None


def request_fingerprint(endpoint: str, payload: dict[str, Any]) -> str:
    """A stable keyed hash of a request's meaning, to tell a retry from a different request.

    Keyed (``idnumbers.keyed_hash``): a body may carry an ID number, which an unkeyed hash
    would give away to a few thousand guesses."""
    canonical = json.dumps(payload, sort_keys=True, ensure_ascii=False, default=str)
    return idnumbers.keyed_hash(f"{endpoint}\n{canonical}")


def _fold_in(session: Session, *, case: Case, actor: Any, need: Need, now: dt.datetime) -> None:
    """Record a repeat on ``case`` (locked, open) and bump its row version, so a transition
    that read the case before this repeat is a 409 instead of ending it unseen."""
    repeat = {name: getattr(need, name) for name in _CASE_FIELDS}
    kept = {k: v for k, v in repeat.items() if v not in (None, "")}
    add_event(
        session,
        case_id=case.id,
        actor=actor,
        action="repeat_request",
        resident_visible=False,
        text_zh="同一人再次求助或登记，已并入本案件。",
        data={"channel": need.channel, **kept},
        at=now,
    )
    # The version only: a repeat adds to the timeline, it does not change the case's fields
    # (updated_at is written unchanged, so earlier answers remain the case as read).
    flag_modified(case, "updated_at")


def _idempotency(
    session: Session,
    found: Any,
    *,
    actor: Any,
    need: Need,
    endpoint: str,
    now: dt.datetime,
) -> tuple[IdempotencyKey | None, Case | None]:
    """The request's idempotency key row, and the case an earlier request with it answered."""
    if found.key_id is not None:
        # A key whose first answer joined a case that has since ended gives no case: a new
        # request, and the key answers with its outcome from now on.
        return lookup.earlier_request(
            session,
            found.key_id,
            actor=actor,
            endpoint=endpoint,
            request_hash=need.request_hash or "",
        )
    if need.idempotency_key:
        # No such key after the key owner's row lock: no concurrent request can write it.
        key = IdempotencyKey(
            account_id=actor.id,
            key=need.idempotency_key,
            endpoint=endpoint,
            request_hash=need.request_hash or "",
            created_at=now,
        )
        return key, None
    return None, None


def _submit(
    session: Session,
    *,
    resident: Account | int,
    actor: Any,
    need: Need,
    urgent: bool,
    aid_type: str,
    since: dt.datetime | None,
    note: str,
    endpoint: str,
    on_repeat: Callable[[], None] | None,
    on_new: Callable[[], None] | None,
    now: dt.datetime,
) -> IntakeResult:
    """Return the case of an earlier request with the same idempotency key; else the person's
    open case of this kind that the caller may view (recording the new details on it); else
    a new case, linked to a probable duplicate it may not join. Under the person's row lock
    (and the key owner's, when another account holds the key; and the ID number's)."""
    person = lookup.person(session, resident)
    if need.idempotency_key:
        lookup.lock_account(session, actor.id)  # the key owner: the person, or the operator
    if need.subject_id_hash:
        lookup.lock_subject(session, need.subject_id_hash)
    gaz = gazetteer(session, deployment_city())
    decision = route(
        Evidence(
            urgent=urgent,
            township_code=need.township_code,
            address=need.address,
            reporter_township_code=need.reporter_township_code,
            residence_township_code=person.residence_township_code,
            hukou_township_code=person.hukou_township_code,
            has_location=need.lat is not None and need.lng is not None,
        ),
        gaz,
    )
    found = lookup.look_up(
        session,
        resident_id=person.id,
        key_owner=actor.id,
        key=need.idempotency_key,
        urgent=urgent,
        aid_type=aid_type,
        since=since,
        subject_id_hash=need.subject_id_hash,
        queue_code=decision.township_code or decision.county_code,
        now=now,
    )
    key, earlier = _idempotency(session, found, actor=actor, need=need, endpoint=endpoint, now=now)
    if earlier is not None:
        return IntakeResult(earlier, False, NOTE_RETRY)
    duplicate = None
    if found.open_id is not None and (open_case := lookup.open_case_locked(session, found.open_id)):
        if open_case.resident_id == person.id and access.can_view_case(actor, open_case):
            if on_repeat is not None:
                on_repeat()
            _fold_in(session, case=open_case, actor=actor, need=need, now=now)
            result = IntakeResult(open_case, False, note, duplicate_of=open_case.id)
            return _keep_key(session, key, result)
        duplicate = open_case
    if on_new is not None:
        on_new()
    case = creation.create_case(
        session,
        gaz=gaz,
        decision=decision,
        found=found,
        person=person,
        actor=actor,
        urgent=urgent,
        aid_type=aid_type,
        channel=need.channel,
        subject_id_hash=need.subject_id_hash,
        details={name: getattr(need, name) for name in _CASE_FIELDS},
        now=now,
    )
    if duplicate is not None:
        creation.link_duplicate(
            session, case=case, duplicate=duplicate, person=person, actor=actor, now=now
        )
    return _keep_key(session, key, IntakeResult(case, True))


def _keep_key(session: Session, key: IdempotencyKey | None, result: IntakeResult) -> IntakeResult:
    """The idempotency key points at the case of its answer (``folded_in`` when it joined an
    open case)."""
    if key is not None:
        key.case_id = result.case.id
        key.folded_in = not result.created
        session.add(key)
    return result


def submit_urgent(
    session: Session,
    *,
    resident: Account | int,
    actor: Any,
    need: Need,
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
        need=need,
        urgent=True,
        aid_type=URGENT_AID_TYPE,
        since=None,
        note=NOTE_OPEN_URGENT,
        endpoint="urgent",
        on_repeat=on_repeat,
        on_new=on_new,
        now=now or utcnow(),
    )


def submit_application(
    session: Session,
    *,
    resident: Account | int,
    actor: Any,
    aid_type: str,
    need: Need,
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
        need=need,
        urgent=False,
        aid_type=aid_type,
        since=now - duplicate_window,
        note=NOTE_DUPLICATE,
        endpoint="applications",
        on_repeat=None,
        on_new=None,
        now=now,
    )
