"""The SMS side reports to the case side through hooks, never by importing it."""

from __future__ import annotations

import ast
from pathlib import Path

from sqlalchemy import select

import notifications
from notifications import delivery
from server.cases import sms_hooks
from server.cases.models import CaseEvent
from tests import factories
from tests.sms_helpers import make_case

NOTIFICATIONS = Path(notifications.__file__).parent


def _imported_modules(path: Path) -> list[str]:
    names = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            names += [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module:
            # "from server import cases" imports server.cases as much as "import server.cases".
            names += [node.module] + [f"{node.module}.{alias.name}" for alias in node.names]
    return names


def test_notifications_imports_nothing_of_server_cases():
    offending = {
        f"{path.name}: {name}"
        for path in sorted(NOTIFICATIONS.glob("*.py"))
        for name in _imported_modules(path)
        if name == "server.cases" or name.startswith("server.cases.")
    }
    assert len(list(NOTIFICATIONS.glob("*.py"))) > 1
    assert offending == set()


def test_registering_the_case_hooks_again_writes_one_timeline_entry(app, session):
    sms_hooks.register()  # as a second create_app in the same process does
    resident = factories.resident(session)
    case = make_case(session, resident)
    row = notifications.enqueue(
        session, resident.phone, "claimed", {"case_no": "x", "township": "日照街道"}, case.id
    )
    session.flush()
    delivery.fail(session, row, status="failed", code="21211", error="invalid number")
    session.commit()
    events = session.scalars(select(CaseEvent).where(CaseEvent.case_id == case.id)).all()
    assert [(e.action, e.resident_visible) for e in events] == [("sms_undelivered", False)]
    assert events[0].data["outbox_id"] == row.id and events[0].data["error_code"] == "21211"
