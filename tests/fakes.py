"""In-memory implementations of the domain's ports (chalicelib/domain/ports.py), for fast
service tests without moto. Each keeps the contract its DynamoDB adapter states in
chalicelib/store/repositories.py: version-conditioned writes raise StaleVersionError,
a missing or deleting item is a NotFoundError, every conversation write bumps the
dataset's change counter (the list read model runs on these unchanged)."""

from __future__ import annotations

import itertools
import time
from collections.abc import Collection, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from chalicelib.domain.errors import ConflictError, NotFoundError, StaleVersionError
from chalicelib.domain.filters import EXPORT_FILTERS, in_quality_range, matches_filters
from chalicelib.domain.models import (
    TRASH_RETENTION_DAYS,
    AuditRecord,
    Chunk,
    Conversation,
    ConversationStatus,
    ConversationVersion,
    ConversationWithTurns,
    Dataset,
    ExportRecord,
    ExportStatus,
    Job,
    PromptTemplate,
    StoredTurn,
    Turn,
    TurnFeedback,
    utcnow,
)
from chalicelib.domain.ports import ConversationRow, ReviewFailure, ReviewWrite, TurnsItem

_clock = itertools.count(int(time.time() * 1000))


def _ms() -> int:
    return next(_clock)  # strictly increasing, as the list's deltas need


class InMemoryDatasets:
    """DatasetStore and ConversationSeqReader."""

    def __init__(self) -> None:
        self.items: dict[tuple[str, str], Dataset] = {}
        self.deleting: set[tuple[str, str]] = set()
        self.seq: dict[tuple[str, str], int] = {}
        self.chunks: dict[tuple[str, str], list[Chunk]] = {}

    def _current(self, tenant_id: str, dataset_id: str, include_deleting: bool = False) -> Dataset:
        key = (tenant_id, dataset_id)
        if key not in self.items or (key in self.deleting and not include_deleting):
            raise NotFoundError("dataset", dataset_id)
        return self.items[key]

    def _check(self, tenant_id: str, dataset_id: str, expected_version: int) -> Dataset:
        current = self._current(tenant_id, dataset_id)
        if current.version != expected_version:
            raise StaleVersionError("the dataset was changed by someone else")
        return current

    def create(self, dataset: Dataset) -> Dataset:
        key = (dataset.tenant_id, dataset.dataset_id)
        if key in self.items:
            raise ConflictError(f"dataset '{dataset.dataset_id}' already exists")
        self.items[key] = dataset
        return dataset

    def get(self, tenant_id: str, dataset_id: str, include_deleting: bool = False) -> Dataset:
        return self._current(tenant_id, dataset_id, include_deleting)

    def list_all(self, tenant_id: str) -> list[Dataset]:
        return [
            d for (t, i), d in self.items.items() if t == tenant_id and (t, i) not in self.deleting
        ]

    def save(self, dataset: Dataset, expected_version: int) -> Dataset:
        if (dataset.tenant_id, dataset.dataset_id) not in self.items:
            raise NotFoundError("dataset", dataset.dataset_id)
        current = self.items[(dataset.tenant_id, dataset.dataset_id)]
        if current.version != expected_version:
            raise StaleVersionError(
                "the dataset was changed by someone else",
                {"current": current.model_dump(mode="json")},
            )
        saved = dataset.model_copy(update={"version": expected_version + 1, "updated_at": utcnow()})
        self.items[(dataset.tenant_id, dataset.dataset_id)] = saved
        return saved

    def set_archived(
        self, tenant_id: str, dataset_id: str, actor: str | None, expected_version: int
    ) -> Dataset:
        current = self._check(tenant_id, dataset_id, expected_version)
        now = utcnow()
        saved = current.model_copy(
            update={
                "version": current.version + 1,
                "updated_at": now,
                "archived_at": now if actor else None,
                "archived_by": actor,
            }
        )
        self.items[(tenant_id, dataset_id)] = saved
        return saved

    def mark_deleting(self, tenant_id: str, dataset_id: str, expected_version: int) -> None:
        self._check(tenant_id, dataset_id, expected_version)
        self.deleting.add((tenant_id, dataset_id))

    def get_deleting(self, tenant_id: str, dataset_id: str) -> bool:
        if (tenant_id, dataset_id) not in self.items:
            raise NotFoundError("dataset", dataset_id)
        return (tenant_id, dataset_id) in self.deleting

    def unmark_deleting(self, tenant_id: str, dataset_id: str) -> None:
        self.deleting.discard((tenant_id, dataset_id))

    def replace_chunks(self, tenant_id: str, dataset_id: str, chunks: list[Chunk]) -> None:
        self.chunks[(tenant_id, dataset_id)] = list(chunks)

    def list_chunks(self, tenant_id: str, dataset_id: str) -> list[Chunk]:
        return list(self.chunks.get((tenant_id, dataset_id), []))

    def bump_conversation_seq(self, tenant_id: str, dataset_id: str, n: int = 1) -> int | None:
        if (tenant_id, dataset_id) not in self.items:
            return None
        self.seq[(tenant_id, dataset_id)] = self.seq.get((tenant_id, dataset_id), 0) + n
        return self.seq[(tenant_id, dataset_id)]

    def conversation_seq(self, tenant_id: str, dataset_id: str) -> int:
        self._current(tenant_id, dataset_id)
        return self.seq.get((tenant_id, dataset_id), 0)


