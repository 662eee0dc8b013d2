"""Prompt templates: placeholder discovery, validation and parameter injection."""

from __future__ import annotations

import hashlib
import string
from collections.abc import Iterable, Mapping, Sequence
from functools import lru_cache
from typing import Any

from chalicelib.domain.errors import PromptTemplateError
from chalicelib.domain.models import Chunk, Conversation, Dataset, PromptTemplate, Tier
from chalicelib.planning.seed_templates import ALLOWED_PLACEHOLDERS, EXCERPT_PLACEHOLDERS

# Every placeholder a template may use (one list, shared with the seed templates).
# Anything else is a clear error, not a silent "{x}".
ALLOWED_PARAMETERS: frozenset[str] = ALLOWED_PLACEHOLDERS


def extract_parameters(text: str) -> list[str]:
    """Placeholders used by ``text`` in order of first use; malformed syntax raises."""
    names: list[str] = []
    try:
        parsed = list(string.Formatter().parse(text))
    except ValueError as e:
        raise PromptTemplateError(
            f"template text is not valid: {e} (write literal braces as '{{{{' and '}}}}')"
        ) from e
    for _literal, field, spec, conversion in parsed:
        if field is None:
            continue
        if field == "" or field.isdigit():
            raise PromptTemplateError("positional placeholders like '{}' are not allowed")
        if spec or conversion:
            raise PromptTemplateError(f"placeholder '{{{field}}}' must not carry a format spec")
        if field not in names:
            names.append(field)
    return names


def validate_template_text(text: str) -> list[str]:
    names = extract_parameters(text)
    unknown = sorted(set(names) - ALLOWED_PARAMETERS)
    if unknown:
        raise PromptTemplateError(
            f"unknown placeholder(s): {', '.join('{' + n + '}' for n in unknown)}",
            {"unknown": unknown, "allowed": sorted(ALLOWED_PARAMETERS)},
        )
    if not text.strip():
        raise PromptTemplateError("template text must not be empty")
    return names


def render_prompt(text: str, values: Mapping[str, str]) -> str:
    names = validate_template_text(text)
    missing = [n for n in names if values.get(n) in (None, "")]
    if missing:
        raise PromptTemplateError(
            f"no value for placeholder(s): {', '.join('{' + n + '}' for n in missing)}",
            {"missing": missing},
        )
    return text.format_map({n: values[n] for n in names})


def turn_target(conversation: Conversation) -> str:
    # 8-16 turns is the optimal band; vary it deterministically per conversation.
    digest = hashlib.sha256(conversation.conversation_id.encode()).digest()
    return str(10 + 2 * (digest[0] % 3))


def build_parameters(
    conversation: Conversation, dataset: Dataset, chunk: Chunk | None
) -> dict[str, str]:
    tax = dataset.taxonomy
    values = {
        "persona": conversation.persona,
        "persona_description": tax.describe("personas", conversation.persona),
        "emotion": conversation.emotion,
        "emotion_description": tax.describe("emotions", conversation.emotion),
        "topic": conversation.topic,
        "topic_description": tax.describe("topics", conversation.topic),
        "intent": conversation.intent,
        "intent_description": tax.describe("intents", conversation.intent),
        "tone": conversation.tone,
        "tone_description": tax.describe("tones", conversation.tone),
        "tier": conversation.tier.value,
        "arc": conversation.arc or "",
        "scenario": conversation.scenario or "",
        "edge_case_type": conversation.edge_case_type or "",
        "chunk": chunk.text if chunk else "",
        "document_title": (chunk.document_title or chunk.document_id) if chunk else "",
        "turn_target": turn_target(conversation),
        "business_name": dataset.business_name or dataset.name,
    }
    # Descriptions are optional in a taxonomy; fall back to the name so templates render.
    for dim in ("persona", "emotion", "topic", "intent", "tone"):
        if not values[f"{dim}_description"]:
            values[f"{dim}_description"] = values[dim]
    return values


