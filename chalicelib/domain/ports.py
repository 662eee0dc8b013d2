"""Ports: what services need from the outside world, as Protocols.

Services depend on these, not on the DynamoDB, S3 or Anthropic adapters, so their rules
can be tested against in-memory fakes. The adapters live in ``chalicelib.store`` and
``chalicelib.generation.llm_client``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

from chalicelib.domain.models import Conversation, GenerationLog, JudgeResult, PromptTemplate


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


class SpendLog(Protocol):
    def record_spend(
        self, log: GenerationLog, job_id: str | None, dataset_id: str | None = None
    ) -> bool:
        """Log one billed call and add its cost to the job and dataset exactly once."""
        ...


class JudgementCache(Protocol):
    def get(self, tenant_id: str, content_hash: str) -> JudgeResult | None: ...

    def put(self, tenant_id: str, result: JudgeResult) -> None: ...
