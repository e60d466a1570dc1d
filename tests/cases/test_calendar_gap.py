"""The administrators' banner: next year's holidays missing from 1 November."""

from __future__ import annotations

import datetime as dt

from server.cases import settings
from server.cases.clocks import year_known


def test_the_calendar_gap_from_1_november_until_next_year_is_known(session):
    assert year_known(2026) and not year_known(2030)
    assert settings.calendar_gap(session, today=dt.date(2029, 10, 31)) is None
    assert settings.calendar_gap(session, today=dt.date(2029, 11, 1)) == 2030
    assert settings.calendar_gap(session, today=dt.date(2025, 11, 1)) is None  # 2026 is known
    settings.set_override(session, actor=None, day=dt.date(2030, 1, 1), workday=False, note="元旦")
    assert settings.calendar_gap(session, today=dt.date(2029, 12, 31)) is None
