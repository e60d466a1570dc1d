"""Headers every answer carries (no sniffing, no referrer, no framing) and token answers that
no cache may keep; request lines logged with phone and ID numbers masked."""

from __future__ import annotations

import logging
import threading
import urllib.request

import pytest
from werkzeug.serving import make_server

from server.accesslog import mask_request_line
from tests import factories
from tests.signin import request_code

PHONE = "+8613812345678"
FRAME_AND_SNIFF = {
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "X-Frame-Options": "DENY",
}


def _assert_protected(resp) -> None:
    for name, value in FRAME_AND_SNIFF.items():
        assert resp.headers.get(name) == value, (name, resp.status_code)
    assert "frame-ancestors 'none'" in resp.headers.get("Content-Security-Policy", "")


def test_every_answer_carries_the_security_headers(client):
    for resp in (
        client.get("/healthz"),
        client.get("/readyz"),
        client.get("/api/v1/divisions/3711/children"),
        client.get("/api/v1/no-such-thing"),  # 404
        client.get("/api/v1/cases"),  # 401
        client.post("/api/v1/auth/sms-code", json={"phone": "nope"}),  # 422
        client.post("/api/v1/auth/sms-code", data="x", content_type="text/plain"),  # 415
    ):
        _assert_protected(resp)


def test_token_answers_are_never_cached(app, client, session):
    sent = client.post("/api/v1/auth/sms-code", json={"phone": PHONE})
    assert sent.status_code == 202 and sent.headers["Cache-Control"] == "no-store"
    from server.limits import limiter

    limiter.reset()
    code = request_code(client, session, PHONE)
    token = client.post("/api/v1/auth/token", json={"phone": PHONE, "code": code})
    assert token.status_code == 200 and token.headers["Cache-Control"] == "no-store"
    refreshed = client.post(
        "/api/v1/auth/refresh", json={"refresh_token": token.get_json()["refresh_token"]}
    )
    assert refreshed.status_code == 200 and refreshed.headers["Cache-Control"] == "no-store"
    factories.staff(session, role="duty", region="371102001", username="duty1")
    staff = client.post(
        "/api/v1/auth/staff-token", json={"username": "duty1", "password": factories._PASSWORD}
    )
    assert staff.status_code == 200 and staff.headers["Cache-Control"] == "no-store"
    # So is a failed sign-in, and whatever a signed-in caller reads.
    failed = client.post("/api/v1/auth/staff-token", json={"username": "duty1", "password": "x"})
    assert failed.headers["Cache-Control"] == "no-store"
    me = client.get(
        "/api/v1/me", headers={"Authorization": f"Bearer {token.get_json()['access_token']}"}
    )
    assert me.status_code == 200 and me.headers["Cache-Control"] == "no-store"


@pytest.mark.parametrize(
    ("line", "hidden"),
    [
        ("GET /api/v1/cases?phone=%2B8613812345678&page=2 HTTP/1.1", "13812345678"),
        ("GET /api/v1/cases?phone=138%201234%205678 HTTP/1.1", "1234%205678"),
        ("GET /api/v1/cases?page=1&phone=13812345678 HTTP/1.1", "13812345678"),
        ("GET /api/v1/x?contact_phone=+8613812345678 HTTP/1.1", "13812345678"),
        ("GET /api/v1/x?id_number=37110219900101123X HTTP/1.1", "19900101"),
        ("GET /api/v1/x/13812345678 HTTP/1.1", "13812345678"),
    ],
)
def test_request_lines_are_masked(line: str, hidden: str) -> None:
    masked = mask_request_line(line)
    assert hidden not in masked
    assert masked.startswith("GET /api/v1/") and masked.endswith(" HTTP/1.1")


def test_request_lines_unchanged_without_personal_data() -> None:
    line = '127.0.0.1 - - "GET /api/v1/cases/123?page=2 HTTP/1.1" 200 512'
    assert mask_request_line(line) == line


def test_development_server_logs_phones_masked(app, caplog):
    # The werkzeug server `make run` uses writes its request lines through the masking filter.
    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    caplog.set_level(logging.INFO, logger="werkzeug")
    try:
        url = f"http://127.0.0.1:{server.port}/api/v1/cases?phone=%2B8613812345678"
        try:
            urllib.request.urlopen(url, timeout=10)  # noqa: S310 (a local test server)
        except urllib.error.HTTPError as exc:
            assert exc.code == 401
    finally:
        server.shutdown()
        thread.join(timeout=10)
    lines = [r.getMessage() for r in caplog.records if r.name == "werkzeug"]
    assert any("/api/v1/cases?phone=" in line for line in lines), lines
    assert not any("13812345678" in line for line in lines), lines
    assert any("138****5678" in line for line in lines), lines
