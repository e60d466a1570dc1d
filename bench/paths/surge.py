"""Surge: a flood or a cold snap in one county. 2,000 urgent taps in 10 minutes across 15
townships (a duty officer on the roster in each), residents asking for sign-in codes, the duty
officers claiming, the SLA sweep escalating what waits - and one SMS worker sending through the
real Twilio SDK into the fake Twilio paced like long codes (1 message/s per sender, the rest
queued first in, first out, as Twilio does).

Reported per message kind: the time from commit (the outbox row's ``created_at``, taken just
before its transaction commits) to the provider (when the message leaves its sender's queue at
the fake Twilio: what the duty officer waits for), p50 / p99 / max, per minute for the urgent
kinds; the outbox backlog over time; and whether anything was lost or sent twice.

Targets: duty pages and sign-in codes p99 ≤ 10 s in every minute of the surge; receipts may
queue; every tap a case with its receipt and page; every message sent exactly once.

Alone: ``python -m bench.run --only surge [--db postgresql] [--surge-seconds 120
--surge-taps 400]`` (a shorter surge at the same rate, for iteration); it replaces only the
surge section of bench/results/latest.{md,json}.
"""

from __future__ import annotations

import dataclasses
import http.client
import json
import os
import threading
import time
from collections import Counter, defaultdict
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from sqlalchemy import func, select

from bench.core import Context, Measurement, Target
from bench.paths.sms import ACCOUNT_SID, _fake_twilio, _get, _post, _settle_outbox, _workers
from bench.seed import table
from bench.server import gunicorn
from bench.stats import percentile
from notifications import templates
from notifications.models import SmsOutbox
from server.cases.models import Case
from server.db import utcnow

NAME = "surge"
TITLE = "surge: 2,000 urgent taps in 10 min in one county"
PHASES = ("base",)

TAPS = 2000
SECONDS = 600.0
SENDERS = 8  # long codes in the TWILIO_FROM pool (see "why 8" in run())
SENDER_RATE = 1.0  # messages/s each long code carries
TOWNSHIPS = 15
CODES_PER_TAP = 0.25  # residents asking for a sign-in code meanwhile
CLAIM_EVERY_S = 20.0  # each duty officer claims the next case this often
SAMPLE_EVERY_S = 5.0
TARGET_P99_S = 10.0
URGENT_KINDS = ("duty_page", "sign_in_code")
DRAIN_TIMEOUT_S = 900.0


def available(app: Any) -> str | None:
    from notifications.pacing import Pacer

    if not hasattr(Pacer(1), "lanes"):
        return "sender pools not on main yet"
    return None


def _options(ctx: Context) -> tuple[int, float, int]:
    o = ctx.options
    return (
        int(o.get("surge_taps") or TAPS),
        float(o.get("surge_seconds") or SECONDS),
        int(o.get("surge_senders") or SENDERS),
    )


def _county(ctx: Context) -> tuple[str, list[str]]:
    """The first county of the city with at least TOWNSHIPS townships, and TOWNSHIPS of them."""
    for county in ctx.seeder.counties:
        towns = [t for t in ctx.seeder.townships if t.startswith(county)]
        if len(towns) >= TOWNSHIPS:
            return county, towns[:TOWNSHIPS]
    raise RuntimeError(f"no county with {TOWNSHIPS} townships")


class _Client:
    """Open-loop requests against the surge server from a thread pool; answers counted."""

    def __init__(self, base_url: str) -> None:
        self.host, port = base_url.rsplit("//", 1)[1].split(":")
        self.port = int(port)
        self.lock = threading.Lock()
        self.codes: dict[str, Counter[int]] = defaultdict(Counter)
        self.cases: list[str] = []
        self.claimed: list[str] = []

    def request(self, kind: str, method: str, path: str, body: Any, headers: dict) -> None:
        data = json.dumps(body).encode() if body is not None else b""
        conn = http.client.HTTPConnection(self.host, self.port, timeout=60)
        try:
            conn.request(
                method,
                path,
                body=data,
                headers={"Content-Type": "application/json", **headers},
            )
            resp = conn.getresponse()
            raw = resp.read()
            status = resp.status
        except OSError:
            status, raw = 0, b""
        finally:
            conn.close()
        with self.lock:
            self.codes[kind][status] += 1
            if kind == "tap" and status == 201:
                self.cases.append(json.loads(raw)["id"])
            if kind == "claim" and status == 200:
                self.claimed.append(json.loads(raw)["id"])


