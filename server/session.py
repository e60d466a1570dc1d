"""The request's database session: one per request, committed once at the boundary.

Services only ``flush``; a response below 400 commits, anything else rolls back everything
(SMS outbox rows included). An intake request that has built its answer commits just before
it is encoded (``commit_now``), with the same 409/503 answers. Tests rebind the sessionmaker
to a connection inside an outer transaction so every test is rolled back.

SQLite has one writer at a time. A write request takes the write lock when it opens its
session (``BEGIN IMMEDIATE``; its token check runs before, outside it: ``read_bind``). Before
that it queues for it on ``WriterQueue`` (a lock in the process and a ``flock`` on a file
beside the database across processes), so waiting writers sleep until the lock is handed on
instead of polling in SQLite's busy handler (sleeps of up to 100 ms: the long tail of every
write under load).
"""

from __future__ import annotations

import fcntl
import logging
import os
import threading
from typing import Any

from flask import Flask, current_app, g, request
from sqlalchemy import exc as sa_exc
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.orm import Session, sessionmaker

from server.db import is_postgresql, make_engine
from server.errors import Conflict, error_body, localize

log = logging.getLogger(__name__)

WRITE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})


class WriterQueue:
    """Serialises one SQLite database's write transactions across threads and processes.

    Threads of a process take turns in arrival order; the one whose turn it is takes an
    exclusive ``flock`` on ``<database>.writers`` (other processes), passing through a
    turnstile (a ``flock`` on ``<database>.turnstile``) so that processes alternate: a
    process that has just written cannot take the lock again while another one waits.
    Held from before ``BEGIN IMMEDIATE`` to after the transaction ends. A thread waits at
    most ``timeout`` (SQLite's busy timeout) for its process's turn, then gets
    ``sqlite3.OperationalError`` as from SQLite itself (a 503).
    """

    def __init__(self, path: str | None, timeout: float = 30.0) -> None:
        self.path = path  # None: an in-memory database, one process
        self.timeout = timeout
        self._mutex = threading.Lock()
        self._next_ticket = 0
        self._serving = 0
        self._waiting: dict[int, threading.Event] = {}  # ticket -> its waiter's wake-up
        self._abandoned: set[int] = set()
        self._fds: tuple[int, int] | None = None
        self._pid = 0

    @property
    def busy(self) -> bool:
        """A thread of this process holds the turn or waits for it."""
        with self._mutex:
            return self._serving != self._next_ticket

    def _files(self) -> tuple[int, int]:
        if self._fds is None or self._pid != os.getpid():  # not descriptors inherited by fork
            flags = os.O_RDWR | os.O_CREAT
            self._fds = (
                os.open(f"{self.path}.writers", flags, 0o600),
                os.open(f"{self.path}.turnstile", flags, 0o600),
            )
            self._pid = os.getpid()
        return self._fds

    def acquire(self) -> None:
        with self._mutex:
            ticket = self._next_ticket
            self._next_ticket += 1
            if self._serving == ticket:
                woken = None
            else:
                # Woken alone when the turn is ours: one wake-up for every waiter on every
                # hand-on had each of them take the GIL from the thread holding the lock.
                woken = self._waiting[ticket] = threading.Event()
        if woken is not None and not woken.wait(self.timeout):
            with self._mutex:
                if self._serving != ticket:  # not handed on as the wait ran out
                    del self._waiting[ticket]
                    self._abandoned.add(ticket)
                    raise _busy()
        if self.path is None:
            return
        lock, turnstile = self._files()
        try:
            # Asleep in the kernel until the other process's writer unlocks, woken at once.
            # Its transaction is bounded by SQLite's busy timeout on each of its statements.
            fcntl.flock(turnstile, fcntl.LOCK_EX)
            try:
                fcntl.flock(lock, fcntl.LOCK_EX)
            finally:
                fcntl.flock(turnstile, fcntl.LOCK_UN)
        except BaseException:
            fcntl.flock(lock, fcntl.LOCK_UN)
            self._next_turn()
            raise

    def release(self) -> None:
        if self.path is not None and self._fds is not None:
            fcntl.flock(self._fds[0], fcntl.LOCK_UN)
        self._next_turn()

    def _next_turn(self) -> None:
        with self._mutex:
            self._serving += 1
            while self._serving in self._abandoned:  # waiters that gave up
                self._abandoned.discard(self._serving)
                self._serving += 1
            woken = self._waiting.pop(self._serving, None)
        if woken is not None:
            woken.set()


def _busy() -> Exception:
    import sqlite3

    return sa_exc.OperationalError(
        "BEGIN IMMEDIATE", {}, sqlite3.OperationalError("database is locked")
    )


