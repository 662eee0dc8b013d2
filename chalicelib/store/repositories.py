"""DynamoDB repositories (pynamodb). Every method takes the tenant id first.

Writes that a retry can repeat are conditional (design rule 5, docs/architecture.md); review edits use an
explicit ``version`` number as optimistic lock (a stale write is a ``StaleVersionError``).
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Iterator, Sequence
from contextlib import suppress
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from itertools import islice
from typing import Any

from pynamodb.exceptions import (
    DeleteError,
    DoesNotExist,
    PutError,
    TransactWriteError,
    UpdateError,
)
from pynamodb.expressions.condition import size
from pynamodb.transactions import TransactWrite

from chalicelib.domain.concurrency import Backoff, FlightStats
from chalicelib.domain.errors import ConflictError, NotFoundError, StaleVersionError
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
    FineTune,
    GenerationLog,
    Job,
    JobStatus,
    NotificationMessage,
    PromptTemplate,
    TemplateVersion,
    Turn,
    TurnFeedback,
    template_name_key,
    utcnow,
)
from chalicelib.domain.ports import (
    ClaimOutcome,
    ConversationRow,
    JobItemWrite,
    ReviewFailure,
    ReviewWrite,
    TurnsItem,
)
from chalicelib.store.mapping import doc_of, domain_from_record, record_from_domain
from chalicelib.store.records import (
    AuditRecordRow,
    ChunkRecord,
    ConversationRecord,
    ConversationVersionRecord,
    DatasetRecord,
    ExportRecordRow,
    FineTuneRecordRow,
    GenerationLogRecord,
    JobItemRecord,
    JobRecord,
    NotificationRecord,
    RateLimitRecord,
    TemplateRecord,
    TemplateVersionRecord,
    TurnsRecord,
    shared_connection,
    tenant_key,
)


def _ms(dt: datetime | None = None) -> int:
    return int((dt or utcnow()).timestamp() * 1000)


def _is_condition_failure(exc: Exception) -> bool:
    code = getattr(exc, "cause_response_code", None)
    if code in ("ConditionalCheckFailedException", "TransactionCanceledException"):
        return True
    reasons = getattr(exc, "cancellation_reasons", None) or []
    return any(r is not None and r.code == "ConditionalCheckFailed" for r in reasons)


# --------------------------------------------------------------------------- datasets


class DynamoDatasetRepository:
    def create(self, dataset: Dataset) -> Dataset:
        record = record_from_domain(DatasetRecord, dataset)
        try:
            record.save(condition=DatasetRecord.dataset_id.does_not_exist())
        except PutError as e:
            if not _is_condition_failure(e):
                raise  # a connection or service error is not a conflict
            raise ConflictError(f"dataset '{dataset.dataset_id}' already exists") from e
        return dataset

    def get(self, tenant_id: str, dataset_id: str, include_deleting: bool = False) -> Dataset:
        try:
            record = DatasetRecord.get(tenant_id, dataset_id, consistent_read=True)
        except DoesNotExist as e:
            raise NotFoundError("dataset", dataset_id) from e
        if record.deleted_at is not None and not include_deleting:
            raise NotFoundError("dataset", dataset_id)
        return domain_from_record(Dataset, record)

    def list_all(self, tenant_id: str) -> list[Dataset]:
        return [
            domain_from_record(Dataset, r)
            for r in DatasetRecord.query(tenant_id)
            if r.deleted_at is None
        ]

    def set_archived(
        self, tenant_id: str, dataset_id: str, actor: str | None, expected_version: int
    ) -> Dataset:
        """Archive (``actor`` given) or unarchive; a stale ``expected_version`` -> 409."""
        R = DatasetRecord
        now = utcnow()
        actions: list[Any] = [R.version.add(1), R.updated_at.set(now)]
        if actor is None:
            actions += [R.archived_at.remove(), R.archived_by.remove()]
        else:
            actions += [R.archived_at.set(now), R.archived_by.set(actor)]
        try:
            R(tenant_id, dataset_id).update(
                actions=actions,
                condition=R.dataset_id.exists()
                & R.deleted_at.does_not_exist()
                & (R.version == expected_version),
            )
        except UpdateError as e:
            if _is_condition_failure(e):
                raise StaleVersionError("the dataset was changed by someone else") from e
            raise
        return self.get(tenant_id, dataset_id)

    def mark_deleting(self, tenant_id: str, dataset_id: str, expected_version: int) -> None:
        """Hide the dataset from every read (404) before its items are purged."""
        R = DatasetRecord
        try:
            R(tenant_id, dataset_id).update(
                actions=[R.deleted_at.set(utcnow())],
                condition=R.dataset_id.exists()
                & R.deleted_at.does_not_exist()
                & (R.version == expected_version),
            )
        except UpdateError as e:
            if _is_condition_failure(e):
                raise StaleVersionError("the dataset was changed by someone else") from e
            raise

    def get_deleting(self, tenant_id: str, dataset_id: str) -> bool:
        """Whether the dataset is being deleted (404 when it does not exist at all)."""
        try:
            record = DatasetRecord.get(
                tenant_id,
                dataset_id,
                attributes_to_get=["dataset_id", "deleted_at"],
                consistent_read=True,
            )
        except DoesNotExist as e:
            raise NotFoundError("dataset", dataset_id) from e
        return record.deleted_at is not None

    def unmark_deleting(self, tenant_id: str, dataset_id: str) -> None:
        DatasetRecord(tenant_id, dataset_id).update(
            actions=[DatasetRecord.deleted_at.remove()],
            condition=DatasetRecord.dataset_id.exists(),
        )

    def save(self, dataset: Dataset, expected_version: int) -> Dataset:
        """Replace the dataset's editable fields; stale ``expected_version`` -> 409."""
        dataset = dataset.model_copy(
            update={"version": expected_version + 1, "updated_at": utcnow()}
        )
        record = record_from_domain(DatasetRecord, dataset)
        actions = [
            getattr(DatasetRecord, name).set(getattr(record, name))
            for name in (
                "name",
                "description",
                "business_name",
                "target_count",
                "tier_distribution",
                "budget_usd",
                "model",
                "taxonomy",
                "chunk_count",
                "plan_seed",
                "quality_rules",
                "judge_mode",
                "require_reject_note",
                "updated_at",
                "version",
            )
        ]
        try:
            DatasetRecord(dataset.tenant_id, dataset.dataset_id).update(
                actions=actions,
                condition=DatasetRecord.dataset_id.exists()
                & (DatasetRecord.version == expected_version),
            )
        except UpdateError as e:
            if _is_condition_failure(e):
                current = self.get(dataset.tenant_id, dataset.dataset_id)
                raise StaleVersionError(
                    "the dataset was changed by someone else",
                    {"current": doc_of(current)},
                ) from e
            raise
        return dataset

    def bump_conversation_seq(self, tenant_id: str, dataset_id: str, n: int = 1) -> int | None:
        """Signal list caches that conversations of this dataset changed; returns the new
        counter (None when the dataset is gone)."""
        record = DatasetRecord(tenant_id, dataset_id)
        try:
            record.update(
                actions=[DatasetRecord.conv_seq.add(n)],
                condition=DatasetRecord.dataset_id.exists(),
            )
        except UpdateError as e:
            if not _is_condition_failure(e):
                raise
            return None
        return int(record.conv_seq or 0)

    def conversation_seq(self, tenant_id: str, dataset_id: str) -> int:
        try:
            record = DatasetRecord.get(
                tenant_id,
                dataset_id,
                attributes_to_get=["dataset_id", "conv_seq", "deleted_at"],
                consistent_read=True,
            )
        except DoesNotExist as e:
            raise NotFoundError("dataset", dataset_id) from e
        if record.deleted_at is not None:
            raise NotFoundError("dataset", dataset_id)
        return int(record.conv_seq or 0)

    # chunks ---------------------------------------------------------------------
    def replace_chunks(self, tenant_id: str, dataset_id: str, chunks: list[Chunk]) -> None:
        key = tenant_key(tenant_id, dataset_id)
        new_ids = {c.chunk_id for c in chunks}
        with ChunkRecord.batch_write() as batch:
            # The hash key too: a delete needs the whole key (with chunk_id alone, the
            # old chunks were never removed and a re-import kept them).
            for old in ChunkRecord.query(key, attributes_to_get=["dataset_key", "chunk_id"]):
                if old.chunk_id not in new_ids:
                    batch.delete(old)
            for chunk in chunks:
                batch.save(record_from_domain(ChunkRecord, chunk, dataset_key=key))

    def list_chunks(self, tenant_id: str, dataset_id: str) -> list[Chunk]:
        key = tenant_key(tenant_id, dataset_id)
        return [domain_from_record(Chunk, r) for r in ChunkRecord.query(key)]


# --------------------------------------------------------------------------- conversations


TRANSACTION_MAX_OPS = 100  # DynamoDB's limit per TransactWriteItems
REVIEW_TX_ATTEMPTS = 4
# What a review (PATCH, bulk approve/reject) writes; the removable ones are cleared
# when the new state has none (e.g. approved_by after a reject).
REVIEW_FIELDS = (
    "status",
    "persona",
    "emotion",
    "topic",
    "intent",
    "tone",
    "tier",
    "title",
    "approved_by",
    "approved_at",
    "reviewed_by",
    "reviewed_at",
    "reviewer_notes",
    "updated_at",
    "updated_ms",
    "version",
)
REVIEW_REMOVABLE = ("approved_by", "approved_at", "reviewed_by", "reviewed_at", "reviewer_notes")


