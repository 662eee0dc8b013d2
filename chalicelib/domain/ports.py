"""Ports: what services need from the outside world, as Protocols.

Services depend on these, not on the DynamoDB, S3 or Anthropic adapters, so their rules
can be tested against in-memory fakes. The adapters live in ``chalicelib.store`` and
``chalicelib.llm.client``.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from chalicelib.domain.concurrency import Backoff, FlightStats
from chalicelib.domain.models import (
    Chunk,
    Conversation,
    Dataset,
    ExportRecord,
    GenerationLog,
    JudgeResult,
    PromptTemplate,
    StoredTurn,
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
