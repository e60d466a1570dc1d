"""Intake and status endpoints: urgent requests, applications, hotline entry, case reads."""

from __future__ import annotations

import datetime as dt
import uuid
from functools import wraps
from typing import Any

from flask import current_app
from flask.views import MethodView

from server import access
from server.accounts.models import Account
from server.accounts.service import normalize_phone
from server.accounts.tokens import request_claims
from server.api import Blueprint, ErrorSchema, actor, page_of, page_schema
from server.cases import entry, intake, queries
from server.cases.aid_types import AID_TYPES, APPLICATION_TYPES
from server.cases.schemas import (
    AidTypeSchema,
    ApplicationCreateSchema,
    CaseContactSchema,
    CaseQueryArgsSchema,
    CaseSchema,
    CaseSummarySchema,
    IdempotencyHeaderSchema,
    IntakeCreateSchema,
    UrgentRequestCreateSchema,
)
from server.errors import Unauthorized
from server.limits import enforce
from server.session import db_session

blp = Blueprint("cases", __name__, url_prefix="/api/v1", description="求助、申请与案件查询")


def _account(session: Any) -> Account:
    account = session.get(Account, actor().id)
    if account is None or not account.active:
        raise Unauthorized(code="token_invalid")
    return account


def _respond(session: Any, result: intake.IntakeResult) -> tuple[Any, int]:
    # A case read back for staff (a retry, a repeat folded in) is audited as any staff read;
    # the one this request created is not read, it was written.
    body = queries.detail(
        session,
        result.case,
        actor=actor(),
        note=result.note,
        duplicate_of=result.duplicate_of,
        audit_read=not result.created,
    )
    return body, 201 if result.created else 200


@blp.route("/urgent-requests")
class UrgentRequests(MethodView):
    # Schema instances, not classes: webargs instantiates a class on every request.
    @blp.login_required(roles=["resident"])
    @blp.arguments(IdempotencyHeaderSchema(), location="headers", as_kwargs=True)
    @blp.arguments(UrgentRequestCreateSchema())
    @blp.response(201, CaseSchema)
    @blp.alt_response(200, schema=CaseSchema, description="重试或已有进行中的紧急求助：返回原案件")
    @blp.alt_response(
        429,
        schema=ErrorSchema,
        description="点击过于频繁：已有进行中的紧急求助时重复点击，或短时间内多次新发起求助"
        "（如撤回后再求助）；首次求助与同一次点击的重试从不受限。响应带 Retry-After，"
        "并提示拨打 12349 热线",
    )
    def post(self, data: dict[str, Any], idempotency_key: str | None = None):
        """One-tap urgent help (一键求助)."""
        session = db_session()
        who = actor()
        result = intake.submit_urgent(
            session,
            resident=who.id,  # read and locked by intake
            actor=who,
            need=entry.need(
                session,
                data,
                channel="app",
                resident=True,
                idempotency_key=idempotency_key,
                request_hash=intake.request_fingerprint("urgent", data),
            ),
            on_repeat=lambda: _limit_repeated_taps(who),
            on_new=lambda: _limit_new_urgent(who),
        )
        return _respond(session, result)


@blp.route("/applications")
class Applications(MethodView):
    @blp.login_required(roles=["resident"])
    @blp.arguments(IdempotencyHeaderSchema, location="headers", as_kwargs=True)
    @blp.arguments(ApplicationCreateSchema)
    @blp.response(201, CaseSchema)
    @blp.alt_response(200, schema=CaseSchema, description="重试或重复申请：返回原案件")
    def post(self, data: dict[str, Any], idempotency_key: str | None = None):
        """Apply for aid (低保、特困、临时救助-支出型、医疗、教育、住房 ...)."""
        session = db_session()
        resident = _account(session)
        result = intake.submit_application(
            session,
            resident=resident,
            actor=actor(),
            aid_type=data["aid_type"],
            need=entry.need(
                session,
                data,
                channel="app",
                resident=True,
                idempotency_key=idempotency_key,
                request_hash=intake.request_fingerprint("applications", data),
            ),
            duplicate_window=_duplicate_window(),
        )
        return _respond(session, result)


@blp.route("/intake")
class Intake(MethodView):
    @blp.login_required(roles=access.INTAKE_ROLES)
    @blp.arguments(IdempotencyHeaderSchema, location="headers", as_kwargs=True)
    @blp.arguments(IntakeCreateSchema)
    @blp.response(201, CaseSchema)
    @blp.alt_response(200, schema=CaseSchema, description="重试或此人已有同类案件：返回原案件")
    def post(self, data: dict[str, Any], idempotency_key: str | None = None):
        """Enter a case for a caller (12349 hotline) or a person found (grid worker)."""
        session = db_session()
        result = entry.enter(
            session,
            actor=actor(),
            data=data,
            idempotency_key=idempotency_key,
            duplicate_window=_duplicate_window(),
        )
        return _respond(session, result)


