"""A local fake of Twilio's Messages API for the SMS benchmark (a separate process).

    python -m bench.fake_twilio --port 8766

``POST /2010-04-01/Accounts/{sid}/Messages.json`` answers 201 with a message resource, as
Twilio does, and records when each message arrived (wall clock, so other processes on this
machine can compare). ``GET /_stats`` returns ``{"received": [[t, sid, to], ...]}``;
``POST /_reset`` forgets them. HTTP/1.1 keep-alive, one thread per connection, 127.0.0.1 only.
"""

from __future__ import annotations

import argparse
import json
import threading
import time
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs

_lock = threading.Lock()
_received: list[tuple[float, str, str]] = []


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    # Headers and body are two writes: without TCP_NODELAY the body waits for the client's
    # delayed ACK (40 ms on Linux), which would measure the fake instead of Aidline.
    disable_nagle_algorithm = True

    def log_message(self, format: str, *args: object) -> None:  # noqa: A002 - silence
        pass

    def _send(self, status: int, payload: object) -> None:
        body = json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self) -> None:  # noqa: N802
        if self.path == "/_stats":
            with _lock:
                snapshot = list(_received)
            self._send(200, {"received": snapshot})
        else:
            self._send(404, {"code": 20404, "message": "not found", "status": 404})

    def do_POST(self) -> None:  # noqa: N802
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length else b""
        now = time.time()
        if self.path == "/_reset":
            with _lock:
                _received.clear()
            self._send(200, {"ok": True})
            return
        parts = self.path.split("?")[0].split("/")
        # /2010-04-01/Accounts/{AccountSid}/Messages.json
        if len(parts) != 5 or parts[1] != "2010-04-01" or parts[4] != "Messages.json":
            self._send(404, {"code": 20404, "message": "not found", "status": 404})
            return
        form = {k: v[0] for k, v in parse_qs(raw.decode()).items()}
        sid = "SM" + uuid.uuid4().hex
        with _lock:
            _received.append((now, sid, form.get("To", "")))
        stamp = time.strftime("%a, %d %b %Y %H:%M:%S +0000", time.gmtime(now))
        self._send(
            201,
            {
                "sid": sid,
                "account_sid": parts[3],
                "to": form.get("To"),
                "from": form.get("From"),
                "messaging_service_sid": form.get("MessagingServiceSid"),
                "body": form.get("Body"),
                "status": "queued",
                "num_segments": "1",
                "direction": "outbound-api",
                "api_version": "2010-04-01",
                "date_created": stamp,
                "date_updated": stamp,
                "date_sent": None,
                "error_code": None,
                "error_message": None,
                "price": None,
                "price_unit": "USD",
                "uri": f"/2010-04-01/Accounts/{parts[3]}/Messages/{sid}.json",
                "subresource_uris": {},
            },
        )


def main() -> None:
    p = argparse.ArgumentParser(prog="python -m bench.fake_twilio")
    p.add_argument("--port", type=int, required=True)
    args = p.parse_args()
    server = ThreadingHTTPServer(("127.0.0.1", args.port), Handler)
    server.daemon_threads = True
    print(f"fake twilio on 127.0.0.1:{args.port}", flush=True)
    server.serve_forever()


if __name__ == "__main__":
    main()
