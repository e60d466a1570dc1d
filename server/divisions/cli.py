"""``flask --app wsgi divisions load``."""

from __future__ import annotations

import click
from flask.cli import AppGroup

from server.divisions.load import load_divisions
from server.session import database

divisions_cli = AppGroup("divisions", help="Statistical division data.")


@divisions_cli.command("load")
@click.option("--prefix", default=None, help="only divisions under this code prefix, e.g. 3711")
def load(prefix: str | None) -> None:
    """Load the shipped NBS 2023 division data (idempotent)."""
    with database().new_session() as session, session.begin():
        try:
            counts = load_divisions(session, prefix=prefix)
        except ValueError as exc:
            raise click.BadParameter(str(exc), param_hint="--prefix") from exc
    click.echo(" ".join(f"{level}={n}" for level, n in sorted(counts.items())))
