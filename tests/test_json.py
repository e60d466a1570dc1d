"""The app's JSON provider (orjson) writes the document Flask's json module would."""

from __future__ import annotations

import datetime as dt
import decimal
import enum
import json
import uuid
from typing import Any

import pytest


class Colour(enum.StrEnum):
    RED = "red"


DOCUMENTS: list[Any] = [
    {
        "b": 1,
        "a": [1.5, 35.123456, 119.53, 1e16, 0.1, -0.0, None, True, False],
        "text": '中文 "quoted" \\ \u2028 \x01 tab\t',
        "id": uuid.UUID("12345678-1234-5678-1234-567812345678"),
        "at": dt.datetime(2026, 1, 1, 8, 0, tzinfo=dt.UTC),
        "day": dt.date(2026, 1, 1),
        "amount": decimal.Decimal("1.10"),
        "colour": Colour.RED,
        "nested": {"z": [], "y": {}, "x": [{"k": "v"}]},
    },
    {"big": 2**70},  # beyond orjson's integers: the json module writes it
    {1: "a", 2: "b"},
    [],
    "just a string",
]


@pytest.mark.parametrize("doc", DOCUMENTS)
def test_same_document_as_the_json_module(app, doc: Any) -> None:
    with app.test_request_context():
        got = app.json.response(doc).get_data()
        want = json.dumps(
            doc, default=app.json.default, ensure_ascii=False, sort_keys=True, separators=(",", ":")
        )
    assert got == f"{want}\n".encode()


def test_indented_when_asked(app) -> None:
    assert app.json.dumps({"b": 1, "a": 2}, indent=2) == '{\n  "a": 2,\n  "b": 1\n}'


def test_unencodable_text_is_escaped_not_a_500(app) -> None:
    """A lone surrogate that reaches a response (orjson refuses it) is written as a JSON
    escape: the body can always be encoded and reads back as the same text."""
    doc = {"\ud800": ["x\udfff"]}
    with app.test_request_context():
        got = app.json.response(doc).get_data()
    assert json.loads(got) == doc
