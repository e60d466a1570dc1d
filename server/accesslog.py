"""Masking of personal data in the request lines servers log (gunicorn's access log, the
werkzeug development server).

A staff look-up by phone (``GET /api/v1/cases?phone=...``) would otherwise put the full number
in every access log. One filter, installed by the app factory on both servers' loggers,
rewrites the rendered line: values of phone and ID-number query parameters, and anything
shaped like a mainland mobile or a resident ID number elsewhere in the line, are masked.
"""

from __future__ import annotations

import logging
import re
from urllib.parse import unquote_plus

from server.accounts.idnumbers import mask_id_number
from server.masking import mask_phone

# The loggers through which servers write request lines.
REQUEST_LOGGERS = ("gunicorn.access", "werkzeug")

_SENSITIVE_PARAM = re.compile(
    r"(?P<name>(?:[?&]|%3F|%26)[\w.%-]*(?:phone|id_number|mobile)[\w.%-]*=)(?P<value>[^&\s\"']*)",
    re.IGNORECASE,
)
# +86 / %2B86 / 86 prefixes optional; digits not glued to other digits.
_MOBILE = re.compile(r"(?<!\d)(?:(?:\+|%2B)?86)?(1[3-9]\d{9})(?!\d)", re.IGNORECASE)
_ID_NUMBER = re.compile(r"(?<![0-9A-Za-z])\d{17}[\dXx](?![0-9A-Za-z])")


def _mask_value(match: re.Match[str]) -> str:
    name, value = match.group("name"), unquote_plus(match.group("value"))
    if "id" in name.lower():
        return name + mask_id_number(value)
    digits = re.sub(r"\D", "", value)
    return name + (mask_phone(digits[-11:]) or "****" if digits else "****")


def mask_request_line(text: str) -> str:
    """``text`` with phone numbers and ID numbers masked (e.g. 138****5678)."""
    text = _SENSITIVE_PARAM.sub(_mask_value, text)
    text = _ID_NUMBER.sub(lambda m: mask_id_number(m.group(0)), text)
    return _MOBILE.sub(lambda m: mask_phone(m.group(1)) or "", text)


class MaskingFilter(logging.Filter):
    """Masks the rendered message of every record it sees (it never drops one)."""

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            rendered = record.getMessage()
        except Exception:  # a broken record is its logger's business, not ours
            return True
        record.msg, record.args = mask_request_line(rendered), None
        return True


_FILTER = MaskingFilter()


def install() -> None:
    """Put the masking filter on the request loggers (once per process)."""
    for name in REQUEST_LOGGERS:
        logger = logging.getLogger(name)
        if _FILTER not in logger.filters:
            logger.addFilter(_FILTER)
