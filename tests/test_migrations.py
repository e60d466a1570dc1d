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
def empty_url(database_url, tmp_path):
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


def _connect(url: str, schema: str | None):
    engine = make_engine(url)
    conn = engine.connect()
    if schema:
        conn.execute(text(f'SET search_path TO "{schema}"'))
        conn.commit()
    return engine, conn


def test_upgrade_downgrade_round_trip(empty_url):
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


def test_models_match_migrations(engine):
    with engine.connect() as conn:
        ctx = MigrationContext.configure(conn, opts={"compare_type": True})
        diff = compare_metadata(ctx, Base.metadata)
    assert diff == [], f"models and migrations differ; add a migration: {diff}"


# Partial indexes without NULLs (migration 0009); bench/explain.py checks that they serve.
_PARTIAL = ("ix_cases_subject_id_hash", "ix_sms_outbox_provider_sid")


def test_indexes_of_values_known_later_leave_nulls_out(session):
    """A case without an ID number and an SMS not yet sent write nothing to the indexes that
    find them by those values (migration 0009)."""
    postgres = session.connection().dialect.name == "postgresql"
    for name in _PARTIAL:
        if postgres:
            found = "SELECT indexdef FROM pg_indexes WHERE indexname = :n"
        else:
            found = "SELECT sql FROM sqlite_master WHERE type = 'index' AND name = :n"
        definition = session.execute(text(found), {"n": name}).scalar_one()
        assert "IS NOT NULL" in definition, definition


def test_partial_indexes_are_partial_in_models_and_migrations_alike(session):
    """Alembic's comparison does not look at an index's WHERE: a partial index in the models
    must be partial in the migrated database, and the other way round."""
    bind = session.connection()
    dialect = bind.dialect.name
    in_models = {
        index.name
        for table in Base.metadata.tables.values()
        for index in table.indexes
        if index.dialect_options[dialect].get("where") is not None
    }
    if dialect == "postgresql":
        found = "SELECT indexname FROM pg_indexes WHERE indexdef LIKE '% WHERE %'"
    else:
        found = "SELECT name FROM sqlite_master WHERE type = 'index' AND sql LIKE '% WHERE %'"
    in_database = set(session.execute(text(found)).scalars())
    assert in_models == in_database
    assert set(_PARTIAL) <= in_models
