"""SMS endpoints: Twilio webhooks (signed), the admin outbox view, call-back tasks."""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Callable
from functools import wraps
from typing import Any

import marshmallow as ma
from flask import Response, current_app, request
from flask.views import MethodView
from sqlalchemy.exc import SQLAlchemyError
from twilio.request_validator import RequestValidator

from notifications import ops
from notifications.delivery import mask_phone, record_receipt
from notifications.models import OUTBOX_STATUSES, CallbackTask
from server import access
from server.api import (
    Blueprint,
    ErrorSchema,
    PageArgsSchema,
    Schema,
    Text,
    actor,
    page_of,
    page_schema,
)
from server.cases.models import Case
from server.db import utcnow
from server.errors import Forbidden, NotFound
from server.session import database, db_session
from server.sms import service
from server.sms.inbound import Limits, handle_inbound
from server.worker import retry_policy

blp = Blueprint("sms", __name__, url_prefix="/api/v1", description="短信：回执、上行短信、发件箱")

EMPTY_TWIML = '<?xml version="1.0" encoding="UTF-8"?><Response></Response>'


# --- readiness ----------------------------------------------------------------------------


def outbox_readiness() -> dict[str, Any]:
    """/readyz details: outbox rows by status and how long the oldest due one has waited."""
    try:
        with database().new_session() as session:
            return {
                "sms_outbox": ops.counts_by_status(session),
                "sms_oldest_due_seconds": ops.oldest_due_age(session, now=utcnow()),
            }
    except SQLAlchemyError:  # not migrated yet: /readyz says so on its own
        return {"sms_outbox": None}


@blp.record_once
def _register_probe(state: Any) -> None:
    state.app.extensions.setdefault("aidline.readiness", []).append(outbox_readiness)


# --- Twilio signature ---------------------------------------------------------------------


def verify_twilio_signature() -> None:
    """403 unless X-Twilio-Signature signs the *public* URL and the form with our token."""
    token = current_app.config.get("TWILIO_AUTH_TOKEN") or ""
    base = (current_app.config.get("PUBLIC_BASE_URL") or "").rstrip("/")
    signature = request.headers.get("X-Twilio-Signature", "")
    # Behind a proxy the URL Twilio signed is the public one, never what the app sees.
    url = base + request.path
    if request.query_string:
        url += "?" + request.query_string.decode("utf-8", "replace")
    if not (token and base and signature) or not RequestValidator(token).validate(
        url, request.form, signature
    ):
        raise Forbidden(
            "签名无效。", code="invalid_signature", message_en="Invalid Twilio signature."
        )


def twilio_signed(view: Callable) -> Callable:
    """Check the Twilio signature before anything else (parsing included)."""

    @wraps(view)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        verify_twilio_signature()
        return view(*args, **kwargs)

    return blp.alt_response(403, schema=ErrorSchema, description="X-Twilio-Signature 无效")(wrapper)


class TwilioForm(Schema):
    class Meta:
        unknown = ma.EXCLUDE  # Twilio posts many more fields than we read


class StatusCallbackSchema(TwilioForm):
    MessageSid = ma.fields.String(required=True, validate=ma.validate.Length(min=1, max=64))
    MessageStatus = ma.fields.String(required=True, validate=ma.validate.Length(max=20))
    ErrorCode = ma.fields.String(load_default=None, validate=ma.validate.Length(max=20))


class StatusCallbackQuerySchema(Schema):
    outbox = ma.fields.Integer(load_default=None, metadata={"description": "发件箱编号"})


@blp.route("/webhooks/twilio/status", methods=["POST"])
@twilio_signed
@blp.arguments(StatusCallbackQuerySchema, location="query")
@blp.arguments(StatusCallbackSchema, location="form")
@blp.response(204)
def twilio_status(query: dict[str, Any], form: dict[str, Any]):
    """Twilio delivery receipt (status callback): idempotent, any order."""
    record_receipt(
        db_session(),
        provider_sid=form["MessageSid"],
        status=form["MessageStatus"],
        error_code=form.get("ErrorCode"),
        outbox_id=query.get("outbox"),
        now=utcnow(),
        policy=retry_policy(current_app.config),
    )
    return None


class InboundSchema(TwilioForm):
    MessageSid = ma.fields.String(required=True, validate=ma.validate.Length(min=1, max=64))
    From = ma.fields.String(required=True, validate=ma.validate.Length(max=40))
    Body = ma.fields.String(load_default="", validate=ma.validate.Length(max=1600))


@blp.route("/webhooks/twilio/inbound", methods=["POST"])
@twilio_signed
@blp.arguments(InboundSchema, location="form")
@blp.doc(
    responses={
        "200": {
            "description": "空 TwiML：回复经发件箱另行发送",
            "content": {"text/xml": {"schema": {"type": "string"}}},
        }
    }
)
def twilio_inbound(form: dict[str, Any]):
    """Inbound SMS (feature phones): 查询 / case number -> status, 求助 -> urgent help."""
    config = current_app.config
    handle_inbound(
        db_session(),
        message_sid=form["MessageSid"],
        from_number=form["From"],
        body=form.get("Body") or "",
        now=utcnow(),
        limits=Limits(
            count=int(config["SMS_INBOUND_LIMIT"]),
            window=dt.timedelta(seconds=int(config["SMS_INBOUND_WINDOW_SECONDS"])),
        ),
    )
    return Response(EMPTY_TWIML, status=200, mimetype="text/xml")


# --- admin outbox -------------------------------------------------------------------------


class OutboxArgsSchema(PageArgsSchema):
    status = ma.fields.String(validate=ma.validate.OneOf(OUTBOX_STATUSES))


