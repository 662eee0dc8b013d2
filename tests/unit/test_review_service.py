"""ReviewService (chalicelib/review/service.py) on in-memory ports (tests/fakes.py): the
version check, who may review what, notes a dataset requires, bulk decisions that apply
per id, undo, the trash and restore. No moto: the store's contract (conditional writes
with their audit record) is the fake's, checked against DynamoDB by
tests/integration/test_port_fakes.py."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pytest

from chalicelib.audit.log import AuditLog
from chalicelib.domain.errors import (
    ConfirmationRequiredError,
    ConflictError,
    DatasetArchivedError,
    NoteRequiredError,
    StaleVersionError,
)
from chalicelib.domain.models import Conversation, ConversationStatus, Dataset, Tier, Turn, utcnow
from chalicelib.readmodel.listing import ConversationIndex, ListQuery
from chalicelib.review.service import ReviewService
from tests.fakes import (
    InMemoryAudit,
    InMemoryDatasets,
    InMemoryReviewedConversations,
    NoGenerationLogs,
)

T = "tenant-a"
S = ConversationStatus


@dataclass
class World:
    review: ReviewService
    datasets: InMemoryDatasets
    conversations: InMemoryReviewedConversations
    audit: InMemoryAudit
    index: ConversationIndex
    dataset: Dataset

    def add(self, n: int = 1, status: S = S.GENERATED, dataset: Dataset | None = None) -> list[str]:
        target = dataset or self.dataset
        convs = [
            Conversation(
                tenant_id=T,
                dataset_id=target.dataset_id,
                persona="Retiree",
                emotion="calm",
                topic="fees",
                intent="ask",
                tone="warm",
                tier=Tier.TEMPLATE,
                status=status,
            )
            for _ in range(n)
        ]
        self.conversations.add_planned(convs)
        for c in convs:
            self.conversations.set_turns(
                c,
                [
                    Turn(turn_number=1, role="user", content="What do you charge?"),
                    Turn(turn_number=2, role="assistant", content="A flat fee of 1%."),
                ],
            )
        return [c.conversation_id for c in convs]

    def status(self, cid: str) -> S:
        return self.conversations.get(T, cid).status


@pytest.fixture
def world() -> World:
    datasets = InMemoryDatasets()
    audit = InMemoryAudit()
    conversations = InMemoryReviewedConversations(datasets, audit)
    index = ConversationIndex(datasets, conversations, b"secret")
    review = ReviewService(
        datasets, conversations, NoGenerationLogs(), audit, AuditLog(audit), index
    )
    dataset = datasets.create(Dataset(tenant_id=T, name="Harbor"))
    return World(review, datasets, conversations, audit, index, dataset)


def approve(world: World, cid: str, version: int | None = None, **more: Any) -> Any:
    current = world.conversations.get(T, cid)
    changes = {"status": "approved", "version": current.version if version is None else version}
    return world.review.update(T, "ann", cid, changes | more)


def test_an_approval_is_saved_audited_and_undoable(world: World) -> None:
    (cid,) = world.add()
    saved, decision = approve(world, cid)
    assert saved.status == S.APPROVED and saved.approved_by == "ann"
    assert world.status(cid) == S.APPROVED
    assert "conversation.approve" in world.audit.actions(cid)
    assert decision["undo_token"]
    world.review.undo(T, "ann", decision["undo_token"])
    assert world.status(cid) == S.GENERATED


def test_a_decision_on_an_old_version_is_refused_with_the_current_state(world: World) -> None:
    (cid,) = world.add()
    first = world.conversations.get(T, cid).version
    approve(world, cid)
    with pytest.raises(StaleVersionError) as refused:
        approve(world, cid, version=first, reviewer_notes="mine")
    assert refused.value.details["current"]["status"] == "approved"
    assert refused.value.details["your_version"] == first


@pytest.mark.parametrize("status", [S.GENERATING, S.NOT_GENERATED, S.FAILED])
def test_only_generated_conversations_are_reviewed(world: World, status: S) -> None:
    (cid,) = world.add(status=status)
    with pytest.raises(ConflictError):
        approve(world, cid)
    assert world.status(cid) == status
    assert world.audit.records == []


def test_a_dataset_that_requires_a_reject_note_gets_one(world: World) -> None:
    world.datasets.items[(T, world.dataset.dataset_id)] = world.dataset.model_copy(
        update={"require_reject_note": True}
    )
    (cid,) = world.add()
    version = world.conversations.get(T, cid).version
    with pytest.raises(NoteRequiredError):
        world.review.update(T, "ann", cid, {"status": "rejected", "version": version})
    saved, _ = world.review.update(
        T, "ann", cid, {"status": "rejected", "version": version, "reviewer_notes": "off-brand"}
    )
    assert saved.status == S.REJECTED and saved.reviewer_notes == "off-brand"


def test_an_archived_dataset_is_read_only_to_reviewers(world: World) -> None:
    (cid,) = world.add()
    world.datasets.items[(T, world.dataset.dataset_id)] = world.dataset.model_copy(
        update={"archived_at": utcnow(), "archived_by": "owner"}
    )
    with pytest.raises(DatasetArchivedError):
        approve(world, cid)
    assert world.status(cid) == S.GENERATED


def test_a_bulk_approval_applies_per_id_as_one_decision(world: World) -> None:
    ready = world.add(2)
    (busy,) = world.add(status=S.GENERATING)
    result = world.review.bulk(T, "ann", "approve", ids=[*ready, busy, "missing"])
    assert result["succeeded"] == ready
    failed = {f["id"]: f["error"]["code"] for f in result["failed"]}
    assert failed == {busy: "conflict", "missing": "not_found"}
    assert [world.status(c) for c in ready] == [S.APPROVED, S.APPROVED]
    assert world.status(busy) == S.GENERATING
    # one undo reverts the whole decision
    world.review.undo(T, "ann", result["undo_token"])
    assert [world.status(c) for c in ready] == [S.GENERATED, S.GENERATED]


def test_a_bulk_preview_writes_nothing(world: World) -> None:
    ids = world.add(3)
    summary = world.review.bulk(T, "ann", "approve", ids=ids, preview=True)
    assert summary["will_change"] == 3
    assert [world.status(c) for c in ids] == [S.GENERATED] * 3
    assert world.audit.records == []


def test_acting_on_a_filter_needs_confirmation_and_then_takes_what_it_matches(world: World) -> None:
    ids = world.add(3)
    other = world.datasets.create(Dataset(tenant_id=T, name="Other"))
    (elsewhere,) = world.add(dataset=other)
    query = ListQuery(dataset_id=world.dataset.dataset_id)
    with pytest.raises(ConfirmationRequiredError):
        world.review.bulk(T, "ann", "approve", query=query)
    assert world.audit.records == []
    result = world.review.bulk(T, "ann", "approve", query=query, confirm=True, expected_count=3)
    assert sorted(result["succeeded"]) == sorted(ids) and result["matched"] == 3
    assert world.status(elsewhere) == S.GENERATED


def test_bulk_ids_over_the_limit_are_refused(world: World) -> None:
    ids = world.add(3)
    with pytest.raises(Exception, match="at most 2 ids"):
        world.review.bulk(T, "ann", "approve", ids=ids, limit=2)


def test_a_deleted_conversation_waits_in_the_trash_and_comes_back(world: World) -> None:
    (cid,) = world.add()
    approve(world, cid)
    world.review.delete(T, "ann", cid)
    assert cid not in {
        c.conversation_id for c in world.index.conversations(T, world.dataset.dataset_id)
    }
    trash = world.review.trash(T, None)
    assert [e["conversation"].conversation_id for e in trash] == [cid]
    assert trash[0]["days_left"] >= 29
    restored, decision = world.review.restore(T, "ann", cid)
    assert restored.status == S.APPROVED  # its review comes back with it
    assert world.review.trash(T, world.dataset.dataset_id) == []
    assert decision["undo_token"]
    assert world.audit.actions(cid)[-1] == "conversation.restore"


def test_a_conversation_being_generated_cannot_be_deleted(world: World) -> None:
    (cid,) = world.add(status=S.GENERATING)
    with pytest.raises(ConflictError, match="being generated"):
        world.review.delete(T, "ann", cid)
    assert world.review.trash(T, None) == []


def test_an_edited_turn_sends_an_approved_conversation_back_to_review(world: World) -> None:
    (cid,) = world.add()
    saved, _ = approve(world, cid)
    result = world.review.turn_feedback(
        T,
        "ann",
        cid,
        2,
        {
            "expected_version": saved.version,
            "content": "A flat fee of 1% a year, billed quarterly.",
        },
    )
    stored = world.conversations.get_with_turns(T, cid)
    assert stored.turns[1].content.endswith("billed quarterly.")
    assert stored.conversation.status == S.GENERATED
    assert result["conversation"].status == S.GENERATED
