"""Rules for a dataset's quality rules (banned phrases, disclaimers, brand terms)."""

from __future__ import annotations

from chalicelib.domain.errors import ValidationError
from chalicelib.domain.models import QualityRules, Taxonomy


def check_disclaimer_topics(rules: QualityRules, taxonomy: Taxonomy) -> QualityRules:
    """Disclaimer topics name the taxonomy's topics, spelled as the taxonomy spells them.

    A misspelled topic would silently never apply, so it is refused. Before a taxonomy
    has topics there is nothing to check against, and the rules are kept as given."""
    known = {entry.name.casefold(): entry.name for entry in taxonomy.topics}
    if not known:
        return rules
    errors: list[dict[str, str]] = []
    disclaimers = []
    for i, disclaimer in enumerate(rules.required_disclaimers):
        unknown = [t for t in disclaimer.topics if t.strip().casefold() not in known]
        if unknown:
            errors.append(
                {
                    "field": f"quality_rules.required_disclaimers.{i}.topics",
                    "error": "not a topic of this dataset's taxonomy: "
                    + ", ".join(repr(t) for t in unknown),
                    "type": "unknown_topic",
                }
            )
        topics = [known.get(t.strip().casefold(), t) for t in disclaimer.topics]
        disclaimers.append(disclaimer.model_copy(update={"topics": topics}))
    if errors:
        raise ValidationError(
            "a required disclaimer names a topic the taxonomy does not have",
            {"errors": errors, "topics": sorted(known.values())},
        )
    return rules.model_copy(update={"required_disclaimers": disclaimers})
