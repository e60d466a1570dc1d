"""The bad-input catalogue: every write operation against a table of hostile inputs.

Write operations are discovered from the OpenAPI document (and the url_map must not hold
undocumented ones). Each gets:

- body rows that need nothing but an authorised caller: malformed JSON, invalid UTF-8,
  JSON of the wrong type, 10 MB, deep nesting, wrong media types, unknown fields ...;
- path rows for every path parameter: IDs that are not IDs;
- field rows derived from the operation's request schema, applied to a known-good
  request (``BASELINES``): missing and null values, wrong types, empty and whitespace-only
  strings, control characters, lone surrogates, over-long text, emoji and rare CJK, SQL and
  template injection, negative/huge/float numbers, unknown enum values, dates in the
  future and before 1900, naive and offset datetimes;
- header rows for documented request headers (Idempotency-Key).

Every row must answer a 4xx in the uniform ``{code, message, errors}`` shape with a
documented status and no row written anywhere, or be accepted (2xx) with text values
returned exactly as sent (NFC, trimmed). Never a 5xx, never a case without its events.
A write operation without a baseline fails ``test_every_write_operation_has_rows`` until it
gets one here (or an entry in ``BODY_ROWS_ONLY`` saying why the generic rows are enough).
"""

from __future__ import annotations

import datetime as dt
import io
import itertools
import json
import re
import unicodedata
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlencode

import marshmallow as ma
import pytest
from sqlalchemy import func, select
from werkzeug.datastructures import FileStorage
from werkzeug.test import encode_multipart

from notifications.models import CallbackTask
from server.cases.models import Case, CaseEvent
from server.db import utcnow
from server.documents.service import commitment_text_hash
from tests import factories as f
from tests import files
from tests.fake_twilio import AUTH_TOKEN, PUBLIC_BASE_URL, sign
from tests.reliability import support as r

_phones = itertools.count(1)
_clients = itertools.count(1)


def fresh_phone() -> str:
    return f"+86137{next(_phones) % 100_000_000:08d}"


# --- requests -----------------------------------------------------------------------------

MISSING = object()


@dataclass
class Req:
    """One request: who sends it, where, with what headers and body."""

    method: str
    path: str
    headers: dict[str, str] = field(default_factory=dict)
    json: Any = MISSING  # a JSON value, serialised with escapes
    raw: bytes | None = None  # or raw bytes
    content_type: str | None = "application/json"
    form: dict[str, str] | None = None  # or a form, signed like Twilio's when ``signed``
    signed: bool = False
    # or a multipart body: text fields, and files as (bytes, file name, declared type)
    multipart: dict[str, Any] | None = None

    def send(self, client: Any) -> Any:
        data = self.raw
        headers = dict(self.headers)
        if self.form is not None:
            # Lone surrogates go out as the invalid UTF-8 they encode to; the signature is
            # computed over what a UTF-8 decoder would read back.
            data = urlencode(self.form, encoding="utf-8", errors="surrogatepass").encode()
            self.content_type = "application/x-www-form-urlencoded"
            if self.signed:
                readable = {
                    k: v.encode("utf-8", "surrogatepass").decode("utf-8", "replace")
                    for k, v in self.form.items()
                }
                headers["X-Twilio-Signature"] = sign(PUBLIC_BASE_URL + self.path, readable)
        if self.multipart is not None:
            values = {
                name: FileStorage(io.BytesIO(v[0]), filename=v[1], content_type=v[2])
                if isinstance(v, tuple)
                else v
                for name, v in self.multipart.items()
            }
            boundary, data = encode_multipart(values)
            self.content_type = f"multipart/form-data; boundary={boundary}"
        if data is None and self.json is not MISSING:
            data = json.dumps(self.json).encode()
        kwargs: dict[str, Any] = {"headers": headers}
        if data is not None:
            kwargs["data"] = data
            if self.content_type:
                kwargs["content_type"] = self.content_type
        return client.open(self.path, method=self.method, **kwargs)


@dataclass
class Ctx:
    """What a baseline may use: the app, the test session, the seeded world."""

    app: Any
    session: Any
    world: r.World

    def fresh_resident_headers(self) -> dict[str, str]:
        return f.auth(self.app, f.resident(self.session, phone=fresh_phone()))

    def key(self) -> dict[str, str]:
        return {"Idempotency-Key": f"bad-input-{uuid.uuid4()}"}

    def sign_in_code(self) -> dict[str, str]:
        """A phone with a fresh, valid sign-in code (as if the SMS had arrived)."""
        from server.accounts.codes import _code_hash
        from server.accounts.models import SignInCode

        phone, code = fresh_phone(), "424242"
        with self.app.app_context():
            code_hash = _code_hash(phone, code)
        self.session.add(
            SignInCode(phone=phone, code_hash=code_hash, expires_at=utcnow() + dt.timedelta(1))
        )
        self.session.flush()
        return {"phone": phone, "code": code}

    def staff_login(self) -> dict[str, str]:
        account = f.staff(self.session, role="duty", region=r.TOWNSHIP)
        return {"username": account.username, "password": f._PASSWORD}

    def refresh_token(self) -> str:
        """A live refresh token of a fresh resident."""
        from server.accounts.auth import _token_hash
        from server.accounts.models import AuthSession, RefreshToken

        resident = f.resident(self.session, phone=fresh_phone())
        auth_session = AuthSession(account_id=resident.id)
        self.session.add(auth_session)
        self.session.flush()
        token = uuid.uuid4().hex
        self.session.add(
            RefreshToken(
                session_id=auth_session.id,
                token_hash=_token_hash(token),
                expires_at=utcnow() + dt.timedelta(1),
            )
        )
        self.session.flush()
        return token

    _people: Any = None

    def people(self) -> Any:
        """The workflow tests' cast: duty officers, a supervisor, a resident, aid standards."""
        if self._people is None:
            from tests.workflow_support import people

            self._people = people(self.session)
        return self._people

    def action(self, status: str, body: dict[str, Any], *, urgent: bool = True) -> Req:
        """A fresh case in ``status`` held by the duty officer, and an action on it."""
        from tests.workflow_support import case_in

        p = self.people()
        case = case_in(self.session, status, p, urgent=urgent)
        return Req("POST", f"/api/v1/cases/{case.id}/actions", f.auth(self.app, p.duty), body)

    def calendar_day(self) -> str:
        """A date with an administrator override, for the DELETE baseline."""
        day = f"2031-{next(_phones) % 12 + 1:02d}-{next(_phones) % 28 + 1:02d}"
        resp = self.app.test_client().put(
            f"/api/v1/calendar/overrides/{day}",
            json={"workday": False},
            headers=self.world.auth("admin"),
        )
        assert resp.status_code == 200, resp.get_json()
        return day

    def callback_task(self) -> str:
        """An open call-back task on the seeded case (an SMS that did not reach the resident)."""
        import notifications

        row = notifications.enqueue(
            self.session, "+8613900000000", "claimed", {"case_no": "X", "township": "Y"}
        )
        self.session.flush()
        task = CallbackTask(
            case_id=uuid.UUID(self.world.case_id),
            outbox_id=row.id,
            phone="+8613900000000",
            reason="undelivered",
        )
        self.session.add(task)
        self.session.flush()
        return f"/api/v1/cases/{self.world.case_id}/callback-tasks/{task.id}/done"


