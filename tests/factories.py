"""Test factories: they only add and flush; the test's transaction is rolled back."""

from __future__ import annotations

import datetime as dt
import itertools
from typing import Any

from flask import Flask
from sqlalchemy.orm import Session

from server.accounts.models import Account, AuthSession
from server.accounts.passwords import hash_password
from server.accounts.tokens import issue_access_token
from server.roster.models import DutyShift
from server.session import database

_seq = itertools.count(1)
# A cheap fixed hash: argon2 on every factory call would slow the suite down.
_PASSWORD = "correct horse battery"
_PASSWORD_HASH: str | None = None


def password_hash() -> str:
    global _PASSWORD_HASH
    if _PASSWORD_HASH is None:
        _PASSWORD_HASH = hash_password(_PASSWORD)
    return _PASSWORD_HASH


def resident(session: Session, *, phone: str | None = None, **fields: Any) -> Account:
    n = next(_seq)
    account = Account(role="resident", phone=phone or f"+861390000{n:04d}", **fields)
    session.add(account)
    session.flush()
    return account


def staff(
    session: Session, *, role: str, region: str, username: str | None = None, **fields: Any
) -> Account:
    n = next(_seq)
    account = Account(
        role=role,
        username=username or f"{role}{n}",
        password_hash=password_hash(),
        region_code=region,
        **fields,
    )
    session.add(account)
    session.flush()
    return account


def auth(app: Flask, account: Account) -> dict[str, str]:
    """An Authorization header for ``account`` (a signed-in session is opened for it)."""
    with app.app_context():
        with database(app).new_session() as s, s.begin():
            auth_session = AuthSession(account_id=account.id)
            s.add(auth_session)
        token, _ = issue_access_token(account, session_id=auth_session.id)
    return {"Authorization": f"Bearer {token}"}


# --- cases (workflow) -----------------------------------------------------------------------

TOWNSHIP = "371102001"  # 日照街道, 东港区
OTHER_TOWNSHIP = "371102002"  # 石臼街道, 东港区
COUNTY = "371102"


def case(
    session: Session,
    *,
    resident_account: Account | None = None,
    township: str | None = TOWNSHIP,
    county: str | None = None,
    urgent: bool = True,
    aid_type: str | None = None,
    status: str = "queued",
    created_at: Any = None,
    **fields: Any,
) -> Any:
    """A case placed directly in a queue (bypasses intake; ``status`` set as given)."""
    import datetime as dt
    import uuid

    from server.cases.clocks import pay_due_at
    from server.cases.models import Case
    from server.db import utcnow

    n = next(_seq)
    owner = resident_account or resident(session)
    created = created_at or utcnow() - dt.timedelta(minutes=5)
    queue = township or county or COUNTY
    kind = "JJ" if urgent else "SQ"
    values: dict[str, Any] = {
        "id": uuid.uuid4(),
        # The letter keeps the random suffix from forming a six-digit run that the privacy
        # scan would take for a sign-in code.
        "case_no": f"{kind}{queue}-{created:%Y%m%d}-{n:04d}x{uuid.uuid4().hex[:4]}",
        "urgent": urgent,
        "aid_type": aid_type or ("temporary_emergency" if urgent else "temporary_expenditure"),
        "status": status,
        "channel": "app",
        "resident_id": owner.id,
        "township_code": township,
        "county_code": county or (township[:6] if township else COUNTY),
        "accountable_township_code": township,
        "description": "测试求助",
        "created_at": created,
        "pay_due_at": pay_due_at(created) if urgent else None,
    }
    values.update(fields)
    row = Case(**values)
    session.add(row)
    session.flush()
    return row


def callback_task(session: Session, case: Any, *, phone: str = "+8613900000000", **fields: Any):
    """An open call-back task on ``case``, for its failed receipt SMS."""
    from notifications.models import CallbackTask, SmsOutbox

    sms = SmsOutbox(
        to_phone=phone, template="receipt", params={}, body="x", case_id=case.id, status="failed"
    )
    session.add(sms)
    session.flush()
    task = CallbackTask(
        case_id=case.id, outbox_id=sms.id, phone=phone, reason=fields.pop("reason", "x"), **fields
    )
    session.add(task)
    session.flush()
    return task


def aid_standard(session: Session, county: str = COUNTY, **fen: int) -> Any:
    """Demo aid standards for ``county`` (overridable per field, in fen)."""
    from server.cases.money import DEMO_STANDARDS_FEN, set_standard

    return set_standard(session, county_code=county, **{**DEMO_STANDARDS_FEN, **fen})


def on_duty(session: Session, account: Account, hours: int = 8) -> Account:
    """Put ``account`` on the roster from an hour ago for ``hours`` more; flush only."""
    now = dt.datetime.now(dt.UTC)
    session.add(
        DutyShift(
            account_id=account.id,
            starts_at=now - dt.timedelta(hours=1),
            ends_at=now + dt.timedelta(hours=hours),
        )
    )
    session.flush()
    return account


def document(session: Session, app: Flask, *, case_id: Any, kind: str = "other") -> Any:
    """A stored photo (cleaned, in the app's store) as a document of ``case_id``; flush only."""
    from server.db import utcnow
    from server.documents.content import clean
    from server.documents.service import stored_file
    from tests.files import jpeg_with_gps

    photo = clean(jpeg_with_gps())
    with app.app_context():
        row = stored_file(
            session, case_id=case_id, kind=kind, clean=photo, actor=None, now=utcnow()
        )
    session.add(row)
    session.flush()
    return row
