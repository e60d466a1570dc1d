"""The claim path's statements: division names from the gazetteer, the resident's phone with
the case, the template from the cache; and the division checks behind the queue routes."""

from __future__ import annotations

import pytest
from sqlalchemy import event

from server.errors import NotFound
from server.queues.routes import TRIAGE_LEVELS
from server.queues.service import require_division
from tests import factories
from tests.factories import TOWNSHIP, auth
from tests.workflow_support import people, sms


def _claim(client, app, account):  # type: ignore[no-untyped-def]
    return client.post(f"/api/v1/townships/{TOWNSHIP}/queue/claim", headers=auth(app, account))


def test_claim_reads_no_division_account_or_template_rows(app, client, session, connection):  # type: ignore[no-untyped-def]
    p = people(session)
    first = factories.case(session, resident_account=p.resident)
    second = factories.case(session, resident_account=p.resident, contact_phone="+8613811112222")
    session.commit()
    assert _claim(client, app, p.duty).status_code == 200  # warms the per-process caches

    seen: list[str] = []

    def log(conn, cursor, statement, *args):  # type: ignore[no-untyped-def]
        seen.append(statement)

    event.listen(connection, "before_cursor_execute", log)
    r = _claim(client, app, p.duty2)
    event.remove(connection, "before_cursor_execute", log)
    assert r.status_code == 200 and r.json["id"] == str(second.id)
    assert not any("FROM divisions" in s or "sms_template_overrides" in s for s in seen)
    assert sum(s.lstrip().startswith("SELECT") for s in seen) <= 3  # auth, claim, first-claim
    # The "claimed" SMS go to the account's phone, or the request's contact phone.
    assert [s.to_phone for s in sms(session, first)] == [p.resident.phone]
    assert [s.to_phone for s in sms(session, second)] == ["+8613811112222"]
    assert sms(session, second)[0].params["township"] == "日照街道"


def test_claim_when_no_phone_is_known(app, client, session):  # type: ignore[no-untyped-def]
    p = people(session)
    p.resident.phone = None
    case = factories.case(session, resident_account=p.resident)
    session.commit()
    r = _claim(client, app, p.duty)
    assert r.status_code == 200 and r.json["id"] == str(case.id)
    assert sms(session, case) == []


def test_require_division_from_the_gazetteer_and_the_table(session):  # type: ignore[no-untyped-def]
    assert require_division(session, TOWNSHIP, "township") == "日照街道"
    assert require_division(session, "3711", TRIAGE_LEVELS) == "日照市"
    assert require_division(session, "371102", TRIAGE_LEVELS) == "东港区"
    assert require_division(session, "110101001", "township")  # outside the deployment city
    assert require_division(session, "37", "province") == "山东省"
    for code, level in (
        ("371102", "township"),  # a county where a township is wanted
        (TOWNSHIP, TRIAGE_LEVELS),
        ("371102999", "township"),  # no such township
        ("3799", "city"),
    ):
        with pytest.raises(NotFound):
            require_division(session, code, level)
