"""The flask-smorest extension: Api, Blueprint with auth decorators, base schemas, fields.

Everything views share is declared once here (after bemserver-api's extensions/smorest.py):
the error schema, the bearer security scheme, role checks, pagination envelopes and the text
field that trims and rejects control characters.
"""

from __future__ import annotations

import datetime as dt
import re
import unicodedata
from collections.abc import Callable, Iterable, Mapping
from functools import wraps
from typing import Any

import flask_smorest
import marshmallow as ma
from apispec import BasePlugin
from flask import g
from webargs.flaskparser import FlaskParser
from webargs.multidictproxy import MultiDictProxy
from werkzeug.datastructures import CombinedMultiDict

from server.db import UTC
from server.errors import Forbidden, render_http_exception

BEARER = [{"bearerAuth": []}]


class Schema(ma.Schema):
    """Base schema: unknown fields are an error (a client typo must not pass silently)."""

    class Meta:
        unknown = ma.RAISE

    @ma.pre_load
    def _refuse_unstorable_text(self, data: Any, **kwargs: Any) -> Any:
        # NUL and lone surrogates are never text here: PostgreSQL cannot store NUL, and a
        # surrogate cannot be encoded to UTF-8 (hashing, the database). In a plain String
        # field either would surface as a 500; refuse them for every field of every input.
        # A key is checked like a value: unrefused, an unknown-field error would name it.
        if isinstance(data, Mapping):
            errors = {
                str(key): [BAD_KEY if _unstorable(key) else _unstorable(value)]
                for key, value in data.items()
            }
            errors = {key: msgs for key, msgs in errors.items() if msgs[0]}
            if errors:
                raise ma.ValidationError(errors)
        return data


BAD_KEY = "Field name contains invalid characters."


# A lone surrogate (U+D800-U+DFFF): a C-speed scan, since every input (the request headers
# with their bearer token included) passes through here.
_SURROGATE = re.compile("[\ud800-\udfff]")


def _unstorable(value: Any) -> str:
    """Why ``value`` (at any depth) cannot be stored as text, or ''."""
    if isinstance(value, str):
        if "\x00" in value:
            return "不能包含控制字符。"
        if _SURROGATE.search(value):
            return "包含无效字符。"
        return ""
    if isinstance(value, Mapping):
        items = [*value.keys(), *value.values()]
    elif isinstance(value, list | tuple):
        items = list(value)
    else:
        return ""
    return next((why for why in map(_unstorable, items) if why), "")


class ErrorSchema(Schema):
    """The uniform error payload."""

    code = ma.fields.String(required=True, metadata={"description": "machine-readable code"})
    message = ma.fields.String(required=True, metadata={"description": "human message"})
    errors = ma.fields.Dict(metadata={"description": "field -> list of messages"})


# Error statuses the app returns around every view rather than from it; documented on each
# operation they can reach (see CommonErrorsPlugin): name -> (status, description).
COMMON_ERRORS = {
    "INVALID_BODY": (400, "请求内容不是有效的 JSON（invalid_json）"),
    "NOT_FOUND": (404, "路径所指的对象不存在或无权查看（not_found）"),
    "PAYLOAD_TOO_LARGE": (413, "提交的内容过大（payload_too_large）"),
    "UNSUPPORTED_MEDIA_TYPE": (415, "请以 application/json 提交（unsupported_media_type）"),
    "DATABASE_UNAVAILABLE": (
        503,
        "数据库暂不可用，未保存任何内容，可按 Retry-After 重试（database_unavailable）",
    ),
}


class CommonErrorsPlugin(BasePlugin):
    """Document the statuses produced outside the views on every operation they can reach.

    Without this the only trace of a 400/413/415/503 would be flask-smorest's catch-all
    ``default`` response, which documents nothing a client (or the spec fuzzer) can check.
    """

    def operation_helper(self, path=None, operations=None, **kwargs):
        for operation in (operations or {}).values():
            if not isinstance(operation, dict) or "responses" not in operation:
                continue
            # Liveness/readiness probes outside /api answer for themselves.
            names = ["DATABASE_UNAVAILABLE"] if path and path.startswith("/api/") else []
            if operation.get("requestBody"):
                names += ["INVALID_BODY", "PAYLOAD_TOO_LARGE", "UNSUPPORTED_MEDIA_TYPE"]
            if path and "{" in path:
                names.append("NOT_FOUND")
            for name in names:
                operation["responses"].setdefault(str(COMMON_ERRORS[name][0]), name)


