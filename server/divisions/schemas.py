"""Division schemas."""

from __future__ import annotations

import marshmallow as ma

from server.api import Schema


class DivisionSchema(Schema):
    """A division as shown to apps' pickers."""

    code = ma.fields.String(required=True)
    name = ma.fields.String(required=True)
    level = ma.fields.String(required=True)
    parent_code = ma.fields.String(allow_none=True)
    full_name = ma.fields.String(metadata={"description": "names from province down"})


class DivisionRefSchema(Schema):
    """A division reference: code and name."""

    code = ma.fields.String(required=True)
    name = ma.fields.String(required=True)
