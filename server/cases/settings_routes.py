"""``/api/v1/counties/{code}/aid-standards`` and ``/api/v1/calendar/overrides``."""

from __future__ import annotations

import datetime as dt

import marshmallow as ma
from flask import Response
from flask.views import MethodView

from server import access
from server.api import (
    Blueprint,
    ErrorSchema,
    Fen,
    LocalDateTime,
    Schema,
    Text,
    actor,
    check_date,
)
from server.cases import settings
from server.queues.service import require_division
from server.session import db_session

blp = Blueprint(
    "workflow_settings",
    __name__,
    url_prefix="/api/v1",
    description="救助标准（区县）与工作日历调整（管理员）",
)


class AidStandardSchema(Schema):
    """A county's aid standards and township authority, in fen (分)."""

    county_code = ma.fields.String(dump_only=True)
    urban_monthly_fen = Fen(required=True, metadata={"description": "城市低保月标准"})
    rural_monthly_fen = Fen(required=True, metadata={"description": "农村低保月标准"})
    township_urgent_cap_fen = Fen(
        required=True, metadata={"description": "乡镇先行救助（急难型）单次上限"}
    )
    township_approval_cap_fen = Fen(
        required=True, metadata={"description": "乡镇审批权限上限；超过报区县（一事一议）"}
    )
    expenditure_min_fen = ma.fields.Function(
        lambda s: 3 * s.urban_monthly_fen, dump_only=True, metadata={"description": "3×城市低保"}
    )
    expenditure_max_fen = ma.fields.Function(
        lambda s: 12 * s.urban_monthly_fen, dump_only=True, metadata={"description": "12×城市低保"}
    )
    updated_at = LocalDateTime(dump_only=True)


class CalendarOverrideSchema(Schema):
    day = ma.fields.Date(dump_only=True)
    workday = ma.fields.Boolean(
        required=True, metadata={"description": "true: 调休上班; false: 放假"}
    )
    note = Text(max_length=100, allow_none=True, metadata={"description": "e.g. 元旦"})


class CalendarQuerySchema(Schema):
    year = ma.fields.Integer(validate=ma.validate.Range(min=2000, max=2100))


@blp.route("/counties/<string:code>/aid-standards")
class CountyAidStandards(MethodView):
    @blp.login_required(roles=sorted(access.COUNTY_READERS))
    @blp.response(200, AidStandardSchema)
    @blp.alt_response(404, description="区县不存在、不在范围内或尚未设置")
    def get(self, code: str):
        """Get a county's aid standards (supervisors of the county, administrators)."""
        session = db_session()
        access.require_county_read(actor(), code)
        require_division(session, code, "county")
        return settings.get_standard(session, code)

    @blp.login_required(roles=["admin"])
    @blp.arguments(AidStandardSchema)
    @blp.response(200, AidStandardSchema)
    def put(self, args, code: str):
        """Set a county's aid standards (administrators)."""
        session = db_session()
        access.require_admin(actor(), code)
        return settings.put_standard(session, actor=actor(), county_code=code, **args)


@blp.route("/calendar/overrides")
class CalendarOverrides(MethodView):
    @blp.login_required(roles=["admin"])
    @blp.arguments(CalendarQuerySchema, location="query")
    @blp.response(200, CalendarOverrideSchema(many=True))
    def get(self, args):
        """List administrator holiday / make-up-workday overrides."""
        return settings.list_overrides(db_session(), year=args.get("year"))


@blp.route("/calendar/overrides/<string:day>")
class CalendarOverrideByDay(MethodView):
    @blp.login_required(roles=["admin"])
    @blp.arguments(CalendarOverrideSchema)
    @blp.response(200, CalendarOverrideSchema)
    def put(self, args, day: str):
        """Mark a date a holiday or a working day (overrides chinese-calendar)."""
        return settings.set_override(
            db_session(),
            actor=actor(),
            day=_date(day),
            workday=args["workday"],
            note=args.get("note"),
        )

    @blp.login_required(roles=["admin"])
    @blp.response(204)
    @blp.alt_response(422, schema=ErrorSchema, description="日期格式应为 YYYY-MM-DD")
    def delete(self, day: str):
        """Remove the override of a date."""
        settings.delete_override(db_session(), actor=actor(), day=_date(day))
        return Response(status=204)


def _date(text: str) -> dt.date:
    from server.errors import ValidationFailed

    try:
        return check_date(dt.date.fromisoformat(text))
    except ma.ValidationError as exc:
        raise ValidationFailed(errors={"day": exc.messages}) from exc
    except ValueError as exc:
        raise ValidationFailed(errors={"day": ["日期格式应为 YYYY-MM-DD。"]}) from exc