class OutboxItemSchema(Schema):
    id = ma.fields.Integer()
    to = ma.fields.Function(lambda row: mask_phone(row.to_phone))
    template = ma.fields.String()
    status = ma.fields.String()
    attempts = ma.fields.Integer()
    case_id = ma.fields.UUID(allow_none=True)
    provider_sid = ma.fields.String(allow_none=True)
    last_error_code = ma.fields.String(allow_none=True)
    last_error = ma.fields.String(allow_none=True)
    created_at = ma.fields.DateTime()
    next_attempt_at = ma.fields.DateTime()
    sent_at = ma.fields.DateTime(allow_none=True)
    delivered_at = ma.fields.DateTime(allow_none=True)


@blp.route("/admin/outbox")
class AdminOutbox(MethodView):
    @blp.login_required(roles=["admin"])
    @blp.arguments(OutboxArgsSchema, location="query")
    @blp.response(200, page_schema(OutboxItemSchema))
    def get(self, args: dict[str, Any]):
        """List outbox messages (newest first), optionally of one status."""
        rows, total = ops.list_outbox(
            db_session(), status=args.get("status"), page=args["page"], per_page=args["per_page"]
        )
        return page_of(rows, page=args["page"], per_page=args["per_page"], total=total)


# --- template wording ---------------------------------------------------------------------


class SmsTemplateSchema(Schema):
    name = ma.fields.String()
    text = ma.fields.String(metadata={"description": "当前使用的文字"})
    default_text = ma.fields.String()
    overridden = ma.fields.Boolean()
    parameters = ma.fields.List(ma.fields.String())
    priority = ma.fields.Integer()


class SmsTemplateUpdateSchema(Schema):
    text = Text(
        required=True,
        allow_none=True,
        max_length=ops.MAX_TEMPLATE_LENGTH,
        metadata={"description": "新文字（null 恢复默认）；只能使用该模板原有的 {参数}"},
    )


@blp.route("/admin/sms-templates")
class AdminSmsTemplates(MethodView):
    @blp.login_required(roles=["admin"])
    @blp.response(200, SmsTemplateSchema(many=True))
    def get(self):
        """List SMS templates with their current wording."""
        return ops.template_texts(db_session())


@blp.route("/admin/sms-templates/<string:name>")
class AdminSmsTemplateByName(MethodView):
    @blp.login_required(roles=["admin"])
    @blp.arguments(SmsTemplateUpdateSchema)
    @blp.response(200, SmsTemplateSchema)
    @blp.alt_response(404, schema=ErrorSchema, description="没有该模板")
    def put(self, body: dict[str, Any], name: str):
        """Override a template's wording (applies to messages queued from now on)."""
        return service.update_template(db_session(), actor=actor(), name=name, text=body["text"])


# --- call-back tasks ----------------------------------------------------------------------


class CallbackTaskSchema(Schema):
    id = ma.fields.Integer()
    case_id = ma.fields.UUID()
    outbox_id = ma.fields.Integer()
    phone = ma.fields.Function(
        lambda task: mask_phone(task.phone),
        metadata={
            "type": "string",
            "description": "居民手机号（隐去中间四位；拨打前取 GET /cases/{id}/contact，留审计）",
        },
    )
    reason = ma.fields.String()
    status = ma.fields.String(metadata={"description": "open | done"})
    created_at = ma.fields.DateTime()
    closed_at = ma.fields.DateTime(allow_none=True)
    closed_by_id = ma.fields.Integer(allow_none=True)
    note = ma.fields.String(allow_none=True)


class CallbackTaskArgsSchema(Schema):
    status = ma.fields.String(load_default="open", validate=ma.validate.OneOf(["open", "done"]))


class CallbackTaskCloseSchema(Schema):
    note = Text(max_length=500, load_default=None, multiline=True)


def _case(case_id: uuid.UUID) -> Case:
    case = db_session().get(Case, case_id)
    access.require_view(actor(), case)
    return case


@blp.route("/cases/<uuid:case_id>/callback-tasks")
class CaseCallbackTasks(MethodView):
    @blp.login_required(roles=access.CALLBACK_READERS)
    @blp.arguments(CallbackTaskArgsSchema, location="query")
    @blp.response(200, CallbackTaskSchema(many=True))
    @blp.alt_response(404, schema=ErrorSchema, description="案件不存在或不在辖区内")
    def get(self, args: dict[str, Any], case_id: uuid.UUID):
        """Call-back tasks of a case: residents an SMS did not reach, to phone."""
        case = _case(case_id)
        return ops.callback_tasks(db_session(), case_id=case.id, status=args["status"])


@blp.route("/cases/<uuid:case_id>/callback-tasks/<int:task_id>/done", methods=["POST"])
@blp.login_required(roles=access.CALLBACK_READERS)
@blp.arguments(CallbackTaskCloseSchema)
@blp.response(200, CallbackTaskSchema)
@blp.alt_response(404, schema=ErrorSchema, description="案件或任务不存在")
def callback_task_done(body: dict[str, Any], case_id: uuid.UUID, task_id: int):
    """Mark a call-back task done (the resident was phoned)."""
    session = db_session()
    case = session.get(Case, case_id)
    access.require_action(actor(), case, "close_callback_task")
    task = session.get(CallbackTask, task_id)
    if task is None or task.case_id != case.id:
        raise NotFound("未找到该回访任务。", message_en="Call-back task not found.")
    return ops.close_callback_task(
        session, task=task, actor=actor(), note=body.get("note"), now=utcnow()
    )
