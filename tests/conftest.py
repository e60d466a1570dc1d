"""Test fixtures: one migrated database per run, one rolled-back transaction per test.

The database is SQLite (a temporary file) unless ``TEST_DATABASE_URL`` names another
(PostgreSQL in CI). The schema comes from the Alembic migrations, as in production.
"""

from __future__ import annotations

import copy
import logging
import os
import socket
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest
from alembic import command
from argon2 import PasswordHasher
from flask import Flask
from sqlalchemy import text
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session
from werkzeug.serving import make_server

import server.accounts.passwords as _passwords
import server.models  # noqa: F401
from server.app import create_app
from server.db import Base, make_engine
from server.divisions.load import load_divisions
from server.limits import limiter
from server.migrate import alembic_config
from server.session import database

TEST_DATABASE_URL = os.environ.get("TEST_DATABASE_URL", "")

# Still argon2id, with the cheapest parameters: the real ones (64 MiB, 3 passes) would make
# every staff sign-in cost a fifth of a second; tests/accounts/test_auth_staff.py checks the
# real ones.
_passwords._hasher = PasswordHasher(time_cost=1, memory_cost=8, parallelism=1)


# --- no traffic to the outside world ----------------------------------------------------

_real_connect = socket.socket.connect


def _guarded_connect(self, address):
    host = address[0] if isinstance(address, tuple) else address
    if isinstance(host, str) and not (
        host.startswith("127.") or host in {"localhost", "::1"} or host.startswith("/")
    ):
        raise RuntimeError(f"tests may not connect to {address!r}")
    return _real_connect(self, address)


socket.socket.connect = _guarded_connect


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


# --- the app: one per run (per configuration), reset to how it was built before each test ---

TEST_CONFIG = {
    "TESTING": True,
    "SECRET_KEY": "test-secret-key-with-enough-length-for-hs256",
    "RATELIMIT_STORAGE_URI": "memory://",
}


class _Pristine:
    """What a test may change on a shared app, as it was when the app was built.

    ``create_app`` costs more than most tests, so each configuration is built once per run;
    before every test its settings, extensions and rate-limit counters go back to this, so a
    test sees the app as if it had just been created. A test that needs something
    ``create_app`` decides once (other routes, other middleware) builds its own app.
    """

    def __init__(self, app: Flask) -> None:
        self.app = app
        self.config = copy.deepcopy(dict(app.config))
        self.extensions = dict(app.extensions)
        # The limiter is one instance for every app (server.limits); its storage, and whether
        # it fell back from a dead one, are what create_app last gave it.
        self.limiter = dict(limiter.__dict__)

    def restore(self) -> Flask:
        """The app as built: settings, extensions, empty rate-limit counters."""
        app = self.app
        app.config.clear()
        app.config.update(copy.deepcopy(self.config))
        app.extensions.clear()
        app.extensions.update(
            {k: list(v) if isinstance(v, list) else v for k, v in self.extensions.items()}
        )
        limiter.__dict__.update(self.limiter)
        limiter.reset()
        if limiter._fallback_storage is not None:
            limiter._fallback_storage.reset()
        return app


@pytest.fixture(scope="session")
def document_dir(tmp_path_factory: pytest.TempPathFactory) -> str:
    """Where the test apps store documents (never the repository's instance/)."""
    return str(tmp_path_factory.mktemp("documents"))


@pytest.fixture(scope="session")
def _rolled_back_app(database_url: str, document_dir: str) -> Iterator[_Pristine]:
    app = create_app(
        {
            **TEST_CONFIG,
            "DATABASE_URL": database_url,
            "ID_ENCRYPTION_KEYS": "",
            "DOCUMENT_DIR": document_dir,
        }
    )
    yield _Pristine(app)
    database(app).engine.dispose()


