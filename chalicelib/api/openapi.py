"""OpenAPI 3.1 document generated from the request/response models (never hand-kept).

``ROUTES`` lists every public route once; a test checks it against the Chalice app.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

from pydantic import BaseModel
from pydantic.json_schema import models_json_schema

from chalicelib.api import schemas as s
from chalicelib.domain.filters import BY_NAME, EXPORT_FILTERS, FILTER_DIMENSIONS
from chalicelib.domain.models import ExportFormat
from chalicelib.readmodel.listing import PAGE_SIZES, SORT_FIELDS, SORT_ORDERS

FILTER_PARAMS = list(FILTER_DIMENSIONS)


@dataclass(frozen=True)
class Route:
    method: str
    path: str
    summary: str
    response: type[BaseModel] | None
    status: int = 200
    request: type[BaseModel] | None = None
    query: tuple[tuple[str, dict[str, Any], bool], ...] = ()
    tag: str = "conversations"
    errors: tuple[int, ...] = (400, 401, 404)
    request_content: dict[str, Any] | None = field(default=None, compare=False)
    body_required: bool = True
    public: bool = False  # no token needed


STR: dict[str, Any] = {"type": "string"}
INT: dict[str, Any] = {"type": "integer"}
NUM: dict[str, Any] = {"type": "number"}
BOOL: dict[str, Any] = {"type": "boolean"}
ARR: dict[str, Any] = {"type": "array", "items": {"type": "string"}}
Param = tuple[str, dict[str, Any], bool]


def filter_param(name: str) -> Param:
    """A repeatable list filter: taxonomy names are free text, tier and status choices.
    ``x-filter`` marks it as one (the web app's filter list is generated from these),
    ``x-taxonomy-field`` names the taxonomy list its values come from."""
    dimension = BY_NAME[name]
    marks: dict[str, Any] = {"x-filter": True}
    if dimension.taxonomy_field is not None:
        marks["x-taxonomy-field"] = dimension.taxonomy_field
    if dimension.choices is not None:
        items = {"type": "string", "enum": list(dimension.choices)}
        return (name, {"type": "array", "items": items, **marks}, False)
    return (name, {**ARR, **marks}, False)


LIST_QUERY: tuple[Param, ...] = (
    ("dataset_id", STR, False),
    *(filter_param(p) for p in FILTER_PARAMS),
    ("quality_min", NUM, False),
    ("quality_max", NUM, False),
    ("flagged", BOOL, False),
    ("q", STR, False),
    ("sort", {"type": "string", "enum": list(SORT_FIELDS)}, False),
    ("order", {"type": "string", "enum": list(SORT_ORDERS)}, False),
    ("page_size", {"type": "integer", "enum": list(PAGE_SIZES)}, False),
    ("page", {"type": "integer", "minimum": 1}, False),
    ("cursor", STR, False),
)

ROUTES: tuple[Route, ...] = (
    Route(
        "GET",
        "/api/health",
        "Service health and LLM mode",
        s.Health,
        tag="system",
        errors=(),
        public=True,
    ),
    Route(
        "GET",
        "/api/openapi.json",
        "This document",
        s.AnyObject,
        tag="system",
        errors=(),
        public=True,
    ),
    Route(
        "POST",
        "/api/auth/login",
        "Sign in with email and password; returns an ID token for 'Authorization: Bearer'",
        s.LoginOut,
        200,
        s.LoginRequest,
        tag="auth",
        errors=(400, 401, 429),
        public=True,
    ),
    Route(
        "POST",
        "/api/datasets",
        "Create a dataset",
        s.DatasetOut,
        201,
        s.DatasetCreate,
        tag="datasets",
    ),
    Route(
        "GET",
        "/api/datasets",
        "List datasets (archived ones with include_archived=true)",
        s.DatasetList,
        query=(("include_archived", BOOL, False),),
        tag="datasets",
    ),
    Route(
        "POST",
        "/api/datasets/sample",
        "Create the sample dataset (financial advisory firm)",
        s.DatasetOut,
        201,
        tag="datasets",
    ),
    Route("GET", "/api/datasets/{dataset_id}", "Get a dataset", s.DatasetOut, tag="datasets"),
    Route(
        "PATCH",
        "/api/datasets/{dataset_id}",
        "Edit a dataset (name, budget, tiers, model: a priced model or null...)",
        s.DatasetOut,
        200,
        s.DatasetPatch,
        tag="datasets",
        errors=(400, 401, 404, 409),
    ),
    Route(
        "DELETE",
        "/api/datasets/{dataset_id}",
        "Delete a dataset and its conversations, turns, versions, logs, jobs and chunks "
        "(409 while a job is active; exports are kept; 202: still purging, call again)",
        s.DatasetDeleted,
        200,
        tag="datasets",
        errors=(401, 404, 409),
    ),
    Route(
        "POST",
        "/api/datasets/{dataset_id}/archive",
        "Archive a dataset: read-only (no planning, generation or edits), still exportable "
        "(409 while a job is active)",
        s.DatasetOut,
        200,
        tag="datasets",
        errors=(401, 404, 409),
    ),
    Route(
        "POST",
        "/api/datasets/{dataset_id}/unarchive",
        "Unarchive a dataset",
        s.DatasetOut,
        200,
        tag="datasets",
        errors=(401, 404, 409),
    ),
    Route(
        "PUT",
        "/api/datasets/{dataset_id}/taxonomy",
        "Set the taxonomy",
        s.DatasetOut,
        200,
        tag="datasets",
        errors=(400, 401, 404, 409),
        request_content={"application/json": {"schema": {"type": "object"}}},
    ),
    Route(
        "POST",
        "/api/datasets/{dataset_id}/taxonomy/preview",
        "What setting this taxonomy would change: names added, removed, redescribed, and the "
        "conversations using a removed name per status (nothing is written)",
        s.TaxonomyImpact,
        200,
        tag="datasets",
        errors=(400, 401, 404),
        request_content={"application/json": {"schema": {"type": "object"}}},
    ),
    Route(
        "POST",
        "/api/datasets/{dataset_id}/chunks",
        "Import document chunks (JSON list or CSV)",
        s.ChunkImportResult,
        201,
        tag="datasets",
        errors=(400, 401, 404, 409),
        request_content={
            "application/json": {"schema": {"type": "array", "items": {"type": "object"}}},
            "text/csv": {"schema": {"type": "string"}},
        },
    ),
    Route("GET", "/api/datasets/{dataset_id}/chunks", "List chunks", s.ChunkList, tag="datasets"),
    Route(
        "POST",
        "/api/datasets/{dataset_id}/plan",
        "Plan conversations covering the taxonomy",
        s.PlanResult,
        201,
        s.PlanRequest,
        tag="datasets",
        errors=(400, 401, 404, 409),
    ),
    Route(
        "POST",
        "/api/datasets/{dataset_id}/fill-gaps",
        "Plan the conversations that fill coverage gaps (no body), or count of them for one "
        'gap ({"gap": {"persona": "...", "topic": "..."} or {"tier": "scenario"}, "count": N})',
        s.PlanResult,
        201,
        s.FillGapsRequest,
        body_required=False,
        tag="datasets",
        errors=(400, 401, 404, 409),
    ),
    Route(
        "GET",
        "/api/conversations",
        "List, filter, search, sort and page conversations",
        s.ConversationList,
        query=LIST_QUERY,
    ),
    Route(
        "GET",
        "/api/conversations/quality-stats",
        "Quality statistics",
        s.AnyObject,
        query=(("dataset_id", STR, False),),
    ),
    Route(
        "GET",
        "/api/conversations/diversity",
        "Dataset diversity: repeated openers and phrases, distinct-n, near-duplicate clusters",
        s.DiversityOut,
        query=(("dataset_id", STR, True),),
    ),
    Route(
        "GET",
        "/api/conversations/calibration",
        "The score against the reviewers' decisions: approval per band, precision per check",
        s.CalibrationOut,
        query=(("dataset_id", STR, True),),
    ),
    Route(
        "GET",
        "/api/conversations/coverage-analysis",
        "Coverage per dimension, pair and tier, with gaps (of the conversations the list "
        "filters select, when given)",
        s.AnyObject,
        query=(
            ("dataset_id", STR, True),
            *((p, ARR, False) for p in FILTER_PARAMS),
            ("quality_min", NUM, False),
            ("quality_max", NUM, False),
            ("flagged", BOOL, False),
            ("q", STR, False),
        ),
    ),
    Route(
        "GET",
        "/api/conversations/trash",
        "Conversations in the trash (restorable for 30 days), newest first",
        s.TrashList,
        query=(("dataset_id", STR, False),),
    ),
    Route(
        "POST",
        "/api/conversations/{conversation_id}/restore",
        "Restore a conversation from the trash (undo_token: back to the trash)",
        s.ConversationDecided,
        200,
        errors=(401, 404, 409),
    ),
    Route(
        "GET",
        "/api/conversations/{conversation_id}/versions",
        "Every generation of a conversation (the current one first), with turns and scores",
        s.ConversationVersionList,
    ),
    Route(
        "GET",
        "/api/conversations/{conversation_id}/versions/{number}",
        "One generation of a conversation",
        s.ConversationVersionOut,
    ),
    Route(
        "GET",
        "/api/conversations/{conversation_id}",
        "A conversation with turns, quality, logs, audit, prev/next",
        s.ConversationDetail,
        query=LIST_QUERY,
    ),
    Route(
        "PATCH",
        "/api/conversations/{conversation_id}",
        "Approve/reject with notes, or edit metadata (undo_token reverts it; a reject "
        "without a note on a dataset with require_reject_note is a 400 note_required)",
        s.ConversationDecided,
        200,
        s.ConversationPatch,
        errors=(400, 401, 404, 409),
    ),
    Route(
        "PUT",
        "/api/conversations/{conversation_id}/turns/{turn_number}/feedback",
        "Per-turn feedback: mark a turn bad, note it, or edit its text (versioned, audited; "
        "exports use the edited text)",
        s.TurnFeedbackResult,
        200,
        s.TurnFeedbackRequest,
        errors=(400, 401, 404, 409),
    ),
    Route(
        "POST",
        "/api/conversations/undo",
        "Undo one review decision (a PATCH, a bulk call, a turn's feedback, an undo) if "
        "nothing changed since; 409 stale_version otherwise (partial: true undoes the rest)",
        s.UndoResult,
        200,
        s.UndoRequest,
        errors=(400, 401, 404, 409, 429),
    ),
    Route(
        "DELETE",
        "/api/conversations/{conversation_id}",
        "Move a conversation to the trash (restorable for 30 days)",
        None,
        204,
        errors=(401, 404, 409),
    ),
    Route(
        "POST",
        "/api/conversations/{conversation_id}/validate",
        'Re-run quality checks (optionally with an LLM judge score: {"judge": true})',
        s.ConversationSummary,
        request=s.ValidateRequest,
        errors=(401, 404, 409, 429),
        body_required=False,
    ),
    Route(
        "POST",
        "/api/conversations/bulk-action",
        "Approve, reject, delete (to the trash; needs confirm: true), restore or regenerate "
        "many: by ids, or by the list's filter (select all matching: confirm: true, at most "
        "the bulk limit); preview: true counts what it would do; undo_token reverts it",
        s.BulkResult,
        200,
        s.BulkActionRequest,
        errors=(400, 401, 409, 429),
    ),
    Route(
        "POST",
        "/api/conversations/estimate",
        "Cost and time estimate",
        s.EstimateOut,
        200,
        s.EstimateRequest,
        tag="generation",
    ),
    Route(
        "POST",
        "/api/conversations/generate",
        "Generate one conversation (a job of one)",
        s.JobAccepted,
        202,
        s.GenerateRequest,
        tag="generation",
        errors=(400, 401, 404, 409, 429),
    ),
    Route(
        "POST",
        "/api/conversations/generate-batch",
        "Generate selected conversations",
        s.JobAccepted,
        202,
        s.GenerateBatchRequest,
        tag="generation",
        errors=(400, 401, 404, 409, 429),
    ),
    Route(
        "POST",
        "/api/conversations/generate-all",
        "Generate every not-generated (or failed) conversation",
        s.JobAccepted,
        202,
        s.GenerateAllRequest,
        tag="generation",
        errors=(400, 401, 404, 409, 429),
    ),
    Route(
        "GET",
        "/api/conversations/status",
        "Job progress",
        s.JobOut,
        query=(("job_id", STR, True),),
        tag="generation",
    ),
    Route(
        "GET",
        "/api/jobs",
        "List jobs",
        s.JobList,
        query=(("dataset_id", STR, False), ("active", BOOL, False)),
        tag="generation",
    ),
    Route("GET", "/api/jobs/{job_id}", "Job progress", s.JobOut, tag="generation"),
    Route(
        "POST",
        "/api/jobs/{job_id}/pause",
        "Pause a job",
        s.JobOut,
        tag="generation",
        errors=(401, 404, 409),
    ),
    Route(
        "POST",
        "/api/jobs/{job_id}/resume",
        "Resume a paused or stalled job",
        s.JobOut,
        tag="generation",
        errors=(401, 404, 409, 429),
    ),
    Route(
        "POST",
        "/api/jobs/{job_id}/cancel",
        "Cancel a job",
        s.JobOut,
        tag="generation",
        errors=(401, 404, 409),
    ),
    Route("GET", "/api/templates", "List prompt templates", s.TemplateList, tag="templates"),
    Route(
        "POST",
        "/api/templates",
        "Create a prompt template (names are unique per tenant, ignoring case: 409)",
        s.TemplateOut,
        201,
        s.TemplateCreate,
        tag="templates",
        errors=(400, 401, 404, 409),
    ),
    Route(
        "GET",
        "/api/templates/{template_id}",
        "A template with versions and usage",
        s.TemplateDetail,
        tag="templates",
    ),
    Route(
        "PATCH",
        "/api/templates/{template_id}",
        "Edit (new version), activate/deactivate, weight",
        s.TemplateOut,
        200,
        s.TemplatePatch,
        tag="templates",
        errors=(400, 401, 404, 409),
    ),
    Route(
        "GET",
        "/api/export/preview",
        "Preview the first records of an export",
        s.ExportPreview,
        query=(
            ("format", {"type": "string", "enum": [f.value for f in ExportFormat]}, False),
            ("dataset_id", STR, False),
            ("limit", INT, False),
            *(filter_param(f.name) for f in EXPORT_FILTERS),  # exports: approved ones
            ("quality_min", NUM, False),
            ("quality_max", NUM, False),
        ),
        tag="export",
    ),
    Route(
        "POST",
        "/api/export/conversations",
        "Export approved conversations",
        s.ExportOut,
        201,
        s.ExportRequest,
        tag="export",
        # 422: no conversation fits the format; 500 export_failed: written on the request
        # path and failed (details.export_id names the failed export in the history).
        errors=(400, 401, 404, 422, 429, 500),
    ),
    Route("GET", "/api/export/history", "Past exports", s.ExportList, tag="export"),
    Route(
        "GET",
        "/api/exports/{export_id}",
        "An export with a fresh download URL",
        s.ExportOut,
        tag="export",
    ),
    Route(
        "POST",
        "/api/exports/{export_id}/fine-tunes",
        "Fine-tune on Amazon Bedrock from an anthropic-format export",
        s.FineTuneOut,
        201,
        s.FineTuneRequest,
        tag="fine-tunes",
        # 409: over the dataset's budget (confirm), or the export is not ready; 422: not
        # an anthropic export of one dataset; 502: Bedrock refused the job.
        errors=(400, 401, 404, 409, 422, 429, 502),
    ),
    Route(
        "POST",
        "/api/exports/{export_id}/fine-tunes/estimate",
        "The training cost of a fine-tune and the dataset's budget (starts nothing)",
        s.FineTuneEstimate,
        200,
        s.FineTuneRequest,
        tag="fine-tunes",
        errors=(400, 401, 404, 409, 422),
    ),
    Route("GET", "/api/fine-tunes", "Fine-tunes, newest first", s.FineTuneList, tag="fine-tunes"),
    Route(
        "GET",
        "/api/fine-tunes/{fine_tune_id}",
        "A fine-tune, its status refreshed from Bedrock",
        s.FineTuneOut,
        tag="fine-tunes",
    ),
    Route(
        "POST",
        "/api/fine-tunes/{fine_tune_id}/stop",
        "Stop a running fine-tune",
        s.FineTuneOut,
        tag="fine-tunes",
        errors=(400, 401, 404, 409, 502),
        body_required=False,
    ),
    Route(
        "GET",
        "/api/audit",
        "The audit trail",
        s.AuditList,
        query=(
            ("entity_id", STR, False),
            ("action", STR, False),
            ("actor", STR, False),
            ("limit", INT, False),
        ),
        tag="audit",
    ),
    Route(
        "POST",
        "/api/notifications/subscriptions",
        "Subscribe an email address",
        s.SubscriptionOut,
        201,
        s.SubscriptionRequest,
        tag="notifications",
    ),
    Route(
        "GET",
        "/api/notifications/subscriptions",
        "List subscriptions",
        s.SubscriptionList,
        tag="notifications",
    ),
    Route(
        "GET",
        "/api/notifications/messages",
        "Recent notifications",
        s.NotificationList,
        tag="notifications",
    ),
)


def _path_params(path: str) -> list[str]:
    return [p[1:-1] for p in path.split("/") if p.startswith("{")]


@lru_cache(maxsize=1)
def openapi_document() -> dict[str, Any]:
    models: set[type[BaseModel]] = {s.ErrorResponse}
    for r in ROUTES:
        for m in (r.request, r.response):
            if m is not None:
                models.add(m)
    ordered = sorted(models, key=lambda m: m.__name__)
    keys = [
        (m, "validation" if any(r.request is m for r in ROUTES) else "serialization")
        for m in ordered
    ]
    refs, defs = models_json_schema(keys, ref_template="#/components/schemas/{model}")  # type: ignore[arg-type]
    schemas = defs.get("$defs", {})

    def ref(model: type[BaseModel], mode: str) -> dict[str, Any]:
        return refs[(model, mode)]  # type: ignore[index]

    paths: dict[str, Any] = {}
    for r in ROUTES:
        op: dict[str, Any] = {
            "summary": r.summary,
            "operationId": f"{r.method.lower()}_{r.path.strip('/').replace('/', '_').replace('{', '').replace('}', '').replace('-', '_').replace('.', '_')}",
            "tags": [r.tag],
            "parameters": [
                {
                    "name": p,
                    "in": "path",
                    "required": True,
                    "schema": {
                        "type": "string",
                        "minLength": 1,
                        "maxLength": 64,
                        "pattern": "^[A-Za-z0-9_-]+$",
                    },
                }
                for p in _path_params(r.path)
            ]
            + [
                {
                    "name": name,
                    "in": "query",
                    "required": required,
                    "schema": schema,
                    **({"style": "form", "explode": True} if schema.get("type") == "array" else {}),
                }
                for name, schema, required in r.query
            ],
            "responses": {},
        }
        if r.public:
            op["security"] = []
        if r.request is not None:
            op["requestBody"] = {
                "required": r.body_required,
                "content": {"application/json": {"schema": ref(r.request, "validation")}},
            }
        elif r.request_content is not None:
            op["requestBody"] = {"required": True, "content": r.request_content}
        if r.response is None:
            op["responses"][str(r.status)] = {"description": "Done"}
        else:
            op["responses"][str(r.status)] = {
                "description": "OK",
                "content": {"application/json": {"schema": ref(r.response, "serialization")}},
            }
        for code in sorted(
            {*r.errors, 400, 413} if r.request or r.request_content else set(r.errors)
        ):
            op["responses"][str(code)] = {
                "description": "Error",
                "content": {
                    "application/json": {"schema": {"$ref": "#/components/schemas/ErrorResponse"}}
                },
            }
        paths.setdefault(r.path, {})[r.method.lower()] = op
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "Bright Run Conversation Studio API",
            "version": "1.0.0",
            "description": "Plan, generate, review and export LoRA training conversations. "
            'Errors: {"error": {"code", "message", "details"}}.',
        },
        "servers": [{"url": "/"}],
        "paths": paths,
        "components": {
            "schemas": schemas,
            "securitySchemes": {
                "cognito": {"type": "http", "scheme": "bearer", "bearerFormat": "JWT"}
            },
        },
        "security": [{"cognito": []}],
    }