TRASH_VERSIONS_IN_TX = 40  # versions marked inside a trash/restore transaction


def _operations(write: ReviewWrite) -> int:
    """The transaction operations a review write takes (at most 100 per transaction)."""
    if not write.moves:
        return 2  # update + audit put
    versions = min(len(write.version_numbers), TRASH_VERSIONS_IN_TX)
    return 2 + int(write.has_turns) + versions


def _feedback_of(raw: Any) -> dict[int, TurnFeedback]:
    return {int(n): TurnFeedback.model_validate(v) for n, v in (raw or {}).items()}


_LISTED_ATTRIBUTES = [n for n in ConversationRecord.get_attributes() if n != "quality"]


def _search_text(turns: Iterable[Turn]) -> str:
    return " ".join(t.content for t in turns).lower()


class DynamoConversationRepository:
    def __init__(self, datasets: DynamoDatasetRepository) -> None:
        self._datasets = datasets

    # reads ----------------------------------------------------------------------
    def _record(self, tenant_id: str, conversation_id: str) -> ConversationRecord:
        try:
            record = ConversationRecord.get(tenant_id, conversation_id, consistent_read=True)
        except DoesNotExist as e:
            raise NotFoundError("conversation", conversation_id) from e
        if record.deleted:
            raise NotFoundError("conversation", conversation_id)
        return record

    def get(self, tenant_id: str, conversation_id: str) -> Conversation:
        return domain_from_record(Conversation, self._record(tenant_id, conversation_id))

    def get_many(
        self, tenant_id: str, ids: Iterable[str], consistent: bool = False
    ) -> dict[str, Conversation]:
        keys = [(tenant_id, i) for i in dict.fromkeys(ids)]
        out: dict[str, Conversation] = {}
        for record in ConversationRecord.batch_get(keys, consistent_read=consistent or None):
            if not record.deleted:
                out[record.conversation_id] = domain_from_record(Conversation, record)
        return out

    def get_turns(self, tenant_id: str, conversation_id: str) -> list[Turn]:
        try:
            record = TurnsRecord.get(tenant_id, conversation_id, consistent_read=True)
        except DoesNotExist:
            return []
        return [Turn.model_validate(t) for t in record.turns]

    def get_turns_many(self, tenant_id: str, ids: Iterable[str]) -> dict[str, list[Turn]]:
        keys = [(tenant_id, i) for i in dict.fromkeys(ids)]
        return {
            r.conversation_id: [Turn.model_validate(t) for t in r.turns]
            for r in TurnsRecord.batch_get(keys)
        }

    def get_with_turns(self, tenant_id: str, conversation_id: str) -> ConversationWithTurns:
        conversation = self.get(tenant_id, conversation_id)
        item = self.get_turns_item(tenant_id, conversation_id)
        return ConversationWithTurns(
            conversation=conversation,
            turns=item.turns if item else [],
            feedback=item.feedback if item else {},
        )

    def get_turns_item(self, tenant_id: str, conversation_id: str) -> TurnsItem | None:
        try:
            record = TurnsRecord.get(tenant_id, conversation_id, consistent_read=True)
        except DoesNotExist:
            return None
        return TurnsItem(
            turns=[Turn.model_validate(t) for t in record.turns],
            feedback=_feedback_of(record.feedback),
            created_at=record.created_at,
        )

    def write_turn_feedback(
        self,
        before: Conversation,
        after: Conversation,
        item: TurnsItem,
        turns: list[Turn],
        feedback: dict[int, TurnFeedback],
        audit: AuditRecord,
    ) -> ReviewFailure | None:
        """A turn's new text and marks, the conversation's new version (and status, when an
        edit sends it back to review) and the audit record, in one transaction:
        conditional on the version read and on the turns being the generation read."""
        R, T = ConversationRecord, TurnsRecord
        record, old = self._to_record(after), self._to_record(before)
        actions: list[Any] = [R.search_text.set(_search_text(turns))]
        for name in REVIEW_FIELDS:
            value = getattr(record, name)
            if value is not None:
                if value != getattr(old, name) or name in ("updated_ms", "version"):
                    actions.append(getattr(R, name).set(value))
            elif name in REVIEW_REMOVABLE and getattr(old, name) is not None:
                actions.append(getattr(R, name).remove())
        marks = {str(n): f.model_dump(mode="json") for n, f in sorted(feedback.items())}
        try:
            with TransactWrite(connection=shared_connection()) as tx:
                tx.update(
                    R(before.tenant_id, before.conversation_id),
                    actions=actions,
                    condition=(R.deleted == False)  # noqa: E712
                    & (R.version == before.version)
                    & (R.status != ConversationStatus.GENERATING.value),
                )
                tx.update(
                    T(before.tenant_id, before.conversation_id),
                    actions=[
                        T.turns.set([t.model_dump() for t in turns]),
                        T.feedback.set(marks) if marks else T.feedback.remove(),
                    ],
                    condition=T.created_at == item.created_at,
                )
                tx.save(audit_row(audit), condition=AuditRecordRow.sort_key.does_not_exist())
        except TransactWriteError as e:
            if not _is_condition_failure(e):
                raise
            now = self.get_many(before.tenant_id, [before.conversation_id], consistent=True)
            current = now.get(before.conversation_id)
            if current is None:
                return ReviewFailure("not_found")
            if current.status == ConversationStatus.GENERATING:
                return ReviewFailure("generating", current)
            return ReviewFailure("stale", current)
        self._datasets.bump_conversation_seq(before.tenant_id, before.dataset_id)
        return None

    def changed_since(
        self, tenant_id: str, dataset_id: str, since_ms: int
    ) -> Iterator[ConversationRow]:
        """Every attribute but the quality report (its summary instead): a report is a few
        kilobytes that lists never show; a conversation's detail reads it."""
        key = tenant_key(tenant_id, dataset_id)
        for record in ConversationRecord.by_dataset.query(
            key,
            ConversationRecord.updated_ms > since_ms,
            attributes_to_get=_LISTED_ATTRIBUTES,
        ):
            yield ConversationRow(
                conversation=domain_from_record(Conversation, record),
                search_text=record.search_text or "",
                deleted=bool(record.deleted),
                updated_ms=int(record.updated_ms),
            )

    def list_for_dataset(self, tenant_id: str, dataset_id: str) -> list[Conversation]:
        return [
            row.conversation
            for row in self.changed_since(tenant_id, dataset_id, -1)
            if not row.deleted
        ]

    # writes ---------------------------------------------------------------------
    def _to_record(self, c: Conversation, search_text: str | None = None) -> ConversationRecord:
        brief = c.quality_brief()
        return record_from_domain(
            ConversationRecord,
            c,
            dataset_key=tenant_key(c.tenant_id, c.dataset_id),
            updated_ms=_ms(),
            search_text=search_text,
            deleted=False,
            quality_summary=brief.model_dump(mode="json") if brief else None,
        )

    def add_planned(self, conversations: list[Conversation]) -> None:
        if not conversations:
            return
        with ConversationRecord.batch_write() as batch:
            for c in conversations:
                batch.save(self._to_record(c))
        first = conversations[0]
        self._datasets.bump_conversation_seq(first.tenant_id, first.dataset_id, len(conversations))

    def claim_for_generation(
        self,
        tenant_id: str,
        conversation_id: str,
        job_id: str,
        token: str = "",
        estimated_cost_usd: float | None = None,
    ) -> tuple[ClaimOutcome, Conversation | None]:
        """not_generated|failed -> generating (owned by job); a re-claim by the same job
        (a retried task) counts the attempt. Never takes an item from another job, and
        never one this job already failed: that failure is the item's recorded outcome,
        and a task re-run after it was committed (a Lambda that died after the write)
        must not pay for another call."""
        R = ConversationRecord
        now = utcnow()
        common = [R.updated_at.set(now), R.updated_ms.set(_ms(now)), R.version.add(1)]
        alive = R.conversation_id.exists() & (R.deleted == False)  # noqa: E712
        record = R(tenant_id, conversation_id)
        try:
            record.update(
                actions=[
                    R.status.set(ConversationStatus.GENERATING.value),
                    R.job_id.set(job_id),
                    R.claim_token.set(token or job_id),
                    R.generation_attempts.set(1),
                    *(
                        [R.estimated_cost_usd.set(round(estimated_cost_usd, 6))]
                        if estimated_cost_usd is not None
                        else []
                    ),
                    R.error_message.remove(),
                    *common,
                ],
                condition=alive
                & (
                    (R.status == ConversationStatus.NOT_GENERATED.value)
                    | (
                        (R.status == ConversationStatus.FAILED.value)
                        & (R.job_id.does_not_exist() | (R.job_id != job_id))
                    )
                ),
            )
        except UpdateError as e:
            if not _is_condition_failure(e):
                raise
            try:
                record.update(
                    actions=[R.generation_attempts.add(1), *common],
                    # Only the execution that claimed it may retry it: two executions
                    # of one job (a resume racing a drain) never generate it twice.
                    condition=alive
                    & (R.status == ConversationStatus.GENERATING.value)
                    & (R.job_id == job_id)
                    & (R.claim_token == (token or job_id)),
                )
            except UpdateError as e2:
                if not _is_condition_failure(e2):
                    raise
                try:
                    current = self.get(tenant_id, conversation_id)
                except NotFoundError:
                    return ClaimOutcome.INELIGIBLE, None
                if current.job_id == job_id and current.status in (
                    ConversationStatus.GENERATED,
                    ConversationStatus.APPROVED,
                    ConversationStatus.REJECTED,
                    ConversationStatus.FAILED,  # this job's outcome for it: failed
                ):
                    return ClaimOutcome.ALREADY_DONE, current
                return ClaimOutcome.INELIGIBLE, current
        # pynamodb's update returns ALL_NEW into the instance: no second read. The
        # list index sees "generating" with the next bump (a commit), not this one.
        return ClaimOutcome.CLAIMED, domain_from_record(Conversation, record)

    def assign_chunk(self, conversation: Conversation, chunk: Chunk, scenario: str) -> bool:
        """Give a scenario conversation planned without a chunk the chunk it will be
        generated from; only while it is still waiting to be generated and unchanged
        (its version), so a review or another job's claim always wins."""
        R = ConversationRecord
        now = utcnow()
        try:
            R(conversation.tenant_id, conversation.conversation_id).update(
                actions=[
                    R.chunk_id.set(chunk.chunk_id),
                    R.document_id.set(chunk.document_id),
                    R.scenario.set(scenario),
                    R.updated_at.set(now),
                    R.updated_ms.set(_ms(now)),
                    R.version.add(1),
                ],
                condition=(R.deleted == False)  # noqa: E712
                & R.status.is_in(
                    ConversationStatus.NOT_GENERATED.value, ConversationStatus.FAILED.value
                )
                & (R.version == conversation.version)
                & R.chunk_id.does_not_exist(),
            )
        except UpdateError as e:
            if _is_condition_failure(e):
                return False
            raise
        return True

    def release_claim(self, tenant_id: str, conversation_id: str, job_id: str) -> None:
        """generating -> not_generated when a job stops before running the item."""
        R = ConversationRecord
        try:
            R(tenant_id, conversation_id).update(
                actions=[
                    R.status.set(ConversationStatus.NOT_GENERATED.value),
                    R.claim_token.remove(),
                    R.updated_ms.set(_ms()),
                ],
                condition=(R.status == ConversationStatus.GENERATING.value) & (R.job_id == job_id),
            )
        except UpdateError as e:
            if not _is_condition_failure(e):
                raise

    def commit_generation(
        self,
        conversation: Conversation,
        turns: list[Turn],
        job_item: JobItemWrite | None,
        audit: AuditRecord | None = None,
    ) -> bool:
        """Store a generated conversation, its turns and the job's count in one transaction.

        Returns False (and writes nothing) if the conversation is no longer being
        generated by this job or the job already counted the item: a retry never
        stores twice, never doubles turns, never counts twice.
        """
        R, T, V = ConversationRecord, TurnsRecord, ConversationVersionRecord
        record = self._to_record(conversation, _search_text(turns))
        # A regeneration keeps the generation it replaces as a version, in the same
        # transaction; the turns put is conditional on the turns that were archived.
        previous = self._previous_generation(conversation)
        turns_unchanged: Any
        if previous is None:
            record.generation_number = 1
            turns_unchanged = T.conversation_id.does_not_exist()
        else:
            version, stored_turns = previous
            record.generation_number = version.number + 1
            turns_unchanged = T.created_at == stored_turns.created_at
        try:
            with TransactWrite(connection=shared_connection()) as tx:
                tx.save(
                    record,
                    condition=(R.status == ConversationStatus.GENERATING.value)
                    & (R.job_id == (conversation.job_id or "")),
                )
                tx.save(
                    TurnsRecord(
                        conversation.tenant_id,
                        conversation.conversation_id,
                        turns=[t.model_dump() for t in turns],
                        created_at=utcnow(),
                    ),
                    condition=turns_unchanged,
                )
                if previous is not None:
                    tx.save(
                        self._version_row(
                            conversation.tenant_id, conversation.conversation_id, previous[0]
                        ),
                        condition=V.number.does_not_exist(),
                    )
                if job_item is not None:
                    add_job_item(tx, job_item)
                if audit is not None:
                    tx.save(audit_row(audit))
        except TransactWriteError as e:
            if _is_condition_failure(e):
                return False
            raise
        self._datasets.bump_conversation_seq(conversation.tenant_id, conversation.dataset_id)
        return True

    def _previous_generation(
        self, conversation: Conversation
    ) -> tuple[ConversationVersion, TurnsRecord] | None:
        """The generation a commit replaces (as a version) and its stored turns item; None
        when there is none (a first generation)."""
        key = (conversation.tenant_id, conversation.conversation_id)
        try:
            stored_turns = TurnsRecord.get(*key, consistent_read=True)
        except DoesNotExist:
            return None
        try:
            stored = ConversationRecord.get(*key, consistent_read=True)
        except DoesNotExist:
            return None
        held = domain_from_record(Conversation, stored)
        number = max(int(stored.generation_number or 0), 1)
        turns = [Turn.model_validate(t) for t in stored_turns.turns]
        marks = _feedback_of(stored_turns.feedback)
        return ConversationVersion.of(number, held, turns, marks), stored_turns

    @staticmethod
    def _version_row(
        tenant_id: str, conversation_id: str, version: ConversationVersion
    ) -> ConversationVersionRecord:
        return ConversationVersionRecord(
            tenant_key(tenant_id, conversation_id),
            version.number,
            tenant_id=tenant_id,
            doc=version.model_dump(mode="json", exclude={"number", "turns", "superseded_at"}),
            turns=[t.model_dump() for t in version.turns],
            superseded_at=version.superseded_at,
        )

    def versions(
        self, tenant_id: str, conversation_id: str, with_turns: bool = False
    ) -> list[ConversationVersion]:
        """A conversation's earlier generations, oldest first (turns only if asked)."""
        V = ConversationVersionRecord
        names = None if with_turns else ["number", "doc", "superseded_at"]
        out = []
        for r in V.query(
            tenant_key(tenant_id, conversation_id), consistent_read=True, attributes_to_get=names
        ):
            turns = [Turn.model_validate(t) for t in (r.turns or [])] if with_turns else []
            out.append(
                ConversationVersion(
                    number=int(r.number), turns=turns, superseded_at=r.superseded_at, **r.doc
                )
            )
        return out

    def version(self, tenant_id: str, conversation_id: str, number: int) -> ConversationVersion:
        try:
            r = ConversationVersionRecord.get(
                tenant_key(tenant_id, conversation_id), number, consistent_read=True
            )
        except DoesNotExist as e:
            raise NotFoundError("version", f"{conversation_id}@{number}") from e
        return ConversationVersion(
            number=int(r.number),
            turns=[Turn.model_validate(t) for t in r.turns],
            superseded_at=r.superseded_at,
            **r.doc,
        )

    def commit_failure(
        self, conversation: Conversation, message: str, job_item: JobItemWrite | None
    ) -> bool:
        R = ConversationRecord
        try:
            with TransactWrite(connection=shared_connection()) as tx:
                tx.update(
                    R(conversation.tenant_id, conversation.conversation_id),
                    actions=[
                        R.status.set(ConversationStatus.FAILED.value),
                        R.error_message.set(message[:2000]),
                        R.updated_at.set(utcnow()),
                        R.updated_ms.set(_ms()),
                        R.version.add(1),
                    ],
                    condition=(R.status == ConversationStatus.GENERATING.value)
                    & (R.job_id == (conversation.job_id or "")),
                )
                if job_item is not None:
                    add_job_item(tx, job_item)
        except TransactWriteError as e:
            if _is_condition_failure(e):
                return False
            raise
        self._datasets.bump_conversation_seq(conversation.tenant_id, conversation.dataset_id)
        return True

    def write_reviews(self, writes: Sequence[ReviewWrite]) -> dict[str, ReviewFailure]:
        """Apply review edits/deletes, each atomically with its audit record.

        A write is all-or-nothing: the conversation change and its audit record commit
        in one transaction, conditional on the version that was read. Writes are packed
        into transactions of up to 100 operations (one round trip for 50 approvals); a
        transaction cancelled because of some of its writes is retried without them.
        Returns the writes that did not apply, by conversation id. The caller bumps the
        datasets' list seq.

        botocore resends a transaction whose response it lost (read timeout, dropped
        connection) with the same ClientRequestToken; DynamoDB (and the local emulator's
        patch) answers a resend of a committed transaction with success, not a refusal.
        """
        failed: set[str] = set()
        unresolved: set[str] = set()
        moving = [w.conversation_id for w in writes if w.moves]
        if moving:
            present = self._turns_present(writes[0].before.tenant_id, moving)
            writes = [
                replace(w, has_turns=w.conversation_id in present) if w.moves else w for w in writes
            ]
        pending = list(writes)
        while pending:
            chunk: list[ReviewWrite] = []
            ops = 0
            while pending and ops + _operations(pending[0]) <= TRANSACTION_MAX_OPS:
                ops += _operations(pending[0])
                chunk.append(pending.pop(0))
            for _ in range(REVIEW_TX_ATTEMPTS):
                refused = self._write_review_chunk(chunk)
                if refused is None:
                    chunk = []
                    break
                failed |= refused
                chunk = [w for w in chunk if w.conversation_id not in refused]
                if not chunk:
                    break
            unresolved |= {w.conversation_id for w in chunk}
        self._mark_remaining_versions(
            [w for w in writes if w.moves and w.conversation_id not in failed | unresolved]
        )
        out: dict[str, ReviewFailure] = {}
        if failed or unresolved:
            tenant_id = writes[0].before.tenant_id
            current = self.get_many(tenant_id, [*failed, *unresolved])
            for cid in [*failed, *unresolved]:
                now = current.get(cid)
                if now is None:
                    out[cid] = ReviewFailure("not_found")
                elif cid in unresolved:
                    out[cid] = ReviewFailure("conflict", now)
                elif now.status == ConversationStatus.GENERATING:
                    out[cid] = ReviewFailure("generating", now)
                else:
                    out[cid] = ReviewFailure("stale", now)
        return out

    def _write_review_chunk(self, chunk: list[ReviewWrite]) -> set[str] | None:
        """One transaction. None when it committed; else the ids whose condition failed
        (empty when it was cancelled only by transient conflicts)."""
        # pynamodb sends deletes, then puts, then updates (each kind in the order they
        # were added); cancellation reasons come in that order.
        owners = [w.conversation_id for w in chunk]  # audit puts
        for w in chunk:  # conversation updates, then its turns' and versions' marks
            owners += [w.conversation_id] * (_operations(w) - 1)
        try:
            with TransactWrite(connection=shared_connection()) as tx:
                for w in chunk:
                    self._add_review(tx, w)
        except TransactWriteError as e:
            reasons = list(getattr(e, "cancellation_reasons", None) or [])
            if len(reasons) != len(owners):
                raise
            codes = [getattr(r, "code", None) for r in reasons]
            if all(code in (None, "None") for code in codes):
                raise
            return {
                o for o, code in zip(owners, codes, strict=True) if code == "ConditionalCheckFailed"
            }
        return None

    def _add_review(self, tx: TransactWrite, w: ReviewWrite) -> None:
        R = ConversationRecord
        c = w.before
        unchanged = (R.deleted == False) & (R.version == c.version)  # noqa: E712
        if w.after is None:
            now = utcnow()
            purge = now + timedelta(days=TRASH_RETENTION_DAYS)
            tx.update(
                R(c.tenant_id, c.conversation_id),
                actions=[
                    R.deleted.set(True),
                    R.trash_key.set(tenant_key(c.tenant_id, c.dataset_id)),
                    R.trashed_ms.set(_ms(now)),
                    R.trashed_at.set(now),
                    R.trashed_by.set(w.audit.actor),
                    R.purge_at.set(purge),
                    R.updated_ms.set(_ms(now)),
                    R.updated_at.set(now),
                    R.version.add(1),
                ],
                condition=unchanged & (R.status != ConversationStatus.GENERATING.value),
            )
            self._mark_children(tx, w, purge)
        elif w.restore:
            now = utcnow()
            tx.update(
                R(c.tenant_id, c.conversation_id),
                actions=[
                    R.deleted.set(False),
                    R.trash_key.remove(),
                    R.trashed_ms.remove(),
                    R.trashed_at.remove(),
                    R.trashed_by.remove(),
                    R.purge_at.remove(),
                    R.updated_ms.set(_ms(now)),
                    R.updated_at.set(now),
                    R.version.add(1),
                ],
                # Still in the trash as read, and not past its purge time (DynamoDB's TTL
                # deletes within days of it, so an expired item may still be there).
                condition=(R.deleted == True)  # noqa: E712
                & (R.version == c.version)
                & R.trashed_at.exists()
                & (R.purge_at > now),
            )
            self._mark_children(tx, w, None)
        else:
            # Only the fields a review may change: never quality (revalidation writes it
            # without a version bump) nor anything generation owns.
            # The version condition guarantees the item is ``before``: write what differs.
            record, old = self._to_record(w.after), self._to_record(c)
            actions: list[Any] = []
            for name in REVIEW_FIELDS:
                value = getattr(record, name)
                if value is not None:
                    if value != getattr(old, name) or name in ("updated_ms", "version"):
                        actions.append(getattr(R, name).set(value))
                elif name in REVIEW_REMOVABLE and getattr(old, name) is not None:
                    actions.append(getattr(R, name).remove())
            tx.update(R(c.tenant_id, c.conversation_id), actions=actions, condition=unchanged)
        tx.save(audit_row(w.audit), condition=AuditRecordRow.sort_key.does_not_exist())

    # trash -----------------------------------------------------------------------
    def _turns_present(self, tenant_id: str, ids: Iterable[str]) -> set[str]:
        keys = [(tenant_id, i) for i in dict.fromkeys(ids)]
        return {
            r.conversation_id
            for r in TurnsRecord.batch_get(keys, attributes_to_get=["conversation_id"])
        }

    @staticmethod
    def _mark_children(tx: TransactWrite, w: ReviewWrite, purge: datetime | None) -> None:
        """Its turns and (the newest) versions get the purge time (None: lose it)."""
        c = w.before
        T, V = TurnsRecord, ConversationVersionRecord
        if w.has_turns:
            tx.update(
                T(c.tenant_id, c.conversation_id),
                actions=[T.purge_at.remove() if purge is None else T.purge_at.set(purge)],
                condition=T.conversation_id.exists(),  # never creates one
            )
        key = tenant_key(c.tenant_id, c.conversation_id)
        for n in w.version_numbers[-TRASH_VERSIONS_IN_TX:]:
            tx.update(
                V(key, n),
                actions=[V.purge_at.remove() if purge is None else V.purge_at.set(purge)],
                condition=V.number.exists(),
            )

    def _mark_remaining_versions(self, writes: Sequence[ReviewWrite]) -> None:
        """Versions beyond the ones a transaction marks (a conversation regenerated more
        than TRASH_VERSIONS_IN_TX times): marked after it, oldest last."""
        for w in writes:
            older = w.version_numbers[:-TRASH_VERSIONS_IN_TX]
            if not older:
                continue
            purge = None if w.restore else utcnow() + timedelta(days=TRASH_RETENTION_DAYS)
            key = tenant_key(w.before.tenant_id, w.before.conversation_id)
            V = ConversationVersionRecord
            for n in older:
                action = V.purge_at.remove() if purge is None else V.purge_at.set(purge)
                with suppress(UpdateError):
                    V(key, n).update(actions=[action], condition=V.number.exists())

    def trashed(
        self, tenant_id: str, ids: Iterable[str], consistent: bool = False
    ) -> dict[str, Conversation]:
        """Those of ``ids`` that are in the trash and not past their purge time."""
        now = utcnow()
        keys = [(tenant_id, i) for i in dict.fromkeys(ids)]
        return {
            r.conversation_id: domain_from_record(Conversation, r)
            for r in ConversationRecord.batch_get(keys, consistent_read=consistent or None)
            if r.deleted
            and r.trashed_at is not None
            and r.purge_at is not None
            and r.purge_at > now
        }

    def trash(self, tenant_id: str, dataset_id: str) -> list[tuple[Conversation, datetime]]:
        """The dataset's trash, newest first: (conversation, purge time). Items past their
        purge time that DynamoDB has not removed yet are left out."""
        R = ConversationRecord
        now = utcnow()
        out = []
        for r in R.in_trash.query(tenant_key(tenant_id, dataset_id), scan_index_forward=False):
            if r.deleted and r.purge_at is not None and r.purge_at > now:
                out.append((domain_from_record(Conversation, r), r.purge_at))
        return out

    def reset_for_regeneration(self, conversation: Conversation) -> Conversation:
        """Regenerate: back to not_generated, keeping metadata; turns are replaced later."""
        R = ConversationRecord
        try:
            R(conversation.tenant_id, conversation.conversation_id).update(
                actions=[
                    R.status.set(ConversationStatus.NOT_GENERATED.value),
                    R.approved_by.remove(),
                    R.approved_at.remove(),
                    R.error_message.remove(),
                    R.updated_at.set(utcnow()),
                    R.updated_ms.set(_ms()),
                    R.version.add(1),
                ],
                condition=(R.deleted == False)  # noqa: E712
                & (R.status != ConversationStatus.GENERATING.value)
                & (R.version == conversation.version),
            )
        except UpdateError as e:
            if _is_condition_failure(e):
                raise ConflictError(
                    "conversation is being generated or was changed; try again"
                ) from e
            raise
        self._datasets.bump_conversation_seq(conversation.tenant_id, conversation.dataset_id)
        return self.get(conversation.tenant_id, conversation.conversation_id)

    def soft_delete(self, conversation: Conversation) -> None:
        """Tombstone (kept for list-cache deltas and the audit trail; DynamoDB's TTL
        removes it after the trash retention); turns are removed."""
        R = ConversationRecord
        try:
            with TransactWrite(connection=shared_connection()) as tx:
                tx.update(
                    R(conversation.tenant_id, conversation.conversation_id),
                    actions=[
                        R.deleted.set(True),
                        R.purge_at.set(utcnow() + timedelta(days=TRASH_RETENTION_DAYS)),
                        R.updated_ms.set(_ms()),
                        R.updated_at.set(utcnow()),
                        R.search_text.remove(),
                        R.version.add(1),
                    ],
                    condition=(R.deleted == False)  # noqa: E712
                    & (R.status != ConversationStatus.GENERATING.value),
                )
                tx.delete(TurnsRecord(conversation.tenant_id, conversation.conversation_id))
        except TransactWriteError as e:
            if _is_condition_failure(e):
                raise ConflictError("conversation is being generated or already deleted") from e
            raise
        self._datasets.bump_conversation_seq(conversation.tenant_id, conversation.dataset_id)

    def save_quality(self, conversation: Conversation) -> None:
        R = ConversationRecord
        record = self._to_record(conversation)
        try:
            R(conversation.tenant_id, conversation.conversation_id).update(
                actions=[
                    R.quality_score.set(record.quality_score),
                    R.quality.set(record.quality),
                    R.quality_summary.set(record.quality_summary),
                    R.updated_ms.set(_ms()),
                ],
                condition=R.conversation_id.exists(),
            )
        except UpdateError as e:
            if _is_condition_failure(e):
                raise NotFoundError("conversation", conversation.conversation_id) from e
            raise
        self._datasets.bump_conversation_seq(conversation.tenant_id, conversation.dataset_id)


