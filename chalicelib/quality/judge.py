"""The LLM judge: a rubric verdict per conversation, from a small Claude model.

The request carries the conversation's plan (persona, emotion, topic... with the
taxonomy's descriptions), its source excerpt and the business's rules, and forces the
``record_judgement`` tool, whose schema is the rubric: one 1-10 score and one reason per
dimension. ``scoring.judge_check`` turns the verdict into a check and blends it into the
score. Verdicts are cached on a hash of everything the judge sees (``content_hash``), so
re-validating an unchanged conversation costs nothing.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from chalicelib.domain.errors import MalformedResponseError
from chalicelib.domain.models import (
    Conversation,
    Dataset,
    JudgeDimension,
    JudgeResult,
    QualityRules,
    Turn,
)
from chalicelib.llm.client import LLMRequest, LLMResponse

RUBRIC_VERSION = "rubric-2"
JUDGE_TOOL_NAME = "record_judgement"
JUDGE_MAX_TOKENS = 900
# Output tokens a verdict takes (five short reasons and a summary), for estimates.
JUDGE_OUTPUT_TOKENS = 350

DIMENSIONS: dict[str, str] = {
    "persona_fidelity": "the client sounds like the planned persona throughout (situation, "
    "vocabulary, concerns) and never like the business",
    "emotional_realism": "the client's emotion is shown naturally and evolves believably; the "
    "assistant acknowledges it without being formulaic",
    "helpfulness": "the assistant answers what was asked with concrete, correct, actionable "
    "help in the planned tone, and the conversation reaches a natural close",
    "faithfulness": "every fact, figure, name and policy the assistant states comes from the "
    "source excerpt or what the client said (without an excerpt: nothing invented about the "
    "business); no contradictions",
    "brand_safety": "nothing a regulated business must never say (guaranteed returns, no risk, "
    "medical or legal certainty), no AI self-references or refusals, no generator chatter or "
    "placeholders, the business's rules and brand terms respected, one language throughout",
}

JUDGE_TOOL: dict[str, Any] = {
    "name": JUDGE_TOOL_NAME,
    "description": "Record the rubric review of one training conversation.",
    "input_schema": {
        "type": "object",
        "properties": {
            "dimensions": {
                "type": "object",
                "properties": {
                    name: {
                        "type": "object",
                        "description": meaning,
                        "properties": {
                            "score": {"type": "integer", "minimum": 1, "maximum": 10},
                            "reason": {
                                "type": "string",
                                "description": "one sentence; name the turn when it matters",
                            },
                        },
                        "required": ["score", "reason"],
                    }
                    for name, meaning in DIMENSIONS.items()
                },
                "required": list(DIMENSIONS),
            },
            "summary": {"type": "string", "description": "one sentence for the reviewer"},
        },
        "required": ["dimensions", "summary"],
    },
}

JUDGE_SYSTEM = (
    "You review multi-turn conversations that will fine-tune a business's customer-facing "
    "assistant. Score each rubric dimension from 1 to 10: 9-10 ship as is, 7-8 minor issues, "
    "4-6 needs editing, 1-3 must not be used as training data. Be strict and specific: a "
    "single turn that breaks character as an AI, promises a guaranteed outcome, invents a "
    "business fact, swaps roles, switches language or leaks generator text makes its "
    "dimension 1-3. Give the turn number in the reason. Record your review with the "
    "record_judgement tool.\n\nDimensions:\n"
    + "\n".join(f"- {name}: {meaning}" for name, meaning in DIMENSIONS.items())
)


@dataclass(frozen=True)
class JudgeInput:
    """Everything the judge sees (and the cache key is built from)."""

    conversation: Conversation
    turns: Sequence[Turn]
    business_name: str
    persona_description: str = ""
    emotion_description: str = ""
    topic_description: str = ""
    chunk_text: str | None = None
    rules: QualityRules | None = None

    @classmethod
    def of(
        cls,
        conversation: Conversation,
        turns: Sequence[Turn],
        dataset: Dataset,
        chunk_text: str | None = None,
    ) -> JudgeInput:
        t = dataset.taxonomy
        return cls(
            conversation=conversation,
            turns=turns,
            business_name=dataset.business_name or dataset.name,
            persona_description=t.describe("personas", conversation.persona),
            emotion_description=t.describe("emotions", conversation.emotion),
            topic_description=t.describe("topics", conversation.topic),
            chunk_text=chunk_text,
            rules=dataset.quality_rules,
        )


def _plan_lines(data: JudgeInput) -> list[str]:
    c = data.conversation

    def line(label: str, value: str | None, description: str = "") -> str | None:
        if not value:
            return None
        return f"{label}: {value}" + (f" ({description})" if description else "")

    lines = [
        line("Business", data.business_name),
        line("Persona", c.persona, data.persona_description),
        line("Emotion", c.emotion, data.emotion_description),
        line("Topic", c.topic, data.topic_description),
        line("Intent", c.intent),
        line("Tone", c.tone),
        line("Tier", c.tier.value),
        line("Emotional arc", c.arc),
        line("Scenario", c.scenario),
        line("Edge case", c.edge_case_type),
    ]
    return [x for x in lines if x]


def _rules_lines(rules: QualityRules | None) -> list[str]:
    if rules is None or rules.is_empty():
        return []
    out = ["Business rules:"]
    if rules.banned_phrases:
        out.append("- never say: " + "; ".join(f'"{p}"' for p in rules.banned_phrases[:40]))
    for d in rules.required_disclaimers[:20]:
        where = ", ".join(d.topics) if d.topics else "every topic"
        out.append(f'- required disclaimer for {where}: "{d.text}"')
    if rules.brand_terms:
        out.append("- brand spelling: " + ", ".join(b.term for b in rules.brand_terms[:40]))
    return out


def judge_prompt(data: JudgeInput) -> str:
    parts = ["Plan:", *_plan_lines(data)]
    if data.chunk_text:
        parts += ["", "Source excerpt:", data.chunk_text]
    rules = _rules_lines(data.rules)
    if rules:
        parts += ["", *rules]
    transcript = "\n\n".join(
        f"[turn {t.turn_number}] {t.role.upper()}: {t.content}" for t in data.turns
    )
    parts += ["", "Conversation:", transcript]
    return "\n".join(parts)


def judge_request(data: JudgeInput, model: str) -> LLMRequest:
    return LLMRequest(
        model=model,
        system=JUDGE_SYSTEM,
        prompt=judge_prompt(data),
        max_tokens=JUDGE_MAX_TOKENS,
        temperature=0.0,
        tool=JUDGE_TOOL,
    )


def content_hash(data: JudgeInput, model: str) -> str:
    """A verdict is reusable exactly when everything the judge sees is the same."""
    doc = {
        "rubric": RUBRIC_VERSION,
        "model": model,
        "prompt": judge_prompt(data),
    }
    return hashlib.sha256(json.dumps(doc, sort_keys=True).encode()).hexdigest()


def parse_judgement(response: LLMResponse) -> tuple[dict[str, JudgeDimension], str]:
    """The rubric scores from a ``record_judgement`` call; malformed answers raise."""
    for block in response.content:
        if block.get("type") == "tool_use" and block.get("name") == JUDGE_TOOL_NAME:
            data = block.get("input") or {}
            raw = data.get("dimensions")
            if not isinstance(raw, dict):
                raise MalformedResponseError("the judge gave no rubric dimensions")
            dims: dict[str, JudgeDimension] = {}
            for name in DIMENSIONS:
                item = raw.get(name)
                if not isinstance(item, dict):
                    continue
                try:
                    score = float(item["score"])
                except (KeyError, TypeError, ValueError):
                    continue
                dims[name] = JudgeDimension(
                    score=max(1.0, min(10.0, score)), reason=str(item.get("reason", ""))[:500]
                )
            if not dims:
                raise MalformedResponseError("the judge scored none of the rubric's dimensions")
            return dims, str(data.get("summary", ""))[:500]
    raise MalformedResponseError("the judge did not call record_judgement")


def verdict(
    dims: dict[str, JudgeDimension],
    summary: str,
    *,
    model: str,
    digest: str,
    simulated: bool,
    cost_usd: float,
) -> JudgeResult:
    overall = round(sum(d.score for d in dims.values()) / len(dims), 2) if dims else None
    return JudgeResult(
        dimensions=dims,
        overall=overall,
        summary=summary,
        model=model,
        rubric_version=RUBRIC_VERSION,
        content_hash=digest,
        simulated=simulated,
        cost_usd=round(cost_usd, 8),
    )
