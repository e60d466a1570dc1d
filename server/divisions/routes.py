"""Division look-ups for apps' pickers (public, no sign-in)."""

from __future__ import annotations

from flask.views import MethodView

from server.api import Blueprint
from server.divisions import service
from server.divisions.schemas import DivisionSchema
from server.session import db_session

blp = Blueprint(
    "divisions",
    __name__,
    url_prefix="/api/v1/divisions",
    description="统计用区划代码（省、市、县、乡镇街道、村居委会）",
)


def _dump(division, full_name: str):
    return {
        "code": division.code,
        "name": division.name,
        "level": division.level,
        "parent_code": division.parent_code,
        "full_name": full_name,
    }


@blp.route("")
class Provinces(MethodView):
    @blp.response(200, DivisionSchema(many=True))
    def get(self):
        """List provinces."""
        session = db_session()
        return [_dump(d, d.name) for d in service.children(session, None)]


@blp.route("/<string:code>")
class DivisionByCode(MethodView):
    @blp.response(200, DivisionSchema)
    def get(self, code: str):
        """Get one division by its statistical code."""
        session = db_session()
        division = service.get_division(session, code)
        return _dump(division, service.full_name(session, division))


@blp.route("/<string:code>/children")
class DivisionChildren(MethodView):
    @blp.response(200, DivisionSchema(many=True))
    def get(self, code: str):
        """List the direct children of a division (for pickers)."""
        session = db_session()
        parent = service.get_division(session, code)
        base = service.full_name(session, parent)
        return [_dump(d, base + d.name) for d in service.children(session, parent.code)]
