"""Township queues and county triage: order, filters, masking, scope, claims (also
concurrent, on PostgreSQL and on SQLite), leases."""

from __future__ import annotations

import datetime as dt
import threading
from collections import Counter

from sqlalchemy import select

from server.cases.models import Case
from server.db import utcnow
from server.session import database
from tests import factories
from tests.factories import COUNTY, OTHER_TOWNSHIP, TOWNSHIP, auth
from tests.workflow_support import case_in, events, people, sms


def queue(client, app, account, code=TOWNSHIP, query=""):
    return client.get(f"/api/v1/townships/{code}/queue{query}", headers=auth(app, account))


def claim(client, app, account, code=TOWNSHIP):
    return client.post(f"/api/v1/townships/{code}/queue/claim", headers=auth(app, account))


def test_queue_order_urgent_first_then_deadline(app, client, session):
    p = people(session)
    now = utcnow()
    ordinary_old = factories.case(
        session, resident_account=p.resident, urgent=False, created_at=now - dt.timedelta(days=3)
    )
    urgent_late = factories.case(
        session, resident_account=p.resident, created_at=now - dt.timedelta(hours=1)
    )
    urgent_soon = factories.case(
        session, resident_account=p.resident, created_at=now - dt.timedelta(hours=20)
    )
    ordinary_new = factories.case(
        session, resident_account=p.resident, urgent=False, created_at=now - dt.timedelta(days=1)
    )
    factories.case(session, resident_account=p.resident, township=OTHER_TOWNSHIP)
    case_in(session, "closed", p)
    r = queue(client, app, p.duty)
    assert r.status_code == 200
    ids = [item["id"] for item in r.json["items"]]
    expected = [urgent_soon, urgent_late, ordinary_old, ordinary_new]
    assert ids == [str(c.id) for c in expected]
    assert r.json["total"] == 4

    # Claims come in the same order.
    got = [claim(client, app, p.duty).json["id"] for _ in range(4)]
    assert got == [str(c.id) for c in expected]
    assert claim(client, app, p.duty).status_code == 204


def test_queue_filters_pagination_and_masking(app, client, session):
    p = people(session)
    factories.case(session, resident_account=p.resident, contact_phone="+8613812345678")
    factories.case(session, resident_account=p.resident, urgent=False, aid_type="medical")
    case_in(session, "needs_info", p)
    r = queue(client, app, p.duty, query="?urgent=false")
    assert [i["aid_type"] for i in r.json["items"]] == ["medical"]
    r = queue(client, app, p.duty, query="?status=needs_info")
    assert r.json["total"] == 1 and r.json["items"][0]["status_label"] == "待补充材料"
    r = queue(client, app, p.duty, query="?aid_type=temporary_emergency&per_page=1&page=2")
    assert r.json["total"] == 2 and len(r.json["items"]) == 1 and r.json["page"] == 2
    r = queue(client, app, p.duty, query="?urgent=true&per_page=1")
    item = r.json["items"][0]
    assert item["contact_phone_masked"] == "138****5678"
    assert "13812345678" not in r.get_data(as_text=True)
    assert "id_number" not in str(r.json)
    assert queue(client, app, p.duty, query="?status=closed").status_code == 422


def test_queue_scope(app, client, session):
    p = people(session)
    far_duty = factories.staff(session, role="duty", region="371103001")
    operator = factories.staff(session, role="operator", region="3711")
    assert queue(client, app, p.supervisor).status_code == 200  # supervisor of the county
    assert queue(client, app, far_duty).status_code == 404
    assert claim(client, app, far_duty).status_code == 404
    assert queue(client, app, p.resident).status_code == 403
    assert queue(client, app, operator).status_code == 403
    assert queue(client, app, p.duty, code="371102999").status_code == 404
    assert client.get(f"/api/v1/townships/{TOWNSHIP}/queue").status_code == 401


def test_claim_is_a_lease_for_urgent_cases(app, client, session):
    p = people(session)
    urgent = factories.case(session, resident_account=p.resident)
    ordinary = factories.case(session, resident_account=p.resident, urgent=False)
    r = claim(client, app, p.duty)
    assert r.json["id"] == str(urgent.id)
    lease = dt.datetime.fromisoformat(r.json["lease_expires_at"])
    assert dt.timedelta(minutes=29) < lease - utcnow() <= dt.timedelta(minutes=30)
    r = claim(client, app, p.duty)
    assert r.json["id"] == str(ordinary.id) and r.json["lease_expires_at"] is None
    assert [s.template for s in sms(session, urgent)] == ["claimed"]
    assert sms(session, urgent)[0].params["township"] == "日照街道"
    assert events(session, urgent)[0].to_status == "claimed"


def test_lease_minutes_from_config(app, client, session):
    app.config["URGENT_LEASE_MINUTES"] = 5
    p = people(session)
    factories.case(session, resident_account=p.resident)
    lease = dt.datetime.fromisoformat(claim(client, app, p.duty).json["lease_expires_at"])
    assert lease - utcnow() <= dt.timedelta(minutes=5)


