"""``POST /api/v1/cases/{id}/actions``."""

from __future__ import annotations

import uuid

from flask import current_app
from flask.views import MethodView

from server.api import Blueprint, actor
from server.cases import actions, queries
from server.cases.action_schemas import CaseActionSchema
from server.cases.schemas import CaseSchema
from server.db import utcnow
from server.queues.schemas import QueueCaseSchema
from server.session import db_session

blp = Blueprint(
    "case_actions",
    __name__,
    url_prefix="/api/v1/cases",
    description="案件办理：审批、发放、补充材料、转办、转县级部门、办结、撤回",
)

ROLES = ["resident", "duty", "supervisor"]


# Staff get the queue view (holder, lease, version); a resident gets the case as
# GET /cases/{id} shows it to them, never the staff fields.
_ACTION_ANSWER = {
    "200": {
        "description": "员工：队列视图（QueueCase）；居民：与 GET /cases/{id} 相同的案件（Case）",
        "content": {"application/json": {"schema": {"oneOf": [QueueCaseSchema, CaseSchema]}}},
    }
}


@blp.route("/<uuid:case_id>/actions")
class CaseActions(MethodView):
    @blp.login_required(roles=ROLES)
    @blp.arguments(CaseActionSchema)
    @blp.response(200, QueueCaseSchema)
    @blp.doc(responses=_ACTION_ANSWER)
    @blp.alt_response(404, description="案件不存在或不在您的范围内")
    @blp.alt_response(
        409,
        description="当前状态不允许该操作（返回当前状态与可执行的操作），"
        "案件已由他人认领，或并发修改",
    )
    def post(self, args, case_id: uuid.UUID):
        """Act on a case (one state machine; 409 names the status and allowed actions)."""
        action = args.pop("action")
        session, who = db_session(), actor()
        case = actions.perform(
            session, actor=who, case_id=case_id, action=action, args=args, now=utcnow()
        )
        if who.is_staff:
            return case
        return current_app.json.response(
            CaseSchema().dump(queries.detail(session, case, actor=who))
        )