def _id_number(body17: str) -> str:
    """A GB 11643 number with its check character."""
    weights = [7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2]
    total = sum(int(d) * w for d, w in zip(body17, weights, strict=True))
    return body17 + "10X98765432"[total % 11]


VALID_ID_NUMBER = _id_number("37110219800101123")

# Known-good requests, one per write operation. Each call returns a fresh request that would
# succeed (2xx) on its own — a fresh person where the endpoint deduplicates by person.
BASELINES: dict[str, Callable[[Ctx], Req] | list[Callable[[Ctx], Req]]] = {
    "POST /api/v1/urgent-requests": lambda c: Req(
        "POST",
        "/api/v1/urgent-requests",
        {**c.fresh_resident_headers(), **c.key()},
        {
            "township_code": r.TOWNSHIP,
            "location": {"lat": 35.42, "lng": 119.52},
            "address": "秦楼街道泰安路88号",
            "description": "家里没有吃的了",
            "contact_phone": "13800000000",
        },
    ),
    "POST /api/v1/applications": lambda c: Req(
        "POST",
        "/api/v1/applications",
        {**c.fresh_resident_headers(), **c.key()},
        {
            "aid_type": "medical",
            "reason": "住院费用无力承担",
            "household_size": 3,
            "monthly_income_fen": 150_000,
            "township_code": r.TOWNSHIP,
            "address": "秦楼街道泰安路88号",
            "location": {"lat": 35.42, "lng": 119.52},
            "contact_phone": "13800000000",
        },
    ),
    "POST /api/v1/intake": lambda c: Req(
        "POST",
        "/api/v1/intake",
        {**c.world.auth("operator"), **c.key()},
        {
            "phone": fresh_phone(),
            "name": "王秀英",
            "channel": "hotline",
            "urgent": False,
            "aid_type": "temporary_expenditure",
            "township_code": r.TOWNSHIP,
            "address": "秦楼街道泰安路88号",
            "location": {"lat": 35.42, "lng": 119.52},
            "description": "来电求助",
            "notes": "来电人情绪稳定",
            "reason": "突发疾病",
            "household_size": 2,
            "monthly_income_fen": 80_000,
        },
    ),
    "POST /api/v1/auth/sms-code": lambda c: Req(
        "POST", "/api/v1/auth/sms-code", {}, {"phone": fresh_phone()}
    ),
    "POST /api/v1/auth/token": lambda c: Req("POST", "/api/v1/auth/token", {}, c.sign_in_code()),
    "POST /api/v1/auth/staff-token": lambda c: Req(
        "POST", "/api/v1/auth/staff-token", {}, c.staff_login()
    ),
    "POST /api/v1/auth/refresh": lambda c: Req(
        "POST", "/api/v1/auth/refresh", {}, {"refresh_token": c.refresh_token()}
    ),
    "POST /api/v1/auth/logout": lambda c: Req(
        "POST", "/api/v1/auth/logout", {}, {"refresh_token": c.refresh_token()}
    ),
    "PATCH /api/v1/me": lambda c: Req(
        "PATCH",
        "/api/v1/me",
        c.fresh_resident_headers(),
        {
            "name": "王秀英",
            "id_number": VALID_ID_NUMBER,
            "residence_township_code": r.TOWNSHIP,
            "hukou_township_code": "371122001",
        },
    ),
    # One variant per action with fields, so each action's own fields meet the catalogue.
    "POST /api/v1/cases/{case_id}/actions": [
        lambda c: c.action(
            "claimed",
            {
                "action": "pay",
                "amount_fen": 50_000,
                "method": "cash",
                "reference": "凭证-001",
                "paid_at": (utcnow() - dt.timedelta(minutes=1)).isoformat(),
            },
        ),
        lambda c: c.action(
            "claimed",
            {"action": "approve", "amount_fen": 400_000, "note": "核实无误"},
            urgent=False,
        ),
        lambda c: c.action("claimed", {"action": "request_info", "message": "请提供住院证明"}),
        lambda c: c.action(
            "claimed",
            {"action": "transfer", "township_code": "371102002", "reason": "实际居住在石臼街道"},
        ),
        lambda c: c.action(
            "claimed",
            {"action": "refer", "department": "medical_insurance", "reason": "医疗费用报销"},
        ),
        lambda c: c.action("paid", {"action": "close", "note": "材料齐全"}),
    ],
    "POST /api/v1/cases/{case_id}/documents": lambda c: Req(
        "POST",
        c.action("claimed", {}).path.replace("/actions", "/documents"),
        f.auth(c.app, c.people().duty),
        multipart={
            "kind": "application",
            "note": "申请书",
            "file": (files.pdf(), "申请书.pdf", "application/pdf"),
        },
    ),
    "POST /api/v1/cases/{case_id}/commitment": lambda c: Req(
        "POST",
        c.action("claimed", {}).path.replace("/actions", "/commitment"),
        f.auth(c.app, c.people().resident),
        {"confirm": True, "text_sha256": commitment_text_hash()},
    ),
    "POST /api/v1/townships/{code}/queue/claim": lambda c: Req(
        "POST", f"/api/v1/townships/{r.TOWNSHIP}/queue/claim", c.world.auth("duty")
    ),
    "POST /api/v1/counties/{code}/triage/claim": lambda c: Req(
        "POST", f"/api/v1/counties/{r.COUNTY}/triage/claim", c.world.auth("supervisor")
    ),
    "PUT /api/v1/counties/{code}/aid-standards": lambda c: Req(
        "PUT",
        f"/api/v1/counties/{r.COUNTY}/aid-standards",
        c.world.auth("admin"),
        {
            "urban_monthly_fen": 95_000,
            "rural_monthly_fen": 75_000,
            "township_urgent_cap_fen": 300_000,
            "township_approval_cap_fen": 1_000_000,
        },
    ),
    "PUT /api/v1/calendar/overrides/{day}": lambda c: Req(
        "PUT",
        "/api/v1/calendar/overrides/2031-10-08",
        c.world.auth("admin"),
        {"workday": True, "note": "国庆调休"},
    ),
    "DELETE /api/v1/calendar/overrides/{day}": lambda c: Req(
        "DELETE", f"/api/v1/calendar/overrides/{c.calendar_day()}", c.world.auth("admin")
    ),
    "POST /api/v1/cases/{case_id}/callback-tasks/{task_id}/done": lambda c: Req(
        "POST", c.callback_task(), c.world.auth("duty"), {"note": "已电话联系居民"}
    ),
    "PUT /api/v1/admin/sms-templates/{name}": lambda c: Req(
        "PUT",
        "/api/v1/admin/sms-templates/closed",
        c.world.auth("admin"),
        {"text": "【指尖办】{case_no}已办结。"},
    ),
    "POST /api/v1/webhooks/twilio/status": lambda c: Req(
        "POST",
        "/api/v1/webhooks/twilio/status",
        form={"MessageSid": f"SM{uuid.uuid4().hex}", "MessageStatus": "delivered"},
        signed=True,
    ),
    "POST /api/v1/webhooks/twilio/inbound": lambda c: Req(
        "POST",
        "/api/v1/webhooks/twilio/inbound",
        form={"MessageSid": f"SM{uuid.uuid4().hex}", "From": fresh_phone(), "Body": "查询"},
        signed=True,
    ),
}

