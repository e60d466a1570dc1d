"""Sign-in helpers for tests: request a code and read it from the outbox, as a phone would."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from notifications.models import SmsOutbox
from tests.conftest import SENSITIVE


def latest_code(session: Session, phone: str) -> str:
    """The code in the newest sign-in SMS to ``phone`` (registered as sensitive)."""
    session.expire_all()
    row = session.scalars(
        select(SmsOutbox)
        .where(SmsOutbox.to_phone == phone, SmsOutbox.template == "sign_in_code")
        .order_by(SmsOutbox.id.desc())
    ).first()
    assert row is not None, f"no sign-in SMS to {phone}"
    code = row.params["code"]
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
