"""How many generation calls a job keeps in flight, and how it backs off.

Pure rules, no I/O; the generation service applies them through a shared state item.

- **Target in flight** (Little's law): calls in flight = start rate x call latency. The
  start rate the account allows is the lower of RPM / 60 and OTPM / 60 / output tokens
  per call; a job keeps ``rate x latency x HEADROOM`` calls open so that latency spread
  never leaves the limit unused, capped by the request's ``max_concurrency`` and by the
  ceiling (the generation function's reserved concurrency).
- **AIMD on the start rate**: calls are counted in epochs; an epoch in which more than
  ``REFUSAL_SHARE`` of the calls were refused (429 rate limit, 529 overloaded) halves the
  share of the account rate in use (multiplicative decrease), an epoch with fewer adds
  ``INCREASE_STEP`` back (additive increase) up to the whole rate. A share of one third
  is the point where a client sends more than 1.5 requests per accepted one (client-side
  adaptive throttling with K = 1.5): scattered refusals do not slow the job down, a
  provider that really is over its limit does.
- **Burst**: the provider's limits are budgets per minute (a token bucket that holds a
  minute's allowance), so calls need not start evenly spaced from the first one. A job
  whose remaining calls fit in one minute's allowance may start up to ``burst`` seconds'
  worth at once: then no minute can hold more than the limit, even one counted as a
  strict sliding window. A longer job keeps ``STEADY_BURST_S``, because calls it bursts
  early it would have to hold back later in the same minute. The burst shrinks with the
  AIMD share (a provider that enforces shorter windows refuses it, and the refusals halve
  the share) and is zero while the breaker is open.
- **Circuit breaker**: ``BREAKER_THRESHOLD`` refusals in a row open it; every caller then
  waits ``cooldown(trips)`` (doubling per trip, capped). The first call after the
  cooldown is the probe: one more refusal reopens it at once, one success closes it.
  At ``BREAKER_MAX_TRIPS`` trips without a success in between the job pauses itself
  (``pause_reason = provider_refusing``): the provider has refused for the better part
  of a minute, waiting on in the workflow would only burn Lambda time, and each
  conversation has spent about one attempt per trip (the default allows five), so
  none is failed for the provider's refusals; Resume carries on.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from typing import Literal

HEADROOM = 1.25  # in-flight margin over rate x mean latency (latency spread, jitter)
DEFAULT_CEILING = 100  # GenerateItem's reserved concurrency (infra/build.py)
FALLBACK_LATENCY_S = 30.0  # no observed call yet: a ~1,800-token answer takes 20-60 s
LATENCY_FLOOR_S = 0.05

EPOCH_SECONDS = 5.0
MIN_EPOCH_CALLS = 10  # fewer calls than this say nothing about the refusal share
REFUSAL_SHARE = 1.0 / 3.0
DECREASE_FACTOR = 0.5
INCREASE_STEP = 0.25
MIN_RATE_SHARE = 1.0 / 64.0

DEFAULT_BURST_S = 10.0  # a sixth of the provider's minute
STEADY_BURST_S = 1.0  # jitter allowance of a job longer than a minute's allowance

BREAKER_THRESHOLD = 10
BREAKER_BASE_COOLDOWN_S = 15.0
BREAKER_MAX_COOLDOWN_S = 120.0
BREAKER_MAX_TRIPS = 3  # 15 + 30 s of waiting, then the pause (before attempts run out)

LimitReason = Literal["rpm", "otpm", "latency", "cap", "ceiling", "backoff", "breaker"]


@dataclass(frozen=True)
class AccountRate:
    """The start rate the account's limits allow, and which limit sets it."""

    per_second: float
    reason: Literal["rpm", "otpm"]


def account_rate(rpm: int, otpm: int, output_tokens_per_call: float) -> AccountRate:
    """Calls per second under both limits (0 or less: that limit is not configured)."""
    by_requests = rpm / 60.0 if rpm > 0 else math.inf
    tokens = max(output_tokens_per_call, 1.0)
    by_tokens = otpm / 60.0 / tokens if otpm > 0 else math.inf
    if math.isinf(by_requests) and math.isinf(by_tokens):
        return AccountRate(math.inf, "rpm")
    if by_tokens < by_requests:
        return AccountRate(by_tokens, "otpm")
    return AccountRate(by_requests, "rpm")


def request_interval(rpm: int, otpm: int, output_tokens_per_call: float) -> float:
    """Seconds between call starts at the account rate (0: no limit)."""
    rate = account_rate(rpm, otpm, output_tokens_per_call).per_second
    return 0.0 if math.isinf(rate) else 1.0 / rate


@dataclass(frozen=True)
class ConcurrencyTarget:
    target: int
    rate_per_s: float  # the start rate the target is built on (after back-off)
    latency_s: float
    limit_reason: LimitReason


def target_in_flight(
    rate: AccountRate,
    latency_s: float | None,
    *,
    cap: int | None = None,
    ceiling: int = DEFAULT_CEILING,
    rate_share: float = 1.0,
    breaker_open: bool = False,
) -> ConcurrencyTarget:
    """Calls to keep in flight: rate x latency x HEADROOM, within the cap and ceiling.

    ``limit_reason`` names what keeps the target where it is: the breaker, the
    user's cap, the ceiling, an AIMD back-off, or else the account limit that binds.
    """
    latency = max(latency_s if latency_s and latency_s > 0 else FALLBACK_LATENCY_S, 0.0)
    latency = max(latency, LATENCY_FLOOR_S)
    share = min(max(rate_share, MIN_RATE_SHARE), 1.0)
    per_second = rate.per_second * share
    ceiling = max(1, ceiling)
    raw = math.inf if math.isinf(per_second) else max(1, math.ceil(per_second * latency * HEADROOM))
    reason: LimitReason = rate.reason if share >= 1.0 else "backoff"
    target = raw
    if cap is not None and cap >= 1 and cap < target:
        target, reason = cap, "cap"
    if ceiling < target:
        target, reason = ceiling, "ceiling"
    if breaker_open:
        reason = "breaker"
    return ConcurrencyTarget(int(target), per_second, round(latency, 3), reason)