# Write operations whose request has no body or fields to vary: the body/path rows cover
# them. Each entry says why.
BODY_ROWS_ONLY: dict[str, str] = {}


# --- expectations -------------------------------------------------------------------------

REJECT = "reject"  # must be a 4xx
EITHER = "either"  # a 4xx, or accepted and round-tripped
ACCEPT = "accept"  # must be accepted and round-tripped intact


@dataclass
class Row:
    id: str
    build: Callable[[Req], Req]
    expect: str = REJECT
    status: int | None = None  # the exact 4xx, when it is fixed
    sent: Any = MISSING  # the text value to find intact in a 2xx response
    field: tuple[str, ...] = ()
    value: Any = MISSING  # the value a field row puts in
    kind: str = ""  # one of KINDS: counted apart in the reliability summary


OUT_OF_RANGE, REVERSED, SURROGATE = r.OUT_OF_RANGE, r.REVERSED, r.SURROGATE


def _with_body(raw: bytes, content_type: str | None = "application/json") -> Callable[[Req], Req]:
    def build(base: Req) -> Req:
        return Req(base.method, base.path, dict(base.headers), raw=raw, content_type=content_type)

    return build


def _with_json(value: Any) -> Callable[[Req], Req]:
    def build(base: Req) -> Req:
        return Req(base.method, base.path, dict(base.headers), value)

    return build


TEN_MB = 10 * 1024 * 1024

# Rows that need only the endpoint and an authorised caller.
BODY_ROWS: list[Row] = [
    Row("truncated-json", _with_body(b'{"address": "x'), status=400),
    Row("half-object", _with_body(b'{"address": '), status=400),
    Row("single-quotes", _with_body(b"{'address': 'x'}"), status=400),
    Row("trailing-comma", _with_body(b'{"address": "x",}'), status=400),
    Row("invalid-utf8", _with_body(b"\xff\xfe\xfd"), status=400),
    Row("invalid-utf8-in-string", _with_body(b'{"address": "\xc3\x28"}'), status=400),
    Row("overlong-utf8", _with_body(b'{"address": "\xc0\xaf"}'), status=400),
    Row("nul-outside-string", _with_body(b'{"address"\x00: "x"}'), status=400),
    Row("int-with-5000-digits", _with_body(b'{"n": ' + b"9" * 5000 + b"}"), status=400),
    Row("deep-arrays", _with_body(b"[" * 100_000 + b"]" * 100_000), status=400),
    Row("deep-objects", _with_body(b'{"a":' * 20_000 + b"1" + b"}" * 20_000), status=400),
    Row("ten-megabytes", _with_body(b'{"address": "' + b"x" * TEN_MB + b'"}'), status=413),
    Row("ten-megabytes-no-json", _with_body(b"x" * TEN_MB), status=413),
    Row("text-plain", _with_body(b"{}", "text/plain"), status=415),
    Row("form-encoded", _with_body(b"address=x", "application/x-www-form-urlencoded"), 415),
    Row("no-content-type", _with_body(b"{}", None), status=415),
    Row("array", _with_json([]), status=422),
    Row("array-of-object", _with_json([{}]), status=422),
    Row("string", _with_json("hello"), status=422),
    Row("null", _with_json(None), status=422),
    Row("number", _with_json(5), status=422),
    Row("true", _with_json(True), status=422),
    Row("nan-literal", _with_body(b'{"nan": NaN}'), status=422),
    Row("unknown-field-only", _with_json({"__proto__": {"admin": True}}), status=422),
    Row("empty-object", _with_json({}), expect=EITHER),
    Row("empty-body", _with_body(b""), expect=EITHER),
    Row("utf8-bom", _with_body(b"\xef\xbb\xbf{}"), expect=EITHER),
    Row("duplicate-keys", _with_body(b'{"a": 1, "a": 2}'), status=422),
    # JSON escapes of lone surrogates parse to text that cannot be encoded (UTF-8, the
    # database, the error body that would name the key).
    Row("surrogate-key", _with_body(b'{"\\ud800": 1}'), status=422, kind=SURROGATE),
    Row("surrogate-key-low", _with_body(b'{"a\\udfff": "x"}'), status=422, kind=SURROGATE),
    Row("surrogate-key-nested", _with_body(b'{"x": {"\\udbff": 1}}'), status=422, kind=SURROGATE),
    Row("surrogate-value-unknown", _with_body(b'{"y": ["\\ud800"]}'), status=422, kind=SURROGATE),
]


