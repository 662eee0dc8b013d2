"""The in-memory fakes (tests/fakes.py) keep the contract of the DynamoDB adapters they
stand in for: the same calls, run against both, give the same answers and errors."""

from __future__ import annotations

import uuid
from typing import Any

import pytest

from chalicelib.domain.errors import ConflictError, NotFoundError, StaleVersionError
from chalicelib.domain.models import Chunk, Conversation, ConversationStatus, Dataset, Tier
from tests.fakes import InMemoryConversations, InMemoryDatasets


# Both variants take the stack (``api``): the test then runs with the other stack tests
# (tests/conftest.py orders them last), and the DynamoDB variant uses its tables.
@pytest.fixture(params=["in-memory", "dynamodb"])
def ports(request: pytest.FixtureRequest, api: Any) -> tuple[Any, Any]:
    if request.param == "in-memory":
        datasets = InMemoryDatasets()
        return datasets, InMemoryConversations(datasets)
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


@pytest.fixture(params=["in-memory", "dynamodb"])
def export_ports(request: pytest.FixtureRequest, api: Any) -> tuple[Any, Any, Any, Any]:
    """(datasets, conversations, exports, approved source)."""
    if request.param == "in-memory":
        from tests.fakes import InMemoryApproved, InMemoryExports

        datasets = InMemoryDatasets()
        conversations = InMemoryConversations(datasets)
        return datasets, conversations, InMemoryExports(), InMemoryApproved(conversations)
    from chalicelib.bootstrap import get_container
    from chalicelib.store.export_source import DynamoExportSource

    c = get_container()
    return c.dataset_repo, c.conversation_repo, c.export_repo, DynamoExportSource()


def test_an_export_is_claimed_once_and_finished_only_by_its_owner(
    export_ports: tuple[Any, Any, Any, Any],
) -> None:
    from chalicelib.domain.models import ExportFormat, ExportRecord, ExportStatus

    _, _, exports, _ = export_ports
    tenant = f"tenant-{uuid.uuid4().hex[:8]}"
    record = exports.save(ExportRecord(tenant_id=tenant, format=ExportFormat.CSV))
    claimed = exports.claim(record, "run-1")
    assert claimed is not None and claimed.claim_token == "run-1"
    assert exports.claim(record, "run-2") is None  # the other delivery
    ready = claimed.model_copy(update={"status": ExportStatus.READY})
    assert exports.save_if_pending(ready, "run-2") is False  # not the owner
    assert exports.save_if_pending(ready, "run-1") is True
    late = claimed.model_copy(update={"status": ExportStatus.FAILED})
    assert exports.save_if_pending(late, "run-1") is False  # no longer pending
    assert exports.get(tenant, record.export_id).status == ExportStatus.READY
    assert [e.export_id for e in exports.list_all(tenant)] == [record.export_id]
    with pytest.raises(NotFoundError):
        exports.get(tenant, "exp_missing")


def test_the_approved_source_applies_status_filters_and_quality_bounds(
    export_ports: tuple[Any, Any, Any, Any],
) -> None:
    datasets, conversations, _, source = export_ports
    tenant = f"tenant-{uuid.uuid4().hex[:8]}"
    d = datasets.create(Dataset(tenant_id=tenant, name="One"))
    approved = ConversationStatus.APPROVED
    keep = conversation(tenant, d.dataset_id, status=approved, quality_score=8.0)
    low = conversation(tenant, d.dataset_id, status=approved, quality_score=5.0)
    unreviewed = conversation(tenant, d.dataset_id, status=ConversationStatus.GENERATED)
    other_tier = conversation(tenant, d.dataset_id, status=approved, quality_score=9.0)
    other_tier = other_tier.model_copy(update={"tier": Tier.SCENARIO})
    conversations.add_planned([keep, low, unreviewed, other_tier])
    filters = {"tier": ["template"], "quality_min": 7.0}
    got = [c.conversation_id for c in source.approved(tenant, d.dataset_id, filters)]
    assert got == [keep.conversation_id]
    assert source.count_approved(tenant, d.dataset_id, filters, 10) == 1
    assert source.count_approved(tenant, d.dataset_id, {}, 10) == 3
    assert source.count_approved(tenant, d.dataset_id, {}, 2) == 2  # counts no further


@pytest.fixture(params=["in-memory", "dynamodb"])
def review_ports(request: pytest.FixtureRequest, api: Any) -> tuple[Any, Any, Any]:
    if request.param == "in-memory":
        from tests.fakes import InMemoryAudit, InMemoryReviewedConversations

        datasets, audit = InMemoryDatasets(), InMemoryAudit()
        return datasets, InMemoryReviewedConversations(datasets, audit), audit
    from chalicelib.bootstrap import get_container

    c = get_container()
    return c.dataset_repo, c.conversation_repo, c.audit_repo


