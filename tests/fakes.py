"""In-memory implementations of the domain's ports (chalicelib/domain/ports.py), for fast
service tests without moto. Each keeps the contract its DynamoDB adapter states in
chalicelib/store/repositories.py: version-conditioned writes raise StaleVersionError,
a missing or deleting item is a NotFoundError, every conversation write bumps the
dataset's change counter (the list read model runs on these unchanged)."""

from __future__ import annotations

import itertools
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from chalicelib.domain.errors import ConflictError, NotFoundError, StaleVersionError
from chalicelib.domain.models import (
    AuditRecord,
    Chunk,
    Conversation,
    ConversationStatus,
    Dataset,
    Job,
    PromptTemplate,
    utcnow,
)
from chalicelib.domain.ports import ConversationRow

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


@dataclass
class InMemoryJobs:
    """DatasetJobs: the jobs of a dataset, newest first."""

    jobs: list[Job] = field(default_factory=list)

    def list_for_dataset(self, tenant_id: str, dataset_id: str, limit: int = 50) -> list[Job]:
        mine = [j for j in self.jobs if j.tenant_id == tenant_id and j.dataset_id == dataset_id]
        return sorted(mine, key=lambda j: j.created_at, reverse=True)[:limit]


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