def test_release_returns_the_case(app, client, session):
    p = people(session)
    case = factories.case(session, resident_account=p.resident)
    claim(client, app, p.duty)
    r = client.post(
        f"/api/v1/cases/{case.id}/actions",
        json={"action": "release", "reason": "需要外出"},
        headers=auth(app, p.duty),
    )
    assert r.status_code == 200 and r.json["status"] == "queued"
    assert r.json["claimed_by_id"] is None and r.json["lease_expires_at"] is None
    assert claim(client, app, p.duty2).json["id"] == str(case.id)


def test_county_triage_queue_and_assign(app, client, session):
    p = people(session)
    case = factories.case(session, resident_account=p.resident, township=None, county=COUNTY)
    sup = auth(app, p.supervisor)
    assert queue(client, app, p.duty).json["total"] == 0  # not in a township queue
    r = client.get(f"/api/v1/counties/{COUNTY}/triage", headers=sup)
    assert r.status_code == 200 and [i["id"] for i in r.json["items"]] == [str(case.id)]
    assert (
        client.get(f"/api/v1/counties/{COUNTY}/triage", headers=auth(app, p.duty)).status_code
        == 403
    )
    assert client.get("/api/v1/counties/371103/triage", headers=sup).status_code == 404

    r = client.post(
        f"/api/v1/cases/{case.id}/actions",
        json={"action": "assign", "township_code": TOWNSHIP, "reason": "地址在日照街道"},
        headers=sup,
    )
    assert r.status_code == 200, r.json
    assert r.json["township_code"] == TOWNSHIP and r.json["status"] == "queued"
    assert r.json["accountable_township_code"] == TOWNSHIP
    assert claim(client, app, p.duty).json["id"] == str(case.id)
    # Assign is only for triage cases.
    other = factories.case(session, resident_account=p.resident)
    r = client.post(
        f"/api/v1/cases/{other.id}/actions",
        json={"action": "assign", "township_code": OTHER_TOWNSHIP},
        headers=sup,
    )
    assert r.status_code == 409 and "transfer" in r.json["message"]


def test_triage_claim(app, client, session):
    p = people(session)
    case = factories.case(session, resident_account=p.resident, township=None, county=COUNTY)
    sup = auth(app, p.supervisor)
    r = client.post(f"/api/v1/counties/{COUNTY}/triage/claim", headers=sup)
    assert r.status_code == 200 and r.json["id"] == str(case.id)
    assert r.json["claimed_by_id"] == p.supervisor.id
    assert client.post(f"/api/v1/counties/{COUNTY}/triage/claim", headers=sup).status_code == 204
    r = client.post(
        f"/api/v1/cases/{case.id}/actions",
        json={"action": "assign", "township_code": TOWNSHIP},
        headers=sup,
    )
    assert r.json["status"] == "queued" and r.json["claimed_by_id"] is None


# --- concurrent claims ------------------------------------------------------------------------


def test_concurrent_claims_never_hand_out_a_case_twice(committed_app, engine):
    """PostgreSQL: 8 officers × 50 claims on 200 cases (FOR UPDATE SKIP LOCKED).
    SQLite: 4 × 10 on 20 (BEGIN IMMEDIATE serialises the claims)."""
    postgres = engine.dialect.name == "postgresql"
    threads, claims_each, n_cases = (8, 50, 200) if postgres else (4, 10, 20)
    with database(committed_app).new_session() as s, s.begin():
        owner = factories.resident(s)
        officers = [factories.staff(s, role="duty", region=TOWNSHIP) for _ in range(threads)]
        for i in range(n_cases):
            factories.case(s, resident_account=owner, urgent=i % 3 == 0)
    headers = [auth(committed_app, o) for o in officers]
    got: list[list[str]] = [[] for _ in range(threads)]
    empty = [0] * threads
    errors: list[str] = []
    barrier = threading.Barrier(threads)

    def worker(k: int) -> None:
        client = committed_app.test_client()
        barrier.wait()
        for _ in range(claims_each):
            r = client.post(f"/api/v1/townships/{TOWNSHIP}/queue/claim", headers=headers[k])
            if r.status_code == 200:
                got[k].append(r.json["id"])
            elif r.status_code == 204:
                empty[k] += 1
            else:
                errors.append(f"{r.status_code} {r.get_data(as_text=True)[:200]}")

    pool = [threading.Thread(target=worker, args=(k,)) for k in range(threads)]
    for t in pool:
        t.start()
    for t in pool:
        t.join()

    assert errors == []
    claimed = [case_id for ids in got for case_id in ids]
    assert len(claimed) == n_cases  # none lost
    assert len(set(claimed)) == n_cases  # none twice
    assert sum(empty) == threads * claims_each - n_cases
    with database(committed_app).new_session() as s:
        rows = s.scalars(select(Case)).all()
        assert Counter(c.status for c in rows) == {"claimed": n_cases}
        holder = {str(c.id): c.claimed_by_id for c in rows}
        for k, ids in enumerate(got):
            assert all(holder[i] == officers[k].id for i in ids)
