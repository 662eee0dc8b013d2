"""Re-running quality checks on a stored conversation (POST .../validate)."""

from __future__ import annotations

from typing import Any

from chalicelib.domain.errors import ConflictError
from chalicelib.domain.models import Conversation
from chalicelib.quality.duplicates import conversation_text
from chalicelib.quality.scoring import score_conversation
from chalicelib.review.audit import AuditLog


def revalidate(
    tenant_id: str,
    actor: str,
    conversation_id: str,
    datasets: Any,
    conversations: Any,
    find_duplicate: Any,
    audit: AuditLog,
    judge: Any = None,  # callable(conversation, turns, dataset) -> (score, reasons, cost)
) -> Conversation:
    current: Conversation = conversations.get(tenant_id, conversation_id)
    turns = conversations.get_turns(tenant_id, conversation_id)
    if not turns:
        raise ConflictError("the conversation has no turns yet; generate it first")
    dataset = datasets.get(tenant_id, current.dataset_id)
    text = conversation_text(turns)
    duplicate = find_duplicate(tenant_id, current.dataset_id, conversation_id, text)
    report = score_conversation(current, turns, dataset.taxonomy, duplicate_of=duplicate)
    judged: dict[str, Any] = {}
    if judge is not None:
        score, reasons, cost = judge(current, turns, dataset)
        report = report.model_copy(update={"judge_score": score, "judge_cost_usd": cost})
        judged = {"judge_score": score, "judge_reasons": reasons, "judge_cost_usd": cost}
    updated = current.model_copy(update={"quality": report, "quality_score": report.score})
    conversations.save_quality(updated)
    audit.record(
        tenant_id,
        actor,
        "conversation.validate",
        "conversation",
        conversation_id,
        before={"quality_score": current.quality_score},
        after={"quality_score": report.score, **judged},
    )
    return updated