# --------------------------------------------------------------------------- jobs


def add_job_item(tx: TransactWrite, item: JobItemWrite) -> None:
    """The exactly-once part of an item's commit in ``tx``: its outcome marker (only if
    it has none) and the job's counter."""
    tx.save(
        JobItemRecord(
            tenant_key(item.tenant_id, item.job_id),
            item.conversation_id,
            outcome=item.outcome,
            cost_usd=item.cost_usd,
            error_message=(item.error_message or None) and item.error_message[:1000],
            at=utcnow(),
        ),
        condition=JobItemRecord.outcome.does_not_exist(),
    )
    counter = {
        "completed": JobRecord.completed,
        "failed": JobRecord.failed,
        "skipped": JobRecord.skipped,
    }[item.outcome]
    tx.update(
        JobRecord(item.tenant_id, item.job_id),
        actions=[counter.add(1), JobRecord.updated_at.set(utcnow())],
        condition=JobRecord.job_id.exists(),
    )


JOB_IDS_PREFIX = "~ids#"  # sorts after every conversation id ("conv_...")
JOB_IDS_PER_ROW = 2000  # ~52 KB per row


class DynamoJobRepository:
    def create(self, job: Job) -> Job:
        """The job item holds counters, updated once or twice per conversation; its
        conversation ids (26 bytes each: 260 KB at 10,000, and every update of an item
        is billed and throttled by its whole size) go to rows of their own, first."""
        key = tenant_key(job.tenant_id, job.job_id)
        ids = job.conversation_ids
        with JobItemRecord.batch_write() as batch:
            for n, start in enumerate(range(0, len(ids), JOB_IDS_PER_ROW)):
                batch.save(
                    JobItemRecord(
                        key,
                        f"{JOB_IDS_PREFIX}{n:05d}",
                        outcome="ids",
                        ids=ids[start : start + JOB_IDS_PER_ROW],
                        at=utcnow(),
                    )
                )
        record = record_from_domain(
            JobRecord,
            job.model_copy(update={"conversation_ids": []}),
            dataset_key=tenant_key(job.tenant_id, job.dataset_id),
            created_ms=_ms(job.created_at),
        )
        record.save(condition=JobRecord.job_id.does_not_exist())
        return job

    def conversation_ids(self, job: Job) -> list[str]:
        """The job's conversations in order (jobs stored before the id rows: its own)."""
        if job.conversation_ids:
            return list(job.conversation_ids)
        out: list[str] = []
        for r in JobItemRecord.query(
            tenant_key(job.tenant_id, job.job_id),
            JobItemRecord.conversation_id.startswith(JOB_IDS_PREFIX),
            consistent_read=True,
        ):
            out.extend(str(i) for i in (r.ids or []))
        return out

    def get(self, tenant_id: str, job_id: str) -> Job:
        try:
            record = JobRecord.get(tenant_id, job_id, consistent_read=True)
        except DoesNotExist as e:
            raise NotFoundError("job", job_id) from e
        return domain_from_record(Job, record)

    def list_for_dataset(self, tenant_id: str, dataset_id: str, limit: int = 50) -> list[Job]:
        keys = JobRecord.by_dataset.query(
            tenant_key(tenant_id, dataset_id), scan_index_forward=False, limit=limit
        )
        ids = [k.job_id for k in keys]
        records = {r.job_id: r for r in JobRecord.batch_get([(tenant_id, i) for i in ids])}
        return [domain_from_record(Job, records[i]) for i in ids if i in records]

    def list_for_tenant(self, tenant_id: str) -> list[Job]:
        return [domain_from_record(Job, r) for r in JobRecord.query(tenant_id)]

    def set_status(
        self,
        tenant_id: str,
        job_id: str,
        status: JobStatus,
        *,
        expected: Iterable[JobStatus] | None = None,
        executions: int | None = None,
        resume_lease_seconds: float | None = None,
        **fields: Any,
    ) -> bool:
        """``executions``: apply only if the job still lists exactly that many executions
        (of two callers reviving one dead job, only the first starts a new execution).
        ``resume_lease_seconds``: apply only if no other resume started within that many
        seconds and has not yet listed its execution, and mark this one as started."""
        R = JobRecord
        now = utcnow()
        actions: list[Any] = [R.status.set(status.value), R.updated_at.set(now)]
        for name, value in fields.items():
            attr = getattr(R, name)
            actions.append(attr.remove() if value is None else attr.set(value))
        condition = R.job_id.exists()
        if expected is not None:
            condition = condition & R.status.is_in(*[s.value for s in expected])
        if executions == 0:
            condition = condition & (
                R.execution_arns.does_not_exist() | (size(R.execution_arns) == 0)
            )
        elif executions is not None:
            condition = condition & (size(R.execution_arns) == executions)
        if resume_lease_seconds is not None:
            expired = now - timedelta(seconds=resume_lease_seconds)
            condition = condition & (
                R.resume_started_at.does_not_exist() | (R.resume_started_at < expired)
            )
            actions.append(R.resume_started_at.set(now))
        try:
            R(tenant_id, job_id).update(actions=actions, condition=condition)
        except UpdateError as e:
            if _is_condition_failure(e):
                return False
            raise
        return True

    def active_jobs_all_tenants(self) -> list[tuple[str, str]]:
        """(tenant id, job id) of every queued, running or pausing job of every tenant.

        The one read across tenants, made by the scheduled stalled-job check (the system,
        not a user): a scan of the jobs table (one small row per job) filtered to active
        statuses, keys only. Everything after it uses that tenant's own keys."""
        R = JobRecord
        active = [
            JobStatus.QUEUED.value,
            JobStatus.RUNNING.value,
            JobStatus.PAUSING.value,
        ]
        return [
            (r.tenant_id, r.job_id)
            for r in R.scan(R.status.is_in(*active), attributes_to_get=["tenant_id", "job_id"])
        ]

    def set_current(self, tenant_id: str, job_id: str, current: dict[str, Any]) -> None:
        JobRecord(tenant_id, job_id).update(
            actions=[JobRecord.current.set(current), JobRecord.updated_at.set(utcnow())],
            condition=JobRecord.job_id.exists(),
        )

    def append_execution(self, tenant_id: str, job_id: str, arn: str) -> None:
        R = JobRecord
        R(tenant_id, job_id).update(
            actions=[
                R.execution_arns.set(R.execution_arns.append([arn])),
                R.resume_started_at.remove(),
            ],
        )

    def end_resume(self, tenant_id: str, job_id: str) -> None:
        """A resume that could not start its execution lets the next one try at once."""
        JobRecord(tenant_id, job_id).update(
            actions=[JobRecord.resume_started_at.remove()],
            condition=JobRecord.job_id.exists(),
        )

    def record_spend(
        self, log: GenerationLog, job_id: str | None, dataset_id: str | None = None
    ) -> bool:
        """Log one call and add its cost to the job and dataset exactly once (by log id).

        Returns False when the call was already logged (a repeated write).
        """
        log_record = GenerationLogRecord(
            tenant_key(log.tenant_id, log.conversation_id),
            f"{log.created_at.isoformat()}#{log.log_id}",
            tenant_id=log.tenant_id,
            doc=doc_of(log),
        )
        try:
            with TransactWrite(connection=shared_connection()) as tx:
                tx.save(log_record, condition=GenerationLogRecord.log_id.does_not_exist())
                if job_id and log.cost_usd:
                    tx.update(
                        JobRecord(log.tenant_id, job_id),
                        actions=[JobRecord.cost_usd.add(round(log.cost_usd, 8))],
                        condition=JobRecord.job_id.exists(),
                    )
                if dataset_id and log.cost_usd:
                    tx.update(
                        DatasetRecord(log.tenant_id, dataset_id),
                        actions=[DatasetRecord.spent_usd.add(round(log.cost_usd, 8))],
                        condition=DatasetRecord.dataset_id.exists(),
                    )
        except TransactWriteError as e:
            if _is_condition_failure(e):
                return False
            raise
        return True

    def mark_threshold(
        self, tenant_id: str, job_id: str, threshold: int, warning: dict[str, Any]
    ) -> bool:
        """Record a budget warning once per threshold; True if this call recorded it."""
        R = JobRecord
        job = JobRecord.get(tenant_id, job_id, consistent_read=True)
        if threshold in (job.warned_thresholds or []):
            return False
        warnings = [*(job.warnings or []), warning]
        try:
            R(tenant_id, job_id).update(
                actions=[
                    R.warned_thresholds.set([*(job.warned_thresholds or []), threshold]),  # type: ignore[list-item]
                    R.warnings.set(warnings),
                ],
                condition=R.warned_thresholds == list(job.warned_thresholds or []),
            )
        except UpdateError as e:
            if _is_condition_failure(e):
                return self.mark_threshold(tenant_id, job_id, threshold, warning)
            raise
        return True

    def advance_budget(
        self,
        tenant_id: str,
        job_id: str,
        *,
        warned: Sequence[int],
        warn: Sequence[int],
        warnings: Sequence[dict[str, Any]],
        pause: bool,
        previous_status: JobStatus,
    ) -> bool:
        """Record budget warnings and, at 100%, the budget pause, in one conditional
        write: it applies only if the job still holds exactly ``warned`` (and, to pause,
        is still running), so concurrent items never give a warning twice or out of
        order. True if this call applied it."""
        R = JobRecord
        actions: list[Any] = [R.updated_at.set(utcnow())]
        if warn:
            current = JobRecord.get(tenant_id, job_id, consistent_read=True)
            actions.append(R.warned_thresholds.set([*warned, *warn]))  # type: ignore[list-item]
            actions.append(R.warnings.set([*(current.warnings or []), *warnings]))
        if pause:
            actions.append(R.status.set(JobStatus.PAUSING.value))
            actions.append(R.pause_reason.set("budget"))
        condition = R.job_id.exists()
        if warned:
            condition = condition & (R.warned_thresholds == list(warned))
        else:
            condition = condition & (
                R.warned_thresholds.does_not_exist() | (R.warned_thresholds == [])
            )
        if pause:
            condition = condition & (R.status == previous_status.value)
        try:
            R(tenant_id, job_id).update(actions=actions, condition=condition)
        except UpdateError as e:
            if _is_condition_failure(e):
                return False
            raise
        return True

    def item_outcome(self, tenant_id: str, job_id: str, conversation_id: str) -> str | None:
        try:
            r = JobItemRecord.get(
                tenant_key(tenant_id, job_id), conversation_id, consistent_read=True
            )
        except DoesNotExist:
            return None
        return str(r.outcome)

    def item_outcomes(self, tenant_id: str, job_id: str) -> dict[str, str]:
        return {
            r.conversation_id: r.outcome
            for r in JobItemRecord.query(
                tenant_key(tenant_id, job_id),
                JobItemRecord.conversation_id < JOB_IDS_PREFIX,
                consistent_read=True,
            )
        }

    def record_item(self, item: JobItemWrite) -> bool:
        try:
            with TransactWrite(connection=shared_connection()) as tx:
                add_job_item(tx, item)
        except TransactWriteError as e:
            if _is_condition_failure(e):
                return False
            raise
        return True

    def set_batch_id(
        self, tenant_id: str, job_id: str, batch_id: str, execution: str | None = None
    ) -> None:
        actions: list[Any] = [JobRecord.batch_id.set(batch_id)]
        if execution:
            actions.append(JobRecord.batch_execution.set(execution))
        JobRecord(tenant_id, job_id).update(actions=actions)

    def batch_id(self, tenant_id: str, job_id: str, execution: str | None = None) -> str | None:
        """The Message Batch this job's execution submitted (a retried SubmitBatch reuses
        it; a later execution of the job submits its own)."""
        record = JobRecord.get(tenant_id, job_id, consistent_read=True)
        if execution and record.batch_execution and record.batch_execution != execution:
            return None
        return record.batch_id

    def set_judge_batch(self, tenant_id: str, job_id: str, batch: dict[str, str]) -> None:
        JobRecord(tenant_id, job_id).update(actions=[JobRecord.judge_batch.set(batch)])

    def judge_batch(self, tenant_id: str, job_id: str) -> dict[str, str] | None:
        value = JobRecord.get(tenant_id, job_id, consistent_read=True).judge_batch
        return dict(value) if value else None


