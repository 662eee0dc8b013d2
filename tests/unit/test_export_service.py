"""ExportService (chalicelib/export/service.py) on in-memory ports (tests/fakes.py): what
is exported, when it is written inline or handed to the worker, and that a worker
delivered twice writes once. No moto: S3 is InMemoryS3."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import pytest

from chalicelib.audit.log import AuditLog
from chalicelib.domain.errors import ExportFailedError, NotFoundError, ValidationError
from chalicelib.domain.models import (
    Conversation,
    ConversationStatus,
    Dataset,
    ExportFormat,
    ExportStatus,
    StoredTurn,
    Tier,
)
from chalicelib.export.service import INLINE_LIMIT, ExportService
from tests.fakes import (
    InMemoryApproved,
    InMemoryAudit,
    InMemoryConversations,
    InMemoryDatasets,
    InMemoryExports,
    InMemoryS3,
)

T = "tenant-a"


@dataclass
class World:
    service: ExportService
    datasets: InMemoryDatasets
    conversations: InMemoryConversations
    source: InMemoryApproved
    exports: InMemoryExports
    audit: InMemoryAudit
    s3: InMemoryS3
    started: list[tuple[str, str]]


@pytest.fixture
def world() -> World:
    datasets = InMemoryDatasets()
    conversations = InMemoryConversations(datasets)
    source = InMemoryApproved(conversations)
    exports = InMemoryExports()
    audit = InMemoryAudit()
    s3 = InMemoryS3()
    started: list[tuple[str, str]] = []
    service = ExportService(
        s3=s3,
        bucket="exports",
        presign_seconds=900,
        datasets=datasets,
        exports=exports,
        source=source,
        audit=AuditLog(audit),
        run_async=lambda tenant, export_id: started.append((tenant, export_id)),
    )
    return World(service, datasets, conversations, source, exports, audit, s3, started)


def dataset(w: World, name: str = "Harbor") -> str:
    return w.datasets.create(Dataset(tenant_id=T, name=name)).dataset_id


def add(
    w: World, ds: str, n: int, status: ConversationStatus = ConversationStatus.APPROVED, **kw: Any
) -> list[str]:
    made = [
        Conversation(
            tenant_id=T,
            dataset_id=ds,
            persona="Ana",
            emotion="calm",
            topic="fees",
            intent="ask",
            tone="warm",
            tier=kw.get("tier", Tier.TEMPLATE),
            status=status,
            quality_score=kw.get("quality_score", 8.0),
            turn_count=2,
        )
        for _ in range(n)
    ]
    w.conversations.add_planned(made)
    for c in made:
        w.source.turns_of[c.conversation_id] = [
            StoredTurn(1, "user", f"How much are the fees? ({c.conversation_id})"),
            StoredTurn(2, "assistant", "0.75% a year, billed quarterly."),
        ]
    return [c.conversation_id for c in made]


def test_preview_shows_approved_conversations_that_match_the_filters(world: World) -> None:
    ds = dataset(world)
    approved = add(world, ds, 2, tier=Tier.SCENARIO)
    add(world, ds, 2, tier=Tier.TEMPLATE)  # approved, other tier
    add(world, ds, 2, ConversationStatus.GENERATED, tier=Tier.SCENARIO)  # not approved
    out = world.service.preview(T, ExportFormat.OPENAI, {"dataset_id": ds, "tier": ["scenario"]})
    assert len(out["records"]) == 2 and out["extension"] == "jsonl"
    texts = json.dumps(out["records"])
    assert all(cid in texts for cid in approved)
    assert world.exports.items == {} and world.s3.objects == {}  # a preview writes nothing


def test_a_small_export_is_written_inline_stored_ready_and_audited(world: World) -> None:
    ds = dataset(world)
    ids = add(world, ds, 3)
    add(world, ds, 1, quality_score=4.0)  # below the bound asked for
    record = world.service.create(
        T, "ana", ExportFormat.OPENAI, {"dataset_id": ds, "quality_min": 7.0}, None
    )
    assert record.status == ExportStatus.READY and record.conversation_count == 3
    stored = world.exports.get(T, record.export_id)
    assert stored.status == ExportStatus.READY and stored.claim_token  # the one run's
    (key,) = [k for k in world.s3.objects if k.endswith(".jsonl")]
    lines = world.s3.objects[key].decode().splitlines()
    assert len(lines) == 3 and all(any(i in line for i in ids) for line in lines)
    assert world.audit.actions(record.export_id) == ["export.create"]
    assert world.started == []  # inline: the worker was not needed


def test_nothing_approved_or_an_unknown_dataset_stores_nothing(world: World) -> None:
    ds = dataset(world)
    add(world, ds, 3, ConversationStatus.GENERATED)
    with pytest.raises(ValidationError, match="no approved conversations match"):
        world.service.create(T, "ana", ExportFormat.CSV, {"dataset_id": ds}, None)
    with pytest.raises(NotFoundError):
        world.service.create(T, "ana", ExportFormat.CSV, {"dataset_id": "ds_nope"}, None)
    with pytest.raises(ValidationError):
        world.service.create(T, "ana", ExportFormat.CSV, {"dataset_id": ds}, {"train": 2.0})
    assert world.exports.items == {} and world.audit.records == [] and world.s3.objects == {}


def test_a_tenant_exports_only_its_own_datasets(world: World) -> None:
    ds = dataset(world)
    add(world, ds, 2)
    other = world.datasets.create(Dataset(tenant_id="tenant-b", name="B")).dataset_id
    with pytest.raises(NotFoundError):
        world.service.preview("tenant-b", ExportFormat.OPENAI, {"dataset_id": ds})
    with pytest.raises(ValidationError):  # tenant-b's own (empty) datasets only
        world.service.create("tenant-b", "bo", ExportFormat.OPENAI, {}, None)
    assert other and world.exports.list_all("tenant-b") == []


def test_a_large_export_goes_to_the_worker_and_a_second_delivery_writes_nothing(
    world: World,
) -> None:
    ds = dataset(world)
    add(world, ds, INLINE_LIMIT + 1)
    pending = world.service.create(T, "ana", ExportFormat.GENERIC, {"dataset_id": ds}, None)
    assert pending.status == ExportStatus.PENDING
    assert world.started == [(T, pending.export_id)] and world.s3.objects == {}
    done = world.service.run(T, pending.export_id)
    assert done.status == ExportStatus.READY and done.conversation_count == INLINE_LIMIT + 1
    files = dict(world.s3.objects)
    again = world.service.run(T, pending.export_id)  # at-least-once delivery
    assert again.status == ExportStatus.READY and world.s3.objects == files
    assert world.audit.actions(pending.export_id) == ["export.create"]


def test_a_worker_that_cannot_be_started_leaves_a_failed_audited_export(world: World) -> None:
    ds = dataset(world)
    add(world, ds, INLINE_LIMIT + 1)

    def unreachable(tenant: str, export_id: str) -> None:
        raise RuntimeError("Lambda is throttling")

    world.service.run_async = unreachable
    with pytest.raises(ExportFailedError, match="could not be started") as raised:
        world.service.create(T, "ana", ExportFormat.OPENAI, {"dataset_id": ds}, None)
    export_id = raised.value.details["export_id"]
    stored = world.exports.get(T, export_id)
    assert stored.status == ExportStatus.FAILED and "throttling" in (stored.error_message or "")
    assert world.audit.actions(export_id) == ["export.failed"]


def test_a_split_export_writes_one_file_per_split_with_every_conversation_once(
    world: World,
) -> None:
    ds = dataset(world)
    ids = add(world, ds, 40)
    record = world.service.create(
        T, "ana", ExportFormat.OPENAI, {"dataset_id": ds}, {"train": 0.8, "validation": 0.2}, seed=3
    )
    assert record.status == ExportStatus.READY and record.seed == 3
    data = [f for f in record.files if f["split"] in ("train", "validation")]
    assert {f["split"] for f in record.files} == {"train", "validation", "manifest", "bundle"}
    assert sorted(f["count"] for f in data) == [8, 32]
    written = [
        line
        for f in data
        for line in world.s3.objects[f["key"]].decode().splitlines()
        if line.strip()
    ]
    assert len(written) == 40
    assert all(sum(i in line for line in written) == 1 for i in ids)
