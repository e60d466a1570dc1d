"""``flask --app wsgi duty add``."""

from __future__ import annotations

import datetime as dt

import click
from flask.cli import AppGroup
from sqlalchemy import select

from server.accounts.models import Account
from server.errors import DomainError
from server.roster.service import add_shift
from server.session import database

duty_cli = AppGroup("duty", help="Duty roster.")

SHANGHAI = dt.timezone(dt.timedelta(hours=8))


def _parse(value: str, name: str) -> dt.datetime:
    try:
        parsed = dt.datetime.fromisoformat(value)
    except ValueError as exc:
        raise click.BadParameter("ISO 8601, e.g. 2026-11-23T20:00+08:00", param_hint=name) from exc
    # A time without offset is read as local (Asia/Shanghai), as duty staff write it.
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=SHANGHAI)


@duty_cli.command("add")
@click.option("--username", required=True)
@click.option("--from", "start", required=True, help="ISO 8601 start (local time if no offset)")
@click.option("--to", "end", required=True, help="ISO 8601 end")
def add(username: str, start: str, end: str) -> None:
    """Put a staff member on the duty roster."""
    starts_at, ends_at = _parse(start, "--from"), _parse(end, "--to")
    with database().new_session() as session, session.begin():
        account = session.scalar(select(Account).where(Account.username == username))
        if account is None:
            raise click.ClickException(f"no such user: {username}")
        try:
            add_shift(session, account=account, starts_at=starts_at, ends_at=ends_at)
        except DomainError as exc:
            raise click.ClickException(str(exc.errors)) from exc
    click.echo(f"{username} on duty {starts_at.isoformat()} – {ends_at.isoformat()}")
