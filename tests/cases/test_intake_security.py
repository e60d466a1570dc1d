"""Intake across regions and people (issue 19): what a staff caller may join, see and write;
an ID number that is only claimed; the paging loop; keyed fingerprints; retries of a tap
that joined a case which has since ended."""

from __future__ import annotations

import hashlib
import json
import uuid

from sqlalchemy import func, select

from notifications.models import SmsOutbox
from server.accounts.models import Account
from server.audit import AuditEntry
from server.cases.models import Case, CaseEvent, IdempotencyKey
from tests import factories as f
from tests.conftest import SENSITIVE

ID = "371102199001011232"
SENSITIVE.add(ID)
LANSHAN = "371103001"  # 岚山头街道, 岚山区
GRID_TOWNSHIP = "371102001"  # 日照街道, 东港区


def _events(session, case_id):
    return session.scalars(
        select(CaseEvent).where(CaseEvent.case_id == uuid.UUID(str(case_id))).order_by(CaseEvent.id)
    ).all()


def _actions(session, case_id):
    return [e.action for e in _events(session, case_id)]


def _pages(session, case_id):
    return session.scalars(
        select(SmsOutbox.to_phone).where(
            SmsOutbox.case_id == uuid.UUID(str(case_id)), SmsOutbox.template == "duty_page"
        )
    ).all()


def _tap(client, app, who, key=None, **body):
    headers = f.auth(app, who)
    if key:
        headers["Idempotency-Key"] = key
    return client.post("/api/v1/urgent-requests", json=body, headers=headers)


def _linked(session, case_id, other_id):
    links = [e for e in _events(session, case_id) if e.action == "possible_duplicate"]
    assert [e.data["case_id"] for e in links] == [str(other_id)]
    assert all(not e.resident_visible for e in links)
    return links[0]


# --- 1. a staff caller never joins, sees or writes a case outside their view --------------


def test_grid_worker_never_joins_or_sees_an_open_case_in_another_district(app, client, session):
    me = f.resident(session, phone="+8613812340011")
    theirs = _tap(
        client, app, me, township_code=LANSHAN, description="岚山的家里进水", address="岚山头某村"
    )
    assert theirs.status_code == 201
    old_id = theirs.get_json()["id"]
    duty = f.staff(session, role="duty", region=GRID_TOWNSHIP, phone="+8613900000111")
    f.on_duty(session, duty)
    grid = f.staff(session, role="grid_worker", region=GRID_TOWNSHIP)
    resp = client.post(
        "/api/v1/intake",
        json={
            "phone": "13812340011",
            "channel": "proactive_discovery",
            "urgent": True,
            "notes": "网格员走访发现",
        },
        headers=f.auth(app, grid),
    )
    assert resp.status_code == 201, resp.get_json()
    body = resp.get_json()
    assert body["id"] != old_id and body.get("duplicate_of") is None
    assert body["township"]["code"] == GRID_TOWNSHIP
    text = json.dumps(body, ensure_ascii=False)
    # of the other case, only its id (for the supervisors; the grid worker gets a 404 on it)
    assert "岚山" not in text and "进水" not in text
    assert theirs.get_json()["case_no"] not in text
    # nothing of the caller's written onto the other district's case; only the link
    assert "repeat_request" not in _actions(session, old_id)
    assert _linked(session, old_id, body["id"]).data["reason"] == "same_phone"
    assert _linked(session, body["id"], old_id).actor_id is None
    assert _pages(session, body["id"]) == ["+8613900000111"]
    # the resident's own view of either case shows no link
    mine = client.get(f"/api/v1/cases/{old_id}", headers=f.auth(app, me)).get_json()
    assert "possible_duplicate" not in [e["action"] for e in mine["timeline"]]
    # and the grid worker still cannot read the other case
    assert client.get(f"/api/v1/cases/{old_id}", headers=f.auth(app, grid)).status_code == 404


def test_grid_worker_naming_an_id_number_joins_no_case_in_another_district(app, client, session):
    me = f.resident(session, phone="+8613812340012")
    assert (
        client.patch("/api/v1/me", json={"id_number": ID}, headers=f.auth(app, me)).status_code
        == 200
    )
    old_id = _tap(client, app, me, township_code=LANSHAN).get_json()["id"]
    grid = f.staff(session, role="grid_worker", region=GRID_TOWNSHIP)
    resp = client.post(
        "/api/v1/intake",
        json={
            "phone": "13812340013",
            "id_number": ID,
            "channel": "proactive_discovery",
            "urgent": True,
        },
        headers=f.auth(app, grid),
    )
    assert resp.status_code == 201, resp.get_json()
    assert resp.get_json()["id"] != old_id
    assert "repeat_request" not in _actions(session, old_id)
    assert _linked(session, old_id, resp.get_json()["id"]).data["reason"] == "same_id_number"


