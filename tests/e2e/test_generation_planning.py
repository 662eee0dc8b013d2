"""A business's own dataset over HTTP: scenarios without documents, chunks imported
later, and estimates that learn from what was generated."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from chalicelib.bootstrap import get_container
from chalicelib.store.records import GenerationLogRecord

pytestmark = pytest.mark.e2e

SAMPLE = json.loads(
    (Path(__file__).resolve().parents[2] / "chalicelib/data/sample_dataset.json").read_text()
)
TERMINAL = ("completed", "failed", "cancelled", "paused")


@pytest.fixture()
def sim(stack: Any) -> Iterator[Any]:
    calm = {
        "rate_429": 0.0,
        "rate_529": 0.0,
        "rate_500": 0.0,
        "rate_timeout": 0.0,
        "rate_malformed": 0.0,
        "rate_truncated": 0.0,
        "latency_seconds": 0.01,
        "latency_jitter": 0.0,
        "rpm_limit": None,
    }
    stack.simulator.configure(**calm)
    stack.simulator.reset_stats()
    yield stack.simulator
    stack.simulator.configure(**calm)


def wait_job(api: Any, job_id: str, timeout: float = 120) -> dict[str, Any]:
    deadline = time.time() + timeout
    job: dict[str, Any] = {}
    while time.time() < deadline:
        status, job, _ = api.get(f"/api/jobs/{job_id}")
        assert status == 200, job
        if job["status"] in TERMINAL:
            return job
        time.sleep(0.1)
    raise AssertionError(f"job {job_id} still {job.get('status')}")


def own_dataset(api: Any, name: str) -> str:
    """POST /api/datasets + PUT taxonomy: a business's dataset, no documents yet."""
    status, ds, _ = api.post("/api/datasets", {"name": name, "budget_usd": 100})
    assert status == 201, ds
    status, body, _ = api.put(f"/api/datasets/{ds['dataset_id']}/taxonomy", SAMPLE["taxonomy"])
    assert status == 200, body
    return str(ds["dataset_id"])


def conversations(api: Any, dsid: str) -> list[dict[str, Any]]:
    status, body, _ = api.get(f"/api/conversations?dataset_id={dsid}&page_size=100")
    assert status == 200, body
    return list(body["items"])


def templates_by_id(api: Any) -> dict[str, dict[str, Any]]:
    status, body, _ = api.get("/api/templates")
    assert status == 200, body
    return {t["template_id"]: t for t in body["items"]}


def prompts_of(tenant: str, cid: str) -> list[str]:
    """The generation prompts sent for a conversation (not the judge's)."""
    return [
        r.doc["request_payload"]["messages"][0]["content"]
        for r in GenerationLogRecord.query(f"{tenant}#{cid}")
        if r.doc.get("request_payload")
        and (r.doc.get("parameters") or {}).get("purpose") != "judge"
    ]


def test_scenarios_without_chunks_are_planned_generatable_and_say_so(api: Any, sim: Any) -> None:
    dsid = own_dataset(api, "Own dataset, no documents")
    status, plan, _ = api.post(f"/api/datasets/{dsid}/plan", {"count": 20})
    assert status == 201, plan
    scenario = plan["tiers"]["scenario"]
    assert scenario > 0
    assert plan["scenario_without_excerpt"] == scenario
    assert plan["excerpt_free_templates"] == ["Scenario from the business description"]
    (note,) = plan["notes"]
    assert f"{scenario} scenario conversations were planned without a document excerpt" in note
    assert "no document chunks" in note
    status, accepted, _ = api.post(
        "/api/conversations/generate-all", {"dataset_id": dsid, "confirm": True}
    )
    assert status == 202, accepted
    job = wait_job(api, accepted["job_id"])
    assert (job["status"], job["completed"], job["failed"]) == ("completed", 20, 0), job
    templates = templates_by_id(api)
    tenant = get_container().settings.default_tenant
    scenarios = [c for c in conversations(api, dsid) if c["tier"] == "scenario"]
    assert len(scenarios) == scenario
    for c in scenarios:
        assert c["status"] == "generated" and c["chunk_id"] is None
        assert templates[c["template_id"]]["name"] == "Scenario from the business description"
        (prompt,) = prompts_of(tenant, c["conversation_id"])
        assert "Source excerpt" not in prompt and f"Scenario: {c['scenario']}" in prompt
        persona = next(p for p in SAMPLE["taxonomy"]["personas"] if p["name"] == c["persona"])
        assert persona["description"] in prompt  # built from the taxonomy's descriptions


