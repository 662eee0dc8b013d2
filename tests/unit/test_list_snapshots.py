"""A cold container starts a large dataset's list index from its snapshot (readmodel/
listing.py with the ListSnapshots port): same pages as a full read, only the changes
since the snapshot read, turn text loaded when a search first needs it."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from chalicelib.domain.models import Conversation, ConversationStatus, Dataset, Tier
from chalicelib.domain.ports import ConversationRow
from chalicelib.readmodel.listing import ConversationIndex, ListQuery
from tests.fakes import InMemoryConversations, InMemoryDatasets, InMemoryListSnapshots

T = "tenant-a"
MIN_ROWS = 20


class CountingChanges:
    """The conversations' ConversationChanges, recording the ``since`` of every read."""

    def __init__(self, inner: InMemoryConversations) -> None:
        self.inner = inner
        self.reads: list[int] = []

    def changed_since(
        self, tenant_id: str, dataset_id: str, since_ms: int
    ) -> Iterator[ConversationRow]:
        self.reads.append(since_ms)
        return self.inner.changed_since(tenant_id, dataset_id, since_ms)


class World:
    def __init__(self) -> None:
        self.datasets = InMemoryDatasets()
        self.conversations = InMemoryConversations(self.datasets)
        self.snapshots = InMemoryListSnapshots()
        self.dataset = self.datasets.create(Dataset(tenant_id=T, name="Large"))
        self.ds = self.dataset.dataset_id

    def index(self, snapshots: bool = True) -> tuple[ConversationIndex, CountingChanges]:
        """A new API container's index."""
        changes = CountingChanges(self.conversations)
        index = ConversationIndex(
            self.datasets,
            changes,
            b"secret",
            snapshots=self.snapshots if snapshots else None,
            snapshot_min_rows=MIN_ROWS,
            snapshot_in_background=False,
        )
        return index, changes

    def add(self, n: int, start: int = 0) -> list[Conversation]:
        convs = [
            Conversation(
                tenant_id=T,
                dataset_id=self.ds,
                conversation_id=f"conv_{start + i:04d}",
                persona=("Anxious Investor", "Pre-Retiree")[i % 2],
                emotion="Anxious",
                topic="Fees",
                intent="Learn",
                tone="Warm",
                tier=Tier.TEMPLATE,
                status=ConversationStatus.GENERATED,
                quality_score=5 + (i % 5),
            )
            for i in range(n)
        ]
        self.conversations.add_planned(convs)
        for i, c in enumerate(convs):
            stored = self.conversations.items[(T, c.conversation_id)]
            stored.search_text = f"turn text {start + i} " + ("rollover" if i % 4 == 0 else "fees")
        return convs

    def change(self, cid: str, **fields: Any) -> None:
        stored = self.conversations.items[(T, cid)]
        self.conversations._write(
            stored.conversation.model_copy(update=fields), search_text=stored.search_text
        )
        self.datasets.bump_conversation_seq(T, self.ds)


def page(index: ConversationIndex, **query: Any) -> list[str]:
    result = index.list_page(
        T, ListQuery(dataset_id=query.pop("dataset_id"), page_size=100, **query)
    )
    return [c.conversation_id for c in result["items"]]


@pytest.fixture
def world() -> World:
    return World()


def test_a_cold_container_starts_from_the_snapshot_and_reads_only_the_changes_since(
    world: World,
) -> None:
    world.add(40)
    first, first_reads = world.index()
    page(first, dataset_id=world.ds)
    assert first_reads.reads == [-1] and world.snapshots.saves == 1  # a full read, then a snapshot
    # after the snapshot: one changed, one deleted, one added
    world.change("conv_0003", status=ConversationStatus.APPROVED, quality_score=9.9)
    world.conversations.soft_delete(world.conversations.get(T, "conv_0005"))
    world.add(1, start=40)

    cold, reads = world.index()
    expected, _ = world.index(snapshots=False)  # one that reads the whole dataset
    for query in (
        {},
        {"sort": "quality_score", "order": "desc"},
        {"filters": {"persona": ["Pre-Retiree"]}},
    ):
        assert page(cold, dataset_id=world.ds, **query) == page(
            expected, dataset_id=world.ds, **query
        )
    assert reads.reads and -1 not in reads.reads  # never the whole dataset
    listed = {c.conversation_id: c for c in cold.conversations(T, world.ds)}
    assert "conv_0005" not in listed and "conv_0040" in listed
    assert listed["conv_0003"].status == ConversationStatus.APPROVED


def test_the_turn_text_is_loaded_only_when_a_search_needs_it(world: World) -> None:
    world.add(40)
    first, _ = world.index()
    page(first, dataset_id=world.ds)
    cold, reads = world.index()
    page(cold, dataset_id=world.ds)
    assert world.snapshots.text_loads == 0
    found = page(cold, dataset_id=world.ds, q="rollover")
    assert world.snapshots.text_loads == 1 and len(found) == 10
    assert -1 not in reads.reads  # the snapshot had every row's text
    assert len(cold.texts(T, world.ds)) == 40


def test_a_small_dataset_has_no_snapshot_and_a_large_one_is_rewritten_after_enough_changes(
    world: World,
) -> None:
    world.add(MIN_ROWS - 1)
    index, _ = world.index()
    page(index, dataset_id=world.ds)
    assert world.snapshots.saves == 0
    world.add(1, start=MIN_ROWS)
    page(index, dataset_id=world.ds)
    assert world.snapshots.saves == 1  # now large: every row is new to a snapshot
    world.change("conv_0001", quality_score=1.0)
    page(index, dataset_id=world.ds)
    assert world.snapshots.saves == 1  # one change is not enough to rewrite it


def test_a_broken_snapshot_falls_back_to_the_full_read(world: World) -> None:
    world.add(40)
    first, _ = world.index()
    page(first, dataset_id=world.ds)

    def broken(tenant_id: str, dataset_id: str) -> Any:
        raise OSError("S3 unavailable")

    world.snapshots.load = broken  # type: ignore[method-assign]
    cold, reads = world.index()
    assert len(page(cold, dataset_id=world.ds)) == 40
    assert reads.reads[0] == -1