def test_a_staff_read_of_a_case_joined_by_intake_is_audited(app, client, session):
    me = f.resident(session, phone="+8613812340014")
    old_id = _tap(client, app, me, township_code=LANSHAN).get_json()["id"]
    op = f.staff(session, role="operator", region="3711")
    resp = client.post(
        "/api/v1/intake",
        json={"phone": "13812340014", "channel": "hotline", "urgent": True, "notes": "再次来电"},
        headers=f.auth(app, op),
    )
    assert resp.status_code == 200 and resp.get_json()["id"] == old_id
    reads = session.scalars(
        select(AuditEntry.action).where(
            AuditEntry.actor_id == op.id, AuditEntry.target_id == old_id
        )
    ).all()
    assert reads == ["case.read"]


# --- 2. an ID number is claimed, not proven -----------------------------------------------


def test_hotline_entry_for_the_real_person_is_not_captured_by_an_impostor(app, client, session):
    real = f.resident(session, phone="+8613812340021")
    impostor = f.resident(session, phone="+8613812340022")
    claimed = client.patch("/api/v1/me", json={"id_number": ID}, headers=f.auth(app, impostor))
    assert claimed.status_code == 200
    trap_id = _tap(client, app, impostor, township_code=LANSHAN).get_json()["id"]
    duty = f.staff(session, role="duty", region="371102004", phone="+8613900000121")
    f.on_duty(session, duty)
    op = f.staff(session, role="operator", region="3711")
    resp = client.post(
        "/api/v1/intake",
        json={
            "phone": "13812340021",
            "id_number": ID,
            "channel": "hotline",
            "urgent": True,
            "township_code": "371102004",
        },
        headers=f.auth(app, op),
    )
    assert resp.status_code == 201, resp.get_json()
    body = resp.get_json()
    assert body["id"] != trap_id and body["person"]["phone"] == "138****0021"
    case = session.get(Case, uuid.UUID(body["id"]))
    assert case.resident_id == real.id and case.subject_phone == "+8613812340021"
    assert _pages(session, body["id"]) == ["+8613900000121"]
    assert "repeat_request" not in _actions(session, trap_id)
    _linked(session, trap_id, body["id"])
    _linked(session, body["id"], trap_id)
    # the ID number stays where it was bound: the intake did not move it to the real caller
    session.expire_all()
    assert session.get(Account, real.id).id_number_hash is None
    # a phone-only call from the real person joins their own case, not the impostor's
    again = client.post(
        "/api/v1/intake",
        json={"phone": "13812340021", "channel": "hotline", "urgent": True},
        headers=f.auth(app, op),
    )
    assert again.status_code == 200 and again.get_json()["id"] == body["id"]


def test_same_id_number_on_two_phones_gives_two_linked_cases_both_paged(app, client, session):
    duty = f.staff(session, role="duty", region="371102004", phone="+8613900000131")
    f.on_duty(session, duty)
    op = f.staff(session, role="operator", region="3711")
    ids = []
    for phone in ("13812340031", "13812340032"):
        resp = client.post(
            "/api/v1/intake",
            json={
                "phone": phone,
                "id_number": ID,
                "channel": "hotline",
                "urgent": True,
                "township_code": "371102004",
            },
            headers=f.auth(app, op),
        )
        assert resp.status_code == 201, resp.get_json()
        ids.append(resp.get_json()["id"])
    _linked(session, ids[0], ids[1])
    _linked(session, ids[1], ids[0])
    assert [len(_pages(session, i)) for i in ids] == [1, 1]
    holders = session.scalars(select(Account.phone).where(Account.id_number_hash.is_not(None)))
    assert list(holders) == ["+8613812340031"]


def test_unbind_id_number_command_frees_it_for_its_holder(app, client, session):
    real = f.resident(session, phone="+8613812340041")
    impostor = f.resident(session, phone="+8613812340042")
    assert (
        client.patch(
            "/api/v1/me", json={"id_number": ID}, headers=f.auth(app, impostor)
        ).status_code
        == 200
    )
    refused = client.patch("/api/v1/me", json={"id_number": ID}, headers=f.auth(app, real))
    assert refused.status_code == 409
    result = app.test_cli_runner().invoke(
        args=["staff", "unbind-id-number", "--by", "王督导", "--reason", "本人持证到乡镇核实"],
        input=f"{ID}\n",
    )
    assert result.exit_code == 0, result.output
    assert ID not in result.output and "371102********1232" in result.output
    entry = session.scalars(
        select(AuditEntry).where(AuditEntry.action == "account.id_number_unbind")
    ).one()
    assert entry.target_id == str(impostor.id) and entry.data["by"] == "王督导"
    session.expire_all()
    assert session.get(Account, impostor.id).id_number_hash is None
    bound = client.patch("/api/v1/me", json={"id_number": ID}, headers=f.auth(app, real))
    assert bound.status_code == 200 and bound.get_json()["id_number_masked"]
    nobody = app.test_cli_runner().invoke(
        args=[
            "staff",
            "unbind-id-number",
            "--id-number",
            "11010519491231002X",
            "--by",
            "x",
            "--reason",
            "y",
        ]
    )
    assert nobody.exit_code != 0 and "no account holds" in nobody.output


# --- 5. the paging loop -------------------------------------------------------------------


