"""Quality over HTTP: validate (with the optional LLM judge), stats, coverage and fill-gaps."""

from __future__ import annotations

import time
from typing import Any

import pytest

pytestmark = pytest.mark.e2e


def generate_dataset(api: Any, count: int) -> tuple[str, list[str]]:
    status, ds, _ = api.post("/api/datasets/sample")
    assert status == 201, ds
    dsid = ds["dataset_id"]
    api.patch(f"/api/datasets/{dsid}", {"budget_usd": 1000})
    status, plan, _ = api.post(f"/api/datasets/{dsid}/plan", {"count": count})
    assert status == 201, plan
    status, accepted, _ = api.post(
        "/api/conversations/generate-all", {"dataset_id": dsid, "confirm": True}
    )
    assert status == 202, accepted
    deadline = time.time() + 90
    while time.time() < deadline:
        _, job, _ = api.get(f"/api/jobs/{accepted['job_id']}")
        if job["status"] in ("completed", "failed"):
            break
        time.sleep(0.2)
    assert job["status"] == "completed", job
    return dsid, plan["conversation_ids"]


def test_validate_reruns_checks_and_the_optional_judge_has_its_own_cost(api: Any) -> None:
    dsid, ids = generate_dataset(api, 4)
    status, ds_before, _ = api.get(f"/api/datasets/{dsid}")
    status, plain, _ = api.post(f"/api/conversations/{ids[0]}/validate", raw=b"")
    assert status == 200, plain
    assert plain["quality"]["judge_score"] is None
    assert {c["name"] for c in plain["quality"]["checks"]} >= {"turn_count", "alternation"}
    status, judged, _ = api.post(f"/api/conversations/{ids[0]}/validate", {"judge": True})
    assert status == 200, judged
    assert 1 <= judged["quality"]["judge_score"] <= 10
    assert judged["quality"]["judge_cost_usd"] > 0
    status, ds_after, _ = api.get(f"/api/datasets/{dsid}")
    assert ds_after["spent_usd"] == pytest.approx(
        ds_before["spent_usd"] + judged["quality"]["judge_cost_usd"], abs=1e-6
    )
    status, err, _ = api.post(f"/api/conversations/{ids[0]}/validate", {"judge": "maybe"})
    assert status == 400 and err["error"]["code"] == "validation_error"
    status, audit, _ = api.get(f"/api/audit?entity_id={ids[0]}&action=conversation.validate")
    assert any(a["after"].get("judge_score") for a in audit["items"])


def test_quality_stats_and_coverage_gaps_after_rejections(api: Any) -> None:
    dsid, ids = generate_dataset(api, 30)
    status, stats, _ = api.get(f"/api/conversations/quality-stats?dataset_id={dsid}")
    assert status == 200, stats
    assert stats["count"] == 30
    assert sum(stats["histogram"].values()) == 30
    assert 0 <= stats["share_high_quality"] <= 1
    status, cov, _ = api.get(f"/api/conversations/coverage-analysis?dataset_id={dsid}")
    assert status == 200
    before_missing = cov["pairs"]["persona_emotion"]["missing_count"]
    # reject every conversation of one persona: its pairs become gaps
    persona = None
    victims = []
    for cid in ids:
        _, conv, _ = api.get(f"/api/conversations/{cid}")
        persona = persona or conv["persona"]
        if conv["persona"] == persona:
            victims.append(cid)
    status, result, _ = api.post(
        "/api/conversations/bulk-action", {"action": "reject", "ids": victims}
    )
    assert status == 200 and len(result["succeeded"]) == len(victims)
    status, cov, _ = api.get(f"/api/conversations/coverage-analysis?dataset_id={dsid}")
    assert cov["pairs"]["persona_emotion"]["missing_count"] > before_missing
    assert any(g["persona"] == persona for g in cov["gaps"]["pairs"])
    status, fill, _ = api.post(f"/api/datasets/{dsid}/fill-gaps")
    assert status == 201 and fill["planned"] > 0
    status, cov, _ = api.get(f"/api/conversations/coverage-analysis?dataset_id={dsid}")
    assert cov["pairs"]["persona_emotion"]["missing_count"] == 0
