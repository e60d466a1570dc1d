"""Who is told what about a case by SMS (through ``notifications.enqueue``), and the names
those messages use."""

from __future__ import annotations

import datetime as dt
import logging
from typing import Any

from sqlalchemy.orm import Session

import notifications
from server.accounts.models import Account
from server.cases.models import CHANNEL_LABELS, Case
from server.divisions.models import Division
from server.roster.service import pagers_for_township, supervisors_to_alert
from server.routing.gazetteer import gazetteer

log = logging.getLogger(__name__)


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


def tell_resident(session: Session, case: Case, template: str, **params: Any) -> None:
    """Queue an SMS to the resident in this transaction (skipped when no phone is known)."""
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


def page_township(session: Session, *, case: Case, now: dt.datetime) -> None:
    """An urgent case arriving in another township pages that township's duty officer(s)."""
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
