"""Evidence for the urgent tap's and the status read's targets: the best each can do with the
prescribed stack.

``bench/stack_app.py`` serves ``wsgi:app`` plus ``POST /bench/stack-tap``, which does the
framework work every tap must do — gunicorn, Flask, flask-smorest's parsing of the tap's
headers and body with the real schemas, the bearer token verified — and then sends one real
tap's SQL by the raw driver in one transaction, without any of Aidline's own code. wrk sends
it the same taps as path 3 (distinct residents and keys), on its own gunicorn (same
configuration), between floor probes on that server. Below the target ratio means no
application code on this stack, with this statement set, reaches the target on this machine.
The same server then answers path 2's reads at ``GET /bench/stack-read/{id}`` (the token
verified, one real status read's SQL by the raw driver, a two-field answer), after the same
warm-up as path 2.
"""

from __future__ import annotations

import dataclasses
import pickle
import time
from typing import Any

from bench import wrk
from bench.core import Context, Measurement, Target
from bench.paths import status
from bench.paths.ceiling import captured_read, captured_tap
from bench.paths.urgent import TARGET_RATIO, tap_data, tap_pool
from bench.server import gunicorn

NAME = "stack"
TITLE = "urgent tap: the stack's work + its SQL by the raw driver (stack ceiling)"
READ_TITLE = "status read: the stack's work + its SQL by the raw driver (stack ceiling)"
PHASES = ("base",)
ROUTE = "/bench/stack-tap"
READ_ROUTE = "/bench/stack-read"


def available(app: Any) -> str | None:
    return None


def run(ctx: Context) -> list[Measurement]:
    script, template = captured_tap(ctx)
    script_file = ctx.workdir / "stack_script.pickle"
    script_file.write_bytes(pickle.dumps((script, template)))
    conc = max(1, ctx.floor_concurrency // 2)
    people = ctx.seeder.residents(tap_pool(ctx))
    data = tap_data(ctx, people, "stack_taps.txt")
    read_file = ctx.workdir / "stack_read.pickle"
    read_file.write_bytes(pickle.dumps(captured_read(ctx)))
    reads, _, _ = status.pairs(ctx)
    read_env = {"BENCH_DATA": reads, "BENCH_STATUS_PATH": READ_ROUTE + "/"}
    # Port + 1 is the SMS path's fake Twilio.
    server = dataclasses.replace(ctx.server, port=ctx.server.port + 2)
    env = {**ctx.env, "BENCH_STACK_SCRIPT": str(script_file), "BENCH_STACK_READ": str(read_file)}
    with gunicorn(server, env, ctx.workdir / "gunicorn-stack.log", "bench.stack_app:app") as url:
        here = dataclasses.replace(ctx, base_url=url)
        res, floor = here.bracketed(
            lambda: wrk.run(
                url,
                "urgent",
                connections=conc,
                duration_s=ctx.duration,
                env={
                    "BENCH_DATA": str(data),
                    "BENCH_RUN_ID": f"stack-{int(time.time())}",
                    "BENCH_URGENT_PATH": ROUTE,
                },
            )
        )
        # As path 2 measures the app's read: after the same warm-up.
        wrk.run(url, "status", connections=conc, duration_s=status.WARM_UP_S, env=read_env)
        read_res, read_floor = here.bracketed(
            lambda: wrk.run(url, "status", connections=conc, duration_s=ctx.duration, env=read_env)
        )
    want = TARGET_RATIO.get(ctx.db, 0.25)
    others = {k: v for k, v in res.codes.items() if k != "201"}
    m = here.wrk_figure(
        NAME,
        TITLE,
        conc,
        res,
        floor,
        what=f"POST {ROUTE} on its own gunicorn ({server.describe()}): the tap's headers and "
        "body parsed by flask-smorest with the real schemas, the token verified, then the SQL "
        "of one real tap by the raw driver, one transaction; ratio to /healthz on that server",
        statements_per_tap=len(script),
        other_responses=others,
    )
    m.targets = [
        Target("every request answered 201", not others and res.exhausted == 0),
        Target(
            f"a tap at ≥ {want} × floor is possible on this stack",
            m.ratio is not None and m.ratio >= want,
        ),
    ]
    read = here.wrk_figure(
        NAME,
        READ_TITLE,
        conc,
        read_res,
        read_floor,
        what=f"GET {READ_ROUTE}/{{id}} on the same gunicorn: the token verified, then the SQL "
        "of one real status read by the raw driver (no transaction), a two-field answer (the body "
        "not built); ratio to /healthz on that server",
    )
    read_ok = read_res.codes.get("200", 0) == read_res.requests and read_res.error_count == 0
    read.targets = [
        Target("every request answered 200", read_ok),
        Target(
            "a read at ≥ 0.5 × floor is possible on this stack",
            read.ratio is not None and read.ratio >= 0.5,
        ),
    ]
    return [m, read]
