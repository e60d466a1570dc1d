"""Working days (chinese-calendar + administrator overrides + fallback) and the clocks."""

from __future__ import annotations

import datetime as dt
import logging

import chinese_calendar
import pytest

from server.cases import clocks
from server.cases.clocks import SHANGHAI, add_working_days, paperwork_due_at
from server.cases.workflow_models import CalendarOverride
from tests import factories


def local(text: str) -> dt.datetime:
    return dt.datetime.fromisoformat(text).replace(tzinfo=SHANGHAI)


@pytest.mark.parametrize(
    ("paid", "due"),
    [
        # National Day 2026: 10-01..10-07 off, Saturday 10-10 a make-up workday.
        ("2026-09-30T10:00", "2026-10-13T10:00"),
        # Spring Festival 2026: 02-15..02-23 off, Saturday 02-14 and 02-28 make-up workdays.
        ("2026-02-12T15:30", "2026-02-26T15:30"),
        # An ordinary week: Monday -> next Monday.
        ("2026-06-01T09:00", "2026-06-08T09:00"),
        # Paid on a Saturday: counting starts on Monday.
        ("2026-06-06T22:00", "2026-06-12T22:00"),
    ],
)
def test_working_days_in_known_years(paid, due):
    assert add_working_days(local(paid), 5) == local(due)


def test_examples_agree_with_installed_calendar():
    assert chinese_calendar.is_workday(dt.date(2026, 10, 10))  # 调休
    assert chinese_calendar.is_workday(dt.date(2026, 10, 8))
    assert not chinese_calendar.is_workday(dt.date(2026, 10, 7))
    assert not chinese_calendar.is_workday(dt.date(2026, 2, 16))
    assert chinese_calendar.is_workday(dt.date(2026, 2, 14))


def test_local_time_decides_the_day():
    # 2026-10-09 16:30 UTC is already Saturday 10-10 00:30 in Shanghai; counting from the
    # local date gives 10-12..10-16 (from the UTC date it would wrongly end on 10-15).
    paid = dt.datetime(2026, 10, 9, 16, 30, tzinfo=dt.UTC)
    due = add_working_days(paid, 5)
    assert due.tzinfo is not None and due.utcoffset() == dt.timedelta(0)
    assert due.astimezone(SHANGHAI) == local("2026-10-16T00:30")


def test_unknown_year_falls_back_with_warning(log_records):
    due = add_working_days(local("2026-12-28T10:00"), 5)
    # 12-29, 12-30, 12-31, then Mon–Fri of 2027: 01-01 (Fri) and 01-04 (Mon).
    assert due == local("2027-01-04T10:00")
    warnings = [r for r in log_records.records if r.levelno == logging.WARNING]
    assert any("2027" in r.getMessage() for r in warnings)


def test_overrides_win_in_unknown_and_known_years():
    overrides = {dt.date(2027, 1, 1): False}  # 元旦 entered by an administrator
    assert add_working_days(local("2026-12-28T10:00"), 5, overrides) == local("2027-01-05T10:00")
    # A make-up Saturday entered for a known year counts too.
    overrides = {dt.date(2026, 6, 6): True}
    assert add_working_days(local("2026-06-05T09:00"), 1, overrides) == local("2026-06-06T09:00")


@pytest.mark.parametrize("year", [1990, 2003, 2099, 9998])
def test_never_raises_for_any_year(year):
    due = add_working_days(local(f"{year}-03-02T08:00"), 5)
    assert due > local(f"{year}-03-02T08:00")


def test_paperwork_due_reads_overrides_from_database(session):
    session.add(CalendarOverride(day=dt.date(2027, 1, 1), workday=False, note="元旦"))
    session.add(CalendarOverride(day=dt.date(2026, 1, 1), workday=True, note="old, ignored"))
    session.flush()
    assert paperwork_due_at(session, local("2026-12-28T10:00")) == local("2027-01-05T10:00")


def test_pay_due_is_24_hours():
    assert clocks.pay_due_at(local("2026-02-16T23:30")) == local("2026-02-17T23:30")


def test_local_text():
    assert clocks.local_text(dt.datetime(2026, 10, 13, 2, 0, tzinfo=dt.UTC)) == "10月13日 10:00"
    assert clocks.local_text(None) == ""


def test_calendar_api_and_cli(app, client, session):
    admin = factories.staff(session, role="admin", region="3711")
    duty = factories.staff(session, role="duty", region=factories.TOWNSHIP)
    headers = factories.auth(app, admin)
    r = client.put(
        "/api/v1/calendar/overrides/2027-01-01",
        json={"workday": False, "note": "元旦"},
        headers=headers,
    )
    assert r.status_code == 200 and r.json == {
        "day": "2027-01-01",
        "workday": False,
        "note": "元旦",
    }
    assert (
        client.put(
            "/api/v1/calendar/overrides/2027-13-01", json={"workday": False}, headers=headers
        ).status_code
        == 422
    )
    assert (
        client.get("/api/v1/calendar/overrides", headers=factories.auth(app, duty)).status_code
        == 403
    )
    listed = client.get("/api/v1/calendar/overrides?year=2027", headers=headers)
    assert [row["day"] for row in listed.json] == ["2027-01-01"]

    runner = app.test_cli_runner()
    result = runner.invoke(args=["calendar", "due", "2026-12-28T10:00"])
    assert result.exit_code == 0 and result.output.strip() == "2027-01-05T10:00:00+08:00"
    result = runner.invoke(args=["calendar", "set", "2027-02-20", "--workday", "--note", "调休"])
    assert result.exit_code == 0, result.output
    result = runner.invoke(args=["calendar", "list", "--year", "2027"])
    assert "2027-02-20 workday 调休" in result.output and "2027-01-01 holiday 元旦" in result.output
    assert runner.invoke(args=["calendar", "unset", "2027-02-20"]).exit_code == 0
    assert runner.invoke(args=["calendar", "unset", "2027-02-20"]).exit_code != 0

    assert (
        client.delete("/api/v1/calendar/overrides/2027-01-01", headers=headers).status_code == 204
    )
    assert (
        client.delete("/api/v1/calendar/overrides/2027-01-01", headers=headers).status_code == 404
    )
