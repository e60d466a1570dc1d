"""Evidence for the urgent tap's targets: the database's own ceiling on this machine.

One real tap goes through the app in-process and every statement it sends is captured with
its parameters. Those exact statements are then replayed by the raw driver (psycopg, or
sqlite3) — no HTTP, no Flask, no SQLAlchemy, no application Python — from 2 processes × 4
threads (the server's layout), each iteration as a new resident with a new case id, case
number and idempotency key, one transaction per tap. Its rate is what the database work of a
tap alone reaches here.

A tap must do both the HTTP work the floor measures and this database work, on the same two
cores, so even with zero application code its rate is at most 1 / (1/floor + 1/replay). The
row reports that bound as a ratio to the floor: when it is below the target ratio, the target
cannot be met with this statement set on this machine, whatever the Python does.
"""

from __future__ import annotations

import multiprocessing as mp
import random
import re
import sqlite3
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from sqlalchemy import text

from bench.core import Context, Measurement, Target
from bench.explain import capture_request
from bench.paths.urgent import BODY, TARGET_RATIO
from bench.replay import Replay

NAME = "ceiling"
TITLE = "urgent tap: its SQL replayed by the raw driver (database ceiling)"
PHASES = ("base",)
PROCESSES, THREADS = 2, 4
# Transaction control is the replay's own: one transaction per tap (BEGIN IMMEDIATE on SQLite,
# as the app opens a write request's), none for a read.
_TXN_CONTROL = re.compile(r"^\s*(SAVEPOINT|RELEASE|ROLLBACK|BEGIN|COMMIT)\b", re.IGNORECASE)


def available(app: Any) -> str | None:
    return None


def captured_tap(ctx: Context) -> tuple[list[tuple[str, Any, bool]], dict[str, Any]]:
    """One real tap's SQL (transaction control left out) and what in it names the tap: its
    resident, session, case id, case number, key, the key row's id and township."""
    warm, probe = ctx.seeder.residents(2)
    # A tap first, so per-process caches (gazetteer, template overrides) are warm, as in a
    # server that has been up: the captured tap then holds only what every tap sends.
    capture_request(
        ctx.app,
        "POST",
        "/api/v1/urgent-requests",
        headers={"Authorization": f"Bearer {warm.token}", "Idempotency-Key": uuid.uuid4().hex},
        json_body={**BODY, "township_code": ctx.seeder.townships[0]},
    )
    key = f"ceiling-{uuid.uuid4().hex}"
    resp, statements = capture_request(
        ctx.app,
        "POST",
        "/api/v1/urgent-requests",
        headers={"Authorization": f"Bearer {probe.token}", "Idempotency-Key": key},
        json_body={**BODY, "township_code": ctx.seeder.townships[0]},
    )
    if resp.status_code != 201:
        raise RuntimeError(f"probe tap answered {resp.status_code}: {resp.get_data(as_text=True)}")
    body = resp.get_json()
    with ctx.engine.connect() as conn:
        key_row = conn.scalar(
            text("SELECT id FROM idempotency_keys WHERE account_id = :a AND key = :k"),
            {"a": probe.id, "k": key},
        )
    template = {
        "resident": probe.id,
        "session": probe.session_id,
        "case_id": uuid.UUID(body["id"]),
        "case_no": body["case_no"],
        "key": key,
        "key_row": key_row,
        "township": ctx.seeder.townships[0],
    }
    return [(s, p, many) for s, p, many in statements if not _TXN_CONTROL.match(s)], template


