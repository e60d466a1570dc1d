"""``make bench`` / ``python -m bench.run``: the whole benchmark, end to end.

For SQLite (a fresh file) and, when BENCH_DATABASE_URL reaches one, PostgreSQL: migrate with
the operator's commands, seed, serve with gunicorn on 127.0.0.1, drive each path with wrk (or
Python threads where the path needs them), EXPLAIN the hot queries, and write
bench/results/latest.json and latest.md. ``--growth`` adds the 1,000,000-case variant.
"""

from __future__ import annotations

import argparse
import os
import secrets
import shutil
import subprocess
import sys
import time
import traceback
from pathlib import Path
from typing import Any

from cryptography.fernet import Fernet
from sqlalchemy import text
from sqlalchemy.engine import make_url

from bench import paths as path_registry
from bench import report, wrk
from bench.core import Context, Measurement, Target
from bench.seed import Seeder
from bench.server import ROOT, ServerConfig, app_env, flask_cli, gunicorn
from server.app import create_app
from server.config import web_threads
from server.db import make_engine
from server.session import database

RESULTS = Path(__file__).resolve().parent / "results"
# Scratch (the SQLite database, logs, token files) beside the app's own instance/ data, so
# bench/results holds only the latest run and the decision record.
WORK = Path(__file__).resolve().parent.parent / "instance" / "bench"
GROWTH_PATHS = ("floor", "status", "urgent", "claim", "dashboard")


def log(msg: str) -> None:
    print(msg, flush=True)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m bench.run", description=__doc__)
    p.add_argument("--db", choices=("sqlite", "postgresql", "both"), default="both")
    p.add_argument(
        "--paths",
        default=",".join(path_registry.ALL),
        help=f"comma-separated, of {','.join(path_registry.ALL)} (the floor always runs)",
    )
    p.add_argument(
        "--only",
        default="",
        help=f"run just these paths of {','.join(path_registry.SECTIONS)} (no floor) and "
        "replace only their sections of latest.{json,md}",
    )
    p.add_argument("--surge-seconds", type=float, default=0, help="surge length (600)")
    p.add_argument("--surge-taps", type=int, default=0, help="taps in the surge (2,000)")
    p.add_argument("--surge-senders", type=int, default=0, help="long codes in the pool (8)")
    p.add_argument("--duration", type=int, default=10, help="seconds per wrk run")
    p.add_argument("--concurrency", type=int, default=16, help="floor connections")
    p.add_argument("--growth", action="store_true", help="also run with 1M historical cases")
    p.add_argument("--growth-cases", type=int, default=1_000_000)
    p.add_argument("--growth-events", type=int, default=3, help="events per historical case")
    p.add_argument(
        "--growth-county",
        help="put every historical case in this county's townships (default: the whole city)",
    )
    p.add_argument("--workers", type=int, default=int(os.environ.get("BENCH_WORKERS", 2)))
    p.add_argument(
        "--threads",
        type=int,
        default=int(os.environ.get("BENCH_THREADS", 0)) or None,
        help="threads per process (default: gunicorn.conf.py's, by database)",
    )
    p.add_argument(
        "--worker-class",
        default=os.environ.get("BENCH_WORKER_CLASS", "server.gthread.ThreadWorker"),
    )
    p.add_argument("--port", type=int, default=8765)
    p.add_argument("--out", type=Path, default=RESULTS, help="where latest.{json,md} go")
    return p.parse_args(argv)


def pg_url() -> str | None:
    """BENCH_DATABASE_URL when PostgreSQL answers there; None otherwise."""
    url = os.environ.get("BENCH_DATABASE_URL", "")
    if not url:
        return None
    if make_url(url).host not in (None, "127.0.0.1", "localhost", "::1"):
        raise SystemExit("BENCH_DATABASE_URL must point at this machine (127.0.0.1)")
    try:
        engine = make_engine(url, connect_args={"connect_timeout": 3})
        with engine.connect() as conn:
            conn.execute(text("SELECT 1"))
        engine.dispose()
    except Exception as exc:  # noqa: BLE001 - any failure means "not reachable"
        log(f"PostgreSQL at BENCH_DATABASE_URL not reachable ({type(exc).__name__}); skipped")
        return None
    return url


