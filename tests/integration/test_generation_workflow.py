"""Generate All through the real ASL on moto, against the simulator with faults (issue 3)."""

from __future__ import annotations

import dataclasses
import itertools
import json
import threading
import time
from typing import Any

import pytest

from chalicelib.bootstrap import get_container
from chalicelib.domain.errors import TransientGenerationError
from chalicelib.store.records import GenerationLogRecord, JobItemRecord, JobRecord, TurnsRecord

pytestmark = pytest.mark.e2e

TERMINAL = ("completed", "failed", "cancelled", "paused")


def wait_job(api: Any, job_id: str, until: tuple[str, ...] = TERMINAL, timeout: float = 90) -> dict:
    deadline = time.time() + timeout
    job: dict = {}
    while time.time() < deadline:
        status, job, _ = api.get(f"/api/jobs/{job_id}")
        assert status == 200, job
        if job["status"] in until:
            return job
        time.sleep(0.1)
    raise AssertionError(f"job {job_id} still {job.get('status')}: {job}")


def new_dataset(api: Any, count: int, budget: float | None = 1000.0) -> tuple[str, list[str]]:
    status, ds, _ = api.post("/api/datasets/sample")
    assert status == 201, ds
    dsid = ds["dataset_id"]
    status, ds, _ = api.patch(
        f"/api/datasets/{dsid}",
        {"budget_usd": budget} if budget is not None else {"name": ds["name"]},
    )
    assert status == 200, ds
    status, plan, _ = api.post(f"/api/datasets/{dsid}/plan", {"count": count})
    assert status == 201, plan
    return dsid, plan["conversation_ids"]


def tenant() -> str:
    return get_container().settings.default_tenant


def stored_turn_items(ids: list[str]) -> int:
    return sum(
        1 for cid in ids for _ in TurnsRecord.query(tenant(), TurnsRecord.conversation_id == cid)
    )


def billed_logs(ids: list[str], purpose: str | None = None) -> list[Any]:
    """Answered calls of the conversations: generation calls, or ``purpose="judge"``."""
    return [
        r
        for cid in ids
        for r in GenerationLogRecord.query(f"{tenant()}#{cid}")
        if r.doc.get("response_payload")
        and (r.doc.get("parameters") or {}).get("purpose") == purpose
    ]


def judge_request_for(c: Any, cid: str) -> Any:
    """The judge's request for a stored conversation, as the economy batch sends it."""
    from chalicelib.quality.judge import judge_request

    conv = c.conversation_repo.get(tenant(), cid)
    dataset = c.dataset_repo.get(tenant(), conv.dataset_id)
    turns = c.conversation_repo.get_turns(tenant(), cid)
    judge = c.jobs.generation.judge
    data, _ = judge.prepare(conv, turns, dataset, c.jobs.generation._chunk_text(conv, dataset))
    return judge_request(data, judge.model)


def all_logs(ids: list[str]) -> list[dict[str, Any]]:
    return [r.doc for cid in ids for r in GenerationLogRecord.query(f"{tenant()}#{cid}")]


def charged_logs(ids: list[str]) -> list[dict[str, Any]]:
    """Every call the budget was charged for: answered ones and those at the estimate."""
    return [
        d for d in all_logs(ids) if d.get("response_payload") or d.get("billing") == "estimated"
    ]


@pytest.fixture()
def sim(stack: Any) -> Any:
    stack.simulator.configure(
        rate_429=0.0,
        rate_529=0.0,
        rate_500=0.0,
        rate_timeout=0.0,
        rate_malformed=0.0,
        rate_truncated=0.0,
        latency_seconds=0.01,
        latency_jitter=0.0,
        rpm_limit=None,
    )
    stack.simulator.reset_stats()
    yield stack.simulator
    stack.simulator.configure(
        rate_429=0.0,
        rate_529=0.0,
        rate_500=0.0,
        rate_timeout=0.0,
        rate_malformed=0.0,
        rate_truncated=0.0,
        latency_seconds=0.01,
        latency_jitter=0.0,
        rpm_limit=None,
    )


def test_generate_all_with_30_percent_transient_faults_loses_nothing(api: Any, sim: Any) -> None:
    sim.configure(rate_429=0.1, rate_529=0.1, rate_500=0.1, retry_after_seconds=0.2, seed=5)
    dsid, ids = new_dataset(api, 30)
    status, accepted, _ = api.post(
        "/api/conversations/generate-all", {"dataset_id": dsid, "confirm": True}
    )
    assert status == 202, accepted
    job = wait_job(api, accepted["job_id"])
    assert job["status"] == "completed", job
    stats = sim.stats()
    assert sum(stats["faults"][k] for k in ("429", "529", "500")) > 0, stats
    assert job["completed"] + job["failed"] == 30
    assert job["completed"] >= 29, job  # >= 99% with retries
    # exactly one turns item per generated conversation, one billed log per billed call
    # (the judge's calls included: they are billed to the job too)
    assert stored_turn_items(ids) == job["completed"]
    logs = billed_logs(ids) + billed_logs(ids, "judge")
    assert len(logs) == stats["billed"]
    assert abs(sum(r.doc["cost_usd"] for r in logs) - job["cost_usd"]) < 1e-6
    status, listing, _ = api.get(
        f"/api/conversations?dataset_id={dsid}&status=generated&page_size=50"
    )
    assert listing["total"] == job["completed"]


