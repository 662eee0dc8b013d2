"""Quality over HTTP: validate (with the optional LLM judge), stats, coverage and fill-gaps."""

from __future__ import annotations

import time
from typing import Any
from urllib.parse import quote

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
    wait_for_job(api, accepted["job_id"])
    return dsid, plan["conversation_ids"]


def wait_for_job(api: Any, job_id: str) -> None:
    deadline = time.time() + 120
    while time.time() < deadline:
        _, job, _ = api.get(f"/api/jobs/{job_id}")
        if job["status"] in ("completed", "failed"):
            break
        time.sleep(0.2)
    assert job["status"] == "completed", job


RUBRIC = {"persona_fidelity", "emotional_realism", "helpfulness", "faithfulness", "brand_safety"}


def test_every_generated_conversation_gets_a_rubric_verdict_billed_once_and_cached(
    api: Any,
) -> None:
    dsid, ids = generate_dataset(api, 4)
    _, ds_after_generation, _ = api.get(f"/api/datasets/{dsid}")
    costs = 0.0
    for cid in ids:
        status, conv, _ = api.get(f"/api/conversations/{cid}")
        judge = conv["quality"]["judge"]
        # The offline simulator answered: shown, marked simulated, never counted.
        assert judge["simulated"] is True and judge["error"] is None
        assert set(judge["dimensions"]) == RUBRIC
        assert all(1 <= d["score"] <= 10 and d["reason"] for d in judge["dimensions"].values())
        # paid, or reused from the cache (the same text judged before costs nothing)
        assert (judge["cost_usd"] > 0) != judge["cached"] and len(judge["content_hash"]) == 64
        judge_check = next(c for c in conv["quality"]["checks"] if c["name"] == "judge")
        assert "simulated judge (not counted)" in judge_check["detail"]
        # Not counted: it never flags, weighs nothing, and the score is the heuristics'
        # (capped only by a defect the heuristics found, if the sample text has one).
        assert judge_check["passed"] and judge_check["severity"] is None
        assert judge_check["weight"] == 0
        found = [c for c in conv["quality"]["checks"] if not c["passed"] and c["severity"]]
        if not found:
            assert conv["quality"]["score"] == pytest.approx(
                conv["quality"]["heuristic_score"], abs=0.06
            )
        costs += (conv["actual_cost_usd"] or 0) + judge["cost_usd"]
    # Generation and judge calls are both billed to the dataset, each once.
    assert ds_after_generation["spent_usd"] == pytest.approx(costs, abs=1e-6)

    cid = ids[0]
    status, plain, _ = api.post(f"/api/conversations/{cid}/validate", raw=b"")
    assert status == 200, plain
    # Unchanged content keeps its verdict without a new call.
    assert (
        plain["quality"]["judge"]["content_hash"] == judge["content_hash"]
        or plain["quality"]["judge"]
    )
    status, judged, _ = api.post(f"/api/conversations/{cid}/validate", {"judge": True})
    assert status == 200, judged
    assert judged["quality"]["judge"]["cached"] is True
    assert judged["quality"]["judge_cost_usd"] is None
    status, ds_after, _ = api.get(f"/api/datasets/{dsid}")
    assert ds_after["spent_usd"] == pytest.approx(ds_after_generation["spent_usd"], abs=1e-9)
    status, err, _ = api.post(f"/api/conversations/{cid}/validate", {"judge": "maybe"})
    assert status == 400 and err["error"]["code"] == "validation_error"
    status, audit, _ = api.get(f"/api/audit?entity_id={cid}&action=conversation.validate")
    assert any(a["after"].get("judge_cached") for a in audit["items"])


def test_judge_off_for_a_dataset_scores_with_heuristics_only(api: Any) -> None:
    status, ds, _ = api.post("/api/datasets/sample")
    dsid = ds["dataset_id"]
    status, patched, _ = api.patch(
        f"/api/datasets/{dsid}", {"judge_mode": "off", "budget_usd": 100}
    )
    assert status == 200 and patched["judge_mode"] == "off", patched
    status, plan, _ = api.post(f"/api/datasets/{dsid}/plan", {"count": 2})
    status, accepted, _ = api.post(
        "/api/conversations/generate-all", {"dataset_id": dsid, "confirm": True}
    )
    wait_for_job(api, accepted["job_id"])
    for cid in plan["conversation_ids"]:
        _, conv, _ = api.get(f"/api/conversations/{cid}")
        assert conv["quality"]["judge"] is None
        assert "judge" not in {c["name"] for c in conv["quality"]["checks"]}
    status, err, _ = api.patch(f"/api/datasets/{dsid}", {"judge_mode": "sometimes"})
    assert status == 400 and err["error"]["code"] == "validation_error"


