"""The request's database session: one per request, committed once at the boundary.

Services only ``flush``; a response below 400 commits, anything else rolls back everything
(SMS outbox rows included). Tests rebind the sessionmaker to a connection inside an outer
transaction so every test is rolled back.

SQLite has one writer at a time. A request that writes takes the write lock when it opens its
session (``BEGIN IMMEDIATE``, server.db): a deferred transaction that later upgrades to a
writer fails at once with "database is locked" under concurrent writes, while ``BEGIN
IMMEDIATE`` waits for the lock in SQLite's busy handler (``busy_timeout``, then a 503). A
request writes when its method does, or when it said so first (``expect_writes``: a staff
member's read is audited).
"""

from __future__ import annotations

import logging
from typing import Any

from flask import Flask, current_app, g, request
from sqlalchemy import exc as sa_exc
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.orm import Session, sessionmaker

from server.db import is_postgresql, make_engine
from server.errors import Conflict, error_body, localize

log = logging.getLogger(__name__)

WRITE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})


class Database:
    """Engine and sessionmaker of one app."""

    def __init__(self, url: str, **engine_kwargs: Any) -> None:
        self.engine: Engine = make_engine(url, **engine_kwargs)
        self.sessionmaker = sessionmaker(bind=self.engine, expire_on_commit=False)

    def new_session(self) -> Session:
        """A session outside any request (CLI, worker, tests)."""
        return self.sessionmaker()

    def bind(self) -> Engine | Connection:
        """What the sessions are bound to: the engine, or the connection a test joins."""
        return self.sessionmaker.kw["bind"]


def database(app: Flask | None = None) -> Database:
    """The app's Database."""
    return (app or current_app).extensions["aidline.db"]


def db_session(*, read_only: bool = False) -> Session:
    """The session of the current request, created on first use.

    ``read_only`` (on the request's first use only): the request will only read, so on
    PostgreSQL each statement runs on its own (``AUTOCOMMIT``), without the BEGIN and COMMIT
    round trips a transaction costs. (Not inside a test's outer transaction: the sessions
    are bound to its connection there.)
    """
    session = g.get("_db_session")
    if session is None:
        db = database()
        session = db.new_session()
        if read_only and is_postgresql(db.engine) and isinstance(db.bind(), Engine):
            session.connection(execution_options={"isolation_level": "AUTOCOMMIT"})
        elif _writes() and not is_postgresql(db.engine):
            try:
                session.connection(execution_options={"sqlite_begin": "IMMEDIATE"})
            except BaseException:
                session.close()
                raise
        g._db_session = session
    return session


def expect_writes() -> None:
    """The current request will write although its method only reads (a staff member's
    read is audited): on SQLite its session takes the write lock up front. Call it before
    the request's first statement."""
    g._db_writes = True


def _writes() -> bool:
    return bool(request) and (request.method in WRITE_METHODS or bool(g.get("_db_writes")))


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
        return _end(app, session, response)

    @app.teardown_request
    def _close(_exc):
        session: Session | None = g.pop("_db_session", None)
        if session is not None:
            try:
                session.close()
            except sa_exc.SQLAlchemyError:
                log.warning("session close failed", exc_info=True)


def _end(app: Flask, session: Session, response: Any) -> Any:
    """Commit the request's session when it succeeded (or must keep its counters); roll back
    otherwise; a commit that fails becomes the uniform 409 or 503."""
    if not session.in_transaction() and not (session.new or session.dirty or session.deleted):
        return response  # nothing was ever done
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


def _error_response(app: Flask, code: str, status: int) -> Any:
    # after_request runs past the error handlers: the uniform shape built here.
    return app.response_class(
        response=app.json.dumps(error_body(code, localize(code))),
        status=status,
        mimetype="application/json",
    )
