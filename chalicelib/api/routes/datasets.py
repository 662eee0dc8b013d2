"""Datasets: create, read, change, archive and delete; taxonomy, chunks, planning."""

from __future__ import annotations

from typing import Any

from chalice import Blueprint, Response

from chalicelib.api import schemas as s
from chalicelib.api import views
from chalicelib.api.http import handled, json_body, query_bool, respond
from chalicelib.api.request import (
    JSON,
    JSON_OR_TEXT,
    body,
    current,
    json_document,
    params,
    principal,
    raw_body,
    services,
)
from chalicelib.config import get_settings
from chalicelib.domain.errors import PayloadTooLargeError, ValidationError

bp = Blueprint(__name__)


@bp.route("/api/datasets", methods=["POST"], content_types=JSON)
@handled
def create_dataset() -> Response:
    who = principal()
    req = body(s.DatasetCreate)
    dataset = services().datasets.create(
        who.tenant_id, who.actor, req.model_dump(exclude_none=True)
    )
    return respond(views.dataset_out(dataset), 201)


@bp.route("/api/datasets/sample", methods=["POST"], content_types=JSON_OR_TEXT)
@handled
def create_sample_dataset() -> Response:
    who = principal()
    dataset = services().datasets.create_sample(who.tenant_id, who.actor)
    return respond(views.dataset_out(dataset), 201)


@bp.route("/api/datasets", methods=["GET"])
@handled
def list_datasets() -> Response:
    who = principal()
    include_archived = bool(query_bool(params(), "include_archived"))
    datasets = services().datasets.list_all(who.tenant_id, include_archived=include_archived)
    return respond(views.page([views.dataset_out(d) for d in datasets]))


@bp.route("/api/datasets/{dataset_id}", methods=["GET"])
@handled
def get_dataset(dataset_id: str) -> Response:
    who = principal()
    return respond(views.dataset_out(services().datasets.get(who.tenant_id, dataset_id)))


@bp.route("/api/datasets/{dataset_id}", methods=["PATCH"], content_types=JSON)
@handled
def patch_dataset(dataset_id: str) -> Response:
    who = principal()
    req = body(s.DatasetPatch)
    changes = req.model_dump(exclude_unset=True)
    dataset = services().datasets.update(who.tenant_id, who.actor, dataset_id, changes)
    return respond(views.dataset_out(dataset))


@bp.route("/api/datasets/{dataset_id}", methods=["DELETE"])
@handled
def delete_dataset(dataset_id: str) -> Response:
    who = principal()
    result = services().datasets.delete(who.tenant_id, who.actor, dataset_id)
    return respond(result, 200 if result["deleted"] else 202)


@bp.route("/api/datasets/{dataset_id}/archive", methods=["POST"], content_types=JSON_OR_TEXT)
@handled
def archive_dataset(dataset_id: str) -> Response:
    who = principal()
    return respond(
        views.dataset_out(services().datasets.archive(who.tenant_id, who.actor, dataset_id))
    )


@bp.route("/api/datasets/{dataset_id}/unarchive", methods=["POST"], content_types=JSON_OR_TEXT)
@handled
def unarchive_dataset(dataset_id: str) -> Response:
    who = principal()
    return respond(
        views.dataset_out(services().datasets.unarchive(who.tenant_id, who.actor, dataset_id))
    )


@bp.route("/api/datasets/{dataset_id}/taxonomy", methods=["PUT"], content_types=JSON)
@handled
def put_taxonomy(dataset_id: str) -> Response:
    who = principal()
    dataset = services().datasets.set_taxonomy(
        who.tenant_id, who.actor, dataset_id, json_document()
    )
    return respond(views.dataset_out(dataset))


@bp.route("/api/datasets/{dataset_id}/taxonomy/preview", methods=["POST"], content_types=JSON)
@handled
def preview_taxonomy(dataset_id: str) -> Response:
    who = principal()
    return respond(services().datasets.taxonomy_impact(who.tenant_id, dataset_id, json_document()))


def _chunk_file() -> tuple[Any, str]:
    """The uploaded chunks (JSON, or CSV/plain text as a string) and their content type;
    chunk files may be five times the size of other bodies."""
    raw = raw_body()
    limit = get_settings().max_body_bytes * 5
    if len(raw) > limit:
        raise PayloadTooLargeError(f"chunk file is {len(raw)} bytes; the limit is {limit}")
    header = current().headers.get("content-type") or "application/json"
    content_type = header.split(";")[0].strip()
    if content_type not in ("text/csv", "text/plain"):
        return json_body(raw, limit), content_type
    try:
        return raw.decode("utf-8-sig"), content_type
    except UnicodeDecodeError as e:
        raise ValidationError("the CSV file must be UTF-8 text") from e


@bp.route("/api/datasets/{dataset_id}/chunks", methods=["POST"], content_types=JSON_OR_TEXT)
@handled
def import_chunks(dataset_id: str) -> Response:
    who = principal()
    payload, content_type = _chunk_file()
    result = services().datasets.import_chunks(
        who.tenant_id, who.actor, dataset_id, payload, content_type
    )
    return respond(
        {"imported": result["imported"], "dataset": views.dataset_out(result["dataset"])}, 201
    )


@bp.route("/api/datasets/{dataset_id}/chunks", methods=["GET"])
@handled
def list_chunks(dataset_id: str) -> Response:
    who = principal()
    return respond(views.page(services().datasets.chunks(who.tenant_id, dataset_id)))


@bp.route("/api/datasets/{dataset_id}/plan", methods=["POST"], content_types=JSON)
@handled
def plan_dataset(dataset_id: str) -> Response:
    who = principal()
    req = body(s.PlanRequest) if raw_body() else s.PlanRequest()
    result = services().datasets.plan(
        who.tenant_id, who.actor, dataset_id, req.model_dump(exclude_none=True)
    )
    return respond(result, 201)


@bp.route("/api/datasets/{dataset_id}/fill-gaps", methods=["POST"], content_types=JSON_OR_TEXT)
@handled
def fill_gaps(dataset_id: str) -> Response:
    who = principal()
    req = body(s.FillGapsRequest) if raw_body().strip() else s.FillGapsRequest()
    gap = req.gap.model_dump(mode="json", exclude_none=True) if req.gap else None
    result = services().datasets.fill_gaps(who.tenant_id, who.actor, dataset_id, gap, req.count)
    return respond(result, 201)
