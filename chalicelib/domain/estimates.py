"""Cost and time estimates of a generation job, learned from what was generated before.

The estimate is built from the best basis available, in this order:

1. **dataset**: the observed cost of this dataset's generated conversations (same
   model), per tier when a tier has enough of them;
2. **template**: the same prompt templates' conversations in the tenant's other
   datasets (same model);
3. **defaults**: counted prompt tokens and a default answer length.

A tier without enough observations of its own is predicted from its counted prompt
tokens and the observed answer length, scaled by how far such predictions were off for
the observed tiers. What failed and retried calls added (malformed or truncated answers,
timeouts charged at their estimate) is learned from the dataset's finished jobs as a
retry overhead. The range comes from the observed spread: the uncertainty of each
tier's mean plus the variation of the conversations to come (about 95%).
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

MIN_OBSERVED = 3  # conversations needed before an observed mean is trusted
Z_95 = 1.96
DEFAULT_OUTPUT_TOKENS = 1800  # ~12 turns
DEFAULT_LATENCY_SECONDS = 20.0
JOB_OVERHEAD_SECONDS = 1.0  # starting the execution, preparing and finishing the job
DEFAULT_RELATIVE_SPREAD = 0.5
# With nothing observed, the answer length is the unknown: the range spans answers of
# this many output tokens (a short 8-turn exchange to a long 16-turn one).
DEFAULT_OUTPUT_RANGE = (500, 3200)
# A tier predicted from other tiers' observations (not its own) is uncertain by at
# least this share of its mean: tiers differ in more than their prompt length.
EXTRAPOLATION_SPREAD = 0.10
MAX_OVERHEAD = 3.0

Scope = Literal["dataset", "template", "defaults"]


@dataclass(frozen=True)
class Observation:
    """One generated conversation: what its successful call cost and took."""

    tier: str
    cost_usd: float
    output_tokens: int
    seconds: float


@dataclass(frozen=True)
class TierPrompt:
    """A tier's counted prompt: total input tokens and the cached system part."""

    input_tokens: int
    system_tokens: int


@dataclass(frozen=True)
class Prices:
    """USD per token (not per million)."""

    input: float
    output: float
    cache_write: float
    cache_read: float
    batch_discount: float


@dataclass(frozen=True)
class JobHistory:
    """A finished job of the dataset: what it spent for the conversations it stored."""

    mode: str
    cost_usd: float
    stored_cost_usd: float  # the successful calls' cost of the conversations it stored
    completed: int
    seconds: float
    max_concurrency: int
    executions: int


@dataclass
class TierEstimate:
    tier: str
    count: int
    cost_per_conversation_usd: float
    sd_usd: float
    observed: int
    basis: str

    def as_dict(self) -> dict[str, Any]:
        return {
            "tier": self.tier,
            "count": self.count,
            "cost_per_conversation_usd": round(self.cost_per_conversation_usd, 6),
            "observed": self.observed,
            "basis": self.basis,
        }


@dataclass
class CostEstimate:
    total_usd: float
    low_usd: float
    high_usd: float
    per_tier: list[TierEstimate]
    scope: Scope
    observed: int
    output_tokens: int
    retry_overhead: float
    basis: str
    notes: list[str] = field(default_factory=list)


def predicted_cost(prompt: TierPrompt, output_tokens: float, prices: Prices) -> float:
    """A call whose system prompt is read from the cache (every call but a job's first)."""
    cached = min(prompt.system_tokens, prompt.input_tokens)
    return (
        (prompt.input_tokens - cached) * prices.input
        + cached * prices.cache_read
        + output_tokens * prices.output
    )


def retry_overhead(history: Sequence[JobHistory]) -> float:
    """Spend per stored conversation over the cost of its successful call, in the
    dataset's finished jobs (1.0 when no call failed or nothing is known)."""
    spent = sum(j.cost_usd for j in history if j.completed and j.stored_cost_usd > 0)
    stored = sum(j.stored_cost_usd for j in history if j.completed and j.stored_cost_usd > 0)
    if stored <= 0:
        return 1.0
    return min(max(spent / stored, 1.0), MAX_OVERHEAD)


def _mean_sd(values: Sequence[float]) -> tuple[float, float]:
    mean = statistics.fmean(values)
    sd = statistics.stdev(values) if len(values) > 1 else 0.0
    return mean, sd


