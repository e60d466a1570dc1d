"""``flask --app wsgi standards ...`` and ``flask --app wsgi calendar ...``."""

from __future__ import annotations

import datetime as dt

import click
from flask.cli import AppGroup
from sqlalchemy import select

from server.cases import clocks, money, settings
from server.cases.workflow_models import AidStandard
from server.errors import DomainError
from server.session import database

standards_cli = AppGroup("standards", help="County aid standards (amounts in yuan).")
calendar_cli = AppGroup("calendar", help="Working-day calendar overrides.")


def _fen(ctx: click.Context, param: click.Parameter, value: str | None) -> int | None:
    if value is None:
        return None
    try:
        return money.parse_yuan(value)
    except ValueError as exc:
        raise click.BadParameter(str(exc)) from exc


@standards_cli.command("set")
@click.option("--county", required=True, help="6-digit county code, e.g. 371102")
@click.option("--urban", required=True, callback=_fen, help="城市低保月标准, yuan")
@click.option("--rural", required=True, callback=_fen, help="农村低保月标准, yuan")
@click.option("--urgent-cap", required=True, callback=_fen, help="乡镇先行救助上限, yuan")
@click.option("--approval-cap", required=True, callback=_fen, help="乡镇审批上限, yuan")
def set_standards(county: str, urban: int, rural: int, urgent_cap: int, approval_cap: int) -> None:
    """Set a county's aid standards."""
    with database().new_session() as session, session.begin():
        try:
            settings.put_standard(
                session,
                actor=None,
                county_code=county,
                urban_monthly_fen=urban,
                rural_monthly_fen=rural,
                township_urgent_cap_fen=urgent_cap,
                township_approval_cap_fen=approval_cap,
            )
        except DomainError as exc:
            raise click.ClickException(f"{exc.message or exc.code} {exc.errors or ''}") from exc
    click.echo(f"aid standards of {county} set")


@standards_cli.command("show")
@click.option("--county", default=None, help="one county (default: all)")
def show_standards(county: str | None) -> None:
    """Show aid standards (yuan)."""
    with database().new_session() as session:
        query = select(AidStandard).order_by(AidStandard.county_code)
        if county:
            query = query.where(AidStandard.county_code == county)
        rows = session.scalars(query).all()
        if not rows:
            click.echo("no aid standards set")
        for s in rows:
            low, high = money.expenditure_range(s)
            click.echo(
                f"{s.county_code} urban {money.yuan(s.urban_monthly_fen)} rural "
                f"{money.yuan(s.rural_monthly_fen)} urgent-cap "
                f"{money.yuan(s.township_urgent_cap_fen)} approval-cap "
                f"{money.yuan(s.township_approval_cap_fen)} expenditure "
                f"{money.yuan(low)}–{money.yuan(high)}"
            )


def _day(ctx: click.Context, param: click.Parameter, value: str) -> dt.date:
    try:
        return dt.date.fromisoformat(value)
    except ValueError as exc:
        raise click.BadParameter("YYYY-MM-DD") from exc


@calendar_cli.command("set")
@click.argument("day", callback=_day)
@click.option("--holiday/--workday", "holiday", required=True, help="放假 or 调休上班")
@click.option("--note", default=None, help="e.g. 元旦")
def set_day(day: dt.date, holiday: bool, note: str | None) -> None:
    """Mark DAY (YYYY-MM-DD) a holiday or a working day."""
    with database().new_session() as session, session.begin():
        settings.set_override(session, actor=None, day=day, workday=not holiday, note=note)
    click.echo(f"{day} {'holiday' if holiday else 'workday'}")


@calendar_cli.command("unset")
@click.argument("day", callback=_day)
def unset_day(day: dt.date) -> None:
    """Remove the override of DAY."""
    with database().new_session() as session, session.begin():
        try:
            settings.delete_override(session, actor=None, day=day)
        except DomainError as exc:
            raise click.ClickException("no override for that date") from exc
    click.echo(f"{day} override removed")


@calendar_cli.command("list")
@click.option("--year", type=int, default=None)
def list_days(year: int | None) -> None:
    """List overrides."""
    with database().new_session() as session:
        for row in settings.list_overrides(session, year=year):
            kind = "workday" if row.workday else "holiday"
            click.echo(f"{row.day} {kind} {row.note or ''}".rstrip())


@calendar_cli.command("due")
@click.argument("paid_at")
def due(paid_at: str) -> None:
    """Show the paperwork deadline for a payment at PAID_AT (ISO 8601; local if no offset)."""
    try:
        moment = dt.datetime.fromisoformat(paid_at)
    except ValueError as exc:
        raise click.BadParameter("ISO 8601, e.g. 2026-09-30T10:00") from exc
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=clocks.SHANGHAI)
    with database().new_session() as session:
        result = clocks.paperwork_due_at(session, moment)
    click.echo(result.astimezone(clocks.SHANGHAI).isoformat())
