"""GenerationRequests (chalicelib/generation/requests.py) on in-memory ports: which
failure of a generate request is a 404, a 409 or a 400, the one-dataset rule, Generate
All's selection, regeneration, the economy estimate and the job list. The selection is
JobService's own, on the fakes; starting a job is recorded, not run."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from datetime import timedelta
from typing import Any

import pytest

from chalicelib.audit.log import AuditLog
from chalicelib.config import Settings
from chalicelib.domain.errors import ConflictError, NotFoundError, ValidationError
from chalicelib.domain.models import (
    Conversation,
    ConversationStatus,
    Dataset,
    Job,
    JobOptions,
    JobStatus,
    Tier,
    utcnow,
)
from chalicelib.generation.jobs import JobService
from chalicelib.generation.requests import RECENT_JOBS, GenerationRequests
from chalicelib.readmodel.listing import ConversationIndex
from tests.fakes import InMemoryAudit, InMemoryConversations, InMemoryDatasets, InMemoryJobs

T = "tenant-a"


class RecordingJobs(JobService):
    """JobService's real selection; ``start`` and ``estimate`` recorded, not run."""

    started: list[dict[str, Any]]

    def start(
        self, tenant_id: str, actor: str, kind: Any, targets: Any, dataset: Any, **kw: Any
    ) -> Any:
        self.started.append({"kind": kind, "ids": [t.conversation_id for t in targets], **kw})
        job = Job(
            tenant_id=tenant_id,
            dataset_id=dataset.dataset_id,
            kind=kind,
            total=len(targets),
            conversation_ids=[t.conversation_id for t in targets],
            created_by=actor,
        )
        return job, {}

    def estimate(self, tenant_id: str, dataset: Any, targets: Any, **kw: Any) -> dict[str, Any]:
        figures: dict[str, Any] = {}
        for key in ("estimated_cost_usd", "estimated_cost_low_usd", "estimated_cost_high_usd"):
            figures[key] = 1.0
            figures[key.replace("cost_", "economy_cost_")] = 0.5
        for key in ("estimated_seconds", "estimated_seconds_low", "estimated_seconds_high"):
            figures[key] = 60
            figures[key.replace("seconds", "economy_seconds")] = 3600
        return figures | {
            "time_basis": "rate limit",
            "economy_time_basis": "batch",
            "n": len(targets),
        }


@dataclass
class ResetAll:
    """The review side's reset: every id but those listed as not resettable."""

    conversations: InMemoryConversations
    refused: set[str] = field(default_factory=set)

    def reset_for_regeneration(
        self, tenant_id: str, actor: str, ids: Any
    ) -> tuple[list[Conversation], list[dict[str, Any]]]:
        found = self.conversations.get_many(tenant_id, ids)
        ready = []
        for i in ids:
            if i in found and i not in self.refused:
                reset = found[i].model_copy(update={"status": ConversationStatus.NOT_GENERATED})
                self.conversations._write(reset)
                ready.append(reset)
        failed = [{"id": i, "error": {"code": "not_reviewed"}} for i in ids if i in self.refused]
        return ready, failed


@dataclass
class World:
    requests: GenerationRequests
    jobs: RecordingJobs
    job_records: InMemoryJobs
    conversations: InMemoryConversations
    reset: ResetAll
    dataset: Dataset
    other: Dataset


def plan(
    world_conversations: InMemoryConversations, dataset: Dataset, n: int, **kw: Any
) -> list[str]:
    convs = [
        Conversation(
            tenant_id=T,
            dataset_id=dataset.dataset_id,
            persona="p",
            emotion="e",
            topic="t",
            intent="i",
            tone="o",
            tier=Tier.TEMPLATE,
            **kw,
        )
        for _ in range(n)
    ]
    world_conversations.add_planned(convs)
    return [c.conversation_id for c in convs]


