"""Review: detail view, approve/reject with optimistic locking, edits, delete, bulk."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from chalicelib.domain.errors import (
    ConflictError,
    DomainError,
    NotFoundError,
    ValidationError,
)
from chalicelib.domain.models import (
    REVIEWABLE_STATUSES,
    Conversation,
    ConversationStatus,
    Dataset,
    utcnow,
)
from chalicelib.review.audit import AuditLog, snapshot
from chalicelib.store.repositories import (
    DynamoAuditRepository,
    DynamoConversationRepository,
    DynamoDatasetRepository,
    DynamoGenerationLogRepository,
)

EDITABLE_METADATA = ("persona", "emotion", "topic", "intent", "tone", "tier", "title")
REVIEW_TARGETS = {
    ConversationStatus.APPROVED,
    ConversationStatus.REJECTED,
    ConversationStatus.GENERATED,  # undo a review
}


class ReviewService:
    def __init__(
        self,
        datasets: DynamoDatasetRepository,
        conversations: DynamoConversationRepository,
        logs: DynamoGenerationLogRepository,
        audit_repo: DynamoAuditRepository,
        audit: AuditLog,
    ) -> None:
        self.datasets = datasets
        self.conversations = conversations
        self.logs = logs
        self.audit_repo = audit_repo
        self.audit = audit

    # ------------------------------------------------------------------ detail
    def detail(self, tenant_id: str, conversation_id: str) -> dict[str, Any]:
        cwt = self.conversations.get_with_turns(tenant_id, conversation_id)
        logs = self.logs.list_for_conversation(tenant_id, conversation_id)
        history = self.audit_repo.query(tenant_id, entity_id=conversation_id, newest_first=False)
        return {
            "conversation": cwt.conversation,
            "turns": cwt.turns,
            "generation_logs": [
                {
                    "log_id": entry.log_id,
                    "run_id": entry.run_id,
                    "created_at": entry.created_at,
                    "model": entry.model,
                    "template_id": entry.template_id,
                    "template_version": entry.template_version,
                    "input_tokens": entry.input_tokens,
                    "output_tokens": entry.output_tokens,
                    "cache_read_input_tokens": entry.cache_read_input_tokens,
                    "cache_creation_input_tokens": entry.cache_creation_input_tokens,
                    "cost_usd": entry.cost_usd,
                    "duration_ms": entry.duration_ms,
                    "error_message": entry.error_message,
                }
                for entry in logs
            ],
            "audit": history,
        }

    # ------------------------------------------------------------------ single edits
    def _apply_changes(
        self,
        conversation: Conversation,
        actor: str,
        changes: dict[str, Any],
        dataset: Dataset | None,
    ) -> Conversation:
        update: dict[str, Any] = {}
        status = changes.get("status")
        if conversation.status == ConversationStatus.GENERATING:
            raise ConflictError("the conversation is being generated; wait for it to finish")
        if status is not None:
            status = ConversationStatus(status)
            if status not in REVIEW_TARGETS:
                raise ValidationError(
                    f"status can be set to approved, rejected or generated, not '{status.value}'"
                )
            if conversation.status not in REVIEWABLE_STATUSES:
                raise ConflictError(
                    f"a conversation that is {conversation.status.value} cannot be reviewed; generate it first"
                )
            now = utcnow()
            update.update({"status": status, "reviewed_by": actor, "reviewed_at": now})
            if status == ConversationStatus.APPROVED:
                update.update({"approved_by": actor, "approved_at": now})
            else:
                update.update({"approved_by": None, "approved_at": None})
        if "reviewer_notes" in changes and changes["reviewer_notes"] is not None:
            update["reviewer_notes"] = changes["reviewer_notes"]
        for name in EDITABLE_METADATA:
            value = changes.get(name)
            if value is None:
                continue
            if dataset is not None and name in ("persona", "emotion", "topic", "intent", "tone"):
                allowed = dataset.taxonomy.names(name + "s")
                if allowed and value not in allowed:
                    raise ValidationError(
                        f"'{value}' is not a {name} of this dataset's taxonomy",
                        {"field": name, "allowed": allowed},
                    )
            update[name] = value
        if not update:
            raise ValidationError("nothing to change")
        return conversation.model_copy(update=update)

    def update(
        self, tenant_id: str, actor: str, conversation_id: str, changes: dict[str, Any]
    ) -> Conversation:
        expected = changes.get("version")
        if expected is None:
            raise ValidationError("version is required (optimistic locking)", {"field": "version"})
        current = self.conversations.get(tenant_id, conversation_id)
        dataset = self.datasets.get(tenant_id, current.dataset_id)
        if current.version != expected:
            from chalicelib.domain.errors import StaleVersionError

            raise StaleVersionError(
                "the conversation was changed by someone else; reload and retry",
                {"current": current.model_dump(mode="json"), "your_version": expected},
            )
        changed = self._apply_changes(current, actor, changes, dataset)
        saved = self.conversations.save_reviewed(changed, expected)
        action = (
            {
                ConversationStatus.APPROVED: "conversation.approve",
                ConversationStatus.REJECTED: "conversation.reject",
                ConversationStatus.GENERATED: "conversation.unreview",
            }.get(ConversationStatus(changes["status"]))
            if changes.get("status")
            else "conversation.edit"
        )
        self.audit.record(
            tenant_id,
            actor,
            action or "conversation.edit",
            "conversation",
            conversation_id,
            before=snapshot(current),
            after=snapshot(saved),
            reviewer_notes=changes.get("reviewer_notes"),
        )
        return saved

    def delete(self, tenant_id: str, actor: str, conversation_id: str) -> None:
        current = self.conversations.get(tenant_id, conversation_id)
        self.conversations.soft_delete(current)
        self.audit.record(
            tenant_id,
            actor,
            "conversation.delete",
            "conversation",
            conversation_id,
            before=snapshot(current),
            after=None,
        )

    # ------------------------------------------------------------------ bulk
    def bulk_review(
        self,
        tenant_id: str,
        actor: str,
        action: str,
        ids: Sequence[str],
        reviewer_notes: str | None,
    ) -> dict[str, Any]:
        """approve | reject | delete for many ids; each id is all-or-nothing."""
        found = self.conversations.get_many(tenant_id, ids)
        succeeded: list[str] = []
        failed: list[dict[str, Any]] = []
        datasets_touched: set[str] = set()
        status = {"approve": "approved", "reject": "rejected"}.get(action)
        for cid in dict.fromkeys(ids):
            current = found.get(cid)
            if current is None:
                failed.append(
                    {"id": cid, "error": {"code": "not_found", "message": "conversation not found"}}
                )
                continue
            try:
                if action == "delete":
                    self.conversations.soft_delete(current)
                    after = None
                    audit_action = "conversation.delete"
                else:
                    changes: dict[str, Any] = {"status": status}
                    if reviewer_notes is not None:
                        changes["reviewer_notes"] = reviewer_notes
                    changed = self._apply_changes(current, actor, changes, None)
                    saved = self.conversations.save_reviewed(changed, current.version, bump=False)
                    after = snapshot(saved)
                    audit_action = f"conversation.{action}"
            except DomainError as e:
                failed.append({"id": cid, "error": {"code": e.code, "message": e.message}})
                continue
            datasets_touched.add(current.dataset_id)
            succeeded.append(cid)
            self.audit.record(
                tenant_id,
                actor,
                audit_action,
                "conversation",
                cid,
                before=snapshot(current),
                after=after,
                bulk=True,
                reviewer_notes=reviewer_notes,
            )
        for dataset_id in datasets_touched:
            self.datasets.bump_conversation_seq(tenant_id, dataset_id)
        return {"action": action, "succeeded": succeeded, "failed": failed}

    def reset_for_regeneration(
        self, tenant_id: str, actor: str, ids: Sequence[str]
    ) -> tuple[list[Conversation], list[dict[str, Any]]]:
        found = self.conversations.get_many(tenant_id, ids)
        ready: list[Conversation] = []
        failed: list[dict[str, Any]] = []
        for cid in dict.fromkeys(ids):
            current = found.get(cid)
            if current is None:
                failed.append(
                    {"id": cid, "error": {"code": "not_found", "message": "conversation not found"}}
                )
                continue
            if current.status == ConversationStatus.NOT_GENERATED:
                ready.append(current)
                continue
            try:
                reset = self.conversations.reset_for_regeneration(current)
            except (ConflictError, NotFoundError) as e:
                failed.append({"id": cid, "error": {"code": e.code, "message": e.message}})
                continue
            self.audit.record(
                tenant_id,
                actor,
                "conversation.regenerate",
                "conversation",
                cid,
                before=snapshot(current),
                after=snapshot(reset),
            )
            ready.append(reset)
        return ready, failed