def _schedule(
    taps: int, seconds: float, residents: list[Any], townships: list[str], officers: list[Any]
) -> list[tuple[float, tuple[Any, ...]]]:
    """(at, request) for the whole surge: taps evenly spread, codes between them, claims."""
    events: list[tuple[float, tuple[Any, ...]]] = []
    for k in range(taps):
        body = {"township_code": townships[k % len(townships)], "description": "房屋进水，老人被困"}
        headers = {"Authorization": f"Bearer {residents[k].token}", "Idempotency-Key": f"s-{k}"}
        events.append(
            (k * seconds / taps, ("tap", "POST", "/api/v1/urgent-requests", body, headers))
        )
    codes = int(taps * CODES_PER_TAP)
    for k in range(codes):
        phone = f"137{k:08d}"
        # Each from its own address (TRUSTED_PROXIES=1): the per-client limit is per person.
        headers = {"X-Forwarded-For": f"10.{k // 65536 % 256}.{k // 256 % 256}.{k % 256}"}
        at = (k + 0.5) * seconds / codes
        events.append((at, ("code", "POST", "/api/v1/auth/sms-code", {"phone": phone}, headers)))
    for j, officer in enumerate(officers):
        path = f"/api/v1/townships/{townships[j]}/queue/claim"
        headers = {"Authorization": f"Bearer {officer.token}"}
        at = 30.0 + j * CLAIM_EVERY_S / len(officers)
        while at < seconds:
            events.append((at, ("claim", "POST", path, None, headers)))
            at += CLAIM_EVERY_S
    events.sort(key=lambda e: e[0])
    return events


def _backlog(ctx: Context, since: Any, t0: float) -> dict[str, Any]:
    """Messages of the surge not yet handed to the provider, urgent kinds and the rest."""
    tbl = table(SmsOutbox)
    now = utcnow()
    with ctx.engine.connect() as conn:
        rows = conn.execute(
            select(tbl.c.priority, func.count(), func.min(tbl.c.created_at))
            .where(tbl.c.created_at >= since, tbl.c.status.in_(("pending", "sending")))
            .group_by(tbl.c.priority)
        ).all()
    out: dict[str, Any] = {"t_s": round(time.time() - t0, 1), "urgent": 0, "other": 0}
    oldest: dict[str, Any] = {}
    for priority, count, first in rows:
        key = "urgent" if priority <= templates.URGENT_PRIORITY else "other"
        out[key] += int(count)
        oldest[key] = min(oldest.get(key, first), first)
    for key, first in oldest.items():
        out[f"oldest_{key}_s"] = round((now - first).total_seconds(), 1)
    return out


def _sampler(ctx: Context, since: Any, t0: float, stop: threading.Event, out: list) -> None:
    while not stop.is_set():
        try:
            out.append(_backlog(ctx, since, t0))
        except Exception as exc:  # noqa: BLE001 - a missed sample is not a failed run
            out.append({"t_s": round(time.time() - t0, 1), "error": type(exc).__name__})
        stop.wait(SAMPLE_EVERY_S)


def _pcts(values: list[float]) -> dict[str, Any]:
    values = sorted(values)
    if not values:
        return {"n": 0}
    return {
        "n": len(values),
        "p50_s": round(percentile(values, 50), 2),
        "p99_s": round(percentile(values, 99), 2),
        "max_s": round(values[-1], 2),
    }