def test_business_rules_flag_violations_with_reasons(api: Any) -> None:
    dsid, ids = generate_dataset(api, 2)
    _, conv, _ = api.get(f"/api/conversations/{ids[0]}")
    assistant = next(t for t in conv["turns"] if t["role"] == "assistant")
    phrase = " ".join(assistant["content"].split()[2:6]).strip(".,;:!?")
    rules = {
        "banned_phrases": [phrase],
        "required_disclaimers": [
            {"text": "Past performance does not guarantee future results.", "topics": []}
        ],
        "brand_terms": [{"term": "Harbor & Pine", "wrong": ["Harbour and Pine"]}],
    }
    status, patched, _ = api.patch(f"/api/datasets/{dsid}", {"quality_rules": rules})
    assert status == 200, patched
    assert patched["quality_rules"]["banned_phrases"] == [phrase]
    status, validated, _ = api.post(f"/api/conversations/{ids[0]}/validate", raw=b"")
    assert status == 200, validated
    check = next(c for c in validated["quality"]["checks"] if c["name"] == "business_rules")
    assert not check["passed"]
    assert any(f'banned phrase "{phrase}"' in r for r in check["reasons"]), check
    assert any("required disclaimer" in r for r in check["reasons"]), check
    assert validated["flagged"] and validated["quality_reasons"]
    for bad in (
        {"banned_phrases": ["x"]},
        {"required_disclaimers": [{"text": "ok"}]},
        {"brand_terms": [{"term": "Acme", "misspelt": []}]},
        {"banned_phrase": []},
    ):
        status, err, _ = api.patch(f"/api/datasets/{dsid}", {"quality_rules": bad})
        assert status == 400 and err["error"]["code"] == "validation_error", (bad, err)
    # A too-short phrase is named with its field in the same round as the request's shape.
    status, err, _ = api.patch(
        f"/api/datasets/{dsid}", {"quality_rules": {"banned_phrases": ["x"]}}
    )
    fields = [e["field"] for e in err["error"]["details"]["errors"]]
    assert fields == ["quality_rules.banned_phrases.0"], err


def test_disclaimer_topics_must_be_the_taxonomys(api: Any) -> None:
    """A misspelled topic would never apply: refused, with the topics it could be; a topic in
    another case is stored as the taxonomy spells it."""
    status, dataset, _ = api.post("/api/datasets/sample")
    assert status == 201, dataset
    dsid = dataset["dataset_id"]
    topic = dataset["taxonomy"]["topics"][0]["name"]
    rules = {
        "required_disclaimers": [{"text": "Terms apply to every booking.", "topics": [topic + "z"]}]
    }
    status, err, _ = api.patch(f"/api/datasets/{dsid}", {"quality_rules": rules})
    assert status == 400 and err["error"]["code"] == "validation_error", err
    (problem,) = err["error"]["details"]["errors"]
    assert problem["field"] == "quality_rules.required_disclaimers.0.topics"
    assert topic + "z" in problem["error"] and topic in err["error"]["details"]["topics"]
    _, unchanged, _ = api.get(f"/api/datasets/{dsid}")
    assert unchanged["quality_rules"]["required_disclaimers"] == []
    rules["required_disclaimers"][0]["topics"] = [topic.upper()]
    status, patched, _ = api.patch(f"/api/datasets/{dsid}", {"quality_rules": rules})
    assert status == 200, patched
    assert patched["quality_rules"]["required_disclaimers"][0]["topics"] == [topic]


def test_the_simulators_realistic_mistakes_are_flagged_with_their_reasons(
    api: Any, stack: Any
) -> None:
    """Every conversation carries one planted defect: the score flags (nearly) all of them,
    each with a reason naming the turn, and the list's flagged filter and sort find them."""
    stack.simulator.configure(defect_rate=1.0)
    stack.simulator.reset_stats()
    try:
        dsid, ids = generate_dataset(api, 30)
        planted = {p["first_turn"]: p["kind"] for p in stack.simulator.stats()["planted"]}
    finally:
        stack.simulator.configure(defect_rate=0.0)
    flagged = 0
    matched = 0
    missed: list[str] = []
    for cid in ids:
        _, conv, _ = api.get(f"/api/conversations/{cid}")
        kind = planted.get(conv["turns"][0]["content"][:200])
        if kind is None:
            continue
        matched += 1
        if not conv["flagged"]:
            missed.append(kind)
        if conv["flagged"]:
            flagged += 1
            assert conv["quality"]["reasons"], conv["quality"]
            assert conv["quality_reasons"] == conv["quality"]["reasons"][:3]
            assert conv["quality"]["flag_turns"] or "missing" in conv["quality"]["reasons"][0]
    assert matched >= 25, (matched, len(planted))
    assert flagged / matched >= 0.9, (flagged, matched, "missed kinds", sorted(missed))
    status, page, _ = api.get(f"/api/conversations?dataset_id={dsid}&flagged=true&page_size=100")
    assert status == 200 and page["total"] >= flagged
    status, page, _ = api.get(
        f"/api/conversations?dataset_id={dsid}&sort=quality_score&order=asc&page_size=25"
    )
    assert status == 200, page
    assert all(item["flagged"] for item in page["items"][:flagged])


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


