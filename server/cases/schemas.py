"""Case schemas: what residents, operators and duty staff send and see."""

from __future__ import annotations

import marshmallow as ma

from server.api import Fen, LocalDateTime, Schema, Text
from server.cases.aid_types import AID_TYPES, APPLICATION_TYPES
from server.cases.models import STATUSES
from server.documents.schemas import DocumentsSchema

TOWNSHIP_CODE = ma.validate.Regexp(r"^\d{9}$", error="乡镇（街道）代码必须是 9 位数字。")
INTAKE_CHANNELS = ("hotline", "proactive_discovery", "walk_in")


class LocationSchema(Schema):
    """Where the person is now (WGS-84)."""

    lat = ma.fields.Float(required=True, validate=ma.validate.Range(min=-90, max=90))
    lng = ma.fields.Float(required=True, validate=ma.validate.Range(min=-180, max=180))


class UrgentRequestCreateSchema(Schema):
    """One tap: everything optional — a tap is never refused for lack of detail."""

    township_code = ma.fields.String(validate=TOWNSHIP_CODE)
    location = ma.fields.Nested(LocationSchema)
    address = Text(max_length=200, allow_empty=True)
    description = Text(max_length=500, multiline=True, allow_empty=True)
    contact_phone = ma.fields.String(validate=ma.validate.Length(max=30))


class ApplicationCreateSchema(Schema):
    """An application for one of the non-urgent aid types, with household facts."""

    aid_type = ma.fields.String(required=True, validate=ma.validate.OneOf(APPLICATION_TYPES))
    reason = Text(required=True, max_length=1000, multiline=True)
    household_size = ma.fields.Integer(strict=True, validate=ma.validate.Range(min=1, max=30))
    monthly_income_fen = Fen()
    township_code = ma.fields.String(validate=TOWNSHIP_CODE)
    address = Text(max_length=200, allow_empty=True)
    location = ma.fields.Nested(LocationSchema)
    contact_phone = ma.fields.String(validate=ma.validate.Length(max=30))


class IntakeCreateSchema(Schema):
    """A case entered by a hotline operator or grid worker on a caller's behalf."""

    phone = ma.fields.String(required=True, validate=ma.validate.Length(min=1, max=30))
    name = Text(max_length=50)
    id_number = ma.fields.String(validate=ma.validate.Length(max=30))
    channel = ma.fields.String(required=True, validate=ma.validate.OneOf(INTAKE_CHANNELS))
    urgent = ma.fields.Boolean(load_default=False)
    aid_type = ma.fields.String(validate=ma.validate.OneOf(tuple(AID_TYPES)))
    township_code = ma.fields.String(validate=TOWNSHIP_CODE)
    address = Text(max_length=200, allow_empty=True)
    location = ma.fields.Nested(LocationSchema)
    description = Text(max_length=500, multiline=True, allow_empty=True)
    contact_phone = ma.fields.String(
        validate=ma.validate.Length(max=30),
        metadata={"description": "联系人电话（与 phone 不同时，如亲属、邻居）"},
    )
    notes = Text(max_length=2000, multiline=True, allow_empty=True)
    reason = Text(max_length=1000, multiline=True, allow_empty=True)
    household_size = ma.fields.Integer(strict=True, validate=ma.validate.Range(min=1, max=30))
    monthly_income_fen = Fen()

    @ma.validates_schema
    def _aid_type_unless_urgent(self, data, **kwargs):
        if not data.get("urgent") and not data.get("aid_type"):
            raise ma.ValidationError("非紧急登记须选择救助类型。", field_name="aid_type")


class IdempotencyHeaderSchema(Schema):
    """The client's retry key: one per tap, reused on every retry."""

    class Meta:
        unknown = ma.EXCLUDE

    idempotency_key = ma.fields.String(
        data_key="Idempotency-Key",
        validate=ma.validate.Regexp(
            r"^[\x21-\x7e]{1,100}$", error="幂等键须为 1–100 个可见 ASCII 字符。"
        ),
        metadata={"description": "a UUID generated once per tap and reused on retries"},
    )


class DivisionRefSchema(Schema):
    code = ma.fields.String(required=True)
    name = ma.fields.String(required=True)


class QueueRefSchema(Schema):
    kind = ma.fields.String(required=True, metadata={"description": "township | triage"})
    code = ma.fields.String(required=True)
    name = ma.fields.String(required=True)


class RoutingSchema(Schema):
    evidence = ma.fields.String(required=True)
    reason = ma.fields.String(required=True)


class TimelineEventSchema(Schema):
    at = LocalDateTime(required=True)
    action = ma.fields.String(required=True)
    status = ma.fields.String(allow_none=True)
    text = ma.fields.String(allow_none=True)
    actor_role = ma.fields.String(allow_none=True)
    data = ma.fields.Dict(metadata={"description": "staff view only"})


