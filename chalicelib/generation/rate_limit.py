"""A rate limiter shared by every concurrent Lambda of a tenant and model.

GCRA (generic cell rate algorithm) over one DynamoDB item: the item holds the
"theoretical arrival time" (TAT); each caller reserves the next slot with a
compare-and-set and sleeps until it. Requests are spaced at the configured RPM (and
output-token budget per minute), a small burst is allowed, and a provider
``retry-after`` blocks every caller of the key until it passes.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from typing import Protocol


class RateLimitStore(Protocol):
    def read(self, key: str) -> tuple[float, float]: ...

    def compare_and_set(self, key: str, old_tat: float, new_tat: float) -> bool: ...

    def block_until(self, key: str, until: float) -> None: ...


class SharedRateLimiter:
    def __init__(
        self,
        store: RateLimitStore,
        clock: Callable[[], float] = time.time,
        sleep: Callable[[float], None] = time.sleep,
        burst_seconds: float = 1.0,
    ) -> None:
        self._store = store
        self._clock = clock
        self._sleep = sleep
        # Up to this many seconds' worth of requests may start at once.
        self._burst_seconds = burst_seconds

    def acquire(
        self, key: str, per_minute: float, cost: float = 1.0, max_wait: float = 600.0
    ) -> float:
        """Reserve ``cost`` units at ``per_minute``; returns the seconds waited."""
        if per_minute <= 0:
            return 0.0
        interval = 60.0 / per_minute * cost
        tolerance = self._burst_seconds
        waited = 0.0
        for _ in range(100):
            now = self._clock()
            tat, blocked_until = self._store.read(key)
            if blocked_until > now:
                pause = blocked_until - now + random.uniform(0, 0.05)
                self._sleep(pause)
                waited += pause
                continue
            start = max(tat, now)
            if self._store.compare_and_set(key, tat, start + interval):
                delay = start - tolerance - now
                if delay > 0:
                    self._sleep(min(delay, max_wait))
                    waited += delay
                return waited
            self._sleep(random.uniform(0.001, 0.01))  # lost the race: re-read
        raise RuntimeError(f"rate limiter contention on {key}")

    def penalise(self, key: str, retry_after: float) -> None:
        """The provider said wait: every caller of this key waits."""
        self._store.block_until(key, self._clock() + max(retry_after, 0.0))
