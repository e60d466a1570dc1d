"""Path 2, resident status: ``GET /api/v1/cases/{id}`` with a resident's token, 10-event timeline.

Target: ≥ 0.5 of the floor's throughput and p99 ≤ 20 ms, at half the floor's concurrency.
"""

from __future__ import annotations

from typing import Any

from bench import wrk
from bench.core import Context, Measurement, Target, growth_targets
from bench.explain import explain_request

NAME = "status"
TITLE = "GET /api/v1/cases/{id}"
PHASES = ("base", "growth")
RESIDENTS = 2000
WARM_UP_S = 3  # seconds of the same load before the measured run


def available(app: Any) -> str | None:
    return None


def pairs(ctx: Context) -> tuple[str, str, str]:
    """The ``token case_id`` file, made once per database (reused by the growth phase)."""
    path = ctx.workdir / "status_pairs.txt"
    if not path.exists():
        people = ctx.seeder.residents(RESIDENTS)
        ids = ctx.seeder.status_cases(people)
        path.write_text("".join(f"{p.token} {i}\n" for p, i in zip(people, ids, strict=True)))
    token, case_id = path.read_text().split("\n", 1)[0].split()
    return str(path), token, case_id


def run(ctx: Context) -> list[Measurement]:
    data, token, case_id = pairs(ctx)
    conc = max(1, ctx.floor_concurrency // 2)
    # A server that has been up: each resident's token verified once, their cases in the
    # page cache, every thread's pooled connection open. Right after a start these cost the
    # first seconds' requests tens of ms (a p99 of up to 83 ms, then 10-15 ms); its own figures
    # are kept in the details.
    warm = wrk.run(
        ctx.base_url, "status", connections=conc, duration_s=WARM_UP_S, env={"BENCH_DATA": data}
    )
    res, floor = ctx.bracketed(
        lambda: wrk.run(
            ctx.base_url,
            "status",
            connections=conc,
            duration_s=ctx.duration,
            env={"BENCH_DATA": data},
        )
    )
    plan = explain_request(
        ctx.app, "GET", f"/api/v1/cases/{case_id}", headers={"Authorization": f"Bearer {token}"}
    )
    plan["path"], plan["phase"] = NAME, ctx.phase
    ctx.explains.append(plan)
    ok_codes = res.codes.get("200", 0)
    bad = res.requests - ok_codes
    m = ctx.wrk_figure(
        NAME,
        TITLE,
        conc,
        res,
        floor,
        timeline_events=10,
        residents=RESIDENTS,
        warm_up={
            "seconds": WARM_UP_S,
            "rps": round(warm.rps, 1),
            "p50_ms": warm.p50_us / 1000,
            "p99_ms": warm.p99_us / 1000,
        },
    )
    m.targets = [
        Target("all 200", bad == 0 and res.error_count == 0),
        Target("≥ 0.5 × floor", m.ratio is not None and m.ratio >= 0.5),
        Target("p99 ≤ 20 ms", m.p99_ms <= 20),
        Target("no full scan", not plan["full_scans"]),
        *growth_targets(ctx, m),
    ]
    return [m]
