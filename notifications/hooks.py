"""What the SMS side tells the case side, without importing it.

``server`` uses ``notifications``, never the reverse (STYLE.md): the case package registers a
callback for each event at start-up (``server.cases.sms_hooks.register``, called by the app
factory), and notifications calls them in the caller's transaction with plain data.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from sqlalchemy.orm import Session


@dataclass(frozen=True)
class FinalFailure:
    """A resident-facing message of a case finally failed; a call-back task was opened."""

    case_id: uuid.UUID
    outbox_id: int
    template: str
    error_code: str | None
    phone_masked: str
    callback_task_id: int


@dataclass(frozen=True)
class CallbackDone:
    """Staff phoned the resident and closed the call-back task."""

    case_id: uuid.UUID
    callback_task_id: int
    actor: Any  # the caller's signed-in account, handed back as it came
    note: str | None


FinalFailureHook = Callable[[Session, FinalFailure], None]
CallbackDoneHook = Callable[[Session, CallbackDone], None]

_final_failure: list[FinalFailureHook] = []
_callback_done: list[CallbackDoneHook] = []


def on_final_failure(callback: FinalFailureHook) -> FinalFailureHook:
    """Call ``callback`` whenever a call-back task is opened for an undelivered message."""
    if callback not in _final_failure:  # create_app runs more than once in a process
        _final_failure.append(callback)
    return callback


def on_callback_done(callback: CallbackDoneHook) -> CallbackDoneHook:
    """Call ``callback`` whenever staff close a call-back task."""
    if callback not in _callback_done:
        _callback_done.append(callback)
    return callback


def final_failure(session: Session, event: FinalFailure) -> None:
    """Tell every registered callback that a call-back task was opened."""
    for callback in _final_failure:
        callback(session, event)


def callback_done(session: Session, event: CallbackDone) -> None:
    """Tell every registered callback that a call-back task was closed."""
    for callback in _callback_done:
        callback(session, event)
