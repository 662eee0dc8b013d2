"""GenerationService.generate_item (chalicelib/generation/service.py), the work of one
Step Functions Map item, on in-memory ports (tests/fakes.py): what a claimed item
stores, what a retried task (after success, a bad answer, a crash after the paid call)
does and does not pay for again, failures, and what a stopped job, an ineligible
conversation or a reached budget runs. No moto, no network: the LLM is scripted."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Any

import pytest

import chalicelib.generation.service as service_module
from chalicelib.audit.log import AuditLog
from chalicelib.config import Settings
from chalicelib.domain.errors import (
    PermanentGenerationError,
    ProviderOverloadedError,
    ProviderRateLimitError,
    TransientGenerationError,
)
from chalicelib.domain.models import (
    Conversation,
    ConversationStatus,
    Dataset,
    GenerationLog,
    Job,
    JobStatus,
    PromptTemplate,
    Tier,
)
from chalicelib.generation.prompts import turn_target
from chalicelib.generation.rate_limit import SharedRateLimiter
from chalicelib.generation.service import GenerationService
from chalicelib.llm.client import CONVERSATION_TOOL_NAME, LLMRequest, LLMResponse, Usage
from chalicelib.llm.pricing import cost_usd
from chalicelib.notify.sns import Notifier
from tests.fakes import (
    FixedTemplates,
    InMemoryAudit,
    InMemoryDatasets,
    InMemoryGenerationConversations,
    InMemoryJobs,
    InMemoryNotifications,
    InMemoryRateLimitStore,
    ScriptedLLM,
)

T = "tenant-a"
S = ConversationStatus
MODEL = Settings().model
PER_ITEM_ESTIMATE = 0.02  # the job's estimate per conversation (a claim records it)
PROMPT = (
    "Persona: {persona}\nTopic: {topic}\nTurns: {turn_target}\n"
    "Write a conversation between a client and {business_name}."
)


# --------------------------------------------------------------------------- answers
def answer(
    turns: int = 4,
    *,
    stop: str = "tool_use",
    input_tokens: int = 1200,
    output_tokens: int = 600,
    unanswered: int = 0,
) -> LLMResponse:
    """A record_conversation tool call, as the provider answers a generation request."""
    said = [
        {
            "role": "user" if n % 2 == 0 else "assistant",
            "content": f"Question {n} about the advisory fee?"
            if n % 2 == 0
            else f"Answer {n}: the fee is 1% a year, billed quarterly.",
        }
        for n in range(turns)
    ]
    return LLMResponse(
        content=[
            {
                "type": "tool_use",
                "id": "toolu_1",
                "name": CONVERSATION_TOOL_NAME,
                "input": {"title": "Fees explained", "turns": said},
            }
        ],
        stop_reason=stop,
        usage=Usage(input_tokens=input_tokens, output_tokens=output_tokens),
        model=MODEL,
        request_id="req_1",
        duration_ms=850,
        unanswered_attempts=unanswered,
    )


def malformed(output_tokens: int = 50) -> LLMResponse:
    """Prose with no conversation in it: billed, but nothing to store."""
    return LLMResponse(
        content=[{"type": "text", "text": "Sorry, I can only write one turn today."}],
        stop_reason="end_turn",
        usage=Usage(input_tokens=1200, output_tokens=output_tokens),
        model=MODEL,
    )


def cost_of(response: LLMResponse) -> float:
    return cost_usd(Settings(), MODEL, response.usage)


class TimedOut(TransientGenerationError):
    """A create() whose last HTTP attempt timed out, after the SDK retried one more that
    timed out too (what AnthropicLLMClient sets on the error it raises)."""

    timed_out = True
    unanswered_attempts = 2


# --------------------------------------------------------------------------- world
@dataclass
class Waits:
    """The rate limiter's sleeps: recorded, not slept; ``meanwhile`` runs during each."""

    seconds: list[float] = field(default_factory=list)
    meanwhile: Callable[[float], None] | None = None

    def __call__(self, seconds: float) -> None:
        self.seconds.append(seconds)
        if self.meanwhile is not None:
            self.meanwhile(seconds)