def run(ctx: Context) -> list[Measurement]:
    script, template = captured_tap(ctx)
    pool = ctx.seeder.residents(PROCESSES * THREADS * 4000)
    if ctx.db == "sqlite":
        dsn = f"sqlite:{ctx.engine.url.database}"
    else:
        dsn = ctx.engine.url.set(drivername="postgresql").render_as_string(hide_password=False)
    slices = [[p.id for p in pool[i :: PROCESSES * THREADS]] for i in range(PROCESSES * THREADS)]
    floor_before = ctx.floor_probe()
    # As the urgent path sends them (a random township each), then a flood in one township.
    spread = _replay_all(dsn, script, template, slices[:], ctx.seeder.townships, ctx.duration)
    one = _replay_all(dsn, script, template, slices[:], [template["township"]], ctx.duration)
    floor_after = ctx.floor_probe()
    tap = _ceiling(
        ctx,
        TITLE,
        "tap",
        "tx/s",
        spread,
        (floor_before, floor_after),
        script,
        TARGET_RATIO[ctx.db],
        "one transaction per tap, each in a random township",
        {"one_township_tx_s": round(one, 1)},
    )
    return [tap, _status_ceiling(ctx, dsn)]


def captured_read(ctx: Context) -> tuple[list[tuple[str, Any, bool]], dict[str, Any]]:
    """One real status read's SQL and what in it names the read: its resident, session and
    case (a 10-event timeline)."""
    people = ctx.seeder.residents(2)
    warm, probe = ctx.seeder.status_cases(people)
    # A read first, so per-process caches (the gazetteer) are warm, as in a server that has
    # been up: the captured read then holds only what every read sends.
    for person, case_id in ((people[0], warm), (people[1], probe)):
        resp, statements = capture_request(
            ctx.app,
            "GET",
            f"/api/v1/cases/{case_id}",
            headers={"Authorization": f"Bearer {person.token}"},
        )
        if resp.status_code != 200:
            raise RuntimeError(f"probe read answered {resp.status_code}")
    template = {
        "resident": people[1].id,
        "session": people[1].session_id,
        "case_id": uuid.UUID(probe),
    }
    return [(s, p, m) for s, p, m in statements if not _TXN_CONTROL.match(s)], template


def _status_ceiling(ctx: Context, dsn: str) -> Measurement:
    """The same for the resident's status read: its SQL replayed (no transaction, as the
    lean read runs it), and the best ratio a read could reach on top of the floor's work."""
    script, _ = captured_read(ctx)
    turns = [list(range(100_000)) for _ in range(PROCESSES * THREADS)]
    floor_before = ctx.floor_probe()
    rate = _replay_all(dsn, script, {}, turns, [""], ctx.duration)
    floor_after = ctx.floor_probe()
    return _ceiling(
        ctx,
        "status read: its SQL replayed by the raw driver (database ceiling)",
        "read",
        "reads/s",
        rate,
        (floor_before, floor_after),
        script,
        0.5,
        "without a transaction",
    )


def _ceiling(
    ctx: Context,
    label: str,
    what: str,
    unit: str,
    rate: float,
    floors: tuple[float, float],
    script: list[tuple[str, Any, bool]],
    want: float,
    how: str,
    extra: dict[str, Any] | None = None,
) -> Measurement:
    """The figure of a replay: its rate, and as its ratio the best a ``what`` could reach
    on top of the floor's work, 1/(1/floor + 1/replay) ÷ floor, checked against ``want``."""
    floor = sum(floors) / 2
    bound = 1 / (1 / floor + 1 / rate)
    m = Measurement(
        path=NAME,
        label=label,
        db=ctx.db,
        phase=ctx.phase,
        concurrency=PROCESSES * THREADS,
        rate=rate,
        unit=unit,
        ratio=bound / floor,
        details={
            "what": f"the statements of one real {what}, replayed by the raw driver, {how}; "
            f"ratio = the best a {what} could do: 1/(1/floor + 1/replay) ÷ floor",
            f"statements_per_{what}": len(script),
            "statements": [_squash(s) for s, _, _ in script],
            **(extra or {}),
            "floor_adjacent_rps": {"before": round(floors[0], 1), "after": round(floors[1], 1)},
            f"best_possible_{what}_rps": round(bound, 1),
        },
    )
    m.targets = [
        Target(
            f"a {what} at ≥ {want} × floor is possible with these statements", bound / floor >= want
        )
    ]
    return m