@pytest.fixture
def world() -> World:
    datasets = InMemoryDatasets()
    conversations = InMemoryConversations(datasets)
    job_records = InMemoryJobs()
    jobs = RecordingJobs(
        settings=replace(Settings(), max_job_conversations=100),
        sfn=None,
        state_machine_arn=None,
        datasets=datasets,  # type: ignore[arg-type]
        conversations=conversations,  # type: ignore[arg-type]
        jobs=job_records,  # type: ignore[arg-type]
        generation=None,  # type: ignore[arg-type]
        notifier=None,  # type: ignore[arg-type]
        audit=AuditLog(InMemoryAudit()),
    )
    jobs.started = []
    index = ConversationIndex(datasets, conversations, b"secret")
    reset = ResetAll(conversations)
    requests = GenerationRequests(jobs, datasets, job_records, index, reset)
    dataset = datasets.create(Dataset(tenant_id=T, name="Harbor"))
    other = datasets.create(Dataset(tenant_id=T, name="Other"))
    return World(requests, jobs, job_records, conversations, reset, dataset, other)


def test_generating_an_unknown_conversation_is_a_404(world: World) -> None:
    with pytest.raises(NotFoundError):
        world.requests.start(T, "ann", "single", ["nope"], JobOptions())
    assert world.jobs.started == []


def test_a_batch_whose_conversations_are_all_in_another_job_is_a_409(world: World) -> None:
    ids = plan(world.conversations, world.dataset, 2)
    world.job_records.create(
        Job(
            tenant_id=T,
            dataset_id=world.dataset.dataset_id,
            kind="batch",
            total=2,
            conversation_ids=ids,
            status=JobStatus.RUNNING,
            created_by="bob",
        )
    )
    with pytest.raises(ConflictError) as refused:
        world.requests.start(T, "ann", "batch", ids, JobOptions())
    assert {r["error"] for r in refused.value.details["rejected"]} == {"already_generating"}


def test_nothing_eligible_is_a_400_listing_each_rejection(world: World) -> None:
    ids = plan(world.conversations, world.dataset, 1, status=ConversationStatus.APPROVED)
    with pytest.raises(ValidationError) as refused:
        world.requests.start(T, "ann", "batch", [*ids, "missing"], JobOptions())
    assert [r["id"] for r in refused.value.details["rejected"]] == [*ids, "missing"]


def test_a_job_takes_conversations_of_one_dataset(world: World) -> None:
    mine = plan(world.conversations, world.dataset, 1)
    theirs = plan(world.conversations, world.other, 1)
    with pytest.raises(ValidationError) as refused:
        world.requests.start(T, "ann", "batch", [*mine, *theirs], JobOptions())
    assert refused.value.details["other_datasets"] == [world.other.dataset_id]
    assert world.jobs.started == []


def test_a_batch_starts_with_what_can_run_and_reports_the_rest(world: World) -> None:
    ids = plan(world.conversations, world.dataset, 2)
    job, rejected = world.requests.start(
        T, "ann", "batch", [*ids, "missing"], JobOptions(confirm=True, max_attempts=2)
    )
    assert job.conversation_ids == ids
    assert rejected == [{"id": "missing", "error": "not_found"}]
    started = world.jobs.started[0]
    assert started["confirm"] is True and started["max_attempts"] == 2


def test_generate_all_takes_the_dataset_s_conversations_of_the_status_asked(world: World) -> None:
    planned = plan(world.conversations, world.dataset, 2)
    failed = plan(world.conversations, world.dataset, 1, status=ConversationStatus.FAILED)
    plan(world.conversations, world.other, 3)
    job, _ = world.requests.generate_all(T, "ann", world.dataset.dataset_id, "failed", JobOptions())
    assert job.conversation_ids == failed and world.jobs.started[0]["kind"] == "all"
    job, _ = world.requests.generate_all(
        T, "ann", world.dataset.dataset_id, "not_generated", JobOptions()
    )
    assert sorted(job.conversation_ids) == sorted(planned)


def test_generate_all_of_a_dataset_with_nothing_to_generate_is_a_400(world: World) -> None:
    plan(world.conversations, world.dataset, 1)
    with pytest.raises(ValidationError, match="no failed conversations"):
        world.requests.generate_all(T, "ann", world.dataset.dataset_id, "failed", JobOptions())
    with pytest.raises(NotFoundError):
        world.requests.generate_all(T, "ann", "foreign", "not_generated", JobOptions())


