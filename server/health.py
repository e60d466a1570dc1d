"""Liveness and readiness probes."""

from __future__ import annotations

import marshmallow as ma
from flask import current_app, request
from sqlalchemy import text

from server.accounts.tokens import current_actor
from server.api import Blueprint, Schema
from server.errors import DomainError
from server.migrate import current_revision, head_revision
from server.session import database

blp = Blueprint("health", __name__, description="存活与就绪探针")


class NotReady(DomainError):
    status = 503
    code = "not_ready"


class HealthSchema(Schema):
    status = ma.fields.String(required=True)
    details = ma.fields.Dict()


@blp.route("/healthz")
@blp.response(200, HealthSchema)
def healthz():
    """Process is up."""
    return {"status": "ok"}


def _may_see_details() -> bool:
    # Outbox backlog, revisions and the database kind tell an outsider how the service is
    # built and how busy it is: in production only an administrator's token sees them.
    if current_app.config.get("ENV_NAME") != "production":
        return True
    if not request.headers.get("Authorization"):
        return False
    try:
        return current_actor().role == "admin"
    except DomainError:
        return False


@blp.route("/readyz")
@blp.response(200, HealthSchema)
@blp.alt_response(503, description="数据库不可达或迁移未到最新")
def readyz():
    """Database reachable and migrated to head (details in development or for an admin)."""
    engine = database().engine
    with engine.connect() as conn:
        conn.execute(text("SELECT 1"))
    current, head = current_revision(engine), head_revision()
    detailed = _may_see_details()
    details: dict = {}
    if detailed:
        details = {"database": engine.dialect.name, "revision": current, "head": head}
        for probe in current_app.extensions.get("aidline.readiness", []):
            details.update(probe())
    if current != head and not detailed:
        raise NotReady("服务尚未就绪。", message_en="Not ready.")
    if current != head:
        raise NotReady(
            "数据库迁移未到最新版本。",
            message_en="Database is not migrated to head.",
            errors=details,
        )
    return {"status": "ready", "details": details} if detailed else {"status": "ready"}
