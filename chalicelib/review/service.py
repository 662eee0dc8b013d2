"""Review: detail view, approve/reject with optimistic locking, edits, delete, bulk."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from chalicelib.audit.log import AuditLog, snapshot
from chalicelib.domain.dataset_rules import ARCHIVED_MESSAGE, require_writable
from chalicelib.domain.errors import (
    BulkLimitExceededError,
    ConfirmationRequiredError,
    ConflictError,
    DatasetArchivedError,
    DomainError,
    MatchesChangedError,
    NoteRequiredError,
    NotFoundError,
    StaleVersionError,
    ValidationError,
)
from chalicelib.domain.models import (
    FLAG_THRESHOLD,
    TRASH_RETENTION_DAYS,
    AuditRecord,
    Conversation,
    ConversationStatus,
    ConversationVersion,
    Dataset,
    Turn,
    TurnFeedback,
    turns_with_feedback,
    utcnow,
)
from chalicelib.domain.ports import (
    AuditReader,
    GenerationLogReader,
    ReviewedConversations,
    ReviewedDatasets,
    ReviewFailure,
    ReviewWrite,
    TurnsItem,
)
from chalicelib.domain.review_rules import (
    APPROVAL_FIELDS,
    GENERATING_MESSAGE,
    UNDO_KINDS,
    apply_turn_feedback,
    bulk_outcome,
    changed_content_fields,
    check_review_target,
    reject_note_missing,
    require_not_generating,
    returns_to_review,
    status_after_edit,
    undo_refusal,
    undo_restore,
)
from chalicelib.readmodel.listing import ConversationIndex, ListQuery
from chalicelib.review.undo import (
    DECISION_ACTION,
    decode_token,
    new_decision,
    token_fields,
    with_items,
)

EDITABLE_METADATA = ("persona", "emotion", "topic", "intent", "tone", "tier", "title")
STATUS_ACTIONS = {
    ConversationStatus.APPROVED: "approve",
    ConversationStatus.REJECTED: "reject",
    ConversationStatus.GENERATED: "unreview",
}
FILTER_ACTIONS = ("approve", "reject", "delete")  # what "select all matching" may do


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
    data = v.model_dump(mode="json", exclude={"turns", "quality", "feedback"})
    data["flagged"] = v.quality_score is not None and v.quality_score < FLAG_THRESHOLD
    return data


def version_out(v: ConversationVersion, current: bool) -> dict[str, Any]:
    data = version_summary(v) | {"current": current}
    if current:
        data["superseded_at"] = None
    data["turns"] = turns_with_feedback(v.turns, v.feedback)
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


def _turn(item: TurnsItem | None, turn_number: int) -> Turn:
    turn = next((t for t in item.turns if t.turn_number == turn_number), None) if item else None
    if turn is None:
        raise NotFoundError("turn", str(turn_number))
    return turn


def public_state(c: Conversation) -> dict[str, Any]:
    """A conversation as the API shows it (same shape as ``views.conversation_summary``),
    for the ``current`` of a 409."""
    data = c.model_dump(mode="json", exclude={"tenant_id", "quality"})
    data["flagged"] = c.flagged
    return data


class ReviewService:
    def __init__(
        self,
        datasets: ReviewedDatasets,
        conversations: ReviewedConversations,
        logs: GenerationLogReader,
        audit_repo: AuditReader,
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
    def _listing(self) -> ConversationIndex:
        if self.index is None:
            raise RuntimeError("this review service was built without the list index")
        return self.index

    def open(
        self, tenant_id: str, conversation_id: str, query: ListQuery
    ) -> tuple[dict[str, Any], tuple[str | None, str | None, int | None]]:
        """The review panel's conversation, and its previous and next rows (and position)
        in the list the reviewer came from (``query``; its dataset by default)."""
        detail = self.detail(tenant_id, conversation_id)
        if query.dataset_id is None:
            query.dataset_id = detail["conversation"].dataset_id
        listing = self._listing()
        neighbours = listing.neighbours(
            tenant_id, listing.scope(tenant_id, query.dataset_id), query, conversation_id
        )
        return detail, neighbours

    def detail(self, tenant_id: str, conversation_id: str) -> dict[str, Any]:
        cwt = self.conversations.get_with_turns(tenant_id, conversation_id)
        logs = self.logs.list_for_conversation(tenant_id, conversation_id)
        history = self.audit_repo.query(tenant_id, entity_id=conversation_id, newest_first=False)
        return {
            "conversation": cwt.conversation,
            "turns": cwt.turns,
            "feedback": cwt.feedback,
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
        held = ConversationVersion.of(max(c.generation_number, 1), c, cwt.turns, cwt.feedback)
        return version_out(held, True)

    def _turn_edits(self, tenant_id: str, conversation_id: str) -> dict[int, list[dict[str, Any]]]:
        """Reviewers' edits of turn text (and their undos) per generation number, oldest
        first, from the audit trail (who, when, before/after)."""
        out: dict[int, list[dict[str, Any]]] = {}
        trail = self.audit_repo.query(
            tenant_id, entity_id=conversation_id, newest_first=False, limit=10_000
        )
        for record in trail:
            if not record.details.get("edited") or "turn_number" not in record.details:
                continue
            before, after = record.before or {}, record.after or {}
            out.setdefault(int(record.details.get("generation_number") or 1), []).append(
                {
                    "turn_number": record.details["turn_number"],
                    "before": before.get("content"),
                    "after": after.get("content"),
                    "by": record.actor,
                    "at": record.at.isoformat(),
                    "action": record.action,
                    "conversation_version": after.get("version"),
                }
            )
        return out

    def versions(self, tenant_id: str, conversation_id: str) -> dict[str, Any]:
        """Every generation, newest (the current one) first; turns of each included, and
        the reviewers' edits of its turns."""
        current = self._current_version(tenant_id, conversation_id)
        items = [current] if current else []
        earlier = self.conversations.versions(tenant_id, conversation_id, with_turns=True)
        items += [version_out(v, False) for v in reversed(earlier)]
        edits = self._turn_edits(tenant_id, conversation_id)
        for item in items:
            item["edits"] = edits.get(item["number"], [])
        return {"conversation_id": conversation_id, "items": items, "total": len(items)}

    def version(self, tenant_id: str, conversation_id: str, number: int) -> dict[str, Any]:
        current = self._current_version(tenant_id, conversation_id)  # 404 when gone
        if current is None or current["number"] != number:
            current = version_out(
                self.conversations.version(tenant_id, conversation_id, number), False
            )
        current["edits"] = self._turn_edits(tenant_id, conversation_id).get(number, [])
        return current

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
        require_not_generating(conversation.status)
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
            return ConflictError(GENERATING_MESSAGE)
        return StaleVersionError(
            "the conversation was changed by someone else; reload and retry",
            {"current": public_state(failure.current), "your_version": your_version},
        )

    def update(
        self, tenant_id: str, actor: str, conversation_id: str, changes: dict[str, Any]
    ) -> tuple[Conversation, dict[str, Any]]:
        """A PATCH; returns the saved state and its decision's undo fields."""
        expected = changes.get("version")
        if expected is None:
            raise ValidationError("version is required (optimistic locking)", {"field": "version"})
        current = self.conversations.get(tenant_id, conversation_id)
        if current.version != expected:
            raise self._failure_error(conversation_id, ReviewFailure("stale", current), expected)
        dataset = self.datasets.get(tenant_id, current.dataset_id)
        require_writable(dataset)
        requested = ConversationStatus(changes["status"]) if changes.get("status") else None
        if reject_note_missing(
            dataset.require_reject_note,
            requested,
            changes.get("reviewer_notes"),
            current.reviewer_notes,
        ):
            raise NoteRequiredError(
                "this dataset requires a note when rejecting: say what is wrong in reviewer_notes",
                {"field": "reviewer_notes", "dataset_id": dataset.dataset_id},
            )
        changed = self._apply_changes(current, actor, changes, dataset)
        saved = self._next(changed, current)
        decision = new_decision(
            tenant_id, actor, STATUS_ACTIONS[requested] if requested else "edit", "review"
        )
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
            **self._undo_details(decision, "review", current, saved),
        )
        failures = self.conversations.write_reviews([ReviewWrite(current, saved, audit)])
        if conversation_id in failures:
            raise self._failure_error(conversation_id, failures[conversation_id], expected)
        self._changed(tenant_id, current.dataset_id, [(conversation_id, saved)])
        return saved, self._commit_decision(decision, [(conversation_id, audit)])

    def delete(self, tenant_id: str, actor: str, conversation_id: str) -> None:
        for _ in range(3):  # no client version: retry when it changed between read and write
            current = self.conversations.get(tenant_id, conversation_id)
            require_not_generating(current.status)
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
    def restore(
        self, tenant_id: str, actor: str, conversation_id: str
    ) -> tuple[Conversation, dict[str, Any]]:
        """Restore from the trash; the restored state and the decision's undo fields."""
        result = self.bulk(tenant_id, actor, "restore", ids=[conversation_id])
        if result["failed"]:
            error = result["failed"][0]["error"]
            if error["code"] == "not_found":
                raise NotFoundError("conversation in the trash", conversation_id)
            if error["code"] == "dataset_archived":
                raise DatasetArchivedError(error["message"])
            raise ConflictError(error["message"], {"code": error["code"]})
        return self.conversations.get(tenant_id, conversation_id), {
            "decision_id": result["decision_id"],
            "undo_token": result["undo_token"],
        }

    def trash(self, tenant_id: str, dataset_id: str | None) -> list[dict[str, Any]]:
        """Trashed conversations of a dataset (or all the tenant's), newest first, with
        their purge time."""
        rows: list[tuple[Conversation, datetime]] = []
        for scoped in self._listing().scope(tenant_id, dataset_id):
            self.datasets.get(tenant_id, scoped)  # 404 for a missing or foreign one
            rows.extend(self.conversations.trash(tenant_id, scoped))
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

    # ------------------------------------------------------------------ decisions
    @staticmethod
    def _undo_details(
        decision: AuditRecord, kind: str, before: Conversation, after: Conversation | None
    ) -> dict[str, Any]:
        """What a conversation's audit record carries so its decision can be undone: the
        version the write leaves and the fields the undo writes back."""
        if after is None:  # to the trash: the write adds one to the stored version
            undo: dict[str, Any] = {"kind": kind, "version": before.version + 1}
        else:
            restore = undo_restore(before.model_dump(mode="json"), after.model_dump(mode="json"))
            undo = {"kind": kind, "version": after.version, "restore": restore}
        return {"decision_id": decision.audit_id, "undo": undo}

    def _commit_decision(
        self, decision: AuditRecord, applied: list[tuple[str, AuditRecord]]
    ) -> dict[str, Any]:
        """Write the decision once its items applied; its undo fields for the response."""
        if not applied:
            return token_fields(None)
        record = with_items(decision, applied)
        self.audit_repo.append(record)
        return token_fields(record)

    def _datasets_of(self, tenant_id: str, dataset_ids: set[str]) -> dict[str, Dataset | None]:
        """The datasets by id; None for one that is gone or being deleted."""
        out: dict[str, Dataset | None] = {}
        for dataset_id in dataset_ids:
            try:
                out[dataset_id] = self.datasets.get(tenant_id, dataset_id)
            except NotFoundError:
                out[dataset_id] = None
        return out

    @staticmethod
    def _restored_fields(current: Conversation, restore: dict[str, Any]) -> Conversation:
        """``current`` with the fields an undo writes back (JSON values, parsed again)."""
        return Conversation.model_validate(current.model_dump() | restore)

    # ------------------------------------------------------------------ undo
    def undo(self, tenant_id: str, actor: str, token: str, partial: bool = False) -> dict[str, Any]:
        """Revert one decision, all of it, if nothing changed since (else a 409 that
        writes nothing; ``partial`` reverts the unchanged ones). The undo is a decision
        too: its token redoes what was undone."""
        key = decode_token(token)
        decision = self.audit_repo.get(tenant_id, key)
        missing = NotFoundError("decision", key.rsplit("#", 1)[-1])
        if decision is None or decision.action != DECISION_ACTION:
            raise missing
        items = decision.details.get("items") or []
        records = self.audit_repo.get_many(tenant_id, [i["audit"] for i in items])
        plans: dict[str, dict[str, Any]] = {}
        for item in items:
            record = records.get(item["audit"])
            if record is not None and isinstance(record.details.get("undo"), dict):
                plans[item["id"]] = record.details["undo"]
        kind = str(decision.details.get("kind"))
        if kind not in UNDO_KINDS:
            raise missing
        ids = list(plans)
        read = self.conversations.trashed if kind == "trash" else self.conversations.get_many
        current = read(tenant_id, ids, consistent=True)
        refused: dict[str, str] = {}
        for cid in ids:
            c = current.get(cid)
            reason = undo_refusal(c.version if c else None, int(plans[cid]["version"]))
            if reason:
                refused[cid] = reason
        if refused and not partial:
            raise StaleVersionError(
                f"{len(refused)} of {len(ids)} conversation(s) changed since that decision "
                "(or it was undone already): nothing was undone; send partial: true to undo "
                "the others",
                {
                    "changed": [
                        {
                            "id": cid,
                            "reason": reason,
                            "version": current[cid].version if cid in current else None,
                            "expected_version": plans[cid]["version"],
                        }
                        for cid, reason in refused.items()
                    ],
                    "unchanged": [cid for cid in ids if cid not in refused],
                },
            )
        errors: dict[str, dict[str, Any]] = {
            cid: {
                "code": "stale_version" if reason == "changed" else "not_found",
                "message": "changed since that decision"
                if reason == "changed"
                else "conversation not found where that decision left it",
            }
            for cid, reason in refused.items()
        }
        datasets = self._datasets_of(tenant_id, {c.dataset_id for c in current.values()})
        redo = new_decision(tenant_id, actor, "undo", UNDO_KINDS[kind])
        undoes = str(decision.details.get("action"))
        details = {"undoes": undoes, "undone_decision_id": decision.audit_id}
        applied: dict[str, AuditRecord] = {}
        writes: list[ReviewWrite] = []
        for cid in ids:
            if cid in refused:
                continue
            c, plan = current[cid], plans[cid]
            dataset = datasets.get(c.dataset_id)
            if dataset is None or dataset.archived:
                errors[cid] = {"code": "dataset_archived", "message": ARCHIVED_MESSAGE}
                continue
            if kind == "turn":
                try:
                    _, audit = self._undo_turn(c, plan, actor, redo, details)
                except DomainError as e:
                    errors[cid] = {"code": e.code, "message": e.message}
                    continue
                applied[cid] = audit
                continue
            after: Conversation | None
            if kind == "trash":  # the decision moved it to the trash: restore it
                after = restored(c)
                inverse = "restore"
            elif kind == "restore":  # it restored it: back to the trash
                after = None
                inverse = "trash"
            else:
                after = self._next(self._restored_fields(c, plan.get("restore") or {}), c)
                inverse = "review"
            audit = self.audit.build(
                tenant_id,
                actor,
                "conversation.undo",
                "conversation",
                cid,
                before=snapshot(c),
                after=snapshot(after),
                **details,
                **self._undo_details(redo, inverse, c, after),
            )
            writes.append(ReviewWrite(c, after, audit, restore=kind == "trash"))
        failures = self.conversations.write_reviews(writes) if writes else {}
        by_dataset: dict[str, list[tuple[str, Conversation | None]]] = {}
        for w in writes:
            if w.conversation_id in failures:
                error = self._failure_error(w.conversation_id, failures[w.conversation_id], 0)
                errors[w.conversation_id] = {"code": error.code, "message": error.message}
                continue
            applied[w.conversation_id] = w.audit
            by_dataset.setdefault(w.before.dataset_id, []).append((w.conversation_id, w.after))
        for dataset_id, written in by_dataset.items():
            self._changed(tenant_id, dataset_id, written, write_through=kind != "trash")
        done = [(cid, applied[cid]) for cid in ids if cid in applied]
        return {
            "action": "undo",
            "undoes": undoes,
            "undone_decision_id": decision.audit_id,
            "succeeded": [cid for cid, _ in done],
            "failed": [{"id": cid, "error": errors[cid]} for cid in ids if cid in errors],
            **self._commit_decision(redo, done),
        }

    # ------------------------------------------------------------------ turn feedback
    def turn_feedback(
        self,
        tenant_id: str,
        actor: str,
        conversation_id: str,
        turn_number: int,
        changes: dict[str, Any],
    ) -> dict[str, Any]:
        """Mark one turn (bad, note) or edit its text; the conversation's version goes up
        and the audit keeps before/after. Returns the conversation, the turn and its
        feedback, and the decision's undo fields."""
        expected = changes["expected_version"]
        current = self.conversations.get(tenant_id, conversation_id)
        require_not_generating(current.status)
        if current.version != expected:
            raise self._failure_error(conversation_id, ReviewFailure("stale", current), expected)
        self._require_writable(tenant_id, current.dataset_id)
        item = self.conversations.get_turns_item(tenant_id, conversation_id)
        turn = _turn(item, turn_number)
        assert item is not None  # a turn was found in it
        text, feedback = apply_turn_feedback(
            turn.content, item.feedback.get(turn_number), changes, actor, utcnow()
        )
        decision = new_decision(tenant_id, actor, "turn_feedback", "turn")
        saved, audit = self._write_turn(
            current, item, turn, text, feedback, actor, decision, "conversation.turn_feedback"
        )
        return {
            "conversation": saved,
            "turn": turn.model_copy(update={"content": text}),
            "feedback": feedback,
            **self._commit_decision(decision, [(conversation_id, audit)]),
        }

    def _undo_turn(
        self,
        current: Conversation,
        plan: dict[str, Any],
        actor: str,
        decision: AuditRecord,
        details: dict[str, Any],
    ) -> tuple[Conversation, AuditRecord]:
        item = self.conversations.get_turns_item(current.tenant_id, current.conversation_id)
        number = int(plan["turn_number"])
        turn = _turn(item, number)
        assert item is not None
        text = plan["content"] if plan.get("content") is not None else turn.content
        raw = plan.get("feedback")
        feedback = TurnFeedback.model_validate(raw) if raw else None
        return self._write_turn(
            current,
            item,
            turn,
            text,
            feedback,
            actor,
            decision,
            "conversation.undo",
            restore=plan.get("restore") or {},
            **details,
        )

    def _write_turn(
        self,
        current: Conversation,
        item: TurnsItem,
        turn: Turn,
        text: str,
        feedback: TurnFeedback | None,
        actor: str,
        decision: AuditRecord,
        action: str,
        restore: dict[str, Any] | None = None,
        **details: Any,
    ) -> tuple[Conversation, AuditRecord]:
        number = turn.turn_number
        edited = text != turn.content
        turns = [t.model_copy(update={"content": text}) if t is turn else t for t in item.turns]
        marks = {n: f for n, f in item.feedback.items() if n != number}
        if feedback is not None:
            marks[number] = feedback
        if restore is not None:  # an undo: what the feedback changed comes back
            after = self._restored_fields(current, restore)
        elif edited and returns_to_review(current.status, ["turns"]):
            # What was reviewed is not what it now says.
            after = current.model_copy(
                update={
                    "status": status_after_edit(current.status, ["turns"]),
                    **dict.fromkeys(APPROVAL_FIELDS),
                }
            )
        else:
            after = current
        saved = self._next(after, current)
        previous = item.feedback.get(number)

        def view(content: str, fb: TurnFeedback | None, c: Conversation) -> dict[str, Any]:
            out: dict[str, Any] = {
                "turn_number": number,
                "bad": bool(fb and fb.bad),
                "note": fb.note if fb else None,
                "edited": bool(fb and fb.edited),
                "status": c.status.value,
                "version": c.version,
            }
            if edited:
                out["content"] = content
            return out

        undo: dict[str, Any] = {
            "kind": "turn",
            "version": saved.version,
            "turn_number": number,
            "content": turn.content if edited else None,
            "feedback": previous.model_dump(mode="json") if previous else None,
            "restore": undo_restore(current.model_dump(mode="json"), saved.model_dump(mode="json")),
        }
        audit = self.audit.build(
            current.tenant_id,
            actor,
            action,
            "conversation",
            current.conversation_id,
            before=view(turn.content, previous, current),
            after=view(text, feedback, saved),
            turn_number=number,
            edited=edited,
            generation_number=max(current.generation_number, 1),
            returned_to_review=saved.status != current.status and restore is None,
            decision_id=decision.audit_id,
            undo=undo,
            **details,
        )
        failure = self.conversations.write_turn_feedback(current, saved, item, turns, marks, audit)
        if failure is not None:
            raise self._failure_error(current.conversation_id, failure, current.version)
        # The turn text changed: the next list reads the row (with its text) as a delta.
        self._changed(
            current.tenant_id, current.dataset_id, [(current.conversation_id, saved)], False
        )
        return saved, audit

    # ------------------------------------------------------------------ bulk
    def _targets(
        self, tenant_id: str, action: str, ids: Sequence[str]
    ) -> tuple[dict[str, Conversation], dict[str, Conversation]]:
        """(every id's current state, the ones of it taken from this container's index)."""
        if action == "restore":
            return self.conversations.trashed(tenant_id, ids), {}
        cached = self.index.known(tenant_id, ids) if self.index is not None else {}
        missing = [cid for cid in ids if cid not in cached]
        found = {
            **cached,
            **(self.conversations.get_many(tenant_id, missing) if missing else {}),
        }
        return found, cached

    def _matching_ids(self, tenant_id: str, query: ListQuery, limit: int) -> tuple[list[str], int]:
        """The list's own filter (one matcher): the first ``limit`` ids in list order, and
        how many match."""
        listing = self._listing()
        rows = listing.ordered(tenant_id, listing.scope(tenant_id, query.dataset_id), query)
        return [c.conversation_id for c in rows[:limit]], len(rows)

    @staticmethod
    def _preview(
        action: str,
        ids: Sequence[str],
        found: dict[str, Conversation],
        datasets: dict[str, Dataset | None],
        reviewer_notes: str | None,
        matched: int,
        limit: int,
    ) -> dict[str, Any]:
        """What the action would do, counted per current status and outcome."""
        by_status: dict[str, int] = {}
        fail: dict[str, int] = {}
        counts = {"change": 0, "already": 0}
        acting: list[str] = []
        need_note: list[Conversation] = []
        for cid in ids:
            c = found.get(cid)
            if c is None:
                fail["not_found"] = fail.get("not_found", 0) + 1
                continue
            by_status[c.status.value] = by_status.get(c.status.value, 0) + 1
            dataset = datasets.get(c.dataset_id)
            outcome = (
                "dataset_archived"
                if dataset is None or dataset.archived
                else bulk_outcome(action, c.status)
            )
            if outcome not in counts:
                fail[outcome] = fail.get(outcome, 0) + 1
                continue
            counts[outcome] += 1
            acting.append(cid)
            assert dataset is not None
            if action == "reject" and reject_note_missing(
                dataset.require_reject_note,
                ConversationStatus.REJECTED,
                reviewer_notes,
                c.reviewer_notes,
            ):
                need_note.append(c)
        return {
            "action": action,
            "preview": True,
            "matched": matched,
            "limit": limit,
            "over_limit": matched > limit,
            "by_status": by_status,
            "will_change": counts["change"],
            "already": counts["already"],
            "will_fail": sum(fail.values()),
            "fail_reasons": fail,
            "note_required": bool(need_note),
            "note_required_count": len(need_note),
            "note_required_datasets": sorted({c.dataset_id for c in need_note}),
            "ids": acting,
        }

    def bulk(
        self,
        tenant_id: str,
        actor: str,
        action: str,
        *,
        ids: Sequence[str] | None = None,
        query: ListQuery | None = None,
        reviewer_notes: str | None = None,
        confirm: bool = False,
        preview: bool = False,
        expected_count: int | None = None,
        up_to_limit: bool = False,
        limit: int = 500,
    ) -> dict[str, Any]:
        """approve | reject | delete | restore for ``ids``, or for what the list's
        ``query`` matches ("select all matching", at most ``limit``). ``preview`` counts
        what it would do and writes nothing. Acting on a filter needs ``confirm``; over
        the limit it is refused unless ``up_to_limit`` (then the first ``limit`` in list
        order). Each id is all-or-nothing; one id failing never blocks the others; the
        whole call is one decision (one undo)."""
        matched: int | None = None
        if ids is not None and len(ids) > limit:
            raise ValidationError(f"at most {limit} ids per call")
        if query is not None:
            self._listing().validate(query)
            if action not in FILTER_ACTIONS:
                raise ValidationError(
                    f"a filter can select conversations to {', '.join(FILTER_ACTIONS)}, "
                    f"not to {action}; send ids",
                    {"field": "filter", "allowed": list(FILTER_ACTIONS)},
                )
            ids, matched = self._matching_ids(tenant_id, query, limit)
        unique = list(dict.fromkeys(ids or []))
        found, cached = self._targets(tenant_id, action, unique)
        datasets = self._datasets_of(tenant_id, {c.dataset_id for c in found.values()})
        summary = self._preview(
            action,
            unique,
            found,
            datasets,
            reviewer_notes,
            len(unique) if matched is None else matched,
            limit,
        )
        if preview:
            return summary
        if matched is not None:
            if expected_count is not None and expected_count != matched:
                raise MatchesChangedError(
                    f"the filter matches {matched} conversation(s) now, not {expected_count}; "
                    "check the new counts and confirm again",
                    summary,
                )
            if matched > limit and not up_to_limit:
                raise BulkLimitExceededError(
                    f"the filter matches {matched} conversations and one call acts on at most "
                    f"{limit}: narrow the filter, or send up_to_limit: true to act on the "
                    f"first {limit} in list order",
                    {"matched": matched, "limit": limit},
                )
            if not confirm:
                raise ConfirmationRequiredError(
                    f"this would {action} {summary['will_change'] + summary['already']} of "
                    f"{matched} matching conversation(s); send confirm: true to do it",
                    summary,
                )
        elif action == "delete" and not confirm:
            raise delete_confirmation(unique, found)
        if summary["note_required"]:
            raise NoteRequiredError(
                f"{summary['note_required_count']} of these conversation(s) are in a dataset "
                "that requires a note when rejecting: send reviewer_notes",
                {
                    "field": "reviewer_notes",
                    "dataset_ids": summary["note_required_datasets"],
                    "count": summary["note_required_count"],
                },
            )
        result = self._bulk_apply(
            tenant_id, actor, action, unique, found, cached, datasets, reviewer_notes
        )
        if matched is not None:
            result |= {
                "matched": matched,
                "acted_on": len(unique),
                "remaining": max(0, matched - len(unique)),
            }
        return result

    def _bulk_apply(
        self,
        tenant_id: str,
        actor: str,
        action: str,
        unique: list[str],
        found: dict[str, Conversation],
        cached: dict[str, Conversation],
        datasets: dict[str, Dataset | None],
        reviewer_notes: str | None,
    ) -> dict[str, Any]:
        """The current state comes from this container's list index when it holds the id
        (what the reviewer was shown; no read), else from the table. Writes are
        conditional on that state's version, so a stale copy can never be written over:
        such an id is retried once on the state its failed write read back."""
        archived = {d for d, ds in datasets.items() if ds is None or ds.archived}
        kind = {"delete": "trash", "restore": "restore"}.get(action, "review")
        decision = new_decision(tenant_id, actor, action, kind)
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
            writes = self._bulk_writes(
                tenant_id, actor, action, attempt, found, reviewer_notes, decision
            )
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
        done = [(cid, applied[cid].audit) for cid in unique if cid in applied]
        return {
            "action": action,
            "succeeded": [cid for cid, _ in done],
            "failed": [{"id": cid, "error": errors[cid]} for cid in unique if cid in errors],
            **self._commit_decision(decision, done),
        }

    def _bulk_writes(
        self,
        tenant_id: str,
        actor: str,
        action: str,
        ids: Sequence[str],
        found: dict[str, Conversation],
        reviewer_notes: str | None,
        decision: AuditRecord,
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
                    **self._undo_details(decision, "restore", current, after),
                )
                out.writes.append(ReviewWrite(current, after, audit, restore=True))
                continue
            try:
                if action == "delete":
                    require_not_generating(current.status)
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
                **self._undo_details(
                    decision, "trash" if action == "delete" else "review", current, after
                ),
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