@pytest.mark.parametrize(
    ("ids", "preview", "field_name"), [(None, False, "filter"), (["a"], True, "preview")]
)
def test_regeneration_takes_ids_and_has_no_preview(
    world: World, ids: list[str] | None, preview: bool, field_name: str
) -> None:
    with pytest.raises(ValidationError) as refused:
        world.requests.regenerate(T, "ann", ids, confirm=False, preview=preview, limit=10)
    assert refused.value.details["field"] == field_name


def test_regeneration_over_the_id_limit_is_refused(world: World) -> None:
    with pytest.raises(ValidationError, match="at most 2 ids"):
        world.requests.regenerate(T, "ann", ["a", "b", "c"], confirm=False, preview=False, limit=2)


def test_regeneration_starts_one_batch_and_lists_what_could_not_be_reset(world: World) -> None:
    ids = plan(world.conversations, world.dataset, 3, status=ConversationStatus.REJECTED)
    world.reset.refused = {ids[2]}
    result = world.requests.regenerate(T, "ann", ids, confirm=True, preview=False, limit=10)
    assert result["succeeded"] == ids[:2]
    assert [f["id"] for f in result["failed"]] == [ids[2]]
    assert result["job_id"] is not None
    assert world.jobs.started == [
        {"kind": "batch", "ids": ids[:2], "confirm": True, "rejected": []}
    ]


def test_an_economy_estimate_heads_with_the_batch_figures(world: World) -> None:
    plan(world.conversations, world.dataset, 2)
    standard = world.requests.estimate(
        T,
        ids=None,
        dataset_id=world.dataset.dataset_id,
        only=None,
        mode="standard",
        max_concurrency=None,
    )
    economy = world.requests.estimate(
        T,
        ids=None,
        dataset_id=world.dataset.dataset_id,
        only=None,
        mode="economy",
        max_concurrency=None,
    )
    assert standard["estimated_cost_usd"] == 1.0 and standard["time_basis"] == "rate limit"
    assert economy["estimated_cost_usd"] == 0.5 and economy["estimated_seconds"] == 3600
    assert economy["time_basis"] == "batch" and economy["mode"] == "economy"
    assert economy["n"] == 2


def test_an_estimate_needs_ids_or_a_dataset(world: World) -> None:
    with pytest.raises(ValidationError, match="send ids or dataset_id"):
        world.requests.estimate(
            T, ids=None, dataset_id=None, only=None, mode="standard", max_concurrency=None
        )
    with pytest.raises(ValidationError, match="none of the ids"):
        world.requests.estimate(
            T, ids=["missing"], dataset_id=None, only=None, mode="standard", max_concurrency=None
        )


def test_the_job_list_is_a_dataset_s_or_the_tenant_s_most_recent(world: World) -> None:
    now = utcnow()
    for n in range(RECENT_JOBS + 5):
        status = JobStatus.PAUSED if n == 0 else JobStatus.COMPLETED
        world.job_records.create(
            Job(
                tenant_id=T,
                dataset_id=world.other.dataset_id if n % 2 else world.dataset.dataset_id,
                kind="batch",
                total=1,
                conversation_ids=["x"],
                status=status,
                created_by="ann",
                created_at=now - timedelta(minutes=n),
            )
        )
    recent = world.requests.list_jobs(T, None, active=False)
    assert len(recent) == RECENT_JOBS
    assert [j.created_at for j in recent] == sorted((j.created_at for j in recent), reverse=True)
    mine = world.requests.list_jobs(T, world.dataset.dataset_id, active=False)
    assert {j.dataset_id for j in mine} == {world.dataset.dataset_id}
    active = world.requests.list_jobs(T, world.dataset.dataset_id, active=True)
    assert [j.status for j in active] == [JobStatus.PAUSED]
    with pytest.raises(NotFoundError):
        world.requests.list_jobs(T, "foreign", active=False)
