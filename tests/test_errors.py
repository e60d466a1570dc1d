"""The uniform error shape: malformed JSON, wrong types, 404, 405, 413, 415, languages."""

from __future__ import annotations

import marshmallow as ma
import pytest
from flask.views import MethodView

from server.api import Blueprint, Schema, Text
from server.app import create_app
from server.errors import Conflict


def _probe_app(database_url):  # type: ignore[no-untyped-def]
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

    @blp.route("")
    class Probe(MethodView):
        @blp.arguments(ProbeSchema)
        @blp.response(201, ProbeSchema)
        def post(self, data):  # type: ignore[no-untyped-def]
            if data["name"] == "conflict":
                raise Conflict()
            return data

    app.extensions["aidline.api"].register_blueprint(blp)
    return app


@pytest.fixture
def probe(database_url):  # type: ignore[no-untyped-def]
    return _probe_app(database_url).test_client()


def assert_shape(resp, status: int, code: str) -> dict:  # type: ignore[no-untyped-def]
    assert resp.status_code == status, resp.get_data(as_text=True)
    assert resp.mimetype == "application/json"
    body = resp.get_json()
    assert set(body) == {"code", "message", "errors"}
    assert body["code"] == code
    assert isinstance(body["message"], str) and body["message"]
    return body


def test_valid_request_passes(probe):  # type: ignore[no-untyped-def]
    resp = probe.post("/api/v1/probe", json={"name": "老王😀𠀀", "count": 3})
    assert resp.status_code == 201
    assert resp.get_json() == {"name": "老王😀𠀀", "count": 3}


@pytest.mark.parametrize(
    "body",
    [b"{", b'{"name": ', b"\xff\xfe", b"[" * 100_0 + b"]" * 100_0, b"nul\x00l"],
    ids=["truncated", "half", "invalid-utf8", "deeply-nested", "nul"],
)
def test_malformed_json_is_400(probe, body):  # type: ignore[no-untyped-def]
    resp = probe.post("/api/v1/probe", data=body, content_type="application/json")
    if resp.status_code == 413:  # the nested one may exceed the probe's 1 KiB limit
        assert_shape(resp, 413, "payload_too_large")
    else:
        assert_shape(resp, 400, "invalid_json")


def test_deeply_nested_json_within_size_limit(database_url):  # type: ignore[no-untyped-def]
    app = _probe_app(database_url)
    app.config["MAX_CONTENT_LENGTH"] = 1_000_000
    resp = app.test_client().post(
        "/api/v1/probe", data=b"[" * 100_000 + b"]" * 100_000, content_type="application/json"
    )
    assert_shape(resp, 400, "invalid_json")


@pytest.mark.parametrize("body", [[], "text", None, 5], ids=["array", "string", "null", "number"])
def test_json_of_wrong_type_is_422(probe, body):  # type: ignore[no-untyped-def]
    resp = probe.post("/api/v1/probe", json=body)
    errors = assert_shape(resp, 422, "validation_error")["errors"]
    assert errors


def test_wrong_field_types_name_the_fields(probe):  # type: ignore[no-untyped-def]
    resp = probe.post("/api/v1/probe", json={"name": 5, "count": "many", "extra": 1})
    errors = assert_shape(resp, 422, "validation_error")["errors"]
    assert set(errors) == {"name", "count", "extra"}
    assert errors["extra"] == ["不支持的字段。"]


def test_missing_fields_and_whitespace(probe):  # type: ignore[no-untyped-def]
    errors = assert_shape(
        probe.post("/api/v1/probe", json={"name": "   "}), 422, "validation_error"
    )["errors"]
    assert errors == {"name": ["不能为空。"], "count": ["必填项。"]}


def test_control_characters_refused(probe):  # type: ignore[no-untyped-def]
    resp = probe.post("/api/v1/probe", json={"name": "a\u0007b", "count": 1})
    assert "name" in assert_shape(resp, 422, "validation_error")["errors"]


def test_english_on_request(probe):  # type: ignore[no-untyped-def]
    resp = probe.post("/api/v1/probe", json={"count": 1}, headers={"Accept-Language": "en-US"})
    body = assert_shape(resp, 422, "validation_error")
    assert body["message"] == "Some fields are invalid."
    assert body["errors"] == {"name": ["Missing data for required field."]}


def test_chinese_by_default(probe):  # type: ignore[no-untyped-def]
    body = assert_shape(probe.post("/api/v1/probe", json={"count": 1}), 422, "validation_error")
    assert body["message"] == "提交的信息有误，请检查后重试。"


def test_wrong_content_type_is_415(probe):  # type: ignore[no-untyped-def]
    resp = probe.post(
        "/api/v1/probe", data="name=x&count=1", content_type="application/x-www-form-urlencoded"
    )
    assert_shape(resp, 415, "unsupported_media_type")


def test_oversize_body_is_413(probe):  # type: ignore[no-untyped-def]
    resp = probe.post("/api/v1/probe", json={"name": "x" * 5000, "count": 1})
    assert_shape(resp, 413, "payload_too_large")


def test_domain_error_is_rendered(probe):  # type: ignore[no-untyped-def]
    assert_shape(
        probe.post("/api/v1/probe", json={"name": "conflict", "count": 1}), 409, "conflict"
    )


def test_unknown_route_is_json_404(client):  # type: ignore[no-untyped-def]
    assert_shape(client.get("/api/v1/nowhere"), 404, "not_found")
    assert_shape(client.get("/"), 404, "not_found")


def test_wrong_method_is_json_405(client):  # type: ignore[no-untyped-def]
    resp = client.delete("/healthz")
    assert_shape(resp, 405, "method_not_allowed")
    assert "GET" in resp.headers["Allow"]


def test_unexpected_exception_is_json_500_without_details(database_url):  # type: ignore[no-untyped-def]
    app = create_app({"TESTING": True, "DATABASE_URL": database_url, "SECRET_KEY": "x" * 40})

    @app.route("/boom")
    def boom():  # type: ignore[no-untyped-def]
        raise RuntimeError("secret internals")

    resp = app.test_client().get("/boom")
    body = assert_shape(resp, 500, "internal_error")
    assert "secret" not in resp.get_data(as_text=True)
    assert body["errors"] == {}
