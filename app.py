"""Bright Run Conversation Studio: the Chalice app, its HTTP routes and workflow steps.

The routes live in one blueprint per area (``chalicelib/api/routes/``); each parses its
input, calls one service verb and serialises (docs/architecture.md). The workflow steps
below are the Lambda functions the state machine invokes.
"""

from __future__ import annotations

from typing import Any

from chalice import Chalice

from chalicelib.api import request
from chalicelib.api.gate import request_gate
from chalicelib.api.routes import conversations, datasets, exports, generation, system, templates
from chalicelib.bootstrap import get_container
from chalicelib.workflows import handlers as workflow

app = Chalice(app_name="conversation-studio")
app.api.binary_types = []
# Before every route: the token (unless the route is public), then the declared choices.
app.register_middleware(request_gate, "http")
request.bind(app, get_container)
for area in (system, datasets, conversations, generation, templates, exports):
    app.register_blueprint(area.bp)


# ============================================================================ workflow steps (Lambda)


@app.lambda_function(name="prepare_job")
def prepare_job(event: dict[str, Any], context: Any) -> dict[str, Any]:
    return workflow.prepare_job(event, context)


@app.lambda_function(name="generate_item")
def generate_item(event: dict[str, Any], context: Any) -> dict[str, Any]:
    return workflow.generate_item(event, context)


@app.lambda_function(name="record_item_failure")
def record_item_failure(event: dict[str, Any], context: Any) -> dict[str, Any]:
    return workflow.record_item_failure(event, context)


@app.lambda_function(name="finish_job")
def finish_job(event: dict[str, Any], context: Any) -> dict[str, Any]:
    return workflow.finish_job(event, context)


@app.lambda_function(name="submit_batch")
def submit_batch(event: dict[str, Any], context: Any) -> dict[str, Any]:
    return workflow.submit_batch(event, context)


@app.lambda_function(name="poll_batch")
def poll_batch(event: dict[str, Any], context: Any) -> dict[str, Any]:
    return workflow.poll_batch(event, context)


@app.lambda_function(name="recover_stalled_jobs")
def recover_stalled_jobs(event: dict[str, Any], context: Any) -> dict[str, Any]:
    return workflow.recover_stalled_jobs(event, context)


@app.lambda_function(name="run_export")
def run_export(event: dict[str, Any], context: Any) -> dict[str, Any]:
    return workflow.run_export(event, context)