def run(ctx: Context) -> list[Measurement]:
    n_taps, seconds, senders = _options(ctx)
    county, townships = _county(ctx)
    # Why 8 senders: a tap pages its township's duty officer, so 2,000 taps in 10 minutes are
    # 3.3 pages/s, plus the sign-in codes (0.8/s here), the escalations and, as much again,
    # the receipts: one long code at 1/s falls further behind on the pages alone every
    # second; five carry the urgent kinds with the receipts' share (SMS_FAIR_SHARE) set
    # aside, eight carry the receipts too (--surge-senders to try others).
    fake_port = ctx.server.port + 3
    pool = [f"+1500555{k:04d}" for k in range(senders)]
    log_dir = ctx.workdir
    seed_started = time.monotonic()
    residents = ctx.seeder.residents(n_taps)
    officers = [ctx.seeder.duty_officers(t, 1)[0] for t in townships]
    seed_s = round(time.monotonic() - seed_started, 1)
    events = _schedule(n_taps, seconds, residents, townships, officers)
    fake_args = ("--sender-rate", str(SENDER_RATE))
    with _fake_twilio(fake_port, log_dir / "surge_fake_twilio.log", *fake_args) as fake:
        env = {
            **ctx.env,
            "SMS_BACKEND": "twilio",
            "TWILIO_ACCOUNT_SID": ACCOUNT_SID,
            "TWILIO_AUTH_TOKEN": "bench-auth-token-0123456789abcdef",
            "TWILIO_FROM": ",".join(pool),
            "TWILIO_API_BASE": fake,
            "SMS_SEND_RATE": str(SENDER_RATE),
            "SMS_POLL_SECONDS": "1",
            "WORKER_PERIODIC_SECONDS": "30",
            # The sweep escalates unclaimed taps during the surge, not after it.
            "URGENT_CLAIM_MINUTES": "5",
            "TRUSTED_PROXIES": "1",
        }
        env.pop("PUBLIC_BASE_URL", None)
        server = dataclasses.replace(ctx.server, port=ctx.server.port + 2)
        _settle_outbox(ctx)
        _post(fake + "/_reset")
        with gunicorn(server, env, log_dir / "surge_gunicorn.log") as base_url:
            client = _Client(base_url)
            since = utcnow()
            t0 = time.time()
            load_start = os.getloadavg()
            samples: list[dict[str, Any]] = []
            stop = threading.Event()
            with _workers(1, env, log_dir):
                sampler = threading.Thread(
                    target=_sampler, args=(ctx, since, t0, stop, samples), daemon=True
                )
                sampler.start()
                with ThreadPoolExecutor(max_workers=64) as pool_ex:
                    start = time.monotonic()
                    for at, req in events:
                        delay = start + at - time.monotonic()
                        if delay > 0:
                            time.sleep(delay)
                        pool_ex.submit(client.request, *req)
                surge_end = time.time() - t0
                ctx.log(f"    surge over after {surge_end:.0f} s; draining the outbox ...")
                deadline = time.monotonic() + DRAIN_TIMEOUT_S
                while time.monotonic() < deadline:
                    b = _backlog(ctx, since, t0)
                    if not b["urgent"] and not b["other"]:
                        break
                    time.sleep(1.0)
                stop.set()
                sampler.join(10)
                samples.append(_backlog(ctx, since, t0))
                time.sleep(1.0)
            load_end = os.getloadavg()
        messages = _get(fake + "/_messages")["messages"]
    return _figures(
        ctx,
        since=since,
        t0=t0,
        seconds=seconds,
        surge_end=surge_end,
        client=client,
        messages=messages,
        samples=samples,
        info={
            "county": county,
            "townships": townships,
            "taps_planned": n_taps,
            "seconds": seconds,
            "senders": f"{senders} long codes in TWILIO_FROM, {SENDER_RATE:g} msg/s each "
            "(the fake Twilio paces each the same way)",
            "worker": "1 x `flask --app wsgi worker`, SMS_FAIR_SHARE default",
            "codes_per_tap": CODES_PER_TAP,
            "claims": f"each duty officer every {CLAIM_EVERY_S:g} s",
            "urgent_claim_minutes": 5,
            "seed_s": seed_s,
            "loadavg_start": [round(x, 2) for x in load_start],
            "loadavg_end": [round(x, 2) for x in load_end],
        },
    )


