"""The application factory."""

from __future__ import annotations

import json
import logging
from typing import Any

import orjson
from flask import Flask, request
from flask.json.provider import DefaultJSONProvider
from flask_smorest.spec.plugins import integerconverter2paramschema
from webargs.core import is_json
from werkzeug.middleware.proxy_fix import ProxyFix
from werkzeug.routing import IntegerConverter

from server import accesslog, docs, documents, limits
from server import config as config_module
from server.api import Api
from server.errors import DomainError, register_error_handlers
from server.session import WRITE_METHODS
from server.session import init_app as init_db

API_TITLE = "Aidline 指尖办社会救助 API"
API_VERSION = "v1"

# Callers that post form-encoded bodies: Twilio webhooks, the console's forms.
FORM_PATH_PREFIXES = ("/api/v1/webhooks/", "/console/")
# Operations that take a multipart/form-data body (a file), and what a body may hold beyond
# the file (framing, kind, note).
UPLOAD_ENDPOINTS = frozenset({"documents.CaseDocuments", "console.case_document"})
UPLOAD_OVERHEAD = 64 * 1024
# Answers that carry tokens: no cache (browser, proxy) may keep them.
TOKEN_PATH_PREFIX = "/api/v1/auth/"
SECURITY_HEADERS = {
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "X-Frame-Options": "DENY",
    "Content-Security-Policy": "frame-ancestors 'none'",
}


class JSONProvider(DefaultJSONProvider):
    """Flask's JSON with orjson encoding the compact form: the same document (keys sorted,
    UTF-8 not escaped, Flask's conversions of dates, decimals and the like), at a fraction of
    the CPU of the json module on a case with its timeline (the status read, issue 7)."""

    ensure_ascii = False
    _OPTIONS = (
        orjson.OPT_SORT_KEYS
        | orjson.OPT_NON_STR_KEYS
        | orjson.OPT_PASSTHROUGH_DATETIME
        | orjson.OPT_PASSTHROUGH_DATACLASS
        | orjson.OPT_PASSTHROUGH_SUBCLASS
    )

    def dumps(self, obj: Any, **kwargs: Any) -> str:
        if set(kwargs) - {"separators"} or kwargs.get("separators", (",", ":")) != (",", ":"):
            return super().dumps(obj, **kwargs)  # an indented or other form: the json module
        try:
            return orjson.dumps(obj, default=self.default, option=self._OPTIONS).decode()
        except TypeError:
            text = super().dumps(obj, **kwargs)  # what orjson refuses (huge ints, surrogates)
        try:
            text.encode()
        except UnicodeEncodeError:
            # A lone surrogate cannot be sent as UTF-8: written as its JSON escape instead.
            return super().dumps(obj, **kwargs, ensure_ascii=True)
        return text


class DatabaseInt(IntegerConverter):
    """``<int:...>`` bounded to the database's INTEGER: a larger id is no row (404), not an
    overflow in the driver (500)."""

    def __init__(self, map: Any, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("max", 2**31 - 1)
        super().__init__(map, *args, **kwargs)


class InvalidJSON(DomainError):
    status = 400
    code = "invalid_json"


class UnsupportedMediaType(DomainError):
    status = 415
    code = "unsupported_media_type"


def create_app(config: dict[str, Any] | None = None) -> Flask:
    """Build the app: settings from the environment, overridden by ``config``."""
    app = Flask(__name__, instance_relative_config=False)
    app.url_map.converters["int"] = DatabaseInt
    app.config.update(config_module.from_env())
    app.config.update(config or {})
    app.config.update(
        API_TITLE=API_TITLE,
        API_VERSION=API_VERSION,
        OPENAPI_VERSION="3.0.3",
        OPENAPI_URL_PREFIX=docs.DOCS_PREFIX if app.config["SERVE_DOCS"] else None,
        OPENAPI_JSON_PATH="openapi.json",
        OPENAPI_SWAGGER_UI_PATH="/swagger",
        # Served by the app itself (server/docs.py): intranets block CDNs. No ReDoc page, as
        # no Python package ships ReDoc's script.
        OPENAPI_SWAGGER_UI_URL=docs.SWAGGER_UI_ASSETS_URL,
        API_SPEC_OPTIONS={
            "info": {
                "description": "指尖办社会救助后端：一键求助、救助申请、乡镇队列、短信通知。"
                "错误统一为 {code, message, errors}；Accept-Language: en 返回英文信息。"
            },
            "servers": [{"url": "/"}],
        },
    )
    app.json = JSONProvider(app)
    logging.basicConfig(level=logging.INFO)
    logging.getLogger("alembic.runtime.plugins").setLevel(logging.WARNING)

    if app.config.get("TRUSTED_PROXIES"):
        # Behind N reverse proxies, the client address is the Nth from the right in
        # X-Forwarded-For; without this every client would share the proxy's address.
        n = int(app.config["TRUSTED_PROXIES"])
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=n, x_proto=n)

    register_error_handlers(app)
    init_db(app)
    documents.init_app(app)
    _check_bodies(app)
    _security_headers(app)
    accesslog.install()
    limits.init_app(app)

    api = Api(app)
    api.register_converter(DatabaseInt, integerconverter2paramschema)
    for blueprint in _blueprints():
        api.register_blueprint(blueprint)
    app.extensions["aidline.api"] = api
    docs.init_app(app)

    from server import console

    console.init_app(app)

    from server.cases import sms_hooks
    from server.cases.sweeper import periodic_job

    sms_hooks.register()

    app.extensions.setdefault("aidline.periodic_jobs", []).append(
        periodic_job(app.config["URGENT_CLAIM_MINUTES"])
    )

    for group in _cli_groups():
        app.cli.add_command(group)
    return app