@dataclass
class World:
    service: GenerationService
    ports: dict[str, Any]  # what the service was built with (another container shares them)
    llm: ScriptedLLM
    datasets: InMemoryDatasets
    conversations: InMemoryGenerationConversations
    jobs: InMemoryJobs
    audit: InMemoryAudit
    notices: InMemoryNotifications
    limits: InMemoryRateLimitStore
    waits: Waits
    dataset: Dataset

    def new_container(self) -> None:
        """The next task runs in another Lambda container: nothing cached, same stores."""
        self.service = GenerationService(**self.ports)

    def start(self, n: int = 1, **job_fields: Any) -> tuple[Job, list[str]]:
        """``n`` planned conversations and a running job over them."""
        convs = [
            Conversation(
                tenant_id=T,
                dataset_id=self.dataset.dataset_id,
                persona="Retiree",
                emotion="calm",
                topic="fees",
                intent="ask",
                tone="warm",
                tier=Tier.TEMPLATE,
            )
            for _ in range(n)
        ]
        self.conversations.add_planned(convs)
        ids = [c.conversation_id for c in convs]
        fields: dict[str, Any] = {
            "status": JobStatus.RUNNING,
            "total": n,
            "estimated_cost_usd": PER_ITEM_ESTIMATE * n,
            **job_fields,
        }
        job = Job(
            tenant_id=T,
            dataset_id=self.dataset.dataset_id,
            kind="batch",
            conversation_ids=ids,
            **fields,
        )
        self.jobs.create(job)
        return job, ids

    def run(self, job: Job, cid: str, **kw: Any) -> str:
        return self.service.generate_item(T, job.job_id, cid, **kw)

    def conv(self, cid: str) -> Conversation:
        return self.conversations.get(T, cid)

    def job(self, job: Job) -> Job:
        return self.jobs.get(T, job.job_id)

    def logs(self, cid: str) -> list[GenerationLog]:
        return self.jobs.logs.list_for_conversation(T, cid)

    def spent(self) -> float:
        return self.datasets.get(T, self.dataset.dataset_id).spent_usd

    def set_status(self, job: Job, status: JobStatus) -> None:
        assert self.jobs.set_status(T, job.job_id, status)

    @property
    def rpm_key(self) -> str:
        return self.service.limiter_keys(T, MODEL)[0]


def make_world(settings: Settings | None = None) -> World:
    datasets = InMemoryDatasets()
    audit = InMemoryAudit()
    jobs = InMemoryJobs(datasets=datasets)
    conversations = InMemoryGenerationConversations(datasets, jobs, audit)
    notices = InMemoryNotifications()
    limits = InMemoryRateLimitStore()
    waits = Waits()
    llm = ScriptedLLM()
    dataset = datasets.create(Dataset(tenant_id=T, name="Harbor", business_name="Harbor & Pine"))
    template = PromptTemplate(tenant_id=T, name="Plain", tier=Tier.TEMPLATE, text=PROMPT)
    ports: dict[str, Any] = {
        "settings": settings or Settings(),
        "llm": llm,
        "datasets": datasets,
        "conversations": conversations,
        "jobs": jobs,
        "templates": FixedTemplates([template]),
        "limiter": SharedRateLimiter(limits, clock=limits.clock, sleep=waits),
        "notifier": Notifier(None, None, notices),
        "audit": AuditLog(audit),
        "logs": jobs.logs,
    }
    return World(
        GenerationService(**ports),
        ports,
        llm,
        datasets,
        conversations,
        jobs,
        audit,
        notices,
        limits,
        waits,
        dataset,
    )


@pytest.fixture
def world() -> World:
    return make_world()


# --------------------------------------------------------------------------- success
def test_a_claimed_conversation_is_stored_with_its_turns_counted_once_and_billed_once(
    world: World,
) -> None:
    job, [cid] = world.start()
    good = answer(turns=4)
    world.llm.then(good)
    seq = world.datasets.conversation_seq(T, world.dataset.dataset_id)

    assert world.run(job, cid) == "completed"

    (request,) = world.llm.requests
    assert request.model == MODEL and request.max_tokens == Settings().max_tokens
    assert "Persona: Retiree" in request.prompt and "Harbor & Pine" in request.system
    stored = world.conv(cid)
    assert stored.status == S.GENERATED and stored.job_id == job.job_id
    assert (stored.title, stored.turn_count, stored.parse_path) == ("Fees explained", 4, "tool_use")
    assert stored.actual_cost_usd == cost_of(good) and stored.output_tokens == 600
    assert stored.model == MODEL and stored.generated_at is not None
    assert stored.quality_score is not None  # the heuristics scored it
    turns = world.conversations.get_turns(T, cid)
    assert [t.role for t in turns] == ["user", "assistant", "user", "assistant"]
    assert turns[1].content == "Answer 1: the fee is 1% a year, billed quarterly."
    after = world.job(job)
    assert (after.completed, after.failed, after.skipped) == (1, 0, 0)
    assert world.jobs.item_outcomes(T, job.job_id) == {cid: "completed"}
    assert world.jobs.items[(job.job_id, cid)].cost_usd == cost_of(good)
    assert after.current.conversation_id == cid  # progress showed it while it ran
    (logged,) = world.logs(cid)
    assert (logged.billing, logged.cost_usd, logged.attempt) == ("actual", cost_of(good), 1)
    assert after.cost_usd == pytest.approx(cost_of(good))
    assert world.spent() == pytest.approx(cost_of(good))
    assert world.audit.actions(cid) == ["conversation.generate"]
    assert world.datasets.conversation_seq(T, world.dataset.dataset_id) == seq + 1