def test_malformed_and_truncated_answers_fail_only_that_conversation(api: Any, sim: Any) -> None:
    dsid, ids = new_dataset(api, 3)
    sim.configure(rate_malformed=1.0)
    status, accepted, _ = api.post("/api/conversations/generate", {"conversation_id": ids[0]})
    assert status == 202
    job = wait_job(api, accepted["job_id"])
    assert job["failed"] == 1 and job["completed"] == 0
    status, conv, _ = api.get(f"/api/conversations/{ids[0]}")
    assert conv["status"] == "failed" and "malformed" in conv["error_message"]
    assert conv["turns"] == []
    # Retried within the job's max_attempts, every attempt logged and billed once.
    attempts = get_container().settings.default_max_attempts
    assert f"gave up after {attempts} attempts" in conv["error_message"]
    assert len(billed_logs([ids[0]])) == attempts == sim.stats()["billed"]
    sim.configure(rate_malformed=0.0, rate_truncated=1.0)
    status, accepted, _ = api.post("/api/conversations/generate", {"conversation_id": ids[1]})
    job = wait_job(api, accepted["job_id"])
    status, conv, _ = api.get(f"/api/conversations/{ids[1]}")
    assert conv["status"] == "failed" and "truncated" in conv["error_message"]
    sim.configure(rate_truncated=0.0)
    # failed ones can be regenerated alone
    status, accepted, _ = api.post(
        "/api/conversations/generate-all", {"dataset_id": dsid, "only": "failed"}
    )
    assert status == 202, accepted
    job = wait_job(api, accepted["job_id"])
    assert job["total"] == 2 and job["completed"] == 2
    status, conv, _ = api.get(f"/api/conversations/{ids[2]}")
    assert conv["status"] == "not_generated"  # untouched by the failed-only run


def test_malformed_and_truncated_answers_are_retried_until_generated(api: Any, sim: Any) -> None:
    """One answer in four unusable: every conversation is still generated; a truncated
    answer's retry asks for twice the room; every billed call is logged once."""
    sim.configure(rate_malformed=0.25, rate_truncated=0.25, seed=23)
    dsid, ids = new_dataset(api, 12)
    # Generation calls alone draw the seeded faults (the judge's own are tested apart).
    assert api.patch(f"/api/datasets/{dsid}", {"judge_mode": "off"})[0] == 200
    status, accepted, _ = api.post(
        "/api/conversations/generate-all",
        {"dataset_id": dsid, "confirm": True, "max_attempts": 6},
    )
    assert status == 202, accepted
    job = wait_job(api, accepted["job_id"])
    stats = sim.stats()
    assert stats["faults"]["malformed"] > 0 and stats["faults"]["truncated"] > 0, stats
    assert job["status"] == "completed" and job["completed"] == 12, job
    assert stored_turn_items(ids) == 12
    logs = billed_logs(ids)
    judged = billed_logs(ids, "judge")  # the judge's calls are billed to the job too
    assert len(logs) + len(judged) == stats["billed"] and len(logs) > 12
    assert abs(sum(r.doc["cost_usd"] for r in logs + judged) - job["cost_usd"]) < 1e-6
    by_attempt = {
        (d["conversation_id"], d["attempt"]): d for d in (r.doc for r in logs) if d.get("attempt")
    }
    truncated = [
        d for d in by_attempt.values() if d["response_payload"]["stop_reason"] == "max_tokens"
    ]
    assert truncated
    for d in truncated:
        retry = by_attempt[(d["conversation_id"], d["attempt"] + 1)]
        assert retry["request_payload"]["max_tokens"] == 2 * d["request_payload"]["max_tokens"]


def test_truncated_at_the_models_output_limit_asks_for_fewer_turns(api: Any, sim: Any) -> None:
    c = get_container()
    original = c.generation.settings
    # A model whose output limit is already the request's max_tokens.
    c.generation.settings = dataclasses.replace(
        original, output_limits={**original.output_limits, original.model: original.max_tokens}
    )
    try:
        sim.configure(rate_truncated=1.0)
        _dsid, ids = new_dataset(api, 1)
        _, accepted, _ = api.post(
            "/api/conversations/generate", {"conversation_id": ids[0], "confirm": True}
        )
        wait_job(api, accepted["job_id"])
    finally:
        c.generation.settings = original
    logs = sorted(all_logs(ids), key=lambda d: d["attempt"])
    assert len(logs) == original.default_max_attempts
    assert {d["request_payload"]["max_tokens"] for d in logs} == {original.max_tokens}
    turns = [int(d["parameters"]["turn_target"]) for d in logs]
    assert turns == sorted(turns, reverse=True) and turns[-1] < turns[0], turns
    assert f"Write {turns[-1]} turns" in logs[-1]["request_payload"]["messages"][0]["content"]


def test_a_retry_asks_for_fewer_turns_even_when_the_template_never_names_a_count(
    api: Any,
) -> None:
    """A user's own template may leave out ``{turn_target}``: the retry that asks for
    fewer turns must still say how many, or it is cut off again."""
    from chalicelib.domain.models import PromptTemplate
    from chalicelib.domain.retries import RetryPlan

    c = get_container()
    dsid, ids = new_dataset(api, 1)
    conversation = c.conversation_repo.get(tenant(), ids[0])
    dataset = c.dataset_repo.get(tenant(), dsid)
    own = PromptTemplate(
        tenant_id=tenant(), name="terse", tier=conversation.tier, text="Persona: {persona}"
    )
    first, _, _ = c.generation.build_request(conversation, dataset, [own])
    assert "turns in total" not in first.prompt
    retry, template, params = c.generation.build_request(
        conversation, dataset, [own], RetryPlan(first.max_tokens, 6)
    )
    assert template.template_id == own.template_id and params["turn_target"] == "6"
    assert retry.prompt.startswith(first.prompt)
    assert retry.prompt.endswith("Write 6 turns in total.")