def _blueprints() -> list[Any]:
    from server.accounts.routes import auth_blp, me_blp
    from server.cases.action_routes import blp as case_actions
    from server.cases.routes import blp as cases
    from server.cases.settings_routes import blp as workflow_settings
    from server.divisions.routes import blp as divisions
    from server.documents.routes import blp as documents
    from server.health import blp as health
    from server.queues.routes import blp as queues
    from server.reports.routes import blp as reports
    from server.sms.routes import blp as sms

    return [
        health,
        divisions,
        auth_blp,
        me_blp,
        cases,
        case_actions,
        documents,
        queues,
        workflow_settings,
        reports,
        sms,
    ]


def _cli_groups() -> list[Any]:
    from server.accounts.cli import staff_cli
    from server.cases.workflow_cli import calendar_cli, standards_cli
    from server.demo import demo_cli
    from server.divisions.cli import divisions_cli
    from server.documents.cli import documents_cli
    from server.migrate import db_cli
    from server.roster.cli import duty_cli
    from server.sms.cli import sms_cli
    from server.worker import worker_cli

    return [
        db_cli,
        divisions_cli,
        staff_cli,
        demo_cli,
        duty_cli,
        worker_cli,
        sms_cli,
        standards_cli,
        calendar_cli,
        documents_cli,
    ]


def _check_bodies(app: Flask) -> None:
    @app.before_request
    def _json_body() -> None:
        # Reject what webargs would otherwise misread: a non-JSON body is not "no fields",
        # and a deeply nested document must not reach the parser's recursion limit.
        if request.method not in WRITE_METHODS:
            return
        if request.endpoint in UPLOAD_ENDPOINTS and request.mimetype == "multipart/form-data":
            # A document upload: the file's own limit (413 beyond it), plus room for the
            # multipart framing and the other fields; parsed by werkzeug's form parser.
            request.max_content_length = app.config["DOCUMENT_MAX_BYTES"] + UPLOAD_OVERHEAD
            return
        if request.path.startswith(FORM_PATH_PREFIXES):
            return
        data = request.get_data(cache=True)  # raises 413 above MAX_CONTENT_LENGTH
        if not data:
            return
        if not is_json(request.mimetype):
            if request.endpoint in UPLOAD_ENDPOINTS:
                raise UnsupportedMediaType(
                    "请以 multipart/form-data 格式上传文件。",
                    message_en="Upload the file as multipart/form-data.",
                )
            raise UnsupportedMediaType()
        try:
            json.loads(data)
        except (ValueError, RecursionError) as exc:
            raise InvalidJSON(errors={"_schema": ["请求内容不是有效的 JSON。"]}) from exc


def _security_headers(app: Flask) -> None:
    @app.after_request
    def _headers(response):
        for name, value in SECURITY_HEADERS.items():
            response.headers.setdefault(name, value)
        # Tokens, and whatever answers a signed-in caller (personal data), are never cached.
        if request.path.startswith(TOKEN_PATH_PREFIX) or "Authorization" in request.headers:
            response.headers["Cache-Control"] = "no-store"
        return response
