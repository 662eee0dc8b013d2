"""Re-scoring a stored conversation (``POST /api/conversations/{id}/validate``)."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from chalicelib.audit.log import AuditLog
from chalicelib.domain.dataset_rules import require_writable
from chalicelib.domain.errors import ConflictError
from chalicelib.domain.models import (
    Chunk,
    Conversation,
    ConversationStatus,
    Dataset,
    JudgeResult,
    utcnow,
)
from chalicelib.quality import diversity
from chalicelib.quality.calibration import calibrate
from chalicelib.quality.duplicates import conversation_text
from chalicelib.quality.judging import JudgeService
from chalicelib.quality.scoring import ScoringContext, score_conversation
from chalicelib.quality.stats import quality_stats

DuplicateFinder = Callable[[str, str, str, str], tuple[str, float] | None]


class QualityService:
    def __init__(
        self,
        datasets: Any,  # DatasetRepository: get, list_chunks
        conversations: Any,  # ConversationRepository: get, get_turns(_many), save_quality
        find_duplicate: DuplicateFinder,
        audit: AuditLog,
        judge: JudgeService | None,
        index: Any = None,  # ConversationIndex: the dataset's conversations, as listed
    ) -> None:
        self.datasets = datasets
        self.conversations = conversations
        self.find_duplicate = find_duplicate
        self.audit = audit
        self.judge = judge
        self.index = index
        self._diversity: dict[tuple[str, str], tuple[int, dict[str, Any]]] = {}

    def _chunk_text(self, dataset: Dataset, conversation: Conversation) -> str | None:
        if not conversation.chunk_id:
            return None
        chunks: list[Chunk] = self.datasets.list_chunks(conversation.tenant_id, dataset.dataset_id)
        return next((c.text for c in chunks if c.chunk_id == conversation.chunk_id), None)

    def revalidate(
        self, tenant_id: str, actor: str, conversation_id: str, *, judge: bool = False
    ) -> Conversation:
        """Rerun every check. With ``judge`` the LLM judge answers too (from its cache when
        nothing it sees has changed); without, an earlier verdict on the same content is
        kept."""
        current: Conversation = self.conversations.get(tenant_id, conversation_id)
        turns = self.conversations.get_turns(tenant_id, conversation_id)
        if not turns:
            raise ConflictError("the conversation has no turns yet; generate it first")
        dataset: Dataset = self.datasets.get(tenant_id, current.dataset_id)
        require_writable(dataset)  # a re-score rewrites the stored report
        chunk_text = self._chunk_text(dataset, current)
        duplicate = self.find_duplicate(
            tenant_id, current.dataset_id, conversation_id, conversation_text(turns)
        )
        verdict: JudgeResult | None = None
        if self.judge is not None:
            if judge:
                verdict = self.judge.judge(current, turns, dataset, chunk_text)
            else:
                _, digest = self.judge.prepare(current, turns, dataset, chunk_text)
                verdict = self.judge.cached(tenant_id, digest)
        report = score_conversation(
            current,
            turns,
            duplicate_of=duplicate,
            context=ScoringContext.of(dataset, chunk_text),
            judge=verdict,
        )
        updated = current.model_copy(update={"quality": report, "quality_score": report.score})
        self.conversations.save_quality(updated)
        judged: dict[str, Any] = {}
        if verdict is not None and judge:
            judged = {
                "judge_score": verdict.overall,
                "judge_cost_usd": verdict.cost_usd,
                "judge_cached": verdict.cached,
                "judge_error": verdict.error,
            }
        self.audit.record(
            tenant_id,
            actor,
            "conversation.validate",
            "conversation",
            conversation_id,
            before={"quality_score": current.quality_score},
            after={"quality_score": report.score, "reasons": report.reasons[:5], **judged},
        )
        return updated

    def _generated(self, tenant_id: str, dataset_id: str) -> list[Conversation]:
        self.datasets.get(tenant_id, dataset_id)  # 404 for an unknown or foreign dataset
        return [
            c
            for c in self.index.conversations(tenant_id, dataset_id)
            if c.turn_count and c.status not in (ConversationStatus.NOT_GENERATED,)
        ]

    def stats(self, tenant_id: str, dataset_id: str | None) -> dict[str, Any]:
        """Score histogram, bands and flags of a dataset, or of all the tenant's."""
        return quality_stats(self.index.tenant_conversations(tenant_id, dataset_id))

    def diversity(self, tenant_id: str, dataset_id: str) -> dict[str, Any]:
        """The dataset's diversity report, recomputed when its conversations changed."""
        generation = self.index.refresh(tenant_id, dataset_id).generation
        cached = self._diversity.get((tenant_id, dataset_id))
        if cached is not None and cached[0] == generation:
            return cached[1]
        started = time.monotonic()
        conversations = self._generated(tenant_id, dataset_id)
        turns = self.conversations.get_turns_many(
            tenant_id, [c.conversation_id for c in conversations]
        )
        items = [
            diversity.Item(c, turns[c.conversation_id])
            for c in conversations
            if turns.get(c.conversation_id)
        ]
        report = {
            "dataset_id": dataset_id,
            **diversity.analyze(items),
            "computed_at": utcnow(),
            "seconds": round(time.monotonic() - started, 3),
        }
        self._diversity[(tenant_id, dataset_id)] = (generation, report)
        return report

    def calibration(self, tenant_id: str, dataset_id: str) -> dict[str, Any]:
        return {
            "dataset_id": dataset_id,
            **calibrate(self._generated(tenant_id, dataset_id)),
        }
