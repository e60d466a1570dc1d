"""A local fake of Twilio's Messages API for tests: the real SDK talks to it over HTTP.

Serves ``POST /2010-04-01/Accounts/{sid}/Messages.json`` on 127.0.0.1 (a free port), records
every request, and answers success by default or whatever the test queued: a 429, a 500, a
permanent Twilio error, or a hang (to kill a worker mid-send).
"""

from __future__ import annotations

import base64
import json
import re
import threading
import uuid
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs

import pytest
from twilio.request_validator import RequestValidator

ACCOUNT_SID = "AC" + "0" * 32
AUTH_TOKEN = "fake-auth-token-0123456789abcdef"
FROM_NUMBER = "+15005550006"
PUBLIC_BASE_URL = "https://aidline.example.gov.cn"

_PATH = re.compile(r"^/2010-04-01/Accounts/(?P<sid>[^/]+)/Messages\.json$")


@dataclass
class Recorded:
    account_sid: str
    form: dict[str, str]
    auth: tuple[str, str] | None
    sid: str | None = None


@dataclass
class FakeTwilio:
    """State shared with the request handler."""

    requests: list[Recorded] = field(default_factory=list)
    # Queued answers, used in order: "ok", "hang", or (http_status, twilio_code).
    answers: deque[Any] = field(default_factory=deque)
    received: threading.Event = field(default_factory=threading.Event)
    release: threading.Event = field(default_factory=threading.Event)
    lock: threading.Lock = field(default_factory=threading.Lock)
    base_url: str = ""

    def answer(self, *answers: Any) -> None:
        """Queue answers for the next requests (then success again)."""
        self.answers.extend(answers)

    def bodies_for(self, outbox_id: int) -> list[Recorded]:
        """Requests whose StatusCallback names ``outbox_id``."""
        return [
            r for r in self.requests if r.form.get("StatusCallback", "").endswith(f"={outbox_id}")
        ]


def sign(url: str, params: dict[str, str], token: str = AUTH_TOKEN) -> str:
    """The X-Twilio-Signature Twilio would send for a POST of ``params`` to ``url``."""
    return RequestValidator(token).compute_signature(url, params)


def _handler(state: FakeTwilio) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        # Headers and body are two writes. Over HTTP/1.0 (this handler's default: a fresh
        # connection per request, whose first ACKs are immediate) that costs nothing; were
        # it ever kept alive, Nagle would hold the body for the client's delayed ACK (40 ms
        # on Linux) - measured: 44 ms a request instead of 1 ms. As bench/fake_twilio.py.
        disable_nagle_algorithm = True

        def log_message(self, *args: Any) -> None:  # keep test output clean
            pass

        def _reply(self, status: int, payload: dict[str, Any]) -> None:
            data = json.dumps(payload).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def do_POST(self) -> None:  # noqa: N802
            match = _PATH.match(self.path.split("?")[0])
            length = int(self.headers.get("Content-Length") or 0)
            raw = self.rfile.read(length).decode()
            if not match:
                self._reply(404, {"code": 20404, "message": "not found", "status": 404})
                return
            form = {k: v[0] for k, v in parse_qs(raw, keep_blank_values=True).items()}
            auth = None
            header = self.headers.get("Authorization", "")
            if header.startswith("Basic "):
                user, _, pw = base64.b64decode(header[6:]).decode().partition(":")
                auth = (user, pw)
            record = Recorded(account_sid=match["sid"], form=form, auth=auth)
            with state.lock:
                state.requests.append(record)
                answer = state.answers.popleft() if state.answers else "ok"
            state.received.set()
            if answer == "hang":
                state.release.wait(10)
                answer = "ok"
            if answer == "ok":
                record.sid = "SM" + uuid.uuid4().hex
                self._reply(
                    201,
                    {
                        "sid": record.sid,
                        "account_sid": match["sid"],
                        "to": form.get("To"),
                        "from": form.get("From"),
                        "messaging_service_sid": form.get("MessagingServiceSid"),
                        "body": form.get("Body"),
                        "status": "queued",
                        "num_segments": "1",
                    },
                )
                return
            status, code = answer
            self._reply(
                status,
                {
                    "code": code,
                    "message": f"fake error {code}",
                    "more_info": f"https://www.twilio.com/docs/errors/{code}",
                    "status": status,
                },
            )

    return Handler


@pytest.fixture
def fake_twilio() -> Iterator[FakeTwilio]:
    """A running fake Twilio; ``fake_twilio.base_url`` goes into TWILIO_API_BASE."""
    state = FakeTwilio()
    server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(state))
    server.daemon_threads = True
    state.base_url = f"http://127.0.0.1:{server.server_address[1]}"
    thread = threading.Thread(
        target=server.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True
    )
    thread.start()
    yield state
    state.release.set()
    server.shutdown()
    server.server_close()


def twilio_config(fake: FakeTwilio, **extra: Any) -> dict[str, Any]:
    """App settings that send through the fake with tiny retry/poll intervals."""
    return {
        "SMS_BACKEND": "twilio",
        "TWILIO_ACCOUNT_SID": ACCOUNT_SID,
        "TWILIO_AUTH_TOKEN": AUTH_TOKEN,
        "TWILIO_FROM": FROM_NUMBER,
        "TWILIO_MESSAGING_SERVICE_SID": "",
        "TWILIO_API_BASE": fake.base_url,
        "PUBLIC_BASE_URL": PUBLIC_BASE_URL,
        "SMS_SEND_RATE": 0,
        "SMS_RETRY_BASE_SECONDS": 0,
        "SMS_RETRY_MAX_SECONDS": 0.01,
        "SMS_POLL_SECONDS": 0.05,
        **extra,
    }
