"""The uniform error shape: malformed JSON, wrong types, 404, 405, 413, 415, languages."""

from __future__ import annotations

import inspect
import re
import string

import marshmallow as ma
import pytest
from flask.views import MethodView

from server.api import Blueprint, LocalDate, LocalDateTime, Schema, Text
from server.app import create_app
from server.errors import Conflict, error_body


def _probe_app(database_url):
    """An app with one extra JSON endpoint, to drive the error pipeline end to end."""
    app = create_app(
        {
            "TESTING": True,
            "DATABASE_URL": database_url,
            "SECRET_KEY": "x" * 40,
            "MAX_CONTENT_LENGTH": 1024,
        }
    )
    blp = Blueprint("probe", __name__, url_prefix="/api/v1/probe")

    class ProbeSchema(Schema):
        name = Text(required=True, max_length=10)
        count = ma.fields.Integer(strict=True, required=True)
        colour = ma.fields.String(validate=ma.validate.OneOf(["red", "blue"]))
        size = ma.fields.Integer(validate=ma.validate.Range(min=1, max=5))
        day = ma.fields.Date()
        since = LocalDate()
        at = LocalDateTime()

    @blp.route("")
    class Probe(MethodView):
        @blp.arguments(ProbeSchema)
        @blp.response(201, ProbeSchema)
        def post(self, data):
            if data["name"] == "conflict":
                raise Conflict()
            return data

    app.extensions["aidline.api"].register_blueprint(blp)
    return app


@pytest.fixture
def probe(database_url):
    return _probe_app(database_url).test_client()


def assert_shape(resp, status: int, code: str) -> dict:
    assert resp.status_code == status, resp.get_data(as_text=True)
    assert resp.mimetype == "application/json"
    body = resp.get_json()
    assert set(body) == {"code", "message", "errors"}
    assert body["code"] == code
    assert isinstance(body["message"], str) and body["message"]
    return body


def test_valid_request_passes(probe):
    resp = probe.post("/api/v1/probe", json={"name": "老王😀𠀀", "count": 3})
    assert resp.status_code == 201
    assert resp.get_json() == {"name": "老王😀𠀀", "count": 3}


@pytest.mark.parametrize(
    "body",
    [b"{", b'{"name": ', b"\xff\xfe", b"[" * 100_0 + b"]" * 100_0, b"nul\x00l"],
    ids=["truncated", "half", "invalid-utf8", "deeply-nested", "nul"],
)
def test_malformed_json_is_400(probe, body):
    resp = probe.post("/api/v1/probe", data=body, content_type="application/json")
    if resp.status_code == 413:  # the nested one may exceed the probe's 1 KiB limit
        assert_shape(resp, 413, "payload_too_large")
    else:
        assert_shape(resp, 400, "invalid_json")


def test_deeply_nested_json_within_size_limit(database_url):
    app = _probe_app(database_url)
    app.config["MAX_CONTENT_LENGTH"] = 1_000_000
    resp = app.test_client().post(
        "/api/v1/probe", data=b"[" * 100_000 + b"]" * 100_000, content_type="application/json"
    )
    assert_shape(resp, 400, "invalid_json")


@pytest.mark.parametrize("body", [[], "text", None, 5], ids=["array", "string", "null", "number"])
def test_json_of_wrong_type_is_422(probe, body):
    resp = probe.post("/api/v1/probe", json=body)
    errors = assert_shape(resp, 422, "validation_error")["errors"]
    assert errors


def test_wrong_field_types_name_the_fields(probe):
    resp = probe.post("/api/v1/probe", json={"name": 5, "count": "many", "extra": 1})
    errors = assert_shape(resp, 422, "validation_error")["errors"]
    assert set(errors) == {"name", "count", "extra"}
    assert errors["extra"] == ["不支持的字段。"]