class DynamoGenerationLogRepository:
    def list_for_conversation(self, tenant_id: str, conversation_id: str) -> list[GenerationLog]:
        key = tenant_key(tenant_id, conversation_id)
        return [GenerationLog.model_validate(r.doc) for r in GenerationLogRecord.query(key)]


class DynamoRateLimitStore:
    """GCRA state in integer milliseconds: exact compare-and-set (float seconds would
    drift through DynamoDB's decimal arithmetic and never compare equal)."""

    def read(self, key: str) -> tuple[int, int]:
        try:
            r = RateLimitRecord.get(key, consistent_read=True)
        except DoesNotExist:
            return 0, 0
        return int(r.tat or 0), int(r.blocked_until or 0)

    def compare_and_set(self, key: str, old_tat: int, new_tat: int) -> bool:
        R = RateLimitRecord
        cond = R.tat.does_not_exist() if old_tat == 0 else R.tat == old_tat
        try:
            R(key).update(actions=[R.tat.set(new_tat)], condition=cond)
        except UpdateError as e:
            if _is_condition_failure(e):
                return False
            raise
        return True

    def advance(self, key: str, interval: int, floor: int) -> tuple[int, int] | None:
        R = RateLimitRecord
        record = R(key)
        try:
            record.update(actions=[R.tat.add(interval)], condition=R.tat >= floor)
        except UpdateError as e:
            if _is_condition_failure(e):
                return None
            raise
        return int(record.tat or 0), int(record.blocked_until or 0)

    def block_until(self, key: str, until: int) -> None:
        R = RateLimitRecord
        try:
            R(key).update(
                actions=[R.blocked_until.set(until)],
                condition=R.blocked_until.does_not_exist() | (R.blocked_until < until),
            )
        except UpdateError as e:
            if not _is_condition_failure(e):
                raise

    def reanchor(self, key: str, floor: int, interval: int) -> tuple[int, int] | None:
        R = RateLimitRecord
        record = R(key)
        try:
            record.update(
                actions=[R.tat.set(floor + interval)],
                condition=R.tat.does_not_exist() | (R.tat < floor),
            )
        except UpdateError as e:
            if _is_condition_failure(e):
                return None
            raise
        return int(record.tat or 0), int(record.blocked_until or 0)

    def shift(self, key: str, delta_ms: int) -> None:
        """Move a GCRA reservation by ``delta_ms`` (a call's actual size differed from
        what was reserved for it)."""
        if delta_ms:
            R = RateLimitRecord
            try:
                R(key).update(actions=[R.tat.add(int(delta_ms))], condition=R.tat.exists())
            except UpdateError as e:
                if not _is_condition_failure(e):
                    raise


