"""Rate limits under gunicorn with several worker processes: counters shared through Redis,
and production refusing to serve from several processes with per-process counters."""

from __future__ import annotations

import http.client
import json
import os
import re
import secrets
import socket
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import redis
from cryptography.fernet import Fernet

ROOT = Path(__file__).resolve().parent.parent
GUNICORN = str(Path(sys.executable).parent / "gunicorn")
REDIS_URL = "redis://127.0.0.1:6379/0"
WORKERS = 3
# Every send counts against the client, even one the per-phone limit then refuses.
PER_CLIENT = 12
# The access log names the worker process of every request (%(p)s): the proof that the
# requests were spread over several processes.
ACCESS_FORMAT = '%(p)s "%(r)s" %(s)s'


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _production_env(database_url: str, **extra: str) -> dict[str, str]:
    env = {
        **os.environ,
        "AIDLINE_ENV": "production",
        "DATABASE_URL": database_url,
        "SECRET_KEY": secrets.token_urlsafe(48),
        "ID_ENCRYPTION_KEYS": Fernet.generate_key().decode(),
        "ID_HASH_KEY": secrets.token_urlsafe(32),
        "WEB_CONCURRENCY": str(WORKERS),
        "GUNICORN_THREADS": "1",
        **extra,
    }
    for name in ("TEST_DATABASE_URL", "REDIS_URL", "RATELIMIT_STORAGE_URI"):
        if name not in extra:
            env.pop(name, None)
    return env


def _request(port: int, method: str, path: str, body: Any = None) -> tuple[int, Any]:
    # A connection per request: each may land on another worker.
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    try:
        payload = json.dumps(body) if body is not None else None
        conn.request(method, path, payload, {"Content-Type": "application/json"})
        resp = conn.getresponse()
        return resp.status, json.loads(resp.read() or b"null")
    finally:
        conn.close()