@dataclass
class _Stored:
    conversation: Conversation
    updated_ms: int
    deleted: bool = False
    search_text: str = ""


class InMemoryConversations:
    """PlannedConversations and ConversationChanges (what the list read model reads)."""

    def __init__(self, datasets: InMemoryDatasets) -> None:
        self._datasets = datasets
        self.items: dict[tuple[str, str], _Stored] = {}

    def _write(self, c: Conversation, **kw: Any) -> None:
        self.items[(c.tenant_id, c.conversation_id)] = _Stored(c, _ms(), **kw)

    def get(self, tenant_id: str, conversation_id: str) -> Conversation:
        stored = self.items.get((tenant_id, conversation_id))
        if stored is None or stored.deleted:
            raise NotFoundError("conversation", conversation_id)
        return stored.conversation

    def get_many(self, tenant_id: str, ids: Iterable[str]) -> dict[str, Conversation]:
        out: dict[str, Conversation] = {}
        for i in dict.fromkeys(ids):
            stored = self.items.get((tenant_id, i))
            if stored is not None and not stored.deleted:
                out[i] = stored.conversation
        return out

    def changed_since(
        self, tenant_id: str, dataset_id: str, since_ms: int
    ) -> Iterator[ConversationRow]:
        for (t, _), s in sorted(self.items.items(), key=lambda kv: kv[1].updated_ms):
            if (
                t == tenant_id
                and s.conversation.dataset_id == dataset_id
                and s.updated_ms > since_ms
            ):
                yield ConversationRow(s.conversation, s.search_text, s.deleted, s.updated_ms)

    def list_for_dataset(self, tenant_id: str, dataset_id: str) -> list[Conversation]:
        return [
            r.conversation for r in self.changed_since(tenant_id, dataset_id, -1) if not r.deleted
        ]

    def add_planned(self, conversations: list[Conversation]) -> None:
        if not conversations:
            return
        for c in conversations:
            self._write(c)
        first = conversations[0]
        self._datasets.bump_conversation_seq(first.tenant_id, first.dataset_id, len(conversations))

    def soft_delete(self, conversation: Conversation) -> None:
        stored = self.items.get((conversation.tenant_id, conversation.conversation_id))
        if (
            stored is None
            or stored.deleted
            or stored.conversation.status == ConversationStatus.GENERATING
        ):
            raise ConflictError("conversation is being generated or already deleted")
        self._write(stored.conversation, deleted=True)
        self._datasets.bump_conversation_seq(conversation.tenant_id, conversation.dataset_id)

    def purge_dataset(self, tenant_id: str, dataset_id: str) -> int:
        gone = [
            k
            for k, s in self.items.items()
            if k[0] == tenant_id and s.conversation.dataset_id == dataset_id
        ]
        for k in gone:
            del self.items[k]
        return len(gone)


