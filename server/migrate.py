"""Alembic, driven from the app's configuration (``flask --app wsgi db ...``)."""

from __future__ import annotations

from pathlib import Path

import click
from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from flask import current_app
from flask.cli import AppGroup
from sqlalchemy.engine import Connection, Engine

MIGRATIONS = Path(__file__).resolve().parent.parent / "migrations"


def alembic_config(url: str, connection: Connection | None = None) -> Config:
    """An Alembic Config for ``url`` (or an open connection, which tests pass)."""
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    cfg.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    if connection is not None:
        cfg.attributes["connection"] = connection
    return cfg


def head_revision() -> str | None:
    """The newest migration in the tree."""
    return ScriptDirectory.from_config(alembic_config("sqlite://")).get_current_head()


def current_revision(engine: Engine) -> str | None:
    """The revision the database is at."""
    with engine.connect() as conn:
        return MigrationContext.configure(conn).get_current_revision()


db_cli = AppGroup("db", help="Database migrations (Alembic).")


def _cfg() -> Config:
    return alembic_config(current_app.config["DATABASE_URL"])


@db_cli.command("upgrade")
@click.argument("revision", default="head")
def upgrade(revision: str) -> None:
    """Migrate the database up to REVISION (default: head)."""
    Path(current_app.config["INSTANCE_PATH"]).mkdir(parents=True, exist_ok=True)
    command.upgrade(_cfg(), revision)


@db_cli.command("downgrade")
@click.argument("revision")
def downgrade(revision: str) -> None:
    """Migrate the database down to REVISION (e.g. -1 or base)."""
    command.downgrade(_cfg(), revision)


@db_cli.command("current")
def current() -> None:
    """Print the database's revision."""
    command.current(_cfg())


@db_cli.command("revision")
@click.option("-m", "--message", required=True)
@click.option("--autogenerate", is_flag=True, help="diff the models against the database")
def revision(message: str, autogenerate: bool) -> None:
    """Create a new migration file."""
    command.revision(_cfg(), message=message, autogenerate=autogenerate)
