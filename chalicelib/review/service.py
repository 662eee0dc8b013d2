"""Review: detail view, approve/reject with optimistic locking, edits, delete, bulk."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from chalicelib.domain.errors import (
    ConflictError,
    DomainError,
    NotFoundError,
    StaleVersionError,
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
from chalicelib.review.listing import ConversationIndex
from chalicelib.store.repositories import (
    DynamoAuditRepository,
    DynamoConversationRepository,
    DynamoDatasetRepository,
    DynamoGenerationLogRepository,
    ReviewFailure,
    ReviewWrite,
)

EDITABLE_METADATA = ("persona", "emotion", "topic", "intent", "tone", "tier", "title")


@dataclass
class BulkWrites:
    writes: list[ReviewWrite] = field(default_factory=list)
    errors: dict[str, DomainError] = field(default_factory=dict)  # refused before writing


def public_state(c: Conversation) -> dict[str, Any]:
    """A conversation as the API shows it (same shape as ``views.conversation_summary``),
    for the ``current`` of a 409."""
    data = c.model_dump(mode="json", exclude={"tenant_id", "quality"})
    data["flagged"] = c.flagged
    return data


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
        index: ConversationIndex | None = None,
    ) -> None:
        self.datasets = datasets
        self.conversations = conversations
        self.logs = logs
        self.audit_repo = audit_repo
        self.audit = audit
        self.index = index

    def _changed(
        self,
        tenant_id: str,
        dataset_id: str,
        written: list[tuple[str, Conversation | None]],
    ) -> None:
        """Tell list caches (one bump per dataset) and write through to this container's."""
        seq = self.datasets.bump_conversation_seq(tenant_id, dataset_id)
        if self.index is not None:
            self.index.apply_written(tenant_id, dataset_id, seq, written)

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
                    "billing": entry.billing,
                    "attempt": entry.attempt,
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

    @staticmethod
    def _next(changed: Conversation, current: Conversation) -> Conversation:
        return changed.model_copy(update={"version": current.version + 1, "updated_at": utcnow()})

    @staticmethod
    def _failure_error(cid: str, failure: ReviewFailure, your_version: int) -> DomainError:
        if failure.reason == "not_found" or failure.current is None:
            return NotFoundError("conversation", cid)
        if failure.reason == "generating":
            return ConflictError("the conversation is being generated; wait for it to finish")
        return StaleVersionError(
            "the conversation was changed by someone else; reload and retry",
            {"current": public_state(failure.current), "your_version": your_version},
        )

    def update(
        self, tenant_id: str, actor: str, conversation_id: str, changes: dict[str, Any]
    ) -> Conversation:
        expected = changes.get("version")
        if expected is None:
            raise ValidationError("version is required (optimistic locking)", {"field": "version"})
        current = self.conversations.get(tenant_id, conversation_id)
        if current.version != expected:
            raise self._failure_error(conversation_id, ReviewFailure("stale", current), expected)
        dataset = self.datasets.get(tenant_id, current.dataset_id)
        changed = self._apply_changes(current, actor, changes, dataset)
        saved = self._next(changed, current)
        action = (
            {
                ConversationStatus.APPROVED: "conversation.approve",
                ConversationStatus.REJECTED: "conversation.reject",
                ConversationStatus.GENERATED: "conversation.unreview",
            }[ConversationStatus(changes["status"])]
            if changes.get("status")
            else "conversation.edit"
        )
        audit = self.audit.build(
            tenant_id,
            actor,
            action,
            "conversation",
            conversation_id,
            before=snapshot(current),
            after=snapshot(saved),
            reviewer_notes=changes.get("reviewer_notes"),
        )
        failures = self.conversations.write_reviews([ReviewWrite(current, saved, audit)])
        if conversation_id in failures:
            raise self._failure_error(conversation_id, failures[conversation_id], expected)
        self._changed(tenant_id, current.dataset_id, [(conversation_id, saved)])
        return saved

    def delete(self, tenant_id: str, actor: str, conversation_id: str) -> None:
        for _ in range(3):  # no client version: retry when it changed between read and write
            current = self.conversations.get(tenant_id, conversation_id)
            if current.status == ConversationStatus.GENERATING:
                raise ConflictError("the conversation is being generated; wait for it to finish")
            audit = self.audit.build(
                tenant_id,
                actor,
                "conversation.delete",
                "conversation",
                conversation_id,
                before=snapshot(current),
                after=None,
            )
            failure = self.conversations.write_reviews([ReviewWrite(current, None, audit)]).get(
                conversation_id
            )
            if failure is None:
                self._changed(tenant_id, current.dataset_id, [(conversation_id, None)])
                return
            if failure.reason != "stale":
                raise self._failure_error(conversation_id, failure, current.version)
        raise ConflictError("the conversation keeps changing; try again")

    # ------------------------------------------------------------------ bulk
    def bulk_review(
        self,
        tenant_id: str,
        actor: str,
        action: str,
        ids: Sequence[str],
        reviewer_notes: str | None,
    ) -> dict[str, Any]:
        """approve | reject | delete for many ids. Each id is all-or-nothing (its change
        and its audit record commit together); one id failing never blocks the others.

        The current state comes from this container's list index when it holds the id
        (what the reviewer was shown; no read), else from the table. Writes are
        conditional on that state's version, so a stale copy can never be written over:
        such an id is retried once on the state its failed write read back."""
        unique = list(dict.fromkeys(ids))
        cached = self.index.known(tenant_id, unique) if self.index is not None else {}
        missing = [cid for cid in unique if cid not in cached]
        found = {**cached, **(self.conversations.get_many(tenant_id, missing) if missing else {})}
        errors: dict[str, dict[str, Any]] = {}
        applied: dict[str, ReviewWrite] = {}
        attempt = [cid for cid in unique if cid in found]
        for cid in unique:
            if cid not in found:
                errors[cid] = {"code": "not_found", "message": "conversation not found"}
        while attempt:
            writes = self._bulk_writes(tenant_id, actor, action, attempt, found, reviewer_notes)
            for cid, error in writes.errors.items():
                errors[cid] = {"code": error.code, "message": error.message}
            failures = self.conversations.write_reviews(writes.writes) if writes.writes else {}
            for w in writes.writes:
                if w.conversation_id not in failures:
                    applied[w.conversation_id] = w
            attempt = []
            for cid, failure in failures.items():
                if failure.reason == "stale" and failure.current is not None and cid in cached:
                    # The index's copy was stale: once more, on the state read back.
                    del cached[cid]
                    found[cid] = failure.current
                    attempt.append(cid)
                    continue
                error = self._failure_error(cid, failure, found[cid].version)
                errors[cid] = {"code": error.code, "message": error.message}
        by_dataset: dict[str, list[tuple[str, Conversation | None]]] = {}
        for w in applied.values():
            by_dataset.setdefault(w.before.dataset_id, []).append((w.conversation_id, w.after))
        for dataset_id, written in by_dataset.items():
            self._changed(tenant_id, dataset_id, written)
        return {
            "action": action,
            "succeeded": [cid for cid in unique if cid in applied],
            "failed": [{"id": cid, "error": errors[cid]} for cid in unique if cid in errors],
        }

    def _bulk_writes(
        self,
        tenant_id: str,
        actor: str,
        action: str,
        ids: Sequence[str],
        found: dict[str, Conversation],
        reviewer_notes: str | None,
    ) -> BulkWrites:
        out = BulkWrites()
        status = {"approve": "approved", "reject": "rejected"}.get(action)
        for cid in ids:
            current = found[cid]
            try:
                if action == "delete":
                    if current.status == ConversationStatus.GENERATING:
                        raise ConflictError(
                            "the conversation is being generated; wait for it to finish"
                        )
                    after = None
                else:
                    changes: dict[str, Any] = {"status": status}
                    if reviewer_notes is not None:
                        changes["reviewer_notes"] = reviewer_notes
                    after = self._next(self._apply_changes(current, actor, changes, None), current)
            except DomainError as e:
                out.errors[cid] = e
                continue
            audit = self.audit.build(
                tenant_id,
                actor,
                f"conversation.{action}",
                "conversation",
                cid,
                before=snapshot(current),
                after=snapshot(after),
                bulk=True,
                reviewer_notes=reviewer_notes,
            )
            out.writes.append(ReviewWrite(current, after, audit))
        return out

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
