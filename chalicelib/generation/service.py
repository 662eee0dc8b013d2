"""Generating one conversation: the work of one Step Functions Map item.

``generate_item`` is safe to run more than once for the same (job, conversation): the
claim is conditional, the commit is one transaction guarded by the claim and by the
job-item marker, and spend is logged once per billed call.
"""

from __future__ import annotations

import hashlib
import logging
import statistics
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal

from chalicelib.audit.log import AuditLog, snapshot
from chalicelib.config import Settings
from chalicelib.domain.budget import BUDGET_THRESHOLDS, budget_step, over_budget, remaining_budget
from chalicelib.domain.concurrency import BackoffStep, account_rate, target_in_flight
from chalicelib.domain.errors import (
    MalformedResponseError,
    PermanentGenerationError,
    PromptTemplateError,
    ProviderOverloadedError,
    ProviderRateLimitError,
    TransientGenerationError,
)
from chalicelib.domain.estimates import (
    DEFAULT_LATENCY_SECONDS,
    MIN_OBSERVED,
    JobHistory,
    Observation,
    Prices,
    Scope,
    TierPrompt,
    estimate_cost,
    estimate_economy_time,
    estimate_standard_time,
    standard_seconds,
)
from chalicelib.domain.models import (
    BudgetWarning,
    Chunk,
    Conversation,
    ConversationStatus,
    Dataset,
    GenerationLog,
    Job,
    JobStatus,
    JudgeResult,
    NotificationMessage,
    PromptTemplate,
    Turn,
    new_id,
    utcnow,
)
from chalicelib.domain.ports import (
    ClaimOutcome,
    GenerationConversations,
    GenerationDatasets,
    GenerationLogReader,
    JobItemWrite,
    JobStore,
)
from chalicelib.domain.retries import RetryPlan, plan_retry
from chalicelib.generation.concurrency import ConcurrencyControl
from chalicelib.generation.parsing import TruncatedResponseError, parse_response
from chalicelib.generation.prompts import (
    build_parameters,
    choose_template,
    render_prompt,
    template_needs,
    turn_target,
)
from chalicelib.generation.rate_limit import SharedRateLimiter
from chalicelib.llm.client import (
    LLMClient,
    LLMRequest,
    LLMResponse,
    Usage,
    unanswered_attempts,
)
from chalicelib.llm.pricing import PER_MILLION, cost_usd
from chalicelib.notify.sns import Notifier
from chalicelib.planning.seed_templates import SYSTEM_PROMPT_TEMPLATE
from chalicelib.quality.duplicates import conversation_text
from chalicelib.quality.judging import JudgeService
from chalicelib.quality.scoring import ScoringContext, score_conversation

log = logging.getLogger(__name__)

__all__ = ["BUDGET_THRESHOLDS", "Estimate", "GenerationService", "attempt_log_ref"]
DEFAULT_OUTPUT_TOKENS = 1800  # the rate limiter's reservation per call (~12 turns)
CACHE_SECONDS = 5.0
JOB_CACHE_SECONDS = 1.0  # per-container cache of a dataset's taxonomy and chunks
STATUSES_THAT_RUN = frozenset({JobStatus.RUNNING, JobStatus.QUEUED})
PROVIDER_PAUSE_REASON = "provider_refusing"
# Error names of a provider's refusal (the ASL passes the Lambda errorType on).
REFUSAL_ERRORS = frozenset({"ProviderRateLimitError", "ProviderOverloadedError"})


@dataclass
class Estimate:
    count: int
    estimated_cost_usd: float
    estimated_economy_cost_usd: float
    estimated_seconds: float
    input_tokens_per_conversation: int
    output_tokens_per_conversation: int
    cached_system_tokens: int
    budget_usd: float | None
    budget_remaining_usd: float | None
    over_budget: bool
    model: str
    basis: str
    basis_scope: str = "defaults"
    observed_conversations: int = 0
    estimated_cost_low_usd: float = 0.0
    estimated_cost_high_usd: float = 0.0
    estimated_economy_cost_low_usd: float = 0.0
    estimated_economy_cost_high_usd: float = 0.0
    estimated_seconds_low: float = 0.0
    estimated_seconds_high: float = 0.0
    estimated_economy_seconds: float = 0.0
    estimated_economy_seconds_low: float = 0.0
    estimated_economy_seconds_high: float = 0.0
    time_basis: str = ""
    economy_time_basis: str = ""
    retry_overhead: float = 1.0
    per_tier: list[dict[str, Any]] = field(default_factory=list)
    may_exceed_budget: bool = False
    estimated_judge_cost_usd: float = 0.0  # included in both totals above
    judge_model: str | None = None

    def as_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


STORED_STATUSES = frozenset(
    {ConversationStatus.GENERATED, ConversationStatus.APPROVED, ConversationStatus.REJECTED}
)


def is_observable(c: Conversation, model: str) -> bool:
    """A stored conversation of this model whose successful call's cost is known."""
    return c.status in STORED_STATUSES and bool(c.actual_cost_usd) and (c.model or model) == model


def observation_of(c: Conversation, discount: float) -> Observation:
    """Costs are normalised to the standard price (an economy call cost ``discount``x)."""
    return Observation(
        tier=c.tier.value,
        cost_usd=float(c.actual_cost_usd or 0.0) / (discount or 1.0),
        output_tokens=c.output_tokens,
        seconds=(c.generation_duration_ms or 0) / 1000.0,
    )


