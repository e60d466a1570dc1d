"""SMS templates (zh-CN). Short: one 70-character UCS-2 segment where possible; no ID numbers.

Callers pass ``case_no`` (and ``case_nos``, a list) in full; the rendered text carries a masked
form.
"""

from __future__ import annotations

import string
from collections.abc import Callable
from typing import Any

# name -> (text, priority: lower is sent sooner). Parameters are named in the text.
# The one place send order is decided (stored on each outbox row at enqueue; the worker's
# rule, with its share for the longest-waiting, is in notifications.claiming.due_rows):
# 0 duty pages and sign-in codes, first come first served between them - someone is waiting
# on each right now, and a flood of pages must not lock residents out of signing in; 1 the
# supervisors' escalations; 2 and above the residents' receipts and notices.
TEMPLATES: dict[str, tuple[str, int]] = {
    "sign_in_code": ("【指尖办】验证码{code}，5分钟内有效，请勿告诉他人。", 0),
    "receipt": ("【指尖办】您的申请{case_no}已受理，由{township}办理，进展将短信告知。", 5),
    "urgent_receipt": ("【指尖办】您的求助{case_no}已收到，{township}将尽快联系您。", 2),
    "claimed": ("【指尖办】您的申请{case_no}已由{township}工作人员受理办理。", 5),
    "info_requested": ("【指尖办】您的申请{case_no}需补充材料：{message}", 4),
    "approved": ("【指尖办】您的申请{case_no}已审批通过，救助金额{amount_yuan}元。", 4),
    "paid": ("【指尖办】您的救助金{amount_yuan}元已发放（{case_no}），请注意查收。", 3),
    "paperwork_due": ("【指尖办】请于{due_date}前补齐{case_no}的救助材料。", 5),
    "rejected": ("【指尖办】您的申请{case_no}未通过：{reason}", 4),
    "transferred": ("【指尖办】您的申请{case_no}已转至{township}办理。", 5),
    "referred": ("【指尖办】您的申请{case_no}已转{department}办理。", 5),
    "closed": ("【指尖办】您的申请{case_no}已办结，感谢您的耐心。", 6),
    "withdrawn": ("【指尖办】您的申请{case_no}已撤回。", 6),
    "duty_page": ("【指尖办】{channel}紧急求助{case_no}，{township}，请立即认领处理。", 0),
    # After duty pages: an escalation backlog (a sweep after an outage) must not delay a page.
    "escalation": ("【指尖办】督办：{case_no}（{township}）{problem}，请立即处理。", 1),
    # Several escalations of one SLA sweep to the same supervisor: one message, not one each
    # (a flood's backlog would otherwise be hundreds of SMS to a few phones).
    "escalation_digest": (
        "【指尖办】督办：{count}件紧急求助逾期未处理（{summary}），涉及{townships}，"
        "如{case_nos}，请尽快督办。",
        1,
    ),
    # Replies to residents texting us from feature phones (inbound SMS).
    "inbound_status": ("【指尖办】{summary}", 3),
    "inbound_no_cases": ("【指尖办】未查到您的申请。需要紧急救助请回复“求助”，或拨打12349。", 3),
    "inbound_help": (
        "【指尖办】回复“查询”或案件编号查进度，回复“求助”申请紧急救助，也可拨打12349。",
        3,
    ),
}

# Priorities at or below this are the urgent class: pages, codes, escalations.
URGENT_PRIORITY = 1

# Messages to staff, not residents: their failure does not call for phoning a resident.
STAFF_TEMPLATES = frozenset({"duty_page", "escalation", "escalation_digest"})


# Parameters that are secrets: blanked from the outbox once the message has left (or finally
# failed), so a sign-in code stays in the database only while it still has to be delivered.
SECRET_PARAMS: dict[str, tuple[str, ...]] = {"sign_in_code": ("code",)}
REDACTED = "******"


def shown(template: str, params: dict[str, Any]) -> dict[str, Any]:
    """``params`` as the stored body may show them: secret ones as ``REDACTED``."""
    secrets_ = SECRET_PARAMS.get(template)
    if not secrets_:
        return params
    return {k: (REDACTED if k in secrets_ else v) for k, v in params.items()}


def with_secrets(
    template: str, body: str, params: dict[str, Any], open_: Callable[[str], str] | None
) -> str:
    """The text to send: the stored ``body`` with its secret parameters opened by ``open_``."""
    for name in SECRET_PARAMS.get(template, ()):
        value = (params or {}).get(name)
        if value is None or value == REDACTED:
            continue
        body = body.replace(REDACTED, str(open_(value) if open_ else value), 1)
    return body


def redact(row: Any) -> None:
    """Blank the secret parameters of an outbox ``row`` (its params and body)."""
    secrets_ = SECRET_PARAMS.get(row.template)
    if not secrets_:
        return
    params = dict(row.params or {})
    for name in secrets_:
        if name in params:
            params[name] = REDACTED
    row.params = params
    row.body = render(row.template, params)


def mask_case_no(case_no: str) -> str:
    """Shorten a case number for SMS, keeping it unambiguous within the city: the kind, the
    queue without the city's 4 digits (county 2, township 5; a city queue keeps its code),
    the month-day and the day's sequence. JJ371102004-20261123-0007 -> JJ02004-1123-0007."""
    parts = str(case_no).split("-")
    if len(parts) < 3:
        return str(case_no)
    head = "".join(parts[:-2])
    kind, queue = head[:2], head[2:]
    # Every case of a deployment is queued inside its one city (DEPLOYMENT_CITY): the city
    # digits say nothing; the rest tells two townships' sequences of the same day apart.
    queue = queue[4:] if len(queue) > 4 else queue
    return f"{kind}{queue}-{parts[-2][-4:]}-{parts[-1]}"


def placeholders(text: str) -> set[str]:
    """The ``{names}`` a template text uses (ValueError when the text is malformed)."""
    return {name for _, name, _, _ in string.Formatter().parse(text) if name is not None}


def is_resident_facing(template: str) -> bool:
    """True for messages to a resident about their case (their loss needs a phone call)."""
    return template not in STAFF_TEMPLATES and template != "sign_in_code"


def render(template: str, params: dict[str, Any], *, text: str | None = None) -> str:
    """The body of ``template`` with ``params``; KeyError for an unknown template.

    ``text`` is an administrator's override of the default wording (same placeholders).
    """
    default, _ = TEMPLATES[template]
    text = text or default
    values = dict(params)
    if "case_no" in values:
        values["case_no"] = mask_case_no(values["case_no"])
    if isinstance(values.get("case_nos"), list):
        values["case_nos"] = "、".join(mask_case_no(c) for c in values["case_nos"])
    return text.format(**values)


def priority(template: str) -> int:
    """Send order of ``template``: lower goes first."""
    return TEMPLATES[template][1]


def is_urgent(template: str) -> bool:
    """True for the messages that must not wait behind a backlog (pages, codes, escalations)."""
    return priority(template) <= URGENT_PRIORITY
