"""Authorization matrix: every /api/v1 endpoint × every role × own/other region.

HOW TO ADD AN ENDPOINT (the suite fails until every rule under /api/v1 has a row)
------------------------------------------------------------------------------
Add one entry to ``MATRIX`` below, keyed by ``(METHOD, rule)`` exactly as Flask prints the
rule (``"/api/v1/cases/<uuid:case_id>"``). The value is a ``Row``:

- ``expect``: what each role gets, built with ``public()``, ``signed_in()`` or ``roles()``.
  A value is one outcome for both regions, or a tuple ``(own, other)``:
    OK    any 2xx                         DENY  403: visible, but the role may not do it
    AUTH  401: not signed in              HIDE  404: out of scope, existence not revealed
    PASS  authorization passed but the result depends on state (e.g. 409/422): anything
          except 401/403/404/5xx. Prefer OK with a body that succeeds.
- ``path``/``json``/``query``/``headers``: a value, or ``lambda w, own: ...`` building it from
  the ``World`` (``w.case(own).id``, ``w.township(own)``, ``w.county(own)``, ...).

"own" means the target lies in the caller's scope: for a resident, their own case; for staff,
a township inside their region. Every staff actor is scoped to contain ``OWN_TOWNSHIP``
(duty and grid worker: the township; supervisor: its county; operator and admin: the city);
"other" targets are in another city, out of everybody's scope. Extend ``World`` when your
endpoint needs other fixtures (a claimed case, a document, ...). Each call runs in its own
savepoint with fresh rate-limit counters, so calls cannot affect each other.
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import pytest
from sqlalchemy.orm import Session

from server.accounts.models import AuthSession, RefreshToken, SignInCode
from server.cases.models import Case
from server.db import utcnow
from tests import factories

OK, AUTH, DENY, HIDE, PASS = "2xx", 401, 403, 404, "authorized"
ROLES = ("anonymous", "resident", "operator", "grid_worker", "duty", "supervisor", "admin")
STAFF = ROLES[2:]

OWN_TOWNSHIP, OTHER_TOWNSHIP = "371102004", "370202001"  # 日照东港区秦楼街道 / 青岛市南区


def public(outcome: Any = OK) -> dict[str, Any]:
    """Everyone, signed in or not."""
    return dict.fromkeys(ROLES, outcome)


def signed_in(outcome: Any = OK, **per_role: Any) -> dict[str, Any]:
    """Every role gets ``outcome`` unless overridden; anonymous callers get 401."""
    return dict.fromkeys(ROLES, outcome) | {"anonymous": AUTH} | per_role


def roles(*, staff: Any = DENY, **per_role: Any) -> dict[str, Any]:
    """Only the roles named; other staff get ``staff`` (403), the resident 403, anonymous 401."""
    base = {"anonymous": AUTH, "resident": DENY} | dict.fromkeys(STAFF, staff)
    return base | per_role


@dataclass
class Row:
    expect: dict[str, Any]
    path: dict[str, Any] | Callable[..., dict[str, Any]] | None = None
    json: Any = None
    query: dict[str, Any] | Callable[..., dict[str, Any]] | None = None
    headers: dict[str, str] | Callable[..., dict[str, str]] | None = None
    # A multipart body instead of JSON: {"data": ..., "content_type": ...} (a file upload).
    multipart: dict[str, Any] | Callable[..., dict[str, Any]] | None = None


# ---------------------------------------------------------------------------------------------
# THE MATRIX: one row per (method, rule) under /api/v1. Keep it sorted by path.
# ---------------------------------------------------------------------------------------------
MATRIX: dict[tuple[str, str], Row] = {
    # admin: SMS operations.
    ("GET", "/api/v1/admin/outbox"): Row(roles(admin=OK)),
    ("GET", "/api/v1/admin/sms-templates"): Row(roles(admin=OK)),
    ("PUT", "/api/v1/admin/sms-templates/<string:name>"): Row(
        roles(admin=OK), path={"name": "receipt"}, json={"text": None}
    ),
    # calendar overrides: administrators only.
    ("GET", "/api/v1/calendar/overrides"): Row(roles(admin=OK)),
    ("PUT", "/api/v1/calendar/overrides/<string:day>"): Row(
        roles(admin=OK), path={"day": "2027-01-01"}, json={"workday": False, "note": "元旦"}
    ),
    ("DELETE", "/api/v1/calendar/overrides/<string:day>"): Row(
        roles(admin=OK), path=lambda w, own: {"day": w.calendar_day()}
    ),
    # county settings and reports: the county's supervisors, administrators above it.
    ("GET", "/api/v1/counties/<string:code>/aid-standards"): Row(
        roles(supervisor=(OK, HIDE), admin=(OK, HIDE)),
        path=lambda w, own: {"code": w.county_with_standards(own)},
    ),
    ("PUT", "/api/v1/counties/<string:code>/aid-standards"): Row(
        roles(admin=(OK, HIDE)),
        path=lambda w, own: {"code": w.county(own)},
        json={
            "urban_monthly_fen": 95000,
            "rural_monthly_fen": 75000,
            "township_urgent_cap_fen": 300000,
            "township_approval_cap_fen": 1000000,
        },
    ),
    ("GET", "/api/v1/counties/<string:code>/sla"): Row(
        roles(supervisor=(OK, HIDE), admin=(OK, HIDE)), path=lambda w, own: {"code": w.county(own)}
    ),
    ("GET", "/api/v1/counties/<string:code>/ledger"): Row(
        roles(supervisor=(OK, HIDE), admin=(OK, HIDE)),
        path=lambda w, own: {"code": w.county(own)},
        query={"format": "csv"},
    ),
    ("GET", "/api/v1/counties/<string:code>/triage"): Row(
        roles(supervisor=(OK, HIDE)), path=lambda w, own: {"code": w.county(own)}
    ),
    ("POST", "/api/v1/counties/<string:code>/triage/claim"): Row(
        roles(supervisor=(OK, HIDE)), path=lambda w, own: {"code": w.county(own)}
    ),
    # township queues: duty staff of the township, supervisors of its county.
    ("GET", "/api/v1/townships/<string:code>/queue"): Row(
        roles(duty=(OK, HIDE), supervisor=(OK, HIDE)),
        path=lambda w, own: {"code": w.township(own)},
    ),
    ("POST", "/api/v1/townships/<string:code>/queue/claim"): Row(
        roles(duty=(OK, HIDE), supervisor=(OK, HIDE)),
        path=lambda w, own: {"code": w.township(own)},
    ),
    # case work: the resident withdraws their own; staff roles may not withdraw for them.
    ("POST", "/api/v1/cases/<uuid:case_id>/actions"): Row(
        roles(resident=(OK, HIDE), duty=(DENY, HIDE), supervisor=(DENY, HIDE)),
        path=lambda w, own: {"case_id": w.case(own).id},
        json={"action": "withdraw"},
    ),
    # documents: whoever may view the case reads them; the resident, the township's duty
    # staff and the county's supervisors add them; only the resident signs a commitment.
    ("GET", "/api/v1/cases/<uuid:case_id>/documents"): Row(
        signed_in((OK, HIDE)), path=lambda w, own: {"case_id": w.case(own).id}
    ),
    ("POST", "/api/v1/cases/<uuid:case_id>/documents"): Row(
        roles(resident=(OK, HIDE), duty=(OK, HIDE), supervisor=(OK, HIDE)),
        path=lambda w, own: {"case_id": w.claimed_case(own).id},
        multipart=lambda w, own: w.upload_body(),
    ),
    ("GET", "/api/v1/cases/<uuid:case_id>/documents/<int:document_id>"): Row(
        signed_in((OK, HIDE)),
        path=lambda w, own: {"case_id": w.case(own).id, "document_id": w.document(own).id},
    ),
    ("GET", "/api/v1/cases/<uuid:case_id>/documents/<int:document_id>/thumbnail"): Row(
        signed_in((OK, HIDE)),
        path=lambda w, own: {"case_id": w.case(own).id, "document_id": w.document(own).id},
    ),
    ("GET", "/api/v1/cases/<uuid:case_id>/commitment"): Row(
        signed_in((OK, HIDE)), path=lambda w, own: {"case_id": w.case(own).id}
    ),
    ("POST", "/api/v1/cases/<uuid:case_id>/commitment"): Row(
        roles(resident=(OK, HIDE)),
        path=lambda w, own: {"case_id": w.claimed_case(own, aid_type="minimum_living").id},
        json=lambda w, own: w.commitment_body(),
    ),
    # aid types: public reference data.
    ("GET", "/api/v1/aid-types"): Row(public()),
    # intake: residents tap and apply; hotline operators and grid workers enter cases.
    ("POST", "/api/v1/applications"): Row(
        roles(resident=OK), json={"aid_type": "medical", "reason": "住院"}
    ),
    ("POST", "/api/v1/intake"): Row(
        roles(operator=OK, grid_worker=OK),
        json={"phone": "13812345670", "channel": "hotline", "urgent": True},
    ),
    ("POST", "/api/v1/urgent-requests"): Row(roles(resident=OK), json={}),
    # cases: a resident sees their own, staff those of their region.
    ("GET", "/api/v1/cases"): Row(signed_in()),
    ("GET", "/api/v1/cases/<uuid:case_id>"): Row(
        signed_in((OK, HIDE)), path=lambda w, own: {"case_id": w.case(own).id}
    ),
    # a case's full phones: the staff who may act on it (duty of the township, its county's
    # supervisors; the holder and the operator who entered it: tests/cases/test_case_contact.py).
    ("GET", "/api/v1/cases/<uuid:case_id>/contact"): Row(
        signed_in((DENY, HIDE), duty=(OK, HIDE), supervisor=(OK, HIDE)),
        path=lambda w, own: {"case_id": w.case(own).id},
    ),
    ("GET", "/api/v1/cases/<uuid:case_id>/callback-tasks"): Row(
        roles(operator=(OK, HIDE), duty=(OK, HIDE), supervisor=(OK, HIDE), admin=(OK, HIDE)),
        path=lambda w, own: {"case_id": w.case(own).id},
    ),
    ("POST", "/api/v1/cases/<uuid:case_id>/callback-tasks/<int:task_id>/done"): Row(
        roles(operator=(OK, HIDE), duty=(OK, HIDE), supervisor=(OK, HIDE), admin=(DENY, HIDE)),
        path=lambda w, own: {"case_id": w.case(own).id, "task_id": w.callback_task(own).id},
        json={},
    ),
    # Twilio webhooks: only Twilio's signature opens them, whoever else calls.
    ("POST", "/api/v1/webhooks/twilio/inbound"): Row(public(DENY), json={}),
    ("POST", "/api/v1/webhooks/twilio/status"): Row(public(DENY), json={}),
    # auth: public endpoints; the body makes each call succeed for any caller.
    ("POST", "/api/v1/auth/logout"): Row(public(), json=lambda w, own: w.refresh_body()),
    ("POST", "/api/v1/auth/refresh"): Row(public(), json=lambda w, own: w.refresh_body()),
    ("POST", "/api/v1/auth/sms-code"): Row(public(), json={"phone": "13812345678"}),
    ("POST", "/api/v1/auth/staff-token"): Row(public(), json=lambda w, own: w.staff_login()),
    ("POST", "/api/v1/auth/token"): Row(public(), json=lambda w, own: w.sign_in_body()),
    # divisions: public reference data.
    ("GET", "/api/v1/divisions"): Row(public()),
    ("GET", "/api/v1/divisions/<string:code>"): Row(
        public(), path=lambda w, own: {"code": w.township(own)}
    ),
    ("GET", "/api/v1/divisions/<string:code>/children"): Row(
        public(), path=lambda w, own: {"code": w.county(own)}
    ),
    # OpenAPI document and its viewers.
    ("GET", "/api/v1/docs/openapi.json"): Row(public()),
    ("GET", "/api/v1/docs/swagger"): Row(public()),
    ("GET", "/api/v1/docs/swagger-ui/<string:filename>"): Row(
        public(), path={"filename": "swagger-ui-bundle.js"}
    ),
    # me: everybody reads their own profile; only residents edit theirs.
    ("GET", "/api/v1/me"): Row(signed_in()),
    ("PATCH", "/api/v1/me"): Row(roles(resident=OK), json={"name": "测试"}),
}


# --- the world the calls run in --------------------------------------------------------------


@dataclass
class World:
    """Actors and targets: one of each role, and an own/other version of each target."""

    app: Any
    session: Session
    accounts: dict[str, Any] = field(default_factory=dict)
    _headers: dict[str, dict[str, str]] = field(default_factory=dict)
    _cases: dict[bool, Case] = field(default_factory=dict)

    def setup(self) -> World:
        s = self.session
        self.accounts = {
            "resident": factories.resident(s),
            "operator": factories.staff(s, role="operator", region=OWN_TOWNSHIP[:4]),
            "grid_worker": factories.staff(s, role="grid_worker", region=OWN_TOWNSHIP),
            "duty": factories.staff(s, role="duty", region=OWN_TOWNSHIP),
            "supervisor": factories.staff(s, role="supervisor", region=OWN_TOWNSHIP[:6]),
            "admin": factories.staff(s, role="admin", region=OWN_TOWNSHIP[:4]),
        }
        self.other_resident = factories.resident(s)
        self._headers = {r: factories.auth(self.app, a) for r, a in self.accounts.items()}
        self._headers["anonymous"] = {}
        self._cases = {own: self._make_case(own) for own in (True, False)}
        return self

    def headers(self, role: str) -> dict[str, str]:
        return dict(self._headers[role])

    # regions
    def township(self, own: bool) -> str:
        return OWN_TOWNSHIP if own else OTHER_TOWNSHIP

    def county(self, own: bool) -> str:
        return self.township(own)[:6]

    def city(self, own: bool) -> str:
        return self.township(own)[:4]

    # cases: an urgent queued case of the resident in OWN_TOWNSHIP, another resident's elsewhere
    def case(self, own: bool) -> Case:
        return self._cases[own]

    def _make_case(self, own: bool) -> Case:
        township = self.township(own)
        owner = self.accounts["resident"] if own else self.other_resident
        case = Case(
            case_no=f"MX-{uuid.uuid4().hex[:10]}",
            urgent=True,
            aid_type="temporary",
            channel="app",
            resident_id=owner.id,
            township_code=township,
            county_code=township[:6],
            accountable_township_code=township,
            subject_phone=owner.phone,
        )
        self.session.add(case)
        self.session.flush()
        return case

    def claimed_case(self, own: bool, **values: Any) -> Case:
        """The own/other case, claimed by nobody in particular (documents need a live case)."""
        from sqlalchemy import update

        case = self.case(own)
        # test world set-up, not a transition under test
        self.session.execute(
            update(Case).where(Case.id == case.id).values(status="claimed", **values)
        )
        return case

    def upload_body(self) -> dict[str, Any]:
        from tests.files import multipart, png

        return multipart({"kind": "other"}, png(), "a.png")

    def document(self, own: bool) -> Any:
        """A stored photo on the own/other case."""
        return factories.document(self.session, self.app, case_id=self.case(own).id)

    def commitment_body(self) -> dict[str, Any]:
        from server.documents.service import commitment_text_hash

        return {"confirm": True, "text_sha256": commitment_text_hash()}

    def county_with_standards(self, own: bool) -> str:
        factories.aid_standard(self.session, county=self.county(own))
        return self.county(own)

    def calendar_day(self) -> str:
        from server.cases.settings import set_override

        day = dt.date(2027, 1, 1)
        set_override(
            self.session, actor=self.accounts["admin"], day=day, workday=False, note="元旦"
        )
        return day.isoformat()

    def callback_task(self, own: bool) -> Any:
        """An open call-back task on the own/other case (made inside the call's savepoint)."""
        return factories.callback_task(self.session, self.case(own))

    # sign-in material (made inside each call's savepoint)
    def sign_in_body(self) -> dict[str, str]:
        from server.accounts.codes import _code_hash

        phone, code = "+8613812340000", "424242"
        with self.app.app_context():
            code_hash = _code_hash(phone, code)
        self.session.add(
            SignInCode(
                phone=phone,
                code_hash=code_hash,
                expires_at=utcnow().replace(year=utcnow().year + 1),
            )
        )
        self.session.flush()
        return {"phone": phone, "code": code}

    def staff_login(self) -> dict[str, str]:
        account = factories.staff(self.session, role="duty", region=OWN_TOWNSHIP)
        return {"username": account.username, "password": factories._PASSWORD}

    def refresh_body(self) -> dict[str, str]:
        from server.accounts.auth import _token_hash

        auth_session = AuthSession(account_id=self.accounts["resident"].id)
        self.session.add(auth_session)
        self.session.flush()
        token = uuid.uuid4().hex
        self.session.add(
            RefreshToken(
                session_id=auth_session.id,
                token_hash=_token_hash(token),
                expires_at=utcnow().replace(year=utcnow().year + 1),
            )
        )
        self.session.flush()
        return {"refresh_token": token}


# --- the tests -------------------------------------------------------------------------------


def _api_rules(app: Any) -> set[tuple[str, str]]:
    found = set()
    for rule in app.url_map.iter_rules():
        if rule.rule.startswith("/api/v1"):
            for method in rule.methods - {"HEAD", "OPTIONS"}:
                found.add((method, rule.rule))
    return found


def test_every_endpoint_has_a_row(app) -> None:
    rules = _api_rules(app)
    missing = sorted(rules - MATRIX.keys())
    assert not missing, (
        f"endpoints without a row in tests/test_authz_matrix.py MATRIX: {missing} "
        "(see the instructions at the top of that file)"
    )
    stale = sorted(MATRIX.keys() - rules)
    assert not stale, f"MATRIX rows for endpoints that no longer exist: {stale}"


def test_every_row_names_every_role() -> None:
    for key, row in MATRIX.items():
        assert set(row.expect) == set(ROLES), key


def _resolve(value: Any, world: World, own: bool) -> Any:
    return value(world, own) if callable(value) else value


def _matches(expected: Any, status: int) -> bool:
    if expected == OK:
        return 200 <= status < 300
    if expected == PASS:
        return status not in (401, 403, 404) and status < 500
    return status == expected


@pytest.mark.parametrize("key", sorted(MATRIX), ids=lambda k: f"{k[0]} {k[1]}")
def test_matrix(app, session, connection, key) -> None:
    from server.limits import limiter

    method, rule = key
    row = MATRIX[key]
    world = World(app, session).setup()
    client = app.test_client()
    failures = []
    for role in ROLES:
        expectation = row.expect[role]
        own_exp, other_exp = (
            expectation if isinstance(expectation, tuple) else (expectation, expectation)
        )
        for own, expected in ((True, own_exp), (False, other_exp)):
            savepoint = connection.begin_nested()
            limiter.reset()
            try:
                url = rule
                for name, value in (_resolve(row.path, world, own) or {}).items():
                    url = _replace_param(url, name, str(value))
                resp = client.open(
                    url,
                    method=method,
                    **(
                        _resolve(row.multipart, world, own)
                        or {"json": _resolve(row.json, world, own)}
                    ),
                    query_string=_resolve(row.query, world, own),
                    headers=world.headers(role) | (_resolve(row.headers, world, own) or {}),
                )
                body = resp.get_data()[:200].decode(errors="replace")
                resp.close()  # a served file stays open until closed
                if not _matches(expected, resp.status_code):
                    failures.append(
                        f"{role} {'own' if own else 'other'}: expected {expected}, "
                        f"got {resp.status_code} {body}"
                    )
            finally:
                session.expunge_all()
                savepoint.rollback()
    assert not failures, f"{method} {rule}:\n" + "\n".join(failures)


def _replace_param(rule: str, name: str, value: str) -> str:
    start = rule.find("<")
    while start != -1:
        end = rule.find(">", start)
        param = rule[start + 1 : end]
        if param.split(":")[-1] == name:
            return rule[:start] + value + rule[end + 1 :]
        start = rule.find("<", end)
    raise AssertionError(f"{rule} has no parameter {name}")


def test_world_targets_agree_with_access_rules(app, session) -> None:
    # "own" and "other" mean what server/access.py decides, for every role.
    from server.access import can_view_case
    from server.accounts.tokens import Actor

    world = World(app, session).setup()
    for role, account in world.accounts.items():
        actor = Actor(id=account.id, role=role, region_code=account.region_code)
        assert can_view_case(actor, world.case(True)), role
        assert not can_view_case(actor, world.case(False)), role