def _form(form: dict[str, str] | None = None, *, signed: bool = True, **kw: Any):
    def build(base: Req) -> Req:
        req = Req(base.method, base.path, dict(base.headers), **kw)
        req.form = dict(base.form or {}) if form is None else form
        req.signed = signed
        return req

    return build


def _forged(base: Req) -> Req:
    req = Req(base.method, base.path, {**base.headers, "X-Twilio-Signature": "Zm9yZ2Vk"})
    req.form = dict(base.form or {})
    return req


def _signed_for_other_url(base: Req) -> Req:
    form = dict(base.form or {})
    other = sign(PUBLIC_BASE_URL + "/api/v1/webhooks/other", form)
    req = Req(base.method, base.path, {**base.headers, "X-Twilio-Signature": other})
    req.form = form
    return req


def _signed_raw(raw: bytes, content_type: str) -> Callable[[Req], Req]:
    def build(base: Req) -> Req:
        # A valid signature over no parameters, and a body that is not the signed form.
        headers = {**base.headers, "X-Twilio-Signature": sign(PUBLIC_BASE_URL + base.path, {})}
        return Req(base.method, base.path, headers, raw=raw, content_type=content_type)

    return build


# Rows for form-encoded, signed webhooks: nothing unsigned gets in, nothing malformed breaks.
FORM_BODY_ROWS: list[Row] = [
    Row("unsigned", _form(signed=False), status=403),
    Row("forged-signature", _forged, status=403),
    Row("signed-for-another-url", _signed_for_other_url, status=403),
    Row("unsigned-ten-megabytes", _form({"Body": "x" * TEN_MB}, signed=False)),
    Row("signed-json-body", _signed_raw(b'{"MessageSid": "SM1"}', "application/json")),
    Row(
        "signed-invalid-utf8",
        _signed_raw(b"Body=\xff\xfe&From=%FF", "application/x-www-form-urlencoded"),
    ),
    Row("signed-empty-form", _form({})),
]


def _upload(file: Any = MISSING, **fields: Any) -> Callable[[Req], Req]:
    """The baseline upload with its file and fields replaced (MISSING drops one)."""

    def build(base: Req) -> Req:
        body = dict(base.multipart or {})
        for name, value in {**fields, "file": file}.items():
            if value is MISSING:
                if name != "file" or "file" in fields:
                    body.pop(name, None)
            else:
                body[name] = value
        return Req(base.method, base.path, dict(base.headers), multipart=body)

    return build


def _no_file(base: Req) -> Req:
    body = {k: v for k, v in (base.multipart or {}).items() if k != "file"}
    return Req(base.method, base.path, dict(base.headers), multipart=body)


_JPEG = files.jpeg_with_gps()

# Rows for the multipart upload: what a phone, a careless client or an attacker may send as a
# "file". Each must be refused with nothing stored (no row, no object), or stored cleaned.
UPLOAD_ROWS: list[Row] = [
    Row("text-renamed-jpg", _upload((files.TEXT, "photo.jpg", "image/jpeg")), status=422),
    Row("truncated-jpeg", _upload((files.truncated_jpeg(), "photo.jpg", "image/jpeg")), 422),
    Row("empty-file", _upload((b"", "photo.jpg", "image/jpeg")), status=422),
    Row(
        "ten-megabytes-and-one",
        _upload((_JPEG + b"\0" * (TEN_MB + 1 - len(_JPEG)), "big.jpg", "image/jpeg")),
        status=413,
    ),
    Row("html-as-png", _upload((b"<html><script>alert(1)</script>", "x.png", "image/png")), 422),
    Row("svg", _upload((b"<svg xmlns='http://www.w3.org/2000/svg'/>", "x.svg", None)), 422),
    Row("exe", _upload((b"MZ\x90\x00" + b"\0" * 60, "x.jpg", "image/jpeg")), status=422),
    Row("pdf-magic-only", _upload((b"%PDF-1.7\n%%EOF", "x.pdf", "application/pdf")), 422),
    Row("jpeg-magic-only", _upload((b"\xff\xd8\xff\xe0garbage", "x.jpg", None)), 422),
    Row("traversal-name", _upload((_JPEG, "../../../../etc/passwd", None)), expect=EITHER),
    Row("no-file-part", _no_file, status=422),
    Row("file-as-text-field", _upload("not a file"), status=422),
    Row("kind-missing", _upload(file=(_JPEG, "a.jpg", None), kind=MISSING), status=422),
    Row("kind-unknown", _upload(file=(_JPEG, "a.jpg", None), kind="passport"), status=422),
    Row("kind-uppercase", _upload(file=(_JPEG, "a.jpg", None), kind="APPLICATION"), 422),
    Row("kind-commitment", _upload(file=(_JPEG, "a.jpg", None), kind="commitment"), 422),
    Row("kind-empty", _upload(file=(_JPEG, "a.jpg", None), kind=""), status=422),
    Row("kind-as-file", _upload(file=(_JPEG, "a.jpg", None), kind=(b"other", "k", None)), 422),
    Row("note-too-long", _upload(file=(_JPEG, "a.jpg", None), note="长" * 501), status=422),
    Row("note-nul", _upload(file=(_JPEG, "a.jpg", None), note="a\x00b"), expect=EITHER),
    Row("note-unknown-field", _upload(file=(_JPEG, "a.jpg", None), extra="x"), status=422),
    Row(
        "note-emoji",
        _upload(file=(_JPEG, "a.jpg", None), note="😀𠀀 收据"),
        expect=ACCEPT,
        sent="😀𠀀 收据",
        field=("note",),
    ),
]