class InMemoryAudit:
    """AuditRepository: append-only."""

    def __init__(self) -> None:
        self.records: list[AuditRecord] = []

    def append(self, record: AuditRecord) -> None:
        self.records.append(record)

    def append_many(self, records: list[AuditRecord]) -> None:
        self.records.extend(records)

    def actions(self, entity_id: str | None = None) -> list[str]:
        return [r.action for r in self.records if entity_id in (None, r.entity_id)]

    def get(self, tenant_id: str, sort_key: str) -> AuditRecord | None:
        return next(
            (r for r in self.records if r.tenant_id == tenant_id and r.sort_key == sort_key), None
        )

    def get_many(self, tenant_id: str, sort_keys: Iterable[str]) -> dict[str, AuditRecord]:
        wanted = set(sort_keys)
        return {
            r.sort_key: r for r in self.records if r.tenant_id == tenant_id and r.sort_key in wanted
        }

    def query(
        self,
        tenant_id: str,
        *,
        entity_id: str | None = None,
        action: str | None = None,
        actor: str | None = None,
        limit: int = 200,
        newest_first: bool = True,
    ) -> list[AuditRecord]:
        found = [
            r
            for r in self.records
            if r.tenant_id == tenant_id
            and entity_id in (None, r.entity_id)
            and action in (None, r.action)
            and actor in (None, r.actor)
        ]
        found.sort(key=lambda r: r.sort_key, reverse=newest_first)
        return found[:limit]


@dataclass
class InMemoryJobs:
    """The job store's reads a job's selection and a dataset's lifecycle make: jobs of a
    dataset (newest first) or a tenant, a job's conversations and its items' outcomes."""

    jobs: list[Job] = field(default_factory=list)
    outcomes: dict[str, dict[str, str]] = field(default_factory=dict)  # job id -> id -> outcome

    def create(self, job: Job) -> Job:
        self.jobs.append(job)
        return job

    def get(self, tenant_id: str, job_id: str) -> Job:
        for j in self.jobs:
            if j.tenant_id == tenant_id and j.job_id == job_id:
                return j
        raise NotFoundError("job", job_id)

    def list_for_dataset(self, tenant_id: str, dataset_id: str, limit: int = 50) -> list[Job]:
        mine = [j for j in self.jobs if j.tenant_id == tenant_id and j.dataset_id == dataset_id]
        return sorted(mine, key=lambda j: j.created_at, reverse=True)[:limit]

    def list_for_tenant(self, tenant_id: str) -> list[Job]:
        return [j for j in self.jobs if j.tenant_id == tenant_id]

    def conversation_ids(self, job: Job) -> list[str]:
        return list(job.conversation_ids)

    def item_outcomes(self, tenant_id: str, job_id: str) -> dict[str, str]:
        return dict(self.outcomes.get(job_id, {}))


@dataclass
class PurgeProgress:
    done: bool
    conversations: int = 0

    def counts(self) -> dict[str, int]:
        return {"conversations": self.conversations}


class InMemoryPurger:
    """DatasetPurger: removes the dataset and its conversations at once."""

    def __init__(self, datasets: InMemoryDatasets, conversations: InMemoryConversations) -> None:
        self._datasets = datasets
        self._conversations = conversations

    def purge(self, tenant_id: str, dataset_id: str, deadline: float) -> PurgeProgress:
        removed = self._conversations.purge_dataset(tenant_id, dataset_id)
        self._datasets.items.pop((tenant_id, dataset_id), None)
        self._datasets.deleting.discard((tenant_id, dataset_id))
        self._datasets.chunks.pop((tenant_id, dataset_id), None)
        return PurgeProgress(done=True, conversations=removed)


