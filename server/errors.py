"""One error shape for everything: {"code", "message", "errors"}.

Domain errors carry an HTTP status and a stable machine-readable ``code``; one set of
handlers renders them, flask-smorest/webargs validation errors, werkzeug HTTP errors and
database outages in the same JSON shape, in Chinese by default or English on request.
"""

from __future__ import annotations

import logging
import re
from typing import Any

from flask import Flask, request
from sqlalchemy import exc as sa_exc
from werkzeug.exceptions import HTTPException

log = logging.getLogger(__name__)

# code -> (zh, en). Messages may carry {placeholders} filled from DomainError.params.
MESSAGES: dict[str, tuple[str, str]] = {
    "bad_request": ("请求格式不正确。", "The request is malformed."),
    "invalid_json": ("请求内容不是有效的 JSON。", "The request body is not valid JSON."),
    "validation_error": ("提交的信息有误，请检查后重试。", "Some fields are invalid."),
    "unauthorized": ("请先登录。", "Sign-in required."),
    "token_invalid": ("登录已失效，请重新登录。", "The token is invalid or expired."),
    "forbidden": ("您没有权限执行此操作。", "You are not allowed to do this."),
    "not_found": ("未找到请求的内容。", "Not found."),
    "method_not_allowed": ("不支持该请求方法。", "Method not allowed."),
    "conflict": ("操作与当前状态冲突。", "The request conflicts with the current state."),
    "retry_conflict": (
        "操作冲突，未保存任何内容，请重试。",
        "Conflicting update; nothing saved, retry.",
    ),
    "payload_too_large": ("提交的内容过大。", "The request body is too large."),
    "unsupported_media_type": (
        "请以 application/json 格式提交。",
        "Send the body as application/json.",
    ),
    "rate_limited": ("操作过于频繁，请稍后再试。", "Too many requests; try again later."),
    "database_unavailable": (
        "系统繁忙，请稍后重试，您的请求未被保存。",
        "The service is temporarily unavailable; nothing was saved.",
    ),
    "internal_error": ("系统出现错误，请稍后重试。", "Internal error; please retry later."),
}

# Field messages: every message marshmallow's fields and validators and webargs can produce
# (tests/test_errors.py enumerates them), and Aidline's own English ones, as templates:
# English as the library writes it -> Chinese. {name} matches any text and is carried over
# (translated when it is one of _WORDS); a name ending in _op matches one of Range's operators.
FIELD_TEMPLATES_ZH: dict[str, str] = {
    # exact messages first: shorter Chinese than the general template gives
    "Shorter than minimum length 1.": "不能为空。",
    "Invalid input type.": "请求内容必须是 JSON 对象。",
    "Invalid JSON body.": "不是有效的 JSON。",
    "Not a valid UUID.": "不是有效的编号。",
    # marshmallow fields
    "Missing data for required field.": "必填项。",
    "Unknown field.": "不支持的字段。",
    "Field may not be null.": "不能为空。",
    "Invalid value.": "值无效。",
    "Invalid input.": "输入无效。",
    "Invalid type.": "类型不正确。",
    "Not a valid integer.": "必须是整数。",
    "Not a valid number.": "必须是数字。",
    "Number too large.": "数字过大。",
    "Special numeric values (nan or infinity) are not permitted.": "不允许 NaN 或无穷大。",
    "Not a valid string.": "必须是文本。",
    "Not a valid utf-8 string.": "不是有效的 UTF-8 文本。",
    "Not a valid boolean.": "必须是布尔值。",
    "Not a valid mapping type.": "必须是对象。",
    "Not a valid list.": "必须是列表。",
    "Not a valid tuple.": "必须是数组。",
    "Not a valid email address.": "不是有效的电子邮件地址。",
    "Not a valid URL.": "不是有效的网址。",
    "Not a valid IP address.": "不是有效的 IP 地址。",
    "Not a valid IPv4 address.": "不是有效的 IPv4 地址。",
    "Not a valid IPv6 address.": "不是有效的 IPv6 地址。",
    "Not a valid IP interface.": "不是有效的 IP 网络接口。",
    "Not a valid IPv4 interface.": "不是有效的 IPv4 网络接口。",
    "Not a valid IPv6 interface.": "不是有效的 IPv6 网络接口。",
    "Not a valid period of time.": "不是有效的时间段。",
    "{input} cannot be formatted as a timedelta.": "{input} 不能转换为时间段。",
    '"{input}" cannot be formatted as a {obj_type}.': "“{input}”不能转换为{obj_type}。",
    "Not a valid {awareness} {obj_type}.": "不是有效的{awareness}{obj_type}。",
    "Not a valid {obj_type}.": "不是有效的{obj_type}。",
    # marshmallow validators
    "Must be one of: {choices}.": "必须是以下之一：{choices}。",
    "Must be equal to {other}.": "必须等于 {other}。",
    "String does not match expected pattern.": "格式不正确。",
    "One or more of the choices you made was not in: {choices}.": "所选项只能是：{choices}。",
    "One or more of the choices you made was in: {values}.": "所选项不能包含：{values}。",
    "Length must be between {min} and {max}.": "长度必须在 {min} 到 {max} 之间。",
    "Length must be {equal}.": "长度必须是 {equal}。",
    "Longer than maximum length {max}.": "不能超过 {max} 个字符。",
    "Shorter than minimum length {min}.": "不能少于 {min} 个字符。",
    "Must be {min_op} {min} and {max_op} {max}.": "必须{min_op} {min}，且{max_op} {max}。",
    "Must be {min_op} {min}.": "必须{min_op} {min}。",
    "Must be {max_op} {max}.": "必须{max_op} {max}。",
    # Aidline's own (server/api.py)
    "Field name contains invalid characters.": "字段名包含无效字符。",
    "Must be a date from {min} to {max}.": "日期必须在 {min} 至 {max} 之间。",
    "Must be a time from {min} to {max} (in its own offset).": "时间必须在 {min} 至 {max} 之间。",
    "Must not be after the end date ({until}).": "不能晚于结束日期（{until}）。",
    "The range may not be longer than {days} days.": "起止日期相隔不能超过 {days} 天。",
}