# Values that are not IDs, for every path parameter.
PATH_VALUES = [
    "not-an-id",
    "0",
    "-1",
    "99999999999999999999999999",
    "1 OR 1=1",
    "' OR ''='",
    "..%2F..%2Fetc%2Fpasswd",
    "%00",
    "%F0%A0%80%80",  # 𠀀
    "%E6%A1%88%E4%BB%B6",  # 案件
    "x" * 2000,
    str(uuid.UUID(int=0)),
    str(uuid.uuid4()),
    "{{7*7}}",
]

# Text that must be stored as text and come back unchanged (or be refused cleanly).
TEXT_VALUES = [
    ("emoji", "😀🙏🏽👨‍👩‍👧"),
    ("rare-cjk", "𠀀𪚥𡃁"),
    ("mixed-script", "王𠀀 Ōe 😀 ﻿x"),
    ("sql-drop", "'; DROP TABLE cases; --"),
    ("sql-or", '" OR 1=1 --'),
    ("sql-union", "1 UNION SELECT password_hash FROM accounts"),
    ("jinja", "{{ 7*7 }}{% raw %}"),
    ("format-string", "{0.__class__} %s %n ${7*7}"),
    ("html", "<script>alert(1)</script>"),
    ("rtl-override", "abc\u202edef"),
    ("backslashes", "C:\\\\Windows\\system32"),
]


# --- field rows from the request schema ----------------------------------------------------


def _resolve(schema: dict[str, Any]) -> dict[str, Any]:
    while "$ref" in schema:
        name = schema["$ref"].rsplit("/", 1)[-1]
        schema = r.spec()["components"]["schemas"][name]
    return schema


def body_schema(op: dict[str, Any]) -> dict[str, Any] | None:
    content = (op.get("requestBody") or {}).get("content", {})
    media = content.get("application/json") or content.get("application/x-www-form-urlencoded")
    return _resolve(media["schema"]) if media else None


def is_multipart(op: dict[str, Any]) -> bool:
    return "multipart/form-data" in (op.get("requestBody") or {}).get("content", {})


def is_form(op: dict[str, Any]) -> bool:
    return "application/x-www-form-urlencoded" in (op.get("requestBody") or {}).get("content", {})


def _set(body: Any, path: tuple[str, ...], value: Any) -> Any:
    body = json.loads(json.dumps(body))
    target = body
    for key in path[:-1]:
        target = target[key]
    if value is MISSING:
        target.pop(path[-1], None)
    else:
        target[path[-1]] = value
    return body


def _field_row(path: tuple[str, ...], name: str, value: Any, expect: str, **kw: Any) -> Row:
    def build(base: Req) -> Req:
        if base.form is not None:
            # Forms carry only text: non-text values are sent as their JSON text.
            text = value if value is MISSING or isinstance(value, str) else json.dumps(value)
            req = Req(base.method, base.path, dict(base.headers), signed=base.signed)
            req.form = _set(base.form, path, "" if value is None else text)
            return req
        return Req(base.method, base.path, dict(base.headers), _set(base.json, path, value))

    sent = value if isinstance(value, str) else MISSING
    return Row(f"{'.'.join(path)}:{name}", build, expect, sent=sent, field=path, value=value, **kw)


def _string_rows(path: tuple[str, ...], schema: dict[str, Any]) -> list[Row]:
    rows = []
    if "enum" in schema:
        rows += [
            _field_row(path, "unknown-enum", "definitely_not_a_value", REJECT),
            _field_row(path, "enum-uppercase", str(schema["enum"][0]).upper(), REJECT),
            _field_row(path, "enum-padded", f" {schema['enum'][0]} ", EITHER),
        ]
    if schema.get("format") == "date-time":
        return rows + [
            _field_row(path, "future", "2999-01-01T08:00:00+08:00", EITHER),
            _field_row(path, "before-1900", "1899-12-31T23:59:59+08:00", REJECT),
            _field_row(path, "year-1", "0001-01-01T00:00:00+00:00", REJECT),
            *_out_of_range(path, DATETIMES_OUT_OF_RANGE),
            _field_row(path, "naive", "2026-11-23T08:00:00", REJECT),
            _field_row(path, "utc-z", "2026-11-23T00:00:00Z", EITHER),
            _field_row(path, "offset+14", "2026-11-23T08:00:00+14:00", EITHER),
            _field_row(path, "offset-12", "2026-11-22T08:00:00-12:00", EITHER),
            _field_row(path, "feb-30", "2026-02-30T08:00:00+08:00", REJECT),
            _field_row(path, "not-a-date", "yesterday", REJECT),
            _field_row(path, "epoch-number", 1_700_000_000, REJECT),
        ]
    if schema.get("format") == "date":
        return rows + [
            *_out_of_range(path, DATES_OUT_OF_RANGE),
            _field_row(path, "feb-30", "2026-02-30", REJECT),
            _field_row(path, "not-a-date", "yesterday", REJECT),
        ]
    if "pattern" in schema:
        rows += [
            _field_row(path, "fullwidth-digits", "３７１１０２００４", REJECT),
            _field_row(path, "pattern-mismatch", "ABC", REJECT),
        ]
    max_len = schema.get("maxLength")
    rows += [
        _field_row(path, "empty", "", EITHER),
        _field_row(path, "whitespace", " \t ", EITHER),
        _field_row(path, "nul", "a\x00b", EITHER),
        _field_row(path, "bell", "a\x07b", EITHER),
        _field_row(path, "newline", "a\nb", EITHER),
        _field_row(path, "lone-surrogate", "a\ud800b", REJECT, status=422, kind=SURROGATE),
        _field_row(path, "lone-low-surrogate", "\udc00", REJECT, status=422, kind=SURROGATE),
        _field_row(path, "zero-width", "\u200b", EITHER),
        _field_row(path, "number", 12345, REJECT),
        _field_row(path, "object", {"$ne": ""}, REJECT),
        _field_row(path, "array", ["x"], REJECT),
        _field_row(path, "very-long", "长" * 100_000, REJECT),
    ]
    if max_len:
        rows.append(_field_row(path, "max-length+1", "x" * (max_len + 1), REJECT))
    if "enum" not in schema and "pattern" not in schema:
        rows += [_field_row(path, name, value, EITHER) for name, value in TEXT_VALUES]
    return rows


