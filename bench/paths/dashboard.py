"""Path 9, the supervisors' dashboard: ``GET /api/v1/counties/{code}/sla`` (the report the
console's ``/console/dashboard`` draws), default period (the last 30 days), a supervisor's
token, for the county the other paths fill (its townships' queues, taps and claims) and, in
the growth phase, its share of the million historical cases.

Target: p99 ≤ 300 ms at 2 connections (a few supervisors at once; the server's time, wrk on
the same host).
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import func, select

from bench import wrk
from bench.core import Context, Measurement, Target
from bench.explain import explain_request
from bench.seed import Resident
from server.accounts.models import Account
from server.cases.models import Case

NAME = "dashboard"
TITLE = "GET /api/v1/counties/{code}/sla"
PHASES = ("base", "growth")
COUNTY = "371102"
CONNECTIONS = 2


def available(app: Any) -> str | None:
    return None


def _token(ctx: Context) -> str:
    path = ctx.workdir / "dashboard_token.txt"
    if not path.exists():
        ctx.seeder.staff()
        with ctx.engine.connect() as conn:
            sup = conn.scalar(
                select(Account.id)
                .where(Account.role == "supervisor", Account.region_code == COUNTY)
                .order_by(Account.id)
            )
        person = Resident(id=sup, phone="")
        ctx.seeder.tokens([person], role="supervisor", region=COUNTY)
        path.write_text(person.token)
    return path.read_text()


def run(ctx: Context) -> list[Measurement]:
    token = _token(ctx)
    data = ctx.workdir / "dashboard_pairs.txt"
    data.write_text(f"{token} {COUNTY}/sla\n")
    env = {"BENCH_DATA": str(data), "BENCH_STATUS_PATH": "/api/v1/counties/"}
    with ctx.engine.connect() as conn:
        cases = conn.scalar(select(func.count()).where(Case.county_code == COUNTY)) or 0
    wrk.run(ctx.base_url, "status", connections=CONNECTIONS, duration_s=2, env=env)  # warm
    res, floor = ctx.bracketed(
        lambda: wrk.run(
            ctx.base_url, "status", connections=CONNECTIONS, duration_s=ctx.duration, env=env
        )
    )
    plan = explain_request(
        ctx.app,
        "GET",
        f"/api/v1/counties/{COUNTY}/sla",
        headers={"Authorization": f"Bearer {token}"},
    )
    plan["path"], plan["phase"] = NAME, ctx.phase
    ctx.explains.append(plan)
    bad = res.requests - res.codes.get("200", 0)
    m = ctx.wrk_figure(NAME, TITLE, CONNECTIONS, res, floor, county=COUNTY, county_cases=cases)
    m.targets = [
        Target("all 200", bad == 0 and res.error_count == 0),
        Target("p99 ≤ 300 ms", m.p99_ms is not None and m.p99_ms <= 300),
    ]
    return [m]