@dataclass
class FixedTemplates:
    """ActiveTemplates: a fixed list."""

    templates: list[PromptTemplate] = field(default_factory=list)

    def active_for_generation(self, tenant_id: str) -> list[PromptTemplate]:
        return [t for t in self.templates if t.tenant_id == tenant_id]


class InMemoryExports:
    """ExportStore: claim and save_if_pending are conditional as in DynamoDB."""

    def __init__(self) -> None:
        self.items: dict[tuple[str, str], ExportRecord] = {}

    def save(self, export: ExportRecord) -> ExportRecord:
        self.items[(export.tenant_id, export.export_id)] = export.model_copy(deep=True)
        return export

    def _pending(self, export: ExportRecord) -> ExportRecord | None:
        stored = self.items.get((export.tenant_id, export.export_id))
        return stored if stored is not None and stored.status == ExportStatus.PENDING else None

    def claim(self, export: ExportRecord, token: str) -> ExportRecord | None:
        stored = self._pending(export)
        if stored is None or stored.claim_token is not None:
            return None
        claimed = export.model_copy(update={"claim_token": token, "started_at": utcnow()})
        self.save(claimed)
        return claimed

    def save_if_pending(self, export: ExportRecord, claim_token: str | None) -> bool:
        stored = self._pending(export)
        if stored is None or stored.claim_token != claim_token:
            return False
        self.save(export)
        return True

    def get(self, tenant_id: str, export_id: str) -> ExportRecord:
        if (tenant_id, export_id) not in self.items:
            raise NotFoundError("export", export_id)
        return self.items[(tenant_id, export_id)].model_copy(deep=True)

    def list_all(self, tenant_id: str) -> list[ExportRecord]:
        mine = [e for (t, _), e in self.items.items() if t == tenant_id]
        return sorted(mine, key=lambda e: e.created_at, reverse=True)


class InMemoryApproved:
    """ApprovedConversations over InMemoryConversations: the exported filters of the
    registry (domain/filters.py) and the quality bounds, as the DynamoDB query applies
    them; turns from ``turns``."""

    def __init__(self, conversations: InMemoryConversations) -> None:
        self._conversations = conversations
        self.turns_of: dict[str, list[StoredTurn]] = {}

    def approved(
        self,
        tenant_id: str,
        dataset_id: str,
        filters: Mapping[str, Any],
        fields: Collection[str] | None = None,
        page_size: int | None = None,
    ) -> Iterator[Conversation]:
        for c in self._conversations.list_for_dataset(tenant_id, dataset_id):
            if (
                c.status == ConversationStatus.APPROVED
                and matches_filters(c, filters, EXPORT_FILTERS)
                and in_quality_range(
                    c.quality_score, filters.get("quality_min"), filters.get("quality_max")
                )
            ):
                yield c

    def approved_with_duplicates(
        self,
        tenant_id: str,
        dataset_id: str,
        filters: Mapping[str, Any],
        fields: Collection[str] | None = None,
    ) -> Iterator[tuple[Conversation, str | None]]:
        for c in self.approved(tenant_id, dataset_id, filters, fields):
            yield c, c.quality.duplicate_of if c.quality is not None else None

    def count_approved(
        self, tenant_id: str, dataset_id: str, filters: Mapping[str, Any], stop_at: int
    ) -> int | None:
        return min(sum(1 for _ in self.approved(tenant_id, dataset_id, filters)), stop_at)

    def turns(self, tenant_id: str, conversation_ids: Iterable[str]) -> dict[str, list[StoredTurn]]:
        return {i: self.turns_of[i] for i in conversation_ids if i in self.turns_of}


