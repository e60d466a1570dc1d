"""The request's database session: one per request, committed once at the boundary.

Services only ``flush``; a response below 400 commits, anything else rolls back everything
(SMS outbox rows included). Tests rebind the sessionmaker to a connection inside an outer
transaction so every test is rolled back.
"""

from __future__ import annotations

import logging
from typing import Any

from flask import Flask, current_app, g, request
from sqlalchemy import exc as sa_exc
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session, sessionmaker

from server.db import make_engine
from server.errors import error_body, localize

log = logging.getLogger(__name__)

WRITE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})


class Database:
    """Engine and sessionmaker of one app."""

    def __init__(self, url: str, **engine_kwargs: Any) -> None:
        self.engine: Engine = make_engine(url, **engine_kwargs)
        self.sessionmaker = sessionmaker(bind=self.engine, expire_on_commit=False)

    @property
    def is_sqlite(self) -> bool:
        return self.engine.dialect.name == "sqlite"

    def new_session(self) -> Session:
        """A session outside any request (CLI, worker, tests)."""
        return self.sessionmaker()


def database(app: Flask | None = None) -> Database:
    """The app's Database."""
    return (app or current_app).extensions["aidline.db"]


def db_session() -> Session:
    """The session of the current request, created on first use."""
    session = g.get("_db_session")
    if session is None:
        db = database()
        session = db.new_session()
        if db.is_sqlite and request and request.method in WRITE_METHODS:
            # Take SQLite's write lock up front: a deferred transaction that later upgrades
            # to a writer fails at once with "database is locked" under concurrent writes.
            session.connection(execution_options={"sqlite_begin": "IMMEDIATE"})
        g._db_session = session
    return session


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
    def _commit(response):  # type: ignore[no-untyped-def]
        session: Session | None = g.get("_db_session")
        if session is None:
            return response
        if response.status_code >= 400 and not session.info.pop("commit_on_error", False):
            session.rollback()
            return response
        try:
            session.commit()
        except sa_exc.IntegrityError:
            session.rollback()
            log.warning("commit conflict on %s %s", request.method, request.path)
            return app.response_class(
                response=app.json.dumps(error_body("conflict", localize("conflict"))),
                status=409,
                mimetype="application/json",
            )
        except (sa_exc.OperationalError, sa_exc.InterfaceError) as exc:
            session.rollback()
            log.error("commit failed, database unavailable: %s", type(exc).__name__)
            resp = app.response_class(
                response=app.json.dumps(
                    error_body("database_unavailable", localize("database_unavailable"))
                ),
                status=503,
                mimetype="application/json",
            )
            resp.headers["Retry-After"] = "5"
            return resp
        return response

    @app.teardown_request
    def _close(_exc):  # type: ignore[no-untyped-def]
        session: Session | None = g.pop("_db_session", None)
        if session is not None:
            try:
                session.close()
            except sa_exc.SQLAlchemyError:
                log.warning("session close failed", exc_info=True)
