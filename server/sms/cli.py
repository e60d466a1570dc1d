"""``flask --app wsgi sms ...``: list finally failed messages and queue them again."""

from __future__ import annotations

import click
from flask.cli import AppGroup
from sqlalchemy import select

from notifications import ops
from notifications.delivery import mask_phone
from notifications.models import SmsOutbox
from server.db import utcnow
from server.session import database

sms_cli = AppGroup("sms", help="SMS outbox operations.")


@sms_cli.command("failures")
@click.option("--limit", default=50, show_default=True)
def failures(limit: int) -> None:
    """List finally failed or undelivered messages, newest first."""
    with database().new_session() as session:
        rows = session.scalars(
            select(SmsOutbox)
            .where(SmsOutbox.status.in_(ops.FAILED_STATUSES))
            .order_by(SmsOutbox.id.desc())
            .limit(limit)
        ).all()
        for row in rows:
            click.echo(
                f"{row.id}\t{row.status}\t{row.last_error_code or '-'}\t{row.attempts}\t"
                f"{mask_phone(row.to_phone)}\t{row.template}\t{row.case_id or '-'}\t"
                f"{(row.last_error or '')[:80]}"
            )
        click.echo(f"{len(rows)} failed message(s)", err=True)


@sms_cli.command("retry")
@click.argument("ids", nargs=-1, type=int)
@click.option("--all-failed", is_flag=True, help="Retry every failed/undelivered message.")
def retry(ids: tuple[int, ...], all_failed: bool) -> None:
    """Queue failed messages again (by id, or all with --all-failed)."""
    if not ids and not all_failed:
        raise click.UsageError("give message ids or --all-failed")
    with database().new_session() as session, session.begin():
        rows = ops.retry_failed(session, now=utcnow(), ids=list(ids) or None)
        click.echo(f"queued {len(rows)} message(s) again: {' '.join(str(r.id) for r in rows)}")


@sms_cli.command("stats")
def stats() -> None:
    """Outbox rows by status."""
    with database().new_session() as session:
        for status, n in ops.counts_by_status(session).items():
            click.echo(f"{status}\t{n}")
