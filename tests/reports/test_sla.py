"""The SLA report's county total, percentiles, current backlog, trend and night roster; the
city's report, one row per county."""

from __future__ import annotations

import datetime as dt

from server.cases.clocks import SHANGHAI
from server.cases.workflow_models import Escalation
from server.reports.sla import sla_report
from server.roster.models import DutyShift
from server.roster.service import night_of
from tests import factories
from tests.factories import COUNTY, OTHER_TOWNSHIP, TOWNSHIP

NOW = dt.datetime(2026, 11, 20, 15, 0, tzinfo=SHANGHAI)


def _urgent(session, township, hours_ago, paid_after=None, **fields):
    created = NOW - dt.timedelta(hours=hours_ago)
    paid = {}
    if paid_after is not None:
        paid = {"status": "paid", "paid_at": created + dt.timedelta(minutes=paid_after)}
    return factories.case(session, township=township, created_at=created, **paid, **fields)


def test_two_townships_and_the_county_total(session):
    # 日照街道: three paid in 1 h, 2 h and 30 h; one open past due, escalated twice.
    for minutes in (60, 120, 30 * 60):
        _urgent(session, TOWNSHIP, 48, paid_after=minutes)
    late = _urgent(session, TOWNSHIP, 30)
    for kind in ("claim_overdue", "pay_overdue"):
        session.add(Escalation(case_id=late.id, kind=kind, fired_at=NOW))
    # 石臼街道: one paid in 10 min; paperwork past due; applications 3, 10 and 40 days old.
    _urgent(
        session,
        OTHER_TOWNSHIP,
        5,
        paid_after=10,
        paperwork_due_at=NOW - dt.timedelta(hours=1),
    )
    for days in (3, 10, 40):
        factories.case(
            session, township=OTHER_TOWNSHIP, urgent=False, created_at=NOW - dt.timedelta(days=days)
        )
    # Outside the period (and another county): counted nowhere in the period's figures.
    _urgent(session, TOWNSHIP, 24 * 40, paid_after=30)
    _urgent(session, "371103001", 5, paid_after=30)
    duty = factories.staff(session, role="duty", region=TOWNSHIP)
    start, end = night_of(NOW)
    session.add(DutyShift(account_id=duty.id, starts_at=start, ends_at=end))
    session.flush()

    report = sla_report(session, region_code=COUNTY, since=None, until=None, now=NOW)
    rows = {r["township_code"]: r for r in report["townships"]}
    a, b, total = rows[TOWNSHIP], rows[OTHER_TOWNSHIP], report["total"]
    assert (a["urgent_cases"], a["paid_within_24h"], a["paid_late"]) == (4, 2, 1)
    assert a["paid_within_24h_pct"] == 50.0
    assert a["median_minutes_to_pay"] == 120.0 and a["p90_minutes_to_pay"] == 1800.0
    assert (a["open_urgent"], a["overdue_now"], a["open_past_due"]) == (1, 1, 1)
    assert a["escalations"] == 2
    assert a["on_duty_tonight"] is True and b["on_duty_tonight"] is False
    assert (b["urgent_cases"], b["paid_within_24h"], b["paperwork_overdue"]) == (1, 1, 1)
    assert (b["open_applications_7d"], b["open_applications_30d"]) == (1, 1)
    assert b["open_applications_older"] == 1
    assert total["urgent_cases"] == 5 and total["paid_within_24h"] == 3
    assert total["paid_within_24h_pct"] == 60.0
    assert total["median_minutes_to_pay"] == 90.0  # 10, 60, 120, 1800
    assert total["on_duty_tonight"] is False
    assert len(report["days"]) == 30 and report["days"][-1]["day"] == NOW.date()
    by_day = {d["day"]: d for d in report["days"]}
    two_days_ago = by_day[(NOW - dt.timedelta(hours=48)).date()]
    assert two_days_ago["urgent_cases"] == 3 and two_days_ago["paid_within_24h_pct"] == 66.7


def test_the_citys_report_has_a_row_per_county_and_the_city_total(session):
    # 东港区: paid in 1 h (日照街道) and in 30 h (石臼街道); 岚山区 (371103): one paid in 2 h,
    # one open past due. 莒县 (371122) has none.
    _urgent(session, TOWNSHIP, 48, paid_after=60)
    _urgent(session, OTHER_TOWNSHIP, 48, paid_after=30 * 60)
    _urgent(session, "371103001", 10, paid_after=120)
    _urgent(session, "371103001", 30)
    duty = factories.staff(session, role="duty", region=TOWNSHIP)
    start, end = night_of(NOW)
    session.add(DutyShift(account_id=duty.id, starts_at=start, ends_at=end))
    session.flush()

    report = sla_report(session, region_code="3711", since=None, until=None, now=NOW)
    rows = {r["township_code"]: r for r in report["townships"]}
    assert {"371102", "371103", "371122"} <= set(rows) and not any(len(c) != 6 for c in rows)
    donggang, lanshan, juxian = rows["371102"], rows["371103"], rows["371122"]
    assert donggang["township_name"] == "东港区"
    assert (donggang["urgent_cases"], donggang["paid_within_24h"], donggang["paid_late"]) == (
        2,
        1,
        1,
    )
    assert donggang["median_minutes_to_pay"] == 930.0  # 60 and 1,800 minutes
    assert (lanshan["urgent_cases"], lanshan["paid_within_24h"], lanshan["overdue_now"]) == (
        2,
        1,
        1,
    )
    assert juxian["urgent_cases"] == 0 and juxian["paid_within_24h_pct"] is None
    # One township of the city has its officer tonight: every county still lacks some.
    assert donggang["on_duty_tonight"] is False and donggang["unstaffed_townships"] >= 1
    total = report["total"]
    assert (total["urgent_cases"], total["paid_within_24h"], total["overdue_now"]) == (4, 2, 1)
    assert total["median_minutes_to_pay"] == 120.0  # 60, 120, 1,800
    assert total["unstaffed_townships"] == sum(r["unstaffed_townships"] for r in rows.values())


def test_the_night_is_the_coming_one_by_day_and_the_current_one_before_8(session):
    assert night_of(NOW) == (
        dt.datetime(2026, 11, 20, 20, tzinfo=SHANGHAI),
        dt.datetime(2026, 11, 21, 8, tzinfo=SHANGHAI),
    )
    early = dt.datetime(2026, 11, 21, 3, tzinfo=SHANGHAI)
    assert night_of(early)[0] == dt.datetime(2026, 11, 20, 20, tzinfo=SHANGHAI)
