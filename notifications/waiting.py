"""How an idle SMS worker waits for work: LISTEN on PostgreSQL (a committed ``enqueue``
NOTIFYs), plain polling elsewhere."""

from __future__ import annotations

import logging
import threading
from typing import Any

from sqlalchemy.engine import Engine

from notifications import NOTIFY_CHANNEL
from server.db import is_postgresql

log = logging.getLogger(__name__)


class Waiter:
    """Sleeps between polls; interrupted by ``stop``."""

    def __init__(self, stop: threading.Event) -> None:
        self.stop = stop

    def wait(self, timeout: float) -> None:
        self.stop.wait(timeout)

    def close(self) -> None:
        pass


class PgWaiter(Waiter):
    """Sleeps on PostgreSQL LISTEN: a committed enqueue wakes the worker at once."""

    def __init__(self, stop: threading.Event, engine: Engine) -> None:
        super().__init__(stop)
        self.url = engine.url.set(drivername="postgresql").render_as_string(hide_password=False)
        self.conn: Any = None

    def _connect(self) -> Any:
        import psycopg

        if self.conn is None or self.conn.closed:
            self.conn = psycopg.connect(self.url, autocommit=True)
            self.conn.execute(f"LISTEN {NOTIFY_CHANNEL}")
        return self.conn

    def wait(self, timeout: float) -> None:
        import psycopg

        try:
            conn = self._connect()
            for _ in conn.notifies(timeout=timeout, stop_after=1):
                break
        except psycopg.Error:
            log.warning("LISTEN connection lost; polling until it is back")
            self.close()
            self.stop.wait(timeout)

    def close(self) -> None:
        if self.conn is not None:
            try:
                self.conn.close()
            finally:
                self.conn = None


def waiter_for(engine: Engine, stop: threading.Event) -> Waiter:
    """LISTEN/NOTIFY on PostgreSQL, plain polling elsewhere."""
    if is_postgresql(engine):
        return PgWaiter(stop, engine)
    return Waiter(stop)