# Words marshmallow fills into its templates.
_WORDS = {
    "datetime": "日期时间",
    "date": "日期",
    "time": "时间",
    "aware": "带时区的",
    "naive": "不带时区的",
    "greater than or equal to": "大于或等于",
    "greater than": "大于",
    "less than or equal to": "小于或等于",
    "less than": "小于",
}
_OPERATOR = "greater than or equal to|greater than|less than or equal to|less than"


def _template_pattern(english: str) -> re.Pattern[str]:
    def group(match: re.Match[str]) -> str:
        name = match[1]
        return f"(?P<{name}>{_OPERATOR})" if name.endswith("_op") else f"(?P<{name}>.+?)"

    return re.compile("^" + re.sub(r"\\\{(\w+)\\\}", group, re.escape(english)) + "$", re.S)


_TEMPLATES = [(_template_pattern(en), zh) for en, zh in FIELD_TEMPLATES_ZH.items() if "{" in en]


def translate_field_message(message: str) -> str:
    """A field message in Chinese (one of FIELD_TEMPLATES_ZH), or as it was."""
    exact = FIELD_TEMPLATES_ZH.get(message)
    if exact is not None and "{" not in message:
        return exact
    for pattern, zh in _TEMPLATES:
        found = pattern.match(message)
        if found:
            return zh.format(**{k: _WORDS.get(v, v) for k, v in found.groupdict().items()})
    return message


class DomainError(Exception):
    """Base of Aidline's errors: an HTTP status, a stable code, optional field errors."""

    status = 400
    code = "bad_request"

    def __init__(
        self,
        message: str | None = None,
        *,
        code: str | None = None,
        errors: dict[str, Any] | None = None,
        message_en: str | None = None,
        headers: dict[str, str] | None = None,
        **params: Any,
    ) -> None:
        super().__init__(message or code or self.code)
        if code:
            self.code = code
        self.message = message
        self.message_en = message_en
        self.errors = errors
        self.headers = headers or {}
        self.params = params


class ValidationFailed(DomainError):
    status = 422
    code = "validation_error"


class Unauthorized(DomainError):
    status = 401
    code = "unauthorized"


class Forbidden(DomainError):
    status = 403
    code = "forbidden"


class NotFound(DomainError):
    status = 404
    code = "not_found"


class Conflict(DomainError):
    status = 409
    code = "conflict"


class RateLimited(DomainError):
    status = 429
    code = "rate_limited"


def wants_english() -> bool:
    """True when the client asked for English (Accept-Language: en...)."""
    try:
        best = request.accept_languages.best_match(["zh", "en"], default="zh")
    except RuntimeError:  # outside a request
        return False
    return best == "en"