def estimate_cost(
    tier_counts: Mapping[str, int],
    prompts: Mapping[str, TierPrompt],
    observations: Sequence[Observation],
    scope: Scope,
    prices: Prices,
    history: Sequence[JobHistory] = (),
    *,
    scope_label: str = "",
) -> CostEstimate:
    """The cost of generating ``tier_counts`` conversations (standard price; the batch
    discount is applied by the caller)."""
    overhead = retry_overhead(history) if scope == "dataset" else 1.0
    outputs = [o.output_tokens for o in observations if o.output_tokens]
    output_tokens = statistics.fmean(outputs) if outputs else float(DEFAULT_OUTPUT_TOKENS)
    by_tier: dict[str, list[Observation]] = {}
    for o in observations:
        by_tier.setdefault(o.tier, []).append(o)
    # How far the token-count prediction was off where it can be checked.
    ratios = [
        o.cost_usd / predicted_cost(prompts[o.tier], o.output_tokens or output_tokens, prices)
        for o in observations
        if o.tier in prompts and o.cost_usd > 0
    ]
    if ratios:
        calibration, calibration_sd = _mean_sd(ratios)
    else:
        calibration, calibration_sd = 1.0, DEFAULT_RELATIVE_SPREAD
    total = 0.0
    variance = 0.0
    tiers: list[TierEstimate] = []
    for tier, n in sorted(tier_counts.items()):
        if n <= 0:
            continue
        own = [o.cost_usd for o in by_tier.get(tier, []) if o.cost_usd > 0]
        if len(own) >= MIN_OBSERVED:
            mean, sd = _mean_sd(own)
            se = sd / math.sqrt(len(own))
            basis = f"observed mean of {len(own)} {tier} conversations"
        else:
            prompt = prompts.get(tier) or next(iter(prompts.values()), TierPrompt(1500, 0))
            tier_out = [o.output_tokens for o in by_tier.get(tier, []) if o.output_tokens]
            out = statistics.fmean(tier_out) if tier_out else output_tokens
            base = predicted_cost(prompt, out, prices)
            mean = base * calibration
            sd = base * calibration_sd
            se = max(sd / math.sqrt(len(ratios)) if ratios else sd, EXTRAPOLATION_SPREAD * mean)
            basis = (
                f"counted prompt tokens, scaled by {len(ratios)} observed conversations"
                if ratios
                else "counted prompt tokens and a default answer length"
            )
            own = []
        mean *= overhead
        sd *= overhead
        se *= overhead
        total += n * mean
        # Uncertainty of the mean (shared by all n) plus the spread of n new ones.
        variance += (n * se) ** 2 + n * sd**2
        tiers.append(TierEstimate(tier, n, mean, sd, len(own), basis))
    # The first call of a job writes the shared system prompt to the cache.
    first = next(iter(prompts.values()), None)
    if first is not None and total > 0:
        total += first.system_tokens * (prices.cache_write - prices.cache_read) * overhead
    margin = Z_95 * math.sqrt(variance)
    low, high = max(0.0, total - margin), total + margin
    if not observations:
        fallback = TierPrompt(1500, 0)
        low, high = (
            sum(
                n * predicted_cost(prompts.get(t) or fallback, out, prices)
                for t, n in tier_counts.items()
            )
            for out in DEFAULT_OUTPUT_RANGE
        )
    observed = len(observations)
    basis = describe_basis(scope, observed, scope_label, overhead)
    return CostEstimate(
        total_usd=total,
        low_usd=low,
        high_usd=high,
        per_tier=tiers,
        scope=scope,
        observed=observed,
        output_tokens=round(output_tokens),
        retry_overhead=round(overhead, 4),
        basis=basis,
    )


def describe_basis(scope: Scope, observed: int, label: str, overhead: float) -> str:
    if scope == "dataset":
        text = f"observed mean of {observed} generated conversations of this dataset"
    elif scope == "template":
        text = (
            f"observed mean of {observed} conversations generated with the same "
            f"template{'s' if ',' in label else ''}{f' ({label})' if label else ''} "
            "in your other datasets"
        )
    else:
        text = "defaults: counted prompt tokens and ~1,800 output tokens per conversation (nothing generated yet)"
    if overhead > 1.0005:
        text += f", plus {100 * (overhead - 1):.0f}% for retried calls"
    return text


# --------------------------------------------------------------------------- time


@dataclass
class TimeEstimate:
    seconds: float
    low: float
    high: float
    basis: str


def standard_seconds(
    n: int,
    latency_s: float,
    concurrency: int,
    rpm: int,
    otpm: int,
    output_tokens: float,
) -> float:
    """The rate-limit and concurrency bound of a standard-mode job."""
    if n <= 0:
        return 0.0
    return max(
        n / max(rpm, 1) * 60.0,
        n * latency_s / max(concurrency, 1),
        n * output_tokens / max(otpm, 1) * 60.0,
    )