class InMemoryS3:
    """The S3 calls an export makes, in memory: objects by key, multipart uploads
    joined in part order, presigned URLs that name the key."""

    def __init__(self) -> None:
        self.objects: dict[str, bytes] = {}
        self.uploads: dict[str, dict[int, bytes]] = {}

    def put_object(self, Bucket: str, Key: str, Body: Any, **kw: object) -> None:
        # bytes, or a file the export spooled (boto3 reads it to the end, as here)
        self.objects[Key] = Body.read() if hasattr(Body, "read") else bytes(Body)

    def create_multipart_upload(self, Bucket: str, Key: str, **kw: object) -> dict[str, str]:
        upload_id = f"up-{len(self.uploads) + 1}"
        self.uploads[upload_id] = {}
        return {"UploadId": upload_id}

    def upload_part(
        self, Bucket: str, Key: str, UploadId: str, PartNumber: int, Body: Any, **kw: object
    ) -> dict[str, str]:
        self.uploads[UploadId][PartNumber] = Body.read() if hasattr(Body, "read") else bytes(Body)
        return {"ETag": f"etag-{PartNumber}"}

    def complete_multipart_upload(
        self, Bucket: str, Key: str, UploadId: str, MultipartUpload: dict[str, Any]
    ) -> None:
        parts = self.uploads.pop(UploadId)
        self.objects[Key] = b"".join(parts[p["PartNumber"]] for p in MultipartUpload["Parts"])

    def abort_multipart_upload(self, Bucket: str, Key: str, UploadId: str) -> None:
        self.uploads.pop(UploadId, None)

    def copy_object(self, Bucket: str, Key: str, CopySource: dict[str, str], **kw: object) -> None:
        self.objects[Key] = self.objects[CopySource["Key"]]

    def delete_object(self, Bucket: str, Key: str) -> None:
        self.objects.pop(Key, None)

    def generate_presigned_url(self, method: str, Params: dict[str, str], ExpiresIn: int) -> str:
        return f"https://s3.invalid/{Params['Key']}?expires={ExpiresIn}"


class NoGenerationLogs:
    """GenerationLogReader of conversations written by hand: no calls were made."""

    def list_for_conversation(self, tenant_id: str, conversation_id: str) -> list[Any]:
        return []