def _figures(
    ctx: Context,
    *,
    since: Any,
    t0: float,
    seconds: float,
    surge_end: float,
    client: _Client,
    messages: list[dict[str, Any]],
    samples: list[dict[str, Any]],
    info: dict[str, Any],
) -> list[Measurement]:
    tbl = table(SmsOutbox)
    cases = table(Case)
    with ctx.engine.connect() as conn:
        rows = conn.execute(
            select(
                tbl.c.id,
                tbl.c.template,
                tbl.c.created_at,
                tbl.c.provider_sid,
                tbl.c.status,
                tbl.c.case_id,
            ).where(tbl.c.created_at >= since)
        ).all()
        tapped = {str(c) for c in client.cases}
        n_cases = conn.scalar(
            select(func.count()).where(cases.c.created_at >= since, cases.c.urgent.is_(True))
        )
    by_sid = {m["sid"]: m for m in messages}
    lat: dict[str, list[float]] = defaultdict(list)
    accept: dict[str, list[float]] = defaultdict(list)
    per_minute: dict[str, dict[int, list[float]]] = defaultdict(lambda: defaultdict(list))
    unsent, per_case = [], defaultdict(Counter)
    for _id, template, created, sid, status, case_id in rows:
        if case_id is not None:
            per_case[str(case_id)][template] += 1
        m = by_sid.get(sid or "")
        if m is None or status not in ("sent", "delivered"):
            unsent.append(_id)
            continue
        created_s = created.timestamp()
        wait = m["dispatch"] - created_s
        lat[template].append(wait)
        accept[template].append(m["t"] - created_s)
        per_minute[template][int((created_s - t0) // 60)].append(wait)
    missing_receipt = [c for c in tapped if per_case[c]["urgent_receipt"] != 1]
    missing_page = [c for c in tapped if per_case[c]["duty_page"] < 1]
    codes_ok = client.codes["code"][202]
    code_rows = sum(1 for r in rows if r.template == "sign_in_code")
    extra_sends = len(messages) - len([r for r in rows if r.provider_sid in by_sid])
    by_sender = Counter(m["sender"] for m in messages)
    results: list[Measurement] = []
    minute_p99: dict[str, dict[int, float]] = {}
    for kind in sorted(lat, key=lambda k: (templates.priority(k), k)):
        values = sorted(lat[kind])
        m = Measurement(
            path=NAME,
            label=f"surge: {kind}, commit → provider",
            db=ctx.db,
            phase=ctx.phase,
            concurrency=1,
            rate=len(values) / seconds,
            unit="msg/s",
            p50_ms=percentile(values, 50) * 1000,
            p99_ms=percentile(values, 99) * 1000,
            details={
                "kind": kind,
                "priority": templates.priority(kind),
                "commit_to_provider": _pcts(values),
                "commit_to_api_accept": _pcts(accept[kind]),
            },
        )
        if kind in URGENT_KINDS:
            minutes = {
                k: round(percentile(sorted(v), 99), 2) for k, v in sorted(per_minute[kind].items())
            }
            minute_p99[kind] = minutes
            m.details["p99_s_per_minute"] = minutes
            m.targets = [
                Target(
                    f"p99 ≤ {TARGET_P99_S:g} s in every minute",
                    bool(minutes) and max(minutes.values()) <= TARGET_P99_S,
                )
            ]
        results.append(m)
    taps_ok = client.codes["tap"][201]
    summary = Measurement(
        path=NAME,
        label="surge: nothing lost, backlog over time",
        db=ctx.db,
        phase=ctx.phase,
        concurrency=1,
        rate=taps_ok / seconds,
        unit="taps/s",
        details={
            **info,
            "answers": {k: dict(v) for k, v in client.codes.items()},
            "urgent_cases_created": int(n_cases or 0),
            "claims_made": len(client.claimed),
            "outbox_rows": len(rows),
            "outbox_rows_by_kind": dict(Counter(r.template for r in rows)),
            "messages_at_provider": len(messages),
            "unsent_rows": len(unsent),
            "sends_without_a_row_or_twice": extra_sends,
            "messages_per_sender": dict(sorted(by_sender.items())),
            "surge_ended_s": round(surge_end, 1),
            "drained_at_s": samples[-1]["t_s"] if samples else None,
            "backlog": samples,
        },
    )
    summary.targets = [
        Target("every tap a new case (201)", taps_ok == info["taps_planned"] == len(tapped)),
        Target("every code request answered 202", codes_ok == sum(client.codes["code"].values())),
        Target("every case: one receipt and a page", not missing_receipt and not missing_page),
        Target("every code request one SMS", code_rows == codes_ok),
        Target("nothing lost (all sent)", not unsent and bool(rows)),
        Target("nothing sent twice", extra_sends == 0),
    ]
    return [*results, summary]
