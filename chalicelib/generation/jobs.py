"""Generation jobs: start, control and the workflow steps around the per-item work.

All job state lives in DynamoDB; the browser can close and come back. A job runs as a
chain of Step Functions executions of at most ``execution_chunk_size`` items each
(continue-as-new), so no execution nears the 25,000-event history limit, and a job
whose execution died (a crash, a restart of the local stack) resumes with only the
items that have no outcome yet.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any, Literal

from chalicelib.audit.log import AuditLog
from chalicelib.config import Settings
from chalicelib.domain.budget import resumed_job_budget, start_refusal, thresholds_still_reached
from chalicelib.domain.dataset_rules import require_writable
from chalicelib.domain.errors import (
    BudgetExceededError,
    ConflictError,
    PermanentGenerationError,
    PromptTemplateError,
    RateLimitedError,
    TransientGenerationError,
    UpstreamServiceError,
    ValidationError,
)
from chalicelib.domain.models import (
    ACTIVE_JOB_STATUSES,
    GENERATABLE_STATUSES,
    Conversation,
    ConversationStatus,
    Dataset,
    GenerationLog,
    Job,
    JobStatus,
    NotificationMessage,
    Tier,
    new_id,
    utcnow,
)
from chalicelib.domain.ports import (
    ClaimOutcome,
    ConversationSource,
    GenerationConversations,
    GenerationDatasets,
    JobItemWrite,
    JobStore,
    WorkItems,
)
from chalicelib.generation.concurrency import ConcurrencyControl
from chalicelib.generation.service import GenerationService, attempt_log_ref
from chalicelib.llm.client import LLMRequest
from chalicelib.notify.sns import Notifier
from chalicelib.planning.planner import match_chunks, scenario_from_text

log = logging.getLogger(__name__)

BATCH_POLL_SECONDS = 30
# How long a resume holds the job against other resumes while it starts its execution
# (far longer than a StartExecution call; a resume that crashed in between frees it then).
RESUME_LEASE_SECONDS = 60.0

ESTIMATE_SUMMARY_FIELDS = (
    "basis",
    "basis_scope",
    "observed_conversations",
    "estimated_cost_low_usd",
    "estimated_cost_high_usd",
    "estimated_seconds_low",
    "estimated_seconds_high",
    "per_tier",
    "output_tokens_per_conversation",  # what the output-token limit reserves per call
)


def job_estimate_summary(estimate: dict[str, Any], mode: str) -> dict[str, Any]:
    """What a job keeps of its start estimate: the basis and the range (in its mode)."""
    summary = {k: estimate.get(k) for k in ESTIMATE_SUMMARY_FIELDS if k in estimate}
    if mode == "economy":
        for key in ("estimated_cost_low_usd", "estimated_cost_high_usd"):
            economy = estimate.get(key.replace("cost_", "economy_cost_"))
            if economy is not None:
                summary[key] = economy
        for key in ("estimated_seconds_low", "estimated_seconds_high"):
            economy = estimate.get(key.replace("seconds_", "economy_seconds_"))
            if economy is not None:
                summary[key] = economy
    summary["mode"] = mode
    return summary


class JobService:
    def __init__(
        self,
        settings: Settings,
        sfn: Any,
        state_machine_arn: str | None,
        datasets: GenerationDatasets,
        conversations: GenerationConversations,
        jobs: JobStore,
        generation: GenerationService,
        notifier: Notifier,
        audit: AuditLog,
        conversation_source: ConversationSource | None = None,
        concurrency: ConcurrencyControl | None = None,
        work_items: WorkItems | None = None,
    ) -> None:
        self.settings = settings
        self.concurrency = concurrency
        self.work_items = work_items
        self.conversation_source = conversation_source
        self.sfn = sfn
        self.state_machine_arn = state_machine_arn
        self.datasets = datasets
        self.conversations = conversations
        self.jobs = jobs
        self.generation = generation
        self.notifier = notifier
        self.audit = audit
        self.batch_poll_seconds = settings.batch_poll_seconds or BATCH_POLL_SECONDS

    # ------------------------------------------------------------------ selection
    def _busy_ids(self, tenant_id: str) -> set[str]:
        """Items owned by a job that is still active (they must not run twice at once)."""
        busy: set[str] = set()
        for job in self.jobs.list_for_tenant(tenant_id):
            if job.status in ACTIVE_JOB_STATUSES:
                done = self.jobs.item_outcomes(tenant_id, job.job_id)
                busy.update(i for i in self.jobs.conversation_ids(job) if i not in done)
        return busy

    def select(
        self, tenant_id: str, ids: Sequence[str]
    ) -> tuple[list[Conversation], list[dict[str, str]]]:
        """Split requested ids into generatable conversations and per-id rejections."""
        found = self.conversations.get_many(tenant_id, ids)
        busy = self._busy_ids(tenant_id)
        ok: list[Conversation] = []
        rejected: list[dict[str, str]] = []
        for cid in dict.fromkeys(ids):
            conv = found.get(cid)
            if conv is None:
                rejected.append({"id": cid, "error": "not_found"})
            elif cid in busy or conv.status == ConversationStatus.GENERATING:
                rejected.append({"id": cid, "error": "already_generating"})
            elif conv.status not in GENERATABLE_STATUSES:
                rejected.append({"id": cid, "error": f"status_{conv.status.value}"})
            else:
                ok.append(conv)
        return ok, rejected

    # ------------------------------------------------------------------ scenario chunks
    def ground_scenarios(
        self,
        tenant_id: str,
        actor: str,
        dataset: Dataset,
        targets: Sequence[Conversation],
        everything: Sequence[Conversation],
        *,
        write: bool,
    ) -> list[Conversation]:
        """Scenario conversations planned before the dataset had chunks pick a matching
        chunk now (the planner's rule: agreeing dimensions, least used first), so a retry
        after importing chunks is grounded in them. ``write``: store the choice (a job
        starts, audited); otherwise only preview it (an estimate)."""
        bare = [t for t in targets if t.tier == Tier.SCENARIO and not t.chunk_id]
        if not bare or not dataset.chunk_count:
            return list(targets)
        chunks = self.datasets.list_chunks(tenant_id, dataset.dataset_id)
        chosen = match_chunks(chunks, bare, everything)
        out: list[Conversation] = []
        for conv in targets:
            chunk = chosen.get(conv.conversation_id)
            if chunk is None:
                out.append(conv)
                continue
            scenario = scenario_from_text(chunk.text)
            grounded = conv.model_copy(
                update={
                    "chunk_id": chunk.chunk_id,
                    "document_id": chunk.document_id,
                    "scenario": scenario,
                    "version": conv.version + 1,
                }
            )
            if write:
                if not self.conversations.assign_chunk(conv, chunk, scenario):
                    out.append(conv)  # changed meanwhile: the claim decides
                    continue
                self.audit.record(
                    tenant_id,
                    actor,
                    "conversation.assign_chunk",
                    "conversation",
                    conv.conversation_id,
                    before={"chunk_id": None, "scenario": conv.scenario},
                    after={
                        "chunk_id": chunk.chunk_id,
                        "document_id": chunk.document_id,
                        "scenario": scenario,
                    },
                    dataset_id=dataset.dataset_id,
                    reason="planned before the dataset had a matching chunk",
                )
            out.append(grounded)
        if write and chosen:
            self.datasets.bump_conversation_seq(tenant_id, dataset.dataset_id)
        return out

    # ------------------------------------------------------------------ estimate
    def _other_conversations(self, tenant_id: str, dataset_id: str) -> list[Conversation]:
        """The tenant's other datasets' conversations (for the template-based estimate
        of a dataset with too little history of its own)."""
        out: list[Conversation] = []
        for other in self.datasets.list_all(tenant_id):
            if other.dataset_id == dataset_id:
                continue
            if self.conversation_source is not None:
                out.extend(self.conversation_source.conversations(tenant_id, other.dataset_id))
            else:
                out.extend(self.conversations.list_for_dataset(tenant_id, other.dataset_id))
        return out

    def estimate(
        self,
        tenant_id: str,
        dataset: Dataset,
        targets: Sequence[Conversation],
        *,
        mode: Literal["standard", "economy"] = "standard",
        max_concurrency: int | None = None,
    ) -> dict[str, Any]:
        everything = self.conversations.list_for_dataset(tenant_id, dataset.dataset_id)
        targets = self.ground_scenarios(tenant_id, "", dataset, targets, everything, write=False)
        return self.generation.estimate(
            tenant_id,
            dataset,
            targets,
            everything,
            max_concurrency=max_concurrency,
            jobs=self.jobs.list_for_dataset(tenant_id, dataset.dataset_id),
            other_conversations=lambda: self._other_conversations(tenant_id, dataset.dataset_id),
            mode=mode,
        ).as_dict()

    # ------------------------------------------------------------------ start
    def start(
        self,
        tenant_id: str,
        actor: str,
        kind: Literal["single", "batch", "all"],
        targets: list[Conversation],
        dataset: Dataset,
        *,
        confirm: bool = False,
        mode: Literal["standard", "economy"] = "standard",
        max_concurrency: int | None = None,
        max_attempts: int | None = None,
        rejected: list[dict[str, str]] | None = None,
    ) -> tuple[Job, dict[str, Any]]:
        require_writable(dataset)  # archived: read-only, no generation
        if not targets:
            raise ValidationError(
                "nothing to generate: no eligible conversations",
                {"rejected": rejected or []},
            )
        if len(targets) > self.settings.max_job_conversations:
            raise ValidationError(
                f"a job may hold at most {self.settings.max_job_conversations} conversations",
                {"requested": len(targets)},
            )
        active = [
            j for j in self.jobs.list_for_tenant(tenant_id) if j.status in ACTIVE_JOB_STATUSES
        ]
        if len(active) >= self.settings.max_active_jobs_per_tenant:
            raise RateLimitedError(
                f"{len(active)} jobs are already running; wait for one to finish", retry_after=30
            )
        everything = self.conversations.list_for_dataset(tenant_id, dataset.dataset_id)
        targets = self.ground_scenarios(tenant_id, actor, dataset, targets, everything, write=True)
        # An optional cap: without one the job follows the account's limits and latency.
        cap = max_concurrency or self.settings.default_max_concurrency
        cap = max(1, min(cap, self.settings.generation_max_in_flight)) if cap else None
        estimate = self.generation.estimate(
            tenant_id,
            dataset,
            targets,
            everything,
            max_concurrency=cap,
            jobs=self.jobs.list_for_dataset(tenant_id, dataset.dataset_id),
            other_conversations=lambda: self._other_conversations(tenant_id, dataset.dataset_id),
            mode=mode,
        ).as_dict()
        remaining_budget = estimate["budget_remaining_usd"]
        refusal = start_refusal(estimate["over_budget"], remaining_budget, confirm)
        if refusal is not None:
            raise BudgetExceededError(refusal, {"estimate": estimate})
        job = Job(
            tenant_id=tenant_id,
            dataset_id=dataset.dataset_id,
            kind=kind,
            mode=mode,
            conversation_ids=[c.conversation_id for c in targets],
            total=len(targets),
            estimated_cost_usd=estimate[
                "estimated_economy_cost_usd" if mode == "economy" else "estimated_cost_usd"
            ],
            estimated_seconds=estimate[
                "estimated_economy_seconds" if mode == "economy" else "estimated_seconds"
            ],
            estimate=job_estimate_summary(estimate, mode),
            budget_usd=remaining_budget,
            max_concurrency=cap,
            concurrency=self._first_plan(tenant_id, dataset, everything, cap, estimate),
            max_attempts=max(1, min(max_attempts or self.settings.default_max_attempts, 6)),
            created_by=actor,
        )
        self.jobs.create(job)
        self.audit.record(
            tenant_id,
            actor,
            "job.start",
            "job",
            job.job_id,
            after={
                "kind": kind,
                "mode": mode,
                "total": job.total,
                "estimated_cost_usd": job.estimated_cost_usd,
            },
            dataset_id=dataset.dataset_id,
            confirm=confirm,
        )
        self._start_execution(job)
        return self.jobs.get(tenant_id, job.job_id), estimate

    def _first_plan(
        self,
        tenant_id: str,
        dataset: Dataset,
        everything: Sequence[Conversation],
        cap: int | None,
        estimate: dict[str, Any],
    ) -> dict[str, Any]:
        """The in-flight plan before any call of the job: the account rate and the
        latency of the dataset's earlier calls of the same model."""
        model = self.generation.model_for(dataset)
        seconds = [
            c.generation_duration_ms / 1000.0
            for c in everything
            if c.generation_duration_ms and (c.model or model) == model
        ]
        history = round(sum(seconds) / len(seconds), 3) if seconds else None
        plan: dict[str, Any] = {"model": model, "history_latency_s": history}
        if self.concurrency is not None:
            draft = Job(
                tenant_id=tenant_id,
                dataset_id=dataset.dataset_id,
                kind="all",
                max_concurrency=cap,
                estimate={
                    "output_tokens_per_conversation": estimate.get("output_tokens_per_conversation")
                },
            )
            plan = self.concurrency.plan(draft, model, history)
        return plan

    def describe(self, tenant_id: str, job_id: str) -> Job:
        """The job with its live concurrency: target, calls in flight, what limits it."""
        job = self.jobs.get(tenant_id, job_id)
        if self.concurrency is None:
            return job
        if job.status not in ACTIVE_JOB_STATUSES:
            plan = dict(job.concurrency or {})
            plan["in_flight"] = 0
            return job.model_copy(update={"concurrency": plan})
        view = {**(job.concurrency or {}), **self.concurrency.view(job)}
        return job.model_copy(update={"concurrency": view})

    def _start_execution(self, job: Job) -> None:
        if not self.state_machine_arn:
            raise ConflictError("the generation workflow is not configured (STATE_MACHINE_ARN)")
        name = f"{job.job_id}-{len(job.execution_arns) + 1}-{new_id('x')[2:10]}"
        response = self.sfn.start_execution(
            stateMachineArn=self.state_machine_arn,
            name=name,
            # The execution name is the claim token of the items it generates.
            input=json.dumps({"tenant_id": job.tenant_id, "job_id": job.job_id, "execution": name}),
        )
        self.jobs.append_execution(job.tenant_id, job.job_id, response["executionArn"])

    def _execution_alive(self, job: Job) -> bool:
        if not job.execution_arns:
            return False
        try:
            status = self.sfn.describe_execution(executionArn=job.execution_arns[-1])["status"]
        except Exception as e:  # botocore's ClientError; the store alone imports botocore
            code = (getattr(e, "response", None) or {}).get("Error", {}).get("Code")
            if code == "ExecutionDoesNotExist":
                return False
            # Unknown is not dead: taking it for dead would start a second execution
            # beside a live one. The caller (Resume, the stalled-job check) retries.
            raise UpstreamServiceError(
                f"Step Functions could not say whether the job's workflow runs: {e}"
            ) from e
        return bool(status == "RUNNING")

    # ------------------------------------------------------------------ control
    def pause(self, tenant_id: str, actor: str, job_id: str) -> Job:
        # "pausing" until the running execution has drained (its finish step sets
        # "paused"), so a resume can never run two executions of one job at once.
        job = self.jobs.get(tenant_id, job_id)
        alive = self._execution_alive(job)
        target = JobStatus.PAUSING if alive else JobStatus.PAUSED
        if not self.jobs.set_status(
            tenant_id,
            job_id,
            target,
            expected=[JobStatus.QUEUED, JobStatus.RUNNING],
            pause_reason="user",
        ):
            job = self.jobs.get(tenant_id, job_id)
            raise ConflictError(f"job is {job.status.value}; only a running job can be paused")
        self.audit.record(
            tenant_id,
            actor,
            "job.pause",
            "job",
            job_id,
            before={"status": job.status.value},
            after={"status": target.value, "pause_reason": "user"},
        )
        if not alive:
            self._settle_dead_claims(job)
            self._release_unfinished(job)
        return self.jobs.get(tenant_id, job_id)

    def resume(self, tenant_id: str, actor: str, job_id: str) -> Job:
        job = self.jobs.get(tenant_id, job_id)
        active = (JobStatus.RUNNING, JobStatus.QUEUED, JobStatus.PAUSING)
        alive = self._execution_alive(job)
        stuck = job.status in active and not alive
        if job.status in (JobStatus.PAUSING, JobStatus.PAUSED) and alive:
            raise ConflictError(
                "the job is still pausing (finishing the conversations in flight); "
                "try again in a few seconds"
            )
        if job.status != JobStatus.PAUSED and not stuck:
            raise ConflictError(
                f"job is {job.status.value}; only a paused or stalled job can be resumed"
            )
        lease_from = utcnow() - timedelta(seconds=RESUME_LEASE_SECONDS)
        if job.resume_started_at is not None and job.resume_started_at > lease_from:
            # Another resume changed the status and is starting the execution: its
            # execution is not listed yet, so this one would take the job for dead.
            raise ConflictError("the job is being resumed; reload it in a few seconds")
        # No execution of this job is alive: calls it left in flight may have been
        # billed; they are charged at their estimate (once) before the budget check.
        settled = self._settle_dead_claims(job)
        job = self.jobs.get(tenant_id, job_id)
        dataset = self.datasets.get(tenant_id, job.dataset_id)
        require_writable(dataset)  # archived: read-only, no generation
        try:
            budget = resumed_job_budget(job.cost_usd, dataset.budget_usd, dataset.spent_usd)
        except ValueError as used_up:
            raise BudgetExceededError(
                str(used_up), {"budget_usd": dataset.budget_usd, "spent_usd": dataset.spent_usd}
            ) from used_up
        if not self.jobs.set_status(
            tenant_id,
            job_id,
            JobStatus.RUNNING,
            expected=[JobStatus.PAUSED, *active],
            executions=len(job.execution_arns),  # nobody revived it meanwhile
            resume_lease_seconds=RESUME_LEASE_SECONDS,  # nor is reviving it now
            pause_reason=None,
            budget_usd=budget,
            # Warnings are relative to the budget: the ones not reached under the new
            # budget are given again when the job gets there.
            warned_thresholds=thresholds_still_reached(job.cost_usd, budget),
        ):
            raise ConflictError("the job was resumed or changed meanwhile; reload it")
        self.audit.record(
            tenant_id,
            actor,
            "job.resume",
            "job",
            job_id,
            before={"status": job.status.value, "budget_usd": job.budget_usd},
            after={"status": JobStatus.RUNNING.value, "budget_usd": budget},
            stalled=stuck,
            estimated_charges=settled,
        )
        job = self.jobs.get(tenant_id, job_id)
        # No execution of this job is alive: claims left by a crashed one are void.
        self._release_unfinished(job)
        try:
            self._start_execution(job)
        except Exception:
            self.jobs.end_resume(tenant_id, job_id)
            raise
        return self.jobs.get(tenant_id, job_id)

    def cancel(self, tenant_id: str, actor: str, job_id: str) -> Job:
        before = self.jobs.get(tenant_id, job_id)
        if not self.jobs.set_status(
            tenant_id,
            job_id,
            JobStatus.CANCELLED,
            expected=[JobStatus.QUEUED, JobStatus.RUNNING, JobStatus.PAUSING, JobStatus.PAUSED],
            finished_at=utcnow(),
        ):
            job = self.jobs.get(tenant_id, job_id)
            raise ConflictError(f"job is already {job.status.value}")
        self.audit.record(
            tenant_id,
            actor,
            "job.cancel",
            "job",
            job_id,
            before={"status": before.status.value},
            after={"status": JobStatus.CANCELLED.value},
        )
        job = self.jobs.get(tenant_id, job_id)
        if not self._execution_alive(job):
            self._settle_dead_claims(job)
            self._release_unfinished(job)
        return job

    # ------------------------------------------------------------------ stalled jobs
    def _settle_dead_claims(self, job: Job) -> list[dict[str, Any]]:
        """Charge, at its estimate, the call each item of a dead execution may have had
        in flight: an item still ``generating`` under this job whose current attempt has
        no logged call. The charge takes the attempt's own log key, so it is counted
        once however often this runs, and never on top of a call that was logged."""
        remaining = self._remaining(job)
        if not remaining:
            return []
        claims = {arn.rsplit(":", 1)[-1] for arn in job.execution_arns} | {job.job_id}
        charged: list[dict[str, Any]] = []
        found = self.conversations.get_many(job.tenant_id, remaining)
        for cid in remaining:
            conv = found.get(cid)
            if (
                conv is None
                or conv.status != ConversationStatus.GENERATING
                or conv.job_id != job.job_id
                or (conv.claim_token or job.job_id) not in claims
            ):
                continue
            ref = attempt_log_ref(conv)
            estimate = GenerationService.call_estimate(job, conv)
            entry = GenerationLog(
                tenant_id=job.tenant_id,
                log_id=ref.log_id,
                created_at=ref.created_at,
                claim_token=ref.claim_token,
                attempt=ref.attempt,
                billing="estimated",
                conversation_id=cid,
                job_id=job.job_id,
                run_id=None,
                model=conv.model or self.settings.model,
                parameters={"purpose": "generation", "recovered": True},
                cost_usd=round(estimate, 8),
                error_message=(
                    "the workflow execution stopped while this call may have been in "
                    "flight; no answer was recorded, so it is charged at its estimate"
                ),
            )
            if self.jobs.record_spend(entry, job.job_id, job.dataset_id):
                charged.append({"conversation_id": cid, "cost_usd": entry.cost_usd})
        if charged:
            self.audit.record(
                job.tenant_id,
                "system",
                "job.charge_estimated",
                "job",
                job.job_id,
                after={
                    "charges": charged,
                    "total_usd": round(sum(c["cost_usd"] for c in charged), 6),
                },
                dataset_id=job.dataset_id,
            )
        return charged

    def recover_stalled(
        self, tenant_id: str | None = None, grace_seconds: float | None = None
    ) -> list[dict[str, Any]]:
        """The stalled-job check: every queued/running/pausing job (of one tenant, or of
        all) whose newest execution is no longer running, and that has not changed for
        ``stalled_grace_seconds``, is resumed (or, if it was pausing, paused), through
        the same path as Resume. Safe to run concurrently and repeatedly."""
        if tenant_id is None:
            keys = self.jobs.active_jobs_all_tenants()
        else:
            keys = [
                (tenant_id, j.job_id)
                for j in self.jobs.list_for_tenant(tenant_id)
                if j.status in ACTIVE_JOB_STATUSES
            ]
        results: list[dict[str, Any]] = []
        for tenant, job_id in keys:
            try:
                outcome = self.recover_job(tenant, job_id, grace_seconds)
            except Exception:  # one broken job must not stop the others' recovery
                log.exception("stalled-job check failed for %s/%s", tenant, job_id)
                outcome = "error"
            results.append({"tenant_id": tenant, "job_id": job_id, "outcome": outcome})
        return results

    def recover_job(self, tenant_id: str, job_id: str, grace_seconds: float | None = None) -> str:
        job = self.jobs.get(tenant_id, job_id)
        if job.status not in ACTIVE_JOB_STATUSES:
            return "not_active"
        grace = self.settings.stalled_grace_seconds if grace_seconds is None else grace_seconds
        quiet_since = utcnow() - timedelta(seconds=grace)
        if job.updated_at > quiet_since:
            return "recent"
        if self._execution_alive(job):
            return "alive"
        if job.status == JobStatus.PAUSING:
            # The pause was asked for; the drain that would finish it died with the
            # execution: finish it here instead of resuming.
            settled = self._settle_dead_claims(job)
            if not self.jobs.set_status(
                tenant_id,
                job_id,
                JobStatus.PAUSED,
                expected=[JobStatus.PAUSING],
                executions=len(job.execution_arns),
            ):
                return "busy"
            self._release_unfinished(job)
            self.audit.record(
                tenant_id,
                "system",
                "job.recover",
                "job",
                job_id,
                before={"status": job.status.value},
                after={"status": JobStatus.PAUSED.value},
                estimated_charges=settled,
                dead_execution=job.execution_arns[-1] if job.execution_arns else None,
            )
            return "paused"
        try:
            self.resume(tenant_id, "system", job_id)
        except BudgetExceededError:
            if self.jobs.set_status(
                tenant_id,
                job_id,
                JobStatus.PAUSED,
                expected=list(ACTIVE_JOB_STATUSES),
                executions=len(job.execution_arns),
                pause_reason="budget",
            ):
                self._release_unfinished(job)
                self.audit.record(
                    tenant_id,
                    "system",
                    "job.pause",
                    "job",
                    job_id,
                    before={"status": job.status.value},
                    after={"status": JobStatus.PAUSED.value, "pause_reason": "budget"},
                    reason="budget",
                    recovered=True,
                )
            return "paused_budget"
        except ConflictError:
            return "busy"
        self.audit.record(
            tenant_id,
            "system",
            "job.recover",
            "job",
            job_id,
            before={"status": job.status.value},
            after={"status": JobStatus.RUNNING.value},
            dead_execution=job.execution_arns[-1] if job.execution_arns else None,
        )
        return "resumed"

    def _remaining(self, job: Job) -> list[str]:
        done = self.jobs.item_outcomes(job.tenant_id, job.job_id)
        return [i for i in self.jobs.conversation_ids(job) if i not in done]

    def _release_unfinished(self, job: Job) -> None:
        for cid in self._remaining(job):
            self.conversations.release_claim(job.tenant_id, cid, job.job_id)
        self.datasets.bump_conversation_seq(job.tenant_id, job.dataset_id)

    # ------------------------------------------------------------------ workflow steps
    def prepare(self, tenant_id: str, job_id: str, execution: str = "") -> dict[str, Any]:
        job = self.jobs.get(tenant_id, job_id)
        base = {
            "tenant_id": tenant_id,
            "job_id": job_id,
            "execution": execution,
            "mode": job.mode,
            "max_concurrency": job.max_concurrency or self.settings.generation_max_in_flight,
            "poll_seconds": self.batch_poll_seconds,
            "items": [],
            "distributed": False,
            "run": False,
        }
        if job.status not in (JobStatus.QUEUED, JobStatus.RUNNING):
            return base
        plan: dict[str, Any] = {}
        if self.concurrency is not None:
            # Nothing of this job is in flight between executions; the plan is built on
            # what the last execution observed (latency, answer length, back-off).
            self.concurrency.reset_job(job)
            plan = self.concurrency.plan(
                job,
                (job.concurrency or {}).get("model") or self.settings.model,
                (job.concurrency or {}).get("history_latency_s"),
            )
            base["max_concurrency"] = plan["target"]
        fields: dict[str, Any] = {"started_at": job.started_at or utcnow()}
        if plan:
            fields["concurrency"] = plan
        self.jobs.set_status(
            tenant_id,
            job_id,
            JobStatus.RUNNING,
            expected=[JobStatus.QUEUED, JobStatus.RUNNING],
            **fields,
        )
        remaining = self._remaining(job)
        distributed = (
            job.mode == "standard"
            and self.work_items is not None
            and len(remaining) >= self.settings.distributed_map_min_items
        )
        size = (
            self.settings.distributed_chunk_size
            if distributed
            else self.settings.execution_chunk_size
        )
        ids = remaining[:size]
        # Each Map item carries its own keys (self-contained task input).
        items = [
            {"tenant_id": tenant_id, "job_id": job_id, "conversation_id": i, "claim": execution}
            for i in ids
        ]
        if distributed and items and self.work_items is not None:
            bucket, key = self.work_items.put_items(tenant_id, job_id, execution, items)
            return {
                **base,
                "distributed": True,
                "item_reader": {"Bucket": bucket, "Key": key},
                "chunk_size": len(items),
                "done_before": job.done,
                "run": True,
            }
        return {**base, "items": items, "run": bool(items)}

    def finish(self, payload: dict[str, Any]) -> dict[str, Any]:
        tenant_id, job_id = payload["tenant_id"], payload["job_id"]
        job = self.jobs.get(tenant_id, job_id)
        execution = payload.get("execution") or ""
        if (
            execution
            and job.execution_arns
            and not job.execution_arns[-1].endswith(":" + execution)
        ):
            # A newer execution of this job (a resume) owns its state now.
            return {"tenant_id": tenant_id, "job_id": job_id, "notify": False, "kind": "superseded"}
        remaining = self._remaining(job)
        result: dict[str, Any] = {
            "tenant_id": tenant_id,
            "job_id": job_id,
            "notify": False,
            "kind": "none",
        }
        if job.status == JobStatus.RUNNING and remaining:
            chunk = {i["conversation_id"] for i in payload.get("items") or []}
            stalled = chunk and chunk.issubset(remaining)
            if payload.get("distributed"):  # its items are in S3: compare the counts
                stalled = job.done <= int(payload.get("done_before", job.done))
            if stalled:
                # No item of this execution got an outcome: stop instead of looping.
                self.jobs.set_status(
                    tenant_id,
                    job_id,
                    JobStatus.FAILED,
                    finished_at=utcnow(),
                    error_message="no progress in the last execution",
                )
                job = self.jobs.get(tenant_id, job_id)
                return self._summary(job, result, "job.failed")
            self._start_execution(job)  # continue as a new execution
            return {**result, "continued": True}
        if job.status == JobStatus.RUNNING:
            self.jobs.set_status(tenant_id, job_id, JobStatus.COMPLETED, finished_at=utcnow())
            job = self.jobs.get(tenant_id, job_id)
            return self._summary(job, result, "job.completed")
        if job.status == JobStatus.CANCELLED:
            self._release_unfinished(job)
            return self._summary(job, result, "job.cancelled")
        # Paused (by a user or the budget): the Map has drained, nothing is in flight.
        self.jobs.set_status(tenant_id, job_id, JobStatus.PAUSED, expected=[JobStatus.PAUSING])
        self._release_unfinished(job)  # unstarted items stay for resume
        return result

    def _summary(self, job: Job, result: dict[str, Any], kind: str) -> dict[str, Any]:
        link = f"{self.settings.app_base_url}/?dataset={job.dataset_id}&job={job.job_id}"
        verb = {"job.completed": "complete", "job.cancelled": "cancelled", "job.failed": "failed"}[
            kind
        ]
        subject = f"Generation {verb}: {job.completed} of {job.total} conversations generated"
        lines = [
            f"Your generation job {job.job_id} is {verb}.",
            "",
            f"Generated: {job.completed}",
            f"Failed:    {job.failed}",
            f"Skipped:   {job.skipped}",
            f"Not run:   {job.total - job.done}",
            f"Cost:      ${job.cost_usd:.4f} (estimated ${job.estimated_cost_usd:.4f})",
        ]
        if job.started_at and job.finished_at:
            lines.append(f"Duration:  {(job.finished_at - job.started_at).total_seconds():.0f} s")
        if job.failed:
            lines.append(
                "Failed conversations can be regenerated with Generate All -> only failed."
            )
        if job.error_message:
            lines.append(f"Error:     {job.error_message}")
        lines += ["", f"Review them: {link}"]
        body = "\n".join(lines)
        self.notifier.store(
            NotificationMessage(
                tenant_id=job.tenant_id,
                kind=kind,
                job_id=job.job_id,
                dataset_id=job.dataset_id,
                subject=subject,
                body=body,
            )
        )
        return {**result, "notify": True, "kind": kind, "subject": subject[:100], "message": body}

    # ------------------------------------------------------------------ economy (batches)
    def submit_batch(self, payload: dict[str, Any]) -> dict[str, Any]:
        tenant_id, job_id = payload["tenant_id"], payload["job_id"]
        job = self.jobs.get(tenant_id, job_id)
        execution = payload.get("execution") or None
        existing = self.jobs.batch_id(tenant_id, job_id, execution)
        if existing:  # a retried task: this execution already submitted its batch
            return {**payload, "batch_id": existing, "batch_done": False}
        dataset = self.datasets.get(tenant_id, job.dataset_id)
        templates = self.generation.templates.active_for_generation(tenant_id)
        requests: list[tuple[str, LLMRequest]] = []
        for item in payload.get("items") or []:
            cid = item["conversation_id"]
            outcome, conv = self.conversations.claim_for_generation(
                tenant_id, cid, job_id, item.get("claim", "")
            )
            if outcome is ClaimOutcome.INELIGIBLE or conv is None:
                self.jobs.record_item(JobItemWrite(tenant_id, job_id, cid, "skipped"))
                continue
            if outcome is ClaimOutcome.ALREADY_DONE:
                continue
            try:
                request, _, _ = self.generation.build_request(conv, dataset, templates)
            except PromptTemplateError as e:
                self.generation._fail(job, conv, str(e))
                continue
            requests.append((cid, request))
        if not requests:
            return {**payload, "batch_id": None, "batch_done": True}
        batch_id = self.generation.llm.submit_batch(requests)
        self.jobs.set_batch_id(tenant_id, job_id, batch_id, execution)
        return {**payload, "batch_id": batch_id, "batch_done": False}

    def poll_batch(self, payload: dict[str, Any]) -> dict[str, Any]:
        tenant_id, job_id = payload["tenant_id"], payload["job_id"]
        batch_id = payload.get("batch_id")
        if not batch_id:
            return {**payload, "batch_done": True}
        if payload.get("batch_phase") == "judge":
            return self._poll_judge_batch(payload)
        status = self.generation.llm.batch_status(batch_id)
        if not status.ended:
            return {**payload, "batch_done": False}
        job = self.jobs.get(tenant_id, job_id)
        dataset = self.datasets.get(tenant_id, job.dataset_id)
        templates = self.generation.templates.active_for_generation(tenant_id)
        seen: set[str] = set()
        again: list[tuple[str, LLMRequest]] = []
        for cid, response, error in self.generation.llm.batch_results(batch_id):
            seen.add(cid)
            try:
                conv = self.conversations.get(tenant_id, cid)
            except Exception:
                continue
            if conv.status != ConversationStatus.GENERATING or conv.job_id != job_id:
                continue  # stored by an earlier poll
            if response is None:
                self.generation._fail(job, conv, error or "batch request failed")
                continue
            retry = self.generation.retry_plan(job, conv, dataset)
            request, template, params = self.generation.build_request(
                conv, dataset, templates, retry
            )
            try:
                self.generation.store_response(
                    job,
                    conv,
                    dataset,
                    request,
                    template,
                    params,
                    response,
                    new_id("run"),
                    batch=True,
                    log_ref=attempt_log_ref(conv),
                    retry_bad_answers=conv.generation_attempts < job.max_attempts,
                )
            except TransientGenerationError:
                # A malformed or truncated answer with attempts left: asked again in a
                # follow-up batch of this execution (more room for a truncated one).
                retried = self._reclaim_for_batch(job, conv, dataset, templates, payload)
                if retried is not None:
                    again.append(retried)
            except PermanentGenerationError as e:
                self.generation._fail(job, conv, str(e))
        for item in payload.get("items") or []:
            cid = item["conversation_id"]
            if cid not in seen:
                try:
                    conv = self.conversations.get(tenant_id, cid)
                except Exception:
                    continue
                if conv.status == ConversationStatus.GENERATING and conv.job_id == job_id:
                    if any(r[0] == cid for r in again):
                        continue
                    self.generation._fail(job, conv, "missing from the batch results")
        if again:
            follow_up = self.generation.llm.submit_batch(again)
            self.jobs.set_batch_id(tenant_id, job_id, follow_up, payload.get("execution"))
            return {**payload, "batch_id": follow_up, "batch_done": False}
        judge_batch = self._submit_judge_batch(job, dataset, payload)
        if judge_batch:
            return {**payload, "batch_id": judge_batch, "batch_phase": "judge", "batch_done": False}
        return {**payload, "batch_done": True}

    def _reclaim_for_batch(
        self,
        job: Job,
        conv: Conversation,
        dataset: Dataset,
        templates: Sequence[Any],
        payload: dict[str, Any],
    ) -> tuple[str, LLMRequest] | None:
        claim = next(
            (
                i.get("claim", "")
                for i in payload.get("items") or []
                if i["conversation_id"] == conv.conversation_id
            ),
            conv.claim_token or "",
        )
        outcome, claimed = self.conversations.claim_for_generation(
            job.tenant_id, conv.conversation_id, job.job_id, claim
        )
        if outcome is not ClaimOutcome.CLAIMED or claimed is None:
            return None
        retry = self.generation.retry_plan(job, claimed, dataset)
        try:
            request, _, _ = self.generation.build_request(claimed, dataset, templates, retry)
        except PromptTemplateError as e:
            self.generation._fail(job, claimed, str(e))
            return None
        return conv.conversation_id, request

    # ------------------------------------------------------------------ economy judging
    def _to_judge(self, job: Job, dataset: Dataset, payload: dict[str, Any]) -> list[Any]:
        """(conversation, turns, chunk text) of this chunk's stored conversations that have
        no verdict yet: recomputed on a retried poll, so none is skipped or judged twice."""
        gen = self.generation
        out = []
        for item in payload.get("items") or []:
            try:
                conv = self.conversations.get(job.tenant_id, item["conversation_id"])
            except Exception:
                continue
            if conv.status != ConversationStatus.GENERATED or conv.job_id != job.job_id:
                continue
            if conv.quality is not None and conv.quality.judge is not None:
                continue
            turns = self.conversations.get_turns(job.tenant_id, conv.conversation_id)
            if turns:
                out.append((conv, turns, gen._chunk_text(conv, dataset)))
        return out

    def _submit_judge_batch(
        self, job: Job, dataset: Dataset, payload: dict[str, Any]
    ) -> str | None:
        """Economy mode judges through a Message Batch of its own, after the generation
        batch (a verdict needs the conversation first). Cached verdicts apply at once."""
        judge = self.generation.judge
        if judge is None or not judge.enabled_for(dataset):
            return None
        execution = str(payload.get("execution") or "")
        existing = self.jobs.judge_batch(job.tenant_id, job.job_id)
        if existing and existing.get("execution", "") == execution:
            return existing["id"]  # a retried poll: this execution already submitted it
        from chalicelib.quality import judge as rubric

        requests: list[tuple[str, LLMRequest]] = []
        for conv, turns, chunk_text in self._to_judge(job, dataset, payload):
            data, digest = judge.prepare(conv, turns, dataset, chunk_text)
            hit = judge.cached(job.tenant_id, digest)
            if hit is not None:
                self._apply_verdict(conv, turns, dataset, chunk_text, hit)
                continue
            requests.append((conv.conversation_id, rubric.judge_request(data, judge.model)))
        if not requests:
            return None
        batch_id = self.generation.llm.submit_batch(requests)
        self.jobs.set_judge_batch(
            job.tenant_id,
            job.job_id,
            {"id": batch_id, "at": utcnow().isoformat(), "execution": execution},
        )
        return batch_id

    def _poll_judge_batch(self, payload: dict[str, Any]) -> dict[str, Any]:
        tenant_id, job_id = payload["tenant_id"], payload["job_id"]
        batch_id = str(payload["batch_id"])
        if not self.generation.llm.batch_status(batch_id).ended:
            return {**payload, "batch_done": False}
        judge = self.generation.judge
        job = self.jobs.get(tenant_id, job_id)
        dataset = self.datasets.get(tenant_id, job.dataset_id)
        stored = self.jobs.judge_batch(tenant_id, job_id) or {}
        at = datetime.fromisoformat(stored["at"]) if stored.get("at") else utcnow()
        pending = {
            c.conversation_id: (c, t, x) for c, t, x in self._to_judge(job, dataset, payload)
        }
        from chalicelib.quality import judge as rubric

        spent = 0.0
        for cid, response, error in self.generation.llm.batch_results(batch_id):
            if cid not in pending or judge is None:
                continue  # applied by an earlier poll, or no longer this job's
            conv, turns, chunk_text = pending.pop(cid)
            data, digest = judge.prepare(conv, turns, dataset, chunk_text)
            if response is None:
                verdict = judge._failed(digest, error or "the judge's batch request failed")
            else:
                # One log per answer, keyed by the answer itself: a retried poll bills none twice.
                key = (f"log_judge_{response.message_id or batch_id + cid}", at)
                request = rubric.judge_request(data, judge.model)
                verdict = judge.record(
                    conv, dataset, request, response, digest, job_id=job_id, batch=True, log_key=key
                )
                spent += verdict.cost_usd
            self._apply_verdict(conv, turns, dataset, chunk_text, verdict)
        if judge is not None:
            # Not in the batch because a cached verdict applied at submit time; a poll
            # retried after that write was lost applies it again.
            for conv, turns, chunk_text in pending.values():
                _, digest = judge.prepare(conv, turns, dataset, chunk_text)
                hit = judge.cached(tenant_id, digest)
                if hit is not None:
                    self._apply_verdict(conv, turns, dataset, chunk_text, hit)
        if spent:
            self.generation.enforce_budget(tenant_id, job_id)
        return {**payload, "batch_done": True}

    def _apply_verdict(
        self, conv: Conversation, turns: Any, dataset: Dataset, chunk_text: str | None, verdict: Any
    ) -> None:
        scored = self.generation.apply_quality(
            conv, turns, dataset, chunk_text=chunk_text, judge=False, verdict=verdict
        )
        self.conversations.save_quality(scored)
