"""Milestone 1 acceptance over HTTP: one conversation from plan to downloaded export."""

from __future__ import annotations

import json
import time
import urllib.request
from datetime import UTC, datetime

import pytest

pytestmark = pytest.mark.e2e


def wait_job(api, job_id: str, timeout: float = 60) -> dict:
    deadline = time.time() + timeout
    while time.time() < deadline:
        status, job, _ = api.get(f"/api/jobs/{job_id}")
        assert status == 200, job
        if job["status"] in ("completed", "failed", "cancelled", "paused"):
            return job
        time.sleep(0.2)
    raise AssertionError(f"job {job_id} did not finish: {job}")


def test_one_conversation_end_to_end(api):
    status, health, _ = api.get("/api/health")
    assert status == 200 and health["llm"] == "simulator"

    status, ds, _ = api.post("/api/datasets", {"name": "Walkthrough", "budget_usd": 10})
    assert status == 201, ds
    dsid = ds["dataset_id"]
    taxonomy = {
        "personas": [{"name": "Anxious Investor", "description": "Worried about losing savings"}],
        "emotions": [{"name": "Fear", "description": "afraid of loss"}],
        "topics": [{"name": "Market Volatility", "description": "market drops and swings"}],
        "intents": [{"name": "Seek Reassurance", "description": "wants comfort"}],
        "tones": [{"name": "Warm", "description": "kind and calm"}],
    }
    status, ds, _ = api.put(f"/api/datasets/{dsid}/taxonomy", taxonomy)
    assert status == 200, ds
    status, plan, _ = api.post(
        f"/api/datasets/{dsid}/plan",
        {"count": 1, "tier_distribution": {"template": 1, "scenario": 0, "edge_case": 0}},
    )
    assert status == 201, plan
    cid = plan["conversation_ids"][0]

    status, accepted, _ = api.post("/api/conversations/generate", {"conversation_id": cid})
    assert status == 202, accepted
    job = wait_job(api, accepted["job_id"])
    assert job["status"] == "completed" and job["completed"] == 1, job

    status, conv, _ = api.get(f"/api/conversations/{cid}")
    assert status == 200
    assert conv["status"] == "generated"
    assert 8 <= len(conv["turns"]) <= 16
    assert [t["role"] for t in conv["turns"][:2]] == ["user", "assistant"]
    assert conv["quality_score"] is not None and conv["actual_cost_usd"] > 0

    status, approved, _ = api.patch(
        f"/api/conversations/{cid}",
        {"status": "approved", "reviewer_notes": "Great", "version": conv["version"]},
    )
    assert status == 200, approved
    assert approved["status"] == "approved" and approved["approved_by"]
    status, audit, _ = api.get(f"/api/audit?entity_id={cid}")
    actions = [a["action"] for a in audit["items"]]
    assert "conversation.approve" in actions and "conversation.generate" in actions

    status, export, _ = api.post(
        "/api/export/conversations", {"format": "openai", "filters": {"dataset_id": dsid}}
    )
    assert status == 201, export
    today = datetime.now(UTC).date().isoformat()
    assert export["filename"] == f"walkthrough-openai-1-conversations-{today}.jsonl"
    with urllib.request.urlopen(export["download_url"]) as resp:
        body = resp.read().decode()
        disposition = resp.headers.get("Content-Disposition")
    assert export["filename"] in disposition
    lines = [json.loads(x) for x in body.splitlines()]
    assert len(lines) == 1
    roles = [m["role"] for m in lines[0]["messages"]]
    assert roles[0] == "system" and roles[1] == "user" and roles[-1] == "assistant"