def _wait_ready(port: int, proc: subprocess.Popen, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise AssertionError(f"gunicorn exited: {proc.stderr.read() if proc.stderr else ''}")
        try:
            if _request(port, "GET", "/healthz")[0] == 200:
                return
        except OSError:
            time.sleep(0.2)
    raise AssertionError("gunicorn did not answer")


def _all_at_once(n: int, call) -> list[Any]:
    barrier = threading.Barrier(n)
    results: list[Any] = [None] * n

    def run(i: int) -> None:
        barrier.wait()
        results[i] = call(i)

    threads = [threading.Thread(target=run, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    return results


@pytest.fixture
def served(committed_app, database_url, tmp_path) -> Iterator[dict[str, Any]]:
    """gunicorn (gunicorn.conf.py, production settings) with WORKERS processes on Redis, keys
    under a prefix of this run only (removed afterwards)."""
    prefix = f"aidline-test-{uuid.uuid4().hex}"
    port = _free_port()
    access_log = tmp_path / "access.log"
    env = _production_env(
        database_url,
        REDIS_URL=REDIS_URL,
        RATELIMIT_KEY_PREFIX=prefix,
        RATELIMIT_SMS_PER_CLIENT=f"{PER_CLIENT}/hour",
        GUNICORN_BIND=f"127.0.0.1:{port}",
        GUNICORN_ACCESSLOG=str(access_log),
    )
    proc = subprocess.Popen(
        [GUNICORN, "-c", "gunicorn.conf.py", "--access-logformat", ACCESS_FORMAT, "wsgi:app"],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    store = redis.Redis.from_url(REDIS_URL)
    try:
        _wait_ready(port, proc)
        _wait_workers(port, access_log)
        yield {"port": port, "access_log": access_log, "redis": store, "prefix": prefix}
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        if proc.stderr:
            proc.stderr.close()
        keys = list(store.scan_iter(match=f"{prefix}*"))
        if keys:
            store.delete(*keys)
        store.close()


def _wait_workers(port: int, access_log: Path, timeout: float = 90) -> None:
    # The first process up answers everything until its siblings have loaded the app.
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        _all_at_once(6, lambda i: _request(port, "GET", "/healthz"))
        time.sleep(0.2)
        if len(_pids(access_log, "/healthz")) >= 2:
            return
    raise AssertionError("only one gunicorn worker ever answered")


def _pids(access_log: Path, path: str) -> set[str]:
    pids = set()
    for line in access_log.read_text().splitlines():
        match = re.match(r'<(\d+)> "\w+ (\S+)', line)
        if match and match.group(2).startswith(path):
            pids.add(match.group(1))
    return pids


def test_sign_in_code_limits_hold_across_processes(served):
    port = served["port"]
    # One phone, many sends at once: one code a minute, whichever process answers.
    sends = _all_at_once(
        8, lambda i: _request(port, "POST", "/api/v1/auth/sms-code", {"phone": "13812345678"})
    )
    statuses = sorted(status for status, _ in sends)
    assert statuses == [202] + [429] * 7, sends
    assert all(body["code"] == "rate_limited" for status, body in sends if status == 429)
    # One client, many phones: PER_CLIENT sends an hour in all (8 spent above).
    more = _all_at_once(
        8,
        lambda i: _request(port, "POST", "/api/v1/auth/sms-code", {"phone": f"1391234560{i}"}),
    )
    assert sorted(status for status, _ in more) == [202] * 4 + [429] * 4, more
    # Tries at a code are limited per phone too (RATELIMIT_VERIFY_PER_PHONE, 10 per 10 min).
    tries = _all_at_once(
        12,
        lambda i: _request(
            port, "POST", "/api/v1/auth/token", {"phone": "13812345678", "code": "000000"}
        ),
    )
    assert sorted(status for status, _ in tries).count(429) == 2, tries
    time.sleep(0.5)  # the access log is written after each answer
    assert len(_pids(served["access_log"], "/api/v1/auth/")) >= 2, "all in one process"
    # The counters are in Redis, under this run's prefix.
    assert any(served["redis"].scan_iter(match=f"{served['prefix']}*"))


def test_access_log_masks_phone_numbers(served):
    port = served["port"]
    for path in (
        "/api/v1/cases?phone=%2B8613812345678",
        "/api/v1/cases?phone=13812345678&page=1",
    ):
        assert _request(port, "GET", path)[0] == 401
    time.sleep(0.5)
    log = served["access_log"].read_text()
    assert "/api/v1/cases?phone=" in log
    assert "13812345678" not in log and "138****5678" in log


def test_production_refuses_several_processes_with_per_process_limits(database_url):
    port = _free_port()
    env = _production_env(database_url, GUNICORN_BIND=f"127.0.0.1:{port}")
    proc = subprocess.run(
        [GUNICORN, "-c", "gunicorn.conf.py", "wsgi:app"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode != 0
    assert "REDIS_URL" in proc.stderr, proc.stderr
    # The same with the number of workers given on gunicorn's command line.
    env.pop("WEB_CONCURRENCY")
    proc = subprocess.run(
        [GUNICORN, "-c", "gunicorn.conf.py", "--workers", "2", "wsgi:app"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode != 0 and "REDIS_URL" in proc.stderr, proc.stderr


def test_production_app_refuses_several_processes_with_per_process_limits(monkeypatch):
    from server.app import create_app

    production = {
        "ENV_NAME": "production",
        "SECRET_KEY": "x" * 40,
        "RATELIMIT_STORAGE_URI": "memory://",
        "DATABASE_URL": "sqlite://",
    }
    monkeypatch.setenv("WEB_CONCURRENCY", "4")
    with pytest.raises(RuntimeError, match="REDIS_URL"):
        create_app(production)
    # One process, or a shared storage, or development: fine.
    create_app({**production, "ENV_NAME": "development"})
    monkeypatch.setenv("WEB_CONCURRENCY", "1")
    create_app(production)
