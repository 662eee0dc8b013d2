"""Review: detail view, approve/reject with optimistic locking, edits, delete, bulk."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from chalicelib.audit.log import AuditLog, snapshot
from chalicelib.domain.dataset_rules import ARCHIVED_MESSAGE, require_writable
from chalicelib.domain.errors import (
    ConfirmationRequiredError,
    ConflictError,
    DatasetArchivedError,
    DomainError,
    NotFoundError,
    StaleVersionError,
    ValidationError,
)
from chalicelib.domain.models import (
    FLAG_THRESHOLD,
    TRASH_RETENTION_DAYS,
    Conversation,
    ConversationStatus,
    ConversationVersion,
    Dataset,
    utcnow,
)
from chalicelib.domain.review_rules import (
    APPROVAL_FIELDS,
    changed_content_fields,
    check_review_target,
    returns_to_review,
    status_after_edit,
)
from chalicelib.readmodel.listing import ConversationIndex
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


def trash_details() -> dict[str, Any]:
    until = utcnow() + timedelta(days=TRASH_RETENTION_DAYS)
    return {"to_trash": True, "restorable_until": until.isoformat()}


def restored(c: Conversation) -> Conversation:
    return c.model_copy(
        update={
            "trashed_at": None,
            "trashed_by": None,
            "version": c.version + 1,
            "updated_at": utcnow(),
        }
    )


def version_summary(v: ConversationVersion) -> dict[str, Any]:
    data = v.model_dump(mode="json", exclude={"turns", "quality"})
    data["flagged"] = v.quality_score is not None and v.quality_score < FLAG_THRESHOLD
    return data


def version_out(v: ConversationVersion, current: bool) -> dict[str, Any]:
    data = version_summary(v) | {"current": current}
    if current:
        data["superseded_at"] = None
    data["turns"] = [t.model_dump(mode="json") for t in v.turns]
    return data


def delete_confirmation(ids: Sequence[str], found: dict[str, Conversation]) -> DomainError:
    """A bulk delete sent without ``confirm``: what it would move to the trash."""
    would = [
        cid for cid in ids if cid in found and found[cid].status != ConversationStatus.GENERATING
    ]
    return ConfirmationRequiredError(
        f"this would move {len(would)} conversation(s) to the trash (restorable for "
        f"{TRASH_RETENTION_DAYS} days); send confirm: true to delete them",
        {
            "would_delete": would,
            "count": len(would),
            "generating": [
                cid
                for cid in ids
                if cid in found and found[cid].status == ConversationStatus.GENERATING
            ],
            "not_found": [cid for cid in ids if cid not in found],
            "restorable_days": TRASH_RETENTION_DAYS,
        },
    )


def public_state(c: Conversation) -> dict[str, Any]:
    """A conversation as the API shows it (same shape as ``views.conversation_summary``),
    for the ``current`` of a 409."""
    data = c.model_dump(mode="json", exclude={"tenant_id", "quality"})
    data["flagged"] = c.flagged
    return data


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
        write_through: bool = True,
    ) -> None:
        """Tell list caches (one bump per dataset) and write through to this container's
        (not for restores: the index has no turn text of a row it dropped, and the delta
        read brings the row back with it)."""
        seq = self.datasets.bump_conversation_seq(tenant_id, dataset_id)
        if self.index is not None and write_through:
            self.index.apply_written(tenant_id, dataset_id, seq, written)

    def _require_writable(self, tenant_id: str, dataset_id: str) -> None:
        require_writable(self.datasets.get(tenant_id, dataset_id))

    def _archived_datasets(self, tenant_id: str, dataset_ids: set[str]) -> set[str]:
        """Of ``dataset_ids``, the archived ones (and any being deleted)."""
        out: set[str] = set()
        for dataset_id in dataset_ids:
            try:
                if self.datasets.get(tenant_id, dataset_id).archived:
                    out.add(dataset_id)
            except NotFoundError:
                out.add(dataset_id)
        return out

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
                    "purpose": "judge"
                    if (entry.parameters or {}).get("purpose") == "judge"
                    else "generation",
                }
                for entry in logs
            ],
            "audit": history,
            "versions": self._version_summary(cwt.conversation),
        }

    # ------------------------------------------------------------------ versions
    def _version_summary(self, conversation: Conversation) -> dict[str, Any]:
        """How many generations the conversation has had, and the earlier ones (without
        their turns: ``GET .../versions/{n}`` has them)."""
        earlier = (
            self.conversations.versions(conversation.tenant_id, conversation.conversation_id)
            if conversation.generation_number > 1
            else []
        )
        current = conversation.generation_number or (1 if conversation.generated_at else 0)
        return {
            "count": len(earlier) + (1 if current else 0),
            "current": current or None,
            "earlier": [version_summary(v) for v in reversed(earlier)],
        }

    def _current_version(self, tenant_id: str, conversation_id: str) -> dict[str, Any] | None:
        """The generation the conversation holds now (None before its first one)."""
        cwt = self.conversations.get_with_turns(tenant_id, conversation_id)
        c = cwt.conversation
        if c.generated_at is None and not cwt.turns:
            return None
        return version_out(ConversationVersion.of(max(c.generation_number, 1), c, cwt.turns), True)

    def versions(self, tenant_id: str, conversation_id: str) -> dict[str, Any]:
        """Every generation, newest (the current one) first; turns of each included."""
        current = self._current_version(tenant_id, conversation_id)
        items = [current] if current else []
        earlier = self.conversations.versions(tenant_id, conversation_id, with_turns=True)
        items += [version_out(v, False) for v in reversed(earlier)]
        return {"conversation_id": conversation_id, "items": items, "total": len(items)}

    def version(self, tenant_id: str, conversation_id: str, number: int) -> dict[str, Any]:
        current = self._current_version(tenant_id, conversation_id)  # 404 when gone
        if current is not None and current["number"] == number:
            return current
        return version_out(self.conversations.version(tenant_id, conversation_id, number), False)

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
        requested: ConversationStatus | None = None
        if status is not None:
            requested = ConversationStatus(status)
            check_review_target(conversation.status, requested)
            now = utcnow()
            update.update({"status": requested, "reviewed_by": actor, "reviewed_at": now})
            if requested == ConversationStatus.APPROVED:
                update.update({"approved_by": actor, "approved_at": now})
            else:
                update.update({"approved_by": None, "approved_at": None})
        if "reviewer_notes" in changes and changes["reviewer_notes"] is not None:
            update["reviewer_notes"] = changes["reviewer_notes"]
        edits: dict[str, Any] = {}
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
            edits[name] = value
        update.update(edits)
        if not update:
            raise ValidationError("nothing to change")
        changed = changed_content_fields(conversation.model_dump(), edits)
        if returns_to_review(conversation.status, changed, requested):
            # What was reviewed is not what it now says: it needs a review again.
            update["status"] = status_after_edit(conversation.status, changed)
            update.update(dict.fromkeys(APPROVAL_FIELDS))
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
        require_writable(dataset)
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
        changed_fields = changed_content_fields(current.model_dump(), saved.model_dump())
        extra: dict[str, Any] = {"changed": changed_fields} if changed_fields else {}
        if action == "conversation.edit" and saved.status != current.status:
            extra["returned_to_review"] = True
        audit = self.audit.build(
            tenant_id,
            actor,
            action,
            "conversation",
            conversation_id,
            before=snapshot(current),
            after=snapshot(saved),
            reviewer_notes=changes.get("reviewer_notes"),
            **extra,
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
            self._require_writable(tenant_id, current.dataset_id)
            audit = self.audit.build(
                tenant_id,
                actor,
                "conversation.delete",
                "conversation",
                conversation_id,
                before=snapshot(current),
                after=None,
                **trash_details(),
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

    # ------------------------------------------------------------------ trash
    def restore(self, tenant_id: str, actor: str, conversation_id: str) -> Conversation:
        result = self.bulk_review(tenant_id, actor, "restore", [conversation_id], None)
        if result["failed"]:
            error = result["failed"][0]["error"]
            if error["code"] == "not_found":
                raise NotFoundError("conversation in the trash", conversation_id)
            if error["code"] == "dataset_archived":
                raise DatasetArchivedError(error["message"])
            raise ConflictError(error["message"], {"code": error["code"]})
        return self.conversations.get(tenant_id, conversation_id)

    def trash(self, tenant_id: str, dataset_ids: Sequence[str]) -> list[dict[str, Any]]:
        """Trashed conversations of the datasets, newest first, with their purge time."""
        rows: list[tuple[Conversation, datetime]] = []
        for dataset_id in dataset_ids:
            self.datasets.get(tenant_id, dataset_id)  # 404 for a missing or foreign one
            rows.extend(self.conversations.trash(tenant_id, dataset_id))
        rows.sort(key=lambda r: r[0].trashed_at or r[1], reverse=True)
        now = utcnow()
        return [
            {
                "conversation": c,
                "purge_at": purge,
                "days_left": max(0, (purge - now).days),
            }
            for c, purge in rows
        ]

    # ------------------------------------------------------------------ bulk
    def bulk_review(
        self,
        tenant_id: str,
        actor: str,
        action: str,
        ids: Sequence[str],
        reviewer_notes: str | None,
        confirm: bool = True,
    ) -> dict[str, Any]:
        """approve | reject | delete | restore for many ids. Each id is all-or-nothing (its
        change and its audit record commit together); one id failing never blocks the
        others. A delete (to the trash) without ``confirm`` changes nothing: it is a 400
        that lists what it would delete.

        The current state comes from this container's list index when it holds the id
        (what the reviewer was shown; no read), else from the table. Writes are
        conditional on that state's version, so a stale copy can never be written over:
        such an id is retried once on the state its failed write read back."""
        unique = list(dict.fromkeys(ids))
        if action == "restore":
            cached: dict[str, Conversation] = {}
            found = self.conversations.trashed(tenant_id, unique)
        else:
            cached = self.index.known(tenant_id, unique) if self.index is not None else {}
            missing = [cid for cid in unique if cid not in cached]
            found = {
                **cached,
                **(self.conversations.get_many(tenant_id, missing) if missing else {}),
            }
        if action == "delete" and not confirm:
            raise delete_confirmation(unique, found)
        archived = self._archived_datasets(tenant_id, {c.dataset_id for c in found.values()})
        errors: dict[str, dict[str, Any]] = {}
        applied: dict[str, ReviewWrite] = {}
        attempt = [cid for cid in unique if cid in found and found[cid].dataset_id not in archived]
        for cid in unique:
            if cid not in found:
                what = "conversation in the trash" if action == "restore" else "conversation"
                errors[cid] = {"code": "not_found", "message": f"{what} not found"}
            elif found[cid].dataset_id in archived:
                errors[cid] = {"code": "dataset_archived", "message": ARCHIVED_MESSAGE}
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
            self._changed(tenant_id, dataset_id, written, write_through=action != "restore")
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
            after: Conversation | None
            if action == "restore":
                after = restored(current)
                audit = self.audit.build(
                    tenant_id,
                    actor,
                    "conversation.restore",
                    "conversation",
                    cid,
                    before=None,
                    after=snapshot(after),
                    bulk=True,
                    trashed_at=current.trashed_at.isoformat() if current.trashed_at else None,
                )
                out.writes.append(ReviewWrite(current, after, audit, restore=True))
                continue
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
                **(trash_details() if action == "delete" else {}),
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
            if current.dataset_id in self._archived_datasets(tenant_id, {current.dataset_id}):
                failed.append(
                    {"id": cid, "error": {"code": "dataset_archived", "message": ARCHIVED_MESSAGE}}
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
