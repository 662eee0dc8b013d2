"""JobService (chalicelib/generation/jobs.py) selection and start refusals on in-memory
ports (tests/fakes.py): which conversations a job may take, and what is refused before
anything is estimated, stored or started. No moto, no Step Functions."""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

import pytest

from chalicelib.audit.log import AuditLog
from chalicelib.config import Settings
from chalicelib.domain.errors import DatasetArchivedError, RateLimitedError, ValidationError
from chalicelib.domain.models import Conversation, ConversationStatus, Dataset, Job, JobStatus, Tier
from chalicelib.generation.jobs import JobService
from tests.fakes import InMemoryAudit, InMemoryConversations, InMemoryDatasets, InMemoryJobs

T = "tenant-a"


class NoSfn:
    """A refusal must never reach Step Functions."""

    def __getattr__(self, name: str) -> Any:
        raise AssertionError(f"Step Functions called: {name}")


@dataclass
class World:
    service: JobService
    datasets: InMemoryDatasets
    conversations: InMemoryConversations
    jobs: InMemoryJobs
    audit: InMemoryAudit
    dataset: Dataset


@pytest.fixture
def world() -> World:
    datasets = InMemoryDatasets()
    conversations = InMemoryConversations(datasets)
    jobs = InMemoryJobs()
    audit = InMemoryAudit()
    settings = replace(Settings(), max_job_conversations=5, max_active_jobs_per_tenant=2)
    service = JobService(
        settings=settings,
        sfn=NoSfn(),
        state_machine_arn="arn:aws:states:us-east-1:123456789012:stateMachine:gen",
        datasets=datasets,  # type: ignore[arg-type]
        conversations=conversations,  # type: ignore[arg-type]
        jobs=jobs,  # type: ignore[arg-type]
        generation=None,  # type: ignore[arg-type]  # not reached by what is tested here
        notifier=None,  # type: ignore[arg-type]
        audit=AuditLog(audit),
    )
    dataset = datasets.create(Dataset(tenant_id=T, name="Harbor"))
    return World(service, datasets, conversations, jobs, audit, dataset)


def planned(w: World, *statuses: ConversationStatus) -> list[Conversation]:
    made = [
        Conversation(
            tenant_id=T,
            dataset_id=w.dataset.dataset_id,
            persona="Ana",
            emotion="calm",
            topic="fees",
            intent="ask",
            tone="warm",
            tier=Tier.TEMPLATE,
            status=s,
        )
        for s in statuses
    ]
    w.conversations.add_planned(made)
    return made


def test_select_takes_generatable_conversations_and_says_why_it_refuses_the_rest(
    world: World,
) -> None:
    S = ConversationStatus
    fresh, failed, generating, approved = planned(
        world, S.NOT_GENERATED, S.FAILED, S.GENERATING, S.APPROVED
    )
    ids = [fresh.conversation_id, failed.conversation_id, generating.conversation_id]
    ids += [approved.conversation_id, "conv_missing", fresh.conversation_id]  # a repeat
    ok, rejected = world.service.select(T, ids)
    assert [c.conversation_id for c in ok] == [fresh.conversation_id, failed.conversation_id]
    assert rejected == [
        {"id": generating.conversation_id, "error": "already_generating"},
        {"id": approved.conversation_id, "error": "status_approved"},
        {"id": "conv_missing", "error": "not_found"},
    ]


def test_an_item_owned_by_an_active_job_is_busy_until_that_job_settles_it(world: World) -> None:
    S = ConversationStatus
    a, b = planned(world, S.FAILED, S.FAILED)
    running = Job(
        tenant_id=T,
        dataset_id=world.dataset.dataset_id,
        kind="batch",
        status=JobStatus.RUNNING,
        conversation_ids=[a.conversation_id, b.conversation_id],
    )
    world.jobs.create(running)
    world.jobs.outcomes[running.job_id] = {a.conversation_id: "failed"}  # a is settled
    ok, rejected = world.service.select(T, [a.conversation_id, b.conversation_id])
    assert [c.conversation_id for c in ok] == [a.conversation_id]
    assert rejected == [{"id": b.conversation_id, "error": "already_generating"}]
    world.jobs.jobs[0] = running.model_copy(update={"status": JobStatus.CANCELLED})
    ok, rejected = world.service.select(T, [b.conversation_id])
    assert [c.conversation_id for c in ok] == [b.conversation_id] and rejected == []
    assert world.service.select("tenant-b", [a.conversation_id]) == (
        [],
        [{"id": a.conversation_id, "error": "not_found"}],  # another tenant's is not found
    )


def start(w: World, targets: list[Conversation], dataset: Dataset | None = None) -> Any:
    return w.service.start(T, "ana", "batch", targets, dataset or w.dataset)


def test_nothing_is_started_for_an_empty_or_oversized_job_or_an_archived_dataset(
    world: World,
) -> None:
    with pytest.raises(ValidationError, match="nothing to generate"):
        start(world, [])
    six = planned(world, *[ConversationStatus.NOT_GENERATED] * 6)
    with pytest.raises(ValidationError, match="at most 5 conversations") as raised:
        start(world, six)
    assert raised.value.details == {"requested": 6}
    archived = world.datasets.set_archived(T, world.dataset.dataset_id, "ana", 1)
    with pytest.raises(DatasetArchivedError):
        start(world, six[:1], archived)
    assert world.jobs.jobs == [] and world.audit.records == []


def test_a_tenant_runs_at_most_its_share_of_jobs_at_once(world: World) -> None:
    for status in (JobStatus.RUNNING, JobStatus.PAUSING, JobStatus.COMPLETED):
        world.jobs.create(
            Job(tenant_id=T, dataset_id=world.dataset.dataset_id, kind="all", status=status)
        )
    (one,) = planned(world, ConversationStatus.NOT_GENERATED)
    with pytest.raises(RateLimitedError, match="2 jobs are already running") as raised:
        start(world, [one])
    assert raised.value.retry_after == 30
    assert len(world.jobs.jobs) == 3 and world.audit.records == []
