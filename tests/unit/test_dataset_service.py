"""DatasetService (chalicelib/datasets/service.py) on in-memory ports (tests/fakes.py):
its rules without moto. The real list read model (ConversationIndex) runs on the fakes."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pytest

from chalicelib.audit.log import AuditLog
from chalicelib.datasets.service import DatasetService
from chalicelib.domain.errors import (
    ConflictError,
    DatasetArchivedError,
    NotFoundError,
    StaleVersionError,
    ValidationError,
)
from chalicelib.domain.models import ConversationStatus, Job, JobStatus, Tier
from chalicelib.planning import seed_prompt_templates
from chalicelib.readmodel.listing import ConversationIndex, ListQuery
from tests.fakes import (
    FixedTemplates,
    InMemoryAudit,
    InMemoryConversations,
    InMemoryDatasets,
    InMemoryJobs,
    InMemoryPurger,
)

T = "tenant-a"


@dataclass
class World:
    service: DatasetService
    datasets: InMemoryDatasets
    conversations: InMemoryConversations
    audit: InMemoryAudit
    jobs: InMemoryJobs
    index: ConversationIndex


@pytest.fixture
def world() -> World:
    datasets = InMemoryDatasets()
    conversations = InMemoryConversations(datasets)
    audit = InMemoryAudit()
    jobs = InMemoryJobs()
    index = ConversationIndex(datasets, conversations, b"secret")
    service = DatasetService(
        datasets,
        conversations,
        AuditLog(audit),
        index,
        known_models=("claude-sonnet-4-5",),
        jobs=jobs,
        purger=InMemoryPurger(datasets, conversations),
        templates=FixedTemplates(seed_prompt_templates(T)),
    )
    return World(service, datasets, conversations, audit, jobs, index)


def sample(w: World) -> str:
    return w.service.create_sample(T, "ana").dataset_id


def test_a_dataset_is_created_audited_and_listed_newest_first(world: World) -> None:
    first = world.service.create(T, "ana", {"name": "One"})
    second = world.service.create(T, "ana", {"name": "Two", "description": None})
    assert [d.name for d in world.service.list_all(T)] == ["Two", "One"]
    assert world.service.list_all("tenant-b") == []  # another tenant sees nothing
    assert world.audit.actions(first.dataset_id) == ["dataset.create"]
    assert second.description == ""  # None means "not given"


def test_an_unknown_model_is_refused_before_anything_is_written(world: World) -> None:
    with pytest.raises(ValidationError, match="gpt-4"):
        world.service.create(T, "ana", {"name": "X", "model": "gpt-4"})
    assert world.datasets.items == {} and world.audit.records == []


def test_an_update_with_a_stale_version_changes_nothing(world: World) -> None:
    d = world.service.create(T, "ana", {"name": "One"})
    saved = world.service.update(T, "ana", d.dataset_id, {"name": "Renamed", "version": 1})
    assert saved.version == 2 and saved.name == "Renamed"
    with pytest.raises(StaleVersionError):
        world.service.update(T, "bo", d.dataset_id, {"name": "Mine", "version": 1})
    assert world.service.get(T, d.dataset_id).name == "Renamed"
    assert world.audit.actions(d.dataset_id) == ["dataset.create", "dataset.update"]


def test_planning_needs_a_taxonomy_then_plans_the_target_count(world: World) -> None:
    bare = world.service.create(T, "ana", {"name": "Bare"})
    with pytest.raises(ConflictError, match="set the taxonomy first"):
        world.service.plan(T, "ana", bare.dataset_id, {})
    ds = sample(world)
    target = world.service.get(T, ds).target_count
    result = world.service.plan(T, "ana", ds, {"seed": 3})
    assert result["planned"] == target == sum(result["tiers"].values())
    planned = world.conversations.list_for_dataset(T, ds)
    assert sorted(c.conversation_id for c in planned) == sorted(result["conversation_ids"])
    assert {c.status for c in planned} == {ConversationStatus.NOT_GENERATED}
    # One audit record per planned conversation, then the dataset's own.
    assert world.audit.actions().count("conversation.plan") == target
    assert world.audit.actions(ds)[-1] == "dataset.plan"
    # The list read model sees them (it runs on the same fakes).
    page = world.index.page(T, [ds], ListQuery(dataset_id=ds, page_size=25))
    assert page["total"] == target


def test_planning_twice_needs_replace_which_keeps_generated_conversations(world: World) -> None:
    ds = sample(world)
    world.service.plan(T, "ana", ds, {"count": 12})
    with pytest.raises(ConflictError, match="already has 12 planned"):
        world.service.plan(T, "ana", ds, {"count": 12})
    first = world.conversations.list_for_dataset(T, ds)
    kept = first[0].model_copy(update={"status": ConversationStatus.GENERATED})
    world.conversations.items[(T, kept.conversation_id)].conversation = kept
    again = world.service.plan(T, "ana", ds, {"count": 12, "replace": True, "seed": 9})
    now = {c.conversation_id for c in world.conversations.list_for_dataset(T, ds)}
    assert now == {kept.conversation_id, *again["conversation_ids"]}
    assert world.service.get(T, ds).target_count == 12  # the count asked for is kept


def test_fill_gaps_plans_only_what_is_missing(world: World) -> None:
    ds = sample(world)
    target = world.service.get(T, ds).target_count
    world.service.plan(T, "ana", ds, {"count": target // 2})
    world.service.update(T, "ana", ds, {"target_count": target})
    filled = world.service.fill_gaps(T, "ana", ds)
    assert 0 < filled["planned"] <= target - target // 2
    assert len(world.conversations.list_for_dataset(T, ds)) == target // 2 + filled["planned"]
    coverage = world.service.coverage(T, ds)
    assert coverage["filtered"] is False and coverage["total"] == target // 2 + filled["planned"]


def test_filtered_coverage_counts_only_the_selected_conversations(world: World) -> None:
    ds = sample(world)
    world.service.plan(T, "ana", ds, {"count": 30})
    edge = [c for c in world.conversations.list_for_dataset(T, ds) if c.tier == Tier.EDGE_CASE]
    result = world.service.coverage(
        T, ds, ListQuery(dataset_id=ds, filters={"tier": ["edge_case"]})
    )
    assert edge and result["filtered"] is True and result["filters"] == {"tier": ["edge_case"]}
    assert result["total"] == len(edge) < world.service.coverage(T, ds)["total"] == 30


def test_no_plan_is_written_when_no_active_template_can_generate_it(world: World) -> None:
    world.service.templates = FixedTemplates([])
    ds = sample(world)
    with pytest.raises(ConflictError, match="cannot be generated") as raised:
        world.service.plan(T, "ana", ds, {"count": 10})
    assert raised.value.details["blocked"]
    assert world.conversations.list_for_dataset(T, ds) == []


def test_an_archived_dataset_refuses_writes_until_unarchived(world: World) -> None:
    ds = sample(world)
    archived = world.service.archive(T, "ana", ds)
    assert archived.archived and world.service.archive(T, "ana", ds).version == archived.version
    for write in (
        lambda: world.service.plan(T, "ana", ds, {}),
        lambda: world.service.update(T, "ana", ds, {"name": "x"}),
        lambda: world.service.set_taxonomy(T, "ana", ds, {}),
        lambda: world.service.fill_gaps(T, "ana", ds),
    ):
        with pytest.raises(DatasetArchivedError):
            write()
    assert world.service.coverage(T, ds)["filtered"] is False  # reads stay open
    assert not world.service.unarchive(T, "ana", ds).archived
    assert world.service.plan(T, "ana", ds, {"count": 5})["planned"] == 5


def job(ds: str, status: JobStatus) -> Job:
    return Job(tenant_id=T, dataset_id=ds, kind="all", status=status)


@pytest.mark.parametrize("status", [JobStatus.QUEUED, JobStatus.RUNNING, JobStatus.PAUSING])
def test_archive_and_delete_wait_for_an_active_job(world: World, status: JobStatus) -> None:
    ds = sample(world)
    world.jobs.jobs.append(job(ds, status))
    for act in (world.service.archive, world.service.delete):
        with pytest.raises(ConflictError, match="while a generation job is active"):
            act(T, "ana", ds)
    assert world.service.get(T, ds).archived is False


def test_a_delete_hides_the_dataset_and_purges_what_it_owns(world: World) -> None:
    ds = sample(world)
    world.service.plan(T, "ana", ds, {"count": 8})
    world.jobs.jobs.append(job(ds, JobStatus.COMPLETED))  # finished jobs do not block
    result: dict[str, Any] = world.service.delete(T, "ana", ds)
    assert result["status"] == "deleted" and result["removed"] == {"conversations": 8}
    with pytest.raises(NotFoundError):
        world.service.get(T, ds)
    assert world.conversations.items == {}
    assert world.audit.actions(ds)[-2:] == ["dataset.delete", "dataset.purge"]  # kept