class InMemoryReviewedConversations(InMemoryConversations):
    """ReviewedConversations: turns and their marks, earlier versions, the trash, and
    every review write conditional on the version read, committed with its audit record
    (the contract of DynamoConversationRepository.write_reviews)."""

    def __init__(self, datasets: InMemoryDatasets, audit: InMemoryAudit) -> None:
        super().__init__(datasets)
        self.audit = audit
        self.turns: dict[tuple[str, str], TurnsItem] = {}
        self.earlier: dict[tuple[str, str], list[ConversationVersion]] = {}
        self.purge_at: dict[tuple[str, str], datetime] = {}

    def set_turns(self, conversation: Conversation, turns: list[Turn]) -> None:
        self.turns[(conversation.tenant_id, conversation.conversation_id)] = TurnsItem(
            turns, {}, utcnow()
        )

    def get_many(
        self, tenant_id: str, ids: Iterable[str], consistent: bool = False
    ) -> dict[str, Conversation]:
        return super().get_many(tenant_id, ids)

    def get_turns_item(self, tenant_id: str, conversation_id: str) -> TurnsItem | None:
        return self.turns.get((tenant_id, conversation_id))

    def get_with_turns(self, tenant_id: str, conversation_id: str) -> ConversationWithTurns:
        conversation = self.get(tenant_id, conversation_id)
        item = self.get_turns_item(tenant_id, conversation_id)
        return ConversationWithTurns(
            conversation=conversation,
            turns=item.turns if item else [],
            feedback=item.feedback if item else {},
        )

    def versions(
        self, tenant_id: str, conversation_id: str, with_turns: bool = False
    ) -> list[ConversationVersion]:
        return list(self.earlier.get((tenant_id, conversation_id), []))

    def version(self, tenant_id: str, conversation_id: str, number: int) -> ConversationVersion:
        for v in self.earlier.get((tenant_id, conversation_id), []):
            if v.number == number:
                return v
        raise NotFoundError("version", str(number))

    def _in_trash(self, key: tuple[str, str]) -> bool:
        stored = self.items.get(key)
        return (
            stored is not None
            and stored.deleted
            and stored.conversation.trashed_at is not None
            and self.purge_at.get(key, utcnow()) > utcnow()
        )

    def trash(self, tenant_id: str, dataset_id: str) -> list[tuple[Conversation, datetime]]:
        rows = [
            (self.items[k].conversation, self.purge_at[k])
            for k in self.items
            if k[0] == tenant_id
            and self.items[k].conversation.dataset_id == dataset_id
            and self._in_trash(k)
        ]
        return sorted(rows, key=lambda r: r[0].trashed_at or r[1], reverse=True)

    def trashed(
        self, tenant_id: str, ids: Iterable[str], consistent: bool = False
    ) -> dict[str, Conversation]:
        return {
            i: self.items[(tenant_id, i)].conversation
            for i in dict.fromkeys(ids)
            if self._in_trash((tenant_id, i))
        }

    def _failure(self, tenant_id: str, conversation_id: str) -> ReviewFailure:
        current = super().get_many(tenant_id, [conversation_id]).get(conversation_id)
        if current is None:
            return ReviewFailure("not_found")
        if current.status == ConversationStatus.GENERATING:
            return ReviewFailure("generating", current)
        return ReviewFailure("stale", current)

    def write_reviews(self, writes: Sequence[ReviewWrite]) -> dict[str, ReviewFailure]:
        failed: dict[str, ReviewFailure] = {}
        now = utcnow()
        for w in writes:
            c = w.before
            key = (c.tenant_id, c.conversation_id)
            stored = self.items.get(key)
            if w.restore:
                ok = (
                    stored is not None
                    and self._in_trash(key)
                    and stored.conversation.version == c.version
                )
            else:
                # a review is conditional on the version; a move to the trash also on
                # the conversation not being generated
                ok = (
                    stored is not None
                    and not stored.deleted
                    and stored.conversation.version == c.version
                    and (w.after is not None or c.status != ConversationStatus.GENERATING)
                )
            if not ok:
                failed[c.conversation_id] = self._failure(c.tenant_id, c.conversation_id)
                continue
            if w.after is None:
                trashed = c.model_copy(
                    update={
                        "trashed_at": now,
                        "trashed_by": w.audit.actor,
                        "version": c.version + 1,
                        "updated_at": now,
                    }
                )
                self._write(trashed, deleted=True)
                self.purge_at[key] = now + timedelta(days=TRASH_RETENTION_DAYS)
            else:
                self._write(w.after)
                self.purge_at.pop(key, None)
            self.audit.append(w.audit)
        return failed

    def write_turn_feedback(
        self,
        before: Conversation,
        after: Conversation,
        item: TurnsItem,
        turns: list[Turn],
        feedback: dict[int, TurnFeedback],
        audit: AuditRecord,
    ) -> ReviewFailure | None:
        key = (before.tenant_id, before.conversation_id)
        stored = self.items.get(key)
        current_turns = self.turns.get(key)
        if (
            stored is None
            or stored.deleted
            or stored.conversation.version != before.version
            or stored.conversation.status == ConversationStatus.GENERATING
            or current_turns is None
            or current_turns.created_at != item.created_at
        ):
            return self._failure(before.tenant_id, before.conversation_id)
        self._write(after)
        self.turns[key] = TurnsItem(turns, dict(feedback), item.created_at)
        self.audit.append(audit)
        return None

    def reset_for_regeneration(self, conversation: Conversation) -> Conversation:
        key = (conversation.tenant_id, conversation.conversation_id)
        stored = self.items.get(key)
        if (
            stored is None
            or stored.deleted
            or stored.conversation.status == ConversationStatus.GENERATING
            or stored.conversation.version != conversation.version
        ):
            raise ConflictError("conversation is being generated or was changed; try again")
        reset = stored.conversation.model_copy(
            update={
                "status": ConversationStatus.NOT_GENERATED,
                "approved_by": None,
                "approved_at": None,
                "error_message": None,
                "updated_at": utcnow(),
                "version": stored.conversation.version + 1,
            }
        )
        self._write(reset)
        self._datasets.bump_conversation_seq(conversation.tenant_id, conversation.dataset_id)
        return reset
