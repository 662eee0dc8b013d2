"""Fine-tuning rules: hyperparameter limits, the training-cost estimate, job names.

Pure functions; the service (``chalicelib/finetune/service.py``) applies them.
Limits are Amazon Bedrock's documented ranges for Claude 3 Haiku customization
(epochCount 1-10, batchSize 4-256, learningRateMultiplier 0.1-2). The estimate is what
Bedrock bills for training: tokens of the training file x epochs x the price per 1,000
tokens (``Settings.fine_tune_prices``); validation tokens and model storage are not
part of it.
"""

from __future__ import annotations

import math
import re
from typing import Any, Final

from chalicelib.domain.errors import ValidationError
from chalicelib.domain.models import FineTuneStatus

HYPERPARAMETER_LIMITS: Final[dict[str, tuple[float, float]]] = {
    "epochCount": (1, 10),
    "batchSize": (4, 256),
    "learningRateMultiplier": (0.1, 2.0),
}
DEFAULT_HYPERPARAMETERS: Final[dict[str, float]] = {
    "epochCount": 2,
    "batchSize": 32,
    "learningRateMultiplier": 1.0,
}
TERMINAL: Final = frozenset(
    {
        FineTuneStatus.COMPLETED,
        FineTuneStatus.FAILED,
        FineTuneStatus.STOPPED,
        FineTuneStatus.SUBMIT_FAILED,
    }
)
# Spend counted against a dataset's budget: every job except those Bedrock never ran.
UNBILLED: Final = frozenset({FineTuneStatus.SUBMIT_FAILED})
_NAME_UNSAFE: Final = re.compile(r"[^A-Za-z0-9-]+")
NAME_MAX: Final = 63  # Bedrock's limit for job and custom model names


def hyperparameters(
    epochs: int | None, batch_size: int | None, learning_rate_multiplier: float | None
) -> dict[str, float]:
    """Bedrock's hyperparameters from a request (defaults filled in), range-checked."""
    values: dict[str, Any] = {
        "epochCount": DEFAULT_HYPERPARAMETERS["epochCount"] if epochs is None else epochs,
        "batchSize": DEFAULT_HYPERPARAMETERS["batchSize"] if batch_size is None else batch_size,
        "learningRateMultiplier": (
            DEFAULT_HYPERPARAMETERS["learningRateMultiplier"]
            if learning_rate_multiplier is None
            else learning_rate_multiplier
        ),
    }
    for name, value in values.items():
        lo, hi = HYPERPARAMETER_LIMITS[name]
        integral = name != "learningRateMultiplier"
        if (
            isinstance(value, bool)
            or not isinstance(value, int | float)
            or not math.isfinite(value)
            or (integral and not float(value).is_integer())
            or not lo <= value <= hi
        ):
            kind = "an integer" if integral else "a number"
            raise ValidationError(
                f"{name} must be {kind} from {lo:g} to {hi:g}",
                {"field": name, "min": lo, "max": hi},
            )
        values[name] = int(value) if integral else float(value)
    return values


def training_cost(tokens: int, epochs: int, price_per_1k: float) -> float:
    return round(tokens * epochs * price_per_1k / 1000, 4)


def resource_name(*parts: str) -> str:
    """A Bedrock job / model name: letters, digits and hyphens, at most 63 characters."""
    name = _NAME_UNSAFE.sub("-", "-".join(p for p in parts if p)).strip("-")
    return name[:NAME_MAX].rstrip("-") or "brightrun"


def remaining_budget(
    budget_usd: float | None, spent_usd: float, committed_usd: float
) -> float | None:
    """What a dataset can still spend: its budget less generation spend and the estimates
    of the fine-tunes it already started (None: no budget set)."""
    if budget_usd is None:
        return None
    return round(budget_usd - spent_usd - committed_usd, 6)
