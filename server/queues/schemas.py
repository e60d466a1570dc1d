"""Queue and case-summary schemas (personal data masked: 138****5678, no ID numbers)."""

from __future__ import annotations

import marshmallow as ma

from server.api import DateRangeArgsSchema, LocalDateTime, PageArgsSchema, Schema
from server.cases.models import OPEN_STATUSES, STATUS_LABELS
from server.masking import mask_phone


class QueueCaseSchema(Schema):
    """A case as duty staff work it (queues, claims, action results): no ID numbers, phones
    masked; the full record is GET /api/v1/cases/{id} (audited)."""

    id = ma.fields.UUID(dump_only=True)
    case_no = ma.fields.String(dump_only=True)
    urgent = ma.fields.Boolean(dump_only=True)
    aid_type = ma.fields.String(dump_only=True)
    status = ma.fields.String(dump_only=True)
    status_label = ma.fields.Function(lambda c: STATUS_LABELS.get(c.status), dump_only=True)
    channel = ma.fields.String(dump_only=True)
    township_code = ma.fields.String(dump_only=True, allow_none=True)
    county_code = ma.fields.String(dump_only=True, allow_none=True)
    accountable_township_code = ma.fields.String(dump_only=True, allow_none=True)
    address = ma.fields.String(dump_only=True, allow_none=True)
    description = ma.fields.String(dump_only=True, allow_none=True)
    contact_phone_masked = ma.fields.Function(
        lambda c: mask_phone(c.contact_phone or c.subject_phone), dump_only=True
    )
    claimed_by_id = ma.fields.Integer(dump_only=True, allow_none=True)
    claimed_at = LocalDateTime(dump_only=True, allow_none=True)
    lease_expires_at = LocalDateTime(dump_only=True, allow_none=True)
    referred_department = ma.fields.String(dump_only=True, allow_none=True)
    approved_amount_fen = ma.fields.Integer(dump_only=True, allow_none=True)
    paid_amount_fen = ma.fields.Integer(dump_only=True, allow_none=True)
    paid_at = LocalDateTime(dump_only=True, allow_none=True)
    pay_due_at = LocalDateTime(dump_only=True, allow_none=True)
    paperwork_due_at = LocalDateTime(dump_only=True, allow_none=True)
    created_at = LocalDateTime(dump_only=True)
    updated_at = LocalDateTime(dump_only=True)
    closed_at = LocalDateTime(dump_only=True, allow_none=True)
    version = ma.fields.Integer(dump_only=True)


class QueueArgsSchema(PageArgsSchema):
    """Queue filters: open cases only; urgent first, then earliest deadline."""

    status = ma.fields.String(
        validate=ma.validate.OneOf(OPEN_STATUSES),
        metadata={"description": "one open status (default: all open)"},
    )
    aid_type = ma.fields.String(validate=ma.validate.Length(min=1, max=40))
    urgent = ma.fields.Boolean()


class SlaArgsSchema(DateRangeArgsSchema):
    """Date range (Asia/Shanghai dates of submission, inclusive); default the last 30 days."""


class TownshipSlaSchema(Schema):
    township_code = ma.fields.String(required=True)
    township_name = ma.fields.String(required=True)
    open_urgent = ma.fields.Integer(
        required=True, metadata={"description": "urgent cases open now, not yet paid"}
    )
    overdue_now = ma.fields.Integer(
        required=True, metadata={"description": "of those, past their 24 h now"}
    )
    urgent_cases = ma.fields.Integer(required=True, metadata={"description": "submitted in range"})
    paid_within_24h = ma.fields.Integer(required=True)
    paid_within_24h_pct = ma.fields.Float(
        allow_none=True, metadata={"description": "of urgent_cases, one decimal"}
    )
    paid_late = ma.fields.Integer(required=True)
    open_past_due = ma.fields.Integer(
        required=True, metadata={"description": "in range, unpaid and past the 24 h"}
    )
    median_minutes_to_claim = ma.fields.Float(allow_none=True)
    median_minutes_to_pay = ma.fields.Float(allow_none=True)
    p90_minutes_to_pay = ma.fields.Float(
        allow_none=True, metadata={"description": "90th percentile (nearest rank)"}
    )
    escalations = ma.fields.Integer(
        required=True, metadata={"description": "escalations fired on the range's cases"}
    )
    paperwork_overdue = ma.fields.Integer(
        required=True, metadata={"description": "paid cases past their paperwork deadline now"}
    )
    open_applications_7d = ma.fields.Integer(
        required=True, metadata={"description": "open ordinary applications up to 7 days old"}
    )
    open_applications_30d = ma.fields.Integer(
        required=True, metadata={"description": "8 to 30 days old"}
    )
    open_applications_older = ma.fields.Integer(
        required=True, metadata={"description": "older than 30 days"}
    )
    on_duty_tonight = ma.fields.Boolean(
        required=True,
        metadata={"description": "a duty officer on the roster tonight (total: every township)"},
    )


class SlaDaySchema(Schema):
    day = ma.fields.Date(required=True)
    urgent_cases = ma.fields.Integer(required=True)
    paid_within_24h = ma.fields.Integer(required=True)
    paid_within_24h_pct = ma.fields.Float(allow_none=True)


class NightSchema(Schema):
    starts_at = LocalDateTime(required=True)
    ends_at = LocalDateTime(required=True)


class SlaSchema(Schema):
    """Per township of the county and in total: the 24-hour record of urgent cases, what is
    overdue now, the daily trend, and who is on duty tonight (20:00–08:00 local)."""

    county_code = ma.fields.String(required=True)
    since = ma.fields.Date(required=True, data_key="from")
    until = ma.fields.Date(required=True, data_key="to")
    night = ma.fields.Nested(NightSchema, required=True)
    townships = ma.fields.List(ma.fields.Nested(TownshipSlaSchema), required=True)
    total = ma.fields.Nested(TownshipSlaSchema, required=True)
    days = ma.fields.List(ma.fields.Nested(SlaDaySchema), required=True)
