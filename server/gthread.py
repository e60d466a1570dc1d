"""The gunicorn worker the API runs in: gunicorn's ``gthread``, balanced between processes.

With keep-alive, a connection stays with the process that accepted it. gunicorn's processes
all wait on one listening socket and the first to wake takes whatever is queued, so a burst
of new connections (a load balancer's, a load generator's) often lands on one process while
the other idles: half the machine, for as long as those connections live
(bench/results/decisions.md). Here a process whose threads all have a connection already waits a
moment before taking another, so an idle sibling (woken by the same connection) takes it
first; when no sibling does, it is taken after the wait.
"""

from __future__ import annotations

import time
from typing import Any

from gunicorn.workers.gthread import ThreadWorker as _GunicornThreadWorker

# Long enough for a sibling woken by the same connection to accept it, short enough to go
# unnoticed by a client when every process is busy.
ACCEPT_DEFER_SECONDS = 0.0005


class ThreadWorker(_GunicornThreadWorker):
    """gthread, deferring new connections to a sibling while its threads are all taken."""

    def accept(self, listener: Any) -> None:
        if self.nr_conns >= self.cfg.threads:
            time.sleep(ACCEPT_DEFER_SECONDS)
        super().accept(listener)