def test_scenarios_planned_before_chunks_pick_a_matching_chunk_when_retried(
    api: Any, sim: Any
) -> None:
    dsid = own_dataset(api, "Own dataset, documents later")
    status, plan, _ = api.post(f"/api/datasets/{dsid}/plan", {"count": 20})
    assert status == 201, plan
    scenario_ids = [
        c["conversation_id"] for c in conversations(api, dsid) if c["tier"] == "scenario"
    ]
    assert scenario_ids
    # They fail first (as they all did before, for lack of an excerpt)...
    sim.configure(rate_malformed=1.0)
    _, accepted, _ = api.post(
        "/api/conversations/generate-batch",
        {"conversation_ids": scenario_ids, "confirm": True, "max_attempts": 1},
    )
    assert wait_job(api, accepted["job_id"])["failed"] == len(scenario_ids)
    sim.configure(rate_malformed=0.0)
    # ...then the business imports its documents and retries the failed ones.
    status, imported, _ = api.post(f"/api/datasets/{dsid}/chunks", {"chunks": SAMPLE["chunks"]})
    assert status in (200, 201), imported
    _, accepted, _ = api.post(
        "/api/conversations/generate-all", {"dataset_id": dsid, "only": "failed", "confirm": True}
    )
    job = wait_job(api, accepted["job_id"])
    assert (job["completed"], job["failed"]) == (len(scenario_ids), 0), job
    chunks = {c["chunk_id"]: c for c in SAMPLE["chunks"]}
    templates = templates_by_id(api)
    tenant = get_container().settings.default_tenant
    after = {c["conversation_id"]: c for c in conversations(api, dsid)}
    grounded = [after[cid] for cid in scenario_ids if after[cid]["chunk_id"]]
    topics = {c["topic"] for c in SAMPLE["chunks"]}
    on_topic = [cid for cid in scenario_ids if after[cid]["topic"] in topics]
    assert len(grounded) == len(on_topic) > 0  # every one a chunk is about got one
    for c in grounded:
        chunk = chunks[c["chunk_id"]]
        assert chunk["topic"] == c["topic"] and c["document_id"] == chunk["document_id"]
        assert templates[c["template_id"]]["name"] == "Scenario from source excerpt"
        prompt = prompts_of(tenant, c["conversation_id"])[-1]
        assert chunk["text"] in prompt and chunk["document_title"] in prompt
        status, detail, _ = api.get(f"/api/conversations/{c['conversation_id']}")
        assign = [a for a in detail["audit"] if a["action"] == "conversation.assign_chunk"]
        assert len(assign) == 1 and assign[0]["after"]["chunk_id"] == c["chunk_id"]
    # Chunks are spread: no chunk is used twice while a chunk on the same topic is unused.
    used: dict[str, int] = {}
    for c in grounded:
        used[c["chunk_id"]] = used.get(c["chunk_id"], 0) + 1
    for c in grounded:
        same_topic = [k for k, v in chunks.items() if v["topic"] == c["topic"]]
        counts = [used.get(k, 0) for k in same_topic]
        assert max(counts) - min(counts) <= 1


