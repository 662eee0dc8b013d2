"""Ports: what services need from the outside world, as Protocols.

Services depend on these, not on the DynamoDB, S3 or Anthropic adapters, so their rules
can be tested against in-memory fakes. The adapters live in ``chalicelib.store`` and
``chalicelib.llm.client``.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Any, Protocol

from chalicelib.domain.concurrency import Backoff, FlightStats
from chalicelib.domain.models import (
    AuditRecord,
    Chunk,
    Conversation,
    ConversationVersion,
    ConversationWithTurns,
    Dataset,
    ExportRecord,
    GenerationLog,
    Job,
    JobStatus,
    JudgeResult,
    PromptTemplate,
    StoredTurn,
    TemplateVersion,
    Turn,
    TurnFeedback,
)


class GenerationLogReader(Protocol):
    def list_for_conversation(
        self, tenant_id: str, conversation_id: str
    ) -> Sequence[GenerationLog]: ...


class ConversationSource(Protocol):
    """The conversations of one dataset (the API's list index, or a full read)."""

    def conversations(self, tenant_id: str, dataset_id: str) -> Sequence[Conversation]: ...


@dataclass
class ConversationRow:
    """What the list index keeps per conversation."""

    conversation: Conversation
    search_text: str
    deleted: bool
    updated_ms: int


class ConversationSeqReader(Protocol):
    """The dataset's change counter, bumped after every conversation write."""

    def conversation_seq(self, tenant_id: str, dataset_id: str) -> int: ...


class DatasetCatalog(ConversationSeqReader, Protocol):
    """A tenant's datasets and their change counters (what the list index reads)."""

    def list_all(self, tenant_id: str) -> list[Dataset]: ...


class ConversationChanges(Protocol):
    """A dataset's conversations written after ``since_ms`` (all of them from -1)."""

    def changed_since(
        self, tenant_id: str, dataset_id: str, since_ms: int
    ) -> Iterator[ConversationRow]: ...


@dataclass
class ListSnapshot:
    """A dataset's list index as one container built it: its conversations as of
    ``synced_ms`` (the newest change it holds)."""

    synced_ms: int
    rows: Iterator[Conversation]


class ListSnapshots(Protocol):
    """Where a large dataset's list index is kept between containers, so a cold one
    starts from it and reads only the changes since (rows and turn text apart: a first
    list needs no text)."""

    def load(self, tenant_id: str, dataset_id: str) -> ListSnapshot | None: ...

    def load_texts(self, tenant_id: str, dataset_id: str) -> Iterator[tuple[str, str]] | None: ...

    def save(
        self,
        tenant_id: str,
        dataset_id: str,
        synced_ms: int,
        rows: Iterable[Conversation],
        texts: Iterable[tuple[str, str]],
    ) -> None: ...


class DatasetStore(Protocol):
    """Datasets and their chunks. Every write that names ``expected_version`` is refused
    (StaleVersionError) unless the stored dataset still has that version."""

    def create(self, dataset: Dataset) -> Dataset: ...

    def get(self, tenant_id: str, dataset_id: str, include_deleting: bool = False) -> Dataset: ...

    def list_all(self, tenant_id: str) -> list[Dataset]: ...

    def save(self, dataset: Dataset, expected_version: int) -> Dataset: ...

    def set_archived(
        self, tenant_id: str, dataset_id: str, actor: str | None, expected_version: int
    ) -> Dataset: ...

    def mark_deleting(self, tenant_id: str, dataset_id: str, expected_version: int) -> None: ...

    def get_deleting(self, tenant_id: str, dataset_id: str) -> bool: ...

    def unmark_deleting(self, tenant_id: str, dataset_id: str) -> None: ...

    def replace_chunks(self, tenant_id: str, dataset_id: str, chunks: list[Chunk]) -> None: ...

    def list_chunks(self, tenant_id: str, dataset_id: str) -> list[Chunk]: ...


class PlannedConversations(Protocol):
    """A dataset's conversations as planning sees them."""

    def list_for_dataset(self, tenant_id: str, dataset_id: str) -> list[Conversation]: ...

    def add_planned(self, conversations: list[Conversation]) -> None: ...

    def soft_delete(self, conversation: Conversation) -> None: ...


class ExportStore(Protocol):
    """Export records. ``claim`` and ``save_if_pending`` are conditional: of two runs of
    one export exactly one claims it, and only its owner (or, unclaimed, anyone) finishes
    or fails a pending export."""

    def save(self, export: ExportRecord) -> ExportRecord: ...

    def claim(self, export: ExportRecord, token: str) -> ExportRecord | None: ...

    def save_if_pending(self, export: ExportRecord, claim_token: str | None) -> bool: ...

    def get(self, tenant_id: str, export_id: str) -> ExportRecord: ...

    def list_all(self, tenant_id: str) -> list[ExportRecord]: ...


class ApprovedConversations(Protocol):
    """What an export reads: a dataset's approved, not deleted conversations matching the
    exported filters (domain/filters.py), and their turns."""

    def approved(
        self,
        tenant_id: str,
        dataset_id: str,
        filters: Mapping[str, Any],
        fields: Collection[str] | None = None,
        page_size: int | None = None,
    ) -> Iterator[Conversation]: ...

    def approved_with_duplicates(
        self,
        tenant_id: str,
        dataset_id: str,
        filters: Mapping[str, Any],
        fields: Collection[str] | None = None,
    ) -> Iterator[tuple[Conversation, str | None]]: ...

    def count_approved(
        self, tenant_id: str, dataset_id: str, filters: Mapping[str, Any], stop_at: int
    ) -> int | None: ...

    def turns(
        self, tenant_id: str, conversation_ids: Iterable[str]
    ) -> dict[str, list[StoredTurn]]: ...


class PasswordAuth(Protocol):
    """An identity provider's password sign-in: its answer (``AuthenticationResult`` with
    the tokens, or a ``ChallengeName``); a refusal is an UnauthorizedError, throttling a
    RateLimitedError."""

    def password_auth(self, email: str, password: str) -> dict[str, Any]: ...


class ActiveTemplates(Protocol):
    """The tenant's prompt templates that generation may use."""

    def active_for_generation(self, tenant_id: str) -> list[PromptTemplate]: ...


class SpendLog(Protocol):
    def record_spend(
        self, log: GenerationLog, job_id: str | None, dataset_id: str | None = None
    ) -> bool:
        """Log one billed call and add its cost to the job and dataset exactly once."""
        ...


class JudgementCache(Protocol):
    def get(self, tenant_id: str, content_hash: str) -> JudgeResult | None: ...

    def put(self, tenant_id: str, result: JudgeResult) -> None: ...


class TokenCounter(Protocol):
    """Counts the tokens of Messages-shaped records with a model's own tokenizer."""

    @property
    def name(self) -> str: ...

    @property
    def model(self) -> str: ...

    def count(self, system: str | None, messages: Sequence[Mapping[str, str]]) -> int:
        """Input tokens of one request made of ``system`` and ``messages``."""
        ...


class ModelCustomization(Protocol):
    """A model-customization (fine-tuning) service: Amazon Bedrock in the cloud."""

    def create_job(self, request: Mapping[str, Any]) -> str:
        """Start a job from a CreateModelCustomizationJob request; returns its ARN."""
        ...

    def get_job(self, job_name: str) -> Mapping[str, Any]:
        """The job as GetModelCustomizationJob describes it (status, failureMessage, ...)."""
        ...

    def stop_job(self, job_name: str) -> None: ...


class FineTuneStore(Protocol):
    def save(self, fine_tune: Any) -> Any: ...
    def get(self, tenant_id: str, fine_tune_id: str) -> Any: ...
    def list_all(self, tenant_id: str) -> list[Any]: ...


class ExportReader(Protocol):
    def get(self, tenant_id: str, export_id: str) -> Any: ...


class DatasetReader(Protocol):
    def get(self, tenant_id: str, dataset_id: str) -> Any: ...


class AuditTrail(Protocol):
    def record(
        self,
        tenant_id: str,
        actor: str,
        action: str,
        entity_type: str,
        entity_id: str,
        before: dict[str, Any] | None = None,
        after: dict[str, Any] | None = None,
        **details: Any,
    ) -> Any: ...


class ConcurrencyStateStore(Protocol):
    """A job's calls in flight, what the answered ones took, and its back-off state."""

    def read(self, key: str) -> tuple[FlightStats, Backoff]: ...

    def begin_call(self, key: str) -> None: ...

    def end_call(
        self, key: str, latency_ms: int | None, output_tokens: int, refused: bool | None
    ) -> tuple[FlightStats, Backoff]: ...

    def replace_backoff(self, key: str, old: Backoff, new: Backoff) -> bool: ...

    def reset_in_flight(self, key: str) -> None: ...


class WorkItems(Protocol):
    """Where an execution's Map items are written for a Distributed Map to read."""

    def put_items(
        self, tenant_id: str, job_id: str, execution: str, items: Sequence[dict[str, str]]
    ) -> tuple[str, str]:
        """Write the items; (bucket, key) of the object."""
        ...


# ---------------------------------------------------------------------------- review


@dataclass(frozen=True)
class ReviewWrite:
    """One conversation's review change, move to the trash or restore from it, and its
    audit record: applied all-or-nothing, conditional on the version read."""

    before: Conversation  # as read: its version is the write's condition
    after: Conversation | None  # the new state (version + 1); None moves it to the trash
    audit: AuditRecord
    restore: bool = False  # before is in the trash; after is it restored
    has_turns: bool = False  # (trash/restore) a turns item exists: it moves with it

    @property
    def conversation_id(self) -> str:
        return self.before.conversation_id

    @property
    def moves(self) -> bool:
        """Into or out of the trash (its turns and versions follow)."""
        return self.after is None or self.restore

    @property
    def version_numbers(self) -> list[int]:
        """Its earlier versions (trash/restore mark them too)."""
        return list(range(1, max(self.before.generation_number, 1)))


@dataclass(frozen=True)
class ReviewFailure:
    reason: str  # not_found | generating | stale | conflict
    current: Conversation | None = None


@dataclass(frozen=True)
class TurnsItem:
    """A conversation's stored turns with the reviewers' marks, as read."""

    turns: list[Turn]
    feedback: dict[int, TurnFeedback]
    created_at: datetime  # which generation's turns these are (a write's condition)


class ReviewedConversations(Protocol):
    """What review reads and writes of conversations: their turns, versions and trash;
    every write conditional on the version read, with its audit record."""

    def get(self, tenant_id: str, conversation_id: str) -> Conversation: ...

    def get_many(
        self, tenant_id: str, ids: Iterable[str], consistent: bool = False
    ) -> dict[str, Conversation]: ...

    def get_turns_item(self, tenant_id: str, conversation_id: str) -> TurnsItem | None: ...

    def get_with_turns(self, tenant_id: str, conversation_id: str) -> ConversationWithTurns: ...

    def versions(
        self, tenant_id: str, conversation_id: str, with_turns: bool = False
    ) -> list[ConversationVersion]: ...

    def version(self, tenant_id: str, conversation_id: str, number: int) -> ConversationVersion: ...

    def trash(self, tenant_id: str, dataset_id: str) -> list[tuple[Conversation, datetime]]: ...

    def trashed(
        self, tenant_id: str, ids: Iterable[str], consistent: bool = False
    ) -> dict[str, Conversation]: ...

    def write_reviews(self, writes: Sequence[ReviewWrite]) -> dict[str, ReviewFailure]: ...

    def write_turn_feedback(
        self,
        before: Conversation,
        after: Conversation,
        item: TurnsItem,
        turns: list[Turn],
        feedback: dict[int, TurnFeedback],
        audit: AuditRecord,
    ) -> ReviewFailure | None: ...

    def reset_for_regeneration(self, conversation: Conversation) -> Conversation: ...


class ReviewedDatasets(Protocol):
    def get(self, tenant_id: str, dataset_id: str, include_deleting: bool = False) -> Dataset: ...

    def bump_conversation_seq(self, tenant_id: str, dataset_id: str, n: int = 1) -> int | None: ...


class AuditReader(Protocol):
    """The audit trail as review reads it (decisions to undo, a conversation's history)
    and appends to it outside a transaction."""

    def append(self, record: AuditRecord) -> None: ...

    def get(self, tenant_id: str, sort_key: str) -> AuditRecord | None: ...

    def get_many(self, tenant_id: str, sort_keys: Iterable[str]) -> dict[str, AuditRecord]: ...

    def query(
        self,
        tenant_id: str,
        *,
        entity_id: str | None = None,
        action: str | None = None,
        actor: str | None = None,
        limit: int = 200,
        newest_first: bool = True,
    ) -> list[AuditRecord]: ...


class AuditStore(AuditReader, Protocol):
    """The whole audit trail: the audit log appends in batches too."""

    def append_many(self, records: list[AuditRecord]) -> None: ...


# ---------------------------------------------------------------------------- templates


class TemplateStore(Protocol):
    """Prompt templates with their versions; names are unique per tenant (reserved in
    the same transaction as the write)."""

    def list_all(self, tenant_id: str) -> list[PromptTemplate]: ...

    def get(self, tenant_id: str, template_id: str) -> PromptTemplate: ...

    def reserve_name(self, template: PromptTemplate) -> bool: ...

    def create(self, template: PromptTemplate, version: TemplateVersion) -> None: ...

    def save(
        self,
        template: PromptTemplate,
        expected_version: int,
        new_version: TemplateVersion | None,
        previous_name: str | None = None,
    ) -> None: ...

    def versions(self, tenant_id: str, template_id: str) -> list[TemplateVersion]: ...


# ---------------------------------------------------------------------------- generation


class ClaimOutcome(StrEnum):
    CLAIMED = "claimed"
    # this job already stored it, or already failed it (a retried task): the
    # conversation's status says which
    ALREADY_DONE = "already_done"
    INELIGIBLE = "ineligible"  # deleted, generated by someone else, or being generated


@dataclass(frozen=True)
class JobItemWrite:
    """The exactly-once part of an item's commit: its outcome marker (written once) and
    the job's counter, in the same transaction as the conversation's write."""

    tenant_id: str
    job_id: str
    conversation_id: str
    outcome: str  # completed | failed | skipped
    cost_usd: float = 0.0
    error_message: str | None = None


class GenerationConversations(Protocol):
    """What generation reads and writes of conversations: the claim that makes an item
    run once, the commit that stores it with its job marker, and releasing a claim."""

    def get(self, tenant_id: str, conversation_id: str) -> Conversation: ...

    def get_many(
        self, tenant_id: str, ids: Iterable[str], consistent: bool = False
    ) -> dict[str, Conversation]: ...

    def get_turns(self, tenant_id: str, conversation_id: str) -> list[Turn]: ...

    def list_for_dataset(self, tenant_id: str, dataset_id: str) -> list[Conversation]: ...

    def claim_for_generation(
        self,
        tenant_id: str,
        conversation_id: str,
        job_id: str,
        token: str = "",
        estimated_cost_usd: float | None = None,
    ) -> tuple[ClaimOutcome, Conversation | None]: ...

    def assign_chunk(self, conversation: Conversation, chunk: Chunk, scenario: str) -> bool: ...

    def release_claim(self, tenant_id: str, conversation_id: str, job_id: str) -> None: ...

    def commit_generation(
        self,
        conversation: Conversation,
        turns: list[Turn],
        job_item: JobItemWrite | None,
        audit: AuditRecord | None = None,
    ) -> bool: ...

    def commit_failure(
        self, conversation: Conversation, message: str, job_item: JobItemWrite | None
    ) -> bool: ...

    def save_quality(self, conversation: Conversation) -> None: ...


class GenerationDatasets(Protocol):
    def get(self, tenant_id: str, dataset_id: str, include_deleting: bool = False) -> Dataset: ...

    def list_all(self, tenant_id: str) -> list[Dataset]: ...

    def bump_conversation_seq(self, tenant_id: str, dataset_id: str, n: int = 1) -> int | None: ...

    def list_chunks(self, tenant_id: str, dataset_id: str) -> list[Chunk]: ...


class JobStore(Protocol):
    """Jobs: their status changes (conditional), items' outcomes (written once), spend,
    budget steps, executions and batch ids."""

    def create(self, job: Job) -> Job: ...

    def conversation_ids(self, job: Job) -> list[str]: ...

    def get(self, tenant_id: str, job_id: str) -> Job: ...

    def list_for_dataset(self, tenant_id: str, dataset_id: str, limit: int = 50) -> list[Job]: ...

    def list_for_tenant(self, tenant_id: str) -> list[Job]: ...

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
    ) -> bool: ...

    def active_jobs_all_tenants(self) -> list[tuple[str, str]]: ...

    def set_current(self, tenant_id: str, job_id: str, current: dict[str, Any]) -> None: ...

    def append_execution(self, tenant_id: str, job_id: str, arn: str) -> None: ...

    def end_resume(self, tenant_id: str, job_id: str) -> None: ...

    def record_spend(
        self, log: GenerationLog, job_id: str | None, dataset_id: str | None = None
    ) -> bool: ...

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
    ) -> bool: ...

    def item_outcome(self, tenant_id: str, job_id: str, conversation_id: str) -> str | None: ...

    def item_outcomes(self, tenant_id: str, job_id: str) -> dict[str, str]: ...

    def record_item(self, item: JobItemWrite) -> bool: ...

    def set_batch_id(
        self, tenant_id: str, job_id: str, batch_id: str, execution: str | None = None
    ) -> None: ...

    def batch_id(self, tenant_id: str, job_id: str, execution: str | None = None) -> str | None: ...

    def set_judge_batch(self, tenant_id: str, job_id: str, batch: dict[str, str]) -> None: ...

    def judge_batch(self, tenant_id: str, job_id: str) -> dict[str, str] | None: ...
