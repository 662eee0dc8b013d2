"""Planning inside one coverage gap over HTTP (the coverage page's per-gap "Plan N"):
every planned conversation lands in the gap, the target stays, bad gaps are 4xx, and
another tenant cannot plan into the dataset."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

pytestmark = pytest.mark.e2e

SAMPLE = json.loads(
    (Path(__file__).resolve().parents[2] / "chalicelib/data/sample_dataset.json").read_text()
)


def _dataset(api: Any) -> str:
    status, ds, _ = api.post("/api/datasets", {"name": "Gap planning", "budget_usd": 10})
    assert status == 201, ds
    dsid = ds["dataset_id"]
    assert api.put(f"/api/datasets/{dsid}/taxonomy", SAMPLE["taxonomy"])[0] == 200
    status, plan, _ = api.post(f"/api/datasets/{dsid}/plan", {"count": 12})
    assert status == 201, plan
    return dsid


def _all(api: Any, dsid: str) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = []
    page = 1
    while True:
        status, body, _ = api.get(f"/api/conversations?dataset_id={dsid}&page_size=100&page={page}")
        assert status == 200, body
        items += body["items"]
        if len(items) >= body["total"]:
            return items
        page += 1


def test_plan_inside_one_pair_gap_and_one_tier_gap(api: Any, api_b: Any) -> None:
    dsid = _dataset(api)
    before = {c["conversation_id"] for c in _all(api, dsid)}
    persona = SAMPLE["taxonomy"]["personas"][-1]["name"]
    emotion = SAMPLE["taxonomy"]["emotions"][-1]["name"]

    status, r, _ = api.post(
        f"/api/datasets/{dsid}/fill-gaps",
        {"gap": {"persona": persona, "emotion": emotion}, "count": 3},
    )
    assert status == 201, r
    assert r["planned"] == 3 and len(r["conversation_ids"]) == 3
    new = [c for c in _all(api, dsid) if c["conversation_id"] not in before]
    assert {(c["persona"], c["emotion"], c["status"]) for c in new} == {
        (persona, emotion, "not_generated")
    }
    assert len(new) == 3

    status, r, _ = api.post(
        f"/api/datasets/{dsid}/fill-gaps", {"gap": {"tier": "edge_case"}, "count": 2}
    )
    assert status == 201, r
    tiers = {c["tier"] for c in _all(api, dsid) if c["conversation_id"] in r["conversation_ids"]}
    assert tiers == {"edge_case"} and r["planned"] == 2

    # the target is what the user chose when planning, not changed by filling a gap
    status, ds, _ = api.get(f"/api/datasets/{dsid}")
    assert status == 200 and ds["target_count"] == 12, ds

    # a value outside the taxonomy, an unknown key, a count out of range: 400, nothing planned
    total = len(_all(api, dsid))
    for bad in (
        {"gap": {"persona": "Nobody"}, "count": 1},
        {"gap": {"colour": "red"}, "count": 1},
        {"gap": {"persona": persona}, "count": 0},
        {"gap": {"tier": "gold"}, "count": 1},
    ):
        status, err, _ = api.post(f"/api/datasets/{dsid}/fill-gaps", bad)
        assert status == 400, (bad, err)
        assert set(err["error"]) >= {"code", "message", "details"}
    assert len(_all(api, dsid)) == total

    # another organisation cannot plan into this dataset
    status, err, _ = api_b.post(
        f"/api/datasets/{dsid}/fill-gaps", {"gap": {"persona": persona}, "count": 1}
    )
    assert status == 404, err
    assert len(_all(api, dsid)) == total
