"""Sign-in helpers for tests: request a code and read it from the outbox, as a phone would."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from notifications.models import SmsOutbox
from server import sealing
from tests.conftest import SENSITIVE

# The tests' app configuration (tests/conftest.py): the at-rest key derives from SECRET_KEY.
TEST_KEYS = {"SECRET_KEY": "test-secret-key-with-enough-length-for-hs256", "ID_ENCRYPTION_KEYS": ""}


def code_sealed(value: str) -> bool:
    return isinstance(value, str) and value.startswith(sealing.PREFIX)


def latest_code(session: Session, phone: str) -> str:
    """The code in the newest sign-in SMS to ``phone`` (registered as sensitive)."""
    session.expire_all()
    row = session.scalars(
        select(SmsOutbox)
        .where(SmsOutbox.to_phone == phone, SmsOutbox.template == "sign_in_code")
        .order_by(SmsOutbox.id.desc())
    ).first()
    assert row is not None, f"no sign-in SMS to {phone}"
    assert code_sealed(row.params["code"]), "a sign-in code is never in clear in the outbox"
    code = sealing.opener(TEST_KEYS)(row.params["code"])
    assert code not in row.body
    SENSITIVE.add(code)
    return code


def request_code(client: Any, session: Session, phone: str, e164: str | None = None) -> str:
    resp = client.post("/api/v1/auth/sms-code", json={"phone": phone})
    assert resp.status_code == 202, resp.get_json()
    return latest_code(session, e164 or phone)


def sign_in(client: Any, session: Session, phone: str) -> dict[str, Any]:
    """Tokens of the resident ``phone`` (E.164), after a full SMS-code sign-in."""
    code = request_code(client, session, phone)
    resp = client.post("/api/v1/auth/token", json={"phone": phone, "code": code})
    assert resp.status_code == 200, resp.get_json()
    return resp.get_json()


def bearer(tokens: dict[str, Any]) -> dict[str, str]:
    return {"Authorization": f"Bearer {tokens['access_token']}"}