def test_a_retried_task_after_success_reports_completed_and_never_calls_or_charges_again(
    world: World,
) -> None:
    job, [cid] = world.start()
    world.llm.then(answer())
    assert world.run(job, cid) == "completed"
    turns_item = world.conversations.turns[(T, cid)]

    # Step Functions retries the task (its result was lost), or Lambda runs it twice.
    assert world.run(job, cid, retry_count=1) == "completed"
    # A reviewer's decision since then does not make it the job's work again.
    reviewed = world.conv(cid).model_copy(update={"status": S.APPROVED})
    world.conversations._write(reviewed)
    assert world.run(job, cid, retry_count=2) == "completed"
    # Nor does a re-run after the job stopped: it reports the work already done.
    world.set_status(job, JobStatus.CANCELLED)
    world.new_container()
    assert world.run(job, cid) == "completed"

    assert len(world.llm.requests) == 1  # the script had one answer: none asked again
    after = world.job(job)
    assert (after.completed, after.failed, after.skipped) == (1, 0, 0)
    assert len(world.logs(cid)) == 1
    assert after.cost_usd == pytest.approx(cost_of(answer()))
    assert world.conversations.turns[(T, cid)] is turns_item  # the turns never rewritten


# --------------------------------------------------------------------------- retries
def test_a_malformed_answer_is_retried_and_each_call_is_billed_once(world: World) -> None:
    job, [cid] = world.start()
    bad, good = malformed(output_tokens=50), answer(output_tokens=600)
    world.llm.then(bad, good)

    with pytest.raises(TransientGenerationError, match="malformed answer"):
        world.run(job, cid)
    waiting = world.conv(cid)
    assert waiting.status == S.GENERATING and waiting.generation_attempts == 1
    assert world.jobs.item_outcome(T, job.job_id, cid) is None
    assert world.job(job).cost_usd == pytest.approx(cost_of(bad))  # the bad answer was paid

    assert world.run(job, cid, retry_count=1) == "completed"
    first, second = world.llm.requests
    assert second.max_tokens == first.max_tokens  # a malformed answer is asked again as it was
    stored = world.conv(cid)
    assert stored.status == S.GENERATED and stored.generation_attempts == 2
    assert stored.actual_cost_usd == cost_of(good)  # what its stored answer cost
    logs = world.logs(cid)
    assert sorted(g.attempt or 0 for g in logs) == [1, 2]
    assert len({g.log_id for g in logs}) == 2 and {g.billing for g in logs} == {"actual"}
    assert sorted(g.cost_usd for g in logs) == sorted([cost_of(bad), cost_of(good)])
    assert world.job(job).cost_usd == pytest.approx(cost_of(bad) + cost_of(good))
    assert world.spent() == pytest.approx(cost_of(bad) + cost_of(good))
    assert world.job(job).completed == 1


def test_a_truncated_answer_is_retried_with_twice_the_room(world: World) -> None:
    job, [cid] = world.start()
    world.llm.then(answer(stop="max_tokens", output_tokens=4096), answer())

    with pytest.raises(TransientGenerationError, match=r"truncated answer \(max_tokens=4096\)"):
        world.run(job, cid)
    assert world.run(job, cid) == "completed"

    first, second = world.llm.requests
    assert (first.max_tokens, second.max_tokens) == (4096, 8192)
    assert second.prompt == first.prompt  # the same conversation asked for, with more room
    assert world.conv(cid).status == S.GENERATED