class Database:
    """Engine and sessionmaker of one app."""

    def __init__(self, url: str, **engine_kwargs: Any) -> None:
        self.engine: Engine = make_engine(url, **engine_kwargs)
        self.sessionmaker = sessionmaker(bind=self.engine, expire_on_commit=False)
        self.writers: WriterQueue | None = None
        if not is_postgresql(self.engine):
            path = self.engine.url.database
            in_memory = not path or path == ":memory:" or path.startswith("file::memory:")
            self.writers = WriterQueue(None if in_memory else os.path.abspath(path))

    def new_session(self) -> Session:
        """A session outside any request (CLI, worker, tests)."""
        return self.sessionmaker()

    def bind(self) -> Engine | Connection:
        """What the sessions are bound to: the engine, or the connection a test joins."""
        return self.sessionmaker.kw["bind"]


def database(app: Flask | None = None) -> Database:
    """The app's Database."""
    return (app or current_app).extensions["aidline.db"]


def db_session() -> Session:
    """The session of the current request, created on first use."""
    session = g.get("_db_session")
    if session is None:
        db = database()
        session = db.new_session()
        if db.writers is not None and request and request.method in WRITE_METHODS:
            # Take SQLite's write lock up front: a deferred transaction that later upgrades
            # to a writer fails at once with "database is locked" under concurrent writes.
            # Queue for it first (WriterQueue), released when the request's transaction ends.
            db.writers.acquire()
            g._db_writer = db.writers
            try:
                session.connection(execution_options={"sqlite_begin": "IMMEDIATE"})
            except BaseException:
                session.close()
                _release_writer()
                raise
        g._db_session = session
    return session


def read_bind() -> Engine | Connection:
    """Where a read that comes before the request's own work runs (the token's session check):
    the request's transaction, except for a write request on SQLite that has not begun one.
    That read runs on the database outside any transaction, so the write lock, taken when the
    request begins its transaction, is not held while it is authenticated and its body parsed
    (SQLite has one writer at a time: every millisecond under the lock is one all writers wait).
    PostgreSQL reads in the request's transaction: no second connection per request."""
    db = database()
    if g.get("_db_session") is None and db.writers is not None and request.method in WRITE_METHODS:
        return db.bind()
    return db_session().connection()


def commit_now(session: Session) -> None:
    """Commit the request's changes before its answer is encoded and sent, and hand SQLite's
    write lock on: for a write whose answer needs no more writes (reads may follow, in a
    transaction of their own), so no other writer waits meanwhile. Failures answer as at the
    boundary: a commit conflict 409, an unavailable database 503."""
    try:
        _commit_or_roll_back(session)
    finally:
        _release_writer()


def _commit_or_roll_back(session: Session) -> None:
    try:
        session.commit()
    except sa_exc.IntegrityError as exc:
        session.rollback()
        log.warning("commit conflict on %s %s", request.method, request.path)
        raise Conflict() from exc
    except (sa_exc.OperationalError, sa_exc.InterfaceError) as exc:
        session.rollback()
        log.error("commit failed, database unavailable: %s", type(exc).__name__)
        raise


def _release_writer() -> None:
    writers: WriterQueue | None = g.pop("_db_writer", None)
    if writers is not None:
        writers.release()


def keep_on_error(session: Session) -> None:
    """Commit this session's flushed changes even though the request ends in an error.

    For security counters that must survive the refusal they cause: a wrong sign-in code's
    try, a staff member's failed password, a revoked refresh-token family. Use only when the
    session holds nothing else.
    """
    session.info["commit_on_error"] = True


def init_app(app: Flask) -> None:
    """Create the engine and install the commit/rollback boundary."""
    app.extensions["aidline.db"] = Database(app.config["DATABASE_URL"])

    @app.after_request
    def _commit(response):
        session: Session | None = g.get("_db_session")
        if session is None:
            return response
        try:
            return _end(session, response)
        finally:
            _release_writer()

    def _end(session: Session, response):
        if not session.in_transaction() and not (session.new or session.dirty or session.deleted):
            return response  # committed already (commit_now), or nothing was ever done
        if response.status_code >= 400 and not session.info.pop("commit_on_error", False):
            session.rollback()
            return response
        try:
            _commit_or_roll_back(session)
        except Conflict:
            return _error_response(app, "conflict", 409)
        except (sa_exc.OperationalError, sa_exc.InterfaceError):
            resp = _error_response(app, "database_unavailable", 503)
            resp.headers["Retry-After"] = "5"
            return resp
        return response

    @app.teardown_request
    def _close(_exc):
        session: Session | None = g.pop("_db_session", None)
        try:
            if session is not None:
                try:
                    session.close()
                except sa_exc.SQLAlchemyError:
                    log.warning("session close failed", exc_info=True)
        finally:
            _release_writer()  # if the request ended without reaching _commit


def _error_response(app: Flask, code: str, status: int) -> Any:
    # after_request runs past the error handlers: the uniform shape built here.
    return app.response_class(
        response=app.json.dumps(error_body(code, localize(code))),
        status=status,
        mimetype="application/json",
    )
