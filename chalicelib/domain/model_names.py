"""Which model names a dataset may name: the ones the price table knows.

A name the table does not know could neither be priced (estimates and budgets would
silently use another model's price) nor, usually, be called.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

from chalicelib.domain.errors import ValidationError

# A dated snapshot of a known family (claude-sonnet-4-5-20250929) prices as the family.
_DATED = re.compile(r"^(?P<family>.+)-(?P<date>20\d{6})$")


def check_model_name(name: str, known: Iterable[str]) -> str:
    """``name`` if the price table knows it (exactly, or as a dated snapshot of a known
    family); otherwise a 400 that lists the names it knows."""
    allowed = sorted(set(known))
    if name in allowed:
        return name
    dated = _DATED.match(name)
    if dated and dated.group("family") in allowed:
        return name
    raise ValidationError(
        f"unknown model '{name}': use one of {', '.join(allowed)} "
        "(or send null for the default model)",
        {"field": "model", "allowed": allowed},
    )
