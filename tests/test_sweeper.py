"""The SLA sweeper (each escalation fires once) and the supervisors' SLA report."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import select

from server.cases import sweeper
from server.cases.models import Case
from server.cases.workflow_models import Escalation
from server.db import utcnow
from tests import factories
from tests.factories import COUNTY, OTHER_TOWNSHIP, TOWNSHIP, auth
from tests.workflow_support import case_in, events, people, sms


def escalations(session, case):  # type: ignore[no-untyped-def]
    return session.scalars(select(Escalation).where(Escalation.case_id == case.id)).all()


def test_lease_expiry_returns_case_and_tells_supervisor_once(app, client, session):  # type: ignore[no-untyped-def]
    p = people(session)
    now = utcnow()
    case = case_in(session, "claimed", p, lease_expires_at=now - dt.timedelta(seconds=1))
    fresh = case_in(session, "claimed", p, lease_expires_at=now + dt.timedelta(minutes=5))
    counts = sweeper.sweep(session, now)
    assert counts["lease_expired"] == 1
    assert case.status == "queued" and case.claimed_by_id is None and case.lease_expires_at is None
    assert fresh.status == "claimed"
    alerts = sms(session, case, "escalation")
    assert [a.to_phone for a in alerts] == [p.supervisor.phone]
    assert "已退回队列" in alerts[0].body
    kinds = [e.action for e in events(session, case)]
    assert kinds == ["expire_lease", "escalation.lease_expired"]
    assert all(not e.resident_visible for e in events(session, case))

    assert sweeper.sweep(session, now + dt.timedelta(minutes=1))["lease_expired"] == 0
    assert len(sms(session, case, "escalation")) == 1
    # Back in the queue: a colleague can take it.
    r = client.post(f"/api/v1/townships/{TOWNSHIP}/queue/claim", headers=auth(app, p.duty2))
    assert r.json["id"] == str(case.id)


def test_a_second_lease_expiry_is_a_new_escalation(session):  # type: ignore[no-untyped-def]
    p = people(session)
    now = utcnow()
    case = case_in(session, "claimed", p, lease_expires_at=now - dt.timedelta(seconds=1))
    sweeper.sweep(session, now)
    # Claimed again, left again.
    case.status = "claimed"  # test set-up, as the claim endpoint would
    case.claimed_by_id = p.duty2.id
    case.claimed_at = now + dt.timedelta(minutes=1)
    case.lease_expires_at = now + dt.timedelta(minutes=31)
    session.flush()
    assert sweeper.sweep(session, now + dt.timedelta(minutes=32))["lease_expired"] == 1
    assert [e.kind for e in escalations(session, case)].count("lease_expired") == 2


def test_unclaimed_urgent_case_escalates_once(session):  # type: ignore[no-untyped-def]
    p = people(session)
    now = utcnow()
    late = factories.case(
        session, resident_account=p.resident, created_at=now - dt.timedelta(minutes=16)
    )
    recent = factories.case(
        session, resident_account=p.resident, created_at=now - dt.timedelta(minutes=5)
    )
    ordinary = factories.case(
        session, resident_account=p.resident, urgent=False, created_at=now - dt.timedelta(days=2)
    )
    assert sweeper.sweep(session, now)["unclaimed"] == 1
    assert sweeper.sweep(session, now + dt.timedelta(minutes=11))["unclaimed"] == 1  # `recent`
    assert sweeper.sweep(session, now + dt.timedelta(minutes=30))["unclaimed"] == 0
    assert len(sms(session, late, "escalation")) == 1
    assert len(sms(session, recent, "escalation")) == 1
    assert sms(session, ordinary) == []
    assert "无人认领" in sms(session, late, "escalation")[0].body


def test_pay_due_warning_at_20_hours_then_breach_once_each(session):  # type: ignore[no-untyped-def]
    p = people(session)
    start = utcnow() - dt.timedelta(hours=1)
    case = case_in(
        session, "claimed", p, created_at=start, lease_expires_at=start + dt.timedelta(days=9)
    )
    paid = case_in(session, "paid", p, created_at=start)
    assert (
        sweeper.sweep(session, start + dt.timedelta(hours=19, minutes=59))["pay_due_warning"] == 0
    )
    at_20h = sweeper.sweep(session, start + dt.timedelta(hours=20))
    assert at_20h["pay_due_warning"] == 1 and at_20h["pay_due_breach"] == 0
    assert sweeper.sweep(session, start + dt.timedelta(hours=23))["pay_due_warning"] == 0
    at_24h = sweeper.sweep(session, start + dt.timedelta(hours=24))
    assert at_24h["pay_due_breach"] == 1
    assert sweeper.sweep(session, start + dt.timedelta(hours=30))["pay_due_breach"] == 0
    problems = [s.params["problem"] for s in sms(session, case, "escalation")]
    assert problems == ["距24小时发放时限不足4小时", "已超过24小时发放时限仍未发放"]
    assert sms(session, paid, "escalation") == []
    assert {e.kind for e in escalations(session, case)} == {"pay_due_warning", "pay_due_breach"}


def test_paperwork_overdue_once(session):  # type: ignore[no-untyped-def]
    p = people(session)
    now = utcnow()
    case = case_in(session, "paid", p, paperwork_due_at=now - dt.timedelta(minutes=1))
    not_yet = case_in(session, "paid", p, paperwork_due_at=now + dt.timedelta(days=1))
    assert sweeper.sweep(session, now)["paperwork_overdue"] == 1
    assert sweeper.sweep(session, now + dt.timedelta(days=3))["paperwork_overdue"] == 1  # not_yet
    assert sweeper.sweep(session, now + dt.timedelta(days=4))["paperwork_overdue"] == 0
    assert len(sms(session, case, "escalation")) == 1
    assert len(sms(session, not_yet, "escalation")) == 1


def test_fire_is_idempotent_under_a_race(session):  # type: ignore[no-untyped-def]
    """Two workers deciding to fire the same escalation: the unique key lets one through."""
    p = people(session)
    case = case_in(session, "paid", p)
    now = utcnow()
    assert sweeper._fire(session, case=case, kind="paperwork_overdue", now=now) is True
    assert sweeper._fire(session, case=case, kind="paperwork_overdue", now=now) is False
    assert len(sms(session, case, "escalation")) == 1
    assert len(escalations(session, case)) == 1
    assert [e.action for e in events(session, case)] == ["escalation.paperwork_overdue"]


def test_escalation_without_supervisor_phone_still_recorded(session, log_records):  # type: ignore[no-untyped-def]
    factories.aid_standard(session)
    owner = factories.resident(session)
    case = factories.case(
        session,
        resident_account=owner,
        township="371103001",
        created_at=utcnow() - dt.timedelta(hours=1),
    )
    assert sweeper.sweep(session, utcnow())["unclaimed"] == 1
    assert escalations(session, case)[0].notified == 0
    assert any("reached no supervisor" in r.getMessage() for r in log_records.records)


def test_sweep_is_registered_as_periodic_job(app, session):  # type: ignore[no-untyped-def]
    jobs = app.extensions["aidline.periodic_jobs"]
    assert any(getattr(j, "__name__", "") == "sla_sweep" for j in jobs)
    p = people(session)
    case = case_in(session, "paid", p, paperwork_due_at=utcnow() - dt.timedelta(minutes=1))
    for job in jobs:
        if job.__name__ == "sla_sweep":
            job(session, utcnow())
    assert len(escalations(session, case)) == 1


# --- SLA report -------------------------------------------------------------------------------


def test_sla_report(app, client, session):  # type: ignore[no-untyped-def]
    p = people(session)
    now = utcnow()
    t0 = now - dt.timedelta(hours=30)
    on_time = case_in(session, "paid", p, created_at=t0, paid_at=t0 + dt.timedelta(hours=2))
    late = case_in(session, "closed", p, created_at=t0, paid_at=t0 + dt.timedelta(hours=26))
    case_in(session, "claimed", p, created_at=t0)  # open, past due
    case_in(session, "queued", p, created_at=now - dt.timedelta(hours=1))  # open, in time
    # Transferred: still counts for the first (accountable) township.
    factories.case(
        session,
        resident_account=p.resident,
        township=OTHER_TOWNSHIP,
        accountable_township_code=TOWNSHIP,
        created_at=t0,
    )
    from server.cases.events import add_event

    for case, minutes in ((on_time, 10), (late, 30)):
        add_event(
            session,
            case=case,
            actor=p.duty,
            action="claim",
            to_status="claimed",
            at=t0 + dt.timedelta(minutes=minutes),
        )

    r = client.get(f"/api/v1/counties/{COUNTY}/sla", headers=auth(app, p.supervisor))
    assert r.status_code == 200, r.json
    rows = {row["township_code"]: row for row in r.json["townships"]}
    assert len(rows) == 12  # every township of 东港区
    row = rows[TOWNSHIP]
    assert row["township_name"] == "日照街道"
    assert row["urgent_cases"] == 5
    assert row["paid_within_24h"] == 1 and row["paid_late"] == 1
    assert row["open_past_due"] == 2
    assert row["open_urgent"] == 2  # the claimed and the fresh queued one, in 日照街道 now
    assert row["median_minutes_to_claim"] == 20.0
    assert row["median_minutes_to_pay"] == (120 + 26 * 60) / 2
    assert rows[OTHER_TOWNSHIP]["urgent_cases"] == 0
    assert rows[OTHER_TOWNSHIP]["open_urgent"] == 1

    old = client.get(
        f"/api/v1/counties/{COUNTY}/sla?from=2020-01-01&to=2020-01-31",
        headers=auth(app, p.supervisor),
    )
    assert old.json["from"] == "2020-01-01"
    assert all(x["urgent_cases"] == 0 for x in old.json["townships"])
    assert (
        client.get(f"/api/v1/counties/{COUNTY}/sla", headers=auth(app, p.duty)).status_code == 403
    )
    assert (
        client.get(f"/api/v1/counties/{COUNTY}/sla", headers=auth(app, p.admin)).status_code == 200
    )
    assert (
        client.get("/api/v1/counties/371103/sla", headers=auth(app, p.supervisor)).status_code
        == 404
    )
    bad = client.get(
        f"/api/v1/counties/{COUNTY}/sla?from=2026-02-01&to=2026-01-01",
        headers=auth(app, p.supervisor),
    )
    assert bad.status_code == 422
    assert session.scalar(select(Case).where(Case.id == on_time.id)) is not None
