"""The roster as supervisors keep it: copy last week, remove a shift (scoped, audited)."""

from __future__ import annotations

import datetime as dt

import pytest
from sqlalchemy import select

from server.audit import AuditEntry
from server.cases.clocks import SHANGHAI
from server.errors import NotFound
from server.roster import service
from server.roster.models import DutyShift
from tests import factories
from tests.factories import COUNTY, TOWNSHIP

MONDAY = dt.datetime(2026, 11, 23, tzinfo=SHANGHAI)


def _night(account, day: int) -> DutyShift:
    start = MONDAY + dt.timedelta(days=day, hours=20)
    return DutyShift(account_id=account.id, starts_at=start, ends_at=start + dt.timedelta(hours=12))


def test_copy_last_week_adds_each_shift_once(session):
    duty = factories.staff(session, role="duty", region=TOWNSHIP)
    gone = factories.staff(session, role="duty", region=TOWNSHIP, active=False)
    session.add_all([_night(duty, -7), _night(duty, -1), _night(gone, -3), _night(duty, 0)])
    session.flush()
    added = service.copy_shifts(session, township_codes=[TOWNSHIP], week_start=MONDAY)
    assert added == 1  # Monday's night is there already; the disabled officer's is not copied
    again = service.copy_shifts(session, township_codes=[TOWNSHIP], week_start=MONDAY)
    assert again == 0
    starts = sorted(
        s.starts_at
        for s, _ in service.shifts_between(
            session,
            township_codes=[TOWNSHIP],
            start=MONDAY,
            end=MONDAY + dt.timedelta(days=7),
        )
    )
    # Sunday's night reaches into Monday; last Sunday's was copied to this Sunday.
    assert starts == [MONDAY + dt.timedelta(days=d, hours=20) for d in (-1, 0, 6)]


def test_removing_a_shift_is_scoped_and_audited(session):
    duty = factories.staff(session, role="duty", region=TOWNSHIP)
    shift = _night(duty, 0)
    session.add(shift)
    session.flush()
    other = factories.staff(session, role="supervisor", region="371103")
    with pytest.raises(NotFound):
        service.remove_shift(session, actor=other, shift_id=shift.id)
    supervisor = factories.staff(session, role="supervisor", region=COUNTY)
    service.remove_shift(session, actor=supervisor, shift_id=shift.id)
    assert session.get(DutyShift, shift.id) is None
    entry = session.scalars(select(AuditEntry).where(AuditEntry.action == "roster.remove")).one()
    assert entry.actor_id == supervisor.id and entry.target_id == str(duty.id)
