"""Test fixtures: one migrated database per run, one rolled-back transaction per test.

The database is SQLite (a temporary file) unless ``TEST_DATABASE_URL`` names another
(PostgreSQL in CI). The schema comes from the Alembic migrations, as in production.
"""

from __future__ import annotations

import logging
import os
import socket
from collections.abc import Iterator

import pytest
from alembic import command
from sqlalchemy import text
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session

import server.models  # noqa: F401
from server.app import create_app
from server.db import Base, make_engine
from server.divisions.load import load_divisions
from server.migrate import alembic_config
from server.session import database

TEST_DATABASE_URL = os.environ.get("TEST_DATABASE_URL", "")


# --- no traffic to the outside world ----------------------------------------------------

_real_connect = socket.socket.connect


def _guarded_connect(self, address):  # type: ignore[no-untyped-def]
    host = address[0] if isinstance(address, tuple) else address
    if isinstance(host, str) and not (
        host.startswith("127.") or host in {"localhost", "::1"} or host.startswith("/")
    ):
        raise RuntimeError(f"tests may not connect to {address!r}")
    return _real_connect(self, address)


socket.socket.connect = _guarded_connect  # type: ignore[method-assign]


# --- database ---------------------------------------------------------------------------


def _reset_postgres(engine: Engine) -> None:
    with engine.begin() as conn:
        conn.execute(text("DROP SCHEMA IF EXISTS public CASCADE"))
        conn.execute(text("CREATE SCHEMA public"))


@pytest.fixture(scope="session")
def database_url(tmp_path_factory: pytest.TempPathFactory) -> str:
    if TEST_DATABASE_URL:
        return TEST_DATABASE_URL
    return f"sqlite:///{tmp_path_factory.mktemp('db') / 'test.db'}"


@pytest.fixture(scope="session")
def engine(database_url: str) -> Iterator[Engine]:
    """A migrated database with the national division data loaded, shared by the run."""
    engine = make_engine(database_url)
    if engine.dialect.name == "postgresql":
        _reset_postgres(engine)
    with engine.connect() as conn:
        command.upgrade(alembic_config(database_url, connection=conn), "head")
        conn.commit()
    with Session(engine) as session, session.begin():
        load_divisions(session)
    yield engine
    engine.dispose()


@pytest.fixture
def connection(engine: Engine) -> Iterator:
    """A connection inside an outer transaction that is rolled back after the test."""
    conn = engine.connect()
    trans = conn.begin()
    yield conn
    if trans.is_active:
        trans.rollback()
    conn.close()


@pytest.fixture
def app(database_url: str, connection):  # type: ignore[no-untyped-def]
    """The app, its sessions joined to the test's outer transaction (savepoints)."""
    app = create_app(
        {
            "TESTING": True,
            "DATABASE_URL": database_url,
            "SECRET_KEY": "test-secret-key-with-enough-length-for-hs256",
            "ID_ENCRYPTION_KEYS": "",
            "RATELIMIT_STORAGE_URI": "memory://",
        }
    )
    db = database(app)
    db.sessionmaker.configure(bind=connection, join_transaction_mode="create_savepoint")
    yield app
    db.engine.dispose()


@pytest.fixture
def client(app):  # type: ignore[no-untyped-def]
    return app.test_client()


@pytest.fixture
def session(app) -> Iterator[Session]:  # type: ignore[no-untyped-def]
    """A session in the test's transaction, for factories and assertions."""
    s = database(app).new_session()
    yield s
    s.close()


@pytest.fixture
def committed_app(database_url: str, engine: Engine):  # type: ignore[no-untyped-def]
    """An app whose requests really commit (for concurrency tests); cleaned afterwards."""
    app = create_app(
        {
            "TESTING": True,
            "DATABASE_URL": database_url,
            "SECRET_KEY": "test-secret-key-with-enough-length-for-hs256",
            "RATELIMIT_STORAGE_URI": "memory://",
        }
    )
    yield app
    database(app).engine.dispose()
    _truncate(engine)


def _truncate(engine: Engine) -> None:
    keep = {"divisions", "alembic_version"}
    with engine.begin() as conn:
        for table in reversed(Base.metadata.sorted_tables):
            if table.name not in keep:
                conn.execute(table.delete())


@pytest.fixture
def log_records(caplog: pytest.LogCaptureFixture) -> pytest.LogCaptureFixture:
    caplog.set_level(logging.DEBUG)
    return caplog


def is_postgres(engine: Engine) -> bool:
    return engine.dialect.name == "postgresql"


from tests.fake_twilio import fake_twilio  # noqa: E402,F401  (SMS tests: a local fake Twilio)
