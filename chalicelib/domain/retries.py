"""How the next attempt of a conversation is asked for, after an answer that was cut off.

A truncated answer (``stop_reason: max_tokens``) is retried with twice the output
budget, up to the model's output limit; once at the limit, the retry asks for fewer
turns instead. A malformed answer is retried as it was asked.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from chalicelib.domain.models import GenerationLog

MIN_TURNS = 4


@dataclass(frozen=True)
class RetryPlan:
    max_tokens: int
    turn_target: int | None  # None: the conversation's own target
    reason: str = ""


def was_truncated(log: GenerationLog) -> bool:
    return bool(log.response_payload and log.response_payload.get("stop_reason") == "max_tokens")


def _int(value: object) -> int | None:
    try:
        return int(str(value))
    except (TypeError, ValueError):
        return None


def plan_retry(
    previous: Sequence[GenerationLog],
    default_max_tokens: int,
    output_limit: int,
    default_turns: int,
) -> RetryPlan:
    """The output budget and turn target for the next attempt, from the earlier calls
    of the same claim (oldest first). Both only move one way: a malformed answer after
    a truncated one keeps the larger budget and the shorter conversation."""
    limit = max(1, output_limit)
    answered = [log for log in previous if log.response_payload]
    if not answered:
        return RetryPlan(min(default_max_tokens, limit), None)
    budgets = [_int(log.request_payload.get("max_tokens")) or 0 for log in answered]
    used = min(max([default_max_tokens, *budgets]), limit)
    asked = [t for log in answered if (t := _int(log.parameters.get("turn_target")))]
    turns = min([default_turns, *asked])
    keep_turns = turns if turns < default_turns else None
    if not was_truncated(answered[-1]):
        return RetryPlan(used, keep_turns)
    if used < limit:
        return RetryPlan(min(used * 2, limit), keep_turns, f"truncated at max_tokens={used}")
    fewer = max(MIN_TURNS, (turns * 2 // 3) // 2 * 2)
    return RetryPlan(limit, fewer, f"truncated at the model's output limit ({limit})")
