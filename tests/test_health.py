"""Liveness and readiness."""

from __future__ import annotations


def test_healthz(client):  # type: ignore[no-untyped-def]
    resp = client.get("/healthz")
    assert resp.status_code == 200
    assert resp.get_json() == {"status": "ok"}


def test_readyz_reports_database_at_head(client, engine):  # type: ignore[no-untyped-def]
    resp = client.get("/readyz")
    assert resp.status_code == 200, resp.get_json()
    body = resp.get_json()
    assert body["status"] == "ready"
    assert body["details"]["database"] == engine.dialect.name
    assert body["details"]["revision"] == body["details"]["head"]


def test_readyz_503_when_not_migrated(tmp_path):  # type: ignore[no-untyped-def]
    from server.app import create_app

    app = create_app({"DATABASE_URL": f"sqlite:///{tmp_path / 'empty.db'}", "SECRET_KEY": "x" * 40})
    resp = app.test_client().get("/readyz")
    assert resp.status_code == 503
    assert resp.get_json()["code"] == "not_ready"