class PersonSchema(Schema):
    """The person in need, masked for staff."""

    name = ma.fields.String(allow_none=True)
    phone = ma.fields.String(allow_none=True)
    id_number = ma.fields.String(allow_none=True, metadata={"description": "masked"})


class CaseSchema(Schema):
    """A case as its resident or an in-scope staff member sees it."""

    id = ma.fields.UUID(required=True)
    case_no = ma.fields.String(required=True)
    status = ma.fields.String(required=True, validate=ma.validate.OneOf(STATUSES))
    status_label = ma.fields.String(required=True)
    urgent = ma.fields.Boolean(required=True)
    aid_type = ma.fields.String(required=True)
    aid_type_label = ma.fields.String(required=True)
    channel = ma.fields.String(required=True)
    township = ma.fields.Nested(DivisionRefSchema, allow_none=True)
    queue = ma.fields.Nested(QueueRefSchema, required=True)
    routing = ma.fields.Nested(RoutingSchema)
    address = ma.fields.String(allow_none=True)
    location = ma.fields.Nested(LocationSchema, allow_none=True)
    description = ma.fields.String(allow_none=True)
    contact_phone = ma.fields.String(allow_none=True)
    reason = ma.fields.String(allow_none=True)
    household_size = ma.fields.Integer(allow_none=True)
    monthly_income_fen = ma.fields.Integer(allow_none=True)
    approved_amount_fen = ma.fields.Integer(allow_none=True)
    paid_amount_fen = ma.fields.Integer(allow_none=True)
    paid_at = LocalDateTime(allow_none=True)
    pay_due_at = LocalDateTime(allow_none=True)
    paperwork_due_at = LocalDateTime(allow_none=True)
    created_at = LocalDateTime(required=True)
    updated_at = LocalDateTime(required=True)
    documents = ma.fields.Nested(
        DocumentsSchema,
        metadata={
            "description": "staff view only: required / present / missing documents "
            "(a resident: GET /cases/{id}/documents)"
        },
    )
    person = ma.fields.Nested(PersonSchema, metadata={"description": "staff view only"})
    staff_notes = ma.fields.String(allow_none=True, metadata={"description": "staff view only"})
    duplicate_of = ma.fields.UUID(
        allow_none=True,
        metadata={
            "description": "set when this request was recognised as a duplicate of "
            "the returned open case"
        },
    )
    note = ma.fields.String(allow_none=True, metadata={"description": "message for the caller"})
    timeline = ma.fields.List(ma.fields.Nested(TimelineEventSchema))


class CaseSummarySchema(Schema):
    """A line of a case list (masked personal data)."""

    id = ma.fields.UUID(required=True)
    case_no = ma.fields.String(required=True)
    status = ma.fields.String(required=True)
    status_label = ma.fields.String(required=True)
    urgent = ma.fields.Boolean(required=True)
    aid_type = ma.fields.String(required=True)
    aid_type_label = ma.fields.String(required=True)
    township = ma.fields.Nested(DivisionRefSchema, allow_none=True)
    queue = ma.fields.Nested(QueueRefSchema, required=True)
    pay_due_at = LocalDateTime(allow_none=True)
    created_at = LocalDateTime(required=True)
    person = ma.fields.Nested(PersonSchema)


class CaseContactSchema(Schema):
    """A case's full phone numbers, for the staff who may call the resident."""

    case_id = ma.fields.UUID(required=True)
    case_no = ma.fields.String(required=True)
    phone = ma.fields.String(
        allow_none=True, required=True, metadata={"description": "the person's phone"}
    )
    contact_phone = ma.fields.String(
        allow_none=True,
        required=True,
        metadata={"description": "the contact phone given with the request (someone nearby)"},
    )


class CaseQueryArgsSchema(Schema):
    """Filters of the case list."""

    page = ma.fields.Integer(load_default=1, validate=ma.validate.Range(min=1, max=100_000))
    per_page = ma.fields.Integer(load_default=20, validate=ma.validate.Range(min=1, max=100))
    phone = ma.fields.String(
        validate=ma.validate.Length(min=1, max=30),
        metadata={"description": "staff: the caller's phone (hotline 'where is my case')"},
    )
    status = ma.fields.String(validate=ma.validate.OneOf(STATUSES))
    urgent = ma.fields.Boolean()


class AidTypeSchema(Schema):
    code = ma.fields.String(required=True)
    label = ma.fields.String(required=True)
    application = ma.fields.Boolean(
        required=True, metadata={"description": "can be applied for with POST /applications"}
    )
