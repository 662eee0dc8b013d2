"""Conversations: the list and its statistics, the review panel, decisions (one, bulk,
undo), turn feedback, versions, trash and re-validation."""

from __future__ import annotations

from chalice import Blueprint, Response

from chalicelib.api import schemas as s
from chalicelib.api import views
from chalicelib.api.auth import enforce_rate
from chalicelib.api.http import handled, respond
from chalicelib.api.request import (
    JSON,
    JSON_OR_TEXT,
    body,
    bulk_filter_query,
    list_query,
    param,
    path_number,
    principal,
    raw_body,
    required_param,
    services,
)
from chalicelib.domain.errors import ValidationError
from chalicelib.domain.models import TRASH_RETENTION_DAYS

bp = Blueprint(__name__)


@bp.route("/api/conversations", methods=["GET"])
@handled
def list_conversations() -> Response:
    who = principal()
    result = services().index.list_page(who.tenant_id, list_query())
    result["items"] = [views.conversation_summary(x) for x in result["items"]]
    return respond(result)


@bp.route("/api/conversations/quality-stats", methods=["GET"])
@handled
def quality_stats() -> Response:
    who = principal()
    return respond(services().quality.stats(who.tenant_id, param("dataset_id")))


@bp.route("/api/conversations/diversity", methods=["GET"])
@handled
def diversity() -> Response:
    who = principal()
    return respond(services().quality.diversity(who.tenant_id, required_param("dataset_id")))


@bp.route("/api/conversations/calibration", methods=["GET"])
@handled
def calibration() -> Response:
    who = principal()
    dataset_id = required_param("dataset_id")
    return respond(services().quality.calibration(who.tenant_id, dataset_id))


@bp.route("/api/conversations/coverage-analysis", methods=["GET"])
@handled
def coverage_analysis() -> Response:
    who = principal()
    query = list_query()
    if not query.dataset_id:
        raise ValidationError("dataset_id is required", {"field": "dataset_id"})
    return respond(services().datasets.coverage(who.tenant_id, query.dataset_id, query))


@bp.route("/api/conversations/trash", methods=["GET"])
@handled
def list_trash() -> Response:
    who = principal()
    entries = services().review.trash(who.tenant_id, param("dataset_id"))
    items = [views.trash_item(e) for e in entries]
    return respond(views.page(items) | {"retention_days": TRASH_RETENTION_DAYS})


@bp.route(
    "/api/conversations/{conversation_id}/restore", methods=["POST"], content_types=JSON_OR_TEXT
)
@handled
def restore_conversation(conversation_id: str) -> Response:
    who = principal()
    restored, decision = services().review.restore(who.tenant_id, who.actor, conversation_id)
    return respond(views.conversation_summary(restored) | decision)


@bp.route("/api/conversations/{conversation_id}/versions", methods=["GET"])
@handled
def conversation_versions(conversation_id: str) -> Response:
    who = principal()
    return respond(services().review.versions(who.tenant_id, conversation_id))


@bp.route("/api/conversations/{conversation_id}/versions/{number}", methods=["GET"])
@handled
def conversation_version(conversation_id: str, number: str) -> Response:
    who = principal()
    version = path_number(number, "number", 2**31)
    return respond(services().review.version(who.tenant_id, conversation_id, version))


@bp.route("/api/conversations/{conversation_id}", methods=["GET"])
@handled
def get_conversation(conversation_id: str) -> Response:
    who = principal()
    detail, neighbours = services().review.open(who.tenant_id, conversation_id, list_query())
    return respond(views.conversation_detail(detail, neighbours))


@bp.route("/api/conversations/{conversation_id}", methods=["PATCH"], content_types=JSON)
@handled
def patch_conversation(conversation_id: str) -> Response:
    who = principal()
    req = body(s.ConversationPatch)
    saved, decision = services().review.update(
        who.tenant_id, who.actor, conversation_id, req.model_dump(exclude_unset=True)
    )
    return respond(views.conversation_summary(saved) | decision)


@bp.route(
    "/api/conversations/{conversation_id}/turns/{turn_number}/feedback",
    methods=["PUT"],
    content_types=JSON,
)
@handled
def put_turn_feedback(conversation_id: str, turn_number: str) -> Response:
    who = principal()
    number = path_number(turn_number, "turn_number", 10_000)
    req = body(s.TurnFeedbackRequest)
    result = services().review.turn_feedback(
        who.tenant_id, who.actor, conversation_id, number, req.model_dump(exclude_unset=True)
    )
    return respond(views.turn_feedback_result(result))


@bp.route("/api/conversations/undo", methods=["POST"], content_types=JSON)
@handled
def undo_decision() -> Response:
    who = principal()
    enforce_rate(who, "bulk")
    req = body(s.UndoRequest)
    return respond(
        services().review.undo(who.tenant_id, who.actor, req.undo_token, partial=req.partial)
    )


@bp.route("/api/conversations/{conversation_id}", methods=["DELETE"])
@handled
def delete_conversation(conversation_id: str) -> Response:
    who = principal()
    services().review.delete(who.tenant_id, who.actor, conversation_id)
    return Response(body="", status_code=204)


@bp.route(
    "/api/conversations/{conversation_id}/validate", methods=["POST"], content_types=JSON_OR_TEXT
)
@handled
def validate_conversation(conversation_id: str) -> Response:
    who = principal()
    judge = bool(raw_body().strip()) and body(s.ValidateRequest).judge
    if judge:
        enforce_rate(who, "generate")  # a judge call is a paid model call
    saved = services().quality.revalidate(who.tenant_id, who.actor, conversation_id, judge=judge)
    return respond(
        views.conversation_summary(saved)
        | {"quality": saved.quality.model_dump(mode="json") if saved.quality else None}
    )


@bp.route("/api/conversations/bulk-action", methods=["POST"], content_types=JSON)
@handled
def bulk_action() -> Response:
    who = principal()
    enforce_rate(who, "bulk")
    req = body(s.BulkActionRequest)
    c = services()
    limit = c.settings.max_bulk_ids
    if req.action == "regenerate":
        return respond(
            c.generation_requests.regenerate(
                who.tenant_id,
                who.actor,
                req.ids,
                confirm=req.confirm,
                preview=req.preview,
                limit=limit,
            )
        )
    return respond(
        c.review.bulk(
            who.tenant_id,
            who.actor,
            req.action,
            ids=req.ids,
            query=bulk_filter_query(req.filter) if req.filter is not None else None,
            reviewer_notes=req.reviewer_notes,
            confirm=req.confirm,
            preview=req.preview,
            expected_count=req.expected_count,
            up_to_limit=req.up_to_limit,
            limit=limit,
        )
    )
