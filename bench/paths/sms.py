"""Path 5, SMS: outbox drain through the real Twilio SDK into a local fake Twilio server, with
1 and 4 workers, and the tap-to-page latency (urgent tap -> duty officer's SMS received).

Targets: ≥ 200 messages/s with 4 workers; tap-to-page p99 ≤ 1 s on PostgreSQL.
"""

from __future__ import annotations

import importlib.util
from typing import Any

from bench.core import Context, Measurement

NAME = "sms"
TITLE = "SMS outbox drain (Twilio SDK -> fake Twilio)"
PHASES = ("base",)


def available(app: Any) -> str | None:
    if importlib.util.find_spec("notifications.worker") is None:
        return "SMS worker not on main yet"
    return "SMS path not wired into the bench yet"


def run(ctx: Context) -> list[Measurement]:  # pragma: no cover - until the worker lands
    raise NotImplementedError