class Api(flask_smorest.Api):
    """flask-smorest Api rendering every HTTP error in Aidline's shape."""

    ERROR_SCHEMA = ErrorSchema

    def handle_http_exception(self, error):
        return render_http_exception(error)

    def init_app(self, app, *, spec_kwargs=None):
        spec_kwargs = dict(spec_kwargs or {})
        spec_kwargs.setdefault("extra_plugins", []).append(CommonErrorsPlugin())
        super().init_app(app, spec_kwargs=spec_kwargs)
        self.spec.components.security_scheme(
            "bearerAuth", {"type": "http", "scheme": "bearer", "bearerFormat": "JWT"}
        )
        for name, (_status, description) in COMMON_ERRORS.items():
            self.spec.components.response(
                name,
                {
                    "description": description,
                    "content": {
                        "application/json": {"schema": {"$ref": "#/components/schemas/Error"}}
                    },
                },
                lazy=True,
            )


class Parser(FlaskParser):
    """webargs' Flask parser, except that ``location="files"`` reads a multipart body whole:
    its files and its other fields, one schema documented as one ``multipart/form-data``
    request body (flask-smorest documents one body per operation)."""

    def load_files(self, req: Any, schema: ma.Schema) -> Any:
        return MultiDictProxy(CombinedMultiDict([req.files, req.form]), schema)


class Blueprint(flask_smorest.Blueprint):
    """Blueprint with ``login_required``: resolves the actor and checks the role once."""

    ARGUMENTS_PARSER = Parser()

    def login_required(
        self, func: Callable | None = None, *, roles: Iterable[str] | None = None
    ) -> Callable:
        """Require a valid access token, and one of ``roles`` when given."""
        allowed = frozenset(roles) if roles else None

        def decorator(view: Callable) -> Callable:
            @wraps(view)
            def wrapper(*args: Any, **kwargs: Any) -> Any:
                from server.accounts.tokens import current_actor

                actor = current_actor()
                if allowed is not None and actor.role not in allowed:
                    raise Forbidden()
                return view(*args, **kwargs)

            wrapper = self.doc(security=BEARER)(wrapper)
            wrapper = self.alt_response(401, schema=ErrorSchema, description="未登录或令牌无效")(
                wrapper
            )
            if allowed is not None:
                roles_doc = ", ".join(sorted(allowed))
                wrapper = self.alt_response(
                    403, schema=ErrorSchema, description=f"角色不符（允许：{roles_doc}）"
                )(wrapper)
            return wrapper

        return decorator(func) if func is not None else decorator


def actor() -> Any:
    """The authenticated actor of this request (set by ``login_required``)."""
    return g.actor


# --- fields -------------------------------------------------------------------------------

_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")


class Text(ma.fields.String):
    """A string that is NFC-normalised and trimmed, with no control characters.

    ``multiline`` allows newlines and tabs. Empty after trimming is refused unless
    ``allow_empty``. Emoji and rare CJK characters pass unchanged.
    """

    def __init__(
        self, *, max_length: int, multiline: bool = False, allow_empty: bool = False, **kw: Any
    ) -> None:
        super().__init__(**kw)
        self.max_length = max_length
        self.multiline = multiline
        self.allow_empty = allow_empty
        self.metadata.setdefault("maxLength", max_length)

    def _deserialize(self, value: Any, attr: Any, data: Any, **kwargs: Any) -> str:
        text = super()._deserialize(value, attr, data, **kwargs)
        text = unicodedata.normalize("NFC", text).strip()
        if _CONTROL.search(text) or (not self.multiline and ("\n" in text or "\r" in text)):
            raise ma.ValidationError("不能包含控制字符。")
        if _SURROGATE.search(text):
            raise ma.ValidationError("包含无效字符。")
        if not text and not self.allow_empty:
            raise ma.ValidationError("不能为空。")
        if len(text) > self.max_length:
            raise ma.ValidationError(f"不能超过 {self.max_length} 个字符。")
        return text


class Fen(ma.fields.Integer):
    """An amount of money in integer fen (分): non-negative, at most 10 million yuan."""

    def __init__(self, **kw: Any) -> None:
        kw.setdefault("validate", ma.validate.Range(min=0, max=1_000_000_000))
        super().__init__(strict=True, **kw)


SHANGHAI = dt.timezone(dt.timedelta(hours=8), "Asia/Shanghai")


