"""Schemas of case actions (``POST /cases/{id}/actions``)."""

from __future__ import annotations

from typing import Any

import marshmallow as ma

from server.api import Fen, LocalDateTime, Schema, Text
from server.cases.actions import DEPARTMENTS, PAY_METHODS
from server.cases.state import ACTION_LABELS, PUBLIC_ACTIONS

# Per action: (required fields, optional fields). Any other field is refused (422).
ACTION_FIELDS: dict[str, tuple[frozenset[str], frozenset[str]]] = {
    "approve": (frozenset(), frozenset({"amount_fen", "note"})),
    "pay": (frozenset({"amount_fen", "method"}), frozenset({"reference", "paid_at"})),
    "request_info": (frozenset({"message"}), frozenset()),
    "supply_info": (frozenset(), frozenset({"message", "document_ids"})),
    "reject": (frozenset({"reason"}), frozenset()),
    "transfer": (frozenset({"township_code", "reason"}), frozenset()),
    "refer": (frozenset({"department", "reason"}), frozenset()),
    "close": (frozenset(), frozenset({"note"})),
    "withdraw": (frozenset(), frozenset({"reason"})),
    "release": (frozenset(), frozenset({"reason"})),
    "assign": (frozenset({"township_code"}), frozenset({"reason"})),
    "note": (frozenset({"message"}), frozenset()),
}
assert set(ACTION_FIELDS) == set(PUBLIC_ACTIONS)

_ACTIONS_DOC = "; ".join(
    f"{a} ({ACTION_LABELS[a]}): "
    + ", ".join(sorted(ACTION_FIELDS[a][0]) + [f"[{f}]" for f in sorted(ACTION_FIELDS[a][1])])
    for a in PUBLIC_ACTIONS
)


class CaseActionSchema(Schema):
    """One action on a case; the fields each action takes are listed under `action`."""

    action = ma.fields.String(
        required=True,
        validate=ma.validate.OneOf(PUBLIC_ACTIONS),
        metadata={"description": _ACTIONS_DOC},
    )
    amount_fen = Fen(metadata={"description": "approve, pay: amount in fen (分)"})
    method = ma.fields.String(
        validate=ma.validate.OneOf(tuple(PAY_METHODS)),
        metadata={"description": "pay: " + ", ".join(f"{k}={v}" for k, v in PAY_METHODS.items())},
    )
    reference = Text(max_length=100, metadata={"description": "pay: voucher / transfer number"})
    paid_at = LocalDateTime(
        metadata={
            "description": "pay: when it was paid (default now; not future, not before the request)"
        }
    )
    message = Text(max_length=200, multiline=True, metadata={"description": "request_info, note"})
    reason = Text(max_length=200, multiline=True)
    note = Text(max_length=500, multiline=True)
    township_code = ma.fields.String(
        validate=ma.validate.Regexp(r"^\d{9}$", error="必须是 9 位乡镇（街道）统计用区划代码。"),
        metadata={"description": "transfer, assign: target township"},
    )
    document_ids = ma.fields.List(
        ma.fields.Integer(strict=True, validate=ma.validate.Range(min=1, max=2**31 - 1)),
        validate=ma.validate.Length(max=20),
        metadata={
            "description": "supply_info: documents of the case uploaded for this request "
            "(POST /cases/{id}/documents first)"
        },
    )
    department = ma.fields.String(
        validate=ma.validate.OneOf(tuple(DEPARTMENTS)),
        metadata={"description": "refer: " + ", ".join(f"{k}={v}" for k, v in DEPARTMENTS.items())},
    )

    @ma.validates_schema
    def _fields_of_action(self, data: dict[str, Any], **_: Any) -> None:
        action = data.get("action")
        if action not in ACTION_FIELDS:
            return
        required, optional = ACTION_FIELDS[action]
        errors: dict[str, list[str]] = {}
        for name in sorted(required - data.keys()):
            errors[name] = ["必填项。"]
        for name in sorted(data.keys() - required - optional - {"action"}):
            errors[name] = [f"操作 {action} 不接受此字段。"]
        if errors:
            raise ma.ValidationError(errors)
