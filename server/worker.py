"""``flask --app wsgi worker [--once]``: send due SMS and run the periodic jobs (SLA sweep).

The periodic jobs run in a thread of their own beside the send loop; with several workers on
PostgreSQL, in one of them at a time (notifications.periodic.PeriodicJobs).
"""

from __future__ import annotations

import signal
import threading
from typing import Any

import click
from flask import Flask, current_app
from flask.cli import with_appcontext

from notifications.retry import RetryPolicy
from notifications.senders import make_sender
from notifications.waiting import waiter_for
from notifications.worker import Worker, WorkerSettings
from server import sealing
from server.session import database


def worker_settings(config: dict[str, Any]) -> WorkerSettings:
    """WorkerSettings from the app's configuration."""
    return WorkerSettings(
        batch_size=int(config["SMS_BATCH_SIZE"]),
        send_rate=float(config["SMS_SEND_RATE"]),
        fair_share=int(config["SMS_FAIR_SHARE"]),
        sending_timeout=float(config["SMS_SENDING_TIMEOUT_SECONDS"]),
        poll_interval=float(config["SMS_POLL_SECONDS"]),
        periodic_interval=float(config["WORKER_PERIODIC_SECONDS"]),
        public_base_url=config.get("PUBLIC_BASE_URL", ""),
        retry=retry_policy(config),
    )


def retry_policy(config: dict[str, Any]) -> RetryPolicy:
    """The retry policy shared by the worker and the receipt webhook."""
    return RetryPolicy(
        max_attempts=int(config["SMS_MAX_ATTEMPTS"]),
        base_seconds=float(config["SMS_RETRY_BASE_SECONDS"]),
        max_seconds=float(config["SMS_RETRY_MAX_SECONDS"]),
    )


def build_worker(app: Flask, *, worker_id: str | None = None) -> Worker:
    """A Worker wired to ``app``'s database, sender, settings and periodic jobs."""
    return Worker(
        database(app).sessionmaker,
        make_sender(app.config),
        worker_settings(app.config),
        worker_id=worker_id,
        periodic_jobs=app.extensions.get("aidline.periodic_jobs", []),
        open_secret=sealing.opener(app.config),
    )


@click.command("worker")
@with_appcontext
@click.option("--once", is_flag=True, help="Drain what is due now, run periodic jobs once, exit.")
@click.option("--worker-id", default=None, help="Name in attempt records (default host:pid).")
def worker_cli(once: bool, worker_id: str | None) -> None:
    """Send due SMS from the outbox and run periodic jobs (the SLA sweep)."""
    app = current_app._get_current_object()
    try:
        worker = build_worker(app, worker_id=worker_id)
    except ValueError as exc:
        raise click.ClickException(str(exc)) from exc
    if once:
        if not worker.run_periodic():
            click.echo("periodic jobs skipped: another worker runs them", err=True)
        count = worker.drain()
        click.echo(f"sent {count} message attempt(s)", err=True)
        return
    stop = threading.Event()

    def _stop(_signum: int, _frame: Any) -> None:
        stop.set()  # finish the message in hand, then exit

    signal.signal(signal.SIGTERM, _stop)
    signal.signal(signal.SIGINT, _stop)
    worker.run_forever(stop, waiter_for(database(app).engine, stop))