def _replay_all(
    dsn: str,
    script: list[tuple[str, Any, bool]],
    template: dict[str, Any],
    slices: list[list[int]],
    townships: list[str],
    secs: float,
) -> float:
    """Taps per second of the replay from PROCESSES × THREADS connections for ``secs``."""
    fork = mp.get_context("fork")
    queue: Any = fork.Queue()
    procs = [
        fork.Process(
            target=_process,
            args=(
                dsn,
                script,
                template,
                townships,
                slices[k * THREADS : (k + 1) * THREADS],
                secs,
                queue,
            ),
        )
        for k in range(PROCESSES)
    ]
    t0 = time.monotonic()
    for p in procs:
        p.start()
    results = [queue.get(timeout=secs + 60) for _ in procs]
    for p in procs:
        p.join()
    elapsed = time.monotonic() - t0
    errors = [e for _, errs in results for e in errs]
    if errors:
        raise RuntimeError(f"replay failed: {errors[0]}")
    for ids in slices:  # the next replay takes residents not used yet
        del ids[: sum(n for n, _ in results) // len(slices) + 1]
    return sum(n for n, _ in results) / elapsed


def _squash(sql: str) -> str:
    return " ".join(sql.split())[:200]


def _process(
    dsn: str,
    script: list[tuple[str, Any, bool]],
    template: dict[str, Any],
    townships: list[str],
    slices: list[list[int]],
    seconds: float,
    queue: Any,
) -> None:
    counts = [0] * len(slices)
    errors: list[str] = []
    deadline = time.monotonic() + seconds

    def replay(i: int, ids: list[int]) -> None:
        try:
            _replay(dsn, script, template, townships, ids, deadline, counts, i)
        except Exception as exc:  # reported with the figure; a failed replay must not count
            errors.append(f"{type(exc).__name__}: {exc}")

    threads = [threading.Thread(target=replay, args=(i, ids)) for i, ids in enumerate(slices)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    queue.put((sum(counts), errors))


def _replay(
    dsn: str,
    script: list[tuple[str, Any, bool]],
    template: dict[str, Any],
    townships: list[str],
    residents: list[int],
    deadline: float,
    counts: list[int],
    slot: int,
) -> None:
    replay = Replay(script, template)
    with _connect(dsn, read=not template) as conn:
        cur = conn.cursor()
        for resident in residents:
            if time.monotonic() >= deadline:
                break
            if not template:  # a read: the same statements again, as the lean read runs them
                replay.send(cur, {})
                counts[slot] += 1
                continue
            if isinstance(conn, sqlite3.Connection):
                cur.execute("BEGIN IMMEDIATE")
            case_id = uuid.uuid4()
            replay.send(
                cur,
                {
                    "resident": resident,
                    "case_id": case_id,
                    "case_no": f"B{case_id.hex[:20]}",
                    "key": f"ceiling-{case_id.hex}",
                    "township": random.choice(townships),
                },
            )
            conn.commit()
            counts[slot] += 1


@contextmanager
def _connect(dsn: str, *, read: bool) -> Iterator[Any]:
    """A raw driver connection: psycopg for PostgreSQL (reads without a transaction, as the
    lean read runs), sqlite3 for SQLite (transactions as the app runs them: its statements
    include the BEGIN IMMEDIATE; the busy timeout as the app's)."""
    if dsn.startswith("sqlite:"):
        conn = sqlite3.connect(dsn.removeprefix("sqlite:"), isolation_level=None, timeout=30)
        conn.execute("PRAGMA busy_timeout=30000")
        try:
            yield conn
        finally:
            conn.close()
        return
    import psycopg

    with psycopg.connect(dsn, autocommit=read) as conn:
        yield conn
