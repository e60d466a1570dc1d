"""The outbox worker: claim due messages, send them, record every attempt.

Delivery is at-least-once. A batch of rows is claimed (status ``sending``, a fresh
``claim_token`` per row, an ``sms_attempts`` row each) and committed *before* the provider is
called; the outcomes are recorded afterwards, for the whole batch in one transaction (at the
end of the batch, or sooner when its sends have taken ``record_interval`` seconds). A worker
that dies in between leaves ``sending`` rows whose claims are older than ``sending_timeout``;
the next worker marks those attempts ``lost`` and sends them again - unless the provider's
receipt has meanwhile told us a message's SID (the callback URL carries the outbox id), in
which case that message is settled without a second send. So a message is never lost, is sent
at most once per attempt, and is duplicated only when a worker dies after the provider
accepted it and before its outcome was recorded or any receipt arrived.

Crash in the middle of a batch: the messages already handed to the provider but not yet
recorded (at most one batch, at most ``record_interval`` seconds of sends) are all in that
window and may each go out twice; the ones not sent yet are simply sent by the next worker.
Nothing is lost either way; the per-message window is as before, only more messages can be in
it at once. A recording transaction applies each outcome only while the row's ``claim_token``
still matches that claim (rows locked in id order), so a worker that outlived its claims never
overwrites a newer attempt, whichever part of its batch expired.

On PostgreSQL the recording transaction runs with ``synchronous_commit = off`` (the claim
transaction never does): a database crash may then forget the last few hundred milliseconds
of recorded outcomes, which leaves exactly the state of a worker crash before recording -
expired claims, recovered and resent as above - so no guarantee changes, while the worker
stops waiting for a WAL flush per batch. Anything that later reads those outcomes and commits
synchronously (a receipt, an operator's retry) flushes the WAL up to and including them.

Several workers may run at once: rows are claimed with ``FOR UPDATE SKIP LOCKED`` on
PostgreSQL and inside a ``BEGIN IMMEDIATE`` transaction on SQLite. On PostgreSQL the worker
sleeps on ``LISTEN`` (``enqueue`` NOTIFYs on commit) with polling as the fallback.

The periodic jobs (the SLA sweep) run in a thread of their own with a database connection of
their own (``PeriodicJobs``), so a send never waits for a sweep; on PostgreSQL only the worker
holding an advisory lock runs them, so N workers do not sweep N times.
"""

from __future__ import annotations

import datetime as dt
import logging
import math
import os
import socket
import threading
import time
import uuid
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlencode

from sqlalchemy import and_, bindparam, func, literal_column, select, text, true, update
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session, sessionmaker

from notifications import NOTIFY_CHANNEL, templates
from notifications.delivery import apply_early_receipts_many, clear_claim, fail, mask_phone
from notifications.models import SmsAttempt, SmsOutbox
from notifications.retry import RetryPolicy
from notifications.senders import Sender, SendError
from server.db import is_postgresql, utcnow

log = logging.getLogger(__name__)

STATUS_CALLBACK_PATH = "/api/v1/webhooks/twilio/status"

PeriodicJob = Callable[[Session, dt.datetime], Any]

# PostgreSQL advisory lock (session level) of the one worker that runs the periodic jobs.
PERIODIC_LOCK_KEY = 0x4149444C  # "AIDL"


@dataclass
class WorkerSettings:
    """Tuning of one worker process (see README "SMS" for the matching variables)."""

    batch_size: int = 20
    # Messages per second this worker hands to each of the sender's lanes (each number of a
    # TWILIO_FROM pool, or a Messaging Service); 0 means no limit.
    send_rate: float = 1.0
    # Every ``fair_share``-th message this worker claims is the one due longest, whatever its
    # priority, so receipts still move while pages and codes flood in; 0: strict priority.
    fair_share: int = 10
    # A claim older than this is presumed dead (longer than any provider call can take).
    sending_timeout: float = 300.0
    poll_interval: float = 5.0
    # Outcomes of a batch are recorded together at its end, or once its sends have taken
    # this long (bounds how many sent-but-unrecorded messages a crash can duplicate).
    record_interval: float = 1.0
    # PostgreSQL: record outcomes without waiting for the WAL flush (see module docstring).
    async_record: bool = True
    periodic_interval: float = 60.0
    public_base_url: str = ""
    retry: RetryPolicy = field(default_factory=RetryPolicy)

    def status_callback(self, outbox_id: int) -> str | None:
        """The StatusCallback URL of one message (None without a public URL)."""
        if not self.public_base_url:
            return None
        base = self.public_base_url.rstrip("/") + STATUS_CALLBACK_PATH
        return f"{base}?{urlencode({'outbox': outbox_id})}"