@pytest.fixture(scope="session")
def _committing_app(database_url: str, document_dir: str) -> Iterator[_Pristine]:
    app = create_app({**TEST_CONFIG, "DATABASE_URL": database_url, "DOCUMENT_DIR": document_dir})
    yield _Pristine(app)
    database(app).engine.dispose()


@pytest.fixture
def app(_rolled_back_app: _Pristine, connection):
    """The app, its sessions joined to the test's outer transaction (savepoints)."""
    app = _rolled_back_app.restore()
    db = database(app)
    db.sessionmaker.configure(bind=connection, join_transaction_mode="create_savepoint")
    yield app
    db.sessionmaker.configure(bind=db.engine, join_transaction_mode="conservative_savepoint")
    db.engine.dispose()


@pytest.fixture
def client(app):
    return app.test_client()


@pytest.fixture
def session(app) -> Iterator[Session]:
    """A session in the test's transaction, for factories and assertions."""
    s = database(app).new_session()
    yield s
    s.close()


@pytest.fixture
def committed_app(_committing_app: _Pristine, engine: Engine):
    """An app whose requests really commit (for concurrency tests); cleaned afterwards."""
    app = _committing_app.restore()
    yield app
    database(app).engine.dispose()
    _truncate(engine)


@pytest.fixture
def live(committed_app: Any) -> Iterator[str]:
    """The committed app served over HTTP by a threaded server on a free port."""
    from server.console.live import release_waiters

    running = [0]
    lock = threading.Lock()

    def counted(environ: Any, start_response: Any) -> Any:
        with lock:
            running[0] += 1
        try:
            return committed_app(environ, start_response)
        finally:
            with lock:
                running[0] -= 1

    server = make_server("127.0.0.1", 0, counted, threaded=True)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.02})
    thread.daemon = True
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}"
    server.shutdown()
    # Requests still running (a console page's waiting live request) end before the test
    # disposes of the app's database: none may use it afterwards.
    release_waiters()
    deadline = time.monotonic() + 10
    while running[0] and time.monotonic() < deadline:
        time.sleep(0.01)
    server.server_close()


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


# --- privacy: every log record of the run, searched at the end (tests/test_privacy.py) --------


class _Collector(logging.Handler):
    """Keeps every record's rendered text (message, arguments, traceback) for the privacy scan."""

    def __init__(self) -> None:
        super().__init__(level=logging.DEBUG)
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        try:
            text = record.getMessage()
        except Exception:  # a broken format string still must not hide its arguments
            text = f"{record.msg!r} {record.args!r}"
        if record.exc_info and record.exc_info[1] is not None:
            text += " " + logging.Formatter().formatException(record.exc_info)
        self.lines.append(f"{record.name}: {text}")


LOG_COLLECTOR = _Collector()
# Values that must never appear in clear in logs: tests add the ID numbers and SMS codes they
# use (tests/privacy.py helpers do it for them).
SENSITIVE: set[str] = set()


@pytest.fixture(scope="session", autouse=True)
def _collect_logs() -> Iterator[None]:
    root = logging.getLogger()
    old_level = root.level
    root.setLevel(logging.DEBUG)
    # SQL echo would print bound parameters; that is an operator's debugging switch, not ours.
    logging.getLogger("sqlalchemy").setLevel(logging.WARNING)
    logging.getLogger("PIL").setLevel(logging.INFO)  # image headers, field by field
    root.addHandler(LOG_COLLECTOR)
    yield
    root.removeHandler(LOG_COLLECTOR)
    root.setLevel(old_level)


def pytest_collection_modifyitems(config, items):
    # The privacy scan of the captured logs runs after everything else.
    last = [i for i in items if i.get_closest_marker("privacy_scan")]
    items[:] = [i for i in items if not i.get_closest_marker("privacy_scan")] + last


from tests.fake_twilio import fake_twilio  # noqa: E402,F401  (SMS tests: a local fake Twilio)

# Prints the reliability suites' counts (operations fuzzed, examples, bad inputs) at the end.
pytest_plugins = ["tests.reliability.report"]
