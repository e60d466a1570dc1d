"""SMS templates (zh-CN). Short: one 70-character UCS-2 segment where possible; no ID numbers.

Callers pass ``case_no`` in full; the rendered text carries a masked form.
"""

from __future__ import annotations

from typing import Any

# name -> (text, priority: lower is sent sooner). Parameters are named in the text.
TEMPLATES: dict[str, tuple[str, int]] = {
    "sign_in_code": ("【指尖办】验证码{code}，5分钟内有效，请勿告诉他人。", 1),
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
    "duty_page": ("【指尖办】紧急求助{case_no}，{township}，请立即认领处理。", 0),
    "escalation": ("【指尖办】督办：{case_no}（{township}）{problem}，请立即处理。", 0),
}


def mask_case_no(case_no: str) -> str:
    """Shorten a case number for SMS: the queue prefix's kind and the day's sequence."""
    parts = str(case_no).split("-")
    if len(parts) >= 3:
        return f"{parts[0][:2]}…{parts[-2][-4:]}-{parts[-1]}"
    return str(case_no)


def render(template: str, params: dict[str, Any]) -> str:
    """The body of ``template`` with ``params``; KeyError for an unknown template."""
    text, _ = TEMPLATES[template]
    values = dict(params)
    if "case_no" in values:
        values["case_no"] = mask_case_no(values["case_no"])
    return text.format(**values)


def priority(template: str) -> int:
    return TEMPLATES[template][1]
