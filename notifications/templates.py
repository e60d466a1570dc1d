"""SMS templates (zh-CN). Short: one 70-character UCS-2 segment where possible; no ID numbers."""

from __future__ import annotations

from typing import Any

# name -> (text, priority: lower is sent sooner)
TEMPLATES: dict[str, tuple[str, int]] = {
    "sign_in_code": ("【指尖办】您的登录验证码{code}，5分钟内有效。请勿告诉他人。", 1),
    "receipt": ("【指尖办】您的救助申请{case_no}已受理，由{township}办理，我们会短信告知进展。", 5),
    "urgent_receipt": ("【指尖办】您的求助{case_no}已收到，{township}将尽快联系您。", 2),
    "duty_page": ("【指尖办】紧急求助{case_no}，{township}，请立即认领处理。", 0),
}


def render(template: str, params: dict[str, Any]) -> str:
    """The body of ``template`` with ``params``; KeyError for an unknown template."""
    text, _ = TEMPLATES[template]
    return text.format(**params)


def priority(template: str) -> int:
    return TEMPLATES[template][1]