def estimate_standard_time(
    n: int,
    observations: Sequence[Observation],
    concurrency: int,
    rpm: int,
    otpm: int,
    output_tokens: float,
    history: Sequence[JobHistory] = (),
) -> TimeEstimate:
    """``overhead + factor x bound``: the bound above (observed call latency, this
    concurrency, the rate limits) scaled by what this dataset's earlier standard jobs
    took. With two or more jobs of different sizes both are fitted; with one, the
    overhead is the default workflow start-up and the factor is fitted."""
    latencies = [o.seconds for o in observations if o.seconds > 0]
    latency = statistics.fmean(latencies) if latencies else DEFAULT_LATENCY_SECONDS
    bound = standard_seconds(n, latency, concurrency, rpm, otpm, output_tokens)
    points = [
        (
            standard_seconds(j.completed, latency, j.max_concurrency, rpm, otpm, output_tokens),
            j.seconds,
        )
        for j in history
        if j.mode == "standard" and j.completed > 0 and j.seconds > 0
    ]
    points = [(x, y) for x, y in points if x > 0]
    if not points:
        seconds = JOB_OVERHEAD_SECONDS + bound
        basis = (
            f"{latency:.1f} s per call {'observed' if latencies else '(default)'}, "
            f"{concurrency} at a time, within {rpm} requests/min"
        )
        return TimeEstimate(seconds, seconds * 0.7, seconds * (1.5 if latencies else 2.0), basis)
    overhead, factor = _fit_time(points)
    seconds = overhead + factor * bound
    residuals = [abs(y - (overhead + factor * x)) / y for x, y in points]
    spread = max(0.25, max(residuals) if len(points) > 2 else 0.5)
    basis = (
        f"{latency:.1f} s per call observed, {concurrency} at a time, timed like this "
        f"dataset's last {len(points)} job{'s' if len(points) > 1 else ''} "
        f"({overhead:.1f} s start-up + {factor:.2f}x the call time)"
    )
    return TimeEstimate(seconds, seconds * (1 - spread / 2), seconds * (1 + spread), basis)


def _fit_time(points: Sequence[tuple[float, float]]) -> tuple[float, float]:
    """Least squares ``seconds = overhead + factor x bound`` (overhead >= 0, factor >= 1);
    one job, or jobs of one size: the default overhead and the factor through them."""
    xs = [x for x, _ in points]
    if len(points) >= 2 and max(xs) > min(xs) * 1.2:
        mx, my = statistics.fmean(xs), statistics.fmean(y for _, y in points)
        sxx = sum((x - mx) ** 2 for x in xs)
        factor = sum((x - mx) * (y - my) for x, y in points) / sxx
        factor = max(factor, 1.0)
        overhead = max(my - factor * mx, 0.0)
        return overhead, factor
    ratios = [max((y - JOB_OVERHEAD_SECONDS) / x, 1.0) for x, y in points]
    return JOB_OVERHEAD_SECONDS, statistics.median(ratios)


def estimate_economy_time(
    n: int,
    chunk_size: int,
    poll_seconds: float,
    processing_s: float,
    history: Sequence[JobHistory] = (),
) -> TimeEstimate:
    """Message Batches: each execution submits one batch and polls it every
    ``poll_seconds``, so a chunk takes at least one poll interval, and the polls
    round the batch's own processing time up. ``processing_s`` is the provider's time
    for the batch when nothing was observed (the standard-mode bound is a lower one)."""
    if n <= 0:
        return TimeEstimate(0.0, 0.0, 0.0, "nothing to generate")
    chunks = math.ceil(n / max(chunk_size, 1))
    per_execution = [
        job.seconds / max(job.executions, 1)
        for job in history
        if job.mode == "economy" and job.completed > 0 and job.seconds > 0
    ]
    poll = max(poll_seconds, 1.0)
    if per_execution:
        each = statistics.median(per_execution)
        basis = (
            f"{chunks} batch{'es' if chunks > 1 else ''}, each taking about {each:.0f} s "
            f"like this dataset's earlier economy jobs (polled every {poll:.0f} s)"
        )
        seconds = chunks * each
        return TimeEstimate(
            seconds, chunks * min(per_execution), chunks * max(per_execution) + poll, basis
        )
    polls = max(1, math.ceil(processing_s / poll))
    seconds = chunks * polls * poll
    basis = (
        f"{chunks} batch{'es' if chunks > 1 else ''}, polled every {poll:.0f} s: at least "
        f"one poll interval each; the provider may take up to 24 h for a batch"
    )
    return TimeEstimate(seconds, chunks * poll, seconds + chunks * 3 * poll, basis)
