"""The concurrency control law (domain/concurrency.py) and the shared limiter under load."""

from __future__ import annotations

import math
import threading
import time
from dataclasses import replace

import pytest

from chalicelib.domain.concurrency import (
    BREAKER_MAX_TRIPS,
    BREAKER_THRESHOLD,
    DECREASE_FACTOR,
    EPOCH_SECONDS,
    HEADROOM,
    INCREASE_STEP,
    MIN_EPOCH_CALLS,
    STEADY_BURST_S,
    AccountRate,
    Backoff,
    FlightStats,
    account_rate,
    after_call,
    after_success,
    breaker_open,
    burst_seconds,
    cooldown,
    effective_interval,
    next_rate_share,
    observed_latency,
    request_interval,
    target_in_flight,
)
from chalicelib.generation.rate_limit import SharedRateLimiter
from tests.fakes import InMemoryRateLimitStore


# --------------------------------------------------------------------------- target
def test_the_binding_account_limit_sets_the_rate() -> None:
    assert account_rate(600, 100_000_000, 1800) == AccountRate(10.0, "rpm")
    # 60,000 output tokens a minute at 600 per call: 100 calls a minute
    rate = account_rate(6000, 60_000, 600)
    assert rate.reason == "otpm" and rate.per_second == pytest.approx(100 / 60)
    assert request_interval(6000, 60_000, 600) == pytest.approx(0.6)
    assert request_interval(0, 0, 600) == 0.0  # nothing configured: no spacing


def test_target_is_rate_times_latency_with_headroom() -> None:
    rate = AccountRate(10.0, "rpm")
    target = target_in_flight(rate, 6.0, ceiling=1000)
    assert target.target == math.ceil(10 * 6.0 * HEADROOM) == 75
    assert target.limit_reason == "rpm" and target.latency_s == 6.0
    # the same account at 40 s answers needs far more calls open
    assert target_in_flight(rate, 40.0, ceiling=1000).target == 500


def test_cap_ceiling_backoff_and_breaker_name_what_limits_the_target() -> None:
    rate = AccountRate(20.0, "otpm")
    assert target_in_flight(rate, 6.0, ceiling=1000).limit_reason == "otpm"
    capped = target_in_flight(rate, 6.0, cap=40, ceiling=1000)
    assert (capped.target, capped.limit_reason) == (40, "cap")
    ceiling = target_in_flight(rate, 6.0, cap=500, ceiling=100)
    assert (ceiling.target, ceiling.limit_reason) == (100, "ceiling")
    backed_off = target_in_flight(rate, 6.0, ceiling=1000, rate_share=0.5)
    assert backed_off.limit_reason == "backoff"
    assert backed_off.target == math.ceil(10 * 6.0 * HEADROOM)
    assert target_in_flight(rate, 6.0, ceiling=1000, breaker_open=True).limit_reason == "breaker"
    # never below one call in flight, whatever the figures
    assert target_in_flight(AccountRate(0.01, "rpm"), 0.1, ceiling=1000).target == 1


def test_observed_latency_prefers_the_jobs_own_calls() -> None:
    assert observed_latency(FlightStats(answered=2, latency_ms=12_000), 30.0) == 30.0
    assert observed_latency(FlightStats(answered=4, latency_ms=24_000), 30.0) == 6.0
    assert observed_latency(FlightStats(), None) is None


# --------------------------------------------------------------------------- AIMD
def epoch(calls: int, refusals: int, share: float = 1.0) -> Backoff:
    return Backoff(rate_share=share, epoch_start=100.0, calls=calls, refusals=refusals)


def test_an_epoch_with_mostly_refusals_halves_the_rate_and_a_clean_one_steps_up() -> None:
    overloaded = after_call(epoch(30, 20), 100.0 + EPOCH_SECONDS)
    assert overloaded.epoch_closed
    assert overloaded.state.rate_share == DECREASE_FACTOR
    assert (overloaded.state.calls, overloaded.state.refusals) == (0, 0)
    recovered = next_rate_share(epoch(30, 0, share=0.5))
    assert recovered == 0.5 + INCREASE_STEP
    assert next_rate_share(epoch(30, 0, share=1.0)) == 1.0