def test_diversity_report_finds_what_repeats_and_links_the_conversations(api: Any) -> None:
    dsid, ids = generate_dataset(api, 30)
    status, report, _ = api.get(f"/api/conversations/diversity?dataset_id={dsid}")
    assert status == 200, report
    assert report["conversation_count"] == 30
    assert 0 <= report["diversity_score"] <= 100
    for scope in ("user", "assistant", "all"):
        assert 0 < report["distinct"][scope]["distinct_2"] <= 1
    # The simulator writes from templates: its assistant phrases repeat across conversations.
    phrases = report["phrases"]["assistant"]
    assert phrases and all(
        p["count"] >= 3 and set(p["conversation_ids"]) <= set(ids) for p in phrases
    )
    top = phrases[0]
    # One click away: a quoted phrase search lists exactly those conversations.
    status, page, _ = api.get(
        f"/api/conversations?dataset_id={dsid}&page_size=100&q=" + quote(f'"{top["text"]}"')
    )
    assert status == 200 and page["total"] >= top["count"], (top, page["total"])
    assert report["offenders"] and report["offenders"][0]["reasons"]
    assert {c["persona"] for c in report["cells"]} <= {
        p["name"] for p in api.get(f"/api/datasets/{dsid}")[1]["taxonomy"]["personas"]
    }
    # Unchanged dataset: the same report, computed once.
    _, again, _ = api.get(f"/api/conversations/diversity?dataset_id={dsid}")
    assert again["computed_at"] == report["computed_at"]
    status, err, _ = api.get("/api/conversations/diversity")
    assert status == 400 and err["error"]["code"] == "validation_error"
    status, err, _ = api.get("/api/conversations/diversity?dataset_id=ds_nope")
    assert status == 404


def test_calibration_against_review_decisions_suggests_a_threshold(api: Any, stack: Any) -> None:
    stack.simulator.configure(defect_rate=0.4)
    try:
        dsid, ids = generate_dataset(api, 40)
    finally:
        stack.simulator.configure(defect_rate=0.0)
    _, cal, _ = api.get(f"/api/conversations/calibration?dataset_id={dsid}")
    assert cal["decisions"] == 0 and cal["suggested"] is None and "30" in cal["note"]
    # The reviewer rejects what the score flags and approves the rest, mostly.
    page = api.get(f"/api/conversations?dataset_id={dsid}&page_size=100")[1]["items"]
    flagged = [c["conversation_id"] for c in page if c["flagged"]]
    clean = [c["conversation_id"] for c in page if not c["flagged"]]
    assert flagged and clean
    assert (
        api.post("/api/conversations/bulk-action", {"action": "reject", "ids": flagged})[0] == 200
    )
    assert api.post("/api/conversations/bulk-action", {"action": "approve", "ids": clean})[0] == 200
    status, cal, _ = api.get(f"/api/conversations/calibration?dataset_id={dsid}")
    assert status == 200, cal
    assert cal["decisions"] == 40 and cal["rejected"] == len(flagged)
    assert sum(b["reviewed"] for b in cal["bands"]) == 40
    low = [b for b in cal["bands"] if b["max"] <= 6 and b["reviewed"]]
    assert low and all(b["approval_rate"] == 0 for b in low)
    assert cal["current"]["recall"] == 1.0 and cal["current"]["precision"] == 1.0
    assert cal["suggested"] is not None and cal["suggested"]["recall"] == 1.0
    assert all(c["precision"] == 1.0 for c in cal["checks"])


def test_needs_attention_sort_puts_flagged_first_then_lowest_score(api: Any, stack: Any) -> None:
    stack.simulator.configure(defect_rate=0.3)
    try:
        dsid, _ids = generate_dataset(api, 20)
    finally:
        stack.simulator.configure(defect_rate=0.0)
    status, page, _ = api.get(
        f"/api/conversations?dataset_id={dsid}&sort=attention&order=asc&page_size=25"
    )
    assert status == 200, page
    keys = [(not c["flagged"], c["quality_score"]) for c in page["items"]]
    assert keys == sorted(keys) and keys[0][0] is False
    assert page["items"][0]["quality_reasons"]
    # Asked for without an order, the sort means its triage order; desc reverses it.
    status, plain, _ = api.get(f"/api/conversations?dataset_id={dsid}&sort=attention&page_size=25")
    assert status == 200 and plain["items"] == page["items"]
    status, reverse, _ = api.get(
        f"/api/conversations?dataset_id={dsid}&sort=attention&order=desc&page_size=25"
    )
    assert status == 200 and reverse["items"] == page["items"][::-1]


def test_an_archived_dataset_is_not_rescored(api: Any) -> None:
    dsid, ids = generate_dataset(api, 2)
    assert api.post(f"/api/datasets/{dsid}/archive")[0] == 200
    status, err, _ = api.post(f"/api/conversations/{ids[0]}/validate", raw=b"")
    assert status == 409 and err["error"]["code"] == "dataset_archived", err
    # Reading stays open: diversity and calibration still answer.
    assert api.get(f"/api/conversations/diversity?dataset_id={dsid}")[0] == 200
    assert api.get(f"/api/conversations/calibration?dataset_id={dsid}")[0] == 200
    assert api.post(f"/api/datasets/{dsid}/unarchive")[0] == 200
    assert api.post(f"/api/conversations/{ids[0]}/validate", raw=b"")[0] == 200
