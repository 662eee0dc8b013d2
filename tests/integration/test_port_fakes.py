"""The in-memory fakes (tests/fakes.py) keep the contract of the DynamoDB adapters they
stand in for: the same calls, run against both, give the same answers and errors."""

from __future__ import annotations

import uuid
from typing import Any

import pytest

from chalicelib.domain.errors import ConflictError, NotFoundError, StaleVersionError
from chalicelib.domain.models import Chunk, Conversation, ConversationStatus, Dataset, Tier
from tests.fakes import InMemoryConversations, InMemoryDatasets


@pytest.fixture(params=["in-memory", "dynamodb"])
def ports(request: pytest.FixtureRequest) -> tuple[Any, Any]:
    if request.param == "in-memory":
        datasets = InMemoryDatasets()
        return datasets, InMemoryConversations(datasets)
    request.getfixturevalue("api")  # the local stack: moto's DynamoDB behind the app's env
    from chalicelib.bootstrap import get_container

    c = get_container()
    return c.dataset_repo, c.conversation_repo


def conversation(tenant: str, dataset_id: str, **kw: Any) -> Conversation:
    return Conversation(
        tenant_id=tenant,
        dataset_id=dataset_id,
        persona="Ana",
        emotion="calm",
        topic="fees",
        intent="ask",
        tone="warm",
        tier=Tier.TEMPLATE,
        **kw,
    )


def test_datasets_versions_archive_and_delete_marks(ports: tuple[Any, Any]) -> None:
    datasets, _ = ports
    tenant = f"tenant-{uuid.uuid4().hex[:8]}"
    d = datasets.create(Dataset(tenant_id=tenant, name="One"))
    assert datasets.get(tenant, d.dataset_id).name == "One"
    with pytest.raises(ConflictError):
        datasets.create(d)
    with pytest.raises(NotFoundError):
        datasets.get(tenant, "ds_missing")
    saved = datasets.save(d.model_copy(update={"name": "Two"}), 1)
    assert saved.version == 2 and datasets.get(tenant, d.dataset_id).name == "Two"
    with pytest.raises(StaleVersionError):
        datasets.save(d.model_copy(update={"name": "Three"}), 1)
    with pytest.raises(StaleVersionError):
        datasets.set_archived(tenant, d.dataset_id, "ana", 1)
    archived = datasets.set_archived(tenant, d.dataset_id, "ana", 2)
    assert archived.archived and archived.archived_by == "ana" and archived.version == 3
    unarchived = datasets.set_archived(tenant, d.dataset_id, None, 3)
    assert not unarchived.archived and unarchived.version == 4
    assert [x.dataset_id for x in datasets.list_all(tenant)] == [d.dataset_id]
    with pytest.raises(StaleVersionError):
        datasets.mark_deleting(tenant, d.dataset_id, 3)
    datasets.mark_deleting(tenant, d.dataset_id, 4)
    with pytest.raises(NotFoundError):
        datasets.get(tenant, d.dataset_id)
    assert datasets.get(tenant, d.dataset_id, include_deleting=True).version == 4
    assert datasets.get_deleting(tenant, d.dataset_id) is True
    assert datasets.list_all(tenant) == []
    datasets.unmark_deleting(tenant, d.dataset_id)
    assert datasets.get_deleting(tenant, d.dataset_id) is False
    with pytest.raises(NotFoundError):
        datasets.get_deleting(tenant, "ds_missing")


def test_chunks_are_replaced_as_a_whole(ports: tuple[Any, Any]) -> None:
    datasets, _ = ports
    tenant = f"tenant-{uuid.uuid4().hex[:8]}"
    d = datasets.create(Dataset(tenant_id=tenant, name="One"))

    def chunk(i: int) -> Chunk:
        return Chunk(chunk_id=f"c{i}", document_id="doc", text=f"text {i}")

    datasets.replace_chunks(tenant, d.dataset_id, [chunk(1), chunk(2)])
    datasets.replace_chunks(tenant, d.dataset_id, [chunk(2), chunk(3)])
    got = sorted(c.chunk_id for c in datasets.list_chunks(tenant, d.dataset_id))
    assert got == ["c2", "c3"]


def test_conversation_writes_bump_the_change_counter_and_leave_tombstones(
    ports: tuple[Any, Any],
) -> None:
    datasets, conversations = ports
    tenant = f"tenant-{uuid.uuid4().hex[:8]}"
    d = datasets.create(Dataset(tenant_id=tenant, name="One"))
    assert datasets.conversation_seq(tenant, d.dataset_id) == 0
    planned = [conversation(tenant, d.dataset_id) for _ in range(3)]
    conversations.add_planned(planned)
    assert datasets.conversation_seq(tenant, d.dataset_id) == 3
    listed = conversations.list_for_dataset(tenant, d.dataset_id)
    assert sorted(c.conversation_id for c in listed) == sorted(c.conversation_id for c in planned)
    conversations.soft_delete(planned[0])
    assert datasets.conversation_seq(tenant, d.dataset_id) == 4
    with pytest.raises(ConflictError):
        conversations.soft_delete(planned[0])  # already deleted
    with pytest.raises(NotFoundError):
        conversations.get(tenant, planned[0].conversation_id)
    rows = {
        r.conversation.conversation_id: r
        for r in conversations.changed_since(tenant, d.dataset_id, -1)
    }
    assert rows[planned[0].conversation_id].deleted is True  # the list's delta sees it go
    assert {c.conversation_id for c in conversations.list_for_dataset(tenant, d.dataset_id)} == {
        planned[1].conversation_id,
        planned[2].conversation_id,
    }
    since = max(r.updated_ms for r in rows.values())
    assert list(conversations.changed_since(tenant, d.dataset_id, since)) == []


def test_a_conversation_being_generated_cannot_be_deleted(ports: tuple[Any, Any]) -> None:
    datasets, conversations = ports
    tenant = f"tenant-{uuid.uuid4().hex[:8]}"
    d = datasets.create(Dataset(tenant_id=tenant, name="One"))
    busy = conversation(tenant, d.dataset_id, status=ConversationStatus.GENERATING)
    conversations.add_planned([busy])
    with pytest.raises(ConflictError):
        conversations.soft_delete(busy)
    assert conversations.get(tenant, busy.conversation_id).status == ConversationStatus.GENERATING
