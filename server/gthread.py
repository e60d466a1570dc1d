"""The gunicorn worker the API runs in: gunicorn's ``gthread``, balanced between processes,
with threads of its own for the console's waiting live requests.

With keep-alive, a connection stays with the process that accepted it. gunicorn's processes
all wait on one listening socket and the first to wake takes whatever is queued, so a burst
of new connections (a load balancer's, a load generator's) often lands on one process while
the other idles: half the machine, for as long as those connections live
(bench/results/decisions.md). Here a process whose threads all have a connection already waits a
moment before taking another, so an idle sibling (woken by the same connection) takes it
first; when no sibling does, it is taken after the wait.

The console's live channel (``server/console/live.py``) holds a request open while it waits
for a change, which would take an API thread each. The pool has ``GUNICORN_LIVE_THREADS``
threads more than ``threads``; everything but the live channel runs at most ``threads`` at a
time, as before (the API's concurrency is unchanged), and at most ``GUNICORN_LIVE_THREADS``
live requests wait at once (the rest answer at once and their pages poll).
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable, Iterable
from concurrent import futures
from typing import Any

from gunicorn.workers.gthread import ThreadWorker as _GunicornThreadWorker

# Long enough for a sibling woken by the same connection to accept it, short enough to go
# unnoticed by a client when every process is busy.
ACCEPT_DEFER_SECONDS = 0.0005
LIVE_PATH = "/console/live"


def live_threads(env: dict[str, str] | None = None) -> int:
    """Threads per process for waiting live requests (``GUNICORN_LIVE_THREADS``)."""
    return int((env if env is not None else os.environ).get("GUNICORN_LIVE_THREADS", 256))


class ThreadWorker(_GunicornThreadWorker):
    """gthread, deferring new connections to a sibling while its threads are all taken, and
    running the console's waiting live requests beside the API's ``threads``."""

    def init_process(self) -> None:
        self.live_slots = threading.BoundedSemaphore(max(1, live_threads()))
        self.api_slots = threading.BoundedSemaphore(self.cfg.threads)
        super().init_process()

    def get_thread_pool(self) -> futures.ThreadPoolExecutor:
        return futures.ThreadPoolExecutor(max_workers=self.cfg.threads + live_threads())

    def load_wsgi(self) -> None:
        super().load_wsgi()
        self.wsgi = self._gated(self.wsgi)

    def _gated(self, app: Callable[..., Iterable[bytes]]) -> Callable[..., Iterable[bytes]]:
        def gated(environ: dict[str, Any], start_response: Any) -> Iterable[bytes]:
            if environ.get("PATH_INFO") == LIVE_PATH:
                environ["aidline.live_slots"] = self.live_slots
                return app(environ, start_response)
            with self.api_slots:
                return app(environ, start_response)

        return gated

    def handle_exit(self, sig: Any, frame: Any) -> None:
        # Waiting live requests answer now, well inside the graceful timeout.
        from server.console.live import release_waiters

        super().handle_exit(sig, frame)
        release_waiters()

    def accept(self, listener: Any) -> None:
        if self.nr_conns >= self.cfg.threads:
            time.sleep(ACCEPT_DEFER_SECONDS)
        super().accept(listener)
