"""Abuse, black-box: brute force, SMS pumping, enumeration, region escape, forged webhooks,
a hammered one-tap button — and the first urgent request of a person is never refused.

tests/accounts/test_auth_limits.py and tests/accounts/test_auth.py test each limit on its own;
these run the attacker's script end to end against the real endpoints and check what got through.
"""

from __future__ import annotations

import uuid

from sqlalchemy import func, select

from notifications.models import SmsOutbox
from server.cases.models import Case
from tests import factories as f
from tests.fake_twilio import AUTH_TOKEN, PUBLIC_BASE_URL
from tests.reliability import support as r
from tests.signin import latest_code


def _outbox(session, phone=None, template=None):
    q = select(func.count()).select_from(SmsOutbox)
    if phone:
        q = q.where(SmsOutbox.to_phone == phone)
    if template:
        q = q.where(SmsOutbox.template == template)
    return session.scalar(q)


def test_sign_in_code_brute_force_is_stopped(app, client, session):
    """Guessing codes: the code dies after a few wrong tries, the right one then fails too."""
    phone = "+8613755550001"
    assert client.post("/api/v1/auth/sms-code", json={"phone": phone}).status_code == 202
    real = latest_code(session, phone)
    statuses = []
    for guess in range(30):
        code = f"{guess:06d}"
        if code == real:
            continue
        resp = client.post("/api/v1/auth/token", json={"phone": phone, "code": code})
        r.assert_error_shape(resp)
        statuses.append(resp.status_code)
    assert all(s in {401, 429} for s in statuses), statuses
    resp = client.post("/api/v1/auth/token", json={"phone": phone, "code": real})
    assert resp.status_code in {401, 429}, "a code survived 29 wrong guesses"
    # 10^6 codes, a handful of tries per code, a few codes per phone a day: a guess succeeds
    # with probability well under 1e-4 a day.


def test_sms_pumping_from_one_client_is_capped(app, client, session):
    """One client asking codes for many numbers: the per-client limit caps the SMS sent."""
    app.config["RATELIMIT_SMS_PER_CLIENT"] = "5/hour"
    codes = []
    for i in range(20):
        resp = client.post("/api/v1/auth/sms-code", json={"phone": f"+8613755560{i:03d}"})
        codes.append(resp.status_code)
        if resp.status_code == 429:
            assert r.assert_error_shape(resp)["code"] == "rate_limited"
            assert int(resp.headers["Retry-After"]) > 0
    assert codes.count(202) == 5 and codes.count(429) == 15, codes
    assert _outbox(session, template="sign_in_code") == 5


def test_case_ids_are_unguessable_and_others_cases_are_404(app, client, session):
    world = r.seed_world(app, session)
    ids = [uuid.UUID(world.case_id), uuid.UUID(world.other_case_id)]
    # UUIDv7 (server.cases.models.new_case_id): the time, then 74 random bits. Two cases
    # made one after the other share nothing after the time: no id is the next of another.
    assert all(i.version == 7 for i in ids), "case ids must be UUIDv7 with 74 random bits"
    low = [i.int & (2**62 - 1) for i in ids]
    assert low[0] != low[1] and abs(low[0] - low[1]) > 2**32
    me = world.auth("resident")
    own = client.get(f"/api/v1/cases/{world.case_id}", headers=me)
    assert own.status_code == 200
    others = client.get(f"/api/v1/cases/{world.other_case_id}", headers=me)
    missing = client.get(f"/api/v1/cases/{uuid.uuid4()}", headers=me)
    assert others.status_code == missing.status_code == 404
    assert others.get_json() == missing.get_json(), "a 404 must not reveal that the case exists"
    listed = client.get("/api/v1/cases", headers=me).get_json()["items"]
    assert [c["id"] for c in listed] == [world.case_id]
    # A resident acting on someone else's case learns nothing either.
    act = client.post(
        f"/api/v1/cases/{world.other_case_id}/actions", json={"action": "withdraw"}, headers=me
    )
    assert act.status_code == 404


