"""Races of issue 19 against a real server (threads and a barrier, several rounds), with the
invariants checked in the database afterwards.

B: a resident's tap against the ending (withdraw / reject / refer) of their open urgent case.
C: two hotline entries at once naming one ID number, from two phones or from one.

"Same person" (server/cases/intake.py): the same phone (account) has one open urgent case;
the same ID number on two phones gives two cases, each paged, linked by possible_duplicate.
On SQLite every writer is serialised, so the races cannot happen there; the invariants must
hold all the same.
"""

from __future__ import annotations

import datetime as dt
import threading
import uuid
from typing import Any

import pytest
import requests
from sqlalchemy import select

from notifications.models import SmsOutbox
from server.accounts.idnumbers import check_digit, id_number_hash
from server.accounts.models import Account
from server.cases.models import OPEN_STATUSES, Case, CaseEvent
from server.roster.models import DutyShift
from server.session import database
from tests import factories as f
from tests.conftest import SENSITIVE

pytestmark = pytest.mark.postgres

TOWNSHIP = "371102004"
FINAL = ("closed", "rejected", "withdrawn", "referred")
ROUNDS_B = 30  # ten of each ending action
ROUNDS_C = 16


def _add(app: Any, *rows: Any) -> None:
    with database(app).new_session() as s, s.begin():
        s.add_all(rows)
        s.flush()
        for row in rows:
            s.expunge(row)


def _duty(app: Any) -> Account:
    duty = Account(role="duty", username="duty-race", region_code=TOWNSHIP, phone="+8613900000901")
    _add(app, duty)
    now = dt.datetime.now(dt.UTC)
    _add(
        app,
        DutyShift(
            account_id=duty.id,
            starts_at=now - dt.timedelta(hours=1),
            ends_at=now + dt.timedelta(hours=8),
        ),
    )
    return duty


