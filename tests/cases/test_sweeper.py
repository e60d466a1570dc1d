"""The SLA sweeper (each escalation fires once) and the supervisors' SLA report."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import select

import notifications
from notifications import templates
from notifications.models import SmsOutbox
from notifications.ops import set_template_text
from server.cases import sweeper
from server.cases.models import Case
from server.cases.workflow_models import Escalation
from server.db import utcnow
from tests import factories
from tests.factories import COUNTY, OTHER_TOWNSHIP, TOWNSHIP, auth
from tests.fake_twilio import twilio_config
from tests.workflow_support import case_in, events, people, sms


def escalations(session, case):
    return session.scalars(select(Escalation).where(Escalation.case_id == case.id)).all()


def test_lease_expiry_returns_case_and_tells_supervisor_once(app, client, session):
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


def test_a_second_lease_expiry_is_a_new_escalation(session):
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


def test_unclaimed_urgent_case_escalates_once(session):
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


def test_pay_due_warning_at_20_hours_then_breach_once_each(session):
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


def test_paperwork_overdue_once(session):
    p = people(session)
    now = utcnow()
    case = case_in(session, "paid", p, paperwork_due_at=now - dt.timedelta(minutes=1))
    not_yet = case_in(session, "paid", p, paperwork_due_at=now + dt.timedelta(days=1))
    assert sweeper.sweep(session, now)["paperwork_overdue"] == 1
    assert sweeper.sweep(session, now + dt.timedelta(days=3))["paperwork_overdue"] == 1  # not_yet
    assert sweeper.sweep(session, now + dt.timedelta(days=4))["paperwork_overdue"] == 0
    assert len(sms(session, case, "escalation")) == 1
    assert len(sms(session, not_yet, "escalation")) == 1


def test_fire_is_idempotent_under_a_race(session):
    """Two workers deciding to fire the same escalation: the unique key lets one through."""
    p = people(session)
    case = case_in(session, "paid", p)
    now = utcnow()
    digest = sweeper.Digest()
    assert sweeper._fire(session, digest, case=case, kind="paperwork_overdue", now=now) is True
    assert sweeper._fire(session, digest, case=case, kind="paperwork_overdue", now=now) is False
    assert digest.send(session, now) == 1
    assert len(sms(session, case, "escalation")) == 1
    assert len(escalations(session, case)) == 1
    assert [e.action for e in events(session, case)] == ["escalation.paperwork_overdue"]


def test_escalation_without_supervisor_phone_still_recorded(session, log_records):
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


def test_sweep_is_registered_as_periodic_job(app, session):
    jobs = app.extensions["aidline.periodic_jobs"]
    assert any(getattr(j, "__name__", "") == "sla_sweep" for j in jobs)
    p = people(session)
    case = case_in(session, "paid", p, paperwork_due_at=utcnow() - dt.timedelta(minutes=1))
    for job in jobs:
        if job.__name__ == "sla_sweep":
            job(session, utcnow())
    assert len(escalations(session, case)) == 1


# --- one message per supervisor per sweep -----------------------------------------------------


def _staff_sms(session, template):
    return list(
        session.scalars(
            select(SmsOutbox).where(SmsOutbox.template == template).order_by(SmsOutbox.id)
        )
    )


def test_a_sweep_tells_each_supervisor_once_and_records_every_case(session):
    p = people(session)
    deputy = factories.staff(session, role="supervisor", region=COUNTY, phone="+8613800000008")
    now = utcnow()
    unclaimed = [
        factories.case(
            session, resident_account=p.resident, created_at=now - dt.timedelta(minutes=60 - k)
        )
        for k in range(5)
    ]
    lapsed = case_in(session, "claimed", p, lease_expires_at=now - dt.timedelta(seconds=1))
    breach = case_in(
        session,
        "claimed",
        p,
        created_at=now - dt.timedelta(hours=25),
        lease_expires_at=now + dt.timedelta(minutes=5),
    )
    # Another county's case goes to its own supervisor, as the case's own message.
    other_supervisor = factories.staff(
        session, role="supervisor", region="371103", phone="+8613800000007"
    )
    elsewhere = factories.case(
        session,
        resident_account=p.resident,
        township="371103001",
        county="371103",
        created_at=now - dt.timedelta(minutes=30),
    )

    counts = sweeper.sweep(session, now)
    assert counts["unclaimed"] == 6 and counts["lease_expired"] == 1
    assert counts["pay_due_breach"] == 1

    # Every case: its own escalation record and timeline event, nothing forgotten.
    for case, kind in [(c, "unclaimed") for c in unclaimed] + [
        (lapsed, "lease_expired"),
        (breach, "pay_due_breach"),
    ]:
        [row] = escalations(session, case)
        assert row.kind == kind and row.notified == 2
        assert f"escalation.{kind}" in [e.action for e in events(session, case)]
    assert [e.kind for e in escalations(session, elsewhere)] == ["unclaimed"]
    assert escalations(session, elsewhere)[0].notified == 1

    # Each supervisor of the county: one digest for the seven cases, none per case.
    digests = _staff_sms(session, "escalation_digest")
    assert sorted(d.to_phone for d in digests) == sorted([p.supervisor.phone, deputy.phone])
    for d in digests:
        assert d.case_id is None and d.priority == 1
        assert d.params["count"] == 7
        assert d.params["summary"] == "超24小时未发放1件、认领后超时退回1件、超时无人认领5件"
        assert d.params["townships"] == "日照街道"
        # The worst first, then the oldest; masked in the text like every case number.
        assert d.params["case_nos"] == [breach.case_no, lapsed.case_no, unclaimed[0].case_no]
        assert templates.mask_case_no(breach.case_no) in d.body
        assert breach.case_no not in d.body
        assert d.body.startswith("【指尖办】督办：7件紧急求助逾期未处理（超24小时未发放1件")
    [single] = _staff_sms(session, "escalation")
    assert single.to_phone == other_supervisor.phone and single.case_id == elsewhere.id
    assert single.params["problem"] == sweeper.PROBLEMS["unclaimed"]

    # The next sweep finds nothing new and sends nothing.
    assert not any(sweeper.sweep(session, now + dt.timedelta(minutes=1)).values())
    assert len(_staff_sms(session, "escalation_digest")) == 2
    assert len(_staff_sms(session, "escalation")) == 1


def test_digest_names_at_most_three_townships(session):
    p = people(session)
    now = utcnow()
    townships = ["371102001", "371102002", "371102004", "371102008"]
    for k, code in enumerate(townships):
        for _ in range(k + 1):
            factories.case(
                session,
                resident_account=p.resident,
                township=code,
                county=COUNTY,
                created_at=now - dt.timedelta(minutes=30),
            )
    assert sweeper.sweep(session, now)["unclaimed"] == 10
    [digest] = _staff_sms(session, "escalation_digest")
    # The three with the most cases, most first; 日照街道 (one case) left to "等".
    assert digest.params["townships"] == "卧龙山街道、秦楼街道、石臼街道等"
    assert digest.params["count"] == 10


def test_digest_template_can_be_reworded_by_an_administrator(session):
    set_template_text(
        session, name="escalation_digest", text="督办{count}件：{case_nos}", actor_id=None
    )
    p = people(session)
    now = utcnow()
    cases = [
        factories.case(session, resident_account=p.resident, created_at=now - dt.timedelta(hours=1))
        for _ in range(2)
    ]
    sweeper.sweep(session, now)
    [digest] = _staff_sms(session, "escalation_digest")
    masked = "、".join(templates.mask_case_no(c.case_no) for c in cases)
    assert digest.body == f"督办2件：{masked}"


def test_worker_once_sweeps_then_sends_the_page_before_the_digest(app, session, fake_twilio):
    """`flask worker --once`: the sweep of a backlog, then a drain in which the duty page
    enqueued before the sweep still goes first, and the backlog is one SMS, not one per case."""
    p = people(session)
    now = utcnow()
    backlog = [
        factories.case(
            session, resident_account=p.resident, created_at=now - dt.timedelta(minutes=45)
        )
        for _ in range(30)
    ]
    notifications.enqueue(
        session,
        p.duty.phone,
        "duty_page",
        {"case_no": backlog[0].case_no, "township": "日照街道", "channel": "手机应用"},
    )
    session.commit()
    app.config.update(twilio_config(fake_twilio))
    out = app.test_cli_runner().invoke(args=["worker", "--once"])
    assert out.exit_code == 0, out.output
    assert [r.form["To"] for r in fake_twilio.requests] == [p.duty.phone, p.supervisor.phone]
    assert fake_twilio.requests[1].form["Body"].startswith("【指尖办】督办：30件")
    assert all(len(escalations(session, c)) == 1 for c in backlog)


# --- SLA report -------------------------------------------------------------------------------


def test_sla_report(app, client, session):
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
            case_id=case.id,
            actor=p.duty,
            action="claim",
            to_status="claimed",
            at=t0 + dt.timedelta(minutes=minutes),
        )
    session.flush()

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
