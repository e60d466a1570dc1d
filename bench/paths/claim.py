"""Path 4, claim: 16 duty officers claim from one township queue of 10,000 cases at once.

``POST /api/v1/townships/{code}/queue/claim`` from 16 Python threads, one officer each, each
with its own keep-alive connection, for the run's duration. Afterwards every handed-out case
is checked against the database: a case handed to two officers (or recorded for another) is a
double claim; a case that left the queue without anyone receiving it is lost. Both must be 0.

Target: ≥ 300 claims/s with 16 claimers on PostgreSQL (SQLite serialises writers: reported).
"""

from __future__ import annotations

import http.client
import json
import threading
import time
from typing import Any
from urllib.parse import urlsplit

from sqlalchemy import select

from bench.core import Context, Measurement, Target, growth_targets
from bench.explain import explain_request
from bench.seed import table
from bench.stats import percentile
from server.cases.models import Case

NAME = "claim"
TITLE = "POST /api/v1/townships/{code}/queue/claim"
PHASES = ("base", "growth")
CLAIMERS = 16
QUEUE = 10_000
TARGET_RATE = 300.0


def available(app: Any) -> str | None:
    rules = {r.rule for r in app.url_map.iter_rules()}
    if "/api/v1/townships/<string:code>/queue/claim" in rules or any(
        r.endswith("/queue/claim") for r in rules
    ):
        return None
    return "claim endpoint not on main yet"


def _claimer(
    base_url: str,
    token: str,
    path: str,
    deadline: float,
    out: list[tuple[float, int, str | None]],
) -> None:
    parts = urlsplit(base_url)
    conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=30)
    headers = {"Authorization": f"Bearer {token}", "Content-Length": "0"}
    try:
        while time.monotonic() < deadline:
            t0 = time.perf_counter()
            try:
                conn.request("POST", path, headers=headers)
                resp = conn.getresponse()
                body = resp.read()
            except (OSError, http.client.HTTPException):
                conn.close()
                conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=30)
                out.append((time.perf_counter() - t0, 0, None))
                continue
            elapsed = time.perf_counter() - t0
            case_id = None
            if resp.status == 200:
                case_id = json.loads(body)["id"]
            out.append((elapsed, resp.status, case_id))
            if resp.status == 204:
                break  # the queue is empty
    finally:
        conn.close()


def run(ctx: Context) -> list[Measurement]:
    seeder = ctx.seeder
    # A township of its own per phase, so the growth run starts from a full queue as well.
    township = seeder.townships[-1 if ctx.phase == "base" else -2]
    t0 = time.monotonic()
    officers = seeder.duty_officers(township, CLAIMERS + 1)
    probe, officers = officers[0], officers[1:]
    people = seeder.residents(500)
    seeder.queue(township, QUEUE, people)
    seed_s = time.monotonic() - t0
    path = f"/api/v1/townships/{township}/queue/claim"

    plan = explain_request(
        ctx.app, "POST", path, headers={"Authorization": f"Bearer {probe.token}"}
    )
    plan["path"], plan["phase"] = NAME, ctx.phase
    ctx.explains.append(plan)

    tbl = table(Case)
    with ctx.engine.connect() as conn:
        queued_before = {
            str(r[0])
            for r in conn.execute(
                select(tbl.c.id).where(tbl.c.township_code == township, tbl.c.status == "queued")
            )
        }
    results: dict[int, list[tuple[float, int, str | None]]] = {o.id: [] for o in officers}

    def drive() -> float:
        deadline = time.monotonic() + ctx.duration
        threads = [
            threading.Thread(
                target=_claimer, args=(ctx.base_url, o.token, path, deadline, results[o.id])
            )
            for o in officers
        ]
        start = time.monotonic()
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        return time.monotonic() - start

    elapsed, floor = ctx.bracketed(drive)

    handed: dict[str, list[int]] = {}
    codes: dict[str, int] = {}
    latencies: list[float] = []
    for officer_id, rows in results.items():
        for seconds, status, case_id in rows:
            codes[str(status)] = codes.get(str(status), 0) + 1
            latencies.append(seconds)
            if case_id:
                handed.setdefault(case_id, []).append(officer_id)
    with ctx.engine.connect() as conn:
        rows = conn.execute(
            select(tbl.c.id, tbl.c.status, tbl.c.claimed_by_id).where(
                tbl.c.township_code == township
            )
        ).all()
    db_claimed = {str(r[0]): r[2] for r in rows if r[1] != "queued"}
    doubles = sum(len(v) - 1 for v in handed.values() if len(v) > 1)
    doubles += sum(
        1 for cid, who in handed.items() if len(who) == 1 and db_claimed.get(cid) != who[0]
    )
    # Lost: queued when the run started, out of the queue now, and handed to nobody.
    lost = sum(1 for cid in db_claimed if cid in queued_before and cid not in handed)
    claims = sum(len(v) for v in handed.values())
    rate = claims / elapsed if elapsed else 0.0
    latencies.sort()
    m = Measurement(
        path=NAME,
        label=TITLE,
        db=ctx.db,
        phase=ctx.phase,
        concurrency=CLAIMERS,
        rate=rate,
        unit="claims/s",
        p50_ms=percentile(latencies, 50) * 1000 if latencies else None,
        p99_ms=percentile(latencies, 99) * 1000 if latencies else None,
        ratio=ctx.adjacent_ratio(rate, floor),
        details={
            "driver": f"{CLAIMERS} Python threads, keep-alive connections",
            "floor_adjacent_rps": floor,
            "queue_size": QUEUE,
            "township": township,
            "claims": claims,
            "status_codes": codes,
            "double_claims": doubles,
            "lost_cases": lost,
            "queued_at_start": len(queued_before),
            "queue_left": sum(1 for r in rows if r[1] == "queued"),
            "seed_seconds": round(seed_s, 1),
            "elapsed_s": round(elapsed, 2),
        },
    )
    errors = sum(v for k, v in codes.items() if k not in ("200", "204"))
    m.targets = [
        Target("0 double claims", doubles == 0),
        Target("0 lost cases", lost == 0),
        Target("no errors", errors == 0),
        Target(
            f"≥ {TARGET_RATE:.0f} claims/s (PostgreSQL)",
            rate >= TARGET_RATE if ctx.db == "postgresql" else None,
        ),
        Target("no full scan", not plan["full_scans"]),
        *growth_targets(ctx, m),
    ]
    return [m]
