"""Ports: what services need from storage, as protocols (adapters live in store/)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

from chalicelib.domain.concurrency import Backoff, FlightStats
from chalicelib.domain.models import Conversation, GenerationLog, PromptTemplate


class GenerationLogReader(Protocol):
    def list_for_conversation(
        self, tenant_id: str, conversation_id: str
    ) -> Sequence[GenerationLog]: ...


class ConversationSource(Protocol):
    """The conversations of one dataset (the API's list index, or a full read)."""

    def conversations(self, tenant_id: str, dataset_id: str) -> Sequence[Conversation]: ...


class ActiveTemplates(Protocol):
    """The tenant's prompt templates that generation may use."""

    def active_for_generation(self, tenant_id: str) -> list[PromptTemplate]: ...


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
