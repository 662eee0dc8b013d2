"""Applies the concurrency rules of ``domain/concurrency.py`` to running jobs.

Every generation call goes through here twice: before it (the start interval the
shared GCRA limiter spaces calls at: the account rate, times the AIMD share) and after
it (the outcome feeds the back-off and the breaker; the latency and output tokens feed
the job's observed figures). State lives in DynamoDB, so all Lambdas of a provider key
(tenant and model) back off together; each container reads it at most once a second.
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
    after_success,
    breaker_open,
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


def backoff_key(tenant_id: str, model: str) -> str:
    return f"{tenant_id}#{model}#backoff"


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
        self._lock = threading.Lock()
        self._backoff: dict[str, tuple[float, Backoff]] = {}
        self._flight: dict[str, tuple[float, FlightStats]] = {}

    # ------------------------------------------------------------------ reads (cached)
    def backoff(self, tenant_id: str, model: str) -> Backoff:
        key = backoff_key(tenant_id, model)
        now = time.monotonic()
        with self._lock:
            cached = self._backoff.get(key)
        if cached is not None and now - cached[0] < CACHE_SECONDS:
            return cached[1]
        state = self.store.read_backoff(key)
        with self._lock:
            self._backoff[key] = (now, state)
        return state

    def flight(self, tenant_id: str, job_id: str, fresh: bool = False) -> FlightStats:
        key = flight_key(tenant_id, job_id)
        now = time.monotonic()
        with self._lock:
            cached = self._flight.get(key)
        if not fresh and cached is not None and now - cached[0] < CACHE_SECONDS:
            return cached[1]
        stats = self.store.read_flight(key)
        with self._lock:
            self._flight[key] = (now, stats)
        return stats

    # ------------------------------------------------------------------ the start interval
    def output_tokens_per_call(self, job: Job, flight: FlightStats | None = None) -> float:
        """What the output-token limit reserves per call: the job's observed mean once
        it has answers, else its start estimate's, else the default."""
        flight = flight if flight is not None else self.flight(job.tenant_id, job.job_id)
        if flight.answered >= 3 and flight.mean_output_tokens:
            return flight.mean_output_tokens
        estimated = (job.estimate or {}).get("output_tokens_per_conversation")
        return float(estimated) if estimated else float(DEFAULT_OUTPUT_TOKENS)

    def start_interval(self, job: Job, model: str, output_tokens: float) -> float:
        """Seconds between call starts for this key: the account rate x the AIMD share."""
        s = self.settings
        base = request_interval(s.rate_limit_rpm, s.rate_limit_otpm, output_tokens)
        return effective_interval(base, self.backoff(job.tenant_id, model))

    # ------------------------------------------------------------------ around a call
    def begin(self, job: Job) -> None:
        self.store.begin_call(flight_key(job.tenant_id, job.job_id))

    def end(self, job: Job, latency_ms: int | None, output_tokens: int = 0) -> None:
        self.store.end_call(flight_key(job.tenant_id, job.job_id), latency_ms, output_tokens)

    def call_finished(self, tenant_id: str, model: str, refused: bool) -> BackoffStep | None:
        """Count the outcome; apply a closed epoch or an opened breaker (one caller does).
        Returns the step this caller applied, or None."""
        key = backoff_key(tenant_id, model)
        state = self.store.count_call(key, refused)
        now = self.clock()
        step = after_call(state, now)
        applied: BackoffStep | None = None
        if step.empty:
            current = state
        elif self.store.replace_backoff(key, state, step.state):
            current, applied = step.state, step
            if step.epoch_closed and step.state.rate_share != state.rate_share:
                log.info(
                    "rate share of %s: %.3f -> %.3f (%d of %d calls refused)",
                    key,
                    state.rate_share,
                    step.state.rate_share,
                    state.refusals,
                    state.calls,
                )
        else:
            current = self.store.read_backoff(key)
        if not refused:
            current = after_success(current)
        with self._lock:
            self._backoff[key] = (time.monotonic(), current)
        return applied

    # ------------------------------------------------------------------ plan and view
    def plan(self, job: Job, model: str, history_latency_s: float | None = None) -> dict[str, Any]:
        """The in-flight target of the job's next execution (its Map MaxConcurrency)."""
        flight = self.flight(job.tenant_id, job.job_id, fresh=True)
        target = self._target(job, model, flight, history_latency_s)
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
        self, job: Job, model: str, flight: FlightStats, history_latency_s: float | None
    ) -> ConcurrencyTarget:
        s = self.settings
        backoff = self.backoff(job.tenant_id, model)
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
        model = plan.get("model") or self.settings.model
        flight = self.flight(job.tenant_id, job.job_id, fresh=True)
        target = self._target(job, model, flight, plan.get("history_latency_s"))
        backoff = self.backoff(job.tenant_id, model)
        now = self.clock()
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
            "breaker_open_until": backoff.open_until if breaker_open(backoff, now) else None,
            "answered_calls": flight.answered,
        }

    def reset_job(self, job: Job) -> None:
        """A new execution starts: no call of the job can be in flight (the previous
        execution has ended), so a count left by a crashed Lambda is dropped."""
        key = flight_key(job.tenant_id, job.job_id)
        self.store.reset_in_flight(key)
        with self._lock:
            self._flight.pop(key, None)

    def forget(self, tenant_id: str, model: str) -> None:
        with self._lock:
            self._backoff.pop(backoff_key(tenant_id, model), None)
