"""Rate limits on sending and verifying codes: 429 in the uniform shape with Retry-After."""

from __future__ import annotations

from server.app import create_app
from server.limits import enforce, limiter
from tests.signin import request_code

PHONE = "+8613812345678"


def _assert_429(resp, max_retry: int) -> None:
    assert resp.status_code == 429, resp.get_json()
    body = resp.get_json()
    assert body["code"] == "rate_limited" and body["message"]
    assert set(body) == {"code", "message", "errors"}
    retry = int(resp.headers["Retry-After"])
    assert 1 <= retry <= max_retry


def test_send_limited_per_phone_per_minute(client, session):
    request_code(client, session, PHONE)
    resp = client.post("/api/v1/auth/sms-code", json={"phone": "138 1234 5678"})
    _assert_429(resp, 60)
    # Another phone from the same client is not affected by this phone's limit.
    assert client.post("/api/v1/auth/sms-code", json={"phone": "13912345678"}).status_code == 202


def test_send_limited_per_phone_per_day(app, client):
    app.config["RATELIMIT_SMS_PER_PHONE"] = "100/minute;3/day"
    for _ in range(3):
        assert client.post("/api/v1/auth/sms-code", json={"phone": PHONE}).status_code == 202
    _assert_429(client.post("/api/v1/auth/sms-code", json={"phone": PHONE}), 86400)


def test_send_limited_per_client(app, client):
    app.config["RATELIMIT_SMS_PER_CLIENT"] = "2/hour"
    phones = ["13812345678", "13812345679", "13812345670"]
    assert client.post("/api/v1/auth/sms-code", json={"phone": phones[0]}).status_code == 202
    assert client.post("/api/v1/auth/sms-code", json={"phone": phones[1]}).status_code == 202
    _assert_429(client.post("/api/v1/auth/sms-code", json={"phone": phones[2]}), 3600)
    # A different client address has its own budget.
    other = client.post(
        "/api/v1/auth/sms-code",
        json={"phone": phones[2]},
        environ_base={"REMOTE_ADDR": "10.0.0.9"},
    )
    assert other.status_code == 202


def test_rejected_sends_do_not_queue_sms(app, client, session):
    from sqlalchemy import func, select

    from notifications.models import SmsOutbox

    client.post("/api/v1/auth/sms-code", json={"phone": PHONE})
    client.post("/api/v1/auth/sms-code", json={"phone": PHONE})
    assert session.scalar(select(func.count()).select_from(SmsOutbox)) == 1


def test_verify_limited_per_phone(app, client, session):
    app.config["RATELIMIT_VERIFY_PER_PHONE"] = "3/hour"
    code = request_code(client, session, PHONE)
    wrong = f"{(int(code) + 1) % 1_000_000:06d}"
    for _ in range(3):
        assert (
            client.post("/api/v1/auth/token", json={"phone": PHONE, "code": wrong}).status_code
            == 401
        )
    resp = client.post("/api/v1/auth/token", json={"phone": PHONE, "code": code})
    _assert_429(resp, 3600)


def test_verify_limited_per_client(app, client):
    app.config["RATELIMIT_VERIFY_PER_CLIENT"] = "2/minute"
    for n in range(2):
        resp = client.post("/api/v1/auth/token", json={"phone": f"1381234567{n}", "code": "123456"})
        assert resp.status_code == 401
    resp = client.post("/api/v1/auth/token", json={"phone": "13812345672", "code": "123456"})
    _assert_429(resp, 60)


def test_staff_login_limited_per_client(app, client):
    app.config["RATELIMIT_STAFF_LOGIN_PER_CLIENT"] = "2/minute"
    for _ in range(2):
        resp = client.post("/api/v1/auth/staff-token", json={"username": "x", "password": "y"})
        assert resp.status_code == 401
    _assert_429(
        client.post("/api/v1/auth/staff-token", json={"username": "x", "password": "y"}), 60
    )


def test_english_rate_limit_message(client, session):
    request_code(client, session, PHONE)
    resp = client.post(
        "/api/v1/auth/sms-code", json={"phone": PHONE}, headers={"Accept-Language": "en"}
    )
    assert resp.status_code == 429
    assert resp.get_json()["message"] == "Too many requests; try again later."


def test_each_app_starts_with_fresh_counters(database_url, connection):
    def make():
        from server.session import database

        app = create_app(
            {
                "TESTING": True,
                "DATABASE_URL": database_url,
                "SECRET_KEY": "test-secret-key-with-enough-length-for-hs256",
                "RATELIMIT_STORAGE_URI": "memory://",
            }
        )
        database(app).sessionmaker.configure(
            bind=connection, join_transaction_mode="create_savepoint"
        )
        return app

    first = make()
    with first.test_request_context():
        enforce("1/hour", scope="t", key="k")
    second = make()
    with second.test_request_context():
        enforce("1/hour", scope="t", key="k")  # would raise if counters were shared


def test_trusted_proxy_address(database_url, connection):
    from server.limits import client_address

    for proxies, expected in ((0, "127.0.0.1"), (1, "203.0.113.7")):
        app = create_app(
            {
                "TESTING": True,
                "DATABASE_URL": database_url,
                "SECRET_KEY": "test-secret-key-with-enough-length-for-hs256",
                "TRUSTED_PROXIES": proxies,
            }
        )
        seen: dict[str, str] = {}

        @app.get("/probe")
        def probe(seen=seen):
            seen["addr"] = client_address()
            return {}

        app.test_client().get(
            "/probe",
            headers={"X-Forwarded-For": "203.0.113.7"},
            environ_base={"REMOTE_ADDR": "127.0.0.1"},
        )
        assert seen["addr"] == expected
    limiter.reset()


def test_redis_storage_configured_and_outage_tolerated(database_url, connection):
    from server.session import database

    app = create_app(
        {
            "TESTING": True,
            "DATABASE_URL": database_url,
            "SECRET_KEY": "test-secret-key-with-enough-length-for-hs256",
            "RATELIMIT_STORAGE_URI": "redis://127.0.0.1:1/0",  # nothing listens there
        }
    )
    database(app).sessionmaker.configure(bind=connection, join_transaction_mode="create_savepoint")
    assert type(limiter.storage).__name__ == "RedisStorage"
    # Redis down: sign-in still works (per-process fallback for route limits, fail-open for
    # per-phone ones; the database-held limits on code tries and staff lockout still hold).
    resp = app.test_client().post("/api/v1/auth/sms-code", json={"phone": PHONE})
    assert resp.status_code == 202, resp.get_json()


def test_next_app_after_outage_uses_its_own_storage(app, client, session):
    # Runs after the outage test above (file order): the app fixture's limiter is healthy.
    assert type(limiter.storage).__name__ == "MemoryStorage"
    assert not limiter._storage_dead
    request_code(client, session, PHONE)
    assert client.post("/api/v1/auth/sms-code", json={"phone": PHONE}).status_code == 429
