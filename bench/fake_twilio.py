"""A local fake of Twilio's Messages API for the SMS benchmark (a separate process).

    python -m bench.fake_twilio --port 8766 [--sender-rate 1 --service-senders 8]

``POST /2010-04-01/Accounts/{sid}/Messages.json`` answers 201 with a message resource, as
Twilio does, and records when each message arrived (wall clock, so other processes on this
machine can compare). ``GET /_stats`` returns ``{"received": [[t, sid, to], ...]}``;
``POST /_reset`` forgets them. HTTP/1.1 keep-alive, one thread per connection, 127.0.0.1 only.

With ``--sender-rate R`` it paces like Twilio: each sender (a ``From`` number; a Messaging
Service spread over ``--service-senders`` numbers) hands at most R messages a second to the
carriers and queues the rest first in, first out. ``GET /_messages`` returns every message with
``t`` (accepted), ``dispatch`` (left the sender's queue), ``sid``, ``to`` and ``sender``.
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
_messages: list[dict[str, object]] = []
# Pacing (``--sender-rate``): when each sender may hand over its next message.
_pace: dict[str, float] = {"interval": 0.0, "service_senders": 1}
_free_at: dict[str, float] = {}


def _dispatch(sender: str, now: float) -> tuple[float, str]:
    """When a message accepted ``now`` leaves ``sender``'s queue (and by which number)."""
    interval = float(_pace["interval"])
    if not interval:
        return now, sender
    lanes = [sender]
    if sender.startswith("MG"):
        lanes = [f"{sender}/{k}" for k in range(int(_pace["service_senders"]))]
    lane = min(lanes, key=lambda k: _free_at.get(k, 0.0))
    at = max(now, _free_at.get(lane, 0.0))
    _free_at[lane] = at + interval
    return at, lane


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
        elif self.path == "/_messages":
            with _lock:
                messages = list(_messages)
            self._send(200, {"messages": messages})
        else:
            self._send(404, {"code": 20404, "message": "not found", "status": 404})

    def do_POST(self) -> None:  # noqa: N802
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length else b""
        now = time.time()
        if self.path == "/_reset":
            with _lock:
                _received.clear()
                _messages.clear()
                _free_at.clear()
            self._send(200, {"ok": True})
            return
        parts = self.path.split("?")[0].split("/")
        # /2010-04-01/Accounts/{AccountSid}/Messages.json
        if len(parts) != 5 or parts[1] != "2010-04-01" or parts[4] != "Messages.json":
            self._send(404, {"code": 20404, "message": "not found", "status": 404})
            return
        form = {k: v[0] for k, v in parse_qs(raw.decode()).items()}
        sid = "SM" + uuid.uuid4().hex
        sender = form.get("MessagingServiceSid") or form.get("From", "")
        with _lock:
            _received.append((now, sid, form.get("To", "")))
            dispatch, lane = _dispatch(sender, now)
            _messages.append(
                {
                    "t": now,
                    "dispatch": dispatch,
                    "sid": sid,
                    "to": form.get("To", ""),
                    "sender": lane,
                }
            )
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
    p.add_argument("--sender-rate", type=float, default=0.0, help="messages/s per sender")
    p.add_argument("--service-senders", type=int, default=1, help="numbers of a service")
    args = p.parse_args()
    _pace["interval"] = 1.0 / args.sender_rate if args.sender_rate > 0 else 0.0
    _pace["service_senders"] = max(1, args.service_senders)
    server = ThreadingHTTPServer(("127.0.0.1", args.port), Handler)
    server.daemon_threads = True
    print(f"fake twilio on 127.0.0.1:{args.port}", flush=True)
    server.serve_forever()


if __name__ == "__main__":
    main()
