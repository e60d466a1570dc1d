"""The case side of what the SMS subsystem reports: staff-only timeline entries.

``notifications`` does not import ``server.cases``; it calls the hooks registered here
(``register``, from the app factory) with plain data.
"""

from __future__ import annotations

from sqlalchemy.orm import Session

from notifications import hooks
from server.cases.events import add_event


def message_undelivered(session: Session, event: hooks.FinalFailure) -> None:
    """Note on the case's timeline that the resident was not reached and must be phoned."""
    add_event(
        session,
        case_id=event.case_id,
        actor=None,
        action="sms_undelivered",
        text_zh=f"短信未能送达居民（{event.phone_masked}），已生成电话回访任务。",
        data={
            "outbox_id": event.outbox_id,
            "template": event.template,
            "error_code": event.error_code,
            "callback_task_id": event.callback_task_id,
        },
        resident_visible=False,
    )


def callback_done(session: Session, event: hooks.CallbackDone) -> None:
    """Note on the case's timeline that staff phoned the resident."""
    note = event.note
    add_event(
        session,
        case_id=event.case_id,
        actor=event.actor,
        action="callback_done",
        text_zh="已电话联系居民（短信未送达的回访）。" + (f"备注：{note}" if note else ""),
        data={"callback_task_id": event.callback_task_id},
        resident_visible=False,
    )


def register() -> None:
    """Register the case-side SMS hooks (idempotent)."""
    hooks.on_final_failure(message_undelivered)
    hooks.on_callback_done(callback_done)