def fresh_database(kind: str, pg: str | None, workdir: Path) -> str:
    """An empty database: a new SQLite file, or the PostgreSQL schema dropped and recreated."""
    if kind == "sqlite":
        db_file = workdir / "bench.db"
        for suffix in ("", "-wal", "-shm"):
            Path(f"{db_file}{suffix}").unlink(missing_ok=True)
        return f"sqlite:///{db_file}"
    assert pg is not None
    name = make_url(pg).database or ""
    if name in ("test", "postgres", "") or not name.startswith("aidline_bench"):
        raise SystemExit(f"refusing to wipe database {name!r}: use one named aidline_bench*")
    engine = make_engine(pg)
    with engine.begin() as conn:
        conn.execute(text("DROP SCHEMA IF EXISTS public CASCADE"))
        conn.execute(text("CREATE SCHEMA public"))
    engine.dispose()
    return pg


def machine() -> dict[str, Any]:
    model = ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return {
        "cores": os.cpu_count(),
        "cpu": model,
        "python": sys.version.split()[0],
        "loadavg_start": list(os.getloadavg()),
    }


def git_commit() -> str:
    try:
        out = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True
        )
        dirty = subprocess.run(
            ["git", "status", "--porcelain"], cwd=ROOT, capture_output=True, text=True
        ).stdout.strip()
        return out.stdout.strip() + ("+dirty" if dirty else "")
    except OSError:
        return ""


def run_database(
    kind: str, url: str, args: argparse.Namespace, selected: list[str]
) -> tuple[list[Measurement], list[dict[str, Any]], dict[str, Any]]:
    workdir = WORK / kind
    shutil.rmtree(workdir, ignore_errors=True)
    workdir.mkdir(parents=True)
    url = fresh_database(kind, url, workdir)
    secret = secrets.token_urlsafe(48)
    keys = {
        "ID_ENCRYPTION_KEYS": Fernet.generate_key().decode(),
        "ID_HASH_KEY": secrets.token_urlsafe(32),
    }
    env = app_env(url, secret, keys)
    info: dict[str, Any] = {}
    t0 = time.monotonic()
    flask_cli(env, "db", "upgrade")
    flask_cli(env, "divisions", "load", "--prefix", "3711")
    info["migrate_seconds"] = round(time.monotonic() - t0, 1)
    app = create_app(
        {
            "DATABASE_URL": url,
            "SECRET_KEY": secret,
            "ACCESS_TOKEN_TTL": 7200,
            "RATELIMIT_STORAGE_URI": "memory://",
            **keys,
        }
    )
    engine = database(app).engine
    seeder = Seeder(app, engine)
    t0 = time.monotonic()
    seeder.staff()
    info["seed_staff_seconds"] = round(time.monotonic() - t0, 1)
    server = ServerConfig(
        workers=args.workers,
        worker_class=args.worker_class,
        threads=args.threads or web_threads({"DATABASE_URL": url}),
        port=args.port,
    )
    info["server"] = server.as_dict()
    results: list[Measurement] = []
    ctx = Context(
        db=engine.dialect.name,
        phase="base",
        base_url="",
        app=app,
        engine=engine,
        seeder=seeder,
        server=server,
        env=env,
        workdir=workdir,
        duration=args.duration,
        floor_concurrency=args.concurrency,
        log=log,
        options={
            "surge_seconds": args.surge_seconds,
            "surge_taps": args.surge_taps,
            "surge_senders": args.surge_senders,
        },
    )
    phases = ["base"] + (["growth"] if args.growth else [])
    with gunicorn(server, env, workdir / "gunicorn.log") as base_url:
        ctx.base_url = base_url
        for phase in phases:
            ctx.phase = phase
            if phase == "growth":
                ctx.baseline = {m.path: m for m in results if m.phase == "base"}
                log(f"  [{kind}] loading {args.growth_cases:,} historical cases ...")
                info["growth_load"] = seeder.history(
                    args.growth_cases,
                    events_per_case=args.growth_events,
                    county=args.growth_county,
                    log=log,
                )
                info["growth_total_cases"] = seeder.count_cases()
                log(f"  [{kind}] growth data: {info['growth_load']}")
            for name in selected:
                if phase == "growth" and name not in GROWTH_PATHS:
                    continue
                module = path_registry.load(name)
                if phase not in module.PHASES:
                    continue
                why = module.available(app)
                if why:
                    log(f"  [{kind}/{phase}] {name}: skipped ({why})")
                    results.append(_skipped(ctx, name, module.TITLE, why))
                    continue
                log(f"  [{kind}/{phase}] {name} ...")
                try:
                    for m in module.run(ctx):
                        results.append(m)
                        log("    " + report.one_line(m))
                except Exception as exc:  # noqa: BLE001 - record it and go on with the next path
                    traceback.print_exc()
                    results.append(_skipped(ctx, name, module.TITLE, f"failed: {exc!r}"[:300]))
    engine.dispose()
    return results, ctx.explains, info


