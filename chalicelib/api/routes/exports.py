"""Exports (preview, create, history, download) and fine-tuning runs on Bedrock."""

from __future__ import annotations

from typing import Any

from chalice import Blueprint, Response

from chalicelib.api import schemas as s
from chalicelib.api import views
from chalicelib.api.auth import enforce_rate
from chalicelib.api.http import handled, query_float, query_int, query_list, query_raw, respond
from chalicelib.api.request import JSON, body, default_if_absent, param, params, principal, services
from chalicelib.domain.errors import ValidationError
from chalicelib.domain.filters import EXPORT_FILTERS
from chalicelib.domain.models import ExportFormat

bp = Blueprint(__name__)


def _export_filters() -> dict[str, Any]:
    p = params()
    filters: dict[str, Any] = {
        f.name: query_list(p, f.name) for f in EXPORT_FILTERS if query_list(p, f.name)
    }
    for key in ("quality_min", "quality_max"):
        value = query_float(p, key)
        if value is not None:
            filters[key] = value
    if param("dataset_id"):
        filters["dataset_id"] = param("dataset_id")
    return filters


def _export_format() -> ExportFormat:
    raw_format = default_if_absent(query_raw(params(), "format"), "openai")
    try:
        return ExportFormat(raw_format)
    except ValueError as e:
        raise ValidationError(
            f"unknown format '{raw_format}'", {"allowed": [f.value for f in ExportFormat]}
        ) from e


def _export_view(out: dict[str, Any]) -> dict[str, Any]:
    return views.export_out(
        out["export"], out["download_url"], out["files"] or None, out.get("expires_in")
    )


@bp.route("/api/export/preview", methods=["GET"])
@handled
def export_preview() -> Response:
    who = principal()
    limit = min(max(query_int(params(), "limit", 3), 1), 10)
    preview = services().exports.preview(who.tenant_id, _export_format(), _export_filters(), limit)
    return respond(preview)


@bp.route("/api/export/conversations", methods=["POST"], content_types=JSON)
@handled
def create_export() -> Response:
    who = principal()
    enforce_rate(who, "export")
    req = body(s.ExportRequest)
    out = services().exports.create_with_url(
        who.tenant_id,
        who.actor,
        req.format,
        req.filters.model_dump(exclude_none=True, mode="json"),
        req.ratios(),
        req.options.model_dump() if req.options else None,
        seed=req.split_seed(),
    )
    return respond(_export_view(out), 201 if out["export"].status.value == "ready" else 202)


@bp.route("/api/export/history", methods=["GET"])
@handled
def export_history() -> Response:
    who = principal()
    history = services().exports.history(who.tenant_id)
    return respond(views.page([views.export_out(e) for e in history]))


@bp.route("/api/exports/{export_id}", methods=["GET"])
@handled
def get_export(export_id: str) -> Response:
    who = principal()
    return respond(_export_view(services().exports.get_with_url(who.tenant_id, export_id)))


@bp.route("/api/exports/{export_id}/fine-tunes", methods=["POST"], content_types=JSON)
@handled
def start_fine_tune(export_id: str) -> Response:
    who = principal()
    enforce_rate(who, "fine-tune")
    req = body(s.FineTuneRequest)
    fine_tune, estimate = services().fine_tunes.start(
        who.tenant_id, who.actor, export_id, req.model_dump()
    )
    assert fine_tune is not None
    return respond(views.fine_tune_out(fine_tune, estimate), 201)


@bp.route("/api/exports/{export_id}/fine-tunes/estimate", methods=["POST"], content_types=JSON)
@handled
def estimate_fine_tune(export_id: str) -> Response:
    who = principal()
    req = body(s.FineTuneRequest)
    _, estimate = services().fine_tunes.start(
        who.tenant_id, who.actor, export_id, {**req.model_dump(), "dry_run": True}
    )
    return respond({"estimate": estimate})


@bp.route("/api/fine-tunes", methods=["GET"])
@handled
def list_fine_tunes() -> Response:
    who = principal()
    items = services().fine_tunes.history(who.tenant_id, who.actor)
    return respond(views.page([views.fine_tune_out(f) for f in items]))


@bp.route("/api/fine-tunes/{fine_tune_id}", methods=["GET"])
@handled
def get_fine_tune(fine_tune_id: str) -> Response:
    who = principal()
    fine_tune = services().fine_tunes.get(who.tenant_id, fine_tune_id, who.actor)
    return respond(views.fine_tune_out(fine_tune))


@bp.route("/api/fine-tunes/{fine_tune_id}/stop", methods=["POST"])
@handled
def stop_fine_tune(fine_tune_id: str) -> Response:
    who = principal()
    fine_tune = services().fine_tunes.stop(who.tenant_id, who.actor, fine_tune_id)
    return respond(views.fine_tune_out(fine_tune))