@dataclass(frozen=True)
class Claim:
    """A message this worker holds: send it, then record the outcome under ``token``."""

    outbox_id: int
    attempt_id: int
    attempt_no: int
    token: str
    to: str
    body: str


@dataclass(frozen=True)
class Outcome:
    """What the provider said about one claimed message, to be recorded."""

    claim: Claim
    outcome: str  # sent | transient | permanent
    sid: str | None = None
    code: str | None = None
    error: str | None = None
    at: dt.datetime | None = None  # when the provider answered (None: when recorded)


_ATTEMPTS = SmsAttempt.__table__
# One executemany for a batch's attempts. The SID a receipt may have recorded meanwhile is
# kept when the provider call itself returned none.
_RECORD_ATTEMPT = (
    update(_ATTEMPTS)
    .where(_ATTEMPTS.c.id == bindparam("b_id"))
    .values(
        finished_at=bindparam("b_at"),
        provider_sid=func.coalesce(bindparam("b_sid"), _ATTEMPTS.c.provider_sid),
        error_code=bindparam("b_code"),
        error=bindparam("b_error"),
        outcome=bindparam("b_outcome"),
    )
)


class Pacer:
    """Spaces sends to at most ``rate`` per second on each of ``lanes`` provider senders
    (a long code takes about one message a second; a pool of them, one each).

    ``wait`` returns the lane to send on: the one free soonest (round robin when all keep up).
    """

    def __init__(
        self,
        rate: float,
        *,
        lanes: int = 1,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.interval = 1.0 / rate if rate > 0 else 0.0
        self.lanes = max(1, lanes)
        self.clock = clock
        self.sleep = sleep
        self._next = [0.0] * self.lanes
        self._turn = 0

    @property
    def rate(self) -> float:
        """Messages per second over all lanes (0: no limit)."""
        return self.lanes / self.interval if self.interval else 0.0

    def wait(self) -> int:
        """Block until a lane may send; return that lane."""
        if not self.interval:
            lane, self._turn = self._turn, (self._turn + 1) % self.lanes
            return lane
        # The lane free soonest; ties go round the pool from the last one used.
        lane = min(
            range(self.lanes),
            key=lambda k: (self._next[k], (k - self._turn) % self.lanes),
        )
        now = self.clock()
        if now < self._next[lane]:
            self.sleep(self._next[lane] - now)
            now = self._next[lane]
        self._next[lane] = now + self.interval
        self._turn = (lane + 1) % self.lanes
        return lane


class PeriodicJobs:
    """The worker's periodic jobs (the SLA sweep), each run in its own transaction.

    ``start`` runs them every ``interval`` seconds in a thread of its own, so the send loop
    never waits for them. On PostgreSQL the jobs run only in the worker holding the
    session-level advisory lock ``PERIODIC_LOCK_KEY``: it takes the lock on a connection of
    its own, runs the jobs on that connection and keeps both while it lives; the others try
    again every interval and take over when it exits or dies (its connection closes, the lock
    goes with it). Elsewhere (SQLite, or sessions bound to a test's connection) every worker
    runs them: one SQLite worker is the deployment, and overlapping sweeps stay correct anyway
    (each escalation has a unique key).
    """

    def __init__(
        self,
        sessions: sessionmaker[Session],
        jobs: Iterable[PeriodicJob],
        *,
        interval: float = 60.0,
        clock: Callable[[], dt.datetime] = utcnow,
    ) -> None:
        self.sessions = sessions
        self.jobs = list(jobs)
        self.interval = interval
        self.clock = clock
        bind = sessions.kw.get("bind")
        self._engine = bind if isinstance(bind, Engine) else None
        dialect = self._engine.dialect.name if self._engine is not None else ""
        self._leads = dialect == "postgresql"
        # SQLite: a job's transaction takes the write lock when it begins (no failed lock
        # upgrade later), and begins at its first statement, not before the job is called.
        self._sqlite_writer = (
            self._engine.execution_options(sqlite_begin="IMMEDIATE")
            if dialect == "sqlite" and self._engine is not None
            else None
        )
        self._conn: Connection | None = None  # PostgreSQL: holds the lock while we lead
        self._halt = threading.Event()
        self._thread: threading.Thread | None = None

    # --- leadership (PostgreSQL) --------------------------------------------------------

    def _lead(self) -> bool:
        """True when this worker may run the jobs now (PostgreSQL: it holds the lock)."""
        if not self._leads:
            return True
        if self._conn is not None:
            try:
                self._conn.scalar(select(1))  # still connected, so still holding the lock
                self._conn.commit()
                return True
            except SQLAlchemyError:
                log.warning("periodic jobs: lock connection lost; taking the lock again")
                self.release()
        assert self._engine is not None
        conn = self._engine.connect()
        try:
            got = conn.scalar(select(func.pg_try_advisory_lock(PERIODIC_LOCK_KEY)))
            conn.commit()
        except BaseException:
            _discard(conn)
            raise
        if not got:
            conn.close()  # no lock taken: the connection goes back to the pool clean
            return False
        self._conn = conn
        log.info("periodic jobs: this worker runs them (advisory lock %s)", PERIODIC_LOCK_KEY)
        return True

    def release(self) -> None:
        """Give up the lock (PostgreSQL); another worker takes over at its next try."""
        conn, self._conn = self._conn, None
        if conn is None:
            return
        try:
            # Unlocked before this returns: closing the connection alone frees the lock only
            # when the server's backend has noticed and exited, a moment later.
            conn.scalar(select(func.pg_advisory_unlock(PERIODIC_LOCK_KEY)))
            conn.commit()
        except SQLAlchemyError:
            pass  # the connection is lost, and the lock with it
        finally:
            _discard(conn)

    def _session(self) -> Session:
        if self._conn is not None:
            return self.sessions(bind=self._conn)
        if self._sqlite_writer is not None:
            return self.sessions(bind=self._sqlite_writer)
        return self.sessions()

    # --- running ------------------------------------------------------------------------

    def run(self) -> bool:
        """Run each job once, each in its own transaction, if this worker may (see the class);
        False when another worker runs them."""
        try:
            if not self._lead():
                return False
        except SQLAlchemyError:
            log.exception("periodic jobs: database unavailable; trying again later")
            return False
        for job in self.jobs:
            name = getattr(job, "__name__", repr(job))
            try:
                with self._session() as session:
                    try:
                        job(session, self.clock())
                        session.commit()
                    except Exception:
                        session.rollback()
                        raise
            except Exception:
                log.exception("periodic job %s failed", name)
                if self._conn is not None and self._conn.invalidated:
                    self.release()
        return True

    def start(self) -> None:
        """Run the jobs now and then every ``interval`` seconds in a thread, until ``stop()``."""
        self._halt.clear()
        self._thread = threading.Thread(
            target=self._loop, name="aidline-periodic-jobs", daemon=True
        )
        self._thread.start()

    def _loop(self) -> None:
        try:
            while not self._halt.is_set():
                started = time.monotonic()
                try:
                    self.run()
                except Exception:  # never let the thread die: the next interval tries again
                    log.exception("periodic jobs failed")
                self._halt.wait(max(0.0, self.interval - (time.monotonic() - started)))
        finally:
            self.release()

    def stop(self, timeout: float = 60.0) -> None:
        """Stop the thread after the job in hand (its transaction commits or rolls back)."""
        self._halt.set()
        thread, self._thread = self._thread, None
        if thread is not None:
            thread.join(timeout)
            if thread.is_alive():
                log.warning("periodic jobs still running after %.0f s; leaving them", timeout)


def _discard(conn: Connection) -> None:
    """Close ``conn`` for good: a connection that held the advisory lock must not go back to
    the pool still holding it (closing the database connection releases it)."""
    try:
        conn.invalidate()
    finally:
        conn.close()


class Worker:
    """Sends due outbox rows through ``sender``; runs the periodic jobs beside (PeriodicJobs)."""

    def __init__(
        self,
        sessions: sessionmaker[Session],
        sender: Sender,
        settings: WorkerSettings | None = None,
        *,
        worker_id: str | None = None,
        periodic_jobs: Iterable[PeriodicJob] = (),
        clock: Callable[[], dt.datetime] = utcnow,
        pacer: Pacer | None = None,
        open_secret: Callable[[str], str] | None = None,
    ) -> None:
        self.sessions = sessions
        self.sender = sender
        # Opens sealed secret parameters (sign-in codes) only to hand the text to the sender.
        self.open_secret = open_secret
        self.settings = settings or WorkerSettings()
        self.worker_id = worker_id or f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:6]}"
        self.clock = clock
        self.pacer = pacer or Pacer(self.settings.send_rate, lanes=getattr(sender, "lanes", 1))
        self._claimed = 0  # messages claimed so far: every fair_share-th goes by age
        self.periodic = PeriodicJobs(
            sessions,
            periodic_jobs,
            interval=self.settings.periodic_interval,
            clock=lambda: self.clock(),
        )

    # --- one message --------------------------------------------------------------------

    def _session(self) -> Session:
        session = self.sessions()
        if not is_postgresql(session):
            # Serialise claimers: take the write lock before reading what is due.
            session.connection(execution_options={"sqlite_begin": "IMMEDIATE"})
        return session

    def _batch_size(self) -> int:
        # A slow sender holds few claims at a time (two seconds of sends), so a new urgent
        # page is not stuck behind a long batch already claimed.
        rate = self.pacer.rate
        if rate > 0:
            return max(1, min(self.settings.batch_size, math.ceil(rate * 2)))
        return self.settings.batch_size

    def _fair_slots(self, size: int) -> int:
        """How many of the next ``size`` claims are due by age rather than by priority."""
        share = self.settings.fair_share
        if share <= 0:
            return 0
        return (self._claimed + size) // share - self._claimed // share

    def claim(self, now: dt.datetime | None = None) -> list[Claim]:
        """Claim the due messages (and those of dead workers) and commit the claims."""
        now = now or self.clock()
        stale = now - dt.timedelta(seconds=self.settings.sending_timeout)
        claims: list[Claim] = []
        size = self._batch_size()
        with self._session() as session:
            rows = self._due(session, now, stale, size)
            attempts: list[tuple[SmsOutbox, SmsAttempt, str]] = []
            for row in rows:
                if row.status == "sending" and not self._recover(session, row, now):
                    continue
                try:
                    body = templates.with_secrets(
                        row.template, row.body, row.params, self.open_secret
                    )
                except ValueError as exc:
                    # A code sealed with a key this worker does not have: that message cannot
                    # be sent, and must not stop every other one (urgent pages included).
                    fail(session, row, status="failed", code="sealed_key_missing", error=str(exc))
                    continue
                token = uuid.uuid4().hex
                row.status = "sending"
                row.attempts += 1
                row.claimed_by = self.worker_id
                row.claimed_at = now
                row.claim_token = token
                attempt = SmsAttempt(
                    outbox_id=row.id,
                    attempt_no=row.attempts,
                    claim_token=token,
                    worker_id=self.worker_id,
                    backend=self.sender.name,
                    started_at=now,
                )
                session.add(attempt)
                attempts.append((row, attempt, body))
            session.flush()
            claims = [
                Claim(
                    outbox_id=row.id,
                    attempt_id=attempt.id,
                    attempt_no=attempt.attempt_no,
                    token=attempt.claim_token,
                    to=row.to_phone,
                    body=body,
                )
                for row, attempt, body in attempts
            ]
            session.commit()
        self._claimed += len(rows)
        return claims

    def _due(
        self, session: Session, now: dt.datetime, stale: dt.datetime, size: int
    ) -> list[SmsOutbox]:
        """Lock up to ``size`` rows to send now (rows other workers hold are skipped).

        The send order, in full: claims of dead workers first (they have waited longest);
        then pending rows by ``priority`` (``templates.priority``: duty pages and sign-in
        codes, then escalations, then receipts), first due first within a priority - except
        that every ``fair_share``-th row a worker claims is the one due longest of all. So a
        flood of pages and codes takes at most all but one in ``fair_share`` sends of each
        worker, and a receipt waits at most ``fair_share`` sends for each row due before it,
        never for ever.
        """
        rows = list(
            session.scalars(
                select(SmsOutbox)
                .where(SmsOutbox.status == "sending", SmsOutbox.claimed_at < stale)
                .order_by(SmsOutbox.priority, SmsOutbox.id)
                .limit(size)
                .with_for_update(skip_locked=True)
            )
        )
        # 'pending' as a literal: a partial index (WHERE status = 'pending') serves only a
        # query that names the value itself, not a bound parameter.
        terms = (SmsOutbox.status == literal_column("'pending'"), SmsOutbox.next_attempt_at <= now)
        if not is_postgresql(session):
            # Without statistics (SQLite gathers none unless told) the planner took the range
            # on ix_sms_outbox_due and sorted the whole backlog per claim: "both terms hold for
            # most rows" makes the index in send order the cheaper plan.
            terms = tuple(func.likely(t) for t in terms)
        due = and_(*terms)
        # The share by age is locked first, so the priority query cannot take its place; the
        # batch then goes out in priority order (a page due now still leaves before it).
        fair = self._locked_due(
            session,
            due,
            (SmsOutbox.next_attempt_at, SmsOutbox.id),
            rows,
            min(self._fair_slots(size), size - len(rows)),
        )
        first = self._locked_due(
            session,
            due,
            (SmsOutbox.priority, SmsOutbox.next_attempt_at, SmsOutbox.id),
            rows + fair,
            size - len(rows) - len(fair),
        )
        return rows + sorted(first + fair, key=lambda r: (r.priority, r.next_attempt_at, r.id))

    @staticmethod
    def _locked_due(
        session: Session, due: Any, order: tuple[Any, ...], taken: list[SmsOutbox], limit: int
    ) -> list[SmsOutbox]:
        if limit <= 0:
            return []
        ids = [row.id for row in taken]
        return list(
            session.scalars(
                select(SmsOutbox)
                .where(due, SmsOutbox.id.not_in(ids) if ids else true())
                .order_by(*order)
                .limit(limit)
                .with_for_update(skip_locked=True)
            )
        )

    def _recover(self, session: Session, row: SmsOutbox, now: dt.datetime) -> bool:
        """A claim whose worker died: True when the message must be sent again."""
        lost = session.scalars(
            select(SmsAttempt).where(SmsAttempt.outbox_id == row.id, SmsAttempt.outcome.is_(None))
        ).all()
        for attempt in lost:
            attempt.outcome = "lost"
            attempt.finished_at = now
            attempt.error = f"claim of {attempt.worker_id} expired without a recorded outcome"
        log.warning(
            "sms %s: claim by %s expired; recovering (attempt %s)",
            row.id,
            row.claimed_by,
            row.attempts,
        )
        if row.provider_sid:
            # A receipt already proved the provider took it: settle, do not send twice.
            row.status = "sent"
            row.sent_at = row.sent_at or now
            clear_claim(row)
            return False
        if self.settings.retry.exhausted(row.attempts):
            fail(session, row, status="failed", code="lost", error="worker lost every attempt")
            return False
        return True

    def attempt(self, claim: Claim) -> Outcome:
        """Hand one claimed message to the provider (no database work)."""
        lane = self.pacer.wait()
        try:
            sid = self.sender.send(
                to=claim.to,
                body=claim.body,
                message_id=claim.outbox_id,
                status_callback=self.settings.status_callback(claim.outbox_id),
                lane=lane,
            )
            return Outcome(claim, "sent", sid=sid, at=self.clock())
        except SendError as exc:
            kind = "transient" if exc.transient else "permanent"
            return Outcome(claim, kind, code=exc.code, error=str(exc), at=self.clock())
        except Exception as exc:  # a bug or an unexpected SDK error: retry, do not crash
            log.exception("sms %s: unexpected error from %s", claim.outbox_id, self.sender.name)
            error = type(exc).__name__
            return Outcome(claim, "transient", code="exception", error=error, at=self.clock())

    def send(self, claim: Claim) -> str:
        """Send one claimed message and record the outcome; returns the attempt outcome."""
        outcome = self.attempt(claim)
        self.record_many([outcome])
        return outcome.outcome

    def send_batch(self, claims: Sequence[Claim]) -> int:
        """Send claimed messages in order; record their outcomes in one transaction at the
        end (sooner when the sends take ``record_interval``). Returns the attempts made."""
        pending: list[Outcome] = []
        started = 0.0
        try:
            for claim in claims:
                if not pending:
                    started = time.monotonic()
                pending.append(self.attempt(claim))
                if time.monotonic() - started >= self.settings.record_interval:
                    done, pending = pending, []
                    self.record_many(done)
        finally:
            # Also when interrupted: what went out is recorded, the rest waits for expiry.
            if pending:
                done, pending = pending, []
                self.record_many(done)
        return len(claims)

    def record(
        self,
        claim: Claim,
        *,
        outcome: str,
        sid: str | None = None,
        code: str | None = None,
        error: str | None = None,
        now: dt.datetime | None = None,
    ) -> None:
        """Record an attempt's outcome; the row changes only if this claim is still current."""
        self.record_many([Outcome(claim, outcome, sid=sid, code=code, error=error)], now=now)

    def record_many(self, outcomes: Sequence[Outcome], now: dt.datetime | None = None) -> None:
        """Record attempts' outcomes in one transaction; each row changes only if its claim
        is still current (``claim_token``)."""
        if not outcomes:
            return
        now = now or self.clock()
        with self._session() as session:
            if self.settings.async_record and is_postgresql(session):
                session.execute(text("SET LOCAL synchronous_commit = off"))
            # Rows first, in id order (the receipt webhook also locks the row before its
            # attempt): no deadlock with it or with another worker.
            rows = {
                row.id: row
                for row in session.scalars(
                    select(SmsOutbox)
                    .where(SmsOutbox.id.in_([o.claim.outbox_id for o in outcomes]))
                    .order_by(SmsOutbox.id)
                    .with_for_update()
                )
            }
            # The attempts are ours alone: one executemany. "lost" written meanwhile by a
            # worker that recovered an expired claim is replaced by the truth (it did go out);
            # the row itself then belongs to the newer attempt and stays untouched below.
            session.execute(
                _RECORD_ATTEMPT,
                [
                    {
                        "b_id": o.claim.attempt_id,
                        "b_at": o.at or now,
                        "b_sid": o.sid,
                        "b_code": o.code,
                        "b_error": o.error,
                        "b_outcome": o.outcome,
                    }
                    for o in outcomes
                ],
            )
            sent: list[SmsOutbox] = []
            for o in outcomes:
                row = rows.get(o.claim.outbox_id)
                if row is not None and self._apply(session, row, o, now):
                    sent.append(row)
            apply_early_receipts_many(session, sent, now=now, policy=self.settings.retry)
            session.commit()

    def _apply(self, session: Session, row: SmsOutbox, o: Outcome, now: dt.datetime) -> bool:
        """Apply one outcome to its locked row; True when it recorded a provider SID."""
        claim = o.claim
        if row.claim_token != claim.token:
            log.warning(
                "sms %s: attempt %s finished (%s) after its claim expired",
                row.id,
                claim.attempt_no,
                o.outcome,
            )
            return False
        retry = self.settings.retry
        if o.outcome == "sent":
            row.provider_sid = o.sid
            if row.status == "sending":
                row.status = "sent"
                row.sent_at = o.at or now
            row.last_error_code = None
            row.last_error = None
            clear_claim(row)
            templates.redact(row)
            log.info("sms %s sent to %s (%s)", row.id, mask_phone(row.to_phone), o.sid)
            return bool(o.sid)
        if row.status != "sending":
            clear_claim(row)  # a receipt settled it meanwhile
        elif o.outcome == "transient" and not retry.exhausted(row.attempts):
            row.status = "pending"
            row.last_error_code = o.code
            row.last_error = o.error
            row.next_attempt_at = now + retry.delay(row.attempts)
            clear_claim(row)
            log.info(
                "sms %s: transient failure %s, retry at %s",
                row.id,
                o.code,
                # To the second: a microseconds field can read as a six-digit sign-in code
                # (tests/test_privacy.py scans every log line for those).
                row.next_attempt_at.isoformat(timespec="seconds"),
            )
        else:
            fail(session, row, status="failed", code=o.code, error=o.error)
        return False

    # --- loops --------------------------------------------------------------------------

    def drain(self, stop: threading.Event | None = None) -> int:
        """Send everything due now (retries that fall due meanwhile included)."""
        count = 0
        while not (stop and stop.is_set()):
            claims = self.claim()
            if not claims:
                break
            count += self.send_batch(claims)
        return count

    def run_periodic(self) -> bool:
        """Run the periodic jobs once now, each in its own transaction, and give up the lock;
        False when another worker runs them (PostgreSQL)."""
        try:
            return self.periodic.run()
        finally:
            self.periodic.release()

    def run_once(self) -> int:
        """Periodic jobs once, then send everything due; returns the number of attempts."""
        self.run_periodic()
        return self.drain()

    def run_forever(self, stop: threading.Event, waiter: Waiter | None = None) -> None:
        """Loop until ``stop`` is set: wake on NOTIFY (PostgreSQL) or every poll interval.
        The periodic jobs run meanwhile in their own thread."""
        waiter = waiter or Waiter(stop)
        log.info("sms worker %s started (backend %s)", self.worker_id, self.sender.name)
        self.periodic.start()
        try:
            while not stop.is_set():
                try:
                    sent = self.drain(stop)
                except Exception:
                    log.exception("sms worker loop failed; retrying after the poll interval")
                    sent = 0
                if not sent:
                    waiter.wait(self.settings.poll_interval)
        finally:
            waiter.close()
            self.periodic.stop()
        log.info("sms worker %s stopped", self.worker_id)