def localize(code: str, zh: str | None = None, en: str | None = None, **params: Any) -> str:
    """The human message for ``code`` in the client's language."""
    default_zh, default_en = MESSAGES.get(code, MESSAGES["bad_request"])
    text = (en or default_en) if wants_english() else (zh or default_zh)
    try:
        return text.format(**params) if params else text
    except (KeyError, IndexError, ValueError):
        return text


def _encodable(text: str) -> str:
    # A field named by a lone surrogate (JSON lets a client write "\ud800") cannot be
    # encoded: shown escaped, the error body can always be sent.
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return text.encode("utf-8", "backslashreplace").decode("ascii", "replace")
    return text


def _translate_fields(errors: Any, english: bool) -> Any:
    if isinstance(errors, dict):
        return {
            _encodable(k) if isinstance(k, str) else k: _translate_fields(v, english)
            for k, v in errors.items()
        }
    if isinstance(errors, list):
        return [_translate_fields(v, english) for v in errors]
    if isinstance(errors, str):
        return _encodable(errors if english else translate_field_message(errors))
    return errors


def _flatten_webargs(errors: Any) -> dict[str, Any]:
    # webargs nests field errors by location ({"json": {...}}); clients want the fields.
    if not isinstance(errors, dict):
        return {"_schema": errors}
    flat: dict[str, Any] = {}
    for location, value in errors.items():
        if location in {
            "json",
            "query",
            "form",
            "files",
            "headers",
            "path",
            "view_args",
            "querystring",
        }:
            if isinstance(value, dict):
                flat.update(value)
            else:
                flat["_schema"] = value
        else:
            flat[location] = value
    return flat


def error_body(code: str, message: str, errors: Any = None) -> dict[str, Any]:
    """The uniform error payload."""
    return {
        "code": code,
        "message": message,
        "errors": _translate_fields(errors or {}, wants_english()),
    }


# Serialization failure and deadlock: nothing was written, the client may simply retry.
RETRYABLE_SQLSTATES = frozenset({"40001", "40P01"})

_HTTP_CODES = {
    400: "bad_request",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    409: "conflict",
    413: "payload_too_large",
    415: "unsupported_media_type",
    422: "validation_error",
    429: "rate_limited",
    503: "database_unavailable",
}


def render_http_exception(error: HTTPException) -> tuple[dict[str, Any], int, dict[str, str]]:
    """Render a werkzeug/webargs HTTP error in the uniform shape."""
    status = error.code or 500
    data = getattr(error, "data", None) or {}
    headers = dict(data.get("headers") or {})
    if status == 405 and hasattr(error, "valid_methods") and error.valid_methods:
        headers["Allow"] = ", ".join(error.valid_methods)
    if status == 429 and getattr(error, "retry_after", None):
        headers["Retry-After"] = str(error.retry_after)
    code = data.get("code") or _HTTP_CODES.get(
        status, "internal_error" if status >= 500 else "bad_request"
    )
    errors = data.get("errors") or data.get("messages")
    if errors is not None:
        errors = _flatten_webargs(errors)
        if (
            status == 400
            and "_schema" not in errors
            and any(
                "Invalid JSON body." in (v if isinstance(v, list) else [v]) for v in errors.values()
            )
        ):
            code = "invalid_json"
    message = data.get("message") if wants_english() and data.get("message") else None
    return error_body(code, message or localize(code), errors), status, headers


def register_error_handlers(app: Flask) -> None:
    """Install the handlers that render every failure in the uniform shape."""

    @app.errorhandler(DomainError)
    def _domain(error: DomainError):
        message = localize(error.code, error.message, error.message_en, **error.params)
        return error_body(error.code, message, error.errors), error.status, error.headers

    @app.errorhandler(sa_exc.OperationalError)
    @app.errorhandler(sa_exc.InterfaceError)
    def _database_down(error: Exception):
        sqlstate = getattr(getattr(error, "orig", None), "sqlstate", None) or ""
        if sqlstate in RETRYABLE_SQLSTATES:
            log.warning("transaction conflict (%s), client may retry", sqlstate)
            return error_body("conflict", localize("retry_conflict")), 409, {"Retry-After": "1"}
        log.error("database unavailable: %s", type(error).__name__)
        return (
            error_body("database_unavailable", localize("database_unavailable")),
            503,
            {"Retry-After": "5"},
        )

    @app.errorhandler(Exception)
    def _unexpected(error: Exception):
        if isinstance(error, HTTPException):
            return render_http_exception(error)
        log.exception("unhandled error")
        return error_body("internal_error", localize("internal_error")), 500
