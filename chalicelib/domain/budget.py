"""Budget rules of a generation job: which warnings are due and when it must pause."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

BUDGET_THRESHOLDS: tuple[int, ...] = (50, 75, 90)


@dataclass(frozen=True)
class BudgetStep:
    """What a job's spend calls for now: the warnings not yet given (in rising order)
    and whether it must pause. Both are applied in one conditional write, so every
    warning is given once and always before the pause notice."""

    warn: tuple[int, ...]
    pause: bool

    @property
    def empty(self) -> bool:
        return not self.warn and not self.pause


def spent_percent(spent_usd: float, budget_usd: float) -> float:
    if budget_usd <= 0:
        return float("inf")
    return spent_usd / budget_usd * 100.0


def budget_step(
    spent_usd: float, budget_usd: float | None, warned: Sequence[int], running: bool
) -> BudgetStep:
    """Every threshold reached and not yet warned about, lowest first (a call that jumps
    from 40% to 95% gives 50, 75 and 90), and a pause at 100% of a running job. The
    thresholds below 100% are warned about even when the pause comes with them."""
    if budget_usd is None:
        return BudgetStep((), False)
    percent = spent_percent(spent_usd, budget_usd)
    done = set(warned)
    warn = tuple(t for t in BUDGET_THRESHOLDS if percent >= t and t not in done)
    return BudgetStep(warn, running and percent >= 100.0)


def thresholds_still_reached(spent_usd: float, budget_usd: float | None) -> list[int]:
    """After the budget changes (a resume with more budget): the warnings that stay
    given; the others are given again when the job reaches them under the new budget."""
    if budget_usd is None:
        return []
    percent = spent_percent(spent_usd, budget_usd)
    return [t for t in BUDGET_THRESHOLDS if percent >= t]


def remaining_budget(budget_usd: float | None, spent_usd: float) -> float | None:
    """What a dataset may still spend; None when it has no budget."""
    if budget_usd is None:
        return None
    return round(budget_usd - spent_usd, 6)


def over_budget(estimated_usd: float, remaining_usd: float | None) -> bool:
    """An estimate above what is left (needs the caller's confirmation to start)."""
    return remaining_usd is not None and estimated_usd > remaining_usd


def start_refusal(over: bool, remaining_usd: float | None, confirm: bool) -> str | None:
    """Why a job may not start on this budget, or None. Over the remaining budget it
    starts only when confirmed (and pauses itself at the budget); a used-up budget
    refuses even then."""
    if over and not confirm:
        return (
            "the estimated cost exceeds the dataset's remaining budget; "
            "send confirm: true to start anyway (the job pauses itself at the budget)"
        )
    if remaining_usd is not None and remaining_usd <= 0:
        return "the dataset's budget is used up; raise budget_usd to generate more"
    return None


def resumed_job_budget(
    job_spent_usd: float, dataset_budget_usd: float | None, dataset_spent_usd: float
) -> float | None:
    """A resumed job's own budget: what it spent plus what the dataset has left (None
    without a dataset budget). Raises ValueError when nothing is left to spend."""
    left = remaining_budget(dataset_budget_usd, dataset_spent_usd)
    if left is None:
        return None
    if left <= 0:
        raise ValueError("the dataset's budget is used up; raise budget_usd, then resume")
    return round(job_spent_usd + left, 6)
