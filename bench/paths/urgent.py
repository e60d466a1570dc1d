"""Path 3, one-tap urgent help: ``POST /api/v1/urgent-requests`` from DISTINCT residents, each
with its own Idempotency-Key, so every request creates a case (+ timeline events + a receipt
SMS and a duty page in the outbox). Verified afterwards by counting rows.

Target: ≥ 0.25 of the floor on PostgreSQL, ≥ 0.15 on SQLite; p99 ≤ 100 ms.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from sqlalchemy import func, select

from bench import wrk
from bench.core import Context, Measurement, Target, growth_targets
from bench.explain import explain_request
from bench.seed import Resident, table
from notifications.models import SmsOutbox
from server.cases.models import Case

NAME = "urgent"
TITLE = "POST /api/v1/urgent-requests"
PHASES = ("base", "growth")
TARGET_RATIO = {"postgresql": 0.25, "sqlite": 0.15}
BODY = {
    "location": {"lat": 35.42, "lng": 119.52},
    "address": "日照市东港区",
    "description": "家中老人突发疾病，急需帮助",
}


def available(app: Any) -> str | None:
    return None


def _counts(ctx: Context) -> tuple[int, int]:
    with ctx.engine.connect() as conn:
        cases = conn.scalar(select(func.count()).select_from(table(Case))) or 0
        sms = conn.scalar(select(func.count()).select_from(table(SmsOutbox))) or 0
    return int(cases), int(sms)


def tap_pool(ctx: Context) -> int:
    """How many residents a run of taps needs: enough that none is used twice, generously
    above what the server can take."""
    floor_rate = ctx.floor.rate if ctx.floor else 2000
    return int(min(60_000, max(3_000, floor_rate * 0.6 * ctx.duration)))


def tap_data(ctx: Context, people: list[Resident], name: str) -> Path:
    """wrk's input for ``lua/urgent.lua``: each resident's token and a random township."""
    rng = ctx.seeder.rng
    data = ctx.workdir / name
    data.write_text("".join(f"{p.token} {rng.choice(ctx.seeder.townships)}\n" for p in people))
    return data


def run(ctx: Context) -> list[Measurement]:
    conc = max(1, ctx.floor_concurrency // 2)
    pool = tap_pool(ctx)
    t0 = time.monotonic()
    people = ctx.seeder.residents(pool + 1)
    seed_s = time.monotonic() - t0
    probe, people = people[0], people[1:]
    data = tap_data(ctx, people, f"urgent_{ctx.phase}.txt")

    cases0, sms0 = _counts(ctx)
    run_id = f"{ctx.db}-{ctx.phase}-{int(time.time())}"
    res, floor = ctx.bracketed(
        lambda: wrk.run(
            ctx.base_url,
            "urgent",
            connections=conc,
            duration_s=ctx.duration,
            env={"BENCH_DATA": str(data), "BENCH_RUN_ID": run_id},
        )
    )
    time.sleep(0.5)  # let requests in flight at wrk's stop finish
    cases1, sms1 = _counts(ctx)
    created, sms = cases1 - cases0, sms1 - sms0

    plan = explain_request(
        ctx.app,
        "POST",
        "/api/v1/urgent-requests",
        headers={"Authorization": f"Bearer {probe.token}", "Idempotency-Key": "explain-probe"},
        json_body={**BODY, "township_code": ctx.seeder.townships[0]},
    )
    plan["path"], plan["phase"] = NAME, ctx.phase
    ctx.explains.append(plan)

    n201 = res.codes.get("201", 0)
    others = {k: v for k, v in res.codes.items() if k != "201"}
    m = ctx.wrk_figure(
        NAME,
        TITLE,
        conc,
        res,
        floor,
        residents_prepared=pool,
        seed_seconds=round(seed_s, 1),
        responses_201=n201,
        other_responses=others,
        cases_created=created,
        sms_rows_created=sms,
        sms_per_case=round(sms / created, 2) if created else None,
    )
    want = TARGET_RATIO.get(ctx.db, 0.25)
    # wrk counts only responses received before it stops; up to `conc` more may have committed.
    every_new = not others and res.exhausted == 0 and n201 <= created <= n201 + conc
    m.targets = [
        Target("every request a new case (201)", every_new),
        Target("2 SMS rows per case", created > 0 and sms == 2 * created),
        Target(f"≥ {want} × floor", m.ratio is not None and m.ratio >= want),
        Target("p99 ≤ 100 ms", m.p99_ms <= 100),
        *growth_targets(ctx, m),
    ]
    return [m]