class DynamoConcurrencyStore:
    """A job's calls and back-off state: one item per job on the rate_limits table
    (``tenant#job#<id>#flight``). Counters change with ADD (concurrent Lambdas never
    lose one) and come back with the write (ALL_NEW), so a call's outcome costs one
    write; times are integer milliseconds."""

    @staticmethod
    def _state(r: RateLimitRecord) -> tuple[FlightStats, Backoff]:
        flight = FlightStats(
            in_flight=max(int(r.in_flight or 0), 0),
            answered=int(r.answered or 0),
            latency_ms=int(r.latency_ms or 0),
            output_tokens=int(r.output_tokens or 0),
        )
        backoff = Backoff(
            rate_share=float(r.rate_share) if r.rate_share is not None else 1.0,
            epoch_start=int(r.epoch_start or 0) / 1000.0,
            calls=int(r.calls or 0),
            refusals=int(r.refusals or 0),
            consecutive_refusals=int(r.consecutive_refusals or 0),
            open_until=int(r.open_until or 0) / 1000.0,
            trips=int(r.trips or 0),
        )
        return flight, backoff

    def read(self, key: str) -> tuple[FlightStats, Backoff]:
        try:
            return self._state(RateLimitRecord.get(key, consistent_read=True))
        except DoesNotExist:
            return FlightStats(), Backoff()

    def begin_call(self, key: str) -> None:
        R = RateLimitRecord
        R(key).update(actions=[R.in_flight.add(1)])

    def end_call(
        self, key: str, latency_ms: int | None, output_tokens: int, refused: bool | None
    ) -> tuple[FlightStats, Backoff]:
        """One call ended: answered (``latency_ms`` given), refused by the provider
        (``refused``: 429/529) or failed otherwise (neither: not a verdict on the rate)."""
        R = RateLimitRecord
        record = R(key)
        actions: list[Any] = [R.in_flight.add(-1)]
        if latency_ms is not None:
            actions += [
                R.answered.add(1),
                R.latency_ms.add(int(latency_ms)),
                R.output_tokens.add(int(output_tokens)),
            ]
        if refused is not None:
            actions += [R.calls.add(1), R.refusals.add(1 if refused else 0)]
            if refused:
                actions.append(R.consecutive_refusals.add(1))
            else:
                actions += [R.consecutive_refusals.set(0), R.trips.set(0)]
        record.update(actions=actions)
        return self._state(record)

    def replace_backoff(self, key: str, old: Backoff, new: Backoff) -> bool:
        """Apply a closed epoch / opened breaker if nobody applied one since ``old``."""
        R = RateLimitRecord
        old_epoch, old_open = int(old.epoch_start * 1000), int(old.open_until * 1000)
        condition = (
            (R.epoch_start == old_epoch) if old_epoch else R.epoch_start.does_not_exist()
        ) & ((R.open_until == old_open) if old_open else R.open_until.does_not_exist())
        actions: list[Any] = [
            R.rate_share.set(round(new.rate_share, 6)),
            R.epoch_start.set(int(new.epoch_start * 1000)),
            R.trips.set(new.trips),
        ]
        if new.open_until:
            actions.append(R.open_until.set(int(new.open_until * 1000)))
        if new.epoch_start != old.epoch_start:
            # Calls counted between the read and this write start the new epoch.
            actions += [R.calls.add(-old.calls), R.refusals.add(-old.refusals)]
        try:
            R(key).update(actions=actions, condition=condition)
        except UpdateError as e:
            if _is_condition_failure(e):
                return False
            raise
        return True

    def reset_in_flight(self, key: str) -> None:
        """No execution of the job is running: nothing of it is in flight."""
        R = RateLimitRecord
        R(key).update(actions=[R.in_flight.set(0)])