def _skipped(ctx: Context, name: str, title: str, why: str) -> Measurement:
    return Measurement(
        path=name,
        label=title,
        db=ctx.db,
        phase=ctx.phase,
        concurrency=0,
        rate=0.0,
        targets=[Target("ran", False if why.startswith("failed") else None)],
        details={"skipped": why},
    )


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    only = [p.strip() for p in args.only.split(",") if p.strip()]
    if only:
        if set(only) - set(path_registry.SECTIONS):
            raise SystemExit(f"--only takes {','.join(path_registry.SECTIONS)}")
        selected = only
    else:
        selected = [p.strip() for p in args.paths.split(",") if p.strip()]
    unknown = set(selected) - set(path_registry.ALL)
    if unknown:
        raise SystemExit(f"unknown paths: {sorted(unknown)}")
    if "floor" not in selected and not only:
        selected.insert(0, "floor")
    selected = [p for p in path_registry.ALL if p in selected]
    log("wrk: " + wrk.ensure_wrk())
    started = time.time()
    meta = {
        "started_at": time.strftime("%Y-%m-%dT%H:%M:%S%z", time.localtime(started)),
        "commit": git_commit(),
        "machine": machine(),
        "duration_s_per_path": args.duration,
        "floor_concurrency": args.concurrency,
        "growth": args.growth,
        "databases": {},
    }
    dbs: list[tuple[str, str]] = []
    if args.db in ("sqlite", "both"):
        dbs.append(("sqlite", ""))
    if args.db in ("postgresql", "both"):
        url = pg_url()
        if url:
            dbs.append(("postgresql", url))
        elif args.db == "postgresql":
            raise SystemExit("BENCH_DATABASE_URL is not set or not reachable")
    results: list[Measurement] = []
    explains: list[dict[str, Any]] = []
    for kind, url in dbs:
        log(f"== {kind}")
        res, exp, info = run_database(kind, url, args, selected)
        results += res
        explains += exp
        meta["databases"][kind] = info
    meta["machine"]["loadavg_end"] = list(os.getloadavg())
    meta["elapsed_s"] = round(time.time() - started, 1)
    if only:
        json_path, md_path = report.write_sections(args.out, meta, results)
    else:
        json_path, md_path = report.write(args.out, meta, results, explains)
    log(f"wrote {json_path} and {md_path}")
    print(report.table(results, meta))
    return 0


if __name__ == "__main__":
    sys.exit(main())