@blp.route("/cases")
class Cases(MethodView):
    @blp.login_required
    @blp.arguments(CaseQueryArgsSchema, location="query")
    @blp.response(200, page_schema(CaseSummarySchema))
    @blp.alt_response(403, schema=ErrorSchema, description="居民不能按电话查询")
    def get(self, args: dict[str, Any]):
        """List cases: a resident's own, newest first; staff within their region (by phone)."""
        session = db_session()
        who = actor()
        phone = args.get("phone")
        if phone is not None:
            access.require_phone_search(who)
            phone = normalize_phone(phone, mobile=False)
        cases, total = queries.list_cases(
            session,
            actor=who,
            page=args["page"],
            per_page=args["per_page"],
            phone=phone,
            status=args.get("status"),
            urgent=args.get("urgent"),
        )
        return page_of(
            queries.summaries(session, cases, actor=who),
            page=args["page"],
            per_page=args["per_page"],
            total=total,
        )


_CASE_SCHEMA = CaseSchema()


def _own_case_first(view: Any) -> Any:
    """Answer a resident reading their own case from ``queries.resident_read`` (one
    statement: the status read is the hottest path); every other caller, and every refusal,
    goes through ``view`` unchanged (its 401/404, the staff audit)."""

    @wraps(view)
    def get(self: Any, case_id: uuid.UUID) -> Any:
        try:
            claims = request_claims()
        except Unauthorized:
            claims = None
        if claims is not None and claims.get("role") == "resident":
            body = queries.resident_read(db_session(read_only=True), claims=claims, case_id=case_id)
            if body is not None:
                return current_app.json.response(_CASE_SCHEMA.dump(body))
        return view(self, case_id)

    return get


@blp.route("/cases/<uuid:case_id>")
class CaseById(MethodView):
    @_own_case_first
    @blp.login_required
    @blp.response(200, CaseSchema)
    @blp.alt_response(404, description="不存在或无权查看")
    def get(self, case_id: uuid.UUID):
        """A case with its timeline (a staff read is audited)."""
        session = db_session()
        case = queries.get_case(session, actor=actor(), case_id=case_id)
        return queries.detail(session, case, actor=actor())


@blp.route("/cases/<uuid:case_id>/contact")
class CaseContact(MethodView):
    @blp.login_required
    @blp.response(200, CaseContactSchema)
    @blp.alt_response(403, schema=ErrorSchema, description="可查看案件但无权获取完整电话")
    @blp.alt_response(404, schema=ErrorSchema, description="不存在或无权查看")
    def get(self, case_id: uuid.UUID):
        """A case's full phone numbers, for the staff who act on it or phone it back (audited)."""
        session = db_session()
        who = actor()
        return queries.contact(
            session, queries.get_case(session, actor=who, case_id=case_id), actor=who
        )


@blp.route("/aid-types")
class AidTypes(MethodView):
    @blp.response(200, AidTypeSchema(many=True))
    def get(self):
        """List aid types with Chinese labels."""
        return [
            {"code": code, "label": label, "application": code in APPLICATION_TYPES}
            for code, label in AID_TYPES.items()
        ]


TAPS_LIMITED = (
    "您已有一件正在办理的紧急求助，请勿频繁点击，工作人员会尽快联系您。"
    "如情况危急，请直接拨打12349社会救助热线。"
)
TAPS_LIMITED_EN = (
    "You already have an urgent request in progress; staff will contact you soon. "
    "If it is critical, call the 12349 social assistance hotline."
)
NEW_URGENT_LIMITED = (
    "您短时间内已多次发起紧急求助，暂时不能在线新建求助。"
    "如确需帮助，请直接拨打12349社会救助热线或联系所在乡镇（街道），我们会立即处理。"
)
NEW_URGENT_LIMITED_EN = (
    "You have started several urgent requests in a short time; new ones cannot be made "
    "online for now. If you need help, call the 12349 social assistance hotline or your "
    "township office."
)


# Taps by a resident who already has an open urgent case only add to that case; more than
# this many are someone (or something) hammering the button. Never applied to a person's
# first urgent request, nor to the retries of one tap (same Idempotency-Key).
def _limit_repeated_taps(resident: Account) -> None:
    """Throttle taps from a resident who already has an open urgent case (never the first)."""
    enforce(
        current_app.config["RATELIMIT_URGENT_PER_RESIDENT"],
        scope="urgent-tap",
        key=str(resident.id),
        message=TAPS_LIMITED,
        message_en=TAPS_LIMITED_EN,
    )


# Every new urgent case pages the township's duty officers: tap, withdraw, tap again would
# page them again and again. A first request always passes (the limit is at least 1); the
# hotline, which is not limited, stays open to a person turned away.
def _limit_new_urgent(resident: Account) -> None:
    """Throttle new urgent cases (and so pages) opened by one resident's own taps."""
    enforce(
        current_app.config["RATELIMIT_URGENT_NEW_PER_RESIDENT"],
        scope="urgent-new",
        key=str(resident.id),
        message=NEW_URGENT_LIMITED,
        message_en=NEW_URGENT_LIMITED_EN,
    )


def _duplicate_window() -> dt.timedelta:
    return dt.timedelta(days=int(current_app.config["DUPLICATE_WINDOW_DAYS"]))
