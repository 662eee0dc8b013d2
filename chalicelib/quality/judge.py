"""Optional LLM-as-judge score (1-10) for a conversation, with its own cost.

The heuristic score stays the composite quality score; the judge's score is kept
beside it (``QualityReport.judge_score``) with what the call cost, and the call is
logged and billed to the dataset like any other.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from chalicelib.domain.errors import MalformedResponseError
from chalicelib.domain.models import Conversation, Turn
from chalicelib.generation.llm_client import LLMClient, LLMRequest, LLMResponse

JUDGE_TOOL_NAME = "record_judgement"
JUDGE_TOOL: dict[str, Any] = {
    "name": JUDGE_TOOL_NAME,
    "description": "Record the review of one training conversation.",
    "input_schema": {
        "type": "object",
        "properties": {
            "score": {"type": "integer", "minimum": 1, "maximum": 10},
            "reasons": {"type": "string"},
        },
        "required": ["score", "reasons"],
    },
}
JUDGE_SYSTEM = (
    "You review multi-turn training conversations for fine-tuning a business's assistant. "
    "Score 1-10: realism of the client, fidelity to the persona, emotion and topic, accuracy "
    "and helpfulness of the assistant, natural flow. Be strict; 8+ only for conversations "
    "you would ship as training data. Call the record_judgement tool."
)


@dataclass
class Judgement:
    score: float
    reasons: str
    response: LLMResponse


def judge_request(conversation: Conversation, turns: list[Turn], model: str) -> LLMRequest:
    transcript = "\n".join(f"{t.role.upper()}: {t.content}" for t in turns)
    prompt = (
        f"Persona: {conversation.persona}\nEmotion: {conversation.emotion}\n"
        f"Topic: {conversation.topic}\nIntent: {conversation.intent}\nTone: {conversation.tone}\n"
        f"Tier: {conversation.tier.value}\n\nConversation:\n{transcript}"
    )
    request = LLMRequest(
        model=model, system=JUDGE_SYSTEM, prompt=prompt, max_tokens=400, temperature=0.0
    )
    return request


def judge_params(request: LLMRequest) -> dict[str, Any]:
    params = request.params()
    params["tools"] = [JUDGE_TOOL]
    params["tool_choice"] = {"type": "tool", "name": JUDGE_TOOL_NAME}
    return params


def parse_judgement(response: LLMResponse) -> tuple[float, str]:
    for block in response.content:
        if block.get("type") == "tool_use" and block.get("name") == JUDGE_TOOL_NAME:
            data = block.get("input") or {}
            try:
                score = float(data["score"])
            except (KeyError, TypeError, ValueError) as e:
                raise MalformedResponseError("the judge gave no score") from e
            return max(1.0, min(10.0, score)), str(data.get("reasons", ""))
    raise MalformedResponseError("the judge did not call record_judgement")


def run_judge(
    llm: LLMClient, conversation: Conversation, turns: list[Turn], model: str
) -> Judgement:
    request = judge_request(conversation, turns, model)
    response = llm.create_raw(request, judge_params(request))  # type: ignore[attr-defined]
    score, reasons = parse_judgement(response)
    return Judgement(score, reasons, response)
