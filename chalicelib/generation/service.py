"""Generating one conversation: the work of one Step Functions Map item.

``generate_item`` is safe to run more than once for the same (job, conversation): the
claim is conditional, the commit is one transaction guarded by the claim and by the
job-item marker, and spend is logged once per billed call.
"""

from __future__ import annotations

import logging
import statistics
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from chalicelib.config import Settings
from chalicelib.domain.errors import (
    MalformedResponseError,
    PermanentGenerationError,
    PromptTemplateError,
    ProviderRateLimitError,
    TransientGenerationError,
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
from chalicelib.generation.llm_client import LLMClient, LLMRequest, LLMResponse
from chalicelib.generation.notifier import Notifier
from chalicelib.generation.parsing import parse_response
from chalicelib.generation.pricing import cost_usd
from chalicelib.generation.prompts import build_parameters, choose_template, render_prompt
from chalicelib.generation.rate_limit import SharedRateLimiter
from chalicelib.planning.seed_templates import SYSTEM_PROMPT_TEMPLATE
from chalicelib.quality.duplicates import conversation_text
from chalicelib.quality.judging import JudgeService
from chalicelib.quality.scoring import ScoringContext, score_conversation
from chalicelib.review.audit import AuditLog, snapshot
from chalicelib.store.repositories import (
    ClaimOutcome,
    DynamoConversationRepository,
    DynamoDatasetRepository,
    DynamoJobRepository,
    JobItemWrite,
)

log = logging.getLogger(__name__)

BUDGET_THRESHOLDS = (50, 75, 90)
DEFAULT_OUTPUT_TOKENS = 1800  # ~12 turns; replaced by the dataset's observed mean
DEFAULT_LATENCY_SECONDS = 20.0
CACHE_SECONDS = 5.0
JOB_CACHE_SECONDS = 1.0  # per-container cache of a dataset's taxonomy and chunks
STATUSES_THAT_RUN = frozenset({JobStatus.RUNNING, JobStatus.QUEUED})


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
    estimated_judge_cost_usd: float = 0.0  # included in both totals above
    judge_model: str | None = None

    def as_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


def system_prompt_for(dataset: Dataset) -> str:
    return SYSTEM_PROMPT_TEMPLATE.format(business_name=dataset.business_name or dataset.name)


class GenerationService:
    def __init__(
        self,
        settings: Settings,
        llm: LLMClient,
        datasets: DynamoDatasetRepository,
        conversations: DynamoConversationRepository,
        jobs: DynamoJobRepository,
        templates: Any,  # TemplateService (avoids an import cycle)
        limiter: SharedRateLimiter,
        notifier: Notifier,
        audit: AuditLog,
        duplicate_finder: Any = None,  # callable(tenant, dataset_id, conv_id, text) -> (id, sim)|None
        judge: JudgeService | None = None,
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
        self._chunk_cache: dict[tuple[str, str], tuple[float, dict[str, Chunk]]] = {}
        self._dataset_cache: dict[tuple[str, str], tuple[float, Dataset]] = {}
        self._job_cache: dict[tuple[str, str], tuple[float, Job]] = {}
        self._current_written: dict[str, float] = {}

    # ------------------------------------------------------------------ request building
    def model_for(self, dataset: Dataset) -> str:
        return dataset.model or self.settings.model

    def build_request(
        self, conversation: Conversation, dataset: Dataset, templates: Sequence[PromptTemplate]
    ) -> tuple[LLMRequest, PromptTemplate, dict[str, str]]:
        template = choose_template(templates, conversation)
        chunk = self._chunk(conversation, dataset)
        params = build_parameters(conversation, dataset, chunk)
        prompt = render_prompt(template.text, params)
        request = LLMRequest(
            model=self.model_for(dataset),
            system=system_prompt_for(dataset),
            prompt=prompt,
            max_tokens=self.settings.max_tokens,
            temperature=self.settings.temperature,
        )
        return request, template, params

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

    # ------------------------------------------------------------------ estimate
    def estimate(
        self,
        tenant_id: str,
        dataset: Dataset,
        targets: Sequence[Conversation],
        all_conversations: Sequence[Conversation],
        max_concurrency: int | None = None,
    ) -> Estimate:
        model = self.model_for(dataset)
        price = self.settings.price(model)
        templates = self.templates.active_for_generation(tenant_id)
        # Count real prompt tokens for one representative conversation per tier.
        per_tier: dict[str, int] = {}
        system_tokens = 0
        for conv in targets:
            tier = conv.tier.value
            if tier in per_tier:
                continue
            try:
                request, _, _ = self.build_request(conv, dataset, templates)
                per_tier[tier] = self.llm.count_tokens(request)
                if not system_tokens:
                    system_only = LLMRequest(
                        model=request.model,
                        system=request.system,
                        prompt=".",
                        max_tokens=1,
                        temperature=0,
                        use_tool=True,
                    )
                    system_tokens = self.llm.count_tokens(system_only)
            except (PromptTemplateError, TransientGenerationError, PermanentGenerationError):
                per_tier[tier] = 1500
        generated = [c for c in all_conversations if c.output_tokens and c.generation_duration_ms]
        if len(generated) >= 3:
            out_tokens = int(statistics.mean(c.output_tokens for c in generated))
            latency = statistics.mean((c.generation_duration_ms or 0) / 1000 for c in generated)
            basis = f"observed mean of {len(generated)} generated conversations"
        else:
            out_tokens = DEFAULT_OUTPUT_TOKENS
            latency = DEFAULT_LATENCY_SECONDS
            basis = "defaults (no generated conversations yet)"
        total_cost = 0.0
        in_avg = 0
        for i, conv in enumerate(targets):
            in_tokens = per_tier.get(conv.tier.value, 1500)
            in_avg += in_tokens
            # Prompt caching: the shared system prompt is written once, then read.
            cached = system_tokens if i > 0 else 0
            written = system_tokens if i == 0 else 0
            total_cost += (
                (in_tokens - cached - written) * price.input
                + cached * price.cache_read
                + written * price.cache_write
                + out_tokens * price.output
            ) / 1_000_000
        n = len(targets)
        judge_cost = judge_economy = 0.0
        judge_model = None
        if self.judge is not None and self.judge.enabled_for(dataset):
            # The judge reads each generated conversation (its tokens in) and answers with
            # a short verdict; economy mode sends it through a Message Batch too.
            judge_model = self.judge.model
            judge_cost = n * self.judge.estimate_per_conversation(out_tokens)
            judge_economy = n * self.judge.estimate_per_conversation(out_tokens, batch=True)
        concurrency = max_concurrency or self.settings.default_max_concurrency
        seconds = max(
            n / max(self.settings.rate_limit_rpm, 1) * 60.0,
            n * latency / max(concurrency, 1),
            n * out_tokens / max(self.settings.rate_limit_otpm, 1) * 60.0,
        )
        remaining = None
        if dataset.budget_usd is not None:
            remaining = round(dataset.budget_usd - dataset.spent_usd, 6)
        economy_cost = total_cost * price.batch_discount + judge_economy
        total_cost += judge_cost
        return Estimate(
            count=n,
            estimated_cost_usd=round(total_cost, 6),
            estimated_economy_cost_usd=round(economy_cost, 6),
            estimated_seconds=round(seconds, 1),
            input_tokens_per_conversation=in_avg // n if n else 0,
            output_tokens_per_conversation=out_tokens,
            cached_system_tokens=system_tokens,
            budget_usd=dataset.budget_usd,
            budget_remaining_usd=remaining,
            over_budget=remaining is not None and total_cost > remaining,
            model=model,
            basis=basis,
            estimated_judge_cost_usd=round(judge_cost, 6),
            judge_model=judge_model,
        )

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

    def _should_stop(self, job: Job, conversation: Conversation) -> bool:
        """Re-check the job after the rate-limiter wait, before the paid call: a pause,
        a cancel or a reached budget then stops here instead of after one more call."""
        current = self._job(job.tenant_id, job.job_id)
        if current.budget_usd is not None and current.cost_usd >= current.budget_usd:
            self._pause_for_budget(current)  # re-reads the job: a raised budget goes on
            current = self._job(job.tenant_id, job.job_id)
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
        if job.budget_usd is not None and job.cost_usd >= job.budget_usd:
            self._pause_for_budget(job)
            return "deferred"
        per_item = job.estimated_cost_usd / job.total if job.total else None
        outcome, conversation = self.conversations.claim_for_generation(
            tenant_id, conversation_id, job_id, claim, estimated_cost_usd=per_item
        )
        if outcome is ClaimOutcome.ALREADY_DONE:
            return "completed"
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
            # The attempt count lives on the claim (moto's ASL has no $$ context object).
            attempts = max(conversation.generation_attempts, retry_count + 1)
            if attempts >= job.max_attempts:
                return self._fail(job, conversation, f"gave up after {attempts} attempts: {e}")
            raise
        except (PermanentGenerationError, PromptTemplateError) as e:
            return self._fail(job, conversation, str(e))

    def _generate_claimed(self, job: Job, conversation: Conversation) -> str:
        tenant_id = job.tenant_id
        dataset = self._dataset(tenant_id, conversation.dataset_id)
        templates = self.templates.active_for_generation(tenant_id)
        request, template, params = self.build_request(conversation, dataset, templates)
        rpm_key, _ = self.limiter_keys(tenant_id, request.model)
        self.limiter.acquire_interval(rpm_key, self.request_interval())
        if self._should_stop(job, conversation):
            return "deferred"  # paused, cancelled or out of budget while waiting for a slot
        run_id = new_id("run")
        try:
            response = self.llm.create(request)
        except ProviderRateLimitError as e:
            self.limiter.penalise(rpm_key, e.retry_after or 1.0)
            self._log_call(job, conversation, request, template, params, None, run_id, str(e))
            raise
        except (TransientGenerationError, PermanentGenerationError) as e:
            self._log_call(job, conversation, request, template, params, None, run_id, str(e))
            raise
        self._respect_headers(rpm_key, response)
        return self.store_response(
            job, conversation, dataset, request, template, params, response, run_id
        )

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
    ) -> str:
        """Log and bill the call, parse, score and store: shared by standard and batch mode."""
        tenant_id = job.tenant_id
        call_cost = cost_usd(self.settings, request.model, response.usage, batch=batch)
        self._log_call(
            job, conversation, request, template, params, response, run_id, None, call_cost
        )
        try:
            parsed = parse_response(response)
        except MalformedResponseError as e:
            return self._fail(job, conversation, f"malformed answer: {e}")
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
        generated = self.apply_quality(
            generated,
            parsed.turns,
            dataset,
            chunk_text=self._chunk_text(conversation, dataset),
            job_id=job.job_id,
            judge=not batch,  # economy mode judges through its own Message Batch
        )
        judge_cost = (
            generated.quality.judge.cost_usd
            if generated.quality and generated.quality.judge
            else 0.0
        )
        if judge_cost:
            self._check_budget(job, job.cost_usd + call_cost + judge_cost)
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
        )
        # One transaction: conversation, turns, the job's count and the audit record.
        self.conversations.commit_generation(
            generated,
            parsed.turns,
            JobItemWrite(
                tenant_id, job.job_id, conversation.conversation_id, "completed", call_cost
            ),
            audit=audit,
        )
        return "completed"

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
    ) -> None:
        entry = GenerationLog(
            tenant_id=job.tenant_id,
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
            cost_usd=call_cost,
            duration_ms=response.duration_ms if response else 0,
            error_message=error,
        )
        counted = self.jobs.record_spend(entry, job.job_id, conversation.dataset_id)
        if counted and call_cost:
            # The job as read at the start of this item plus this call: concurrent
            # items' spend shows up on the next item's read (one read saved per call).
            self._check_budget(job, job.cost_usd + call_cost)

    # ------------------------------------------------------------------ budget
    def _check_budget(self, job: Job, spent: float) -> None:
        if job.budget_usd is None or job.budget_usd <= 0:
            return
        percent = spent / job.budget_usd * 100
        for threshold in BUDGET_THRESHOLDS:
            if percent >= threshold:
                warning = BudgetWarning(
                    threshold_percent=threshold,
                    spent_usd=round(spent, 6),
                    budget_usd=job.budget_usd,
                )
                if self.jobs.mark_threshold(
                    job.tenant_id, job.job_id, threshold, warning.model_dump(mode="json")
                ):
                    self.notifier.publish(
                        NotificationMessage(
                            tenant_id=job.tenant_id,
                            kind="budget.warning",
                            job_id=job.job_id,
                            dataset_id=job.dataset_id,
                            subject=f"Budget {threshold}% used by generation job {job.job_id}",
                            body=(
                                f"Generation job {job.job_id} has spent ${spent:.4f} of its "
                                f"${job.budget_usd:.2f} budget ({percent:.0f}%).\n"
                                f"Dataset: {self.settings.app_base_url}/?dataset={job.dataset_id}"
                            ),
                        )
                    )
        if percent >= 100:
            self._pause_for_budget(job)

    def _pause_for_budget(self, job: Job) -> None:
        fresh = self.jobs.get(job.tenant_id, job.job_id)  # the cached view may predate a resume
        self._job_cache[(job.tenant_id, job.job_id)] = (time.monotonic(), fresh)
        if fresh.budget_usd is None or fresh.cost_usd < fresh.budget_usd:
            return
        paused = self.jobs.set_status(
            job.tenant_id,
            job.job_id,
            JobStatus.PAUSING,  # the finish step makes it "paused" once the Map drained
            expected=[JobStatus.RUNNING, JobStatus.QUEUED],
            pause_reason="budget",
        )
        if paused:
            fresh = self.jobs.get(job.tenant_id, job.job_id)
            self.notifier.publish(
                NotificationMessage(
                    tenant_id=job.tenant_id,
                    kind="budget.paused",
                    job_id=job.job_id,
                    dataset_id=job.dataset_id,
                    subject=f"Generation job {job.job_id} paused: budget reached",
                    body=(
                        f"Generation job {job.job_id} reached its budget of "
                        f"${(job.budget_usd or 0):.2f} (spent ${fresh.cost_usd:.4f}) and paused itself.\n"
                        f"{fresh.done} of {fresh.total} conversations are done. Raise the dataset's "
                        f"budget and resume the job to generate the rest.\n"
                        f"Dataset: {self.settings.app_base_url}/?dataset={job.dataset_id}"
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
        return self._fail(job, conversation, message)
