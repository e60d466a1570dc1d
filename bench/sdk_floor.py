"""The SMS floor: how fast the real Twilio SDK alone can hand messages to the fake Twilio
from one process, with no database and no outbox (``python -m bench.sdk_floor``).

The SMS benchmark runs as many of these at once as it runs workers: an outbox drain can never
be faster, so its ratio to this floor is the cost of Aidline's own bookkeeping.
"""

from __future__ import annotations

import argparse
import json
import time

from notifications.senders import TwilioSender, TwilioSettings


def main() -> None:
    p = argparse.ArgumentParser(prog="python -m bench.sdk_floor")
    p.add_argument("--api-base", required=True)
    p.add_argument("--seconds", type=float, default=5.0)
    p.add_argument("--start-at", type=float, default=0.0, help="wall-clock start (in sync)")
    args = p.parse_args()
    sender = TwilioSender(
        TwilioSettings(
            account_sid="AC" + "0" * 32,
            auth_token="bench-auth-token-0123456789abcdef",
            from_number="+15005550006",
            api_base=args.api_base,
        )
    )
    delay = args.start_at - time.time()
    if delay > 0:
        time.sleep(delay)
    start = time.monotonic()
    n = 0
    while time.monotonic() - start < args.seconds:
        sender.send(
            to="+8617000000001", body="您的紧急求助已收到。", message_id=n, status_callback=None
        )
        n += 1
    print(json.dumps({"sent": n, "seconds": time.monotonic() - start}))


if __name__ == "__main__":
    main()
