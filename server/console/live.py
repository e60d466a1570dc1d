"""The queue page's live channel: a long poll that sleeps on PostgreSQL LISTEN.

The page asks ``/console/live?township=...&since=<stamp>``. On PostgreSQL the answer waits
until the township's queue differs from ``since`` or ``CONSOLE_LIVE_WAIT_SECONDS`` pass; the
page asks again at once. Elsewhere (SQLite), or with no waiting slot free, it answers at once
and the page polls every 1.5 s, as before.

What wakes a waiter: every committed move of a case through ``transitions.transition`` (a new
case, a claim, a release, a lease run out, a note, a decision ...) and every queued SMS NOTIFYs
``notifications.NOTIFY_CHANNEL`` at commit (``notifications.announce``). One
listening connection per process turns those into a broadcast, at most one per
``COALESCE_SECONDS`` (leading edge: a first arrival is never delayed), and waiters of one
township share one read of its queue per broadcast, so a flood of taps costs a read per
township per broadcast, not one per open page. A change made outside a transition that queues
no SMS (a document added) is seen when the wait ends.

Threads: a waiting request holds a thread and no database connection. Under gunicorn the
worker (``server.gthread``) keeps ``GUNICORN_LIVE_THREADS`` threads for waiters besides the
API's, handing their semaphore in the WSGI environ; other multi-threaded servers (the
development server, tests) get ``CONSOLE_LIVE_WAITERS`` waiters per app; any other gunicorn
worker none (its threads are the API's).
"""

from __future__ import annotations

import atexit
import logging
import threading
import time
from collections.abc import Callable
from typing import Any

from flask import current_app, request
from sqlalchemy.engine import Engine

from notifications import NOTIFY_CHANNEL
from server.db import is_postgresql

log = logging.getLogger(__name__)

# The semaphore of waiting slots a gunicorn worker hands to the app (server.gthread).
ENVIRON_SLOTS = "aidline.live_slots"
COALESCE_SECONDS = 0.25
RECONNECT_SECONDS = 2.0
# How often a quiet listener looks up from LISTEN (to stop at exit).
IDLE_CHECK_SECONDS = 1.0


class Waker:
    """One LISTEN connection of a process, broadcast to the requests waiting in it."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.generation = 0
        self.epoch = 0  # moves on release(): waiters stop waiting
        self.listening = False
        self._cond = threading.Condition()
        self._reads: dict[str, tuple[int, Any]] = {}
        self._reads_lock = threading.Lock()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="console-live", daemon=True)
        self._thread.start()

    def release(self) -> None:
        """Answer every request waiting now (the server is stopping)."""
        with self._cond:
            self.epoch += 1
            self.generation += 1
            self._cond.notify_all()

    def stop(self) -> None:
        """End the listener and close its connection (at exit)."""
        self._stop.set()
        self._thread.join(timeout=2 * IDLE_CHECK_SECONDS)

    def wait(self, generation: int, timeout: float) -> int:
        """Sleep until a broadcast after ``generation`` or ``timeout``; the generation then."""
        with self._cond:
            self._cond.wait_for(lambda: self.generation != generation, timeout=max(0, timeout))
            return self.generation

    def shared_read(self, key: str, generation: int, read: Callable[[], Any]) -> Any:
        """``read()`` once per ``key`` and broadcast: waiters of one township share it."""
        with self._reads_lock:
            cached = self._reads.get(key)
        if cached is not None and cached[0] == generation:
            return cached[1]
        value = read()
        with self._reads_lock:
            self._reads[key] = (generation, value)
        return value

    def _broadcast(self) -> None:
        with self._cond:
            self.generation += 1
            self._cond.notify_all()

    def _run(self) -> None:
        import psycopg

        while not self._stop.is_set():
            try:
                with psycopg.connect(self.url, autocommit=True) as conn:
                    conn.execute(f"LISTEN {NOTIFY_CHANNEL}")
                    self.listening = True
                    self._broadcast()  # whatever happened while not listening
                    self._listen(conn)
            except psycopg.Error:
                log.warning("console live updates: LISTEN connection lost; pages poll")
            self.listening = False
            self._broadcast()  # waiters answer now and fall back to polling
            self._stop.wait(RECONNECT_SECONDS)

    def _listen(self, conn: Any) -> None:
        last = 0.0
        pending = False
        while not self._stop.is_set():
            timeout = (
                max(0.0, last + COALESCE_SECONDS - time.monotonic())
                if pending
                else IDLE_CHECK_SECONDS
            )
            got = any(True for _ in conn.notifies(timeout=timeout, stop_after=1))
            if got:
                # Drain what else arrived: one broadcast for a burst.
                for _ in conn.notifies(timeout=0.0):
                    pass
            now = time.monotonic()
            if (got or pending) and now - last >= COALESCE_SECONDS:
                self._broadcast()
                last, pending = now, False
            elif got:
                pending = True


_wakers: dict[str, Waker] = {}
_wakers_lock = threading.Lock()


def release_waiters() -> None:
    """Answer every live request waiting in this process now (a server stopping)."""
    for found in list(_wakers.values()):
        found.release()


@atexit.register
def _stop_wakers() -> None:
    for found in list(_wakers.values()):
        found.stop()


_app_slots_key = "aidline.console_live_slots"


def waker(engine: Engine) -> Waker | None:
    """The process's waker for ``engine``'s database (PostgreSQL only), started on first use."""
    if not is_postgresql(engine):
        return None
    url = engine.url.set(drivername="postgresql").render_as_string(hide_password=False)
    with _wakers_lock:
        found = _wakers.get(url)
        if found is None:
            found = _wakers[url] = Waker(url)
    return found


def _slots() -> threading.Semaphore | None:
    environ = request.environ
    if ENVIRON_SLOTS in environ:
        return environ[ENVIRON_SLOTS]
    if "gunicorn.socket" in environ or not environ.get("wsgi.multithread"):
        return None  # a server whose threads are all the API's
    slots = current_app.extensions.get(_app_slots_key)
    if slots is None:
        slots = current_app.extensions.setdefault(
            _app_slots_key,
            threading.BoundedSemaphore(int(current_app.config["CONSOLE_LIVE_WAITERS"])),
        )
    return slots


def pulse_after(
    engine: Engine,
    *,
    key: str,
    since: str | None,
    read: Callable[[], dict[str, Any]],
    until: float,
) -> tuple[dict[str, Any], bool]:
    """``read()``'s pulse once its stamp differs from ``since``, or at monotonic ``until``;
    and whether the server waits (the page may ask again at once). ``read`` must leave no
    database connection checked out: waiting holds none."""
    wake = waker(engine)
    if wake is None or not since or not wake.listening:
        return read(), False
    slots = _slots()
    if slots is None or not slots.acquire(blocking=False):
        return read(), False
    try:
        generation, epoch = wake.generation, wake.epoch
        pulse = read()
        while pulse["stamp"] == since and wake.listening and wake.epoch == epoch:
            left = until - time.monotonic()
            if left <= 0:
                break
            new = wake.wait(generation, left)
            if new == generation:
                break  # timed out
            generation = new
            pulse = wake.shared_read(key, generation, read)
        return pulse, True
    finally:
        slots.release()