def _together(*posts: tuple[str, dict[str, str], dict[str, Any]]) -> list[Any]:
    """Send the POSTs (url, headers, body) at once (a barrier releases them together); their
    (status, body) in order."""
    barrier = threading.Barrier(len(posts))
    results: list[Any] = [None] * len(posts)

    def run(i: int) -> None:
        barrier.wait()
        results[i] = _post(*posts[i])

    threads = [threading.Thread(target=run, args=(i,)) for i in range(len(posts))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    return results


def _post(url: str, headers: dict[str, str], body: dict[str, Any]) -> tuple[int, Any]:
    resp = requests.post(url, json=body, headers=headers, timeout=60)
    return resp.status_code, resp.json()


def _check_timelines(s: Any, case_ids: list[uuid.UUID]) -> None:
    """Status equals the last move's to_status; nothing joins a case after it ended."""
    for case_id in case_ids:
        case = s.get(Case, case_id)
        events = s.scalars(
            select(CaseEvent).where(CaseEvent.case_id == case_id).order_by(CaseEvent.id)
        ).all()
        moves = [e for e in events if e.to_status is not None]
        assert case.status == moves[-1].to_status, (case.case_no, [e.action for e in events])
        ended = False
        for event in events:
            assert not (ended and event.action == "repeat_request"), case.case_no
            ended = ended or event.to_status in FINAL


def _paged(s: Any, case_id: uuid.UUID) -> bool:
    pages = s.scalars(
        select(SmsOutbox.id).where(SmsOutbox.case_id == case_id, SmsOutbox.template == "duty_page")
    ).all()
    page_events = s.scalars(
        select(CaseEvent.id).where(CaseEvent.case_id == case_id, CaseEvent.action == "page")
    ).all()
    return len(pages) == 1 and len(page_events) == 1


ENDINGS = (
    ("withdraw", "resident", {"action": "withdraw"}),
    ("reject", "duty", {"action": "reject", "reason": "核实不符"}),
    ("refer", "duty", {"action": "refer", "department": "housing", "reason": "转住建"}),
)


def test_race_b_a_tap_never_joins_a_case_that_is_ending(committed_app, live):
    app = committed_app
    duty = _duty(app)
    duty_h = f.auth(app, duty)
    folded = created = 0
    for r in range(ROUNDS_B):
        name, who, action = ENDINGS[r % len(ENDINGS)]
        me = Account(role="resident", phone=f"+86137100{r:05d}")
        _add(app, me)
        me_h = f.auth(app, me)
        tap = {"township_code": TOWNSHIP, "description": f"第{r}轮"}
        code, first = _post(f"{live}/api/v1/urgent-requests", {**me_h, "Idempotency-Key": "a"}, tap)
        assert code == 201, first
        case_a = first["id"]
        if who == "duty":
            code, claimed = _post(f"{live}/api/v1/townships/{TOWNSHIP}/queue/claim", duty_h, {})
            assert code == 200 and claimed["id"] == case_a, claimed
        tap_h = {**me_h, "Idempotency-Key": "b"}
        (tap_code, answer), (end_code, ended) = _together(
            (f"{live}/api/v1/urgent-requests", tap_h, tap),
            (
                f"{live}/api/v1/cases/{case_a}/actions",
                me_h if who == "resident" else duty_h,
                action,
            ),
        )
        assert tap_code in (200, 201), answer
        assert end_code in (200, 409), ended
        if end_code == 409:
            assert ended["code"] == "concurrent_update", ended
        # every tap ends in an open case or a new one
        assert answer["status"] in OPEN_STATUSES, (name, answer["status"])
        if tap_code == 200:
            folded += 1
            assert answer["id"] == case_a
        else:
            created += 1
            assert answer["id"] != case_a
        code, retried = _post(f"{live}/api/v1/urgent-requests", tap_h, tap)
        assert code in (200, 201) and retried["status"] in OPEN_STATUSES, (name, retried)
        with database(app).new_session() as s:
            cases = s.scalars(select(Case).where(Case.resident_id == me.id)).all()
            _check_timelines(s, [c.id for c in cases])
            still_open = [c for c in cases if c.status in OPEN_STATUSES]
            assert len(still_open) == 1, [(c.case_no, c.status) for c in cases]
            for c in cases:
                assert _paged(s, c.id), c.case_no
            a = s.get(Case, uuid.UUID(case_a))
            repeats = s.scalars(
                select(CaseEvent.id).where(
                    CaseEvent.case_id == a.id, CaseEvent.action == "repeat_request"
                )
            ).all()
            if tap_code == 200:
                assert repeats, "a joined tap left no trace on the case"
                if end_code == 200:  # the ending came after the join, having seen it
                    assert a.status in FINAL
            if end_code == 409:
                assert a.status in OPEN_STATUSES and repeats
        # the next round's claim must find its own case first
        for c in still_open:
            code, body = _post(f"{live}/api/v1/cases/{c.id}/actions", me_h, {"action": "withdraw"})
            assert code == 200, body
    assert folded + created == ROUNDS_B


def _id_number(n: int) -> str:
    first17 = f"37110219800101{n:03d}"
    value = first17 + check_digit(first17)
    SENSITIVE.add(value)
    return value


def test_race_c_one_id_number_from_two_phones_gives_two_linked_cases(committed_app, live):
    app = committed_app
    _duty(app)
    ops = [Account(role="operator", username=f"op-race-{i}", region_code="3711") for i in range(2)]
    _add(app, *ops)
    headers = [f.auth(app, op) for op in ops]
    for r in range(ROUNDS_C):
        same_phone = r % 4 == 3
        keyed = r % 2 == 0
        id_number = _id_number(r)
        phones = [f"1371200{r:02d}1{i}" for i in range(2)]
        if same_phone:
            phones[1] = phones[0]

        entries = [
            (
                f"{live}/api/v1/intake",
                {**headers[i], "Idempotency-Key": f"call-{r}"} if keyed else headers[i],
                {
                    "phone": phones[i],
                    "id_number": id_number,
                    "channel": "hotline",
                    "urgent": True,
                    "township_code": TOWNSHIP,
                    "notes": f"第{r}轮来电{i}",
                },
            )
            for i in range(2)
        ]
        answers = _together(*entries)
        codes = sorted(code for code, _ in answers)
        with app.app_context():
            digest = id_number_hash(id_number)
        with database(app).new_session() as s:
            cases = s.scalars(
                select(Case).where(Case.subject_id_hash == digest, Case.urgent.is_(True))
            ).all()
            _check_timelines(s, [c.id for c in cases])
            holders = s.scalars(select(Account.id).where(Account.id_number_hash == digest)).all()
            assert len(holders) == 1, holders
            for c in cases:
                assert c.status == "queued" and _paged(s, c.id), c.case_no
            if same_phone:
                assert codes == [200, 201], answers
                assert len(cases) == 1
                assert answers[0][1]["id"] == answers[1][1]["id"]
                continue
            assert codes == [201, 201], answers
            assert len(cases) == 2 and {c.subject_phone for c in cases} == {
                f"+86{p}" for p in phones
            }
            for c, other in (cases, cases[::-1]):
                links = s.scalars(
                    select(CaseEvent).where(
                        CaseEvent.case_id == c.id, CaseEvent.action == "possible_duplicate"
                    )
                ).all()
                assert [e.data["case_id"] for e in links] == [str(other.id)], c.case_no
                assert not links[0].resident_visible
            assert not s.scalars(
                select(CaseEvent.id).where(
                    CaseEvent.case_id.in_([c.id for c in cases]),
                    CaseEvent.action == "repeat_request",
                )
            ).all()
