"""GET /cases/{id}/contact: the full phone numbers of a case for the staff who may act on it
(the holder, the township's duty staff, the county supervisor, the operator who entered it),
each call audited; everyone else 404 (out of view) or 403 (visible, not theirs)."""

from __future__ import annotations

from sqlalchemy import select

from server.audit import AuditEntry
from tests import factories
from tests.factories import COUNTY, OTHER_TOWNSHIP, TOWNSHIP, auth
from tests.workflow_support import case_in, people

PHONE = "+8613812345678"  # the resident of workflow_support.people
CONTACT = "+8613911112222"


def _contact(client, app, who, case):
    return client.get(f"/api/v1/cases/{case.id}/contact", headers=auth(app, who))


def _reads(session, case):
    return session.scalars(
        select(AuditEntry.actor_id).where(
            AuditEntry.target_id == str(case.id), AuditEntry.action == "case.read_contact"
        )
    ).all()


def test_the_staff_who_may_act_get_the_full_phones_and_each_call_is_audited(app, client, session):
    p = people(session)
    operator = factories.staff(session, role="operator", region="3711")
    holder = factories.staff(session, role="duty", region=TOWNSHIP)
    case = case_in(
        session,
        "claimed",
        p,
        holder=holder,
        subject_phone=PHONE,
        contact_phone=CONTACT,
        created_by_id=operator.id,
        channel="hotline",
    )
    allowed = [holder, p.duty, p.supervisor, operator]
    for who in allowed:
        r = _contact(client, app, who, case)
        assert r.status_code == 200, (who.role, r.json)
        assert r.json == {
            "case_id": str(case.id),
            "case_no": case.case_no,
            "phone": PHONE,
            "contact_phone": CONTACT,
        }
    assert _reads(session, case) == [w.id for w in allowed]
    # Everywhere else the phones stay masked.
    r = client.get(f"/api/v1/cases/{case.id}", headers=auth(app, p.duty))
    assert PHONE[3:] not in r.get_data(as_text=True)


def test_everyone_else_is_refused_and_nothing_is_audited(app, client, session):
    p = people(session)
    entered_by = factories.staff(session, role="operator", region="3711")
    case = case_in(session, "queued", p, subject_phone=PHONE, created_by_id=entered_by.id)
    visible_not_theirs = [
        p.resident,  # their own case: they know their number
        factories.staff(session, role="operator", region="3711"),  # another operator
        factories.staff(session, role="grid_worker", region=TOWNSHIP),
        p.admin,
    ]
    for who in visible_not_theirs:
        r = _contact(client, app, who, case)
        assert r.status_code == 403 and r.json["code"] == "forbidden", (who.role, r.json)
        assert "123456" not in r.get_data(as_text=True)
    out_of_view = [
        factories.staff(session, role="duty", region=OTHER_TOWNSHIP),
        factories.staff(session, role="supervisor", region="371103"),
        factories.resident(session),
    ]
    for who in out_of_view:
        assert _contact(client, app, who, case).status_code == 404, who.role
    assert client.get(f"/api/v1/cases/{case.id}/contact").status_code == 401
    assert _reads(session, case) == []


def test_a_triage_case_is_the_supervisors(app, client, session):
    p = people(session)
    case = case_in(session, "queued", p, triage=True, subject_phone=PHONE)
    assert case.county_code == COUNTY
    assert _contact(client, app, p.supervisor, case).json["phone"] == PHONE
    assert _contact(client, app, p.duty, case).status_code == 404
    # The resident's account phone when the case carries none of its own.
    bare = case_in(session, "queued", p, subject_phone=None)
    assert _contact(client, app, p.duty, bare).json["phone"] == p.resident.phone


def test_whoever_may_close_a_call_back_task_may_reveal_and_each_call_is_audited(
    app, client, session
):
    """An open call-back task lets the staff who may close it phone the resident: a city's
    12349 operator who did not enter the case; closed, the task no longer does."""
    p = people(session)
    operator = factories.staff(session, role="operator", region="3711")
    case = case_in(session, "queued", p, subject_phone=PHONE)
    assert _contact(client, app, operator, case).status_code == 403
    task = factories.callback_task(session, case, phone=PHONE)
    r = _contact(client, app, operator, case)
    assert r.status_code == 200 and r.json["phone"] == PHONE
    assert _reads(session, case) == [operator.id]
    # Another region's staff see neither the case nor its number; nothing is audited.
    for who in (
        factories.staff(session, role="duty", region=OTHER_TOWNSHIP),
        factories.staff(session, role="supervisor", region="371103"),
        factories.staff(session, role="operator", region="3702"),
    ):
        assert _contact(client, app, who, case).status_code == 404, who.role
    # Roles that may not close the task (an administrator, a grid worker) stay refused.
    for who in (p.admin, factories.staff(session, role="grid_worker", region=TOWNSHIP)):
        assert _contact(client, app, who, case).status_code == 403, who.role
    assert _reads(session, case) == [operator.id]
    task.status = "done"
    session.flush()
    assert _contact(client, app, operator, case).status_code == 403


def test_a_call_back_task_on_a_case_another_officer_holds_is_the_holders_call(app, client, session):
    p = people(session)
    operator = factories.staff(session, role="operator", region="3711")
    case = case_in(session, "claimed", p, holder=p.duty, subject_phone=PHONE)
    factories.callback_task(session, case, phone=PHONE)
    assert _contact(client, app, operator, case).status_code == 403
    assert _contact(client, app, p.duty, case).status_code == 200
    assert _reads(session, case) == [p.duty.id]
