"""Township queues (duty staff), county triage queues and SLA report (supervisors)."""

from __future__ import annotations

from flask import Response
from flask.views import MethodView

from server import access
from server.api import Blueprint, actor, page_of, page_schema
from server.cases.claim import claim_next
from server.db import utcnow
from server.queues import service
from server.queues.schemas import QueueArgsSchema, QueueCaseSchema, SlaArgsSchema, SlaSchema
from server.reports import sla
from server.session import db_session

blp = Blueprint(
    "queues",
    __name__,
    url_prefix="/api/v1",
    description="乡镇（街道）队列、区县分流队列与时限报表",
)

QUEUE_ROLES = sorted(access.QUEUE_ROLES)


@blp.route("/townships/<string:code>/queue")
class TownshipQueue(MethodView):
    @blp.login_required(roles=QUEUE_ROLES)
    @blp.arguments(QueueArgsSchema, location="query")
    @blp.response(200, page_schema(QueueCaseSchema))
    def get(self, args, code: str):
        """List a township's open cases: urgent first, then earliest deadline."""
        session = db_session()
        access.require_queue(actor(), code)
        service.require_division(session, code, "township")
        page, per_page = args.pop("page"), args.pop("per_page")
        items, total = service.list_queue(
            session, township_code=code, page=page, per_page=per_page, **args
        )
        return page_of(items, page=page, per_page=per_page, total=total)


@blp.route("/townships/<string:code>/queue/claim")
class TownshipQueueClaim(MethodView):
    @blp.login_required(roles=QUEUE_ROLES)
    @blp.response(200, QueueCaseSchema, description="认领到的案件")
    @blp.alt_response(204, description="队列中没有待认领的案件")
    def post(self, code: str):
        """Claim the next case of a township's queue (never the same case to two people)."""
        session = db_session()
        access.require_queue(actor(), code)
        name = service.require_division(session, code, "township")
        case = claim_next(
            session, actor=actor(), township_code=code, township_name=name, now=utcnow()
        )
        return case if case is not None else Response(status=204)


# A county's triage queue, or the city's for cases not even a county could be found for.
TRIAGE_LEVELS = ("county", "city")


@blp.route("/counties/<string:code>/triage")
class CountyTriage(MethodView):
    @blp.login_required(roles=sorted(access.COUNTY_ROLES))
    @blp.arguments(QueueArgsSchema, location="query")
    @blp.response(200, page_schema(QueueCaseSchema))
    def get(self, args, code: str):
        """List a county's triage queue: cases no township could be found for."""
        session = db_session()
        access.require_triage(actor(), code)
        service.require_division(session, code, TRIAGE_LEVELS)
        page, per_page = args.pop("page"), args.pop("per_page")
        items, total = service.list_queue(
            session, county_code=code, page=page, per_page=per_page, **args
        )
        return page_of(items, page=page, per_page=per_page, total=total)


@blp.route("/counties/<string:code>/triage/claim")
class CountyTriageClaim(MethodView):
    @blp.login_required(roles=sorted(access.COUNTY_ROLES))
    @blp.response(200, QueueCaseSchema, description="认领到的案件")
    @blp.alt_response(204, description="分流队列中没有待认领的案件")
    def post(self, code: str):
        """Claim the next case of a county's triage queue (then assign it to a township)."""
        session = db_session()
        access.require_triage(actor(), code)
        service.require_division(session, code, TRIAGE_LEVELS)
        case = claim_next(session, actor=actor(), county_code=code, now=utcnow())
        return case if case is not None else Response(status=204)


@blp.route("/counties/<string:code>/sla")
class CountySla(MethodView):
    @blp.login_required(roles=sorted(access.COUNTY_READERS))
    @blp.arguments(SlaArgsSchema, location="query")
    @blp.response(200, SlaSchema)
    def get(self, args, code: str):
        """Report the 24-hour record of urgent cases per township of a county."""
        session = db_session()
        access.require_county_read(actor(), code)
        service.require_division(session, code, "county")
        return sla.sla_report(
            session,
            region_code=code,
            since=args.get("since"),
            until=args.get("until"),
            now=utcnow(),
        )
