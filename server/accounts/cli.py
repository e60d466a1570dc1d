"""``flask --app wsgi staff ...``."""

from __future__ import annotations

import click
from flask.cli import AppGroup

from server.accounts import staff
from server.accounts.idnumbers import mask_id_number, validate_id_number
from server.accounts.models import STAFF_ROLES, Account
from server.accounts.service import create_staff, unbind_id_number
from server.errors import DomainError
from server.session import database

staff_cli = AppGroup("staff", help="Staff accounts.")


@staff_cli.command("create")
@click.option("--username", required=True)
@click.option("--password", required=True, prompt=True, hide_input=True, confirmation_prompt=True)
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
                must_change_password=True,  # the administrator knows it: changed at sign-in
            )
        except DomainError as exc:
            raise click.ClickException(f"{exc.message or exc.code} {exc.errors or ''}") from exc
        click.echo(f"created {account.role} {account.username} (id {account.id}) in {region}")


def _staff(session, username: str) -> Account:
    try:
        return staff.find_staff(session, username=username)
    except DomainError:
        raise click.ClickException(f"no such staff account: {username}") from None


@staff_cli.command("disable")
@click.option("--username", required=True)
def disable(username: str) -> None:
    """Disable a staff account: it cannot sign in, and its sessions end at once."""
    with database().new_session() as session, session.begin():
        staff.set_active(session, actor=None, account=_staff(session, username), active=False)
    click.echo(f"disabled {username}")


@staff_cli.command("enable")
@click.option("--username", required=True)
def enable(username: str) -> None:
    """Re-enable a disabled staff account."""
    with database().new_session() as session, session.begin():
        staff.set_active(session, actor=None, account=_staff(session, username), active=True)
    click.echo(f"enabled {username}")


@staff_cli.command("unlock")
@click.option("--username", required=True)
def unlock(username: str) -> None:
    """Lift the sign-in wait after failed sign-ins, from every address (it also expires)."""
    with database().new_session() as session, session.begin():
        cleared = staff.unlock(session, actor=None, account=_staff(session, username))
    click.echo(f"unlocked {username} ({cleared} waiting address(es) cleared)")


@staff_cli.command("reset-password")
@click.option("--username", required=True)
def reset_password(username: str) -> None:
    """Give a staff account a new one-time password, printed once (lost demo credentials, a
    forgotten password): changed at next sign-in, sessions ended, sign-in wait lifted."""
    with database().new_session() as session, session.begin():
        account = _staff(session, username)
        password = staff.reset_password(session, actor=None, account=account)
        active = account.active
    click.echo(f"new one-time password for {username} (shown once; changed at next sign-in):")
    click.echo(f"  {password}")
    if not active:
        click.echo(f"{username} is disabled: `staff enable --username {username}` to let it in")


@staff_cli.command("unbind-id-number")
@click.option(
    "--id-number",
    required=True,
    prompt=True,
    hide_input=True,
    help="the disputed ID number (prompted, so it stays out of shell history)",
)
@click.option("--by", required=True, help="the staff member who decided (for the audit trail)")
@click.option("--reason", required=True, help="why, e.g. the verification done")
def unbind_id(id_number: str, by: str, reason: str) -> None:
    """Unbind an ID number from the account holding it (a resident told 'bound elsewhere'),
    audited; its rightful holder can then bind it."""
    try:
        value = validate_id_number(id_number)
    except DomainError as exc:
        raise click.ClickException(f"{exc.errors or exc.message}") from exc
    with database().new_session() as session, session.begin():
        account = unbind_id_number(session, value=value, by=by, reason=reason)
    if account is None:
        raise click.ClickException(f"no account holds {mask_id_number(value)}")
    click.echo(f"unbound {mask_id_number(value)} from account {account.id}")