def test_timed_out_calls_are_charged_at_their_estimate(api: Any, sim: Any) -> None:
    """The provider may bill a request that timed out: each such attempt (the SDK's own
    retries included) is logged and charged at the estimate, once."""
    from chalicelib.llm.client import AnthropicLLMClient

    c = get_container()
    original = c.generation.llm
    c.generation.llm = AnthropicLLMClient(
        api_key="simulator-no-key",
        base_url=c.settings.anthropic_base_url,
        timeout=0.5,
        max_retries=1,
    )
    try:
        sim.configure(rate_timeout=0.3, timeout_hang_seconds=1.0, seed=7)
        _dsid, ids = new_dataset(api, 8)
        _, accepted, _ = api.post(
            "/api/conversations/generate-batch",
            {"conversation_ids": ids, "confirm": True, "max_attempts": 6},
        )
        job = wait_job(api, accepted["job_id"])
    finally:
        c.generation.llm = original
    time.sleep(1.5)  # a hung request is billed when the simulator finishes it
    stats = sim.stats()
    assert stats["faults"]["timeout"] > 0
    assert job["completed"] == 8, job
    estimated = [d for d in all_logs(ids) if d.get("billing") == "estimated"]
    assert len(estimated) == stats["faults"]["timeout"]
    assert all(d["cost_usd"] > 0 and not d["response_payload"] for d in estimated)
    charged = charged_logs(ids)
    assert len(charged) == stats["billed"]  # billed calls == logged calls
    fresh = c.job_repo.get(tenant(), job["job_id"])
    assert abs(sum(d["cost_usd"] for d in charged) - fresh.cost_usd) < 1e-6


class SimulatedCrash(Exception):
    """The Lambda running the call died: no answer, no failure recorded."""