class Waiter:
    """Sleeps between polls; interrupted by ``stop``."""

    def __init__(self, stop: threading.Event) -> None:
        self.stop = stop

    def wait(self, timeout: float) -> None:
        self.stop.wait(timeout)

    def close(self) -> None:
        pass


class PgWaiter(Waiter):
    """Sleeps on PostgreSQL LISTEN: a committed enqueue wakes the worker at once."""

    def __init__(self, stop: threading.Event, engine: Engine) -> None:
        super().__init__(stop)
        self.url = engine.url.set(drivername="postgresql").render_as_string(hide_password=False)
        self.conn: Any = None

    def _connect(self) -> Any:
        import psycopg

        if self.conn is None or self.conn.closed:
            self.conn = psycopg.connect(self.url, autocommit=True)
            self.conn.execute(f"LISTEN {NOTIFY_CHANNEL}")
        return self.conn

    def wait(self, timeout: float) -> None:
        import psycopg

        try:
            conn = self._connect()
            for _ in conn.notifies(timeout=timeout, stop_after=1):
                break
        except psycopg.Error:
            log.warning("LISTEN connection lost; polling until it is back")
            self.close()
            self.stop.wait(timeout)

    def close(self) -> None:
        if self.conn is not None:
            try:
                self.conn.close()
            finally:
                self.conn = None


def waiter_for(engine: Engine, stop: threading.Event) -> Waiter:
    """LISTEN/NOTIFY on PostgreSQL, plain polling elsewhere."""
    if is_postgresql(engine):
        return PgWaiter(stop, engine)
    return Waiter(stop)
