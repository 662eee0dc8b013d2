"""Applies the concurrency rules of ``domain/concurrency.py`` to running jobs.

Every generation call goes through here twice: before it (the start interval the
shared GCRA limiter spaces calls at: the account rate, times the job's AIMD share)
and after it (one write counts the outcome for the back-off and the breaker, the
latency and output tokens for the job's observed figures, and the call out of the
in-flight count). The state is one DynamoDB item per job, so every Lambda of the job
backs off together; a container reads it at most once a second. The provider's
``retry-after`` still blocks every caller of the tenant and model (the limiter).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from typing import Any

from chalicelib.config import Settings
from chalicelib.domain.concurrency import (
    Backoff,
    BackoffStep,
    ConcurrencyTarget,
    FlightStats,
    account_rate,
    after_call,
    breaker_open,
    burst_seconds,
    effective_interval,
    observed_latency,
    request_interval,
    target_in_flight,
)
from chalicelib.domain.models import Job
from chalicelib.domain.ports import ConcurrencyStateStore

log = logging.getLogger(__name__)

DEFAULT_OUTPUT_TOKENS = 1800  # per call, until the job or its estimate says otherwise
CACHE_SECONDS = 1.0


def flight_key(tenant_id: str, job_id: str) -> str:
    return f"{tenant_id}#job#{job_id}#flight"


class ConcurrencyControl:
    def __init__(
        self,
        settings: Settings,
        store: ConcurrencyStateStore,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.settings = settings
        self.store = store
        self.clock = clock
        self.breaker_cooldown_s = settings.breaker_cooldown_seconds
        self._lock = threading.Lock()
        self._state: dict[str, tuple[float, FlightStats, Backoff]] = {}

    # ------------------------------------------------------------------ reads (cached)
    def state(self, job: Job, fresh: bool = False) -> tuple[FlightStats, Backoff]:
        key = flight_key(job.tenant_id, job.job_id)
        now = time.monotonic()
        with self._lock:
            cached = self._state.get(key)
        if not fresh and cached is not None and now - cached[0] < CACHE_SECONDS:
            return cached[1], cached[2]
        flight, backoff = self.store.read(key)
        self._remember(key, flight, backoff)
        return flight, backoff

    def _remember(self, key: str, flight: FlightStats, backoff: Backoff) -> None:
        with self._lock:
            self._state[key] = (time.monotonic(), flight, backoff)

    # ------------------------------------------------------------------ the start interval
    def output_tokens_per_call(self, job: Job, flight: FlightStats | None = None) -> float:
        """What the output-token limit reserves per call: the job's observed mean once
        it has answers, else its start estimate's, else the default."""
        flight = flight if flight is not None else self.state(job)[0]
        if flight.answered >= 3 and flight.mean_output_tokens:
            return flight.mean_output_tokens
        estimated = (job.estimate or {}).get("output_tokens_per_conversation")
        return float(estimated) if estimated else float(DEFAULT_OUTPUT_TOKENS)

    def start_interval(self, job: Job, output_tokens: float) -> float:
        """Seconds between call starts for this job: the account rate x its AIMD share."""
        s = self.settings
        base = request_interval(s.rate_limit_rpm, s.rate_limit_otpm, output_tokens)
        return effective_interval(base, self.state(job)[1])

    def burst_seconds(self, job: Job, output_tokens: float) -> float:
        """Seconds' worth of calls this job may start at once (domain/concurrency.py)."""
        s = self.settings
        _, backoff = self.state(job)
        return burst_seconds(
            account_rate(s.rate_limit_rpm, s.rate_limit_otpm, output_tokens),
            max(job.total - job.done, 0),
            backoff,
            self.clock(),
            burst=s.rate_limit_burst_seconds,
        )

    # ------------------------------------------------------------------ around a call
    def begin(self, job: Job) -> None:
        self.store.begin_call(flight_key(job.tenant_id, job.job_id))

    def end(
        self,
        job: Job,
        latency_ms: int | None,
        output_tokens: int = 0,
        refused: bool | None = None,
    ) -> BackoffStep | None:
        """The call ended (``refused``: a 429/529; None: no verdict on the rate). Counts
        it in one write; applies a closed epoch or an opened breaker (one caller does).
        Returns the step this caller applied, or None."""
        key = flight_key(job.tenant_id, job.job_id)
        flight, backoff = self.store.end_call(key, latency_ms, output_tokens, refused)
        applied: BackoffStep | None = None
        if refused is not None:
            step = after_call(backoff, self.clock(), base_cooldown=self.breaker_cooldown_s)
            if not step.empty and self.store.replace_backoff(key, backoff, step.state):
                if step.state.rate_share != backoff.rate_share:
                    log.info(
                        "rate share of job %s: %.3f -> %.3f (%d of %d calls refused)",
                        job.job_id,
                        backoff.rate_share,
                        step.state.rate_share,
                        backoff.refusals,
                        backoff.calls,
                    )
                backoff, applied = step.state, step
        self._remember(key, flight, backoff)
        return applied

    # ------------------------------------------------------------------ plan and view
    def plan(self, job: Job, model: str, history_latency_s: float | None = None) -> dict[str, Any]:
        """The in-flight target of the job's next execution (its Map MaxConcurrency)."""
        flight, backoff = self.state(job, fresh=True)
        target = self._target(job, flight, backoff, history_latency_s)
        return {
            "target": target.target,
            "limit_reason": target.limit_reason,
            "latency_s": target.latency_s,
            "rate_per_min": round(target.rate_per_s * 60.0, 2),
            "cap": job.max_concurrency,
            "ceiling": self.settings.generation_max_in_flight,
            "model": model,
            "history_latency_s": history_latency_s,
        }

    def _target(
        self, job: Job, flight: FlightStats, backoff: Backoff, history_latency_s: float | None
    ) -> ConcurrencyTarget:
        s = self.settings
        rate = account_rate(
            s.rate_limit_rpm, s.rate_limit_otpm, self.output_tokens_per_call(job, flight)
        )
        return target_in_flight(
            rate,
            observed_latency(flight, history_latency_s),
            cap=job.max_concurrency,
            ceiling=s.generation_max_in_flight,
            rate_share=backoff.rate_share,
            breaker_open=breaker_open(backoff, self.clock()),
        )

    def view(self, job: Job) -> dict[str, Any]:
        """What the progress view shows: the live target, calls in flight now, what
        limits the target and the latency it is built on."""
        plan = dict(job.concurrency or {})
        flight, backoff = self.state(job, fresh=True)
        target = self._target(job, flight, backoff, plan.get("history_latency_s"))
        return {
            "target": target.target,
            "in_flight": flight.in_flight,
            "limit_reason": target.limit_reason,
            "latency_s": round(flight.mean_latency_s, 3)
            if flight.mean_latency_s
            else target.latency_s,
            "rate_per_min": round(target.rate_per_s * 60.0, 2),
            "rate_share": round(backoff.rate_share, 4),
            "cap": job.max_concurrency,
            "ceiling": self.settings.generation_max_in_flight,
            "map_max_concurrency": plan.get("target"),
            "breaker_open_until": backoff.open_until
            if breaker_open(backoff, self.clock())
            else None,
            "answered_calls": flight.answered,
        }

    def reset_job(self, job: Job) -> None:
        """A new execution starts: no call of the job can be in flight (the previous
        execution has ended), so a count left by a crashed Lambda is dropped."""
        key = flight_key(job.tenant_id, job.job_id)
        self.store.reset_in_flight(key)
        with self._lock:
            self._state.pop(key, None)
