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
from datetime import datetime
from typing import Any, Literal

from chalicelib.config import Settings
from chalicelib.domain.dataset_rules import require_writable
from chalicelib.domain.errors import (
    BudgetExceededError,
    ConflictError,
    PermanentGenerationError,
    PromptTemplateError,
    RateLimitedError,
    TransientGenerationError,
    ValidationError,
)
from chalicelib.domain.models import (
    ACTIVE_JOB_STATUSES,
    GENERATABLE_STATUSES,
    Conversation,
    ConversationStatus,
    Dataset,
    Job,
    JobStatus,
    NotificationMessage,
    new_id,
    utcnow,
)
from chalicelib.generation.llm_client import LLMRequest
from chalicelib.generation.notifier import Notifier
from chalicelib.generation.service import GenerationService
from chalicelib.review.audit import AuditLog
from chalicelib.store.repositories import (
    ClaimOutcome,
    DynamoConversationRepository,
    DynamoDatasetRepository,
    DynamoJobRepository,
    JobItemWrite,
)

log = logging.getLogger(__name__)

BATCH_POLL_SECONDS = 30


class JobService:
    def __init__(
        self,
        settings: Settings,
        sfn: Any,
        state_machine_arn: str | None,
        datasets: DynamoDatasetRepository,
        conversations: DynamoConversationRepository,
        jobs: DynamoJobRepository,
        generation: GenerationService,
        notifier: Notifier,
        audit: AuditLog,
    ) -> None:
        self.settings = settings
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
                busy.update(i for i in job.conversation_ids if i not in done)
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

    # ------------------------------------------------------------------ estimate
    def estimate(
        self, tenant_id: str, dataset: Dataset, targets: Sequence[Conversation]
    ) -> dict[str, Any]:
        everything = self.conversations.list_for_dataset(tenant_id, dataset.dataset_id)
        return self.generation.estimate(tenant_id, dataset, targets, everything).as_dict()

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
        estimate = self.estimate(tenant_id, dataset, targets)
        if estimate["over_budget"] and not confirm:
            raise BudgetExceededError(
                "the estimated cost exceeds the dataset's remaining budget; "
                "send confirm: true to start anyway (the job pauses itself at the budget)",
                {"estimate": estimate},
            )
        remaining_budget = estimate["budget_remaining_usd"]
        if remaining_budget is not None and remaining_budget <= 0:
            raise BudgetExceededError(
                "the dataset's budget is used up; raise budget_usd to generate more",
                {"estimate": estimate},
            )
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
            estimated_seconds=estimate["estimated_seconds"],
            budget_usd=remaining_budget,
            max_concurrency=max(
                1, min(max_concurrency or self.settings.default_max_concurrency, 40)
            ),
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
        except Exception:
            return False
        return bool(status == "RUNNING")

    # ------------------------------------------------------------------ control
    def pause(self, tenant_id: str, actor: str, job_id: str) -> Job:
        # "pausing" until the running execution has drained (its finish step sets
        # "paused"), so a resume can never run two executions of one job at once.
        job = self.jobs.get(tenant_id, job_id)
        target = JobStatus.PAUSING if self._execution_alive(job) else JobStatus.PAUSED
        if not self.jobs.set_status(
            tenant_id,
            job_id,
            target,
            expected=[JobStatus.QUEUED, JobStatus.RUNNING],
            pause_reason="user",
        ):
            job = self.jobs.get(tenant_id, job_id)
            raise ConflictError(f"job is {job.status.value}; only a running job can be paused")
        self.audit.record(tenant_id, actor, "job.pause", "job", job_id)
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
        dataset = self.datasets.get(tenant_id, job.dataset_id)
        require_writable(dataset)  # archived: read-only, no generation
        budget = None
        if dataset.budget_usd is not None:
            left = dataset.budget_usd - dataset.spent_usd
            if left <= 0:
                raise BudgetExceededError(
                    "the dataset's budget is used up; raise budget_usd, then resume",
                    {"budget_usd": dataset.budget_usd, "spent_usd": dataset.spent_usd},
                )
            budget = round(job.cost_usd + left, 6)
        self.jobs.set_status(
            tenant_id,
            job_id,
            JobStatus.RUNNING,
            expected=[JobStatus.PAUSED, *active],
            pause_reason=None,
            budget_usd=budget,
        )
        self.audit.record(tenant_id, actor, "job.resume", "job", job_id, stalled=stuck)
        job = self.jobs.get(tenant_id, job_id)
        # No execution of this job is alive: claims left by a crashed one are void.
        self._release_unfinished(job)
        self._start_execution(job)
        return self.jobs.get(tenant_id, job_id)

    def cancel(self, tenant_id: str, actor: str, job_id: str) -> Job:
        if not self.jobs.set_status(
            tenant_id,
            job_id,
            JobStatus.CANCELLED,
            expected=[JobStatus.QUEUED, JobStatus.RUNNING, JobStatus.PAUSING, JobStatus.PAUSED],
            finished_at=utcnow(),
        ):
            job = self.jobs.get(tenant_id, job_id)
            raise ConflictError(f"job is already {job.status.value}")
        self.audit.record(tenant_id, actor, "job.cancel", "job", job_id)
        job = self.jobs.get(tenant_id, job_id)
        if not self._execution_alive(job):
            self._release_unfinished(job)
        return job

    def _remaining(self, job: Job) -> list[str]:
        done = self.jobs.item_outcomes(job.tenant_id, job.job_id)
        return [i for i in job.conversation_ids if i not in done]

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
            "max_concurrency": job.max_concurrency,
            "poll_seconds": self.batch_poll_seconds,
            "items": [],
            "run": False,
        }
        if job.status not in (JobStatus.QUEUED, JobStatus.RUNNING):
            return base
        self.jobs.set_status(
            tenant_id,
            job_id,
            JobStatus.RUNNING,
            expected=[JobStatus.QUEUED, JobStatus.RUNNING],
            started_at=job.started_at or utcnow(),
        )
        ids = self._remaining(job)[: self.settings.execution_chunk_size]
        # Each Map item carries its own keys (self-contained task input).
        items = [
            {"tenant_id": tenant_id, "job_id": job_id, "conversation_id": i, "claim": execution}
            for i in ids
        ]
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
            if chunk and chunk.issubset(remaining):
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
        existing = self.jobs.batch_id(tenant_id, job_id)
        if existing:  # a retried task: the batch was already submitted
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
        self.jobs.set_batch_id(tenant_id, job_id, batch_id)
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
            request, template, params = self.generation.build_request(conv, dataset, templates)
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
                )
            except (TransientGenerationError, PermanentGenerationError) as e:
                self.generation._fail(job, conv, str(e))
        for item in payload.get("items") or []:
            cid = item["conversation_id"]
            if cid not in seen:
                try:
                    conv = self.conversations.get(tenant_id, cid)
                except Exception:
                    continue
                if conv.status == ConversationStatus.GENERATING and conv.job_id == job_id:
                    self.generation._fail(job, conv, "missing from the batch results")
        judge_batch = self._submit_judge_batch(job, dataset, payload)
        if judge_batch:
            return {**payload, "batch_id": judge_batch, "batch_phase": "judge", "batch_done": False}
        return {**payload, "batch_done": True}

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
        existing = self.jobs.judge_batch(job.tenant_id, job.job_id)
        if existing:
            return existing["id"]  # a retried poll: already submitted
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
            job.tenant_id, job.job_id, {"id": batch_id, "at": utcnow().isoformat()}
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
        if spent:
            fresh = self.jobs.get(tenant_id, job_id)
            self.generation._check_budget(fresh, fresh.cost_usd)
        return {**payload, "batch_done": True}

    def _apply_verdict(
        self, conv: Conversation, turns: Any, dataset: Dataset, chunk_text: str | None, verdict: Any
    ) -> None:
        scored = self.generation.apply_quality(
            conv, turns, dataset, chunk_text=chunk_text, judge=False, verdict=verdict
        )
        self.conversations.save_quality(scored)
