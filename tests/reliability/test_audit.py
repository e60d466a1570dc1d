"""The audit trail: a case life is reconstructed from it; every change and staff read is in it."""

from __future__ import annotations

import uuid

from sqlalchemy import select

from server.audit import AuditEntry
from server.cases.models import Case, CaseEvent
from tests import factories as f
from tests import files
from tests.files import multipart
from tests.reliability import support as r
from tests.workflow_support import people

# Timeline events that are not changes by anyone: the router's note on where a case went and
# the submission itself (both part of case.create), the system paging the duty officer.
NOT_A_CHANGE = {"route", "submit", "page"}


def _trail(session, case_id):
    return list(
        session.scalars(
            select(AuditEntry)
            .where(AuditEntry.target_type == "case", AuditEntry.target_id == str(case_id))
            .order_by(AuditEntry.id)
        )
    )


def test_full_case_life_is_reconstructed_from_the_audit_trail(app, client, session):
    """Intake -> claim -> pay -> paperwork -> close, each by a real request from its own IP."""
    from tests.factories import TOWNSHIP

    p = people(session)
    resident, duty = f.auth(app, p.resident), f.auth(app, p.duty)

    def call(method, path, headers, ip, **kw):
        resp = client.open(
            path, method=method, headers=headers, environ_base={"REMOTE_ADDR": ip}, **kw
        )
        assert resp.status_code < 300, (path, resp.status_code, resp.get_json())
        return resp.get_json()

    tap = call(
        "POST",
        "/api/v1/urgent-requests",
        {**resident, "Idempotency-Key": "life"},
        "10.0.0.1",
        json={"township_code": TOWNSHIP},
    )
    case_id = tap["id"]
    claimed = call("POST", f"/api/v1/townships/{TOWNSHIP}/queue/claim", duty, "10.0.0.2")
    assert claimed["id"] == case_id
    call("GET", f"/api/v1/cases/{case_id}", duty, "10.0.0.2")  # a staff read of the record
    call(
        "POST",
        f"/api/v1/cases/{case_id}/actions",
        duty,
        "10.0.0.2",
        json={"action": "pay", "amount_fen": 80_000, "method": "cash"},
    )
    for kind in ("application", "hardship_proof", "payment_receipt"):
        call(
            "POST",
            f"/api/v1/cases/{case_id}/documents",
            duty,
            "10.0.0.2",
            **multipart({"kind": kind}, files.pdf(), f"{kind}.pdf"),
        )
    call("POST", f"/api/v1/cases/{case_id}/actions", duty, "10.0.0.2", json={"action": "close"})

    trail = _trail(session, case_id)
    # Who, when, from where — on every entry.
    for entry in trail:
        assert entry.actor_id and entry.actor_role and entry.at and entry.ip, entry.action
    actions = [e.action for e in trail]
    assert actions == [
        "case.create",
        "case.claim",
        "case.read",
        "case.pay",
        "case.add_document",
        "case.add_document",
        "case.add_document",
        "case.close",
    ], actions
    by = {e.action: (e.actor_id, e.ip) for e in trail}
    assert by["case.create"] == (p.resident.id, "10.0.0.1")
    assert by["case.pay"] == (p.duty.id, "10.0.0.2")

    # Replaying the transitions, creation first, reproduces the case's status history and
    # final status.
    status = None
    for entry in trail:
        if entry.data and "to" in entry.data:
            assert entry.data["from"] == status, (entry.action, entry.data, status)
            status = entry.data["to"]
    case = session.get(Case, uuid.UUID(case_id))
    assert status == case.status == "closed"
    assert [e.at for e in trail] == sorted(e.at for e in trail)


def test_every_timeline_change_has_an_audit_entry(app, client, session):
    """Generic: whatever the suites above did to the seeded world, each change is audited."""
    world = r.seed_world(app, session)
    duty = world.auth("duty")
    client.post(f"/api/v1/townships/{r.TOWNSHIP}/queue/claim", headers=duty)
    for body in (
        {"action": "note", "message": "已电话联系"},
        {"action": "request_info", "message": "请提供证明"},
    ):
        client.post(f"/api/v1/cases/{world.case_id}/actions", json=body, headers=duty)
    client.post(
        f"/api/v1/cases/{world.case_id}/actions",
        json={"action": "withdraw"},
        headers=world.auth("resident"),
    )
    events = session.scalars(
        select(CaseEvent).where(CaseEvent.case_id == uuid.UUID(world.case_id))
    ).all()
    audited = {e.action for e in _trail(session, world.case_id)}
    missing = {e.action for e in events if e.action not in NOT_A_CHANGE} - {
        a.removeprefix("case.") for a in audited
    }
    assert not missing, f"changes without an audit entry: {missing}"
    assert len(events) >= 5


def test_staff_reads_of_a_full_record_are_audited_resident_reads_are_not(app, client, session):
    world = r.seed_world(app, session)
    for role in ("operator", "duty", "supervisor", "admin"):
        assert (
            client.get(f"/api/v1/cases/{world.case_id}", headers=world.auth(role)).status_code
            == 200
        )
    client.get(f"/api/v1/cases/{world.case_id}", headers=world.auth("resident"))
    reads = [e for e in _trail(session, world.case_id) if e.action == "case.read"]
    assert sorted(e.actor_role for e in reads) == ["admin", "duty", "operator", "supervisor"]
