"""Pacing of sends: at most so many messages a second on each of the provider's senders."""

from __future__ import annotations

import time
from collections.abc import Callable


class Pacer:
    """Spaces sends to at most ``rate`` per second on each of ``lanes`` provider senders
    (a long code takes about one message a second; a pool of them, one each).

    ``wait`` returns the lane to send on: the one free soonest (round robin when all keep up).
    """

    def __init__(
        self,
        rate: float,
        *,
        lanes: int = 1,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.interval = 1.0 / rate if rate > 0 else 0.0
        self.lanes = max(1, lanes)
        self.clock = clock
        self.sleep = sleep
        self._next = [0.0] * self.lanes
        self._turn = 0

    @property
    def rate(self) -> float:
        """Messages per second over all lanes (0: no limit)."""
        return self.lanes / self.interval if self.interval else 0.0

    def wait(self) -> int:
        """Block until a lane may send; return that lane."""
        if not self.interval:
            lane, self._turn = self._turn, (self._turn + 1) % self.lanes
            return lane
        # The lane free soonest; ties go round the pool from the last one used.
        lane = min(
            range(self.lanes),
            key=lambda k: (self._next[k], (k - self._turn) % self.lanes),
        )
        now = self.clock()
        if now < self._next[lane]:
            self.sleep(self._next[lane] - now)
            now = self._next[lane]
        self._next[lane] = now + self.interval
        self._turn = (lane + 1) % self.lanes
        return lane