def job_history(jobs: Sequence[Job], conversations: Sequence[Conversation]) -> list[JobHistory]:
    """The dataset's jobs that are no longer running, with what they stored."""
    stored: dict[str, float] = {}
    judged: dict[str, float] = {}  # the judge's calls, estimated on their own
    for c in conversations:
        if c.job_id and c.status in STORED_STATUSES and c.actual_cost_usd:
            stored[c.job_id] = stored.get(c.job_id, 0.0) + float(c.actual_cost_usd)
        brief = c.quality_brief()
        if c.job_id and brief is not None and brief.judge_cost_usd and not brief.judge_cached:
            judged[c.job_id] = judged.get(c.job_id, 0.0) + brief.judge_cost_usd
    out: list[JobHistory] = []
    for j in jobs:
        if j.status in (JobStatus.RUNNING, JobStatus.QUEUED, JobStatus.PAUSING):
            continue
        seconds = 0.0
        if j.started_at and j.finished_at:
            seconds = (j.finished_at - j.started_at).total_seconds()
        out.append(
            JobHistory(
                mode=j.mode,
                cost_usd=max(0.0, j.cost_usd - judged.get(j.job_id, 0.0)),
                stored_cost_usd=stored.get(j.job_id, 0.0),
                completed=j.completed,
                seconds=seconds,
                # What the job ran at: its plan's target (the cap of jobs before plans).
                max_concurrency=int((j.concurrency or {}).get("target") or j.max_concurrency or 10),
                executions=max(1, len(j.execution_arns)),
            )
        )
    return out


Billing = Literal["actual", "estimated", "none"]


@dataclass(frozen=True)
class LogRef:
    """Key of a generation log: the first call of an attempt has one derived from the
    claim and the attempt number (a crash recovery that charges the call at its estimate
    writes the same key, so a call is never counted twice); other calls get fresh ones."""

    log_id: str
    created_at: datetime
    claim_token: str | None = None
    attempt: int | None = None


def attempt_log_ref(conversation: Conversation) -> LogRef:
    """The key of the first call of the conversation's current attempt (its claim)."""
    token = conversation.claim_token or conversation.job_id or ""
    digest = hashlib.sha256(
        f"{conversation.conversation_id}|{token}|{conversation.generation_attempts}".encode()
    ).hexdigest()
    return LogRef(
        log_id=f"log_{digest[:20]}",
        created_at=conversation.updated_at,
        claim_token=token or None,
        attempt=conversation.generation_attempts,
    )


def fresh_log_ref(conversation: Conversation) -> LogRef:
    return LogRef(
        log_id=new_id("log"),
        created_at=utcnow(),
        claim_token=conversation.claim_token,
        attempt=conversation.generation_attempts,
    )


def system_prompt_for(dataset: Dataset) -> str:
    return SYSTEM_PROMPT_TEMPLATE.format(business_name=dataset.business_name or dataset.name)