# --------------------------------------------------------------------------- templates


TEMPLATE_NAME_PREFIX = "name#"


def _name_row(template: PromptTemplate) -> TemplateRecord:
    return TemplateRecord(
        template.tenant_id,
        TEMPLATE_NAME_PREFIX + template_name_key(template.name),
        doc={"template_id": template.template_id, "name": template.name},
        version=0,
        owner_id=template.template_id,
    )


class DynamoTemplateRepository:
    def list_all(self, tenant_id: str) -> list[PromptTemplate]:
        return [
            PromptTemplate.model_validate(r.doc)
            for r in TemplateRecord.query(tenant_id)
            if not r.template_id.startswith(TEMPLATE_NAME_PREFIX)
        ]

    def get(self, tenant_id: str, template_id: str) -> PromptTemplate:
        if template_id.startswith(TEMPLATE_NAME_PREFIX):
            raise NotFoundError("template", template_id)
        try:
            record = TemplateRecord.get(tenant_id, template_id, consistent_read=True)
        except DoesNotExist as e:
            raise NotFoundError("template", template_id) from e
        return PromptTemplate.model_validate(record.doc)

    def name_owner(self, tenant_id: str, name: str) -> dict[str, Any] | None:
        """The template that holds ``name`` (its id and name as written), if any."""
        try:
            r = TemplateRecord.get(
                tenant_id, TEMPLATE_NAME_PREFIX + template_name_key(name), consistent_read=True
            )
        except DoesNotExist:
            return None
        return dict(r.doc)

    def reserve_name(self, template: PromptTemplate) -> bool:
        """Give ``template`` its name if nobody holds it (templates stored before names
        were reserved); False when it is taken."""
        try:
            _name_row(template).save(condition=TemplateRecord.template_id.does_not_exist())
        except PutError as e:
            if not _is_condition_failure(e):
                raise
            return False
        return True

    def _name_taken(self, template: PromptTemplate, e: Exception) -> ConflictError:
        owner = self.name_owner(template.tenant_id, template.name) or {}
        existing = owner.get("name") or template.name
        return ConflictError(
            f"a template named '{existing}' already exists; choose another name",
            {
                "field": "name",
                "existing_template_id": owner.get("template_id"),
                "existing_name": existing,
            },
        )

    def create(self, template: PromptTemplate, version: TemplateVersion) -> None:
        """The template, its first version and its name, in one transaction: a name
        another template holds (in any case) cancels all three (409)."""
        try:
            with TransactWrite(connection=shared_connection()) as tx:
                tx.save(
                    TemplateRecord(
                        template.tenant_id,
                        template.template_id,
                        doc=doc_of(template),
                        version=template.version,
                    ),
                    condition=TemplateRecord.template_id.does_not_exist(),
                )
                tx.save(
                    TemplateVersionRecord(
                        tenant_key(template.tenant_id, template.template_id),
                        version.version,
                        doc=doc_of(version),
                    )
                )
                tx.save(_name_row(template), condition=TemplateRecord.template_id.does_not_exist())
        except TransactWriteError as e:
            if _is_condition_failure(e) and self.name_owner(template.tenant_id, template.name):
                raise self._name_taken(template, e) from e
            raise

    def save(
        self,
        template: PromptTemplate,
        expected_version: int,
        new_version: TemplateVersion | None,
        previous_name: str | None = None,
    ) -> None:
        """Store the template; a rename (``previous_name`` given and a different name
        key) moves its name reservation in the same transaction."""
        renamed = previous_name is not None and template_name_key(
            previous_name
        ) != template_name_key(template.name)
        try:
            with TransactWrite(connection=shared_connection()) as tx:
                tx.save(
                    TemplateRecord(
                        template.tenant_id,
                        template.template_id,
                        doc=doc_of(template),
                        version=template.version,
                    ),
                    condition=TemplateRecord.version == expected_version,
                )
                if new_version is not None:
                    tx.save(
                        TemplateVersionRecord(
                            tenant_key(template.tenant_id, template.template_id),
                            new_version.version,
                            doc=doc_of(new_version),
                        ),
                        condition=TemplateVersionRecord.version.does_not_exist(),
                    )
                if renamed and previous_name is not None:
                    tx.save(
                        _name_row(template), condition=TemplateRecord.template_id.does_not_exist()
                    )
                    tx.delete(
                        TemplateRecord(
                            template.tenant_id,
                            TEMPLATE_NAME_PREFIX + template_name_key(previous_name),
                        ),
                        # Only its own reservation (a template stored before names were
                        # reserved has none to give back).
                        condition=TemplateRecord.template_id.does_not_exist()
                        | (TemplateRecord.owner_id == template.template_id),
                    )
        except TransactWriteError as e:
            if _is_condition_failure(e):
                owner = self.name_owner(template.tenant_id, template.name) if renamed else None
                if owner and owner.get("template_id") != template.template_id:
                    raise self._name_taken(template, e) from e
                raise StaleVersionError("the template was changed by someone else") from e
            raise

    def versions(self, tenant_id: str, template_id: str) -> list[TemplateVersion]:
        key = tenant_key(tenant_id, template_id)
        return [TemplateVersion.model_validate(r.doc) for r in TemplateVersionRecord.query(key)]

    def version(self, tenant_id: str, template_id: str, version: int) -> TemplateVersion:
        try:
            r = TemplateVersionRecord.get(tenant_key(tenant_id, template_id), version)
        except DoesNotExist as e:
            raise NotFoundError("template version", f"{template_id}@{version}") from e
        return TemplateVersion.model_validate(r.doc)