def test_staff_token_outside_its_region_sees_and_does_nothing(app, client, session):
    world = r.seed_world(app, session)
    outsider_duty = f.auth(app, f.staff(session, role="duty", region=r.OTHER_TOWNSHIP))
    outsider_sup = f.auth(app, f.staff(session, role="supervisor", region="371122"))
    case = f"/api/v1/cases/{world.case_id}"
    for headers in (outsider_duty, outsider_sup):
        assert client.get(case, headers=headers).status_code == 404
        resp = client.post(f"{case}/actions", json={"action": "release"}, headers=headers)
        assert resp.status_code == 404
        listed = client.get("/api/v1/cases", headers=headers).get_json()["items"]
        assert world.case_id not in {c["id"] for c in listed}
    claim = client.post(f"/api/v1/townships/{r.TOWNSHIP}/queue/claim", headers=outsider_duty)
    assert claim.status_code in {403, 404}
    triage = client.post(f"/api/v1/counties/{r.COUNTY}/triage/claim", headers=outsider_sup)
    assert triage.status_code in {403, 404}
    # A token whose region claim was edited is not a token (signature).
    token = outsider_duty["Authorization"].split()[1]
    head, body, sig = token.split(".")
    forged = {"Authorization": f"Bearer {head}.{body[:-2]}AA.{sig}"}
    assert client.get(case, headers=forged).status_code == 401
    assert session.get(Case, uuid.UUID(world.case_id)).status == "queued"


def test_unsigned_webhooks_change_nothing(app, client, session):
    """A forged inbound '求助' SMS and a forged delivery receipt: 403 and no row anywhere."""
    app.config.update(TWILIO_AUTH_TOKEN=AUTH_TOKEN, PUBLIC_BASE_URL=PUBLIC_BASE_URL)
    before = r.row_counts(session)
    for path, form, headers in [
        (
            "/api/v1/webhooks/twilio/inbound",
            {"MessageSid": "SM1", "From": "+8613755570001", "Body": "求助"},
            {},
        ),
        (
            "/api/v1/webhooks/twilio/inbound",
            {"MessageSid": "SM2", "From": "+8613755570001", "Body": "求助"},
            {"X-Twilio-Signature": "x"},
        ),
        (
            "/api/v1/webhooks/twilio/status",
            {"MessageSid": "SM3", "MessageStatus": "delivered"},
            {"X-Twilio-Signature": "AAAA"},
        ),
    ]:
        resp = client.post(path, data=form, headers=headers)
        assert resp.status_code == 403
        r.assert_error_shape(resp)
    assert r.row_counts(session) == before


def test_hammered_tap_is_limited_but_never_the_first_urgent_request(app, client, session):
    app.config["RATELIMIT_URGENT_PER_RESIDENT"] = "3/minute"
    me = f.resident(session)
    auth = f.auth(app, me)
    tap = {"township_code": r.TOWNSHIP}
    first = client.post(
        "/api/v1/urgent-requests", json=tap, headers={**auth, "Idempotency-Key": "k0"}
    )
    assert first.status_code == 201
    # Retries of that one tap (same key) are never limited.
    for _ in range(6):
        again = client.post(
            "/api/v1/urgent-requests", json=tap, headers={**auth, "Idempotency-Key": "k0"}
        )
        assert again.status_code == 200 and again.get_json()["id"] == first.get_json()["id"]
    # New taps while the case is open: a few pass (they land on the same case), then 429.
    codes = [
        client.post(
            "/api/v1/urgent-requests", json=tap, headers={**auth, "Idempotency-Key": f"k{i}"}
        ).status_code
        for i in range(1, 8)
    ]
    assert codes[:3] == [200] * 3 and set(codes[3:]) == {429}, codes
    assert (
        session.scalar(select(func.count()).select_from(Case).where(Case.resident_id == me.id)) == 1
    )

    # Someone else's first urgent request is never limited, however hard others hammer.
    other = f.auth(app, f.resident(session))
    resp = client.post(
        "/api/v1/urgent-requests", json=tap, headers={**other, "Idempotency-Key": "x"}
    )
    assert resp.status_code == 201

    # Once the case is closed the person's next emergency is a first request again.
    case = session.get(Case, uuid.UUID(first.get_json()["id"]))
    case.status = "closed"
    session.flush()
    resp = client.post(
        "/api/v1/urgent-requests", json=tap, headers={**auth, "Idempotency-Key": "k9"}
    )
    assert resp.status_code == 201, resp.get_json()
