"""Path 5, SMS: outbox drain through the real Twilio SDK into a local fake Twilio server, with
1 and 4 workers (``flask --app wsgi worker`` processes, as deployed), and the tap-to-page
latency: urgent tap sent -> the duty officer's page received by the fake Twilio.

Targets: ≥ 200 messages/s with 4 workers; tap-to-page p99 ≤ 1 s on PostgreSQL (SQLite has no
LISTEN/NOTIFY: its workers poll, so its figure is reported, not judged).
"""

from __future__ import annotations

import http.client
import importlib.util
import json
import signal
import subprocess
import sys
import threading
import time
import urllib.request
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from sqlalchemy import func, select, update

from bench.core import Context, Measurement, Target
from bench.seed import table
from bench.server import BIN, ROOT
from bench.stats import percentile
from notifications.models import SmsOutbox
from server.cases.workflow_models import Escalation
from server.db import utcnow

NAME = "sms"
TITLE = "SMS outbox drain (Twilio SDK -> fake Twilio)"
PAGE_TITLE = "tap-to-page (urgent tap -> duty SMS at Twilio)"
PHASES = ("base",)
DRAIN = ((1, 600), (4, 2000))  # (workers, messages)
TAP_RATE = 10.0  # urgent taps per second during the tap-to-page run
POLL_SECONDS = 0.5  # the workers' polling fallback (SQLite has no NOTIFY)
FLOOR_SECONDS = 3.0
FLOOD_BACKLOG = 1_000
ACCOUNT_SID = "AC" + "0" * 32


def available(app: Any) -> str | None:
    for module in ("notifications.worker", "server.worker"):
        if importlib.util.find_spec(module) is None:
            return "SMS worker not on main yet"
    return None


def _get(url: str) -> Any:
    with urllib.request.urlopen(url, timeout=10) as resp:
        return json.loads(resp.read())


def _post(url: str) -> None:
    req = urllib.request.Request(url, data=b"", method="POST")
    with urllib.request.urlopen(req, timeout=10):
        pass


