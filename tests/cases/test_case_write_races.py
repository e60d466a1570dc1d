"""Writes that depend on a case's status, fired together with the move that ends it (real
commits, threads and a barrier): a note against reject / close / pay, a document against
close. Whatever the order, the database stays consistent: the status is the last move's
``to_status``, nothing is written after the case ended, no event the state table forbids."""

from __future__ import annotations

import threading
from typing import Any

import pytest
from sqlalchemy import select

from server.audit import AuditEntry
from server.cases import state
from server.cases.models import Case, CaseEvent
from server.session import database
from tests import files
from tests.factories import auth
from tests.files import multipart
from tests.workflow_support import case_in, people

pytestmark = pytest.mark.postgres

ROUNDS = 6
NOTE = {"action": "note", "message": "已电话联系本人"}


def DOCUMENT() -> dict:  # noqa: N802  (a body, like NOTE: a multipart upload, built per post)
    return multipart({"kind": "other"}, files.png(), "x.png")


# (status the case starts in, the racing write, the move that ends or changes the case)
RACES = {
    "note_vs_reject": ("claimed", ("actions", NOTE), {"action": "reject", "reason": "不符合"}),
    "note_vs_close": ("paid", ("actions", NOTE), {"action": "close"}),
    "note_vs_pay": (
        "claimed",
        ("actions", NOTE),
        {"action": "pay", "amount_fen": 50_000, "method": "cash"},
    ),
    "document_vs_close": ("paid", ("documents", DOCUMENT), {"action": "close"}),
}


def _fire(app: Any, case_id: Any, headers: dict[str, str], posts: list[tuple[str, dict]]) -> list:
    barrier = threading.Barrier(len(posts))
    results: list = [None] * len(posts)

    def post(i: int) -> None:
        client = app.test_client()
        path, body = posts[i]
        barrier.wait()
        sent = body() if callable(body) else {"json": body}
        r = client.post(f"/api/v1/cases/{case_id}/{path}", headers=headers, **sent)
        results[i] = r.status_code

    threads = [threading.Thread(target=post, args=(i,)) for i in range(len(posts))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    return results


def _inconsistencies(session: Any, case: Case) -> list[str]:
    """What is wrong with ``case`` as stored (empty when consistent)."""
    events = session.scalars(
        select(CaseEvent).where(CaseEvent.case_id == case.id).order_by(CaseEvent.id)
    ).all()
    audit = session.scalars(
        select(AuditEntry).where(AuditEntry.target_id == str(case.id)).order_by(AuditEntry.id)
    ).all()
    problems = []
    moves = [e for e in events if e.to_status is not None]
    if moves and moves[-1].to_status != case.status:
        problems.append(f"status {case.status} but last event {moves[-1].action}")
    for e in moves:
        if e.from_status and (e.from_status, e.action) not in state.TRANSITIONS:
            problems.append(f"event {e.action} from {e.from_status}")
    if case.status in state.FINAL_STATUSES:
        [end] = [i for i, e in enumerate(events) if e.to_status == case.status]
        if end != len(events) - 1:
            problems.append(f"events after the case ended: {[e.action for e in events[end:]]}")
        [end_audit] = [i for i, a in enumerate(audit) if (a.data or {}).get("to") == case.status]
        if end_audit != len(audit) - 1:
            problems.append(f"audit after the case ended: {[a.action for a in audit[end_audit:]]}")
        ended = events[end].at
        if any(e.at > ended for e in events) or any(a.at > ended for a in audit):
            problems.append("rows written after closed_at")
    return problems


@pytest.mark.parametrize("race", sorted(RACES))
def test_status_dependent_writes_race_the_move_that_ends_the_case(committed_app, race):
    start, (path, body), move = RACES[race]
    with database(committed_app).new_session() as s, s.begin():
        p = people(s)
        cases = [case_in(s, start, p) for _ in range(ROUNDS)]
    headers = auth(committed_app, p.duty)
    outcomes = []
    for case in cases:
        write, ended = _fire(committed_app, case.id, headers, [(path, body), ("actions", move)])
        outcomes.append((write, ended))
        # The move always goes through; the other write either lands before it or is refused.
        assert ended == 200 and write in (200, 201, 409), outcomes
    with database(committed_app).new_session() as s:
        problems = {str(c.id): _inconsistencies(s, s.get(Case, c.id)) for c in cases}
    assert not any(problems.values()), (outcomes, problems)