def local_time(value: dt.datetime | None) -> str | None:
    """How every time leaves the API: ISO 8601 in China Standard Time, to the second."""
    if value is None:
        return None
    return value.astimezone(SHANGHAI).isoformat(timespec="seconds")


# The dates the service works in. Every date and time it accepts lies here, so converting
# one to UTC or moving it by days never overflows (9999-12-31T23:00-05:00 is in year 10000
# in UTC), and a mistyped year is refused rather than stored.
EARLIEST_DATE = dt.date(2000, 1, 1)
LATEST_DATE = dt.date(2100, 12, 31)


def check_date(day: dt.date) -> dt.date:
    """``day`` when it lies in the years the service works in; otherwise a field error."""
    if not EARLIEST_DATE <= day <= LATEST_DATE:
        raise ma.ValidationError(f"Must be a date from {EARLIEST_DATE} to {LATEST_DATE}.")
    return day


class LocalDate(ma.fields.Date):
    """An ISO 8601 date (YYYY-MM-DD) within the years the service works in."""

    def _deserialize(self, value: Any, attr: Any, data: Any, **kwargs: Any) -> dt.date:
        return check_date(super()._deserialize(value, attr, data, **kwargs))


class LocalDateTime(ma.fields.DateTime):
    """ISO 8601 with offset, shown in China Standard Time (+08:00); input must carry an offset
    and lie within the years the service works in."""

    def _serialize(self, value: Any, attr: Any, obj: Any, **kwargs: Any) -> Any:
        return local_time(value)

    def _deserialize(self, value: Any, attr: Any, data: Any, **kwargs: Any) -> dt.datetime:
        parsed = super()._deserialize(value, attr, data, **kwargs)
        if parsed.tzinfo is None:
            raise ma.ValidationError("时间必须带时区，例如 2026-11-23T08:00:00+08:00。")
        # Bounded in its own offset, before the conversion that could overflow.
        if not EARLIEST_DATE <= parsed.date() <= LATEST_DATE:
            raise ma.ValidationError(
                f"Must be a time from {EARLIEST_DATE} to {LATEST_DATE} (in its own offset)."
            )
        return parsed.astimezone(UTC)


class DateRangeArgsSchema(Schema):
    """``from`` and ``to`` (inclusive dates, Asia/Shanghai); left out, ``to`` is today and
    ``from`` some days before it. A ``from`` after the ``to`` (given or today), or ends more
    than ``MAX_DAYS`` apart, is a field error."""

    MAX_DAYS = 366

    since = LocalDate(data_key="from")
    until = LocalDate(data_key="to")

    @ma.validates_schema
    def _ordered(self, data: dict[str, Any], **_: Any) -> None:
        if "since" not in data:
            return  # from the default: DEFAULT_DAYS before ``to``, in order by construction
        until = data.get("until") or dt.datetime.now(SHANGHAI).date()
        if data["since"] > until:
            raise ma.ValidationError({"from": [f"Must not be after the end date ({until})."]})
        if (until - data["since"]).days > self.MAX_DAYS:
            field = "to" if "until" in data else "from"
            raise ma.ValidationError(
                {field: [f"The range may not be longer than {self.MAX_DAYS} days."]}
            )


# --- pagination ---------------------------------------------------------------------------


class PageArgsSchema(Schema):
    """Page-number pagination arguments."""

    page = ma.fields.Integer(load_default=1, validate=ma.validate.Range(min=1, max=100_000))
    per_page = ma.fields.Integer(load_default=20, validate=ma.validate.Range(min=1, max=100))


_page_schemas: dict[str, type[Schema]] = {}


def page_schema(item: type[ma.Schema]) -> type[Schema]:
    """A ``{"items": [...], "page", "per_page", "total"}`` envelope schema for ``item``."""
    name = item.__name__.removesuffix("Schema") + "PageSchema"
    if name not in _page_schemas:
        _page_schemas[name] = type(
            name,
            (Schema,),
            {
                "items": ma.fields.List(ma.fields.Nested(item), required=True),
                "page": ma.fields.Integer(required=True),
                "per_page": ma.fields.Integer(required=True),
                "total": ma.fields.Integer(required=True),
            },
        )
    return _page_schemas[name]


def page_of(items: list[Any], *, page: int, per_page: int, total: int) -> dict[str, Any]:
    """Build a page envelope."""
    return {"items": items, "page": page, "per_page": per_page, "total": total}