# --------------------------------------------------------------------------- exports, audit, notices


class DynamoExportRepository:
    """One JSON doc per export; ``status`` and ``claim_token`` are copied to attributes so
    claiming and finishing an export are conditional writes (at-least-once workers)."""

    @staticmethod
    def _row(export: ExportRecord) -> ExportRecordRow:
        return ExportRecordRow(
            export.tenant_id,
            export.export_id,
            created_ms=_ms(export.created_at),
            status=export.status.value,
            claim_token=export.claim_token,
            doc=doc_of(export),
        )

    def save(self, export: ExportRecord) -> ExportRecord:
        self._row(export).save()
        return export

    def _save_if(self, export: ExportRecord, condition: Any) -> bool:
        try:
            self._row(export).save(condition=condition)
        except PutError as e:
            if not _is_condition_failure(e):
                raise
            return False
        return True

    @staticmethod
    def _pending() -> Any:
        R = ExportRecordRow
        # Rows written before the status attribute existed carry it in doc only.
        return R.export_id.exists() & (
            (R.status == ExportStatus.PENDING.value) | R.status.does_not_exist()
        )

    def claim(self, export: ExportRecord, token: str) -> ExportRecord | None:
        """pending and unclaimed -> owned by ``token``, started now. Of two runs that both
        read the export unclaimed, exactly one gets the claimed record; the other None."""
        claimed = export.model_copy(update={"claim_token": token, "started_at": utcnow()})
        unclaimed = self._pending() & ExportRecordRow.claim_token.does_not_exist()
        return claimed if self._save_if(claimed, unclaimed) else None

    def save_if_pending(self, export: ExportRecord, claim_token: str | None) -> bool:
        """Store ``export`` (its new state) only if the stored export is still pending and
        owned by ``claim_token`` (None: not claimed yet). The claiming run finishing, or a
        timeout failing a run that never finished: whoever comes second changes nothing."""
        R = ExportRecordRow
        owner = (
            R.claim_token.does_not_exist() if claim_token is None else R.claim_token == claim_token
        )
        return self._save_if(export, self._pending() & owner)

    def get(self, tenant_id: str, export_id: str) -> ExportRecord:
        try:
            r = ExportRecordRow.get(tenant_id, export_id, consistent_read=True)
        except DoesNotExist as e:
            raise NotFoundError("export", export_id) from e
        return ExportRecord.model_validate(r.doc)

    def list_all(self, tenant_id: str) -> list[ExportRecord]:
        rows = [ExportRecord.model_validate(r.doc) for r in ExportRecordRow.query(tenant_id)]
        return sorted(rows, key=lambda e: e.created_at, reverse=True)


