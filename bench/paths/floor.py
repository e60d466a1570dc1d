"""Path 1, the floor: ``GET /healthz`` on the same server: the framework's ceiling here."""

from __future__ import annotations

from typing import Any

from bench import wrk
from bench.core import Context, Measurement

NAME = "floor"
TITLE = "GET /healthz (floor)"
PHASES = ("base", "growth")


def available(app: Any) -> str | None:
    return None


def run(ctx: Context) -> list[Measurement]:
    res = wrk.run(ctx.base_url, "floor", connections=ctx.floor_concurrency, duration_s=ctx.duration)
    m = Measurement(
        path=NAME,
        label=TITLE,
        db=ctx.db,
        phase=ctx.phase,
        concurrency=ctx.floor_concurrency,
        rate=res.rps,
        p50_ms=res.p50_us / 1000,
        p99_ms=res.p99_us / 1000,
        ratio=1.0,
        details={"wrk": res.as_dict()},
    )
    ctx.floor = m
    return [m]