def test_at_the_models_output_limit_a_truncated_answer_is_retried_with_fewer_turns() -> None:
    world = make_world(replace(Settings(), output_limits={MODEL: 4096}))
    job, [cid] = world.start()
    world.llm.then(answer(stop="max_tokens", output_tokens=4096), answer())
    asked = int(turn_target(world.conv(cid)))

    with pytest.raises(TransientGenerationError, match="truncated answer"):
        world.run(job, cid)
    assert world.run(job, cid) == "completed"

    first, second = world.llm.requests
    fewer = max(4, (asked * 2 // 3) // 2 * 2)
    assert (first.max_tokens, second.max_tokens) == (4096, 4096)
    assert f"Turns: {asked}" in first.prompt and f"Turns: {fewer}" in second.prompt


def test_a_bad_answer_on_the_last_attempt_fails_the_conversation(world: World) -> None:
    job, [cid] = world.start(max_attempts=2)
    world.llm.then(malformed(), malformed())

    with pytest.raises(TransientGenerationError):
        world.run(job, cid)
    assert world.run(job, cid) == "failed"

    failed = world.conv(cid)
    assert failed.status == S.FAILED
    assert (failed.error_message or "").startswith("gave up after 2 attempts: malformed answer")
    assert world.jobs.item_outcomes(T, job.job_id) == {cid: "failed"}
    assert world.job(job).failed == 1
    assert world.job(job).cost_usd == pytest.approx(2 * cost_of(malformed()))  # both paid


def test_refusals_are_left_to_the_workflow_to_retry_until_the_last_attempt(
    world: World,
) -> None:
    job, [cid] = world.start(max_attempts=3)
    world.llm.then(*(ProviderOverloadedError("provider overloaded (529): busy") for _ in range(3)))

    for _ in range(2):  # the attempt count is the claim's (the ASL passes no retry count)
        with pytest.raises(ProviderOverloadedError):
            world.run(job, cid)
        assert world.conv(cid).status == S.GENERATING
    assert world.run(job, cid) == "failed"

    failed = world.conv(cid)
    assert failed.generation_attempts == 3
    assert failed.error_message == "gave up after 3 attempts: provider overloaded (529): busy"
    logs = world.logs(cid)
    assert len(logs) == 3 and {(g.billing, g.cost_usd) for g in logs} == {("none", 0.0)}
    assert world.job(job).cost_usd == 0.0  # a refused call costs nothing


def test_a_timed_out_call_is_charged_at_its_estimate_once_per_attempt_and_retried(
    world: World,
) -> None:
    job, [cid] = world.start()
    good = answer()
    world.llm.then(TimedOut("provider request timed out"), good)

    with pytest.raises(TimedOut):
        world.run(job, cid)
    charged = world.logs(cid)
    # The call and the SDK's own retry of it both timed out: each may have been billed.
    assert [(g.billing, g.cost_usd) for g in charged] == [("estimated", PER_ITEM_ESTIMATE)] * 2
    assert world.job(job).cost_usd == pytest.approx(2 * PER_ITEM_ESTIMATE)

    assert world.run(job, cid) == "completed"
    assert world.conv(cid).actual_cost_usd == cost_of(good)
    assert sorted(g.billing for g in world.logs(cid)) == ["actual", "estimated", "estimated"]
    assert world.job(job).cost_usd == pytest.approx(2 * PER_ITEM_ESTIMATE + cost_of(good))


# --------------------------------------------------------------------------- a paid answer
def test_an_answer_paid_for_but_never_stored_is_stored_by_the_retry_without_paying_again(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    job, [cid] = world.start()
    good = answer(turns=6)
    world.llm.then(good)  # one answer: a second call would fail the test
    commit = world.conversations.commit_generation
    crashes = ["the Lambda died after the call"]

    def crash_once(*args: Any, **kwargs: Any) -> bool:
        if crashes:
            raise RuntimeError(crashes.pop())
        return commit(*args, **kwargs)

    monkeypatch.setattr(world.conversations, "commit_generation", crash_once)
    with pytest.raises(RuntimeError, match="died after the call"):
        world.run(job, cid)
    assert world.conv(cid).status == S.GENERATING
    assert [g.billing for g in world.logs(cid)] == ["actual"]

    # Step Functions retries the crashed task (Runtime.ExitError) under the same claim.
    assert world.run(job, cid, retry_count=1) == "completed"

    assert len(world.llm.requests) == 1
    stored = world.conv(cid)
    assert stored.status == S.GENERATED and stored.turn_count == 6
    assert len(world.conversations.get_turns(T, cid)) == 6
    assert len(world.logs(cid)) == 1  # the same log key: the spend is not counted again
    assert world.job(job).cost_usd == pytest.approx(cost_of(good))
    assert world.spent() == pytest.approx(cost_of(good))
    assert world.jobs.items[(job.job_id, cid)].cost_usd == cost_of(good)
    assert world.job(job).completed == 1


def test_a_paid_answer_left_by_a_dead_execution_is_stored_by_the_resumed_one(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    job, [cid] = world.start()
    good = answer()
    world.llm.then(good)

    def crash(*args: Any, **kwargs: Any) -> bool:
        raise RuntimeError("execution aborted")

    with monkeypatch.context() as patch:
        patch.setattr(world.conversations, "commit_generation", crash)
        with pytest.raises(RuntimeError):
            world.run(job, cid, claim="exec-1")
    # The stalled-job check releases the dead execution's claims and resumes the job.
    world.conversations.release_claim(T, cid, job.job_id)
    assert world.conv(cid).status == S.NOT_GENERATED

    assert world.run(job, cid, claim="exec-2") == "completed"

    assert len(world.llm.requests) == 1
    stored = world.conv(cid)
    assert stored.status == S.GENERATED and stored.claim_token == "exec-2"
    assert world.job(job).cost_usd == pytest.approx(cost_of(good))
    assert len(world.logs(cid)) == 1


# --------------------------------------------------------------------------- failures
def test_a_permanent_error_fails_the_conversation_with_its_reason(world: World) -> None:
    job, [cid] = world.start()
    reason = "provider rejected the request (400): prompt is too long"
    world.llm.then(PermanentGenerationError(reason))

    assert world.run(job, cid) == "failed"

    failed = world.conv(cid)
    assert failed.status == S.FAILED and failed.error_message == reason
    after = world.job(job)
    assert (after.completed, after.failed, after.skipped) == (0, 1, 0)
    assert world.jobs.items[(job.job_id, cid)].error_message == reason
    assert world.audit.actions(cid) == ["conversation.generate_failed"]
    (logged,) = world.logs(cid)
    assert (logged.billing, logged.cost_usd, logged.error_message) == ("none", 0.0, reason)
    assert after.cost_usd == 0.0


def test_a_rerun_after_the_items_failure_was_recorded_runs_nothing(world: World) -> None:
    job, [cid] = world.start()
    world.llm.then(PermanentGenerationError("provider rejected the request (400): bad"))
    assert world.run(job, cid) == "failed"
    world.llm.then(answer())  # what a second call would be answered

    # The Lambda died after committing the failure (Runtime.ExitError is retried).
    outcome = world.run(job, cid)

    assert (outcome, len(world.llm.requests)) == ("failed", 1)
    assert world.conv(cid).status == S.FAILED


# --------------------------------------------------------------------------- nothing runs
@pytest.mark.parametrize("status", [JobStatus.PAUSING, JobStatus.PAUSED, JobStatus.CANCELLED])
def test_a_stopped_job_runs_nothing_and_leaves_the_item_for_resume(
    world: World, status: JobStatus
) -> None:
    job, [cid] = world.start()
    world.set_status(job, status)

    assert world.run(job, cid) == "deferred"

    assert world.llm.requests == []
    untouched = world.conv(cid)
    assert untouched.status == S.NOT_GENERATED and untouched.claim_token is None
    assert world.jobs.item_outcomes(T, job.job_id) == {}
    assert world.logs(cid) == []


def test_a_pause_while_waiting_for_a_rate_limit_slot_stops_before_the_paid_call(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    job, [cid] = world.start()

    class Clock:
        now = 100.0

        def monotonic(self) -> float:
            return self.now

        def time(self) -> float:
            return 1_000_000.0 + self.now

    clock = Clock()
    monkeypatch.setattr(service_module, "time", clock)
    # Other items hold the next 5 s of the tenant's request schedule.
    world.limits.tat[world.rpm_key] = int(world.limits.now * 1000) + 5000

    def paused_meanwhile(seconds: float) -> None:
        clock.now += seconds
        world.set_status(job, JobStatus.PAUSING)

    world.waits.meanwhile = paused_meanwhile
    assert world.run(job, cid) == "deferred"

    assert world.waits.seconds and world.waits.seconds[0] >= 5.0
    assert world.llm.requests == []
    released = world.conv(cid)
    assert released.status == S.NOT_GENERATED and released.claim_token is None
    assert world.jobs.item_outcome(T, job.job_id, cid) is None and world.logs(cid) == []


def test_a_refusal_while_the_job_pauses_keeps_the_item_for_resume(world: World) -> None:
    job, [cid] = world.start()

    def refused_while_pausing(request: LLMRequest) -> LLMResponse:
        world.set_status(job, JobStatus.PAUSING)  # the breaker paused the job meanwhile
        raise ProviderRateLimitError("provider rate limit: slow down", retry_after=30.0)

    world.llm.then(refused_while_pausing)

    assert world.run(job, cid) == "deferred"

    released = world.conv(cid)
    assert released.status == S.NOT_GENERATED and released.claim_token is None
    assert world.jobs.item_outcome(T, job.job_id, cid) is None
    assert [(g.billing, g.cost_usd) for g in world.logs(cid)] == [("none", 0.0)]
    # Every caller of the tenant's key waits out the provider's retry-after.
    assert world.limits.blocked[world.rpm_key] == int(world.limits.now * 1000) + 30_000


def test_an_item_another_execution_of_the_job_holds_is_left_to_it(world: World) -> None:
    job, [cid] = world.start()
    world.conversations.claim_for_generation(T, cid, job.job_id, "exec-1")

    assert world.run(job, cid, claim="exec-2") == "deferred"

    assert world.llm.requests == []
    held = world.conv(cid)
    assert held.status == S.GENERATING and held.claim_token == "exec-1"
    assert held.generation_attempts == 1
    assert world.jobs.item_outcomes(T, job.job_id) == {}


def _approved(w: World, c: Conversation) -> None:
    w.conversations._write(c.model_copy(update={"status": S.APPROVED, "approved_by": "ana"}))


def _generated_by_another_job(w: World, c: Conversation) -> None:
    w.conversations._write(c.model_copy(update={"status": S.GENERATED, "job_id": "job_other"}))


def _generating_for_another_job(w: World, c: Conversation) -> None:
    w.conversations._write(c.model_copy(update={"status": S.GENERATING, "job_id": "job_other"}))


def _deleted(w: World, c: Conversation) -> None:
    w.conversations.soft_delete(c)


@pytest.mark.parametrize(
    "make_ineligible",
    [_approved, _generated_by_another_job, _generating_for_another_job, _deleted],
    ids=["approved", "generated-by-another-job", "generating-for-another-job", "deleted"],
)
def test_an_ineligible_conversation_is_skipped_without_a_call(
    world: World, make_ineligible: Callable[[World, Conversation], None]
) -> None:
    job, [cid] = world.start()
    make_ineligible(world, world.conv(cid))
    before = world.conversations.items[(T, cid)].conversation

    assert world.run(job, cid) == "skipped"

    assert world.llm.requests == []
    assert world.conversations.items[(T, cid)].conversation == before  # left as it was
    after = world.job(job)
    assert (after.completed, after.failed, after.skipped) == (0, 0, 1)
    assert world.jobs.items[(job.job_id, cid)].error_message == "not eligible"
    assert world.run(job, cid) == "skipped"  # a retried task counts it once
    assert world.job(job).skipped == 1


# --------------------------------------------------------------------------- budget
def test_the_call_that_reaches_the_budget_is_stored_and_pauses_the_job(world: World) -> None:
    good = answer()  # 0.0126 each: the second call passes a 0.02 budget
    job, ids = world.start(3, budget_usd=0.02)
    world.llm.then(good, good)

    assert world.run(job, ids[0]) == "completed"
    assert world.job(job).warned_thresholds == [50]
    assert world.run(job, ids[1]) == "completed"  # paid for, so stored
    assert world.run(job, ids[2]) == "deferred"

    after = world.job(job)
    assert after.status == JobStatus.PAUSING and after.pause_reason == "budget"
    assert after.warned_thresholds == [50, 75, 90]
    assert world.notices.kinds() == ["budget.warning"] * 3 + ["budget.paused"]
    assert world.audit.actions(job.job_id) == ["job.pause"]
    assert [world.conv(i).status for i in ids] == [S.GENERATED, S.GENERATED, S.NOT_GENERATED]
    assert len(world.llm.requests) == 2
    assert after.cost_usd == pytest.approx(2 * cost_of(good))


def test_a_job_already_at_its_budget_pauses_before_claiming_anything(world: World) -> None:
    job, [cid] = world.start(budget_usd=0.02, cost_usd=0.02)

    assert world.run(job, cid) == "deferred"

    assert world.job(job).status == JobStatus.PAUSING
    assert world.llm.requests == [] and world.conv(cid).status == S.NOT_GENERATED
    assert world.notices.kinds()[-1] == "budget.paused"
