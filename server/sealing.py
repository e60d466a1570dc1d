"""Secrets the outbox must hold until an SMS is sent (sign-in codes), sealed at rest.

The code is encrypted with the at-rest key (``ID_ENCRYPTION_KEYS``, Fernet) before it enters
the outbox; the stored body shows ``******`` in its place; the SMS worker opens it only to
hand the text to the provider, and blanks it once sent (notifications.templates.redact).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from cryptography.fernet import InvalidToken
from flask import current_app

from server.accounts.idnumbers import _fernet

PREFIX = "sealed:"


def seal(value: str) -> str:
    """``value`` encrypted for the outbox (needs the app's configuration)."""
    cfg = current_app.config
    token = _fernet(cfg.get("ID_ENCRYPTION_KEYS") or "", cfg["SECRET_KEY"]).encrypt(value.encode())
    return PREFIX + token.decode()


def opener(config: Mapping[str, Any]) -> Callable[[str], str]:
    """A function that opens sealed values with ``config``'s keys (no app context needed, for
    the worker's threads); values that were never sealed pass through."""
    fernet = _fernet(config.get("ID_ENCRYPTION_KEYS") or "", config["SECRET_KEY"])

    def open_(value: str) -> str:
        if not isinstance(value, str) or not value.startswith(PREFIX):
            return value
        try:
            return fernet.decrypt(value[len(PREFIX) :].encode()).decode()
        except InvalidToken:
            raise ValueError("sealed with a key no longer configured") from None

    return open_
