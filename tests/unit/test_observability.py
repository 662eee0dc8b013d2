"""Powertools wiring of the workflow handlers: inert locally, EMF + keyed JSON logs in Lambda."""

from __future__ import annotations

import json
import subprocess
import sys
import uuid
from dataclasses import dataclass
from types import SimpleNamespace
from typing import Any

import pytest

from chalicelib import observability as obs_mod
from chalicelib.observability import get_observability, reset_observability, workflow_handler
from chalicelib.workflows import handlers


@dataclass
class FakeContext:
    function_name: str = "brightrun-dev-generate-item"
    memory_limit_in_mb: int = 512
    invoked_function_arn: str = (
        "arn:aws:lambda:us-east-1:123456789012:function:brightrun-dev-generate-item"
    )
    aws_request_id: str = "req-1"


@pytest.fixture
def lambda_env(monkeypatch: pytest.MonkeyPatch) -> str:
    service = f"obs-test-{uuid.uuid4().hex[:8]}"  # a fresh logger bound to this test's stdout
    monkeypatch.setenv("AWS_LAMBDA_FUNCTION_NAME", "brightrun-dev-generate-item")
    monkeypatch.setenv("POWERTOOLS_SERVICE_NAME", service)
    monkeypatch.setenv("POWERTOOLS_METRICS_NAMESPACE", "BrightRun")
    monkeypatch.setenv("POWERTOOLS_LOG_LEVEL", "INFO")
    reset_observability()
    yield service
    reset_observability()


def emitted(out: str) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    docs = [json.loads(line) for line in out.splitlines() if line.startswith("{")]
    return [d for d in docs if "_aws" in d], [d for d in docs if "message" in d]


def test_import_reads_no_environment_and_builds_nothing() -> None:
    code = (
        "import os, sys\n"
        "class Guard(dict):\n"
        "    def get(self, k, d=None): raise SystemExit('env read at import: ' + k)\n"
        "    def __getitem__(self, k): raise SystemExit('env read at import: ' + k)\n"
        "    def __contains__(self, k): raise SystemExit('env read at import: ' + k)\n"
        "real, os.environ = os.environ, Guard()\n"
        "import chalicelib.observability as o\n"
        "os.environ = real\n"
        "assert o._observability is None\n"
        "assert 'aws_lambda_powertools' not in sys.modules\n"
        "print('ok')\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert done.stdout.strip() == "ok", done.stderr


def test_locally_a_plain_call_with_no_metrics(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.delenv("AWS_LAMBDA_FUNCTION_NAME", raising=False)
    reset_observability()
    calls: list[dict[str, Any]] = []

    @workflow_handler
    def step(event: dict[str, Any]) -> dict[str, Any]:
        get_observability().count("ConversationsGenerated")
        calls.append(event)
        return {"ok": True}

    assert step({"a": 1}, None) == {"ok": True}
    assert step({"a": 2}) == {"ok": True}
    assert calls == [{"a": 1}, {"a": 2}]
    obs = get_observability()
    assert not obs.in_lambda and obs.tracer.disabled
    assert obs.metrics.metric_set == {}
    metrics, _ = emitted(capsys.readouterr().out)
    assert metrics == []
    reset_observability()


def test_in_lambda_metrics_flushed_and_logs_keyed(
    lambda_env: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    outcomes = iter(["completed", "failed"])
    fake = SimpleNamespace(
        generation=SimpleNamespace(generate_item=lambda *a: next(outcomes)),
    )
    monkeypatch.setattr(handlers, "get_container", lambda: fake)
    event = {"tenant_id": "t-1", "job_id": "job-1", "conversation_id": "c-1"}
    assert handlers.generate_item(event, FakeContext()) == {
        "conversation_id": "c-1",
        "outcome": "completed",
    }
    metrics, logs = emitted(capsys.readouterr().out)
    values = {k: v for m in metrics for k, v in m.items() if not k.startswith("_")}
    directives = [d for m in metrics for d in m["_aws"]["CloudWatchMetrics"]]
    assert {d["Namespace"] for d in directives} == {"BrightRun"}
    names = {m["Name"] for d in directives for m in d["Metrics"]}
    assert "ConversationsGenerated" in names
    assert values["ConversationsGenerated"] in (1, [1])
    assert values["service"] == lambda_env
    (line,) = [entry for entry in logs if entry["message"] == "item done"]
    assert (line["tenant_id"], line["job_id"], line["conversation_id"]) == ("t-1", "job-1", "c-1")
    assert line["function_request_id"] == "req-1" and line["outcome"] == "completed"

    # Next invocation of the warm container: a permanent failure, and no stale keys.
    handlers.generate_item(
        {"tenant_id": "t-2", "job_id": "job-2", "conversation_id": "c-2"},
        FakeContext(aws_request_id="req-2"),
    )
    metrics, logs = emitted(capsys.readouterr().out)
    values = {k: v for m in metrics for k, v in m.items() if not k.startswith("_")}
    assert "GenerationFailed" in values and "ConversationsGenerated" not in values
    (line,) = [entry for entry in logs if entry["message"] == "item done"]
    assert line["tenant_id"] == "t-2" and line["function_request_id"] == "req-2"


def test_in_lambda_metrics_flushed_when_the_handler_raises(
    lambda_env: str, capsys: pytest.CaptureFixture[str]
) -> None:
    @workflow_handler
    def step(event: dict[str, Any]) -> dict[str, Any]:
        get_observability().measure("CostUSD", 0.25)
        raise RuntimeError("boom")

    with pytest.raises(RuntimeError):
        step({}, FakeContext())
    metrics, _ = emitted(capsys.readouterr().out)
    assert [m["CostUSD"] for m in metrics if "CostUSD" in m] in ([0.25], [[0.25]])


def test_lambda_without_context_still_clears_keys(
    lambda_env: str, capsys: pytest.CaptureFixture[str]
) -> None:
    @workflow_handler
    def step(event: dict[str, Any]) -> dict[str, Any]:
        log = get_observability().logger
        if "tenant_id" in event:
            log.append_keys(tenant_id=event["tenant_id"])
        log.info("step")
        return {}

    step({"tenant_id": "t-1"})
    step({})
    _, logs = emitted(capsys.readouterr().out)
    assert [entry.get("tenant_id") for entry in logs if entry["message"] == "step"] == ["t-1", None]
    assert obs_mod.running_in_lambda({"AWS_LAMBDA_FUNCTION_NAME": "x"})
    assert not obs_mod.running_in_lambda({})
