"""``flask --app wsgi staff ...``."""

from __future__ import annotations

import click
from flask.cli import AppGroup
from sqlalchemy import select

from server.accounts.models import STAFF_ROLES, Account
from server.accounts.service import create_staff
from server.errors import DomainError
from server.session import database

staff_cli = AppGroup("staff", help="Staff accounts.")


@staff_cli.command("create")
@click.option("--username", required=True)
@click.option("--password", required=True, prompt=True, hide_input=True)
@click.option("--role", required=True, type=click.Choice(STAFF_ROLES))
@click.option("--region", required=True, help="division code of the staff member's scope")
@click.option("--phone", default=None)
@click.option("--name", default=None)
def create(
    username: str, password: str, role: str, region: str, phone: str | None, name: str | None
) -> None:
    """Create a staff account."""
    with database().new_session() as session, session.begin():
        try:
            account = create_staff(
                session,
                username=username,
                password=password,
                role=role,
                region_code=region,
                phone=phone,
                name=name,
            )
        except DomainError as exc:
            raise click.ClickException(f"{exc.message or exc.code} {exc.errors or ''}") from exc
        click.echo(f"created {account.role} {account.username} (id {account.id}) in {region}")


@staff_cli.command("disable")
@click.option("--username", required=True)
def disable(username: str) -> None:
    """Disable a staff account (it can no longer sign in)."""
    with database().new_session() as session, session.begin():
        account = session.scalar(select(Account).where(Account.username == username))
        if account is None:
            raise click.ClickException(f"no such user: {username}")
        account.active = False
    click.echo(f"disabled {username}")