class GenerationService:
    def __init__(
        self,
        settings: Settings,
        llm: LLMClient,
        datasets: GenerationDatasets,
        conversations: GenerationConversations,
        jobs: JobStore,
        templates: Any,  # TemplateService (avoids an import cycle)
        limiter: SharedRateLimiter,
        notifier: Notifier,
        audit: AuditLog,
        duplicate_finder: Any = None,  # callable(tenant, dataset_id, conv_id, text) -> (id, sim)|None
        judge: JudgeService | None = None,
        logs: GenerationLogReader | None = None,
        concurrency: ConcurrencyControl | None = None,
    ) -> None:
        self.settings = settings
        self.llm = llm
        self.datasets = datasets
        self.conversations = conversations
        self.jobs = jobs
        self.templates = templates
        self.limiter = limiter
        self.notifier = notifier
        self.audit = audit
        self.duplicate_finder = duplicate_finder
        self.judge = judge
        self.logs = logs
        self.concurrency = concurrency
        self._chunk_cache: dict[tuple[str, str], tuple[float, dict[str, Chunk]]] = {}
        self._dataset_cache: dict[tuple[str, str], tuple[float, Dataset]] = {}
        self._job_cache: dict[tuple[str, str], tuple[float, Job]] = {}
        self._current_written: dict[str, float] = {}
        self._system_tokens: dict[tuple[str, str], int] = {}

    # ------------------------------------------------------------------ request building
    def model_for(self, dataset: Dataset) -> str:
        return dataset.model or self.settings.model

    def build_request(
        self,
        conversation: Conversation,
        dataset: Dataset,
        templates: Sequence[PromptTemplate],
        retry: RetryPlan | None = None,
    ) -> tuple[LLMRequest, PromptTemplate, dict[str, str]]:
        chunk = self._chunk(conversation, dataset)
        params = build_parameters(conversation, dataset, chunk)
        if retry is not None and retry.turn_target:
            params["turn_target"] = str(retry.turn_target)
        template = choose_template(templates, conversation, params)
        prompt = render_prompt(template.text, params)
        if (
            retry is not None
            and retry.turn_target
            and "turn_target" not in template_needs(template)
        ):
            # A template of the user's own may not say how many turns: the retry that
            # asks for fewer must still say so, or it is cut off again.
            prompt += f"\n\nWrite {retry.turn_target} turns in total."
        model = self.model_for(dataset)
        request = LLMRequest(
            model=model,
            system=system_prompt_for(dataset),
            prompt=prompt,
            max_tokens=retry.max_tokens
            if retry is not None
            else min(self.settings.max_tokens, self.settings.output_limit(model)),
            temperature=self.settings.temperature,
        )
        return request, template, params

    def retry_plan(
        self,
        job: Job,
        conversation: Conversation,
        dataset: Dataset,
        logs: Sequence[GenerationLog] | None = None,
    ) -> RetryPlan:
        """The next attempt after a cut-off answer asks for more room (or fewer turns);
        read from this claim's own logged calls, so it survives a new Lambda."""
        model = self.model_for(dataset)
        default = min(self.settings.max_tokens, self.settings.output_limit(model))
        previous = self._claim_logs(job, conversation) if logs is None else list(logs)
        if not previous:
            return RetryPlan(default, None)
        return plan_retry(
            previous, default, self.settings.output_limit(model), int(turn_target(conversation))
        )

    def _chunk(self, conversation: Conversation, dataset: Dataset) -> Chunk | None:
        if not conversation.chunk_id:
            return None
        key = (conversation.tenant_id, dataset.dataset_id)
        now = time.monotonic()
        cached = self._chunk_cache.get(key)
        if cached is None or now - cached[0] > CACHE_SECONDS:
            chunks = {c.chunk_id: c for c in self.datasets.list_chunks(*key)}
            self._chunk_cache[key] = cached = (now, chunks)
        return cached[1].get(conversation.chunk_id)

    def _dataset(self, tenant_id: str, dataset_id: str) -> Dataset:
        """Taxonomy and name change rarely; budgets live on the job, read per item."""
        key = (tenant_id, dataset_id)
        now = time.monotonic()
        cached = self._dataset_cache.get(key)
        if cached is None or now - cached[0] > CACHE_SECONDS:
            self._dataset_cache[key] = cached = (now, self.datasets.get(tenant_id, dataset_id))
        return cached[1]

    def request_interval(self) -> float:
        """Seconds between request starts allowed by the stated RPM and OTPM limits."""
        s = self.settings
        by_requests = 60.0 / s.rate_limit_rpm if s.rate_limit_rpm > 0 else 0.0
        by_tokens = (
            60.0 * DEFAULT_OUTPUT_TOKENS / s.rate_limit_otpm if s.rate_limit_otpm > 0 else 0.0
        )
        return max(by_requests, by_tokens)

    def limiter_keys(self, tenant_id: str, model: str) -> tuple[str, str]:
        return f"{tenant_id}#{model}#rpm", f"{tenant_id}#{model}#otpm"

    def planned_concurrency(
        self, latencies: Sequence[float], output_tokens: float, cap: int | None
    ) -> int:
        """Calls in flight a job would keep: the account rate x the observed latency
        (domain/concurrency.py), within the request's cap and the ceiling."""
        s = self.settings
        observed = [x for x in latencies if x > 0]
        latency = statistics.fmean(observed) if observed else DEFAULT_LATENCY_SECONDS
        rate = account_rate(s.rate_limit_rpm, s.rate_limit_otpm, output_tokens or 1.0)
        cap = cap or s.default_max_concurrency
        return target_in_flight(rate, latency, cap=cap, ceiling=s.generation_max_in_flight).target

    # ------------------------------------------------------------------ estimate
    def _judge_cost_each(
        self, dataset: Dataset, conversations: Sequence[Conversation], output_tokens: int
    ) -> tuple[float, str | None]:
        """What judging one more conversation costs: the mean of this dataset's billed
        verdicts, or the judge model's price for a conversation of ``output_tokens``."""
        if self.judge is None or not self.judge.enabled_for(dataset):
            return 0.0, None
        paid = [
            brief.judge_cost_usd
            for c in conversations
            if (brief := c.quality_brief()) is not None
            and brief.judge_cost_usd > 0
            and not brief.judge_cached
        ]
        if len(paid) >= 3:
            return statistics.fmean(paid), self.judge.model
        return self.judge.estimate_per_conversation(output_tokens), self.judge.model

    def _count_prompt(
        self, conv: Conversation, dataset: Dataset, templates: Sequence[PromptTemplate]
    ) -> TierPrompt | None:
        try:
            request, _, _ = self.build_request(conv, dataset, templates)
            total = self.llm.count_tokens(request)
            system_only = LLMRequest(
                model=request.model,
                system=request.system,
                prompt=".",
                max_tokens=1,
                temperature=0,
                use_tool=True,
            )
            system = self._system_tokens.get((request.model, request.system))
            if system is None:
                system = self.llm.count_tokens(system_only)
                self._system_tokens[(request.model, request.system)] = system
            return TierPrompt(total, system)
        except (PromptTemplateError, TransientGenerationError, PermanentGenerationError):
            return None

    def estimate(
        self,
        tenant_id: str,
        dataset: Dataset,
        targets: Sequence[Conversation],
        all_conversations: Sequence[Conversation],
        max_concurrency: int | None = None,
        *,
        jobs: Sequence[Job] = (),
        other_conversations: Callable[[], Iterable[Conversation]] | None = None,
        mode: str = "standard",
    ) -> Estimate:
        """Cost and time of generating ``targets``, learned from what this dataset's (or
        else the same templates') conversations cost and took; see domain/estimates.py."""
        model = self.model_for(dataset)
        price = self.settings.price(model)
        prices = Prices(
            input=price.input / PER_MILLION,
            output=price.output / PER_MILLION,
            cache_write=price.cache_write / PER_MILLION,
            cache_read=price.cache_read / PER_MILLION,
            batch_discount=price.batch_discount,
        )
        templates = self.templates.active_for_generation(tenant_id)
        history = job_history(jobs, all_conversations)
        economy_jobs = {j.job_id for j in jobs if j.mode == "economy"}
        observations = [
            observation_of(c, price.batch_discount if c.job_id in economy_jobs else 1.0)
            for c in all_conversations
            if is_observable(c, model)
        ]
        scope: Scope = "dataset"
        label = ""
        if len(observations) < MIN_OBSERVED:
            scope, observations, label = self._template_observations(
                targets, templates, model, dataset, other_conversations, price.batch_discount
            )
        # Count real prompt tokens for one conversation per tier (targets and observed).
        prompts: dict[str, TierPrompt] = {}
        representatives = [*targets, *(c for c in all_conversations if c.status != "failed")]
        wanted = {c.tier.value for c in targets} | {o.tier for o in observations}
        for conv in representatives:
            tier = conv.tier.value
            if tier in prompts or tier not in wanted:
                continue
            counted = self._count_prompt(conv, dataset, templates)
            if counted is not None:
                prompts[tier] = counted
        tier_counts: dict[str, int] = {}
        for conv in targets:
            tier_counts[conv.tier.value] = tier_counts.get(conv.tier.value, 0) + 1
        cost = estimate_cost(
            tier_counts,
            prompts,
            observations,
            scope,
            prices,
            history,
            scope_label=label,
        )
        n = len(targets)
        judge_each, judge_model = self._judge_cost_each(
            dataset, all_conversations, cost.output_tokens
        )
        judge_cost = n * judge_each
        s = self.settings
        concurrency = self.planned_concurrency(
            [o.seconds for o in observations], cost.output_tokens, max_concurrency
        )
        standard = estimate_standard_time(
            n,
            observations,
            concurrency,
            s.rate_limit_rpm,
            s.rate_limit_otpm,
            cost.output_tokens,
            history,
        )
        economy = estimate_economy_time(
            n,
            s.execution_chunk_size,
            s.batch_poll_seconds,
            standard_seconds(
                n,
                statistics.fmean([o.seconds for o in observations if o.seconds > 0] or [20.0]),
                concurrency,
                s.rate_limit_rpm,
                s.rate_limit_otpm,
                cost.output_tokens,
            ),
            history,
        )
        remaining = remaining_budget(dataset.budget_usd, dataset.spent_usd)
        discount = price.batch_discount
        # Economy mode judges through a Message Batch as well: the same discount.
        total = cost.total_usd + judge_cost
        point = total * (discount if mode == "economy" else 1.0)
        low, high = cost.low_usd + judge_cost, cost.high_usd + judge_cost
        in_avg = (
            sum(prompts[t].input_tokens * k for t, k in tier_counts.items() if t in prompts) // n
            if n
            else 0
        )
        return Estimate(
            count=n,
            estimated_cost_usd=round(total, 6),
            estimated_economy_cost_usd=round(total * discount, 6),
            estimated_seconds=round(standard.seconds, 1),
            input_tokens_per_conversation=in_avg,
            output_tokens_per_conversation=cost.output_tokens,
            cached_system_tokens=next(iter(prompts.values())).system_tokens if prompts else 0,
            budget_usd=dataset.budget_usd,
            budget_remaining_usd=remaining,
            over_budget=over_budget(point, remaining),
            model=model,
            basis=cost.basis,
            basis_scope=cost.scope,
            observed_conversations=cost.observed,
            estimated_cost_low_usd=round(low, 6),
            estimated_cost_high_usd=round(high, 6),
            estimated_economy_cost_low_usd=round(low * discount, 6),
            estimated_economy_cost_high_usd=round(high * discount, 6),
            estimated_seconds_low=round(standard.low, 1),
            estimated_seconds_high=round(standard.high, 1),
            estimated_economy_seconds=round(economy.seconds, 1),
            estimated_economy_seconds_low=round(economy.low, 1),
            estimated_economy_seconds_high=round(economy.high, 1),
            time_basis=standard.basis,
            economy_time_basis=economy.basis,
            retry_overhead=cost.retry_overhead,
            per_tier=[t.as_dict() for t in cost.per_tier],
            may_exceed_budget=remaining is not None
            and high * (discount if mode == "economy" else 1.0) > remaining,
            estimated_judge_cost_usd=round(judge_cost, 6),
            judge_model=judge_model,
        )

    def _template_observations(
        self,
        targets: Sequence[Conversation],
        templates: Sequence[PromptTemplate],
        model: str,
        dataset: Dataset,
        other_conversations: Callable[[], Iterable[Conversation]] | None,
        batch_discount: float,
    ) -> tuple[Scope, list[Observation], str]:
        """The same templates' conversations in the tenant's other datasets."""
        if other_conversations is None:
            return "defaults", [], ""
        wanted: dict[str, str] = {}
        for conv in targets:
            try:
                chunk = self._chunk(conv, dataset)
                template = choose_template(templates, conv, build_parameters(conv, dataset, chunk))
            except PromptTemplateError:
                continue
            wanted[template.template_id] = template.name
        found = [
            observation_of(c, 1.0)
            for c in other_conversations()
            if c.template_id in wanted and is_observable(c, model)
        ]
        if len(found) < MIN_OBSERVED:
            return "defaults", [], ""
        return "template", found, ", ".join(sorted(set(wanted.values())))

    # ------------------------------------------------------------------ one item
    def _job(self, tenant_id: str, job_id: str) -> Job:
        """The job, read at most once a second per container: a pause or cancel takes
        effect within a second, and a busy job saves a read per item."""
        key = (tenant_id, job_id)
        now = time.monotonic()
        cached = self._job_cache.get(key)
        # Only a running job is cached: a resume must be seen at once.
        if (
            cached is None
            or now - cached[0] > JOB_CACHE_SECONDS
            or cached[1].status not in STATUSES_THAT_RUN
        ):
            self._job_cache[key] = cached = (now, self.jobs.get(tenant_id, job_id))
        return cached[1]

    def _stopped(self, job: Job) -> bool:
        """The job no longer runs (pausing, paused, cancelled), read fresh."""
        self._job_cache.pop((job.tenant_id, job.job_id), None)
        return self._job(job.tenant_id, job.job_id).status not in STATUSES_THAT_RUN

    def _should_stop(self, job: Job, conversation: Conversation) -> bool:
        """Re-check the job after the rate-limiter wait, before the paid call: a pause,
        a cancel or a reached budget then stops here instead of after one more call."""
        current = self._job(job.tenant_id, job.job_id)
        if current.budget_usd is not None and current.cost_usd >= current.budget_usd:
            current = self.enforce_budget(job.tenant_id, job.job_id)  # a raised budget goes on
        if current.status in STATUSES_THAT_RUN:
            return False
        self.conversations.release_claim(job.tenant_id, conversation.conversation_id, job.job_id)
        return True

    def _note_current(self, job: Job, conversation: Conversation) -> None:
        """Progress shows the conversation being generated; written at most once a second."""
        now = time.monotonic()
        if now - self._current_written.get(job.job_id, 0.0) < JOB_CACHE_SECONDS:
            return
        self._current_written[job.job_id] = now
        self.jobs.set_current(
            job.tenant_id,
            job.job_id,
            {
                "conversation_id": conversation.conversation_id,
                "persona": conversation.persona,
                "topic": conversation.topic,
            },
        )

    def generate_item(
        self,
        tenant_id: str,
        job_id: str,
        conversation_id: str,
        retry_count: int = 0,
        claim: str = "",
    ) -> str:
        job = self._job(tenant_id, job_id)
        if job.status not in STATUSES_THAT_RUN:
            # A re-run after the job stopped: report work already done, run nothing.
            done = self.jobs.item_outcome(tenant_id, job_id, conversation_id)
            return done or "deferred"  # paused or cancelled: leave it for resume
        if (
            job.budget_usd is not None
            and job.cost_usd >= job.budget_usd
            and self.enforce_budget(tenant_id, job_id).status not in STATUSES_THAT_RUN
        ):
            return "deferred"
        per_item = job.estimated_cost_usd / job.total if job.total else None
        outcome, conversation = self.conversations.claim_for_generation(
            tenant_id, conversation_id, job_id, claim, estimated_cost_usd=per_item
        )
        if outcome is ClaimOutcome.ALREADY_DONE:
            # a retried task: report the outcome this job already recorded
            failed = conversation is not None and conversation.status == ConversationStatus.FAILED
            return "failed" if failed else "completed"
        if (
            outcome is ClaimOutcome.INELIGIBLE
            and conversation is not None
            and conversation.status == ConversationStatus.GENERATING
            and conversation.job_id == job_id
        ):
            return "deferred"  # another execution of this job is generating it
        if outcome is ClaimOutcome.INELIGIBLE or conversation is None:
            self.jobs.record_item(
                JobItemWrite(
                    tenant_id, job_id, conversation_id, "skipped", error_message="not eligible"
                )
            )
            return "skipped"
        self._note_current(job, conversation)
        try:
            return self._generate_claimed(job, conversation)
        except TransientGenerationError as e:
            if isinstance(e, ProviderRateLimitError | ProviderOverloadedError) and self._stopped(
                job
            ):
                # Refused while the job pauses (the breaker paused it): the conversation
                # waits for resume instead of spending its remaining attempts.
                self.conversations.release_claim(tenant_id, conversation_id, job_id)
                return "deferred"
            # The attempt count lives on the claim (moto's ASL has no $$ context object).
            attempts = max(conversation.generation_attempts, retry_count + 1)
            if attempts >= job.max_attempts:
                return self._fail(job, conversation, f"gave up after {attempts} attempts: {e}")
            raise
        except (PermanentGenerationError, PromptTemplateError) as e:
            return self._fail(job, conversation, str(e))

    def _claim_logs(self, job: Job, conversation: Conversation) -> list[GenerationLog]:
        """This claim's logged generation calls, oldest first (a retry may follow a crash
        in another Lambda, so they are read back from the store)."""
        if conversation.generation_attempts <= 1 or self.logs is None:
            return []
        token = conversation.claim_token or job.job_id
        return sorted(
            (
                log
                for log in self.logs.list_for_conversation(
                    conversation.tenant_id, conversation.conversation_id
                )
                if log.job_id == job.job_id
                and (log.claim_token or job.job_id) == token
                and (log.parameters or {}).get("purpose") is None  # not the judge's
            ),
            key=lambda log: (log.attempt or 0, log.created_at),
        )

    def _unstored_answers(self, job: Job, conversation: Conversation) -> list[GenerationLog]:
        """This job's answered generation calls for the conversation since it was last
        stored, oldest first, whatever claim made them: a claim voided by a crash and
        resume leaves its paid answer here too."""
        if self.logs is None:
            return []
        stored_at = conversation.generated_at
        return sorted(
            (
                log
                for log in self.logs.list_for_conversation(
                    conversation.tenant_id, conversation.conversation_id
                )
                if log.job_id == job.job_id
                and (log.parameters or {}).get("purpose") != "judge"
                and log.billing == "actual"
                and log.response_payload
                and (stored_at is None or log.created_at > stored_at)
            ),
            key=lambda log: log.created_at,
        )

    def _paid_answer(
        self, logs: Sequence[GenerationLog]
    ) -> tuple[GenerationLog, LLMResponse] | None:
        """A usable answer an earlier attempt was billed for but never stored (the attempt
        failed after the call: a lost Lambda, a write that failed, a crash before the
        resume). The retry stores it instead of paying for another one."""
        for log in reversed(logs):
            payload = log.response_payload
            if not payload or log.billing != "actual":
                continue
            response = LLMResponse(
                content=list(payload.get("content") or []),
                stop_reason=payload.get("stop_reason"),
                usage=Usage(**(payload.get("usage") or {})),
                model=str(payload.get("model") or log.model),
                request_id=payload.get("request_id"),
                duration_ms=log.duration_ms,
            )
            try:
                parse_response(response)
            except MalformedResponseError:
                continue  # a malformed or cut-off answer: the retry asks again
            return log, response
        return None

    def _generate_claimed(self, job: Job, conversation: Conversation) -> str:
        tenant_id = job.tenant_id
        dataset = self._dataset(tenant_id, conversation.dataset_id)
        templates = self.templates.active_for_generation(tenant_id)
        logs = self._claim_logs(job, conversation)
        retry = self.retry_plan(job, conversation, dataset, logs)
        request, template, params = self.build_request(conversation, dataset, templates, retry)
        paid = self._paid_answer(self._unstored_answers(job, conversation))
        if paid is not None:
            log, response = paid
            # Logged and billed already: the same log key makes the spend a no-op.
            ref = LogRef(log.log_id, log.created_at, log.claim_token, log.attempt)
            return self.store_response(
                job,
                conversation,
                dataset,
                request,
                template,
                params,
                response,
                log.run_id or new_id("run"),
                log_ref=ref,
                retry_bad_answers=True,
            )
        rpm_key, _ = self.limiter_keys(tenant_id, request.model)
        control = self.concurrency
        expected_tokens = control.output_tokens_per_call(job) if control else 0.0
        reserved = (
            control.start_interval(job, expected_tokens) if control else self.request_interval()
        )
        burst = control.burst_seconds(job, expected_tokens) if control else None
        self.limiter.acquire_interval(rpm_key, reserved, burst_seconds=burst)
        if self._should_stop(job, conversation):
            return "deferred"  # paused, cancelled or out of budget while waiting for a slot
        run_id = new_id("run")
        attempt = attempt_log_ref(conversation)
        if control:
            control.begin(job)
        started = time.monotonic()
        answered: LLMResponse | None = None
        refused: bool | None = None  # the provider's verdict on the rate: 429/529 or not
        try:
            answered = self.llm.create(request)
            refused = False
        except (ProviderRateLimitError, ProviderOverloadedError) as e:
            refused = True
            if isinstance(e, ProviderRateLimitError):
                self.limiter.penalise(rpm_key, e.retry_after or 1.0)
            self._log_failed_call(job, conversation, request, template, params, run_id, e)
            raise
        except (TransientGenerationError, PermanentGenerationError) as e:
            self._log_failed_call(job, conversation, request, template, params, run_id, e)
            raise
        finally:
            if control:
                latency_ms = None
                if answered is not None:
                    latency_ms = answered.duration_ms or int((time.monotonic() - started) * 1000)
                step = control.end(
                    job,
                    latency_ms,
                    answered.usage.output_tokens if answered is not None else 0,
                    refused,
                )
                if step is not None and step.breaker_opened:
                    self._breaker_opened(job, request.model, rpm_key, step)
        assert answered is not None  # create() returned
        response = answered
        if control:
            # The slot was reserved for the expected answer length; the output-token
            # limit is charged for the real one (later slots move by the difference).
            actual = control.start_interval(job, response.usage.output_tokens)
            self.limiter.shift(rpm_key, actual - reserved)
        self._respect_headers(rpm_key, response)
        for _ in range(response.unanswered_attempts):
            self._log_estimated(job, conversation, request, template, params, run_id)
        return self.store_response(
            job,
            conversation,
            dataset,
            request,
            template,
            params,
            response,
            run_id,
            log_ref=attempt,
            retry_bad_answers=True,
        )

    def _breaker_opened(self, job: Job, model: str, rpm_key: str, step: BackoffStep) -> None:
        """The provider refused call after call: every caller of the key waits out the
        cooldown, and the last allowed opening pauses the job."""
        wait = max(step.state.open_until - time.time(), 0.0)
        self.limiter.penalise(rpm_key, wait)
        log.warning(
            "provider keeps refusing %s: breaker open for %.0f s (trip %d)",
            model,
            wait,
            step.state.trips,
        )
        if step.pause_job:
            self.pause_for_provider(job, step.state.trips, wait)

    def pause_for_provider(self, job: Job, trips: int, cooldown_s: float) -> bool:
        """The provider refused every call through several breaker cooldowns: the job
        pauses itself (``pausing``; the Map drains and nothing in flight is lost)."""
        if not self.jobs.set_status(
            job.tenant_id,
            job.job_id,
            JobStatus.PAUSING,
            expected=[JobStatus.RUNNING, JobStatus.QUEUED],
            pause_reason=PROVIDER_PAUSE_REASON,
        ):
            return False
        self._job_cache.pop((job.tenant_id, job.job_id), None)
        self.audit.record(
            job.tenant_id,
            "system",
            "job.pause",
            "job",
            job.job_id,
            before={"status": job.status.value},
            after={"status": JobStatus.PAUSING.value, "pause_reason": PROVIDER_PAUSE_REASON},
            reason=PROVIDER_PAUSE_REASON,
            breaker_trips=trips,
            dataset_id=job.dataset_id,
        )
        link = f"{self.settings.app_base_url}/?dataset={job.dataset_id}"
        self.notifier.publish(
            NotificationMessage(
                tenant_id=job.tenant_id,
                kind="job.paused",
                job_id=job.job_id,
                dataset_id=job.dataset_id,
                subject=f"Generation job {job.job_id} paused: the model provider keeps refusing",
                body=(
                    f"Generation job {job.job_id} paused itself: the provider refused every "
                    f"call (rate limited or overloaded) through {trips} waits of up to "
                    f"{cooldown_s:.0f} s. Conversations already written are kept and "
                    f"nothing was charged for refused calls. Resume the job when the "
                    f"provider's status is back to normal.\nDataset: {link}"
                ),
            )
        )
        return True

    def store_response(
        self,
        job: Job,
        conversation: Conversation,
        dataset: Dataset,
        request: LLMRequest,
        template: PromptTemplate,
        params: dict[str, str],
        response: LLMResponse,
        run_id: str,
        *,
        batch: bool = False,
        log_ref: LogRef | None = None,
        retry_bad_answers: bool = False,
    ) -> str:
        """Log and bill the call, parse, score and store: shared by standard and batch mode.

        With ``retry_bad_answers`` a malformed or truncated answer raises a
        TransientGenerationError (the workflow retries it within the job's
        ``max_attempts``; the retry of a truncated one asks for more room), otherwise it
        fails the conversation. Either way the call is logged and billed once first."""
        tenant_id = job.tenant_id
        call_cost = cost_usd(self.settings, request.model, response.usage, batch=batch)
        self._log_call(
            job,
            conversation,
            request,
            template,
            params,
            response,
            run_id,
            None,
            call_cost,
            log_ref=log_ref,
        )
        try:
            parsed = parse_response(response)
        except MalformedResponseError as e:
            kind = (
                "truncated answer" if isinstance(e, TruncatedResponseError) else "malformed answer"
            )
            detail = f"{kind} (max_tokens={request.max_tokens}): {e}"
            if retry_bad_answers:
                raise TransientGenerationError(detail) from e
            return self._fail(job, conversation, detail)
        generated = conversation.model_copy(
            update={
                "status": ConversationStatus.GENERATED,
                "title": parsed.title,
                "turn_count": len(parsed.turns),
                "actual_cost_usd": call_cost,
                "generation_duration_ms": response.duration_ms,
                "input_tokens": response.usage.input_tokens
                + response.usage.cache_read_input_tokens
                + response.usage.cache_creation_input_tokens,
                "output_tokens": response.usage.output_tokens,
                "model": request.model,
                "template_id": template.template_id,
                "template_version": template.version,
                "parse_path": parsed.parse_path,
                "generated_at": utcnow(),
                "updated_at": utcnow(),
                "error_message": None,
                "job_id": job.job_id,
                "version": conversation.version + 1,
            }
        )
        chunk_text = self._chunk_text(conversation, dataset)
        # Heuristics at once; the judge's verdict only once the conversation is stored, so
        # a judge call that fails or dies never costs the answer already paid for.
        generated = self.apply_quality(
            generated, parsed.turns, dataset, judge=False, chunk_text=chunk_text
        )
        audit = self.audit.build(
            tenant_id,
            f"job:{job.job_id}",
            "conversation.generate",
            "conversation",
            conversation.conversation_id,
            before=snapshot(conversation),
            after=snapshot(generated),
            job_id=job.job_id,
            template_id=template.template_id,
            template_version=template.version,
            parse_path=parsed.parse_path,
            mode="economy" if batch else "standard",
            attempt=conversation.generation_attempts,
        )
        # One transaction: conversation, turns, the job's count and the audit record.
        stored = self.conversations.commit_generation(
            generated,
            parsed.turns,
            JobItemWrite(
                tenant_id, job.job_id, conversation.conversation_id, "completed", call_cost
            ),
            audit=audit,
        )
        if not stored:
            # Refused: the item's outcome was written by another attempt, or this claim
            # was given up (a pause or cancel drained it). Nothing of this answer is
            # kept; a resume finds it logged and paid, and stores it without a new call.
            recorded = self.jobs.item_outcome(tenant_id, job.job_id, conversation.conversation_id)
            return recorded or "deferred"
        if not batch:  # economy mode judges through its own Message Batch
            self._judge_stored(job, generated, parsed.turns, dataset, chunk_text)
        return "completed"

    def _judge_stored(
        self,
        job: Job,
        conversation: Conversation,
        turns: list[Turn],
        dataset: Dataset,
        chunk_text: str | None,
    ) -> None:
        """The judge's verdict on a stored conversation, folded into its score. If this
        never finishes the conversation keeps its heuristic score (a re-validation with
        the judge adds the verdict later)."""
        if self.judge is None or not self.judge.enabled_for(dataset):
            return
        verdict = self.judge.judge(conversation, turns, dataset, chunk_text, job_id=job.job_id)
        scored = self.apply_quality(
            conversation, turns, dataset, chunk_text=chunk_text, judge=False, verdict=verdict
        )
        self.conversations.save_quality(scored)
        if verdict.cost_usd and not verdict.cached:
            self.enforce_budget(job.tenant_id, job.job_id)

    def apply_quality(
        self,
        conversation: Conversation,
        turns: list[Turn],
        dataset: Dataset,
        *,
        chunk_text: str | None = None,
        job_id: str | None = None,
        judge: bool = True,
        verdict: JudgeResult | None = None,
    ) -> Conversation:
        """Score ``turns``: heuristics always, the LLM judge when it is on (its call is
        billed to the job and dataset). ``verdict``: a judge answer already had."""
        duplicate = None
        if self.duplicate_finder is not None:
            text = conversation_text(turns)
            duplicate = self.duplicate_finder(
                conversation.tenant_id, dataset.dataset_id, conversation.conversation_id, text
            )
        if verdict is None and judge and self.judge is not None and self.judge.enabled_for(dataset):
            verdict = self.judge.judge(conversation, turns, dataset, chunk_text, job_id=job_id)
        report = score_conversation(
            conversation,
            turns,
            duplicate_of=duplicate,
            context=ScoringContext.of(dataset, chunk_text),
            judge=verdict,
        )
        return conversation.model_copy(update={"quality": report, "quality_score": report.score})

    def _chunk_text(self, conversation: Conversation, dataset: Dataset) -> str | None:
        chunk = self._chunk(conversation, dataset)
        return chunk.text if chunk else None

    def _respect_headers(self, rpm_key: str, response: LLMResponse) -> None:
        remaining = response.headers.get("anthropic-ratelimit-requests-remaining")
        reset = response.headers.get("anthropic-ratelimit-requests-reset")
        if remaining == "0" and reset:
            try:
                from datetime import datetime

                until = datetime.fromisoformat(reset.replace("Z", "+00:00")).timestamp()
                self.limiter.penalise(rpm_key, max(until - utcnow().timestamp(), 0))
            except ValueError:
                pass

    @staticmethod
    def call_estimate(job: Job, conversation: Conversation) -> float:
        """What a call that may have been billed without an answer is charged: the
        conversation's estimate (set when it was claimed), else the job's average."""
        if conversation.estimated_cost_usd:
            return float(conversation.estimated_cost_usd)
        return job.estimated_cost_usd / job.total if job.total else 0.0

    def _log_failed_call(
        self,
        job: Job,
        conversation: Conversation,
        request: LLMRequest,
        template: PromptTemplate,
        params: dict[str, str],
        run_id: str,
        error: Exception,
    ) -> None:
        """A call that raised: its own log (charged at the estimate if it timed out: the
        provider may have run it), plus one estimated log per earlier attempt of the SDK
        that timed out."""
        timeouts, last_timed_out = unanswered_attempts(error)
        self._log_call(
            job,
            conversation,
            request,
            template,
            params,
            None,
            run_id,
            str(error),
            self.call_estimate(job, conversation) if last_timed_out else 0.0,
            log_ref=attempt_log_ref(conversation),
            billing="estimated" if last_timed_out else "none",
        )
        for _ in range(timeouts - int(last_timed_out)):
            self._log_estimated(job, conversation, request, template, params, run_id)

    def _log_estimated(
        self,
        job: Job,
        conversation: Conversation,
        request: LLMRequest,
        template: PromptTemplate,
        params: dict[str, str],
        run_id: str,
    ) -> None:
        self._log_call(
            job,
            conversation,
            request,
            template,
            params,
            None,
            run_id,
            "timed out before an answer (the SDK retried it); charged at the estimate",
            self.call_estimate(job, conversation),
            billing="estimated",
        )

    def _log_call(
        self,
        job: Job,
        conversation: Conversation,
        request: LLMRequest,
        template: PromptTemplate,
        params: dict[str, str],
        response: LLMResponse | None,
        run_id: str,
        error: str | None,
        call_cost: float = 0.0,
        *,
        log_ref: LogRef | None = None,
        billing: Billing | None = None,
    ) -> bool:
        ref = log_ref or fresh_log_ref(conversation)
        entry = GenerationLog(
            tenant_id=job.tenant_id,
            log_id=ref.log_id,
            created_at=ref.created_at,
            claim_token=ref.claim_token,
            attempt=ref.attempt,
            billing=billing or ("actual" if response is not None else "none"),
            conversation_id=conversation.conversation_id,
            job_id=job.job_id,
            run_id=run_id,
            template_id=template.template_id,
            template_version=template.version,
            model=request.model,
            request_payload=request.params(),
            response_payload=response.as_payload() if response else None,
            parameters=params,
            input_tokens=response.usage.input_tokens if response else 0,
            output_tokens=response.usage.output_tokens if response else 0,
            cache_creation_input_tokens=response.usage.cache_creation_input_tokens
            if response
            else 0,
            cache_read_input_tokens=response.usage.cache_read_input_tokens if response else 0,
            cost_usd=round(call_cost, 8),
            duration_ms=response.duration_ms if response else 0,
            error_message=error,
        )
        counted = self.jobs.record_spend(entry, job.job_id, conversation.dataset_id)
        if counted and call_cost:
            self.enforce_budget(job.tenant_id, job.job_id)
        return counted

    # ------------------------------------------------------------------ budget
    def enforce_budget(self, tenant_id: str, job_id: str) -> Job:
        """Give the budget warnings now due and pause at 100%, from the job's stored spend.

        Warnings and the pause are applied by one conditional write on the job (the
        thresholds it holds are the condition), so of concurrent items exactly one
        applies each step, and publishes its warnings in rising order and the pause
        notice last. Returns the job as it is now."""
        job = self.jobs.get(tenant_id, job_id)
        for _ in range(8):
            self._job_cache[(tenant_id, job_id)] = (time.monotonic(), job)
            step = budget_step(
                job.cost_usd, job.budget_usd, job.warned_thresholds, job.status in STATUSES_THAT_RUN
            )
            if step.empty or job.budget_usd is None:
                return job
            warnings = [
                BudgetWarning(
                    threshold_percent=t, spent_usd=round(job.cost_usd, 6), budget_usd=job.budget_usd
                ).model_dump(mode="json")
                for t in step.warn
            ]
            if self.jobs.advance_budget(
                tenant_id,
                job_id,
                warned=job.warned_thresholds,
                warn=list(step.warn),
                warnings=warnings,
                pause=step.pause,
                previous_status=job.status,
            ):
                self._announce_budget(job, step.warn, step.pause)
                job = self.jobs.get(tenant_id, job_id)
                self._job_cache[(tenant_id, job_id)] = (time.monotonic(), job)
                return job
            job = self.jobs.get(tenant_id, job_id)  # another item got there first: re-read
        return job

    def _announce_budget(self, job: Job, warned: Sequence[int], paused: bool) -> None:
        budget = job.budget_usd or 0.0
        link = f"{self.settings.app_base_url}/?dataset={job.dataset_id}"
        for threshold in warned:
            self.notifier.publish(
                NotificationMessage(
                    tenant_id=job.tenant_id,
                    kind="budget.warning",
                    job_id=job.job_id,
                    dataset_id=job.dataset_id,
                    subject=f"Budget {threshold}% used by generation job {job.job_id}",
                    body=(
                        f"Generation job {job.job_id} has spent ${job.cost_usd:.4f} of its "
                        f"${budget:.2f} budget ({threshold}% threshold reached).\n"
                        f"Dataset: {link}"
                    ),
                )
            )
        if not paused:
            return
        self.audit.record(
            job.tenant_id,
            "system",
            "job.pause",
            "job",
            job.job_id,
            before={"status": job.status.value},
            after={"status": JobStatus.PAUSING.value, "pause_reason": "budget"},
            reason="budget",
            spent_usd=round(job.cost_usd, 6),
            budget_usd=budget,
            dataset_id=job.dataset_id,
        )
        self.notifier.publish(
            NotificationMessage(
                tenant_id=job.tenant_id,
                kind="budget.paused",
                job_id=job.job_id,
                dataset_id=job.dataset_id,
                subject=f"Generation job {job.job_id} paused: budget reached",
                body=(
                    f"Generation job {job.job_id} reached its budget of ${budget:.2f} "
                    f"(spent ${job.cost_usd:.4f}) and paused itself.\n"
                    f"{job.done} of {job.total} conversations are done. Raise the dataset's "
                    f"budget and resume the job to generate the rest.\n"
                    f"Dataset: {link}"
                ),
            )
        )

    # ------------------------------------------------------------------ failure
    def _fail(self, job: Job, conversation: Conversation, message: str) -> str:
        recorded = self.conversations.commit_failure(
            conversation.model_copy(update={"job_id": job.job_id}),
            message,
            JobItemWrite(
                job.tenant_id,
                job.job_id,
                conversation.conversation_id,
                "failed",
                error_message=message,
            ),
        )
        if recorded:
            self.audit.record(
                job.tenant_id,
                f"job:{job.job_id}",
                "conversation.generate_failed",
                "conversation",
                conversation.conversation_id,
                before=snapshot(conversation),
                after={"status": "failed", "error_message": message},
                job_id=job.job_id,
            )
        return "failed"

    def record_item_failure(
        self, tenant_id: str, job_id: str, conversation_id: str, error: dict[str, Any] | None
    ) -> str:
        """The ASL Catch path: retries are exhausted or the task crashed."""
        error = error or {}
        message = f"{error.get('Error', 'Error')}: {str(error.get('Cause', ''))[:500]}"
        job = self.jobs.get(tenant_id, job_id)
        try:
            conversation = self.conversations.get(tenant_id, conversation_id)
        except Exception:
            self.jobs.record_item(JobItemWrite(tenant_id, job_id, conversation_id, "skipped"))
            return "skipped"
        if conversation.status != ConversationStatus.GENERATING or conversation.job_id != job_id:
            self.jobs.record_item(
                JobItemWrite(tenant_id, job_id, conversation_id, "failed", error_message=message)
            )
            return "failed"
        if error.get("Error") in REFUSAL_ERRORS and job.status not in STATUSES_THAT_RUN:
            # Its retries ran out on refusals while the job was pausing: kept for resume.
            self.conversations.release_claim(tenant_id, conversation_id, job_id)
            return "deferred"
        return self._fail(job, conversation, message)
