"""``flask documents purge``: the retention purge, the one thing that deletes a file."""

from __future__ import annotations

import click
from flask import current_app
from flask.cli import AppGroup

from server.db import utcnow
from server.documents import retention
from server.documents.storage import storage
from server.errors import DomainError
from server.session import database

documents_cli = AppGroup("documents", help="Case documents.")


@documents_cli.command("purge")
@click.option(
    "--years",
    type=click.IntRange(min=1),
    default=None,
    help="Purge the documents of cases closed more than this many years ago "
    "(default DOCUMENT_RETENTION_YEARS).",
)
@click.option("--dry-run", is_flag=True, help="Only count what would be purged.")
def purge_command(years: int | None, dry_run: bool) -> None:
    """Delete the files of documents of cases closed more than N years ago (audited)."""
    years = years or int(current_app.config["DOCUMENT_RETENTION_YEARS"])
    now = utcnow()
    # Calendar years back from now (29 February becomes 28 February).
    try:
        cutoff = now.replace(year=now.year - years)
    except ValueError:
        cutoff = now.replace(year=now.year - years, day=28)
    store = storage()
    purged = failed = 0
    with database().new_session() as session:
        ids = retention.purgeable(session, closed_before=cutoff)
        if dry_run:
            click.echo(f"{len(ids)} documents of cases closed before {cutoff:%Y-%m-%d} would go")
            return
        for document_id in ids:
            key = retention.purge(session, document_id=document_id, now=now)
            session.commit()
            if key is None:
                continue
            try:
                store.delete(key)
                purged += 1
            except DomainError:
                failed += 1
                click.echo(f"document {document_id}: object {key} not deleted", err=True)
    click.echo(f"purged {purged} documents of cases closed before {cutoff:%Y-%m-%d}")
    if failed:
        raise SystemExit(1)
