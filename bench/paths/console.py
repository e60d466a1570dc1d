"""Console paths: the queue page of a township with 1,000 open cases, the case page with a
30-event timeline, and the status read with and without 200 open live-update connections.

Each page is a signed-in duty officer's ``GET`` with the console's cookie (a signed session
naming a real signed-in session row), driven by wrk at half the floor's concurrency.
Targets: ≥ 0.2 × the floor and p99 ≤ 100 ms on PostgreSQL.

The live channel: 200 Python threads each hold one open ``/console/live`` request (on
PostgreSQL it waits on LISTEN until the queue changes); path 2's status read runs meanwhile
and is compared with the same read just before, without them (the ratio of the two, each to
its own floor probes). Then one tap into the township: how long until every waiter answered.
"""

from __future__ import annotations

import datetime as dt
import http.client
import json
import threading
import time
import uuid
from typing import Any
from urllib.parse import quote, urlsplit

from sqlalchemy import insert

from bench import wrk
from bench.core import Context, Measurement, Target
from bench.paths import status
from bench.seed import Resident, chunks, complete, table
from bench.stats import percentile
from server.cases.models import Case, CaseEvent

NAME = "console"
TITLE = "console pages"
PHASES = ("base",)
OPEN_CASES = 1000
TIMELINE = 30
LIVE_CONNECTIONS = 200
RATIO, P99_MS, LIVE_KEEPS = 0.2, 100.0, 0.8


def available(app: Any) -> str | None:
    rules = {r.rule for r in app.url_map.iter_rules()}
    return None if "/console/live" in rules else "console not on main yet"


def _cookie(ctx: Context, officer: Resident) -> str:
    """The console's signed session cookie for ``officer`` (as sign-in sets it)."""
    app = ctx.app
    with app.test_request_context():
        value = app.session_interface.get_signing_serializer(app).dumps(
            {"uid": officer.id, "sid": str(officer.session_id), "role": "duty", "seen": time.time()}
        )
    return f"{app.config['SESSION_COOKIE_NAME']}={value}"


def _case_with_timeline(ctx: Context, township: str, officer: Resident) -> str:
    """A claimed urgent case of ``township`` held by ``officer``, with a 30-event timeline."""
    seeder = ctx.seeder
    person = seeder.residents(1)[0]
    created = dt.datetime.now(dt.UTC) - dt.timedelta(hours=3)
    row = seeder._case_row(
        resident_id=person.id,
        township=township,
        status="claimed",
        urgent=True,
        created_at=created,
        tag="C",
    )
    row.update(subject_phone=person.phone, claimed_by_id=officer.id, claimed_at=created)
    events = [
        {
            "case_id": row["id"],
            "at": created + dt.timedelta(minutes=5 * k),
            "actor_id": officer.id if k > 2 else None,
            "actor_role": "duty" if k > 2 else None,
            "action": "note" if k > 2 else ("submit", "route", "claim")[k],
            "from_status": None,
            "to_status": None,
            "data": {"step": k},
            "resident_visible": k < 3,
            "text_zh": f"第 {k + 1} 次跟进：已电话联系，核实家庭情况。",
        }
        for k in range(TIMELINE)
    ]
    with ctx.engine.begin() as conn:
        conn.execute(insert(table(Case)), [complete(table(Case), row)])
        for batch in chunks(events):
            conn.execute(insert(table(CaseEvent)), batch)
    return str(row["id"])