@contextmanager
def _fake_twilio(port: int, log_path: Path, *args: str):
    with log_path.open("ab") as log:
        proc = subprocess.Popen(
            [sys.executable, "-m", "bench.fake_twilio", "--port", str(port), *args],
            cwd=ROOT,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    base = f"http://127.0.0.1:{port}"
    try:
        for _ in range(100):
            try:
                _get(base + "/_stats")
                break
            except OSError:
                time.sleep(0.1)
        yield base
    finally:
        proc.terminate()
        proc.wait(timeout=10)


@contextmanager
def _workers(n: int, env: dict[str, str], workdir: Path):
    procs, logs = [], []
    for k in range(n):
        log_path = workdir / f"sms_worker_{n}_{k}.log"
        log_path.unlink(missing_ok=True)
        with log_path.open("ab") as log:
            procs.append(
                subprocess.Popen(
                    [str(BIN / "flask"), "--app", "wsgi", "worker", "--worker-id", f"bench-{k}"],
                    cwd=ROOT,
                    env=env,
                    stdout=log,
                    stderr=subprocess.STDOUT,
                )
            )
        logs.append(log_path)
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if all("started" in p.read_text(errors="replace") for p in logs):
                break
            if any(p.poll() is not None for p in procs):
                raise RuntimeError(f"an SMS worker exited: see {logs[0].parent}")
            time.sleep(0.2)
        else:
            raise RuntimeError("SMS workers did not start")
        time.sleep(0.3)  # LISTEN registered after the "started" line
        yield procs
    finally:
        for p in procs:
            if p.poll() is None:
                p.send_signal(signal.SIGTERM)
        for p in procs:
            try:
                p.wait(timeout=20)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait(timeout=5)


def _settle_outbox(ctx: Context) -> None:
    """Mark what earlier paths left pending as sent, so only this path's messages count."""
    tbl = table(SmsOutbox)
    with ctx.engine.begin() as conn:
        conn.execute(
            update(tbl).where(tbl.c.status.in_(("pending", "sending"))).values(status="sent")
        )


def _enqueue(ctx: Context, n: int) -> tuple[float, set[str]]:
    """``n`` due messages through the real outbox API, committed at once; returns the time
    and the recipients (other messages, e.g. escalations of the workers' SLA sweep, are not
    counted)."""
    import notifications
    from server.session import database

    phones = [p.phone for p in ctx.seeder.residents(min(n, 500))]
    with database(ctx.app).new_session() as session:
        if ctx.db == "sqlite":
            # Waiting workers poll with BEGIN IMMEDIATE: take the write lock up front too.
            session.connection(execution_options={"sqlite_begin": "IMMEDIATE"})
        for k in range(n):
            notifications.enqueue(
                session,
                phones[k % len(phones)],
                "urgent_receipt",
                {"case_no": f"JJ371102004-20261123-{k:04d}", "township": "秦楼街道"},
            )
        session.commit()
    return time.time(), set(phones)


def _wait_received(
    fake: str, n: int, timeout: float, to: set[str] | None = None
) -> list[list[Any]]:
    deadline = time.monotonic() + timeout
    while True:
        got = _get(fake + "/_stats")["received"]
        if to is not None:
            got = [r for r in got if r[2] in to]
        if len(got) >= n or time.monotonic() > deadline:
            return got
        time.sleep(0.2)


def _wait_quiet(fake: str, *, at_least: int, quiet: float, timeout: float) -> list[list[Any]]:
    """What the fake received once it has ``at_least`` messages and nothing new arrived for
    ``quiet`` seconds (or at ``timeout``)."""
    deadline = time.monotonic() + timeout
    count, since = -1, time.monotonic()
    while True:
        got = _get(fake + "/_stats")["received"]
        if len(got) != count:
            count, since = len(got), time.monotonic()
        elif (len(got) >= at_least and time.monotonic() - since >= quiet) or (
            time.monotonic() > deadline
        ):
            return got
        time.sleep(0.25)


def _taps(ctx: Context, seconds: float) -> list[tuple[float, str]]:
    """Urgent taps at TAP_RATE per second from distinct residents; (sent at, case id)."""
    n = int(TAP_RATE * seconds)
    people = ctx.seeder.residents(n)
    townships = ctx.seeder.townships
    out: list[tuple[float, str]] = []
    lock = threading.Lock()
    host, port = "127.0.0.1", int(ctx.base_url.rsplit(":", 1)[1])

    def tap(k: int) -> None:
        body = json.dumps(
            {"township_code": townships[k % len(townships)], "description": "老人摔倒，急需帮助"}
        )
        conn = http.client.HTTPConnection(host, port, timeout=30)
        sent = time.time()
        conn.request(
            "POST",
            "/api/v1/urgent-requests",
            body=body.encode(),
            headers={
                "Authorization": f"Bearer {people[k].token}",
                "Content-Type": "application/json",
                "Idempotency-Key": f"page-{k}-{int(sent)}",
            },
        )
        resp = conn.getresponse()
        data = resp.read()
        conn.close()
        if resp.status == 201:
            with lock:
                out.append((sent, json.loads(data)["id"]))

    threads = []
    start = time.monotonic()
    for k in range(n):
        # Open loop: a tap every 1/TAP_RATE seconds whatever the server's latency.
        delay = start + k / TAP_RATE - time.monotonic()
        if delay > 0:
            time.sleep(delay)
        t = threading.Thread(target=tap, args=(k,))
        t.start()
        threads.append(t)
    for t in threads:
        t.join()
    return out


def _sdk_floor(fake: str, processes: int, seconds: float) -> float:
    """Messages/s that ``processes`` SDK-only senders reach together (no database)."""
    start_at = time.time() + 1.5  # let every process import the SDK first
    procs = [
        subprocess.Popen(
            [
                sys.executable,
                "-m",
                "bench.sdk_floor",
                "--api-base",
                fake,
                "--seconds",
                str(seconds),
                "--start-at",
                str(start_at),
            ],
            cwd=ROOT,
            stdout=subprocess.PIPE,
            text=True,
        )
        for _ in range(processes)
    ]
    total = 0.0
    for proc in procs:
        out, _ = proc.communicate(timeout=seconds + 60)
        data = json.loads(out.strip().splitlines()[-1])
        total += data["sent"] / data["seconds"]
    return total


def _tap_to_page(ctx: Context, fake: str, env: dict[str, str], *, flood: bool) -> Measurement:
    backlog = 0
    if flood:
        township = ctx.seeder.townships[len(ctx.seeder.townships) // 2]
        backlog = ctx.seeder.queue(
            township,
            FLOOD_BACKLOG,
            ctx.seeder.residents(200),
            urgent_every=1,
            age_minutes=(30, 90),
        )
    _settle_outbox(ctx)
    _post(fake + "/_reset")
    started = utcnow()
    with _workers(4, env, ctx.workdir):
        taps = _taps(ctx, ctx.duration)
        # Each tap: a receipt to the resident and a page to the duty officer.
        got = _wait_quiet(fake, at_least=2 * len(taps), quiet=2.0, timeout=90.0)
    arrived = {sid: t for t, sid, _ in got}
    tbl = table(SmsOutbox)
    sent_at = dict((cid, t) for t, cid in taps)
    with ctx.engine.connect() as conn:
        rows = conn.execute(
            select(tbl.c.case_id, tbl.c.provider_sid).where(
                tbl.c.template == "duty_page", tbl.c.case_id.is_not(None)
            )
        ).all()
        # Since the per-supervisor digest: one SMS per supervisor per sweep ("escalation"
        # for a single case, "escalation_digest" for several), one record per case.
        escalation_sms = dict(
            conn.execute(
                select(tbl.c.template, func.count())
                .where(
                    tbl.c.template.in_(("escalation", "escalation_digest")),
                    tbl.c.created_at >= started,
                )
                .group_by(tbl.c.template)
            ).all()
        )
        esc = table(Escalation)
        escalated = conn.scalar(select(func.count()).where(esc.c.fired_at >= started))
    latencies = sorted(
        arrived[sid] - sent_at[str(cid)]
        for cid, sid in rows
        if str(cid) in sent_at and sid in arrived
    )
    paged = len(latencies)
    label = PAGE_TITLE
    if flood:
        label += f", {backlog:,} urgent cases overdue"
    m = Measurement(
        path="tap_to_page",
        label=label,
        db=ctx.db,
        phase=ctx.phase,
        concurrency=4,
        rate=len(taps) / ctx.duration,
        unit="taps/s",
        p50_ms=percentile(latencies, 50) * 1000 if latencies else None,
        p99_ms=percentile(latencies, 99) * 1000 if latencies else None,
        details={
            "taps": len(taps),
            "pages_received": paged,
            "max_ms": round(latencies[-1] * 1000, 1) if latencies else None,
            "workers": 4,
            "wake_up": "LISTEN/NOTIFY" if ctx.db == "postgresql" else f"poll {POLL_SECONDS}s",
            "overdue_urgent_backlog": backlog,
            "escalations_recorded": int(escalated or 0),
            "escalation_sms_in_outbox": sum(escalation_sms.values()),
            "escalation_digests_in_outbox": int(escalation_sms.get("escalation_digest", 0)),
            "messages_received_by_fake": len(got),
        },
    )
    m.targets = [
        Target("every tap paged", paged == len(taps) and paged > 0),
        Target(
            "p99 ≤ 1 s (PostgreSQL)",
            (m.p99_ms is not None and m.p99_ms <= 1000) if ctx.db == "postgresql" else None,
        ),
    ]
    if flood:
        # The flood is a night shift's worst case: the pages must get through *and* the
        # sweep must still escalate what waits (it once failed on every SQLite run).
        m.targets.append(Target("the SLA sweep escalated the overdue cases", bool(escalated)))
    return m


def run(ctx: Context) -> list[Measurement]:
    port = ctx.server.port + 1
    results: list[Measurement] = []
    with _fake_twilio(port, ctx.workdir / "fake_twilio.log") as fake:
        env = {
            **ctx.env,
            "SMS_BACKEND": "twilio",
            "TWILIO_ACCOUNT_SID": ACCOUNT_SID,
            "TWILIO_AUTH_TOKEN": "bench-auth-token-0123456789abcdef",
            "TWILIO_FROM": "+15005550006",
            "TWILIO_API_BASE": fake,
            "SMS_SEND_RATE": "0",
            "SMS_POLL_SECONDS": str(POLL_SECONDS),
            "WORKER_PERIODIC_SECONDS": "3600",
        }
        env.pop("PUBLIC_BASE_URL", None)
        for workers, n in DRAIN:
            _settle_outbox(ctx)
            floor_before = _sdk_floor(fake, workers, FLOOR_SECONDS)
            _post(fake + "/_reset")
            with _workers(workers, env, ctx.workdir):
                t0, phones = _enqueue(ctx, n)
                got = _wait_received(fake, n, timeout=max(60.0, n / 20), to=phones)
            floor_after = _sdk_floor(fake, workers, FLOOR_SECONDS)
            floor = (floor_before + floor_after) / 2
            received = len(got)
            last = max((r[0] for r in got), default=t0)
            elapsed = max(last - t0, 1e-6)
            rate = received / elapsed
            m = Measurement(
                path=NAME,
                label=f"SMS drain, {workers} worker{'s' if workers > 1 else ''}",
                db=ctx.db,
                phase=ctx.phase,
                concurrency=workers,
                rate=rate,
                unit="msg/s",
                ratio=rate / floor if floor else None,
                details={
                    "sdk_floor_msg_s": {
                        "before": round(floor_before, 1),
                        "after": round(floor_after, 1),
                        "processes": workers,
                        "what": "Twilio SDK -> fake Twilio, no database (bench/sdk_floor.py)",
                    },
                    "messages": n,
                    "received": received,
                    "seconds": round(elapsed, 2),
                    "send_rate_limit": "off (SMS_SEND_RATE=0)",
                    "workers": f"{workers} x `flask --app wsgi worker`",
                },
            )
            m.targets = [Target("all received", received == n)]
            if workers == 4:
                m.targets.append(Target("≥ 200 msg/s", rate >= 200))
            results.append(m)
            ctx.log(f"    SMS drain with {workers} worker(s): {rate:.1f} msg/s")

        # Tap-to-page: 4 workers waiting, taps arrive at a steady rate.
        results.append(_tap_to_page(ctx, fake, env, flood=False))
        # The same in a flood that began an hour ago: urgent cases unclaimed past the claim
        # target, so the SLA sweep of the starting workers escalates them all by SMS.
        results.append(_tap_to_page(ctx, fake, env, flood=True))
    return results
