"""Generation: estimates, starting jobs (one, a batch, all of a dataset) and the jobs'
status and controls."""

from __future__ import annotations

from chalice import Blueprint, Response

from chalicelib.api import schemas as s
from chalicelib.api import views
from chalicelib.api.auth import enforce_rate
from chalicelib.api.http import handled, query_bool, respond
from chalicelib.api.request import (
    JSON,
    JSON_OR_TEXT,
    body,
    param,
    params,
    principal,
    required_param,
    services,
)
from chalicelib.domain.models import Job, JobOptions

bp = Blueprint(__name__)


def _options(req: s.JobOptions) -> JobOptions:
    return JobOptions(
        confirm=req.confirm,
        mode=req.mode,
        max_concurrency=req.max_concurrency,
        max_attempts=req.max_attempts,
    )


def _started(job: Job, rejected: list[dict[str, str]]) -> Response:
    return respond(
        {
            "job_id": job.job_id,
            "status": job.status.value,
            "total": job.total,
            "estimated_cost_usd": job.estimated_cost_usd,
            "estimated_seconds": job.estimated_seconds,
            "estimate": job.estimate,
            "concurrency": job.concurrency,
            "rejected": rejected,
            "status_url": f"/api/jobs/{job.job_id}",
        },
        202,
    )


@bp.route("/api/conversations/estimate", methods=["POST"], content_types=JSON)
@handled
def estimate() -> Response:
    who = principal()
    req = body(s.EstimateRequest)
    return respond(
        services().generation_requests.estimate(
            who.tenant_id,
            ids=req.ids,
            dataset_id=req.dataset_id,
            only=req.only,
            mode=req.mode,
            max_concurrency=req.max_concurrency,
        )
    )


@bp.route("/api/conversations/generate", methods=["POST"], content_types=JSON)
@handled
def generate_one() -> Response:
    who = principal()
    req = body(s.GenerateRequest)
    enforce_rate(who, "generate")
    job, rejected = services().generation_requests.start(
        who.tenant_id, who.actor, "single", [req.conversation_id], JobOptions(confirm=req.confirm)
    )
    return _started(job, rejected)


@bp.route("/api/conversations/generate-batch", methods=["POST"], content_types=JSON)
@handled
def generate_batch() -> Response:
    who = principal()
    req = body(s.GenerateBatchRequest)
    enforce_rate(who, "generate")
    job, rejected = services().generation_requests.start(
        who.tenant_id, who.actor, "batch", req.conversation_ids, _options(req)
    )
    return _started(job, rejected)


@bp.route("/api/conversations/generate-all", methods=["POST"], content_types=JSON)
@handled
def generate_all() -> Response:
    who = principal()
    req = body(s.GenerateAllRequest)
    enforce_rate(who, "generate")
    job, rejected = services().generation_requests.generate_all(
        who.tenant_id, who.actor, req.dataset_id, req.only, _options(req)
    )
    return _started(job, rejected)


@bp.route("/api/conversations/status", methods=["GET"])
@handled
def job_status_query() -> Response:
    who = principal()
    job = services().jobs.describe(who.tenant_id, required_param("job_id"))
    return respond(views.job_out(job))


@bp.route("/api/jobs", methods=["GET"])
@handled
def list_jobs() -> Response:
    who = principal()
    active = bool(query_bool(params(), "active"))
    jobs = services().generation_requests.list_jobs(who.tenant_id, param("dataset_id"), active)
    return respond(views.page([views.job_out(j) for j in jobs]))


@bp.route("/api/jobs/{job_id}", methods=["GET"])
@handled
def get_job(job_id: str) -> Response:
    who = principal()
    return respond(views.job_out(services().jobs.describe(who.tenant_id, job_id)))


@bp.route("/api/jobs/{job_id}/pause", methods=["POST"], content_types=JSON_OR_TEXT)
@handled
def pause_job(job_id: str) -> Response:
    who = principal()
    return respond(views.job_out(services().jobs.pause(who.tenant_id, who.actor, job_id)))


@bp.route("/api/jobs/{job_id}/resume", methods=["POST"], content_types=JSON_OR_TEXT)
@handled
def resume_job(job_id: str) -> Response:
    who = principal()
    enforce_rate(who, "generate")
    return respond(views.job_out(services().jobs.resume(who.tenant_id, who.actor, job_id)))


@bp.route("/api/jobs/{job_id}/cancel", methods=["POST"], content_types=JSON_OR_TEXT)
@handled
def cancel_job(job_id: str) -> Response:
    who = principal()
    return respond(views.job_out(services().jobs.cancel(who.tenant_id, who.actor, job_id)))
