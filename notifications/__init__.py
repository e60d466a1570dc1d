"""SMS subsystem: templates, transactional outbox, senders, worker. Knows nothing of Flask."""

from __future__ import annotations

import threading
import time
import uuid
import weakref
from typing import Any

from sqlalchemy import event, select
from sqlalchemy.orm import Session, SessionTransaction, object_session
from sqlalchemy.orm.util import identity_key

from notifications import templates
from notifications.models import SmsOutbox, SmsTemplateOverride
from server.db import is_postgresql, utcnow

# PostgreSQL channel the worker LISTENs on; enqueue NOTIFYs it (delivered on commit only).
NOTIFY_CHANNEL = "aidline_sms_outbox"

# Administrators' template wording is cached per process: a change made in this process is
# used from its commit on, one made in another process within this many seconds.
OVERRIDE_CACHE_SECONDS = 10.0

# session.info keys: "this transaction queued an SMS" (NOTIFY at commit), "this session wrote
# template overrides" (read its own overrides, drop the cache when it ends).
_NOTIFY = "aidline.sms_notify"
_OVERRIDES_WRITTEN = "aidline.sms_overrides_written"


class _OverrideCache:
    """Every override's text, per database bind, reloaded after ``OVERRIDE_CACHE_SECONDS``.

    Keyed by the session's bind (the engine; a test's connection), weakly, so a cache never
    outlives what it was read from.
    """

    def __init__(self) -> None:
        self._entries: weakref.WeakKeyDictionary[Any, tuple[float, dict[str, str]]] = (
            weakref.WeakKeyDictionary()
        )
        self._lock = threading.Lock()

    def texts(self, session: Session) -> dict[str, str]:
        bind = session.get_bind()
        now = time.monotonic()
        entry = self._entries.get(bind)
        if entry is not None and now - entry[0] < OVERRIDE_CACHE_SECONDS:
            return entry[1]
        rows = session.execute(select(SmsTemplateOverride.name, SmsTemplateOverride.text))
        texts = {name: text for name, text in rows}
        with self._lock:
            self._entries[bind] = (now, texts)
        return texts

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()


_overrides = _OverrideCache()


def _override_text(session: Session, template: str) -> str | None:
    if (
        session.info.get(_OVERRIDES_WRITTEN)
        or identity_key(SmsTemplateOverride, template) in session.identity_map
        or any(isinstance(obj, SmsTemplateOverride) for obj in session.new)
    ):
        # This transaction touches overrides itself: what it sees, not the committed cache.
        override = session.get(SmsTemplateOverride, template)
        return override.text if override else None
    return _overrides.texts(session).get(template)


def enqueue(
    session: Session,
    to: str,
    template: str,
    params: dict[str, Any],
    case_id: uuid.UUID | None = None,
) -> SmsOutbox:
    """Add an SMS to the outbox in the caller's transaction (sent only if it commits); the
    transaction NOTIFYs the workers when it commits."""
    now = utcnow()
    announce(session)
    row = SmsOutbox(
        to_phone=to,
        template=template,
        params=params,
        body=templates.render(
            template, templates.shown(template, params), text=_override_text(session, template)
        ),
        case_id=case_id,
        priority=templates.priority(template),
        status="pending",
        attempts=0,
        next_attempt_at=now,
        created_at=now,
        updated_at=now,
    )
    session.add(row)
    return row


def announce(session: Session) -> None:
    """NOTIFY ``NOTIFY_CHANNEL`` when the caller's transaction commits (PostgreSQL): the SMS
    workers look at the outbox and the open queue pages (server/console/live.py) at their
    township's queue at once. Every queued SMS does; so does every move of a case
    (``server.cases.transitions``), SMS or not."""
    if is_postgresql(session):
        # NOTIFY is transactional: a rolled-back change wakes nobody, a commit wakes the
        # workers at once (an urgent page leaves within a second, not at the next poll).
        # One NOTIFY per transaction, sent just before it commits (_notify_on_commit).
        session.info[_NOTIFY] = True


@event.listens_for(Session, "before_commit")
def _notify_on_commit(session: Session) -> None:
    if session.info.pop(_NOTIFY, False):
        session.connection().exec_driver_sql(f"NOTIFY {NOTIFY_CHANNEL}")


@event.listens_for(Session, "after_transaction_end")
def _transaction_end(session: Session, transaction: SessionTransaction) -> None:
    if transaction.parent is not None:
        return
    session.info.pop(_NOTIFY, None)  # rolled back: nothing to announce
    if session.info.pop(_OVERRIDES_WRITTEN, False):
        _overrides.clear()  # committed (or undone): every session reads the truth again


def _override_written(_mapper: Any, _connection: Any, target: SmsTemplateOverride) -> None:
    session = object_session(target)
    if session is not None:
        session.info[_OVERRIDES_WRITTEN] = True
    _overrides.clear()


for _name in ("after_insert", "after_update", "after_delete"):
    event.listen(SmsTemplateOverride, _name, _override_written)
