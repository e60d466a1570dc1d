"""``/api/v1/counties/{code}/ledger``: the case ledger (台账) as .xlsx or CSV."""

from __future__ import annotations

import datetime as dt
import re
from typing import Any

import marshmallow as ma
from flask.views import MethodView

from server import access
from server.api import Blueprint, Schema, actor
from server.cases.clocks import SHANGHAI
from server.reports import files, ledger
from server.session import db_session

blp = Blueprint(
    "reports",
    __name__,
    url_prefix="/api/v1",
    description="台账导出（区县督导、管理员）",
)


class Month(ma.fields.String):
    """A month as ``YYYY-MM`` (2000-01 to 2100-12), deserialised to its first day."""

    def _deserialize(self, value: Any, attr: Any, data: Any, **kwargs: Any) -> dt.date:
        text = super()._deserialize(value, attr, data, **kwargs)
        found = re.fullmatch(r"(\d{4})-(\d{2})", text)
        try:
            day = dt.date(int(found[1]), int(found[2]), 1) if found else None
        except ValueError:
            day = None
        if day is None:
            raise ma.ValidationError("Must be a month as YYYY-MM, e.g. 2026-11.")
        if not 2000 <= day.year <= 2100:
            raise ma.ValidationError("Must be a month from 2000-01 to 2100-12.")
        return day


class LedgerArgsSchema(Schema):
    month = Month(metadata={"description": "YYYY-MM (Asia/Shanghai); default this month"})
    format = ma.fields.String(
        load_default="xlsx", validate=ma.validate.OneOf(files.FORMATS), metadata={"example": "csv"}
    )


def this_month() -> dt.date:
    """The first day of the current month in Asia/Shanghai."""
    return dt.datetime.now(SHANGHAI).date().replace(day=1)


_FILE_ANSWER = {
    "200": {
        "description": "台账文件：案件编号、渠道、救助类型、乡镇、村（社区）、状态、提交、认领、"
        "发放（金额元、方式、时间）、手续截止与补齐、办结、经办人；电话与身份证号按角色脱敏",
        "content": {
            mimetype: {"schema": {"type": "string", "format": "binary"}}
            for mimetype in files.MIMETYPES.values()
        },
    }
}


@blp.route("/counties/<string:code>/ledger")
class CountyLedger(MethodView):
    @blp.login_required(roles=sorted(access.COUNTY_READERS))
    @blp.arguments(LedgerArgsSchema, location="query")
    @blp.doc(responses=_FILE_ANSWER)
    @blp.alt_response(404, description="区县不存在或不在您的范围内")
    def get(self, args: dict[str, Any], code: str):
        """Export a county's case ledger for a month (.xlsx or CSV; audited)."""
        fmt = args["format"]
        out, title, ascii_name = ledger.export_ledger(
            db_session(),
            actor=actor(),
            county_code=code,
            month=args.get("month") or this_month(),
            fmt=fmt,
        )
        return files.download(out, fmt=fmt, filename=title, ascii_name=ascii_name)