def audit_row(record: AuditRecord) -> AuditRecordRow:
    return AuditRecordRow(
        record.tenant_id,
        record.sort_key,
        entity_key=tenant_key(record.tenant_id, record.entity_id),
        action=record.action,
        actor=record.actor,
        doc=doc_of(record),
    )


class DynamoAuditRepository:
    def append(self, record: AuditRecord) -> None:
        sort_key = f"{record.at.isoformat()}#{record.audit_id}"
        try:
            AuditRecordRow(
                record.tenant_id,
                sort_key,
                entity_key=tenant_key(record.tenant_id, record.entity_id),
                action=record.action,
                actor=record.actor,
                doc=doc_of(record),
            ).save(condition=AuditRecordRow.sort_key.does_not_exist())
        except PutError as e:
            if not _is_condition_failure(e):
                raise

    def append_many(self, records: list[AuditRecord]) -> None:
        with AuditRecordRow.batch_write() as batch:
            for record in records:
                batch.save(
                    AuditRecordRow(
                        record.tenant_id,
                        f"{record.at.isoformat()}#{record.audit_id}",
                        entity_key=tenant_key(record.tenant_id, record.entity_id),
                        action=record.action,
                        actor=record.actor,
                        doc=doc_of(record),
                    )
                )

    def get(self, tenant_id: str, sort_key: str) -> AuditRecord | None:
        """One record by its key (a strongly consistent read: just written is found)."""
        try:
            row = AuditRecordRow.get(tenant_id, sort_key, consistent_read=True)
        except DoesNotExist:
            return None
        return AuditRecord.model_validate(row.doc)

    def get_many(self, tenant_id: str, sort_keys: Iterable[str]) -> dict[str, AuditRecord]:
        """Records by key (consistent), keyed by their sort key; missing ones left out."""
        keys = [(tenant_id, k) for k in dict.fromkeys(sort_keys)]
        return {
            row.sort_key: AuditRecord.model_validate(row.doc)
            for row in AuditRecordRow.batch_get(keys, consistent_read=True)
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
        R = AuditRecordRow
        condition = None
        if action:
            condition = R.action == action
        if actor:
            condition = (R.actor == actor) if condition is None else condition & (R.actor == actor)
        if entity_id:
            rows = R.by_entity.query(
                tenant_key(tenant_id, entity_id),
                filter_condition=condition,
                scan_index_forward=not newest_first,
            )
        else:
            rows = R.query(
                tenant_id, filter_condition=condition, scan_index_forward=not newest_first
            )
        out: list[AuditRecord] = []
        for row in rows:
            out.append(AuditRecord.model_validate(row.doc))
            if len(out) >= limit:
                break
        return out


class DynamoNotificationRepository:
    def add_message(self, message: NotificationMessage) -> None:
        NotificationRecord(
            message.tenant_id,
            f"msg#{message.at.isoformat()}#{message.message_id}",
            doc=doc_of(message),
        ).save()

    def messages(self, tenant_id: str, limit: int = 50) -> list[NotificationMessage]:
        rows = NotificationRecord.query(
            tenant_id,
            NotificationRecord.sort_key.startswith("msg#"),
            scan_index_forward=False,
            limit=limit,
        )
        return [NotificationMessage.model_validate(r.doc) for r in rows]

    def add_subscription(
        self, tenant_id: str, email: str, subscription_arn: str | None
    ) -> dict[str, Any]:
        doc = {
            "email": email,
            "subscription_arn": subscription_arn,
            "created_at": utcnow().isoformat(),
        }
        NotificationRecord(tenant_id, f"sub#{email.lower()}", doc=doc).save()
        return doc

    def subscriptions(self, tenant_id: str) -> list[dict[str, Any]]:
        rows = NotificationRecord.query(tenant_id, NotificationRecord.sort_key.startswith("sub#"))
        return [dict(r.doc) for r in rows]


# --------------------------------------------------------------------------- dataset delete


@dataclass
class PurgeProgress:
    """What a purge deleted so far; ``done`` once the dataset record itself is gone."""

    conversations: int = 0
    turns: int = 0
    versions: int = 0
    generation_logs: int = 0
    jobs: int = 0
    job_items: int = 0
    chunks: int = 0
    done: bool = False

    def counts(self) -> dict[str, int]:
        return {
            "conversations": self.conversations,
            "turns": self.turns,
            "versions": self.versions,
            "generation_logs": self.generation_logs,
            "jobs": self.jobs,
            "job_items": self.job_items,
            "chunks": self.chunks,
        }


class DynamoDatasetPurger:
    """Deletes everything a dataset owns, in BatchWriteItem calls, until a deadline:
    conversations (trashed ones too) with their turns, versions and generation logs,
    then jobs with their items, then chunks, then the dataset record. Resumable: a call
    that runs out of time leaves the dataset hidden (``deleted_at``) and the next call
    carries on. The audit trail and exports are not the dataset's to delete."""

    PAGE = 100  # conversations per step

    def purge(
        self, tenant_id: str, dataset_id: str, deadline: float, clock: Any = time.monotonic
    ) -> PurgeProgress:
        progress = PurgeProgress()
        key = tenant_key(tenant_id, dataset_id)
        rows = iter(
            ConversationRecord.by_dataset.query(
                key, attributes_to_get=["conversation_id", "generation_number"]
            )
        )
        while page := list(islice(rows, self.PAGE)):
            self._purge_conversations(tenant_id, page, progress)
            if clock() >= deadline:  # each call makes at least one step
                return progress
        for job_key in JobRecord.by_dataset.query(key):
            if clock() >= deadline:
                return progress
            self._purge_job(tenant_id, job_key.job_id, progress)
        with ChunkRecord.batch_write() as batch:
            for chunk in ChunkRecord.query(key, attributes_to_get=["dataset_key", "chunk_id"]):
                batch.delete(chunk)
                progress.chunks += 1
        DatasetRecord(tenant_id, dataset_id).delete(condition=DatasetRecord.deleted_at.exists())
        progress.done = True
        return progress

    @staticmethod
    def _purge_conversations(
        tenant_id: str, page: list[ConversationRecord], progress: PurgeProgress
    ) -> None:
        ids = [r.conversation_id for r in page]
        with_turns = {
            r.conversation_id
            for r in TurnsRecord.batch_get(
                [(tenant_id, i) for i in ids], attributes_to_get=["conversation_id"]
            )
        }
        logs: list[GenerationLogRecord] = []
        for cid in ids:
            logs.extend(
                GenerationLogRecord.query(
                    tenant_key(tenant_id, cid), attributes_to_get=["conversation_key", "log_id"]
                )
            )
        with TurnsRecord.batch_write() as turns:
            for cid in with_turns:
                turns.delete(TurnsRecord(tenant_id, cid))
        with ConversationVersionRecord.batch_write() as versions:
            for r in page:
                for n in range(1, max(int(r.generation_number or 0), 1)):
                    versions.delete(
                        ConversationVersionRecord(tenant_key(tenant_id, r.conversation_id), n)
                    )
                    progress.versions += 1
        with GenerationLogRecord.batch_write() as batch:
            for log in logs:
                batch.delete(log)
        # The conversations last: a step cut short finds the rest again next time.
        with ConversationRecord.batch_write() as conversations:
            for r in page:
                conversations.delete(ConversationRecord(tenant_id, r.conversation_id))
        progress.conversations += len(page)
        progress.turns += len(with_turns)
        progress.generation_logs += len(logs)

    @staticmethod
    def _purge_job(tenant_id: str, job_id: str, progress: PurgeProgress) -> None:
        with JobItemRecord.batch_write() as batch:
            for item in JobItemRecord.query(
                tenant_key(tenant_id, job_id), attributes_to_get=["job_key", "conversation_id"]
            ):
                batch.delete(item)
                progress.job_items += 1
        JobRecord(tenant_id, job_id).delete()
        progress.jobs += 1


__all__ = [
    "ClaimOutcome",
    "ConversationRow",
    "DeleteError",
    "DynamoAuditRepository",
    "DynamoConversationRepository",
    "DynamoDatasetPurger",
    "DynamoDatasetRepository",
    "DynamoExportRepository",
    "DynamoGenerationLogRepository",
    "DynamoJobRepository",
    "DynamoNotificationRepository",
    "DynamoRateLimitStore",
    "DynamoTemplateRepository",
    "JobItemWrite",
    "ReviewFailure",
    "ReviewWrite",
]


class DynamoFineTuneRepository:
    """One JSON doc per fine-tune, keyed by tenant (every read is the caller's tenant)."""

    def save(self, fine_tune: FineTune) -> FineTune:
        FineTuneRecordRow(
            fine_tune.tenant_id,
            fine_tune.fine_tune_id,
            created_ms=_ms(fine_tune.created_at),
            doc=doc_of(fine_tune),
        ).save()
        return fine_tune

    def get(self, tenant_id: str, fine_tune_id: str) -> FineTune:
        try:
            row = FineTuneRecordRow.get(tenant_id, fine_tune_id, consistent_read=True)
        except DoesNotExist as e:
            raise NotFoundError("fine-tune", fine_tune_id) from e
        return FineTune.model_validate(row.doc)

    def list_all(self, tenant_id: str) -> list[FineTune]:
        rows = [FineTune.model_validate(r.doc) for r in FineTuneRecordRow.query(tenant_id)]
        return sorted(rows, key=lambda f: f.created_at, reverse=True)
