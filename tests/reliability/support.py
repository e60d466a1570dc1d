"""Shared helpers of the reliability suites: the spec, the roles, a seeded world, counters.

Everything is derived from the app's own OpenAPI document and url_map, so an endpoint that
lands later is fuzzed and must appear in the bad-input catalogue without editing this file.
"""

from __future__ import annotations

import os
import uuid
from collections import Counter
from dataclasses import dataclass, field
from functools import cache
from typing import Any

from flask import Flask
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from server.app import create_app
from tests import factories as f

METHODS = ("get", "post", "put", "patch", "delete")
WRITE = frozenset({"post", "put", "patch", "delete"})

# Every role, plus a caller without a token. Staff regions sit around one township of 日照市
# (秦楼街道 in 东港区) so the seeded case is inside every staff member's scope.
ROLES = ("anonymous", "resident", "operator", "grid_worker", "duty", "supervisor", "admin")
TOWNSHIP = "371102004"
COUNTY = "371102"
CITY = "3711"
STAFF_REGIONS = {
    "operator": CITY,
    "grid_worker": TOWNSHIP,
    "duty": TOWNSHIP,
    "supervisor": COUNTY,
    "admin": CITY,
}
OTHER_TOWNSHIP = "371122001"  # 莒县城阳街道 — outside 东港区

# Counters printed at the end of the run (see tests/reliability/report.py).
STATS: Counter[str] = Counter()
# Kinds of bad input the summary counts apart (rows of tests/reliability/test_bad_input.py).
OUT_OF_RANGE = "out-of-range dates"
REVERSED = "reversed ranges"
SURROGATE = "lone surrogates"
KINDS = (OUT_OF_RANGE, REVERSED, SURROGATE)
FUZZED_OPERATIONS: set[str] = set()


def env_int(name: str, default: int) -> int:
    try:
        return max(0, int(os.environ.get(name, default)))
    except ValueError:
        return default


@cache
def spec() -> dict[str, Any]:
    """The OpenAPI document the app generates (no database needed to build it)."""
    app = create_app(
        {"TESTING": True, "DATABASE_URL": "sqlite://", "SECRET_KEY": "s" * 40, "SERVE_DOCS": False}
    )
    import json

    return json.loads(json.dumps(app.extensions["aidline.api"].spec.to_dict()))


def operations() -> list[tuple[str, str, dict[str, Any]]]:
    """(METHOD, path, operation) of every documented operation."""
    return [
        (method.upper(), path, op)
        for path, item in spec()["paths"].items()
        for method, op in item.items()
        if method in METHODS
    ]


def write_operations() -> list[tuple[str, str, dict[str, Any]]]:
    return [o for o in operations() if o[0].lower() in WRITE]


def path_params(path: str) -> list[str]:
    import re

    return re.findall(r"{([^}]+)}", path)


def documented_statuses(op: dict[str, Any]) -> set[int]:
    """Explicitly documented status codes (``default`` does not count)."""
    return {int(code) for code in op.get("responses", {}) if code.isdigit()}


def assert_error_shape(resp: Any) -> dict[str, Any]:
    """A 4xx/5xx body is exactly {code, message, errors}, JSON, message non-empty."""
    assert resp.mimetype == "application/json", (resp.status_code, resp.get_data()[:200])
    body = resp.get_json()
    assert isinstance(body, dict) and set(body) == {"code", "message", "errors"}, body
    assert isinstance(body["code"], str) and body["code"], body
    assert isinstance(body["message"], str) and body["message"], body
    assert isinstance(body["errors"], dict), body
    return body


@dataclass
class World:
    """Accounts of every role, their auth headers, and a case in everyone's scope."""

    app: Flask
    accounts: dict[str, Any] = field(default_factory=dict)
    headers: dict[str, dict[str, str]] = field(default_factory=dict)
    case_id: str = ""
    other_case_id: str = ""
    document_id: str = ""

    def auth(self, role: str) -> dict[str, str]:
        return dict(self.headers.get(role, {}))

    def known_path_values(self) -> dict[str, str]:
        """Real values for path parameters by name, so fuzzing reaches past the 404."""
        return {
            "case_id": self.case_id,
            "id": self.case_id,
            "document_id": self.document_id,
            "code": TOWNSHIP,
            "township_code": TOWNSHIP,
            "county_code": COUNTY,
            "region_code": COUNTY,
            "name": "closed",  # an SMS template
            "day": "2031-10-08",  # a calendar date
        }


def seed_world(app: Flask, session: Session, *, phone: str | None = None) -> World:
    """Staff of every role around one township, a resident with one urgent case there."""
    world = World(app=app)
    resident = f.resident(session, phone=phone) if phone else f.resident(session)
    world.accounts["resident"] = resident
    for role, region in STAFF_REGIONS.items():
        world.accounts[role] = f.staff(session, role=role, region=region)
    world.headers = {role: f.auth(app, acc) for role, acc in world.accounts.items()}
    world.headers["anonymous"] = {}
    client = app.test_client()
    resp = client.post(
        "/api/v1/urgent-requests",
        json={"township_code": TOWNSHIP, "description": "种子案件"},
        headers={**world.headers["resident"], "Idempotency-Key": f"seed-{uuid.uuid4()}"},
    )
    assert resp.status_code == 201, resp.get_json()
    world.case_id = resp.get_json()["id"]
    world.document_id = str(f.document(session, app, case_id=uuid.UUID(world.case_id)).id)
    other = f.resident(session)
    resp = client.post(
        "/api/v1/urgent-requests",
        json={"township_code": OTHER_TOWNSHIP},
        headers={**f.auth(app, other), "Idempotency-Key": f"seed-{uuid.uuid4()}"},
    )
    assert resp.status_code == 201, resp.get_json()
    world.other_case_id = resp.get_json()["id"]
    return world


def row_counts(session: Session) -> dict[str, int]:
    """Rows per table (divisions excepted): the 'nothing half-written' yardstick."""
    from server.db import Base

    # A refused staff sign-in is counted on purpose (the per-address throttle), not half-written.
    skip = {"divisions", "staff_sign_in_throttles"}
    tables = [t for t in Base.metadata.sorted_tables if t.name not in skip]
    row = session.execute(
        select(*(select(func.count()).select_from(t).scalar_subquery() for t in tables))
    ).one()
    return {t.name: n for t, n in zip(tables, row, strict=True)}
