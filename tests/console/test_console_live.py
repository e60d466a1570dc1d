"""The queue page's live channel: on PostgreSQL a request waits on LISTEN until the queue
changes (a tap wakes it at once) or the wait ends; on SQLite it answers at once (polling)."""

from __future__ import annotations

import threading
import time
from typing import Any
from urllib.parse import quote

import requests

from tests import factories as f
from tests.conftest import is_postgres
from tests.console.conftest import add, sign_in, staff

TOWNSHIP = "371102004"


def _live(page: Any, base: str, since: str) -> tuple[dict[str, Any], float]:
    started = time.monotonic()
    resp = page.request.get(
        f"{base}/console/live?township={TOWNSHIP}&since={quote(since)}",
        headers={"X-Console-Passive": "json"},
        timeout=30000,
    )
    assert resp.status == 200
    return resp.json(), time.monotonic() - started


def test_a_waiting_live_request_wakes_on_a_tap(committed_app, live, page, engine):
    committed_app.config["CONSOLE_LIVE_WAIT_SECONDS"] = 3
    officer = staff(committed_app, "duty-a", TOWNSHIP)
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

    # A move that queues no SMS wakes it too: the officer claims the case and puts it back.
    duty = f.auth(committed_app, officer)
    claimed = requests.post(
        f"{live}/api/v1/townships/{TOWNSHIP}/queue/claim", headers=duty, timeout=10
    )
    assert claimed.status_code == 200
    held, _ = _live(page, live, woken["stamp"])
    assert held["queued"] == 0

    released: list[Any] = []

    def put_back() -> None:
        time.sleep(1.0)
        released.append(
            requests.post(
                f"{live}/api/v1/cases/{claimed.json()['id']}/actions",
                json={"action": "release", "reason": "交接班"},
                headers=duty,
                timeout=10,
            )
        )

    releaser = threading.Thread(target=put_back)
    releaser.start()
    back, took = _live(page, live, held["stamp"])
    releaser.join()
    assert released[0].status_code == 200, released[0].text
    assert back["queued"] == 1 and back["stamp"] != held["stamp"]
    assert 0.9 <= took < 2.0
