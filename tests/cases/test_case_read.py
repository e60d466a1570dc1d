"""The resident's status read, ``GET /api/v1/cases/{id}``: its one-statement path
(``queries.resident_read``) answers with the very bytes the CaseSchema path would, and leaves
every refusal, and every staff read, to that path."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from typing import Any

import pytest
from sqlalchemy import event, select, update
from sqlalchemy.orm import Session

from server.accounts.models import Account, AuthSession
from server.audit import AuditEntry
from server.cases import queries
from server.cases.models import Case, CaseEvent
from server.db import utcnow
from server.session import database
from tests import factories

UTC = dt.UTC


@pytest.fixture
def lean(monkeypatch: pytest.MonkeyPatch) -> list[Any]:
    """Record what ``queries.resident_read`` answered, request by request."""
    answers: list[Any] = []
    real = queries.resident_read

    def spy(*args: Any, **kwargs: Any) -> Any:
        answers.append(real(*args, **kwargs))
        return answers[-1]

    monkeypatch.setattr(queries, "resident_read", spy)
    return answers


def _both(client: Any, monkeypatch: pytest.MonkeyPatch, path: str, headers: dict) -> tuple:
    """The response with the one-statement path, then without it (the CaseSchema path)."""
    fast = client.get(path, headers=headers)
    with monkeypatch.context() as m:
        m.setattr(queries, "resident_read", lambda *a, **k: None)
        full = client.get(path, headers=headers)
    return fast, full


def _event(session: Session, case: Case, at: dt.datetime, action: str, **fields: Any) -> CaseEvent:
    row = CaseEvent(case_id=case.id, at=at, action=action, **fields)
    session.add(row)
    session.flush()
    return row


def _urgent_in_township(session: Session, owner: Account) -> Case:
    # 23:59:59.9 UTC is the next morning in China: the date and the offset must both move.
    created = dt.datetime(2026, 3, 1, 23, 59, 59, 900_000, tzinfo=UTC)
    case = factories.case(
        session,
        resident_account=owner,
        township="371102004",
        created_at=created,
        lat=35.416_123_456,
        lng=119.527_1,
        address="秦楼街道 海曲中路 88 号 3 单元 😊",
        contact_phone="+8613800001234",
        routing_evidence="gps",
        routing_reason="定位在秦楼街道",
    )
    _event(session, case, created, "submit", to_status="queued", text_zh="已收到您的紧急求助。")
    _event(
        session,
        case,
        created + dt.timedelta(minutes=1),
        "note",
        actor_role="duty",
        text_zh="工作人员内部备注",
        data={"note": "只给工作人员看"},
        resident_visible=False,
    )
    _event(session, case, created + dt.timedelta(minutes=2), "claim", to_status="claimed")
    _event(session, case, created + dt.timedelta(minutes=3), "call", text_zh=None)
    return case


def _application_in_county_triage(session: Session, owner: Account) -> Case:
    created = dt.datetime(2025, 12, 31, 16, 0, tzinfo=UTC)
    case = factories.case(
        session,
        resident_account=owner,
        township=None,
        county="371102",
        urgent=False,
        aid_type="medical",
        status="paid",
        created_at=created,
        reason="住院自付费用过高，无力承担。",
        household_size=3,
        monthly_income_fen=123_456,
        approved_amount_fen=300_000,
        paid_amount_fen=299_999,
        paid_at=created + dt.timedelta(days=3, microseconds=5),
        paperwork_due_at=created + dt.timedelta(days=10),
        description=None,
        routing_evidence="none",
    )
    for k, (action, status, visible) in enumerate(
        [
            ("submit", "queued", True),
            ("route", "queued", True),
            ("visit", "claimed", False),
            ("approve", "approved", True),
            ("pay", "paid", True),
        ]
    ):
        _event(
            session,
            case,
            created + dt.timedelta(hours=k),
            action,
            to_status=status,
            text_zh=f"第 {k + 1} 步",
            resident_visible=visible,
        )
    return case


def _application_in_city_triage(session: Session, owner: Account) -> Case:
    # No township, no county: the deployment city's triage queue; no timeline at all.
    return factories.case(
        session,
        resident_account=owner,
        township=None,
        county="3711",
        urgent=False,
        aid_type="temporary_expenditure",
        reason="说明\n第二行",
    )


def _outside_the_city(session: Session, owner: Account) -> Case:
    # A township the per-process gazetteer does not hold: its name comes from the table.
    case = factories.case(session, resident_account=owner, township="370202001")
    _event(session, case, dt.datetime(2026, 1, 1, tzinfo=UTC), "submit", to_status="queued")
    return case


def _only_staff_events(session: Session, owner: Account) -> Case:
    case = factories.case(session, resident_account=owner, status="claimed")
    _event(session, case, dt.datetime(2026, 1, 1, tzinfo=UTC), "note", resident_visible=False)
    return case


CASES = {
    "urgent in a township": _urgent_in_township,
    "application in county triage, paid": _application_in_county_triage,
    "application in city triage, no events": _application_in_city_triage,
    "township outside the deployment city": _outside_the_city,
    "only staff-only events": _only_staff_events,
}


@pytest.mark.parametrize("make", CASES.values(), ids=CASES.keys())
def test_same_bytes_as_the_case_schema(app, client, session, monkeypatch, lean, make) -> None:
    owner = factories.resident(session, name="张三")
    case = make(session, owner)
    headers = factories.auth(app, owner)
    fast, full = _both(client, monkeypatch, f"/api/v1/cases/{case.id}", headers)
    assert lean and lean[0] is not None, "the resident's read did not take the lean path"
    assert fast.status_code == full.status_code == 200
    assert fast.mimetype == full.mimetype == "application/json"
    assert fast.data == full.data
    body = fast.get_json()
    assert "person" not in body and "staff_notes" not in body
    assert all(set(item) == {"at", "action", "status", "text"} for item in body["timeline"])


def test_the_shape_of_a_resident_read(app, client, session, lean) -> None:
    """What the byte comparison stands on, spelled out once."""
    owner = factories.resident(session)
    case = _urgent_in_township(session, owner)
    body = client.get(f"/api/v1/cases/{case.id}", headers=factories.auth(app, owner)).get_json()
    assert lean[0] is not None
    assert body["id"] == str(case.id)
    assert body["created_at"] == "2026-03-02T07:59:59+08:00"
    assert body["status_label"] == "待受理" and body["aid_type_label"]
    assert body["township"] == {"code": "371102004", "name": "秦楼街道"}
    assert body["queue"] == {"kind": "township", "code": "371102004", "name": "秦楼街道"}
    assert body["location"] == {"lat": 35.416_123_456, "lng": 119.527_1}
    assert body["address"] == "秦楼街道 海曲中路 88 号 3 单元 😊"
    assert [e["action"] for e in body["timeline"]] == ["submit", "claim", "call"]
    assert body["timeline"][0] == {
        "at": "2026-03-02T07:59:59+08:00",
        "action": "submit",
        "status": "queued",
        "text": "已收到您的紧急求助。",
    }
    assert body["duplicate_of"] is None and body["note"] is None


def test_one_statement(app, client, session, connection, lean) -> None:
    owner = factories.resident(session)
    case = _urgent_in_township(session, owner)
    headers = factories.auth(app, owner)
    client.get(f"/api/v1/cases/{case.id}", headers=headers)  # the gazetteer, once per process
    seen: list[str] = []

    def count(conn, cursor, statement, *args):
        if statement.lstrip().upper().startswith("SELECT"):
            seen.append(statement)

    event.listen(connection.engine, "before_cursor_execute", count)
    try:
        assert client.get(f"/api/v1/cases/{case.id}", headers=headers).status_code == 200
    finally:
        event.remove(connection.engine, "before_cursor_execute", count)
    assert lean[-1] is not None
    assert len(seen) == 1, seen


# --- everything else goes the way it always went ----------------------------------------


def _refusals(app: Any, session: Session) -> Iterator[tuple[str, str, dict, int]]:
    owner = factories.resident(session)
    own = _urgent_in_township(session, owner)
    other = factories.case(session)

    yield "another resident's case", f"/api/v1/cases/{other.id}", factories.auth(app, owner), 404
    missing = "00000000-0000-4000-8000-000000000000"
    yield "no such case", f"/api/v1/cases/{missing}", factories.auth(app, owner), 404
    yield "no token", f"/api/v1/cases/{own.id}", {}, 401
    yield "not a token", f"/api/v1/cases/{own.id}", {"Authorization": "Bearer x.y.z"}, 401
    yield "basic auth", f"/api/v1/cases/{own.id}", {"Authorization": "Basic eDp5"}, 401

    revoked = factories.auth(app, owner)
    session.execute(
        update(AuthSession).where(AuthSession.account_id == owner.id).values(revoked_at=utcnow())
    )
    yield "revoked session", f"/api/v1/cases/{own.id}", revoked, 401

    disabled = factories.resident(session)
    case = factories.case(session, resident_account=disabled)
    headers = factories.auth(app, disabled)
    disabled.active = False
    session.flush()
    yield "disabled account", f"/api/v1/cases/{case.id}", headers, 401

    # A resident's token for an account that is a resident no more.
    changed = factories.resident(session)
    case = factories.case(session, resident_account=changed)
    headers = factories.auth(app, changed)
    changed.role, changed.username, changed.region_code = "duty", "was-resident", "371102004"
    session.flush()
    yield "role changed", f"/api/v1/cases/{case.id}", headers, 401


def test_refusals_are_the_full_paths(app, client, session, monkeypatch, lean) -> None:
    for name, path, headers, status in _refusals(app, session):
        fast, full = _both(client, monkeypatch, path, headers)
        assert fast.status_code == full.status_code == status, name
        assert fast.data == full.data, name
    assert not any(lean), "the lean path answered a request it must leave alone"


def test_staff_reads_stay_audited(app, client, session, lean) -> None:
    owner = factories.resident(session, name="张三")
    case = _urgent_in_township(session, owner)
    duty = factories.staff(session, role="duty", region="371102004")
    client.get(f"/api/v1/cases/{case.id}", headers=factories.auth(app, owner))
    resp = client.get(f"/api/v1/cases/{case.id}", headers=factories.auth(app, duty))
    assert resp.status_code == 200
    body = resp.get_json()
    assert body["person"]["name"] and "staff_notes" in body
    assert [e["action"] for e in body["timeline"]] == ["submit", "note", "claim", "call"]
    # The staff read never tries the resident's one-statement read (it runs outside a
    # transaction on PostgreSQL; a staff read writes its audit entry).
    assert len(lean) == 1 and lean[0] is not None
    reads = session.scalars(
        select(AuditEntry).where(
            AuditEntry.action == "case.read", AuditEntry.target_id == str(case.id)
        )
    ).all()
    assert [(r.actor_id, r.actor_role) for r in reads] == [(duty.id, "duty")]


def test_with_real_commits(committed_app, monkeypatch, lean) -> None:
    """Outside the tests' outer transaction the lean read checks out a connection of its own:
    same bytes, every connection back in the pool reset to
    transactions, and a staff read or a refusal after it still goes the full way."""
    db = database(committed_app)
    with db.new_session() as s, s.begin():
        owner = factories.resident(s)
        case = _urgent_in_township(s, owner)
        other = factories.case(s)
        duty = factories.staff(s, role="duty", region="371102004")
    headers = factories.auth(committed_app, owner)
    client = committed_app.test_client()
    path = f"/api/v1/cases/{case.id}"
    for _ in range(3):
        fast, full = _both(client, monkeypatch, path, headers)
        assert fast.status_code == full.status_code == 200
        assert fast.data == full.data
    assert len(lean) == 3 and all(lean)

    refused = client.get(f"/api/v1/cases/{other.id}", headers=headers)
    assert refused.status_code == 404 and lean[-1] is None
    assert client.get(path, headers=factories.auth(committed_app, duty)).status_code == 200
    assert len(lean) == 4  # the staff read went the full way at once
    with db.new_session() as s:
        reads = s.scalars(select(AuditEntry).where(AuditEntry.action == "case.read")).all()
        assert [(r.actor_id, r.target_id) for r in reads] == [(duty.id, str(case.id))]

    assert db.engine.pool.checkedout() == 0
    pooled = [db.engine.connect() for _ in range(db.engine.pool.checkedin())]
    try:
        for conn in pooled:
            assert not conn.in_transaction()
            assert conn.get_isolation_level() != "AUTOCOMMIT"
            if db.engine.dialect.name == "postgresql":
                assert conn.connection.driver_connection.autocommit is False
    finally:
        for conn in pooled:
            conn.close()
    # A write after the reads is atomic and not blocked by anything they left behind.
    with pytest.raises(RuntimeError), db.engine.begin() as conn:
        conn.execute(update(Case).where(Case.id == case.id).values(description="改"))
        raise RuntimeError("roll back")
    with db.new_session() as s:
        assert s.get(Case, case.id).description == "测试求助"