def test_missing_fields_and_whitespace(probe):
    errors = assert_shape(
        probe.post("/api/v1/probe", json={"name": "   "}), 422, "validation_error"
    )["errors"]
    assert errors == {"name": ["不能为空。"], "count": ["必填项。"]}


def test_control_characters_refused(probe):
    resp = probe.post("/api/v1/probe", json={"name": "a\u0007b", "count": 1})
    assert "name" in assert_shape(resp, 422, "validation_error")["errors"]


def test_english_on_request(probe):
    resp = probe.post("/api/v1/probe", json={"count": 1}, headers={"Accept-Language": "en-US"})
    body = assert_shape(resp, 422, "validation_error")
    assert body["message"] == "Some fields are invalid."
    assert body["errors"] == {"name": ["Missing data for required field."]}


def test_chinese_by_default(probe):
    body = assert_shape(probe.post("/api/v1/probe", json={"count": 1}), 422, "validation_error")
    assert body["message"] == "提交的信息有误，请检查后重试。"


def test_wrong_content_type_is_415(probe):
    resp = probe.post(
        "/api/v1/probe", data="name=x&count=1", content_type="application/x-www-form-urlencoded"
    )
    assert_shape(resp, 415, "unsupported_media_type")


def test_oversize_body_is_413(probe):
    resp = probe.post("/api/v1/probe", json={"name": "x" * 5000, "count": 1})
    assert_shape(resp, 413, "payload_too_large")


def test_domain_error_is_rendered(probe):
    assert_shape(
        probe.post("/api/v1/probe", json={"name": "conflict", "count": 1}), 409, "conflict"
    )


def test_unknown_route_is_json_404(client):
    assert_shape(client.get("/api/v1/nowhere"), 404, "not_found")
    assert_shape(client.get("/"), 404, "not_found")


def test_wrong_method_is_json_405(client):
    resp = client.delete("/healthz")
    assert_shape(resp, 405, "method_not_allowed")
    assert "GET" in resp.headers["Allow"]


def test_unexpected_exception_is_json_500_without_details(database_url):
    app = create_app({"TESTING": True, "DATABASE_URL": database_url, "SECRET_KEY": "x" * 40})

    @app.route("/boom")
    def boom():
        raise RuntimeError("secret internals")

    resp = app.test_client().get("/boom")
    body = assert_shape(resp, 500, "internal_error")
    assert "secret" not in resp.get_data(as_text=True)
    assert body["errors"] == {}


def test_enum_range_and_date_messages_are_chinese_by_default(probe):
    body = {"name": "x", "count": 1, "colour": "green", "size": 9, "day": "2026-02-30"}
    errors = assert_shape(probe.post("/api/v1/probe", json=body), 422, "validation_error")["errors"]
    assert errors == {
        "colour": ["必须是以下之一：red, blue。"],
        "size": ["必须大于或等于 1，且小于或等于 5。"],
        "day": ["不是有效的日期。"],
    }


def test_enum_range_and_date_messages_are_english_on_request(probe):
    body = {"name": "x", "count": 1, "colour": "green", "size": 9, "day": "2026-02-30"}
    resp = probe.post("/api/v1/probe", json=body, headers={"Accept-Language": "en"})
    assert assert_shape(resp, 422, "validation_error")["errors"] == {
        "colour": ["Must be one of: red, blue."],
        "size": ["Must be greater than or equal to 1 and less than or equal to 5."],
        "day": ["Not a valid date."],
    }


# Sample values for the placeholders of marshmallow's message templates.
_SAMPLES = {
    "input": "x",
    "choices": "a, b",
    "values": "a, b",
    "other": "1",
    "min": "1",
    "max": "5",
    "equal": "2",
    "awareness": "aware",
}