def test_scattered_refusals_do_not_slow_the_job() -> None:
    # 20% of calls refused (random 429/529): below the one-in-three share
    assert next_rate_share(epoch(50, 10, share=1.0)) == 1.0
    assert next_rate_share(epoch(50, 17, share=1.0)) == DECREASE_FACTOR


def test_an_epoch_closes_only_when_old_enough_and_with_enough_calls() -> None:
    young = after_call(epoch(40, 30), 100.0 + EPOCH_SECONDS / 2)
    assert young.empty
    few = after_call(epoch(MIN_EPOCH_CALLS - 1, MIN_EPOCH_CALLS - 1), 100.0 + EPOCH_SECONDS)
    assert few.empty  # too few calls to judge
    stale = after_call(epoch(2, 2), 100.0 + 6 * EPOCH_SECONDS)
    assert stale.epoch_closed and stale.state.rate_share == 1.0  # restarts, no verdict
    first = after_call(Backoff(), 50.0)
    assert first.epoch_closed and first.state.epoch_start == 50.0


# --------------------------------------------------------------------------- breaker
def test_the_breaker_opens_after_refusals_in_a_row_and_backs_off_longer_each_trip() -> None:
    state = Backoff(epoch_start=100.0, consecutive_refusals=BREAKER_THRESHOLD - 1)
    assert not after_call(state, 101.0).breaker_opened
    state = replace(state, consecutive_refusals=BREAKER_THRESHOLD)
    step = after_call(state, 101.0)
    assert step.breaker_opened and not step.pause_job
    assert step.state.open_until == 101.0 + cooldown(1)
    assert breaker_open(step.state, 101.0 + cooldown(1) - 0.1)
    assert not breaker_open(step.state, 101.0 + cooldown(1))
    assert step.state.rate_share == DECREASE_FACTOR
    # while open, further refusals (calls that were already in flight) do not re-open it
    again = after_call(replace(step.state, consecutive_refusals=BREAKER_THRESHOLD + 3), 102.0)
    assert not again.breaker_opened
    assert [cooldown(t) for t in (1, 2, 3, 4, 5)] == [15.0, 30.0, 60.0, 120.0, 120.0]


def test_the_probe_after_a_cooldown_reopens_at_once_and_the_last_trip_pauses() -> None:
    state = Backoff(
        epoch_start=100.0,
        consecutive_refusals=BREAKER_THRESHOLD + 1,
        open_until=110.0,
        trips=BREAKER_MAX_TRIPS - 1,
    )
    step = after_call(state, 110.5)  # the first call after the cooldown was refused
    assert step.breaker_opened and step.pause_job
    assert step.state.trips == BREAKER_MAX_TRIPS


def test_one_answer_closes_the_breaker() -> None:
    state = Backoff(consecutive_refusals=40, trips=3, open_until=0.0)
    closed = after_success(state)
    assert (closed.consecutive_refusals, closed.trips) == (0, 0)


def test_the_start_interval_stretches_with_the_back_off() -> None:
    assert effective_interval(0.1, Backoff(rate_share=0.25)) == pytest.approx(0.4)
    assert effective_interval(0.0, Backoff(rate_share=0.25)) == 0.0


