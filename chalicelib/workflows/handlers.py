"""Step Functions task handlers: validated payload -> one service call.

Exceptions propagate with their class name as the Lambda ``errorType``; the ASL
retries ``TransientGenerationError`` / ``ProviderRateLimitError`` and catches the rest.

Each handler is wrapped by ``workflow_handler``: in Lambda it is traced, its metrics
(namespace BrightRun) are flushed when it returns or raises, and its log lines carry
tenant_id/job_id/conversation_id; locally the wrapper is a plain call.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, Field

from chalicelib.bootstrap import get_container
from chalicelib.observability import get_observability, workflow_handler


class JobPayload(BaseModel):
    tenant_id: str = Field(min_length=1)
    job_id: str = Field(min_length=1)
    execution: str = ""  # the execution name: claim token of its items


class ItemPayload(JobPayload):
    conversation_id: str = Field(min_length=1)
    claim: str = ""
    retry_count: int = 0
    error: dict[str, Any] | None = None


def _job_keys(p: JobPayload) -> None:
    get_observability().logger.append_keys(tenant_id=p.tenant_id, job_id=p.job_id)


@workflow_handler
def prepare_job(event: dict[str, Any]) -> dict[str, Any]:
    p = JobPayload.model_validate(event)
    _job_keys(p)
    return get_container().jobs.prepare(p.tenant_id, p.job_id, p.execution)


@workflow_handler
def generate_item(event: dict[str, Any]) -> dict[str, Any]:
    p = ItemPayload.model_validate(event)
    obs = get_observability()
    obs.logger.append_keys(
        tenant_id=p.tenant_id, job_id=p.job_id, conversation_id=p.conversation_id
    )
    outcome = get_container().generation.generate_item(
        p.tenant_id, p.job_id, p.conversation_id, p.retry_count, p.claim
    )
    if outcome == "completed":
        obs.count("ConversationsGenerated")
    elif outcome == "failed":  # a permanent error, recorded without the Catch path
        obs.count("GenerationFailed")
    obs.logger.info("item done", extra={"outcome": outcome, "retry_count": p.retry_count})
    return {"conversation_id": p.conversation_id, "outcome": outcome}


@workflow_handler
def record_item_failure(event: dict[str, Any]) -> dict[str, Any]:
    p = ItemPayload.model_validate(event)
    obs = get_observability()
    obs.logger.append_keys(
        tenant_id=p.tenant_id, job_id=p.job_id, conversation_id=p.conversation_id
    )
    outcome = get_container().generation.record_item_failure(
        p.tenant_id, p.job_id, p.conversation_id, p.error
    )
    if outcome == "failed":
        obs.count("GenerationFailed")
    obs.logger.warning("item failed", extra={"error": p.error, "outcome": outcome})
    return {"conversation_id": p.conversation_id, "outcome": outcome}


@workflow_handler
def finish_job(event: dict[str, Any]) -> dict[str, Any]:
    p = JobPayload.model_validate(event)
    _job_keys(p)
    container = get_container()
    result = container.jobs.finish(event)
    obs = get_observability()
    if obs.in_lambda and result.get("notify"):  # the job reached its end: bill it once
        job = container.job_repo.get(p.tenant_id, p.job_id)
        obs.measure("CostUSD", round(job.cost_usd, 6))
        obs.count("JobsFinished")
        obs.logger.info(
            "job finished",
            extra={
                "kind": result.get("kind"),
                "cost_usd": job.cost_usd,
                "status": job.status.value,
            },
        )
    return result


@workflow_handler
def submit_batch(event: dict[str, Any]) -> dict[str, Any]:
    _job_keys(JobPayload.model_validate(event))
    return get_container().jobs.submit_batch(event)


@workflow_handler
def poll_batch(event: dict[str, Any]) -> dict[str, Any]:
    _job_keys(JobPayload.model_validate(event))
    return get_container().jobs.poll_batch(event)


class RecoverPayload(BaseModel):
    tenant_id: str | None = None  # None: every tenant (the schedule)
    # None: the configured grace. 0 right after the local stack starts: nothing that
    # ran before the start can still be running.
    grace_seconds: float | None = Field(default=None, ge=0)


@workflow_handler
def recover_stalled_jobs(event: dict[str, Any]) -> dict[str, Any]:
    """The scheduled stalled-job check: jobs whose execution died resume by themselves."""
    # An EventBridge scheduled event carries its own fields (source, detail-type...).
    event = event or {}
    p = RecoverPayload.model_validate(
        {k: event.get(k) for k in ("tenant_id", "grace_seconds") if event.get(k) is not None}
    )
    obs = get_observability()
    results = get_container().jobs.recover_stalled(p.tenant_id, p.grace_seconds)
    revived = [r for r in results if r["outcome"] in ("resumed", "paused", "paused_budget")]
    if revived:
        obs.count("StalledJobsRecovered", len(revived))
        obs.logger.warning("stalled jobs recovered", extra={"jobs": revived})
    return {"checked": len(results), "recovered": revived}


class ExportPayload(BaseModel):
    tenant_id: str = Field(min_length=1)
    export_id: str = Field(min_length=1)


@workflow_handler
def run_export(event: dict[str, Any]) -> dict[str, Any]:
    p = ExportPayload.model_validate(event)
    obs = get_observability()
    obs.logger.append_keys(tenant_id=p.tenant_id, export_id=p.export_id)
    record = get_container().exports.run(p.tenant_id, p.export_id)
    obs.count("ExportsRun")
    return {"export_id": record.export_id, "status": record.status.value}
