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
) -> Conversation:
    current: Conversation = conversations.get(tenant_id, conversation_id)
    turns = conversations.get_turns(tenant_id, conversation_id)
    if not turns:
        raise ConflictError("the conversation has no turns yet; generate it first")
    dataset = datasets.get(tenant_id, current.dataset_id)
    text = conversation_text(turns)
    duplicate = find_duplicate(tenant_id, current.dataset_id, conversation_id, text)
    report = score_conversation(current, turns, dataset.taxonomy, duplicate_of=duplicate)
    updated = current.model_copy(update={"quality": report, "quality_score": report.score})
    conversations.save_quality(updated)
    audit.record(
        tenant_id,
        actor,
        "conversation.validate",
        "conversation",
        conversation_id,
        before={"quality_score": current.quality_score},
        after={"quality_score": report.score},
    )
    return updated