# Dates and times the service cannot hold: they overflow when converted to UTC or moved by a
# day, or lie outside the years the service works in (2000-2100).
DATES_OUT_OF_RANGE = [
    ("year-1", "0001-01-01"),
    ("year-9999", "9999-12-31"),
    ("before-2000", "1999-12-31"),
    ("after-2100", "2101-01-01"),
]
DATETIMES_OUT_OF_RANGE = [
    ("year-9999-west", "9999-12-31T23:00:00-05:00"),
    ("year-9999-utc", "9999-12-31T23:59:59+00:00"),
    ("year-1-east", "0001-01-01T00:30:00+08:00"),
    ("before-2000", "1999-12-31T23:59:59+08:00"),
    ("after-2100", "2101-01-01T00:00:00+08:00"),
]


def _out_of_range(path: tuple[str, ...], values: list[tuple[str, str]]) -> list[Row]:
    return [
        _field_row(path, name, value, REJECT, status=422, kind=OUT_OF_RANGE)
        for name, value in values
    ]


def _number_rows(path: tuple[str, ...], schema: dict[str, Any]) -> list[Row]:
    bounded_above = "maximum" in schema
    rows = [
        _field_row(path, "negative", -1, REJECT if schema.get("minimum", -1) >= 0 else EITHER),
        _field_row(path, "huge-2^63", 2**63, REJECT if bounded_above else EITHER),
        _field_row(path, "huge-10^30", 10**30, REJECT if bounded_above else EITHER),
        _field_row(path, "string", "100", EITHER),
        _field_row(path, "string-words", "一百", REJECT),
        _field_row(path, "boolean", True, EITHER),
        _field_row(path, "object", {}, REJECT),
        _field_row(path, "array", [1], REJECT),
    ]
    if schema.get("type") == "integer":
        rows.append(_field_row(path, "float", 1.5, REJECT))
    else:
        rows.append(_field_row(path, "too-precise", 35.123456789012345678, EITHER))
    if "minimum" in schema:
        rows.append(_field_row(path, "below-minimum", schema["minimum"] - 1, REJECT))
    if bounded_above:
        rows.append(_field_row(path, "above-maximum", schema["maximum"] + 1, REJECT))
    for row in rows:
        row.sent = MISSING  # a number sent as a string comes back as a number
    return rows


def _field_rows(
    schema: dict[str, Any],
    baseline: Any,
    prefix: tuple[str, ...] = (),
    only: set[str] | None = None,
) -> list[Row]:
    rows: list[Row] = []
    required = set(schema.get("required", []))
    if schema.get("additionalProperties") is False and only is None:
        rows.append(_field_row((*prefix, "unexpected_field"), "extra-field", "x", REJECT))
    for name, prop in schema.get("properties", {}).items():
        if only is not None and name not in only:
            continue
        path = (*prefix, name)
        prop = _resolve(prop)
        if prop.get("readOnly"):
            continue
        if name in required:
            rows.append(_field_row(path, "missing", MISSING, REJECT))
        elif isinstance(baseline, dict) and name in baseline:
            rows.append(_field_row(path, "absent", MISSING, EITHER))
        rows.append(_field_row(path, "null", None, EITHER if prop.get("nullable") else REJECT))
        kind = prop.get("type")
        if kind == "string":
            rows += _string_rows(path, prop)
        elif kind in {"integer", "number"}:
            rows += _number_rows(path, prop)
        elif kind == "boolean":
            rows += [
                _field_row(path, "string", "maybe", REJECT),
                _field_row(path, "object", {}, REJECT),
                _field_row(path, "number-2", 2, REJECT),
            ]
        elif kind == "object" or "properties" in prop:
            rows += [
                _field_row(path, "string", "x", REJECT),
                _field_row(path, "array", [], REJECT),
            ]
            if isinstance(baseline, dict) and isinstance(baseline.get(name), dict):
                rows += _field_rows(prop, baseline[name], path)
        elif kind == "array":
            rows += [
                _field_row(path, "string", "x", REJECT),
                _field_row(path, "object", {}, REJECT),
            ]
    return rows


def _header_rows(op: dict[str, Any]) -> list[Row]:
    rows = []
    for param in op.get("parameters", []):
        if param.get("in") != "header":
            continue
        name = param["name"]
        for label, value in [
            ("empty", ""),
            ("space", "a b"),
            ("too-long", "k" * 101),
            ("latin1", "clé"),
            ("sql", "'; DROP TABLE idempotency_keys; --"),
        ]:

            def build(base: Req, name: str = name, value: str = value) -> Req:
                return Req(base.method, base.path, {**base.headers, name: value}, base.json)

            rows.append(Row(f"header {name}:{label}", build, EITHER))
    return rows


_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")


def _date_path_rows(path: str, world: r.World) -> list[Row]:
    """Out-of-range dates for every path parameter that takes a date."""
    known = world.known_path_values()
    rows = []
    for name in r.path_params(path):
        if not _DATE.match(known.get(name, "")):
            continue
        for label, value in DATES_OUT_OF_RANGE:

            def build(req: Req, name: str = name, value: str = value) -> Req:
                concrete = path
                for other in r.path_params(path):
                    concrete = concrete.replace(
                        "{" + other + "}", value if other == name else known.get(other, "x")
                    )
                return Req(req.method, concrete, dict(req.headers), req.json)

            rows.append(Row(f"path {name}:{label}", build, status=422, kind=OUT_OF_RANGE))
    return rows


# --- query parameters ---------------------------------------------------------------------

# Names of the two ends of a range, wherever a request carries both.
RANGE_PAIRS = [("from", "to"), ("since", "until"), ("start", "end"), ("starts_at", "ends_at")]


