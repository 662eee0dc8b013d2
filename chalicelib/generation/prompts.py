"""Prompt templates: placeholder discovery, validation and parameter injection."""

from __future__ import annotations

import hashlib
import string
from collections.abc import Mapping, Sequence

from chalicelib.domain.errors import PromptTemplateError
from chalicelib.domain.models import Chunk, Conversation, Dataset, PromptTemplate
from chalicelib.planning.seed_templates import ALLOWED_PLACEHOLDERS

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


def choose_template(
    templates: Sequence[PromptTemplate], conversation: Conversation
) -> PromptTemplate:
    """Weighted A/B choice among active templates of the tier, stable per conversation."""
    candidates = [
        t
        for t in templates
        if t.is_active
        and t.tier == conversation.tier
        and t.weight > 0
        and (not t.applicable_personas or conversation.persona in t.applicable_personas)
        and (not t.applicable_emotions or conversation.emotion in t.applicable_emotions)
    ]
    if not candidates:
        raise PromptTemplateError(
            f"no active template for tier '{conversation.tier.value}'",
            {"tier": conversation.tier.value},
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
