"""When to try again: exponential backoff with jitter, up to a number of attempts."""

from __future__ import annotations

import datetime as dt
import random
from collections.abc import Callable
from dataclasses import dataclass, field


@dataclass
class RetryPolicy:
    """``delay(n)`` after the n-th failed attempt: base * 2^(n-1), capped, half of it jittered.

    Jitter spreads the retries of many messages that failed together (a provider outage)
    so they do not all come back in the same second.
    """

    max_attempts: int = 8
    base_seconds: float = 30.0
    max_seconds: float = 3600.0
    rng: Callable[[], float] = field(default=random.random)

    def delay(self, attempt: int) -> dt.timedelta:
        """The wait before the attempt after ``attempt`` (1-based) failed."""
        full = min(self.max_seconds, self.base_seconds * 2 ** max(0, attempt - 1))
        return dt.timedelta(seconds=full / 2 + self.rng() * full / 2)

    def exhausted(self, attempts: int) -> bool:
        """True when ``attempts`` tries are all we may make."""
        return attempts >= self.max_attempts
