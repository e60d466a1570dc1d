"""Liveness and readiness."""

from __future__ import annotations

from tests import factories


def test_healthz(client):
    resp = client.get("/healthz")
    assert resp.status_code == 200
    assert resp.get_json() == {"status": "ok"}


def test_readyz_reports_database_at_head(client, engine):
    resp = client.get("/readyz")
    assert resp.status_code == 200, resp.get_json()
    body = resp.get_json()
    assert body["status"] == "ready"
    assert body["details"]["database"] == engine.dialect.name
    assert body["details"]["revision"] == body["details"]["head"]


def test_readyz_503_when_not_migrated(tmp_path):
    from server.app import create_app

    app = create_app({"DATABASE_URL": f"sqlite:///{tmp_path / 'empty.db'}", "SECRET_KEY": "x" * 40})
    resp = app.test_client().get("/readyz")
    assert resp.status_code == 503
    assert resp.get_json()["code"] == "not_ready"


def test_readyz_shows_nothing_internal_to_anyone_in_production(app, client, session):
    app.config["ENV_NAME"] = "production"
    resp = client.get("/readyz")
    assert resp.status_code == 200
    assert resp.get_json() == {"status": "ready"}
    # A signed-in resident or duty officer sees no more than an anonymous prober.
    for role, region in (("duty", "371102001"), ("supervisor", "371102")):
        staff = factories.staff(session, role=role, region=region)
        assert client.get("/readyz", headers=factories.auth(app, staff)).get_json() == {
            "status": "ready"
        }
    resident = factories.resident(session)
    assert client.get("/readyz", headers=factories.auth(app, resident)).get_json() == {
        "status": "ready"
    }
    assert client.get("/readyz", headers={"Authorization": "Bearer junk"}).get_json() == {
        "status": "ready"
    }


def test_readyz_details_for_an_admin_in_production(app, client, session):
    app.config["ENV_NAME"] = "production"
    admin = factories.staff(session, role="admin", region="3711")
    body = client.get("/readyz", headers=factories.auth(app, admin)).get_json()
    assert body["status"] == "ready"
    assert body["details"]["revision"] == body["details"]["head"]
    assert "pending" in body["details"]["sms_outbox"]


def test_readyz_not_ready_in_production_says_only_that(tmp_path):
    from server.app import create_app

    app = create_app(
        {
            "DATABASE_URL": f"sqlite:///{tmp_path / 'empty.db'}",
            "SECRET_KEY": "x" * 40,
            "ENV_NAME": "production",
        }
    )
    resp = app.test_client().get("/readyz")
    assert resp.status_code == 503
    body = resp.get_json()
    assert body["code"] == "not_ready" and body["errors"] == {}
    assert "迁移" not in body["message"]