def _query_params(op: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {
        p["name"]: _resolve(p.get("schema", {}))
        for p in op.get("parameters", [])
        if p.get("in") == "query"
    }


def _with_query(**query: str) -> Callable[[Req], Req]:
    def build(base: Req) -> Req:
        return Req(base.method, f"{base.path}?{urlencode(query)}", dict(base.headers), base.json)

    return build


def query_rows(op: dict[str, Any]) -> list[Row]:
    """Out-of-range dates in every date query parameter; reversed ranges for every pair."""
    params = _query_params(op)
    rows = []
    for name, schema in params.items():
        values = {"date": DATES_OUT_OF_RANGE, "date-time": DATETIMES_OUT_OF_RANGE}.get(
            schema.get("format", ""), []
        )
        for label, value in values:
            rows.append(
                Row(
                    f"query {name}:{label}",
                    _with_query(**{name: value}),
                    status=422,
                    kind=OUT_OF_RANGE,
                )
            )
    for start, end in RANGE_PAIRS:
        if start not in params or end not in params:
            continue
        fmt = params[start].get("format")
        early, late = ("2026-05-01", "2026-05-02")
        if fmt == "date-time":
            early, late = (f"{early}T08:00:00+08:00", f"{late}T08:00:00+08:00")
        far = "2099-12-01" if fmt == "date" else "2099-12-01T08:00:00+08:00"
        rows += [
            Row(
                f"query {start}>{end}",
                _with_query(**{start: late, end: early}),
                status=422,
                kind=REVERSED,
            ),
            # The end left out defaults to now: a start after it is as reversed.
            Row(f"query {start}>now", _with_query(**{start: far}), status=422, kind=REVERSED),
            Row(f"query {start}={end}", _with_query(**{start: early, end: early}), EITHER),
        ]
    return rows


def _query_labels() -> list[str]:
    return sorted(f"{m} {p}" for m, p, op in r.operations() if query_rows(op))


# --- running ------------------------------------------------------------------------------

_FLASK_PARAM = re.compile(r"<(?:[^:<>]+:)?([^<>]+)>")


def url_map_write_operations(app: Any) -> set[str]:
    """METHOD path of every write route the API serves (path in OpenAPI form); the console's
    forms are pages, not API operations (tests/console)."""
    found = set()
    for rule in app.url_map.iter_rules():
        if rule.rule.startswith("/console/"):
            continue
        for method in rule.methods or ():
            if method.lower() in r.WRITE:
                path = _FLASK_PARAM.sub(r"{\1}", rule.rule)
                found.add(f"{method} {path}")
    return found


def allowed_role(op: dict[str, Any]) -> str:
    """A role the operation accepts, read from its documented 401/403 responses."""
    responses = op.get("responses", {})
    if "401" not in responses:
        return "anonymous"
    forbidden = responses.get("403", {}).get("description", "")
    match = re.search(r"允许：([a-z_, ]+)", forbidden)
    if match:
        return match.group(1).split(",")[0].strip()
    return "resident"


def _default_request(method: str, path: str, op: dict[str, Any], world: r.World) -> Req:
    known = world.known_path_values()
    concrete = path
    for name in r.path_params(path):
        concrete = concrete.replace("{" + name + "}", known.get(name, "x"))
    return Req(method, concrete, world.auth(allowed_role(op)), {})


def _at(payload: Any, path: tuple[str, ...]) -> Any:
    """The value at ``path`` of a JSON document, or MISSING."""
    for key in path:
        if not isinstance(payload, dict) or key not in payload:
            return MISSING
        payload = payload[key]
    return payload


def _stored_objects(app: Any) -> int:
    """Files in the app's document store (the filesystem store of the tests)."""
    from pathlib import Path

    return sum(1 for p in Path(app.config["DOCUMENT_DIR"]).rglob("*") if p.is_file())


def _cases_without_events(session: Any) -> int:
    has_event = select(CaseEvent.case_id).where(CaseEvent.case_id == Case.id).exists()
    return session.scalar(select(func.count()).select_from(Case).where(~has_event)) or 0


def run_rows(ctx: Ctx, label: str, op: dict[str, Any], base: Callable[[], Req], rows: list[Row]):
    """Send every row; return the list of failures (row id, reason)."""
    client = ctx.app.test_client()
    documented = r.documented_statuses(op)
    failures: list[str] = []
    for row in rows:
        req = row.build(base())
        before = r.row_counts(ctx.session)
        objects = _stored_objects(ctx.app)
        eventless = _cases_without_events(ctx.session)
        resp = req.send(client)
        r.STATS["bad inputs"] += 1
        if row.kind:
            r.STATS[row.kind] += 1
        status = resp.status_code
        problem = None
        try:
            if status >= 500:
                problem = f"{status} {resp.get_data()[:300]!r}"
            elif status not in documented:
                problem = f"undocumented status {status}"
            elif status >= 400:
                r.assert_error_shape(resp)
                after = r.row_counts(ctx.session)
                changed = {t: (before[t], after[t]) for t in before if before[t] != after[t]}
                if changed:
                    problem = f"{status} but rows written: {changed}"
                elif _stored_objects(ctx.app) != objects:
                    problem = f"{status} but a document file was left in the store"
                elif row.expect == ACCEPT:
                    problem = f"refused ({status}) {resp.get_json()}"
                elif row.status and status != row.status:
                    problem = f"expected {row.status}, got {status} {resp.get_json()}"
            elif row.expect == REJECT:
                problem = f"accepted ({status}) what must be refused"
            elif isinstance(row.sent, str) and row.field:
                # Text comes back exactly as sent (NFC, trimmed) where the response shows
                # the field at the same place; masked fields are checked in the database
                # by the explicit tests below.
                expected = unicodedata.normalize("NFC", row.sent).strip()
                returned = _at(resp.get_json(silent=True), row.field)
                if expected and returned is not MISSING and returned != expected:
                    problem = f"round trip: sent {expected!r}, got {returned!r}"
            if problem is None and _cases_without_events(ctx.session) > eventless:
                problem = "a case without timeline events (half-written)"
        except AssertionError as exc:
            problem = f"error shape: {exc}"
        if problem:
            failures.append(f"{label} [{row.id}]: {problem}")
    return failures


# --- tests --------------------------------------------------------------------------------


def _write_labels() -> list[str]:
    return sorted(f"{m} {p}" for m, p, _ in r.write_operations())


def _op(label: str) -> tuple[str, str, dict[str, Any]]:
    method, path = label.split(" ", 1)
    return method, path, r.spec()["paths"][path][method.lower()]


@pytest.fixture
def ctx(app, session):
    return Ctx(app=app, session=session, world=r.seed_world(app, session))


def test_every_write_route_is_documented(app) -> None:
    """A write route missing from the spec would escape both the fuzzer and this catalogue."""
    served = url_map_write_operations(app)
    assert served == set(_write_labels()), served ^ set(_write_labels())


def test_every_write_operation_has_rows() -> None:
    """New write endpoints fail here until they have a baseline (or a reason to need none)."""
    missing = [
        label for label in _write_labels() if label not in BASELINES and label not in BODY_ROWS_ONLY
    ]
    assert not missing, f"add a BASELINES entry in {__name__} for: {missing}"
    stale = [label for label in BASELINES if label not in _write_labels()]
    assert not stale, f"baselines for operations that no longer exist: {stale}"


def variants(label: str) -> list[Callable[[Ctx], Req]]:
    found = BASELINES.get(label, [])
    return found if isinstance(found, list) else [found]


def test_baselines_succeed(ctx) -> None:
    ctx.app.config.update(TWILIO_AUTH_TOKEN=AUTH_TOKEN, PUBLIC_BASE_URL=PUBLIC_BASE_URL)
    client = ctx.app.test_client()
    for label in BASELINES:
        for i, build in enumerate(variants(label)):
            resp = build(ctx).send(client)
            assert resp.status_code < 300, (label, i, resp.status_code, resp.get_json(silent=True))


@pytest.mark.parametrize("label", _write_labels())
def test_bad_inputs(ctx, label: str) -> None:
    """Every row of the catalogue against one write operation."""
    method, path, op = _op(label)
    builders = variants(label) or [lambda c: _default_request(method, path, op, c.world)]

    def base() -> Req:
        return builders[0](ctx)

    rows: list[Row] = []
    if is_form(op):
        ctx.app.config.update(TWILIO_AUTH_TOKEN=AUTH_TOKEN, PUBLIC_BASE_URL=PUBLIC_BASE_URL)
        rows += FORM_BODY_ROWS
    elif op.get("requestBody"):
        rows += BODY_ROWS
    if is_multipart(op):
        rows += UPLOAD_ROWS
    for name in r.path_params(path):
        for value in PATH_VALUES:

            def build(req: Req, name: str = name, value: str = value) -> Req:
                known = ctx.world.known_path_values()
                concrete = path
                for other in r.path_params(path):
                    concrete = concrete.replace(
                        "{" + other + "}", value if other == name else known.get(other, "x")
                    )
                return Req(req.method, concrete, dict(req.headers), req.json)

            rows.append(Row(f"path {name}={value[:20]}", build, REJECT))
    rows += _date_path_rows(path, ctx.world)
    rows += _header_rows(op)
    failures = run_rows(ctx, label, op, base, rows)
    schema = body_schema(op)
    for i, build in enumerate(variants(label) if schema else []):
        baseline = build(ctx)
        body = baseline.form if is_form(op) else baseline.json
        # Further variants vary only the fields they send (the first covers the rest).
        field_rows = _field_rows(schema, body, only=set(body) if i else None)
        if is_form(op):
            for row in field_rows:
                if row.value is not MISSING and not isinstance(row.value, str):
                    row.expect = EITHER  # a form carries only text: 12345 is a valid string
                if row.kind == SURROGATE:
                    # A form is bytes: a surrogate goes out as invalid UTF-8, which the
                    # signature check or the field refuses (403 or 422).
                    row.status = None
        tag = f"{label}#{i}" if i else label
        failures += run_rows(ctx, tag, op, lambda build=build: build(ctx), field_rows)
    r.STATS["bad-input endpoints"] += 1
    assert not failures, "\n" + "\n".join(failures)


def test_query_rows_cover_the_date_operations() -> None:
    """The SLA report's from/to are dates: the query rows must reach them (and its pair)."""
    assert "GET /api/v1/counties/{code}/sla" in _query_labels()
    kinds = {row.kind for row in query_rows(_op("GET /api/v1/counties/{code}/sla")[2])}
    assert {OUT_OF_RANGE, REVERSED} <= kinds


@pytest.mark.parametrize("label", _query_labels())
def test_bad_query_inputs(ctx, label: str) -> None:
    """Every query row against every operation (reads included) taking dates or a range."""
    method, path, op = _op(label)

    def base() -> Req:
        # A county's report wants a county (the world's default ``code`` is its township).
        where = path.replace("/counties/{code}", f"/counties/{r.COUNTY}")
        req = _default_request(method, where, op, ctx.world)
        return req if method in {"POST", "PUT", "PATCH"} else Req(method, req.path, req.headers)

    failures = run_rows(ctx, label, op, base, query_rows(op))
    r.STATS["bad-input endpoints"] += 1
    assert not failures, "\n" + "\n".join(failures)


def _input_schemas(app: Any) -> list[ma.Schema]:
    """The argument schemas of every view (json, query, headers), as flask-smorest keeps them."""
    found = []
    for view in app.view_functions.values():
        view_class = getattr(view, "view_class", None)
        for method in getattr(view_class, "methods", None) or ():
            doc = getattr(getattr(view_class, method.lower()), "_apidoc", {})
            for param in doc.get("arguments", {}).get("parameters", []):
                schema = param["schema"]
                found.append(schema() if isinstance(schema, type) else schema)
    return found


def _date_fields(schema: ma.Schema, prefix: str) -> list[tuple[str, Any]]:
    fields = []
    for name, fld in schema.fields.items():
        if fld.dump_only:
            continue
        inner = getattr(fld, "inner", None) or fld
        if isinstance(inner, ma.fields.Nested):
            fields += _date_fields(inner.schema, f"{prefix}.{name}")
        elif isinstance(inner, ma.fields.Date | ma.fields.DateTime):
            fields.append((f"{prefix}.{name}", inner))
    return fields


def test_every_date_input_is_bounded(app) -> None:
    """A date or time a client sends goes through LocalDate/LocalDateTime (2000-2100): a plain
    marshmallow Date or DateTime takes year 1 or 9999, which overflow further on."""
    from server.api import LocalDate, LocalDateTime

    schemas = _input_schemas(app)
    assert len(schemas) > 15
    inputs = [f for s in schemas for f in _date_fields(s, type(s).__name__)]
    assert {"SlaArgsSchema.since", "CaseActionSchema.paid_at"} <= {name for name, _ in inputs}
    unbounded = [name for name, fld in inputs if not isinstance(fld, LocalDate | LocalDateTime)]
    assert not unbounded, unbounded
