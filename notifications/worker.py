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

The parts: which rows are claimed next (``notifications.claiming``), recording a batch's
outcomes (``notifications.recording``), pacing sends (``notifications.pacing``), the periodic
jobs such as the SLA sweep, in a thread of their own (``notifications.periodic``), and waiting
for work (``notifications.waiting``). This module holds the worker that runs them.
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
from urllib.parse import urlencode

from sqlalchemy.orm import Session, sessionmaker

from notifications import templates
from notifications.claiming import Claim, due_rows, recover
from notifications.delivery import fail
from notifications.models import SmsAttempt, SmsOutbox
from notifications.pacing import Pacer
from notifications.periodic import PeriodicJob, PeriodicJobs
from notifications.recording import Outcome, record_outcomes
from notifications.retry import RetryPolicy
from notifications.senders import Sender, SendError
from notifications.waiting import Waiter
from server.db import is_postgresql, utcnow

log = logging.getLogger(__name__)

STATUS_CALLBACK_PATH = "/api/v1/webhooks/twilio/status"


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
            rows = due_rows(
                session, now=now, stale=stale, size=size, fair_slots=self._fair_slots(size)
            )
            attempts: list[tuple[SmsOutbox, SmsAttempt, str]] = []
            for row in rows:
                if row.status == "sending" and not recover(session, row, now, self.settings.retry):
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
        with self._session() as session:
            record_outcomes(
                session,
                outcomes,
                now=now or self.clock(),
                retry=self.settings.retry,
                async_record=self.settings.async_record,
            )

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
