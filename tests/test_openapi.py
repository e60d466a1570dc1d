"""The checked-in OpenAPI document is what the app generates."""

from __future__ import annotations

import json
from pathlib import Path

SPEC = Path(__file__).resolve().parent.parent / "api_spec" / "openapi.json"


def test_openapi_document_is_current(app):
    generated = json.loads(json.dumps(app.extensions["aidline.api"].spec.to_dict()))
    checked_in = json.loads(SPEC.read_text(encoding="utf-8"))
    assert generated == checked_in, "api_spec/openapi.json is stale: run `make spec`"


def test_every_operation_has_a_summary(app):
    spec = app.extensions["aidline.api"].spec.to_dict()
    for path, item in spec["paths"].items():
        for method, op in item.items():
            if method in {"get", "post", "put", "patch", "delete"}:
                assert op.get("summary"), f"{method.upper()} {path} has no docstring summary"