def test_tap_withdraw_loop_pages_at_most_the_configured_number_of_times(app, client, session):
    duty = f.staff(session, role="duty", region="371102004", phone="+8613900000151")
    f.on_duty(session, duty)
    me = f.resident(session)
    limit = int(app.config["RATELIMIT_URGENT_NEW_PER_RESIDENT"].split("/")[0])
    answers = []
    for i in range(15):
        resp = _tap(client, app, me, key=f"loop-{i}", township_code="371102004")
        answers.append(resp.status_code)
        if resp.status_code == 201:
            withdrawn = client.post(
                f"/api/v1/cases/{resp.get_json()['id']}/actions",
                json={"action": "withdraw"},
                headers=f.auth(app, me),
            )
            assert withdrawn.status_code == 200, withdrawn.get_json()
        else:
            assert resp.status_code == 429, resp.get_json()
            assert "12349" in resp.get_json()["message"]
            assert int(resp.headers["Retry-After"]) > 0
    assert answers == [201] * limit + [429] * (15 - limit)
    pages = session.scalar(
        select(func.count())
        .select_from(SmsOutbox)
        .join(Case, Case.id == SmsOutbox.case_id)
        .where(Case.resident_id == me.id, SmsOutbox.template == "duty_page")
    )
    assert pages == limit
    en = _tap(client, app, me, key="loop-en")
    assert en.status_code == 429
    # someone else's first request is never limited
    assert _tap(client, app, f.resident(session), key="first").status_code == 201


def test_a_first_urgent_request_is_never_limited(app, client, session):
    app.config["RATELIMIT_URGENT_NEW_PER_RESIDENT"] = "1/hour"
    me = f.resident(session)
    first = _tap(client, app, me, key="only")
    assert first.status_code == 201
    # its retries and a repeat while it is open are not new cases: not this limit's business
    assert _tap(client, app, me, key="only").status_code == 200
    assert _tap(client, app, me, key="again").status_code == 200


# --- 7. fingerprints are keyed --------------------------------------------------------------


def test_request_fingerprint_is_keyed_and_hides_the_id_number(app, client, session):
    op = f.staff(session, role="operator", region="3711")
    body = {"phone": "13812340071", "id_number": ID, "channel": "hotline", "urgent": True}
    headers = {**f.auth(app, op), "Idempotency-Key": "call-71"}
    first = client.post("/api/v1/intake", json=body, headers=headers)
    assert first.status_code == 201
    stored = session.scalars(select(IdempotencyKey).where(IdempotencyKey.key == "call-71")).one()
    # what the old fingerprint was (and an attacker could recompute for every guess)
    canonical = json.dumps(body, sort_keys=True, ensure_ascii=False, default=str)
    assert stored.request_hash != hashlib.sha256(f"intake\n{canonical}".encode()).hexdigest()
    with app.app_context():
        from server.cases.intake import request_fingerprint

        keyed = request_fingerprint("intake", body)
        app.config["ID_HASH_KEY"] = "another-key"
        assert request_fingerprint("intake", body) != keyed
        del app.config["ID_HASH_KEY"]
    assert stored.request_hash == keyed
    retry = client.post("/api/v1/intake", json=body, headers=headers)
    assert retry.status_code == 200 and retry.get_json()["id"] == first.get_json()["id"]


# --- race B, serially: a retried key whose joined case has ended --------------------------


def test_retry_of_a_tap_that_joined_a_case_since_ended_opens_a_new_case(app, client, session):
    duty = f.staff(session, role="duty", region="371102004", phone="+8613900000181")
    f.on_duty(session, duty)
    me = f.resident(session)
    first = _tap(client, app, me, key="k1", township_code="371102004")
    case_a = first.get_json()["id"]
    before = session.get(Case, uuid.UUID(case_a)).updated_at
    joined = _tap(client, app, me, key="k2", township_code="371102004")
    assert joined.status_code == 200 and joined.get_json()["id"] == case_a
    session.expire_all()
    a = session.get(Case, uuid.UUID(case_a))
    assert a.version == 2  # joining bumps the version transitions check
    assert a.updated_at == before  # and nothing else: the first answer is still the case
    claim = client.post("/api/v1/townships/371102004/queue/claim", headers=f.auth(app, duty))
    assert claim.status_code == 200 and claim.get_json()["id"] == case_a
    rejected = client.post(
        f"/api/v1/cases/{case_a}/actions",
        json={"action": "reject", "reason": "核实不符"},
        headers=f.auth(app, duty),
    )
    assert rejected.status_code == 200, rejected.get_json()
    # the retry of the joining tap: the person still needs help
    retry = _tap(client, app, me, key="k2", township_code="371102004")
    assert retry.status_code == 201, retry.get_json()
    case_b = retry.get_json()["id"]
    assert case_b != case_a and retry.get_json()["status"] == "queued"
    assert _pages(session, case_b) == ["+8613900000181"]
    assert _tap(client, app, me, key="k2", township_code="371102004").get_json()["id"] == case_b
    # the retry of the tap that opened the ended case still answers with that case
    again = _tap(client, app, me, key="k1", township_code="371102004")
    assert again.status_code == 200 and again.get_json()["id"] == case_a
    assert again.get_json()["status"] == "rejected"