def _builtin_messages() -> set[str]:
    """Every validation message marshmallow and webargs can produce, formatted as they would
    be: field error messages, the schema's own, and every validator's."""
    import webargs.core

    found: set[str] = {"Invalid JSON body.", webargs.core.Parser.DEFAULT_VALIDATION_MESSAGE}
    found |= set(ma.Schema._default_error_messages.values())
    for _, cls in inspect.getmembers(ma.fields, inspect.isclass):
        obj_types = {getattr(cls, "OBJ_TYPE", "datetime"), "datetime", "date", "time"}
        for template in getattr(cls, "default_error_messages", {}).values():
            for obj_type in obj_types:
                for awareness in ("aware", "naive"):
                    found.add(
                        template.format(
                            **{**_SAMPLES, "obj_type": obj_type, "awareness": awareness}
                        )
                    )
    for inclusive in (True, False):
        ranges = [
            (ma.validate.Range(min=1, max=5, min_inclusive=inclusive, max_inclusive=inclusive), 0),
            (ma.validate.Range(min=1, min_inclusive=inclusive), 0),
            (ma.validate.Range(max=5, max_inclusive=inclusive), 6),
        ]
        for rng, value in ranges:
            with pytest.raises(ma.ValidationError) as exc:
                rng(value)
            found |= set(exc.value.messages)
    validators = [
        (ma.validate.OneOf(["a", "b"]), "c"),
        (ma.validate.Length(min=2), "x"),
        (ma.validate.Length(max=1), "xx"),
        (ma.validate.Length(min=1, max=2), ""),
        (ma.validate.Length(equal=2), "x"),
        (ma.validate.Equal(1), 2),
        (ma.validate.Regexp("a"), "b"),
        (ma.validate.ContainsOnly(["a"]), ["b"]),
        (ma.validate.ContainsNoneOf(["a"]), ["a"]),
        (ma.validate.NoneOf([1]), 1),
        (ma.validate.Email(), "x"),
        (ma.validate.URL(), "x"),
        (ma.validate.Predicate("isdigit"), "x"),
    ]
    for validator, value in validators:
        with pytest.raises(ma.ValidationError) as exc:
            validator(value)
        found |= set(exc.value.messages)
    # Templates with placeholders left (Range's, before its operators are filled in) are
    # not messages anyone sees.
    return {
        m for m in found if not any(name for _, name, _, _ in string.Formatter().parse(m) if name)
    }


_CJK = re.compile("[\u4e00-\u9fff]")


def test_every_builtin_validation_message_reads_in_chinese(app):
    """Whatever built-in message a field or validator produces comes back in Chinese by
    default (a new marshmallow message fails here until it has a translation)."""
    messages = _builtin_messages()
    assert len(messages) > 40, messages
    with app.test_request_context():
        chinese = error_body("validation_error", "", {"f": sorted(messages)})["errors"]["f"]
    untranslated = [
        m for m, zh in zip(sorted(messages), chinese, strict=True) if not _CJK.search(zh)
    ]
    assert not untranslated, untranslated


def test_unencodable_text_never_breaks_the_error_body(app):
    """A lone surrogate that reaches an error (a field named by it) is shown escaped."""
    with app.test_request_context():
        body = error_body("validation_error", "m", {"\ud800": ["x\udfff"]})
    assert body["errors"] == {"\\ud800": ["x\\udfff"]}
    assert app.json.dumps(body).encode()


@pytest.mark.parametrize(
    ("language", "since", "at"),
    [
        (
            "zh",
            "日期必须在 2000-01-01 至 2100-12-31 之间。",
            "时间必须在 2000-01-01 至 2100-12-31 之间。",
        ),
        (
            "en",
            "Must be a date from 2000-01-01 to 2100-12-31.",
            "Must be a time from 2000-01-01 to 2100-12-31 (in its own offset).",
        ),
    ],
)
def test_out_of_range_dates_say_the_range(probe, language, since, at):
    body = {"name": "x", "count": 1, "since": "9999-12-31", "at": "9999-12-31T23:00:00-05:00"}
    resp = probe.post("/api/v1/probe", json=body, headers={"Accept-Language": language})
    assert assert_shape(resp, 422, "validation_error")["errors"] == {"since": [since], "at": [at]}