def test_review_writes_apply_on_the_version_read_with_their_audit_record(
    review_ports: tuple[Any, Any, Any],
) -> None:
    from chalicelib.domain.models import AuditRecord
    from chalicelib.domain.ports import ReviewWrite

    datasets, conversations, audit = review_ports
    tenant = f"tenant-{uuid.uuid4().hex[:8]}"
    d = datasets.create(Dataset(tenant_id=tenant, name="One"))
    ready, busy, gone = (
        conversation(tenant, d.dataset_id, status=s)
        for s in (
            ConversationStatus.GENERATED,
            ConversationStatus.GENERATING,
            ConversationStatus.GENERATED,
        )
    )
    conversations.add_planned([ready, busy])

    def record(c: Conversation, action: str) -> AuditRecord:
        return AuditRecord(
            tenant_id=tenant,
            actor="ana",
            action=action,
            entity_type="conversation",
            entity_id=c.conversation_id,
        )

    approved = ready.model_copy(
        update={"status": ConversationStatus.APPROVED, "version": ready.version + 1}
    )
    ok = record(ready, "conversation.approve")
    assert conversations.write_reviews([ReviewWrite(ready, approved, ok)]) == {}
    assert conversations.get(tenant, ready.conversation_id).status == ConversationStatus.APPROVED
    assert audit.get(tenant, ok.sort_key) is not None
    # the same write again: its version is no longer the stored one
    again = record(ready, "conversation.approve")
    failures = conversations.write_reviews([ReviewWrite(ready, approved, again)])
    assert failures[ready.conversation_id].reason == "stale"
    assert failures[ready.conversation_id].current.version == ready.version + 1
    assert audit.get(tenant, again.sort_key) is None  # nothing half-written
    # a conversation being generated does not go to the trash; a missing one is not found
    failures = conversations.write_reviews(
        [
            ReviewWrite(busy, None, record(busy, "conversation.delete")),
            ReviewWrite(gone, None, record(gone, "conversation.delete")),
        ]
    )
    assert {cid: f.reason for cid, f in failures.items()} == {
        busy.conversation_id: "generating",
        gone.conversation_id: "not_found",
    }
    # to the trash and back, each on the version read
    current = conversations.get(tenant, ready.conversation_id)
    assert (
        conversations.write_reviews(
            [ReviewWrite(current, None, record(current, "conversation.delete"))]
        )
        == {}
    )
    trashed = conversations.trashed(tenant, [ready.conversation_id], consistent=True)[
        ready.conversation_id
    ]
    assert [c.conversation_id for c, _ in conversations.trash(tenant, d.dataset_id)] == [
        ready.conversation_id
    ]
    back = trashed.model_copy(
        update={"trashed_at": None, "trashed_by": None, "version": trashed.version + 1}
    )
    restore = ReviewWrite(trashed, back, record(trashed, "conversation.restore"), restore=True)
    assert conversations.write_reviews([restore]) == {}
    assert conversations.get(tenant, ready.conversation_id).status == ConversationStatus.APPROVED
    assert conversations.trash(tenant, d.dataset_id) == []


@pytest.fixture(params=["in-memory", "dynamodb"])
def generation_ports(request: pytest.FixtureRequest, api: Any) -> tuple[Any, Any]:
    if request.param == "in-memory":
        from tests.fakes import InMemoryAudit, InMemoryGenerationConversations, InMemoryJobs

        datasets = InMemoryDatasets()
        return datasets, InMemoryGenerationConversations(datasets, InMemoryJobs(), InMemoryAudit())
    from chalicelib.bootstrap import get_container

    c = get_container()
    return c.dataset_repo, c.conversation_repo


def test_a_claim_never_takes_another_job_s_item_nor_one_this_job_failed(
    generation_ports: tuple[Any, Any],
) -> None:
    from chalicelib.domain.ports import ClaimOutcome

    datasets, conversations = generation_ports
    tenant = f"tenant-{uuid.uuid4().hex[:8]}"
    d = datasets.create(Dataset(tenant_id=tenant, name="One"))
    c = conversation(tenant, d.dataset_id)
    conversations.add_planned([c])
    cid = c.conversation_id
    outcome, claimed = conversations.claim_for_generation(tenant, cid, "job_a", "claim_1")
    assert outcome is ClaimOutcome.CLAIMED and claimed.generation_attempts == 1
    outcome, again = conversations.claim_for_generation(tenant, cid, "job_a", "claim_1")
    assert outcome is ClaimOutcome.CLAIMED and again.generation_attempts == 2  # a retried task
    assert (
        conversations.claim_for_generation(tenant, cid, "job_b", "")[0] is ClaimOutcome.INELIGIBLE
    )
    assert conversations.commit_failure(again, "the provider refused it", None)
    # the same job's task run again after its failure was written: nothing to do
    outcome, seen = conversations.claim_for_generation(tenant, cid, "job_a", "claim_1")
    assert outcome is ClaimOutcome.ALREADY_DONE and seen.status == ConversationStatus.FAILED
    # another job (Retry failed) takes it
    outcome, retried = conversations.claim_for_generation(tenant, cid, "job_b", "")
    assert outcome is ClaimOutcome.CLAIMED and retried.job_id == "job_b"
