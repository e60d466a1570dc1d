"""Start and stop the API under gunicorn on 127.0.0.1 for one benchmark database."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from bench import wrk

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent


@dataclass(frozen=True)
class ServerConfig:
    """How gunicorn runs: stated in every result."""

    workers: int = 2
    worker_class: str = "server.gthread.ThreadWorker"
    threads: int = 4
    port: int = 8765

    def describe(self) -> str:
        threads = f" x {self.threads} threads" if "thread" in self.worker_class.lower() else ""
        return f"gunicorn {self.workers} {self.worker_class} workers{threads}"

    def as_dict(self) -> dict[str, object]:
        return {
            "workers": self.workers,
            "worker_class": self.worker_class,
            "threads": self.threads,
            "bind": f"127.0.0.1:{self.port}",
            "config": "gunicorn.conf.py",
        }


def app_env(database_url: str, secret_key: str, extra: dict[str, str] | None = None) -> dict:
    """The environment of every process of the benchmarked deployment (API, CLI, worker)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("TEST_", "GUNICORN_"))}
    env.update(
        DATABASE_URL=database_url,
        SECRET_KEY=secret_key,
        AIDLINE_ENV="production",
        SERVE_DOCS="0",
        SMS_BACKEND="console",
        ACCESS_TOKEN_TTL="7200",
        PYTHONUNBUFFERED="1",
        # Production with several workers needs shared rate-limit counters; each run its own
        # keys, so runs and tests sharing the Redis server never count each other's hits.
        REDIS_URL=os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/0"),
        RATELIMIT_KEY_PREFIX=f"bench-{uuid.uuid4().hex[:12]}",
    )
    env.update(extra or {})
    return env


def flask_cli(env: dict[str, str], *args: str) -> str:
    """Run ``flask --app wsgi ARGS`` as the operator would; return its stdout."""
    proc = subprocess.run(
        [str(BIN / "flask"), "--app", "wsgi", *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    if proc.returncode != 0:
        raise RuntimeError(f"flask {' '.join(args)} failed: {proc.stderr[-2000:]}")
    return proc.stdout


@contextmanager
def gunicorn(
    config: ServerConfig, env: dict[str, str], log_path: Path, app_module: str = "wsgi:app"
) -> Iterator[str]:
    """Serve ``app_module`` and yield its base URL; stop it (SIGTERM, then SIGKILL) afterwards."""
    base = f"http://127.0.0.1:{config.port}"
    if not port_free(config.port):
        # Else the readiness check would be answered by that server, and every figure with it.
        raise RuntimeError(
            f"127.0.0.1:{config.port} is taken (a server left from an earlier run?): "
            "stop it or choose another --port"
        )
    run_env = {
        **env,
        "GUNICORN_BIND": f"127.0.0.1:{config.port}",
        "WEB_CONCURRENCY": str(config.workers),
        "GUNICORN_WORKER_CLASS": config.worker_class,
        "GUNICORN_THREADS": str(config.threads),
    }
    log_path.parent.mkdir(parents=True, exist_ok=True)
    with log_path.open("ab") as log:
        proc = subprocess.Popen(
            [str(BIN / "gunicorn"), "-c", str(ROOT / "gunicorn.conf.py"), app_module],
            cwd=ROOT,
            env=run_env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        _wait_ready(base, proc)
        _warm_up(base, config.workers)
        yield base
    finally:
        _stop(proc)


def port_free(port: int) -> bool:
    """Nothing listens on 127.0.0.1:``port`` (connections of an earlier server still closing
    do not count: gunicorn binds with SO_REUSEADDR too)."""
    with socket.socket() as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def _wait_ready(base: str, proc: subprocess.Popen, timeout_s: float = 60) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"gunicorn exited with {proc.returncode} (see the server log)")
        try:
            with urllib.request.urlopen(base + "/healthz", timeout=2) as resp:
                if resp.status == 200:
                    return
        except OSError:
            pass
        time.sleep(0.2)
    raise RuntimeError("gunicorn did not become ready")


def _warm_up(base: str, workers: int, tries: int = 10) -> None:
    """Load the server until every worker process serves its share: the first one up answers
    /healthz while the others still import the app, and a run then would measure one process."""
    for _ in range(tries):
        shares = wrk.run(base, "floor", connections=16, duration_s=2).server_shares
        if len(shares) >= workers and shares[workers - 1] >= 0.5 / workers:
            return
    raise RuntimeError(f"gunicorn's {workers} workers never shared the load: {shares}")


def _stop(proc: subprocess.Popen) -> None:
    if proc.poll() is not None:
        return
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(timeout=15)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(timeout=5)