def _page(ctx: Context, name: str, label: str, path: str, cookie: str, **details: Any):
    conc = max(1, ctx.floor_concurrency // 2)
    env = {"BENCH_PATH": path, "BENCH_COOKIE": cookie}
    wrk.run(ctx.base_url, "console", connections=conc, duration_s=3, env=env)  # warm
    res, floor = ctx.bracketed(
        lambda: wrk.run(ctx.base_url, "console", connections=conc, duration_s=ctx.duration, env=env)
    )
    m = ctx.wrk_figure(name, label, conc, res, floor, **details)
    pg = ctx.db == "postgresql"
    m.targets = [
        Target("all 200", res.codes.get("200", 0) == res.requests and res.error_count == 0),
        Target(f"≥ {RATIO} × floor", (m.ratio or 0) >= RATIO if pg else None),
        Target(f"p99 ≤ {P99_MS:g} ms", (m.p99_ms or 0) <= P99_MS if pg else None),
    ]
    return m


class _Waiter(threading.Thread):
    """One open console page: asks /console/live with its stamp, again on every answer."""

    def __init__(self, base_url: str, path: str, cookie: str, stop: threading.Event) -> None:
        super().__init__(daemon=True)
        parts = urlsplit(base_url)
        self.host, self.port = parts.hostname, parts.port
        self.path, self.cookie, self.stop = path, cookie, stop
        self.stamp = ""
        self.in_flight = False  # a request sent and not yet answered (waiting on the server)
        self.answers: list[tuple[float, dict[str, Any]]] = []  # (monotonic, body)
        self.errors = 0

    def run(self) -> None:
        conn = http.client.HTTPConnection(self.host, self.port, timeout=60)
        headers = {"Cookie": self.cookie, "X-Console-Passive": "json"}
        while not self.stop.is_set():
            try:
                self.in_flight = True
                conn.request("GET", f"{self.path}&since={quote(self.stamp)}", headers=headers)
                resp = conn.getresponse()
                body = json.loads(resp.read())
            except (OSError, http.client.HTTPException, ValueError):
                self.in_flight = False
                self.errors += 1
                conn.close()
                conn = http.client.HTTPConnection(self.host, self.port, timeout=60)
                time.sleep(0.5)
                continue
            self.in_flight = False
            self.answers.append((time.monotonic(), body))
            self.stamp = body.get("stamp", "")
            if not body.get("waits"):
                time.sleep(1.5)  # the page's polling fallback
        conn.close()


def _live(ctx: Context, township: str, cookie: str) -> list[Measurement]:
    data, token, case_id = status.pairs(ctx)
    conc = max(1, ctx.floor_concurrency // 2)
    env = {"BENCH_DATA": data}
    wrk.run(ctx.base_url, "status", connections=conc, duration_s=3, env=env)  # warm

    def read() -> Any:
        return wrk.run(ctx.base_url, "status", connections=conc, duration_s=ctx.duration, env=env)

    alone, floor_alone = ctx.bracketed(read)
    stop = threading.Event()
    waiters = [
        _Waiter(ctx.base_url, f"/console/live?township={township}", cookie, stop)
        for _ in range(LIVE_CONNECTIONS)
    ]
    for w in waiters:
        w.start()
    time.sleep(6)  # every page has its stamp and waits (each process's listener is up)
    asked_before = sum(len(w.answers) for w in waiters)
    beside, floor_beside = ctx.bracketed(read)
    asked_during = sum(len(w.answers) for w in waiters) - asked_before
    # Held by the server: asked with a stamp, not answered through the whole status run.
    waiting = sum(1 for w in waiters if w.in_flight and w.stamp)
    # One tap into the township: every open page should hear of it.
    person = ctx.seeder.residents(1)[0]
    marks = [len(w.answers) for w in waiters]
    parts = urlsplit(ctx.base_url)
    conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=30)
    body = json.dumps({"township_code": township})
    tapped = time.monotonic()
    conn.request(
        "POST",
        "/api/v1/urgent-requests",
        body=body,
        headers={
            "Authorization": f"Bearer {person.token}",
            "Content-Type": "application/json",
            "Idempotency-Key": uuid.uuid4().hex,
        },
    )
    tap_status = conn.getresponse().status
    conn.close()
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and any(
        len(w.answers) <= m for w, m in zip(waiters, marks, strict=True)
    ):
        time.sleep(0.02)
    heard = [
        w.answers[m][0] - tapped for w, m in zip(waiters, marks, strict=True) if len(w.answers) > m
    ]
    stop.set()
    m_alone = ctx.wrk_figure(
        "console_status", status.TITLE + " (no live pages)", conc, alone, floor_alone
    )
    m_beside = ctx.wrk_figure(
        "console_live",
        status.TITLE + f" beside {LIVE_CONNECTIONS} open live pages",
        conc,
        beside,
        floor_beside,
        live_connections=LIVE_CONNECTIONS,
        live_waiting_at_end=waiting,
        live_answers_during_run=asked_during,
        live_errors=sum(w.errors for w in waiters),
        status_alone={"rps": round(alone.rps, 1), "ratio": m_alone.ratio, "p99_ms": m_alone.p99_ms},
        tap_status=tap_status,
        tap_to_page_ms={
            "pages": len(heard),
            "p50": round(percentile(sorted(heard), 50) * 1000, 1) if heard else None,
            "max": round(max(heard) * 1000, 1) if heard else None,
        },
    )
    keeps = (m_beside.ratio or 0) / m_alone.ratio if m_alone.ratio else 0.0
    m_beside.details["status_ratio_kept"] = round(keeps, 3)
    pg = ctx.db == "postgresql"
    m_beside.targets = [
        Target("all 200", beside.codes.get("200", 0) == beside.requests),
        Target(f"{LIVE_CONNECTIONS} pages waiting", waiting == LIVE_CONNECTIONS if pg else None),
        Target(f"status keeps ≥ {LIVE_KEEPS} of its ratio", keeps >= LIVE_KEEPS),
        Target(
            "every page hears a tap within 2 s", len(heard) == LIVE_CONNECTIONS and max(heard) < 2
        ),
    ]
    return [m_alone, m_beside]


def run(ctx: Context) -> list[Measurement]:
    seeder = ctx.seeder
    township = seeder.townships[-3]
    t0 = time.monotonic()
    officer = seeder.duty_officers(township, 1)[0]
    seeder.queue(township, OPEN_CASES, seeder.residents(200))
    case_id = _case_with_timeline(ctx, township, officer)
    seed_s = round(time.monotonic() - t0, 1)
    cookie = _cookie(ctx, officer)
    out = [
        _page(
            ctx,
            "console_queue",
            f"GET /console/ (township queue, {OPEN_CASES} open cases)",
            f"/console/?township={township}",
            cookie,
            open_cases=OPEN_CASES,
            seed_s=seed_s,
        )
    ]
    if any(r.rule.startswith("/console/cases/") for r in ctx.app.url_map.iter_rules()):
        out.append(
            _page(
                ctx,
                "console_case",
                f"GET /console/cases/{{id}} ({TIMELINE}-event timeline)",
                f"/console/cases/{case_id}",
                cookie,
                timeline_events=TIMELINE,
            )
        )
    else:
        ctx.log("console: the case page is not on main yet; skipped")
    out.extend(_live(ctx, township, cookie))
    return out
