"""Prompt templates: list, create, read with versions and usage, change."""

from __future__ import annotations

from chalice import Blueprint, Response

from chalicelib.api import schemas as s
from chalicelib.api import views
from chalicelib.api.http import handled, respond
from chalicelib.api.request import JSON, body, principal, services

bp = Blueprint(__name__)


@bp.route("/api/templates", methods=["GET"])
@handled
def list_templates() -> Response:
    who = principal()
    templates = services().templates.list_all(who.tenant_id)
    return respond(views.page([views.template_out(t) for t in templates]))


@bp.route("/api/templates", methods=["POST"], content_types=JSON)
@handled
def create_template() -> Response:
    who = principal()
    req = body(s.TemplateCreate)
    template = services().templates.create(who.tenant_id, who.actor, req.model_dump())
    return respond(views.template_out(template), 201)


@bp.route("/api/templates/{template_id}", methods=["GET"])
@handled
def get_template(template_id: str) -> Response:
    who = principal()
    template, versions, usage = services().templates.detail(who.tenant_id, template_id)
    return respond(views.template_detail(template, versions, usage))


@bp.route("/api/templates/{template_id}", methods=["PATCH"], content_types=JSON)
@handled
def patch_template(template_id: str) -> Response:
    who = principal()
    req = body(s.TemplatePatch)
    template = services().templates.update(
        who.tenant_id, who.actor, template_id, req.model_dump(exclude_unset=True)
    )
    return respond(views.template_out(template))
