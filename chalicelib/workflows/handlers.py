"""Step Functions task handlers: validated payload -> one service call.

Exceptions propagate with their class name as the Lambda ``errorType``; the ASL
retries ``TransientGenerationError`` / ``ProviderRateLimitError`` and catches the rest.
"""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools import Logger
from pydantic import BaseModel, Field

from chalicelib.bootstrap import get_container

logger = Logger(service="conversation-studio")


class JobPayload(BaseModel):
    tenant_id: str = Field(min_length=1)
    job_id: str = Field(min_length=1)


class ItemPayload(JobPayload):
    conversation_id: str = Field(min_length=1)
    retry_count: int = 0
    error: dict[str, Any] | None = None


def prepare_job(event: dict[str, Any]) -> dict[str, Any]:
    p = JobPayload.model_validate(event)
    logger.append_keys(tenant_id=p.tenant_id, job_id=p.job_id)
    return get_container().jobs.prepare(p.tenant_id, p.job_id)


def generate_item(event: dict[str, Any]) -> dict[str, Any]:
    p = ItemPayload.model_validate(event)
    logger.append_keys(tenant_id=p.tenant_id, job_id=p.job_id, conversation_id=p.conversation_id)
    outcome = get_container().generation.generate_item(
        p.tenant_id, p.job_id, p.conversation_id, p.retry_count
    )
    logger.info("item done", extra={"outcome": outcome, "retry_count": p.retry_count})
    return {"conversation_id": p.conversation_id, "outcome": outcome}


def record_item_failure(event: dict[str, Any]) -> dict[str, Any]:
    p = ItemPayload.model_validate(event)
    logger.append_keys(tenant_id=p.tenant_id, job_id=p.job_id, conversation_id=p.conversation_id)
    outcome = get_container().generation.record_item_failure(
        p.tenant_id, p.job_id, p.conversation_id, p.error
    )
    logger.warning("item failed", extra={"error": p.error})
    return {"conversation_id": p.conversation_id, "outcome": outcome}


def finish_job(event: dict[str, Any]) -> dict[str, Any]:
    JobPayload.model_validate(event)
    return get_container().jobs.finish(event)


def submit_batch(event: dict[str, Any]) -> dict[str, Any]:
    JobPayload.model_validate(event)
    return get_container().jobs.submit_batch(event)


def poll_batch(event: dict[str, Any]) -> dict[str, Any]:
    JobPayload.model_validate(event)
    return get_container().jobs.poll_batch(event)


class ExportPayload(BaseModel):
    tenant_id: str = Field(min_length=1)
    export_id: str = Field(min_length=1)


def run_export(event: dict[str, Any]) -> dict[str, Any]:
    p = ExportPayload.model_validate(event)
    record = get_container().exports.run(p.tenant_id, p.export_id)
    return {"export_id": record.export_id, "status": record.status.value}
