"""The queue page's live channel: on PostgreSQL a request waits on LISTEN until the queue
changes (a tap wakes it at once) or the wait ends; on SQLite it answers at once (polling)."""

from __future__ import annotations

import threading
import time
from typing import Any

import requests

from tests import factories as f
from tests.conftest import is_postgres
from tests.console.conftest import add, sign_in, staff

TOWNSHIP = "371102004"


def _live(page: Any, base: str, since: str) -> tuple[dict[str, Any], float]:
    started = time.monotonic()
    resp = page.request.get(
        f"{base}/console/live?township={TOWNSHIP}&since={since}",
        headers={"X-Console-Passive": "json"},
        timeout=30000,
    )
    assert resp.status == 200
    return resp.json(), time.monotonic() - started


def test_a_waiting_live_request_wakes_on_a_tap(committed_app, live, page, engine):
    committed_app.config["CONSOLE_LIVE_WAIT_SECONDS"] = 3
    staff(committed_app, "duty-a", TOWNSHIP)
    resident = f.Account(role="resident", phone="+8613812340002")
    add(committed_app, resident)
    sign_in(page, live, "duty-a")
    page.wait_for_selector("text=秦楼街道 · 案件队列")
    first, _ = _live(page, live, "")
    assert first["queued"] == 0 and first["waits"] is False  # no stamp: at once
    if not is_postgres(engine):
        again, took = _live(page, live, first["stamp"])
        assert again["waits"] is False and took < 1.0  # SQLite: the page polls
        return
    for _ in range(20):  # the first asks start the process's listener: answered at once
        quiet, took = _live(page, live, first["stamp"])
        if quiet["waits"]:
            break
        time.sleep(0.2)
    # Nothing changed: it waited to the end and answers the same stamp.
    assert quiet["waits"] is True and quiet["stamp"] == first["stamp"] and took >= 2.5

    def tap() -> None:
        time.sleep(1.0)
        requests.post(
            f"{live}/api/v1/urgent-requests",
            json={"township_code": TOWNSHIP},
            headers={**f.auth(committed_app, resident), "Idempotency-Key": "live-tap-1"},
            timeout=10,
        )

    tapper = threading.Thread(target=tap)
    tapper.start()
    woken, took = _live(page, live, first["stamp"])
    tapper.join()
    assert woken["waits"] is True
    assert woken["queued"] == 1 and woken["stamp"] != first["stamp"]
    assert 0.9 <= took < 2.0  # it waited for the tap, and woke with it, not at the end
