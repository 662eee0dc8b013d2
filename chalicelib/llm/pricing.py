"""Cost of a call from its token usage and the dated price table in config."""

from __future__ import annotations

from chalicelib.config import Settings
from chalicelib.llm.client import Usage

PER_MILLION = 1_000_000


def cost_usd(settings: Settings, model: str, usage: Usage, *, batch: bool = False) -> float:
    p = settings.price(model)
    factor = p.batch_discount if batch else 1.0
    total = (
        usage.input_tokens * p.input
        + usage.output_tokens * p.output
        + usage.cache_creation_input_tokens * p.cache_write
        + usage.cache_read_input_tokens * p.cache_read
    ) / PER_MILLION
    return round(total * factor, 8)
