"""The conversation filters: one registry read by the list (``readmodel/listing.py``),
the export (``export/service.py``), the export's DynamoDB query
(``store/export_source.py``), the API's parameters (``api/request.py``,
``api/schemas.py``), the OpenAPI document (``api/openapi.py``) and, through it, the web
app's filter list (``frontend/src/generated/filters.ts``).

A dimension is a field of ``Conversation`` and the record attribute of the same name.
How it matches: a conversation matches a dimension when its value is one of the values
asked for (any of them); it matches a query when it matches every dimension asked for.
How it becomes a DynamoDB condition: ``<attribute> IN (:v1, ...)``, ANDed, built by the
store from ``FilterDimension.attribute`` (the domain imports no pynamodb).
Adding a dimension: docs/architecture.md, "Adding a filter dimension".
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from dataclasses import dataclass
from enum import Enum
from typing import Any

from chalicelib.domain.errors import ValidationError
from chalicelib.domain.models import Conversation, ConversationStatus, Tier


@dataclass(frozen=True)
class FilterDimension:
    name: str  # the query parameter and the Conversation field
    # A fixed set of values (an unknown one is a 400 naming them); None: the dataset's
    # taxonomy names, free text (taken verbatim: a name may hold a comma).
    choices: tuple[str, ...] | None = None
    # Exports filter on it too (status is not: an export is of approved conversations).
    exported: bool = True
    attribute: str | None = None  # the record attribute, when named otherwise
    # The dataset's taxonomy list its values come from (the web app offers those names).
    taxonomy_field: str | None = None

    @property
    def record_attribute(self) -> str:
        return self.attribute or self.name

    def value(self, conversation: Conversation) -> Any:
        """The conversation's value as the filter compares it (an enum as its string)."""
        value = getattr(conversation, self.name)
        return value.value if isinstance(value, Enum) else value

    def matches(self, conversation: Conversation, wanted: Collection[Any]) -> bool:
        return not wanted or self.value(conversation) in wanted


FILTERS: tuple[FilterDimension, ...] = (
    FilterDimension("persona", taxonomy_field="personas"),
    FilterDimension("emotion", taxonomy_field="emotions"),
    FilterDimension("topic", taxonomy_field="topics"),
    FilterDimension("intent", taxonomy_field="intents"),
    FilterDimension("tone", taxonomy_field="tones"),
    FilterDimension("tier", choices=tuple(t.value for t in Tier)),
    FilterDimension("status", choices=tuple(s.value for s in ConversationStatus), exported=False),
)
BY_NAME: dict[str, FilterDimension] = {f.name: f for f in FILTERS}
FILTER_DIMENSIONS: tuple[str, ...] = tuple(f.name for f in FILTERS)
EXPORT_FILTERS: tuple[FilterDimension, ...] = tuple(f for f in FILTERS if f.exported)
# Filters whose values are a fixed set (the others are the dataset's taxonomy names).
ENUM_FILTERS: dict[str, tuple[str, ...]] = {
    f.name: f.choices for f in FILTERS if f.choices is not None
}


def plain_values(values: Collection[Any] | None) -> list[Any]:
    """Filter values as compared and stored (an enum as its string)."""
    return [v.value if isinstance(v, Enum) else v for v in values or ()]


def validate_filters(
    filters: Mapping[str, Collection[Any]], allowed: Collection[str] = FILTER_DIMENSIONS
) -> None:
    """400 for a dimension not in ``allowed`` or a value outside a dimension's choices."""
    unknown = sorted(set(filters) - set(allowed))
    if unknown:
        raise ValidationError(f"unknown filter '{unknown[0]}'", {"allowed": list(allowed)})
    for f in FILTERS:
        if f.choices is None or f.name not in filters:
            continue
        bad = [v for v in plain_values(filters[f.name]) if v not in f.choices]
        if bad:
            raise ValidationError(
                f"unknown {f.name} '{bad[0]}': {f.name} must be one of {', '.join(f.choices)}",
                {"field": f.name, "value": bad[0], "allowed": list(f.choices)},
            )


def matches_filters(
    conversation: Conversation,
    filters: Mapping[str, Any],
    dimensions: Collection[FilterDimension] = FILTERS,
) -> bool:
    """Every dimension of ``dimensions`` asked for in ``filters`` matches (other keys of
    ``filters``, such as quality bounds, are the caller's)."""
    return all(
        f.matches(conversation, frozenset(plain_values(filters.get(f.name)))) for f in dimensions
    )


def in_quality_range(score: float | None, low: float | None, high: float | None) -> bool:
    """Quality bounds are inclusive; an unscored conversation is outside any bound."""
    if low is not None and (score is None or score < low):
        return False
    return not (high is not None and (score is None or score > high))