@dataclass(frozen=True)
class FlightStats:
    """A job's calls: how many are in flight now, and what the answered ones took."""

    in_flight: int = 0
    answered: int = 0
    latency_ms: int = 0
    output_tokens: int = 0

    @property
    def mean_latency_s(self) -> float | None:
        return self.latency_ms / self.answered / 1000.0 if self.answered else None

    @property
    def mean_output_tokens(self) -> float | None:
        return self.output_tokens / self.answered if self.answered else None


def observed_latency(
    flight: FlightStats, history_s: float | None, min_calls: int = 3
) -> float | None:
    """The job's own mean once it has ``min_calls`` answers, else the history's."""
    if flight.answered >= min_calls and flight.mean_latency_s:
        return flight.mean_latency_s
    return history_s if history_s and history_s > 0 else flight.mean_latency_s


# --------------------------------------------------------------------------- AIMD + breaker


@dataclass(frozen=True)
class Backoff:
    """The shared back-off state of one provider key (tenant and model)."""

    rate_share: float = 1.0
    epoch_start: float = 0.0  # seconds since the epoch
    calls: int = 0  # calls finished in this epoch
    refusals: int = 0  # of them refused (429, 529)
    consecutive_refusals: int = 0
    open_until: float = 0.0  # breaker: every caller waits until then
    trips: int = 0  # breaker openings since the last success


def cooldown(trips: int, base: float = BREAKER_BASE_COOLDOWN_S) -> float:
    """The wait of the ``trips``-th opening (1-based): 15, 30, 60, 120, 120 ... s."""
    return min(
        base * 2 ** max(trips - 1, 0), base * BREAKER_MAX_COOLDOWN_S / BREAKER_BASE_COOLDOWN_S
    )


def next_rate_share(state: Backoff) -> float:
    """AIMD at the end of an epoch: halve on too many refusals, else step back up."""
    if state.calls and state.refusals / state.calls > REFUSAL_SHARE:
        return max(state.rate_share * DECREASE_FACTOR, MIN_RATE_SHARE)
    return min(state.rate_share + INCREASE_STEP, 1.0)


@dataclass(frozen=True)
class BackoffStep:
    """What one finished call changes: a closed epoch and/or a breaker opening."""

    state: Backoff
    epoch_closed: bool = False
    breaker_opened: bool = False
    pause_job: bool = False

    @property
    def empty(self) -> bool:
        return not (self.epoch_closed or self.breaker_opened)


def after_call(
    state: Backoff,
    now: float,
    epoch_seconds: float = EPOCH_SECONDS,
    base_cooldown: float = BREAKER_BASE_COOLDOWN_S,
) -> BackoffStep:
    """Given the state with this call already counted, what is due now.

    The epoch closes once it is ``epoch_seconds`` old and has ``MIN_EPOCH_CALLS``
    calls; an idle epoch (too few calls) only restarts its clock when it is stale.
    The breaker opens on ``BREAKER_THRESHOLD`` refusals in a row unless it is open.
    """
    new = state
    epoch_closed = False
    if state.epoch_start <= 0:
        new = replace(new, epoch_start=now, calls=0, refusals=0)
        epoch_closed = True
    elif now - state.epoch_start >= epoch_seconds and (
        state.calls >= MIN_EPOCH_CALLS or now - state.epoch_start >= 6 * epoch_seconds
    ):
        share = next_rate_share(state) if state.calls >= MIN_EPOCH_CALLS else state.rate_share
        new = replace(new, rate_share=share, epoch_start=now, calls=0, refusals=0)
        epoch_closed = True
    breaker_opened = False
    pause_job = False
    if state.consecutive_refusals >= BREAKER_THRESHOLD and now >= state.open_until:
        trips = state.trips + 1
        new = replace(
            new,
            trips=trips,
            open_until=now + cooldown(trips, base_cooldown),
            rate_share=max(min(new.rate_share, state.rate_share) * DECREASE_FACTOR, MIN_RATE_SHARE),
        )
        breaker_opened = True
        pause_job = trips >= BREAKER_MAX_TRIPS
    return BackoffStep(new, epoch_closed, breaker_opened, pause_job)


def after_success(state: Backoff) -> Backoff:
    """A call that was answered closes the breaker (counts of the epoch stay)."""
    return replace(state, consecutive_refusals=0, trips=0)


def breaker_open(state: Backoff, now: float) -> bool:
    return now < state.open_until


def burst_seconds(
    rate: AccountRate,
    calls_left: int,
    state: Backoff,
    now: float,
    burst: float = DEFAULT_BURST_S,
) -> float:
    """Seconds' worth of the account rate that may start at once (see the module doc)."""
    if breaker_open(state, now):
        return 0.0
    share = min(max(state.rate_share, MIN_RATE_SHARE), 1.0)
    minute_allowance = math.inf if math.isinf(rate.per_second) else rate.per_second * 60.0
    allowed = burst if calls_left <= minute_allowance else STEADY_BURST_S
    return max(allowed, STEADY_BURST_S) * share


def effective_interval(base_interval: float, state: Backoff) -> float:
    """Seconds between call starts after the back-off (the account rate x share)."""
    share = min(max(state.rate_share, MIN_RATE_SHARE), 1.0)
    return base_interval / share if base_interval > 0 else 0.0
