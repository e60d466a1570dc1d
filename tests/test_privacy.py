"""No resident ID number or SMS code in clear in the database, the logs or any response.

The log half runs last (marker ``privacy_scan``): tests/conftest.py collects every log record
of the run, and the tests register the ID numbers and codes they use in ``SENSITIVE``.
"""

from __future__ import annotations

import re

import pytest
from sqlalchemy import select, update

from notifications.models import SmsOutbox
from server.accounts.idnumbers import check_digit, validate_id_number
from server.db import Base
from server.errors import ValidationFailed
from tests import factories
from tests.conftest import LOG_COLLECTOR, SENSITIVE
from tests.signin import bearer, latest_code

PHONE = "+8613812345678"
ID = "37110219880808" + "123"
ID += check_digit(ID)
SENSITIVE.add(ID)
ID_PATTERN = re.compile(r"(?<![0-9])([0-9]{17}[0-9Xx])(?![0-9])")
SKIP_TABLES = {"divisions", "alembic_version"}  # public reference data


def _is_id_number(value: str) -> bool:
    try:
        validate_id_number(value)
    except ValidationFailed:
        return False
    return True


def find_leaks(lines: list[str], secrets: set[str]) -> list[str]:
    """Lines showing a registered secret, or anything that is a valid ID number."""
    leaks = []
    patterns = [re.compile(rf"(?<![0-9]){re.escape(s)}(?![0-9])", re.IGNORECASE) for s in secrets]
    for line in lines:
        if any(p.search(line) for p in patterns):
            leaks.append(line)
            continue
        for match in ID_PATTERN.finditer(line):
            if _is_id_number(match.group(1)):
                leaks.append(line)
                break
    return leaks


def database_text(session) -> list[str]:
    """Every value of every row of every table (bar reference data), as text."""
    session.expire_all()
    out = []
    for table in Base.metadata.sorted_tables:
        if table.name in SKIP_TABLES:
            continue
        for row in session.execute(select(table)).all():
            for column, value in zip(table.columns, row, strict=True):
                if isinstance(value, bytes | memoryview):
                    value = bytes(value).decode("latin-1")
                out.append(f"{table.name}.{column.name}={value}")
    return out


def test_sign_in_and_profile_leave_nothing_in_clear(app, client, session):
    responses = []
    responses.append(client.post("/api/v1/auth/sms-code", json={"phone": PHONE}))
    code = latest_code(session, PHONE)

    # Not even the outbox row that has to deliver it holds the code in clear (it is sealed).
    holders = [line for line in database_text(session) if code in line]
    assert holders == [], holders

    # The worker sends it; then the resident signs in and fills in the profile.
    session.execute(update(SmsOutbox).values(status="sent"))
    session.flush()
    tokens_resp = client.post("/api/v1/auth/token", json={"phone": PHONE, "code": code})
    responses.append(tokens_resp)
    headers = bearer(tokens_resp.get_json())
    responses.append(client.patch("/api/v1/me", json={"id_number": ID}, headers=headers))
    responses.append(client.get("/api/v1/me", headers=headers))
    responses.append(client.patch("/api/v1/me", json={"id_number": ID[:-1] + "0"}, headers=headers))
    responses.append(
        client.post(
            "/api/v1/auth/refresh", json={"refresh_token": tokens_resp.get_json()["refresh_token"]}
        )
    )

    for resp in responses:
        text = resp.get_data(as_text=True)
        assert code not in text and ID not in text and ID[:-1] not in text
    assert responses[3].get_json()["id_number_masked"] == ID[:6] + "********" + ID[-4:]

    leaks = find_leaks(database_text(session), {code, ID})
    assert not leaks, leaks
    sms = session.scalars(select(SmsOutbox)).one()
    assert sms.params == {"code": "******"} and "******" in sms.body


def test_staff_reading_profiles_sees_masks_only(app, client, session):
    resident = factories.resident(session)
    client.patch("/api/v1/me", json={"id_number": ID}, headers=factories.auth(app, resident))
    staff = factories.staff(session, role="admin", region="3711")
    text = client.get("/api/v1/me", headers=factories.auth(app, staff)).get_data(as_text=True)
    assert ID not in text


def test_leak_finder_finds_leaks() -> None:
    assert find_leaks(["code is 123456 here"], {"123456"})
    assert not find_leaks(["division 91234567 here"], {"123456"})
    assert find_leaks([f"id={ID.lower()}"], set())  # unregistered, but shaped like an ID
    assert not find_leaks([f"id={ID[:6]}********{ID[-4:]}"], {ID})


@pytest.mark.privacy_scan
def test_logs_of_the_whole_run_hold_no_secrets() -> None:
    assert LOG_COLLECTOR.lines, "the log collector captured nothing; is it installed?"
    leaks = find_leaks(LOG_COLLECTOR.lines, SENSITIVE)
    assert not leaks, "secrets in the logs:\n" + "\n".join(leaks[:20])
