"""Migrations: upgrade an empty database, downgrade and upgrade again, match the models."""

from __future__ import annotations

import uuid

import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import inspect, text

from server.db import Base, make_engine
from server.migrate import alembic_config, head_revision


@pytest.fixture
def empty_url(database_url, tmp_path):  # type: ignore[no-untyped-def]
    """An empty database of the same kind as the suite's (a scratch PG schema)."""
    if database_url.startswith("sqlite"):
        yield f"sqlite:///{tmp_path / 'migrate.db'}", None
        return
    schema = f"mig_{uuid.uuid4().hex[:8]}"
    engine = make_engine(database_url)
    with engine.begin() as conn:
        conn.execute(text(f'CREATE SCHEMA "{schema}"'))
    yield database_url, schema
    with engine.begin() as conn:
        conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
    engine.dispose()


def _connect(url: str, schema: str | None):  # type: ignore[no-untyped-def]
    engine = make_engine(url)
    conn = engine.connect()
    if schema:
        conn.execute(text(f'SET search_path TO "{schema}"'))
        conn.commit()
    return engine, conn


def test_upgrade_downgrade_round_trip(empty_url):  # type: ignore[no-untyped-def]
    url, schema = empty_url
    engine, conn = _connect(url, schema)
    cfg = alembic_config(url, connection=conn)
    command.upgrade(cfg, "head")
    conn.commit()
    tables = set(inspect(conn).get_table_names())
    assert {
        "divisions",
        "accounts",
        "cases",
        "case_events",
        "sms_outbox",
        "idempotency_keys",
    } <= tables
    command.downgrade(cfg, "base")
    conn.commit()
    assert set(inspect(conn).get_table_names()) <= {"alembic_version"}
    command.upgrade(cfg, "head")
    conn.commit()
    assert MigrationContext.configure(conn).get_current_revision() == head_revision()
    conn.close()
    engine.dispose()


def test_models_match_migrations(engine):  # type: ignore[no-untyped-def]
    with engine.connect() as conn:
        ctx = MigrationContext.configure(conn, opts={"compare_type": True})
        diff = compare_metadata(ctx, Base.metadata)
    assert diff == [], f"models and migrations differ; add a migration: {diff}"