def test_a_plan_that_could_not_be_generated_is_refused(api_b: Any, sim: Any) -> None:
    """With no excerpt-free scenario template active, a dataset without chunks cannot
    hold scenario conversations: the plan answers 409 and writes nothing."""
    dsid = own_dataset(api_b, "No documents, no excerpt-free template")
    templates = templates_by_id(api_b)
    (bare,) = [
        t for t in templates.values() if t["name"] == "Scenario from the business description"
    ]
    status, body, _ = api_b.patch(f"/api/templates/{bare['template_id']}", {"is_active": False})
    assert status == 200, body
    try:
        status, err, _ = api_b.post(f"/api/datasets/{dsid}/plan", {"count": 20})
        assert status == 409, err
        (blocked,) = err["error"]["details"]["blocked"]
        assert blocked["tier"] == "scenario" and blocked["count"] > 0
        assert "{chunk}" in blocked["reason"]
        assert conversations(api_b, dsid) == []
        # Without scenario slots the same dataset plans fine.
        status, plan, _ = api_b.post(
            f"/api/datasets/{dsid}/plan",
            {"count": 10, "tier_distribution": {"template": 1, "scenario": 0, "edge_case": 1}},
        )
        assert status == 201, plan
    finally:
        api_b.patch(f"/api/templates/{bare['template_id']}", {"is_active": True})


def test_estimates_learn_from_this_datasets_conversations(api: Any, sim: Any) -> None:
    status, ds, _ = api.post("/api/datasets/sample")
    dsid = ds["dataset_id"]
    api.patch(f"/api/datasets/{dsid}", {"budget_usd": 1000})
    status, plan, _ = api.post(f"/api/datasets/{dsid}/plan", {"count": 40})
    ids = plan["conversation_ids"]
    status, first, _ = api.post("/api/conversations/estimate", {"ids": ids[:10]})
    assert status == 200, first
    assert first["basis_scope"] in ("defaults", "template")
    assert first["estimated_cost_low_usd"] <= first["estimated_cost_usd"]
    assert first["estimated_cost_usd"] <= first["estimated_cost_high_usd"]
    _, accepted, _ = api.post(
        "/api/conversations/generate-batch", {"conversation_ids": ids[:10], "confirm": True}
    )
    wait_job(api, accepted["job_id"])
    status, est, _ = api.post("/api/conversations/estimate", {"dataset_id": dsid})
    assert status == 200, est
    assert est["count"] == 30
    assert est["basis_scope"] == "dataset" and est["observed_conversations"] == 10
    assert est["basis"].startswith("observed mean of 10 generated conversations of this dataset")
    assert {t["tier"] for t in est["per_tier"]} == {"template", "scenario", "edge_case"}
    _, accepted, _ = api.post(
        "/api/conversations/generate-all", {"dataset_id": dsid, "confirm": True}
    )
    assert accepted["estimate"]["basis"] == est["basis"]
    job = wait_job(api, accepted["job_id"])
    assert job["completed"] == 30
    assert job["estimate"]["estimated_cost_low_usd"] <= job["estimate"]["estimated_cost_high_usd"]
    error = abs(est["estimated_cost_usd"] - job["cost_usd"]) / job["cost_usd"]
    assert error <= 0.20, (est, job["cost_usd"])
    assert est["estimated_cost_low_usd"] <= job["cost_usd"] <= est["estimated_cost_high_usd"]
    # A new dataset of the same templates learns from this one before it has any history.
    status, other, _ = api.post("/api/datasets/sample")
    api.post(f"/api/datasets/{other['dataset_id']}/plan", {"count": 10})
    status, fresh, _ = api.post("/api/conversations/estimate", {"dataset_id": other["dataset_id"]})
    assert fresh["basis_scope"] == "template", fresh
    assert "same template" in fresh["basis"]
    # Economy mode takes at least one batch poll interval.
    status, economy, _ = api.post(
        "/api/conversations/estimate", {"dataset_id": other["dataset_id"], "mode": "economy"}
    )
    poll = get_container().settings.batch_poll_seconds
    assert economy["estimated_seconds"] >= poll and "polled every" in economy["time_basis"]
    assert economy["estimated_cost_usd"] == fresh["estimated_economy_cost_usd"]
