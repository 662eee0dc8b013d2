"""A rate limiter shared by every concurrent Lambda of a tenant and model.

GCRA (generic cell rate algorithm) over one DynamoDB item: the item holds the
"theoretical arrival time" (TAT, epoch milliseconds); each caller reserves the next
slot and sleeps until it. A busy limiter costs one conditional ADD per request; an idle
one that ADD and a conditional SET that restarts the schedule (no read: callers that
arrive together at an idle limiter never re-read a stale schedule in turn). Requests are spaced at the configured RPM (and
output-token budget per minute), a small burst is allowed, and a provider
``retry-after`` blocks every caller of the key until it passes.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from typing import Protocol


class RateLimitStore(Protocol):
    def read(self, key: str) -> tuple[int, int]: ...

    def compare_and_set(self, key: str, old_tat: int, new_tat: int) -> bool: ...

    def block_until(self, key: str, until: int) -> None: ...

    def advance(self, key: str, interval: int, floor: int) -> tuple[int, int] | None:
        """Atomically tat += interval if tat >= floor; (new tat, blocked_until) or None."""
        ...

    def shift(self, key: str, delta_ms: int) -> None:
        """tat += delta_ms (negative: earlier) if the key has a tat."""
        ...

    def reanchor(self, key: str, floor: int, interval: int) -> tuple[int, int] | None:
        """Atomically tat = floor + interval if tat < floor (or there is none): an idle
        limiter restarts from the burst window; (new tat, blocked_until) or None."""
        ...


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
        self._burst_ms = int(burst_seconds * 1000)

    def _now_ms(self) -> int:
        return int(self._clock() * 1000)

    def acquire_interval(
        self,
        key: str,
        interval: float,
        max_wait: float = 600.0,
        burst_seconds: float | None = None,
    ) -> float:
        """Reserve the next slot ``interval`` seconds after the previous reservation.

        Several limits on one key (requests/min and output tokens/min) combine as the
        largest interval: for similar requests that enforces all of them at once.
        ``burst_seconds`` overrides the limiter's burst window for this caller.
        """
        step = max(round(interval * 1000), 1)
        burst_ms = self._burst_ms if burst_seconds is None else int(burst_seconds * 1000)
        # The window is fixed when the caller arrives: against a store slower than one
        # interval per operation, a floor that moved on with the clock would find every
        # schedule just restarted by another caller already "idle" again, and callers
        # would restart it in turn, one admitted per round.
        floor = self._now_ms() - burst_ms
        for _ in range(100):
            now = self._now_ms()
            # Busy limiter: one conditional ADD reserves the slot after the last one.
            advanced = self._store.advance(key, step, floor)
            if advanced is None:
                # Idle (the schedule is older than the burst window): restart it at the
                # window's start, unless another caller just did (then it is busy).
                advanced = self._store.reanchor(key, floor, step)
            if advanced is not None:
                new_tat, blocked_until = advanced
                return self._wait_for(new_tat - step, blocked_until, now, max_wait)
            self._sleep(random.uniform(0.001, 0.01))
        raise RuntimeError(f"rate limiter contention on {key}")

    def _wait_for(self, slot_ms: int, blocked_until_ms: int, now_ms: int, max_wait: float) -> float:
        delay = max(slot_ms - now_ms, blocked_until_ms - now_ms) / 1000.0
        if delay <= 0:
            return 0.0
        delay = min(delay + random.uniform(0, 0.01), max_wait)
        self._sleep(delay)
        return delay

    def shift(self, key: str, seconds: float) -> None:
        """Move this key's schedule by ``seconds`` (a call turned out larger or smaller
        than its reservation)."""
        delta = round(seconds * 1000)
        if delta:
            self._store.shift(key, delta)

    def penalise(self, key: str, retry_after: float) -> None:
        """The provider said wait: every caller of this key waits."""
        self._store.block_until(key, self._now_ms() + int(max(retry_after, 0.0) * 1000))
