"""Domain objects -> API response shapes."""

from __future__ import annotations

from typing import Any

from chalicelib.domain.models import (
    Conversation,
    Dataset,
    ExportRecord,
    FineTune,
    Job,
    PromptTemplate,
    TemplateVersion,
    Turn,
    TurnFeedback,
    turns_with_feedback,
    utcnow,
)


def conversation_summary(c: Conversation) -> dict[str, Any]:
    data = c.model_dump(mode="json", exclude={"tenant_id", "quality", "quality_summary"})
    data["flagged"] = c.flagged
    brief = c.quality_brief()
    data["quality_reasons"] = brief.reasons[:3] if brief else []
    return data


def conversation_detail(
    detail: dict[str, Any], neighbours: tuple[str | None, str | None, int | None]
) -> dict[str, Any]:
    c: Conversation = detail["conversation"]
    data = conversation_summary(c)
    data["quality"] = c.quality.model_dump(mode="json") if c.quality else None
    feedback = detail.get("feedback") or {}
    data["turns"] = turns_with_feedback(detail["turns"], feedback)
    data["generation_logs"] = detail["generation_logs"]
    data["audit"] = [a.model_dump(mode="json") for a in detail["audit"]]
    data["previous_id"], data["next_id"], data["position"] = neighbours
    data["versions"] = detail.get("versions")
    return data


def turn_out(t: Turn, f: TurnFeedback | None) -> dict[str, Any]:
    return turns_with_feedback([t], {t.turn_number: f} if f else {})[0]


def turn_feedback_result(result: dict[str, Any]) -> dict[str, Any]:
    return {
        "conversation": conversation_summary(result["conversation"]),
        "turn": turn_out(result["turn"], result["feedback"]),
        "decision_id": result["decision_id"],
        "undo_token": result["undo_token"],
    }


def trash_item(entry: dict[str, Any]) -> dict[str, Any]:
    data = conversation_summary(entry["conversation"])
    data["purge_at"] = entry["purge_at"].isoformat()
    data["days_left"] = entry["days_left"]
    return data


def dataset_out(d: Dataset) -> dict[str, Any]:
    data = d.model_dump(mode="json", exclude={"tenant_id", "plan_seed"})
    data["archived"] = d.archived
    return data


def job_out(job: Job, rejected: list[dict[str, str]] | None = None) -> dict[str, Any]:
    data = job.model_dump(
        mode="json",
        exclude={
            "tenant_id",
            "conversation_ids",
            "execution_arns",
            "max_concurrency",
            "max_attempts",
        },
    )
    data["remaining"] = max(job.total - job.done, 0)
    data["percent"] = job.percent
    data["budget"] = job.budget_usd
    eta = None
    if job.started_at and job.done and data["remaining"]:
        elapsed = (utcnow() - job.started_at).total_seconds()
        eta = round(elapsed / job.done * data["remaining"], 1)
    elif data["remaining"] == 0:
        eta = 0.0
    elif job.estimated_seconds:
        eta = job.estimated_seconds
    data["eta_seconds"] = eta
    data["rejected"] = rejected or []
    return data


def template_out(t: PromptTemplate) -> dict[str, Any]:
    return t.model_dump(mode="json", exclude={"tenant_id"})


def template_detail(
    t: PromptTemplate, versions: list[TemplateVersion], usage: list[dict[str, Any]]
) -> dict[str, Any]:
    data = template_out(t)
    data["versions"] = [
        v.model_dump(mode="json", exclude={"template_id"})
        for v in sorted(versions, key=lambda v: v.version)
    ]
    data["usage"] = usage
    data["total_usage"] = sum(u["usage"] for u in usage)
    approved = sum(u["approved"] for u in usage)
    reviewed = approved + sum(u["rejected"] for u in usage)
    data["approval_rate"] = round(approved / reviewed, 3) if reviewed else None
    scores = [(u["mean_quality"], u["usage"]) for u in usage if u["mean_quality"] is not None]
    weight = sum(n for _, n in scores)
    data["mean_quality"] = round(sum(q * n for q, n in scores) / weight, 2) if weight else None
    return data


def export_out(
    e: ExportRecord,
    download_url: str | None = None,
    files: list[dict[str, Any]] | None = None,
    expires_in: int | None = None,
) -> dict[str, Any]:
    data = e.model_dump(mode="json", exclude={"tenant_id", "claim_token"})
    data["files"] = [
        {k: v for k, v in f.items() if k != "key"}
        for f in (files if files is not None else e.files)
    ]
    data["download_url"] = download_url
    data["expires_in"] = expires_in
    return data


def fine_tune_out(f: FineTune, estimate: dict[str, Any] | None = None) -> dict[str, Any]:
    data = f.model_dump(mode="json", exclude={"tenant_id"})
    data["estimate"] = estimate
    return data


def page(items: list[Any], total: int | None = None) -> dict[str, Any]:
    return {"items": items, "total": len(items) if total is None else total, "next_cursor": None}
