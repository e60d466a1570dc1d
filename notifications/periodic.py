"""The SMS worker's periodic jobs (the SLA sweep): in a thread of their own with a database
connection of their own, so a send never waits for a sweep; on PostgreSQL only the worker
holding an advisory lock runs them, so N workers do not sweep N times."""

from __future__ import annotations

import datetime as dt
import logging
import threading
import time
from collections.abc import Callable, Iterable
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session, sessionmaker

from server.db import utcnow

log = logging.getLogger(__name__)

PeriodicJob = Callable[[Session, dt.datetime], Any]

# PostgreSQL advisory lock (session level) of the one worker that runs the periodic jobs.
PERIODIC_LOCK_KEY = 0x4149444C  # "AIDL"


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