@lru_cache(maxsize=256)
def _placeholders_of(text: str) -> frozenset[str] | None:
    try:
        return frozenset(extract_parameters(text))
    except PromptTemplateError:
        return None


def template_needs(template: PromptTemplate) -> set[str]:
    """The placeholders a template needs a value for."""
    found = _placeholders_of(template.text)
    return set(found) if found is not None else set(template.parameters)


def renders_with(template: PromptTemplate, values: Mapping[str, str]) -> bool:
    return all(values.get(name) not in (None, "") for name in template_needs(template))


def applicable_templates(
    templates: Sequence[PromptTemplate], conversation: Conversation
) -> list[PromptTemplate]:
    """Active templates of the conversation's tier that apply to its persona/emotion."""
    return [
        t
        for t in templates
        if t.is_active
        and t.tier == conversation.tier
        and t.weight > 0
        and (not t.applicable_personas or conversation.persona in t.applicable_personas)
        and (not t.applicable_emotions or conversation.emotion in t.applicable_emotions)
    ]


def choose_template(
    templates: Sequence[PromptTemplate],
    conversation: Conversation,
    values: Mapping[str, str] | None = None,
) -> PromptTemplate:
    """Weighted A/B choice among active templates of the tier, stable per conversation.

    With ``values``, only templates whose every placeholder has a value take part: a
    scenario without a document excerpt uses a template that needs none, and one with
    an excerpt uses a template that quotes it."""
    applicable = applicable_templates(templates, conversation)
    if not applicable:
        raise PromptTemplateError(
            f"no active template for tier '{conversation.tier.value}'",
            {"tier": conversation.tier.value},
        )
    candidates = applicable
    if values is not None:
        candidates = [t for t in applicable if renders_with(t, values)]
        if any(values.get(n) for n in EXCERPT_PLACEHOLDERS):
            # A conversation with a document excerpt uses a template that uses it; the
            # excerpt-free ones are for conversations without one.
            grounded = [t for t in candidates if template_needs(t) & EXCERPT_PLACEHOLDERS]
            candidates = grounded or candidates
        if not candidates:
            missing = sorted(
                {n for t in applicable for n in template_needs(t) if values.get(n) in (None, "")}
            )
            raise PromptTemplateError(
                f"no active '{conversation.tier.value}' template can be filled for this "
                f"conversation: no value for {', '.join('{' + n + '}' for n in missing)}",
                {"tier": conversation.tier.value, "missing": missing},
            )
    candidates.sort(key=lambda t: t.template_id)
    total = sum(t.weight for t in candidates)
    digest = hashlib.sha256(conversation.conversation_id.encode()).digest()
    point = int.from_bytes(digest[:8], "big") / 2**64 * total
    for t in candidates:
        point -= t.weight
        if point < 0:
            return t
    return candidates[-1]


def generation_blockers(
    templates: Sequence[PromptTemplate],
    conversations: Iterable[Conversation],
    dataset: Dataset,
    chunks: Mapping[str, Chunk],
) -> list[dict[str, Any]]:
    """Per tier: the conversations that no active template could be filled for (a plan
    holding any of them would fail at generation), with the reason."""
    blocked: dict[str, dict[str, Any]] = {}
    for conversation in conversations:
        chunk = chunks.get(conversation.chunk_id) if conversation.chunk_id else None
        values = build_parameters(conversation, dataset, chunk)
        try:
            choose_template(templates, conversation, values)
        except PromptTemplateError as e:
            row = blocked.setdefault(
                conversation.tier.value,
                {"tier": conversation.tier.value, "count": 0, "reason": e.message},
            )
            row["count"] += 1
    return list(blocked.values())


def excerpt_free_templates(
    templates: Sequence[PromptTemplate], tier: Tier = Tier.SCENARIO
) -> list[PromptTemplate]:
    """Active templates of the tier that need no document excerpt."""
    return [
        t
        for t in templates
        if t.is_active
        and t.tier == tier
        and t.weight > 0
        and not template_needs(t) & EXCERPT_PLACEHOLDERS
    ]