def test_a_job_whose_execution_died_resumes_by_itself(
    api: Any, sim: Any, stack: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The execution dies with a call in flight: nobody presses Resume, the stalled-job
    check resumes the job, every conversation is generated once, and the call that may
    have been billed is charged at its estimate once."""
    sim.configure(latency_seconds=0.2)
    c = get_container()
    calls = itertools.count()
    held, release = threading.Event(), threading.Event()
    real_create = c.generation.llm.create

    def create(request: Any) -> Any:
        # The fourth generation call (the judge's calls aside) is in flight when the
        # execution dies.
        if request.tool is None and next(calls) == 3:
            held.set()
            release.wait(30)
            raise SimulatedCrash("the Lambda runtime died mid-call")
        return real_create(request)

    monkeypatch.setattr(c.generation.llm, "create", create)
    dsid, ids = new_dataset(api, 10)
    _, accepted, _ = api.post(
        "/api/conversations/generate-all",
        {"dataset_id": dsid, "max_concurrency": 2, "confirm": True},
    )
    job_id = accepted["job_id"]
    assert held.wait(30)
    dead = c.job_repo.get(tenant(), job_id).execution_arns[-1]
    stack.client("stepfunctions").stop_execution(executionArn=dead, error="Crash")
    release.set()
    time.sleep(1.0)  # the other call in flight finishes; the held one "dies"
    assert not c.jobs._execution_alive(c.job_repo.get(tenant(), job_id))
    victims = sorted(
        x.conversation_id
        for x in c.conversation_repo.get_many(tenant(), ids).values()
        if x.status == "generating"
    )
    assert victims, "the call that died left its conversation generating"
    # Repeated checks (the schedule and a manual resume racing) charge it once.
    stalled = c.job_repo.get(tenant(), job_id)
    c.jobs._settle_dead_claims(stalled)
    c.jobs._settle_dead_claims(stalled)
    job = wait_job(api, job_id, until=("completed", "failed", "cancelled"), timeout=60)
    assert job["status"] == "completed" and job["completed"] == 10, job
    assert stored_turn_items(ids) == 10
    _, audit, _ = api.get("/api/audit?action=conversation.generate&limit=1000")
    generated = [r["entity_id"] for r in audit["items"] if r["entity_id"] in ids]
    assert sorted(generated) == sorted(ids)  # each one generated once
    estimated = [d for d in all_logs(ids) if d.get("billing") == "estimated"]
    assert sorted(d["conversation_id"] for d in estimated) == victims
    assert all(d["cost_usd"] > 0 for d in estimated)
    c.jobs.recover_stalled(grace_seconds=0)  # nothing to do any more: no second charge
    assert len([d for d in all_logs(ids) if d.get("billing") == "estimated"]) == len(victims)
    fresh = c.job_repo.get(tenant(), job_id)
    assert abs(sum(d["cost_usd"] for d in charged_logs(ids)) - fresh.cost_usd) < 1e-6
    assert len(fresh.execution_arns) == 2
    _, trail, _ = api.get(f"/api/audit?entity_id={job_id}&limit=100")
    actions = {(r["action"], r["actor"]) for r in trail["items"]}
    assert ("job.resume", "system") in actions and ("job.recover", "system") in actions


def test_two_resumes_racing_on_a_dead_job_start_one_execution(
    api: Any, sim: Any, stack: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Between a resume's status change and its execution being listed, the job looks
    dead to anyone else: a second resume (a user's, or the stalled-job check's) in that
    window is refused instead of starting a second execution."""
    sim.configure(latency_seconds=0.2)
    c = get_container()
    dsid, ids = new_dataset(api, 4)
    _, accepted, _ = api.post(
        "/api/conversations/generate-all",
        {"dataset_id": dsid, "max_concurrency": 1, "confirm": True},
    )
    job_id = accepted["job_id"]
    wait_job(api, job_id, until=("running",))
    dead = c.job_repo.get(tenant(), job_id).execution_arns[-1]
    stack.client("stepfunctions").stop_execution(executionArn=dead, error="Crash")
    deadline = time.time() + 10
    while time.time() < deadline and c.jobs._execution_alive(c.job_repo.get(tenant(), job_id)):
        time.sleep(0.1)
    assert not c.jobs._execution_alive(c.job_repo.get(tenant(), job_id))

    starting, go_on = threading.Event(), threading.Event()
    real_start = c.jobs.sfn.start_execution

    def slow_start(**kwargs: Any) -> Any:
        starting.set()
        assert go_on.wait(30)
        return real_start(**kwargs)

    monkeypatch.setattr(c.jobs.sfn, "start_execution", slow_start)
    first = threading.Thread(target=c.jobs.resume, args=(tenant(), "system", job_id))
    first.start()
    try:
        assert starting.wait(30)
        monkeypatch.setattr(c.jobs.sfn, "start_execution", real_start)
        status, body, _ = api.post(f"/api/jobs/{job_id}/resume")
        assert status == 409 and "being resumed" in body["error"]["message"], body
        (outcome,) = [r for r in c.jobs.recover_stalled(grace_seconds=0) if r["job_id"] == job_id]
        assert outcome["outcome"] == "busy"
    finally:
        go_on.set()
        first.join(30)
    job = wait_job(api, job_id, until=("completed", "failed", "cancelled"), timeout=60)
    assert job["status"] == "completed" and job["completed"] == 4, job
    fresh = c.job_repo.get(tenant(), job_id)
    assert len(fresh.execution_arns) == 2 and fresh.resume_started_at is None
    _, trail, _ = api.get(f"/api/audit?entity_id={job_id}&limit=100")
    assert [r["action"] for r in trail["items"]].count("job.resume") == 1
    assert stored_turn_items(ids) == 4


def test_a_workflow_whose_state_is_unknown_is_never_resumed_beside_itself(
    api: Any, sim: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Step Functions failing to answer (throttled, unreachable) is not a dead execution:
    the stalled-job check and Resume must not start a second one beside a live one."""
    from botocore.exceptions import ClientError

    sim.configure(latency_seconds=0.3)
    c = get_container()
    dsid, ids = new_dataset(api, 6)
    _, accepted, _ = api.post(
        "/api/conversations/generate-all",
        {"dataset_id": dsid, "max_concurrency": 1, "confirm": True},
    )
    job_id = accepted["job_id"]
    wait_job(api, job_id, until=("running",))
    real_describe = c.jobs.sfn.describe_execution

    def throttled(**kwargs: Any) -> Any:
        raise ClientError(
            {"Error": {"Code": "ThrottlingException", "Message": "Rate exceeded"}},
            "DescribeExecution",
        )

    monkeypatch.setattr(c.jobs.sfn, "describe_execution", throttled)
    (outcome,) = [r for r in c.jobs.recover_stalled(grace_seconds=0) if r["job_id"] == job_id]
    assert outcome["outcome"] == "error"
    status, body, _ = api.post(f"/api/jobs/{job_id}/pause")
    assert status == 502 and body["error"]["code"] == "upstream_error", body
    monkeypatch.setattr(c.jobs.sfn, "describe_execution", real_describe)
    assert len(c.job_repo.get(tenant(), job_id).execution_arns) == 1
    job = wait_job(api, job_id, until=("completed", "failed", "cancelled"))
    assert job["status"] == "completed" and job["completed"] == 6, job
    _, trail, _ = api.get(f"/api/audit?entity_id={job_id}&limit=100")
    assert "job.resume" not in {r["action"] for r in trail["items"]}


def test_retried_item_never_stores_or_bills_twice(api: Any, sim: Any) -> None:
    _dsid, ids = new_dataset(api, 1)
    _status, accepted, _ = api.post("/api/conversations/generate", {"conversation_id": ids[0]})
    job = wait_job(api, accepted["job_id"])
    assert job["completed"] == 1
    c = get_container()
    # Step Functions retries the task, or Lambda re-runs it: nothing is counted again.
    outcome = c.generation.generate_item(tenant(), job["job_id"], ids[0], retry_count=1)
    assert outcome == "completed"
    again = c.job_repo.get(tenant(), job["job_id"])
    assert (again.completed, again.failed, again.skipped) == (1, 0, 0)
    assert stored_turn_items(ids) == 1
    assert len(billed_logs(ids)) == 1
    # One outcome row (the job's conversation ids are kept in rows of their own)
    items = [r for r in JobItemRecord.query(f"{tenant()}#{job['job_id']}") if r.outcome != "ids"]
    assert len(items) == 1


def test_pause_resume_runs_only_the_remaining_items(api: Any, sim: Any) -> None:
    sim.configure(latency_seconds=0.15)
    dsid, ids = new_dataset(api, 12)
    status, accepted, _ = api.post(
        "/api/conversations/generate-all",
        {"dataset_id": dsid, "max_concurrency": 2, "confirm": True},
    )
    job_id = accepted["job_id"]
    deadline = time.time() + 30
    while time.time() < deadline:
        _, job, _ = api.get(f"/api/jobs/{job_id}")
        if job["completed"] >= 2:
            break
        time.sleep(0.05)
    status, paused, _ = api.post(f"/api/jobs/{job_id}/pause")
    assert status == 200 and paused["status"] in ("pausing", "paused"), paused
    if paused["status"] == "pausing":
        status, early, _ = api.post(f"/api/jobs/{job_id}/resume")
        assert status in (200, 409), early  # 409 while the execution drains
        if status == 200:
            pytest.skip("the execution drained before the resume")
    job = wait_job(api, job_id, until=("paused",))
    done_at_pause = job["completed"]
    assert 2 <= done_at_pause < 12
    assert job["status"] == "paused"
    for _ in range(50):  # 409 until the paused execution has fully ended
        status, resumed, _ = api.post(f"/api/jobs/{job_id}/resume")
        if status != 409:
            break
        time.sleep(0.1)
    assert status == 200, resumed
    job = wait_job(api, job_id, until=("completed", "failed", "cancelled"))
    assert job["completed"] == 12
    # every conversation was billed exactly once across pause and resume, and judged
    # at most once (a verdict cached for the same content costs nothing)
    assert len(billed_logs(ids)) == 12, _debug_logs(ids)
    judged = len(billed_logs(ids, "judge"))
    assert judged <= 12 and sim.stats()["billed"] == 12 + judged, _debug_logs(ids)
    assert stored_turn_items(ids) == 12
    status, conflict, _ = api.post(f"/api/jobs/{job_id}/resume")
    assert status == 409 and conflict["error"]["code"] == "conflict"


def test_cancel_leaves_unstarted_items_not_generated(api: Any, sim: Any) -> None:
    sim.configure(latency_seconds=0.2)
    dsid, _ids = new_dataset(api, 8)
    _, accepted, _ = api.post(
        "/api/conversations/generate-all",
        {"dataset_id": dsid, "max_concurrency": 1, "confirm": True},
    )
    time.sleep(0.5)
    status, cancelled, _ = api.post(f"/api/jobs/{accepted['job_id']}/cancel")
    assert status == 200 and cancelled["status"] == "cancelled"
    deadline = time.time() + 10
    while time.time() < deadline:  # the execution drains: in-flight items finish
        _, listing, _ = api.get(f"/api/conversations?dataset_id={dsid}&page_size=25")
        statuses = {c["status"] for c in listing["items"]}
        if "generating" not in statuses:
            break
        time.sleep(0.2)
    assert "generating" not in statuses
    assert "not_generated" in statuses


def test_budget_confirm_warnings_and_self_pause(api: Any, sim: Any, stack: Any) -> None:
    dsid, ids = new_dataset(api, 10, budget=0.05)
    status, est, _ = api.post("/api/conversations/estimate", {"dataset_id": dsid})
    assert status == 200 and est["over_budget"] is True and est["count"] == 10
    assert est["estimated_economy_cost_usd"] < est["estimated_cost_usd"]
    status, err, _ = api.post("/api/conversations/generate-all", {"dataset_id": dsid})
    assert status == 409 and err["error"]["code"] == "over_budget"
    status, accepted, _ = api.post(
        "/api/conversations/generate-all",
        {"dataset_id": dsid, "confirm": True, "max_concurrency": 1},
    )
    assert status == 202
    job = wait_job(api, accepted["job_id"])
    assert job["status"] == "paused" and job["pause_reason"] == "budget", job
    assert [w["threshold_percent"] for w in job["warnings"]] == [50, 75, 90]
    assert job["completed"] < 10
    _, messages, _ = api.get("/api/notifications/messages")
    kinds = [m["kind"] for m in messages["items"] if m.get("job_id") == job["job_id"]]
    assert "budget.paused" in kinds and "budget.warning" in kinds
    # raise the budget and resume: only the rest runs
    api.patch(f"/api/datasets/{dsid}", {"budget_usd": 100})
    status, resumed, _ = api.post(f"/api/jobs/{job['job_id']}/resume")
    assert status == 200, resumed
    job = wait_job(api, job["job_id"], until=("completed", "failed", "cancelled"))
    assert job["completed"] == 10
    assert stored_turn_items(ids) == 10


def test_every_budget_warning_fires_once_in_order_before_the_pause(api: Any, sim: Any) -> None:
    """The sample dataset at the default concurrency: items finish in parallel and one
    call can jump past several thresholds; 50, 75 and 90 are each given once, in that
    order, and the automatic pause comes after them and is in the audit trail."""
    dsid, _ids = new_dataset(api, 40, budget=0.40)
    status, accepted, _ = api.post(
        "/api/conversations/generate-all", {"dataset_id": dsid, "confirm": True}
    )
    assert status == 202, accepted
    job = wait_job(api, accepted["job_id"])
    assert job["status"] == "paused" and job["pause_reason"] == "budget", job
    assert [w["threshold_percent"] for w in job["warnings"]] == [50, 75, 90]
    assert job["cost_usd"] >= 0.40
    _, messages, _ = api.get("/api/notifications/messages")
    notices = sorted(
        (m for m in messages["items"] if m.get("job_id") == job["job_id"]), key=lambda m: m["at"]
    )
    sequence = [
        m["kind"] if m["kind"] != "budget.warning" else m["subject"].split("%")[0].split()[-1]
        for m in notices
    ]
    assert sequence == ["50", "75", "90", "budget.paused"], sequence
    _, trail, _ = api.get(f"/api/audit?entity_id={job['job_id']}&action=job.pause")
    (pause,) = trail["items"]
    assert pause["actor"] == "system"
    assert pause["details"]["reason"] == "budget"
    assert pause["after"] == {"status": "pausing", "pause_reason": "budget"}


def test_bad_batches_and_double_starts(api: Any, sim: Any, stack: Any) -> None:
    _dsid, ids = new_dataset(api, 3)
    status, err, _ = api.post("/api/conversations/generate-batch", {"conversation_ids": []})
    assert status == 400 and "error" in err
    status, accepted, _ = api.post(
        "/api/conversations/generate-batch", {"conversation_ids": [ids[0], "conv_doesnotexist"]}
    )
    assert status == 202, accepted
    assert {"id": "conv_doesnotexist", "error": "not_found"} in accepted["rejected"]
    wait_job(api, accepted["job_id"])
    status, err, _ = api.post("/api/conversations/generate", {"conversation_id": "conv_nope"})
    assert status == 404 and err["error"]["code"] == "not_found"
    # a second start for an item already in a running job is refused
    sim.configure(latency_seconds=0.5)
    status, first, _ = api.post("/api/conversations/generate", {"conversation_id": ids[1]})
    assert status == 202
    status, second, _ = api.post("/api/conversations/generate", {"conversation_id": ids[1]})
    assert status == 409, second
    wait_job(api, first["job_id"])
    assert stored_turn_items([ids[1]]) == 1


def test_long_jobs_continue_as_new_executions(api: Any, sim: Any) -> None:
    c = get_container()
    original = c.jobs.settings
    c.jobs.settings = dataclasses.replace(original, execution_chunk_size=4)
    try:
        dsid, _ids = new_dataset(api, 10)
        _, accepted, _ = api.post(
            "/api/conversations/generate-all", {"dataset_id": dsid, "confirm": True}
        )
        job = wait_job(api, accepted["job_id"])
    finally:
        c.jobs.settings = original
    assert job["status"] == "completed" and job["completed"] == 10
    stored = c.job_repo.get(tenant(), job["job_id"])
    assert len(stored.execution_arns) == 3  # 4 + 4 + 2 items


def test_economy_mode_uses_message_batches_at_half_price(api: Any, sim: Any) -> None:
    c = get_container()
    c.jobs.batch_poll_seconds = 1
    dsid, ids = new_dataset(api, 4)
    status, accepted, _ = api.post(
        "/api/conversations/generate-all", {"dataset_id": dsid, "mode": "economy", "confirm": True}
    )
    assert status == 202, accepted
    job = wait_job(api, accepted["job_id"], timeout=60)
    assert job["status"] == "completed" and job["completed"] == 4, job
    # One batch writes the conversations, a second one judges them.
    assert sim.stats()["batches"] >= 2
    logs = billed_logs(ids)
    judged = billed_logs(ids, "judge")
    # A verdict already cached for the same content (the sample's text repeats across
    # tests) is reused without a call.
    cached = 0
    for cid in ids:
        _, conv, _ = api.get(f"/api/conversations/{cid}")
        cached += bool(conv["quality"]["judge"] and conv["quality"]["judge"]["cached"])
    assert len(logs) == 4 and len(judged) + cached == 4
    assert {g.doc["model"] for g in judged} == {c.settings.judge_model}
    for cid in ids:
        _, conv, _ = api.get(f"/api/conversations/{cid}")
        verdict = conv["quality"]["judge"]
        assert verdict and verdict["error"] is None and verdict["simulated"], verdict
    # A poll the workflow repeats (Lambda retries) records nothing twice.
    stored = c.job_repo.get(tenant(), job["job_id"])
    payload = {
        "tenant_id": tenant(),
        "job_id": job["job_id"],
        "batch_id": c.job_repo.judge_batch(tenant(), job["job_id"])["id"],
        "batch_phase": "judge",
        "items": [{"conversation_id": cid} for cid in ids],
    }
    assert c.jobs.poll_batch(payload)["batch_done"] is True
    assert len(billed_logs(ids, "judge")) == len(judged)
    # ... and so does one that died after billing a verdict but before storing it.
    lost = c.conversation_repo.get(tenant(), ids[0])
    assert lost.quality is not None
    c.conversation_repo.save_quality(
        lost.model_copy(update={"quality": lost.quality.model_copy(update={"judge": None})})
    )
    assert c.jobs.poll_batch(payload)["batch_done"] is True
    assert c.conversation_repo.get(tenant(), ids[0]).quality.judge is not None
    assert len(billed_logs(ids, "judge")) == len(judged)
    assert c.job_repo.get(tenant(), job["job_id"]).cost_usd == pytest.approx(stored.cost_usd)
    # ... and ones whose cached verdicts (applied at submit, so in no batch) were lost.
    for cid in ids:
        conv = c.conversation_repo.get(tenant(), cid)
        assert conv.quality is not None
        c.conversation_repo.save_quality(
            conv.model_copy(update={"quality": conv.quality.model_copy(update={"judge": None})})
        )
    unrelated = c.jobs.generation.llm.submit_batch([("not-this-job", judge_request_for(c, ids[0]))])
    deadline = time.time() + 30
    while not c.jobs.poll_batch({**payload, "batch_id": unrelated})["batch_done"]:
        assert time.time() < deadline, "the simulator's batch never ended"
        time.sleep(0.2)
    assert all(c.conversation_repo.get(tenant(), cid).quality.judge for cid in ids)
    assert len(billed_logs(ids, "judge")) == len(judged)
    from chalicelib.llm.client import Usage
    from chalicelib.llm.pricing import cost_usd

    for log in logs + judged:
        u = log.doc
        usage = Usage(
            u["input_tokens"],
            u["output_tokens"],
            u["cache_creation_input_tokens"],
            u["cache_read_input_tokens"],
        )
        assert (
            abs(log.doc["cost_usd"] - cost_usd(c.settings, log.doc["model"], usage, batch=True))
            < 1e-9
        )
        assert log.doc["cost_usd"] < cost_usd(c.settings, log.doc["model"], usage)


def test_completion_notice_and_subscription(api: Any, sim: Any, stack: Any) -> None:
    status, sub, _ = api.post("/api/notifications/subscriptions", {"email": "owner@example.com"})
    assert status == 201, sub
    sns = stack.client("sns")
    # Look the subscription up by its ARN (other tests subscribe odd addresses that
    # moto's list call cannot serialise).
    assert sub["subscription_arn"]
    attrs = sns.get_subscription_attributes(SubscriptionArn=sub["subscription_arn"])["Attributes"]
    assert attrs["Endpoint"] == "owner@example.com"
    assert attrs["TopicArn"] == stack.outputs["NotificationTopicArn"]
    assert tenant() in attrs["FilterPolicy"]
    status, _bad, _ = api.post("/api/notifications/subscriptions", {"email": "not-an-email"})
    assert status == 400
    dsid, _ids = new_dataset(api, 2)
    _, accepted, _ = api.post("/api/conversations/generate-all", {"dataset_id": dsid})
    job = wait_job(api, accepted["job_id"])
    # The notice is sent after the job's status is final: a reader may see the status
    # first and the notice a moment later.
    done: list[dict[str, Any]] = []
    deadline = time.time() + 15
    while not done and time.time() < deadline:
        _, messages, _ = api.get("/api/notifications/messages")
        done = [
            m
            for m in messages["items"]
            if m.get("job_id") == job["job_id"] and m["kind"] == "job.completed"
        ]
        if not done:
            time.sleep(0.2)
    assert done, messages
    body = done[0]["body"]
    assert "Generated: 2" in body and "Cost:" in body and f"dataset={dsid}" in body
    assert done[0]["subject"].startswith("Generation complete: 2 of 2")


def _debug_logs(ids):  # pragma: no cover - debugging aid
    from collections import Counter

    per = Counter()
    for cid in ids:
        for r in GenerationLogRecord.query(f"{tenant()}#{cid}"):
            per[(cid, bool(r.doc.get("response_payload")), r.doc.get("error_message"))] += 1
    return per


def test_a_judge_call_that_dies_loses_no_generated_conversation(
    api: Any, sim: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The judge runs once the conversation is stored: its death leaves the conversation
    generated with its heuristic score, and the generation answer is billed once."""
    c = get_container()
    assert c.generation.judge is not None

    def dies(*args: Any, **kwargs: Any) -> Any:
        raise SimulatedCrash("the Lambda runtime died during the judge's call")

    monkeypatch.setattr(c.generation.judge, "judge", dies)
    _dsid, ids = new_dataset(api, 1)
    _, accepted, _ = api.post("/api/conversations/generate", {"conversation_id": ids[0]})
    job = wait_job(api, accepted["job_id"])
    assert job["status"] == "completed" and job["completed"] == 1, job
    conv = c.conversation_repo.get(tenant(), ids[0])
    assert conv.status == "generated" and stored_turn_items(ids) == 1
    assert conv.quality is not None and conv.quality.judge is None
    assert len(billed_logs(ids)) == 1 == sim.stats()["billed"]


def _billed_twice(ids: list[str]) -> list[tuple[str, Any, Any, Any, Any]]:  # debugging aid
    out = []
    for cid in ids:
        answered = [
            r.doc
            for r in GenerationLogRecord.query(f"{tenant()}#{cid}")
            if r.doc.get("response_payload")
            and (r.doc.get("parameters") or {}).get("purpose") is None
        ]
        if len(answered) > 1:
            out += [
                (cid, d.get("claim_token"), d.get("attempt"), d.get("created_at"), d.get("run_id"))
                for d in answered
            ]
    return out


# --------------------------------------------------------------------------- throughput
@pytest.fixture()
def fast_account(monkeypatch: pytest.MonkeyPatch) -> Any:
    """An account whose output-token limit does not bind (the test stack's 80,000 OTPM
    spaces calls 1.35 s apart until the job has seen its answers' length)."""
    c = get_container()
    fast = dataclasses.replace(c.settings, rate_limit_otpm=1_000_000_000)
    monkeypatch.setattr(c.generation, "settings", fast)
    monkeypatch.setattr(c.concurrency, "settings", fast)
    return c


def execution_events(arn: str) -> list[str]:
    sfn = get_container().sfn
    events = sfn.get_execution_history(executionArn=arn, maxResults=1000)["events"]
    return [e["type"] for e in events]


def test_a_large_job_runs_as_distributed_map_executions_paused_and_resumed_once_each(
    api: Any, sim: Any, fast_account: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    c = fast_account
    monkeypatch.setattr(
        c.jobs,
        "settings",
        dataclasses.replace(
            c.jobs.settings, distributed_map_min_items=10, distributed_chunk_size=15
        ),
    )
    sim.configure(latency_seconds=0.1)
    dsid, ids = new_dataset(api, 45)
    status, accepted, _ = api.post(
        "/api/conversations/generate-all", {"dataset_id": dsid, "confirm": True}
    )
    assert status == 202, accepted
    # No cap was asked for: the job plans its calls in flight from the account's limits.
    assert accepted["concurrency"]["cap"] is None
    assert accepted["concurrency"]["target"] >= 1
    job_id = accepted["job_id"]
    job = wait_job(api, job_id, until=("running",))
    deadline = time.time() + 60
    while time.time() < deadline and job["completed"] < 8:
        _, job, _ = api.get(f"/api/jobs/{job_id}")
        time.sleep(0.05)
    live = job["concurrency"]
    assert {"target", "in_flight", "limit_reason", "latency_s"} <= set(live), live
    assert live["limit_reason"] in ("rpm", "otpm", "ceiling", "cap", "backoff", "breaker")
    status, paused, _ = api.post(f"/api/jobs/{job_id}/pause")
    assert status == 200, paused
    job = wait_job(api, job_id, until=("paused",))
    done_at_pause = job["completed"]
    assert 8 <= done_at_pause < 45, job
    assert job["concurrency"]["in_flight"] == 0
    for _ in range(50):
        status, resumed, _ = api.post(f"/api/jobs/{job_id}/resume")
        if status != 409:
            break
        time.sleep(0.1)
    assert status == 200, resumed
    job = wait_job(api, job_id, until=("completed", "failed", "cancelled"))
    assert job["status"] == "completed" and job["completed"] == 45, job
    # Every conversation was generated once and billed once across pause and resume.
    judged = len(billed_logs(ids, "judge"))
    assert sim.stats()["billed"] == 45 + judged, _billed_twice(ids)
    assert stored_turn_items(ids) == 45
    logs = billed_logs(ids)
    assert sorted(r.doc["conversation_id"] for r in logs) == sorted(ids)
    paid = logs + billed_logs(ids, "judge")
    assert round(sum(r.doc["cost_usd"] for r in paid), 6) == round(job["cost_usd"], 6)
    # Each execution ran its items as a Distributed Map read from S3, results to S3.
    stored = c.job_repo.get(tenant(), job_id)
    # The job item, updated for every conversation, does not carry the 45 ids.
    assert JobRecord.get(tenant(), job_id).conversation_ids == []
    assert sorted(c.job_repo.conversation_ids(stored)) == sorted(ids)
    assert len(stored.execution_arns) >= 3  # chunks of 15, and the resume starts another
    for arn in stored.execution_arns:
        events = execution_events(arn)
        if "MapRunStarted" not in events:
            continue  # the pause's drained execution, or the last one with nothing left
        assert "MapRunSucceeded" in events and "MapStateSucceeded" in events, events
    name = stored.execution_arns[0].rsplit(":", 1)[-1]
    prefix = f"jobs/{tenant()}/{job_id}/{name}/"
    keys = [
        o["Key"]
        for o in c.s3.list_objects_v2(Bucket=c.settings.export_bucket, Prefix=prefix)["Contents"]
    ]
    assert prefix + "items.json" in keys
    history = c.sfn.get_execution_history(executionArn=stored.execution_arns[0], maxResults=1000)
    (run_arn,) = [
        e["mapRunStartedEventDetails"]["mapRunArn"]
        for e in history["events"]
        if e["type"] == "MapRunStarted"
    ]
    manifest = f"jobs/map-runs/{run_arn.rsplit(':', 1)[-1]}/manifest.json"
    written = json.loads(
        c.s3.get_object(Bucket=c.settings.export_bucket, Key=manifest)["Body"].read()
    )
    assert written["MapRunArn"] == run_arn
    body = c.s3.get_object(Bucket=c.settings.export_bucket, Key=prefix + "items.json")["Body"]
    items = json.loads(body.read())
    assert len(items) == 15 and {i["claim"] for i in items} == {name}


def test_a_provider_that_keeps_refusing_pauses_the_job_without_failing_or_billing(
    api: Any, sim: Any, fast_account: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    c = fast_account
    monkeypatch.setattr(c.concurrency, "breaker_cooldown_s", 0.3)
    sim.configure(rate_429=1.0, retry_after_seconds=0.1, seed=2)
    dsid, ids = new_dataset(api, 12)
    status, accepted, _ = api.post(
        "/api/conversations/generate-all", {"dataset_id": dsid, "confirm": True}
    )
    assert status == 202, accepted
    job = wait_job(api, accepted["job_id"], until=("paused", "completed", "failed"), timeout=120)
    assert job["status"] == "paused" and job["pause_reason"] == "provider_refusing", job
    # No conversation was failed for the provider's refusals, and nothing was billed.
    assert job["failed"] == 0 and job["completed"] == 0, job
    assert sim.stats()["billed"] == 0
    assert all(d.get("billing") == "none" for d in all_logs(ids))
    assert job["cost_usd"] == 0
    _, trail, _ = api.get(f"/api/audit?entity_id={job['job_id']}&action=job.pause")
    assert [r["after"]["pause_reason"] for r in trail["items"]] == ["provider_refusing"], trail
    # The provider is back: resume generates every conversation, each billed once.
    sim.configure(rate_429=0.0)
    for _ in range(100):  # 409 until the paused execution has fully ended
        status, resumed, _ = api.post(f"/api/jobs/{job['job_id']}/resume")
        if status != 409:
            break
        time.sleep(0.1)
    assert status == 200, resumed
    job = wait_job(api, job["job_id"], until=("completed", "failed", "cancelled"))
    assert job["completed"] == 12, job
    assert len(billed_logs(ids)) == 12  # one generation call each (the judge's apart)
    assert sim.stats()["billed"] == 12 + len(billed_logs(ids, "judge"))
    assert stored_turn_items(ids) == 12


def test_an_answer_paid_for_but_not_stored_is_stored_by_the_retry_not_bought_again(
    api: Any, sim: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The attempt fails after its answer was logged and billed (the store write failed):
    the workflow's retry stores that answer; the provider is not paid a second time."""
    c = get_container()
    real_commit = c.generation.conversations.commit_generation
    failures = itertools.count()

    def commit(*args: Any, **kwargs: Any) -> Any:
        if next(failures) == 0:
            raise TransientGenerationError("the store write timed out")
        return real_commit(*args, **kwargs)

    monkeypatch.setattr(c.generation.conversations, "commit_generation", commit)
    _dsid, ids = new_dataset(api, 1)
    _, accepted, _ = api.post("/api/conversations/generate", {"conversation_id": ids[0]})
    job = wait_job(api, accepted["job_id"])
    assert job["status"] == "completed" and job["completed"] == 1, job
    assert next(failures) >= 2  # the first write failed, the retry's succeeded
    assert stored_turn_items(ids) == 1
    generation_calls = billed_logs(ids)
    assert len(generation_calls) == 1, [d.doc["attempt"] for d in generation_calls]
    assert sim.stats()["billed"] == 1 + len(billed_logs(ids, "judge"))
    assert (
        abs(
            job["cost_usd"]
            - sum(r.doc["cost_usd"] for r in generation_calls + billed_logs(ids, "judge"))
        )
        < 1e-6
    )
