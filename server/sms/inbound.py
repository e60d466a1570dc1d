"""Inbound SMS from feature phones: "查询" or a case number -> status; "求助" -> urgent help.

Replies go through the outbox like every other SMS (same transaction as what they report).
Each number may send ``limit`` messages per ``window``; beyond that messages are recorded
and answered with silence (no reply loops with auto-responders, no cost run-ups).
"""

from __future__ import annotations

import datetime as dt
import re
import unicodedata
from dataclasses import dataclass

from sqlalchemy import func, select
from sqlalchemy.orm import Session

import notifications
from notifications.models import SmsInbound
from notifications.templates import mask_case_no
from server.accounts.models import Account
from server.accounts.service import get_or_create_resident, normalize_phone
from server.cases.intake import Need, request_fingerprint, submit_urgent
from server.cases.models import STATUS_LABELS, Case
from server.errors import ValidationFailed

HELP_WORDS = ("求助", "救助", "救命")
QUERY_WORDS = ("查询", "查", "进度", "CX")
# The tail of a case number as residents see it in SMS ("JJ02004-1123-0007": month-day,
# sequence); not the queue's digits before the month-day ("02004-1123").
CASE_NO_TAIL = re.compile(r"(\d{4})-(\d{4})(?![\d-])")
MAX_LISTED = 3


@dataclass(frozen=True)
class Limits:
    count: int
    window: dt.timedelta


def classify(text: str) -> tuple[str, str]:
    """(intent, rest): intent is help, query, case_no or unknown."""
    if CASE_NO_TAIL.search(text):
        return "case_no", text
    for word in QUERY_WORDS:
        if text.upper().startswith(word):
            return "query", text[len(word) :].strip()
    for word in HELP_WORDS:
        if text.startswith(word):
            return "help", text[len(word) :].strip(" ，,。:：")
    if any(word in text for word in HELP_WORDS):
        # "我要求助", "请救助我": a missed cry for help costs more than a false alarm.
        return "help", text
    return "unknown", text


def handle_inbound(
    session: Session,
    *,
    message_sid: str,
    from_number: str,
    body: str,
    now: dt.datetime,
    limits: Limits,
) -> SmsInbound:
    """Record an inbound SMS and act on it (idempotent per provider message id)."""
    existing = session.scalar(select(SmsInbound).where(SmsInbound.provider_sid == message_sid))
    if existing is not None:
        return existing  # the provider retried its webhook: already handled
    text = unicodedata.normalize("NFKC", body or "").strip()
    record = SmsInbound(
        provider_sid=message_sid,
        from_phone=(from_number or "")[:32],
        body=(body or "")[:1000],
        intent="unknown",
        received_at=now,
    )
    session.add(record)
    try:
        phone = normalize_phone(from_number or "", field="From")
    except ValidationFailed:
        record.intent = "bad_sender"
        session.flush()
        return record
    record.from_phone = phone
    recent = session.scalar(
        select(func.count())
        .select_from(SmsInbound)
        .where(
            SmsInbound.from_phone == phone,
            SmsInbound.received_at > now - limits.window,
            SmsInbound.provider_sid != message_sid,
        )
    )
    if (recent or 0) >= limits.count:
        record.intent = "rate_limited"
        session.flush()
        return record
    intent, rest = classify(text)
    record.intent = intent
    if intent == "help":
        _help(session, record, phone=phone, description=rest or None, now=now)
    elif intent in ("query", "case_no"):
        _status(session, record, phone=phone, text=text if intent == "case_no" else "")
    else:
        notifications.enqueue(session, phone, "inbound_help", {})
    session.flush()
    return record


def _help(
    session: Session, record: SmsInbound, *, phone: str, description: str | None, now: dt.datetime
) -> None:
    resident, _ = get_or_create_resident(session, phone=phone)
    description = description[:500] if description else None
    result = submit_urgent(
        session,
        resident=resident,
        actor=resident,
        need=Need(
            channel="sms",
            description=description,
            idempotency_key=f"sms:{record.provider_sid}",
            request_hash=request_fingerprint("urgent", {"channel": "sms", "text": description}),
        ),
        now=now,
    )
    case, created = result.case, result.created
    record.case_id = case.id
    if not created:
        # Intake sent the receipt and paged the duty staff the first time; now just say
        # where the open request stands.
        notifications.enqueue(
            session,
            phone,
            "inbound_status",
            {
                "summary": f"您的求助{mask_case_no(case.case_no)}正在办理（{_label(case)}），"
                "工作人员会尽快联系您。"
            },
        )


def _status(session: Session, record: SmsInbound, *, phone: str, text: str) -> None:
    resident = session.scalar(
        select(Account).where(Account.phone == phone, Account.role == "resident")
    )
    cases: list[Case] = []
    if resident is not None:
        cases = list(
            session.scalars(
                select(Case)
                .where(Case.resident_id == resident.id)
                .order_by(Case.created_at.desc())
                .limit(50)
            )
        )
    if text:
        tails = {"-".join(m) for m in CASE_NO_TAIL.findall(text)}
        cases = [c for c in cases if any(c.case_no.endswith(t) for t in tails)]
    if not cases:
        notifications.enqueue(session, phone, "inbound_no_cases", {})
        return
    shown = cases[:MAX_LISTED]
    record.case_id = shown[0].id
    parts = [f"{mask_case_no(c.case_no)}{_label(c)}" for c in shown]
    more = f"等{len(cases)}件" if len(cases) > MAX_LISTED else ""
    notifications.enqueue(
        session, phone, "inbound_status", {"summary": "您的申请：" + "；".join(parts) + more + "。"}
    )


def _label(case: Case) -> str:
    return STATUS_LABELS.get(case.status, case.status)