def test_a_job_that_fits_in_a_minute_s_allowance_may_start_a_burst_at_once() -> None:
    rate = AccountRate(10.0, "rpm")  # 600 a minute
    assert burst_seconds(rate, 100, Backoff(), now=0.0, burst=10.0) == 10.0
    assert burst_seconds(rate, 600, Backoff(), now=0.0, burst=10.0) == 10.0
    # Longer than a minute's allowance: a burst now would have to be held back later in
    # the same minute, so the job keeps the steady jitter allowance.
    assert burst_seconds(rate, 601, Backoff(), now=0.0, burst=10.0) == STEADY_BURST_S
    # Refusals shrink it with the share; an open breaker lets nothing start at once.
    assert burst_seconds(rate, 100, Backoff(rate_share=0.5), now=0.0, burst=10.0) == 5.0
    assert burst_seconds(rate, 100, Backoff(open_until=30.0), now=10.0, burst=10.0) == 0.0
    # Configured off: the steady allowance, never less.
    assert burst_seconds(rate, 100, Backoff(), now=0.0, burst=0.0) == STEADY_BURST_S


# --------------------------------------------------------------------------- limiter
def test_a_burst_at_an_idle_limiter_with_a_store_slower_than_the_interval_starts_at_once() -> None:
    # Each operation takes 2.5 intervals (moto with a hundred callers): a window that
    # moved on with the clock would find the schedule "idle" again after every restart
    # and admit one caller per round.
    store = InMemoryRateLimitStore(op_seconds=0.001)  # each answer takes ~2 ms to return
    started = time.monotonic()

    def clock() -> float:  # 2 ms of wall time are 0.25 s here, and time runs on for all
        return 1000.0 + (time.monotonic() - started) * 125.0

    barrier = threading.Barrier(100)
    limiter = SharedRateLimiter(store, clock=clock, sleep=lambda s: None)
    waits: list[float] = []

    def caller() -> None:
        barrier.wait()
        waits.append(limiter.acquire_interval("k", 0.1, burst_seconds=10.0))

    threads = [threading.Thread(target=caller) for _ in range(100)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert waits == [0.0] * 100
    assert store.reads + store.writes <= 4 * 100, (store.reads, store.writes)


def test_many_callers_at_an_idle_limiter_with_a_slow_store_take_one_round_each() -> None:
    # Each store operation takes longer than one interval (moto under load, or a
    # throttled table): the schedule lags behind the clock's burst window.
    store = InMemoryRateLimitStore(op_seconds=0.15)
    barrier = threading.Barrier(60)
    limiter = SharedRateLimiter(store, clock=store.clock, sleep=lambda s: None)

    def caller() -> None:
        barrier.wait()
        limiter.acquire_interval("k", 0.1)

    threads = [threading.Thread(target=caller) for _ in range(60)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    # Callers never re-read a stale schedule in turn: a few writes each, O(callers),
    # not O(callers^2) rounds of read and compare-and-set.
    assert store.reads + store.writes <= 3 * 60, (store.reads, store.writes)


def test_callers_are_spaced_by_the_interval_after_the_burst() -> None:
    store = InMemoryRateLimitStore()
    clock = [1000.0]
    limiter = SharedRateLimiter(store, clock=lambda: clock[0], sleep=lambda s: None)
    waits = [limiter.acquire_interval("k", 0.1) for _ in range(20)]
    # One second's worth (10 calls) starts at once, then one every 100 ms.
    assert waits[:10] == [0.0] * 10
    assert [round(w, 1) for w in waits[10:13]] == [0.0, 0.1, 0.2]
    clock[0] += 60  # idle for a minute: the schedule restarts at the burst window
    assert limiter.acquire_interval("k", 0.1) == 0.0
    assert store.tat["k"] == 1060_000 - 1000 + 100


def test_a_call_larger_than_its_reservation_moves_the_schedule() -> None:
    store = InMemoryRateLimitStore()
    limiter = SharedRateLimiter(store, clock=lambda: 1000.0, sleep=lambda s: None)
    limiter.acquire_interval("k", 0.6)
    before = store.tat["k"]
    limiter.shift("k", 0.3)  # the answer was 1.5x the reserved output tokens
    assert store.tat["k"] == before + 300
    limiter.shift("k", -0.2)
    assert store.tat["k"] == before + 100
