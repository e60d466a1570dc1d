"""Staff reads are audited, so they write: concurrent ones (real commits, threads and a
barrier) all answer 200 and each leaves its audit entry, on SQLite too, where a read that
only later asks for the write lock would be refused ("database is locked")."""

from __future__ import annotations

import threading

from sqlalchemy import func, select

from server.audit import AuditEntry
from server.session import database
from tests.factories import auth
from tests.workflow_support import case_in, people

READERS = 6
ROUNDS = 4


def test_concurrent_staff_reads_of_a_case_all_answer_and_are_all_audited(committed_app):
    with database(committed_app).new_session() as s, s.begin():
        p = people(s)
        case = case_in(s, "claimed", p)
    headers = auth(committed_app, p.duty)
    barrier = threading.Barrier(READERS)
    codes: list[int] = []
    lock = threading.Lock()

    def read() -> None:
        client = committed_app.test_client()
        for _ in range(ROUNDS):
            barrier.wait()
            code = client.get(f"/api/v1/cases/{case.id}", headers=headers).status_code
            with lock:
                codes.append(code)

    threads = [threading.Thread(target=read) for _ in range(READERS)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert codes == [200] * (READERS * ROUNDS)
    with database(committed_app).new_session() as s:
        audited = s.scalar(
            select(func.count())
            .select_from(AuditEntry)
            .where(AuditEntry.action == "case.read", AuditEntry.target_id == str(case.id))
        )
    assert audited == READERS * ROUNDS
