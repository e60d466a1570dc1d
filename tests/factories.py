"""Test factories: they only add and flush; the test's transaction is rolled back."""

from __future__ import annotations

import itertools
from typing import Any

from flask import Flask
from sqlalchemy.orm import Session

from server.accounts.models import Account, AuthSession
from server.accounts.passwords import hash_password
from server.accounts.tokens import issue_access_token
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
