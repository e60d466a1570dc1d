"""A case's row lock and row version: how writes that depend on its status exclude each other.

Every such write reads the case with ``case_for_write`` (row-locked for the transaction) and
flushes through ``flush`` or inside ``concurrent_update_is_conflict``: the mapper's
``version_id_col`` makes a write against a version someone else changed meanwhile a 409.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from contextlib import contextmanager

from sqlalchemy.orm import Session
from sqlalchemy.orm.exc import StaleDataError

from server.cases.models import Case
from server.errors import Conflict, NotFound


@contextmanager
def concurrent_update_is_conflict() -> Iterator[None]:
    """A concurrent change to the same case (row version, at any flush) becomes a 409."""
    try:
        yield
    except StaleDataError as exc:
        raise Conflict(
            "案件刚刚被其他人更新，请刷新后重试。",
            code="concurrent_update",
            message_en="The case was changed by someone else just now; reload and retry.",
        ) from exc


def flush(session: Session) -> None:
    """Flush; a concurrent change to the same case (row version) becomes a 409."""
    with concurrent_update_is_conflict():
        session.flush()


def case_for_write(session: Session, case_id: uuid.UUID) -> Case:
    """The case, row-locked for this transaction (404 when absent): every write that depends
    on its status reads it here, so the status it checks is the one it writes against."""
    # FOR NO KEY UPDATE on PostgreSQL: concurrent writers of the case queue here and then see
    # the committed status; the events' foreign-key checks (KEY SHARE) are not blocked.
    # SQLite serialises write transactions already (server/session.py).
    with concurrent_update_is_conflict():  # a copy held in the session older than the row
        case = session.get(Case, case_id, with_for_update={"key_share": True})
    if case is None:
        raise NotFound("未找到该案件。", message_en="Case not found.")
    return case
