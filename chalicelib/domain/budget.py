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
