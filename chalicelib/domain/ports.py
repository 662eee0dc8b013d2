"""Ports: what services need from storage, as protocols (adapters live in store/)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

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
