"""A 1,000-conversation job through the Distributed Map on the local stack as `make dev`
runs it (launcher, Lambda worker process, real ASL in moto), paused in the middle and
resumed: every conversation generated once and billed once."""

from __future__ import annotations

import json
import re
import signal
import time
import urllib.request
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import Api
from tests.e2e.test_restart import conversations, free_port, launch, wait

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

N = 1000


def simulator_stats(log: Path) -> dict[str, Any]:
    url = re.findall(r"SIMULATOR at (http://127\.0\.0\.1:\d+)", log.read_text())[-1]
    with urllib.request.urlopen(f"{url}/_sim/stats", timeout=10) as r:
        stats: dict[str, Any] = json.loads(r.read())
        return stats


def test_a_thousand_conversations_through_the_distributed_map_paused_and_resumed(
    tmp_path: Path,
) -> None:
    port, data, log = free_port(), tmp_path / "data", tmp_path / "launcher.log"
    proc = launch(
        port,
        data,
        log,
        LLM_SIM_LATENCY="0.05",
        RATE_LIMIT_RPM="60000",
        RATE_LIMIT_OTPM="1000000000",
        GENERATION_MAX_IN_FLIGHT="64",
        # Several Distributed Map executions (continue-as-new) around the pause.
        DISTRIBUTED_CHUNK_SIZE="400",
    )
    api = Api(f"http://127.0.0.1:{port}")
    try:
        status, ds, _ = api.post("/api/datasets/sample")
        assert status == 201, ds
        dsid = ds["dataset_id"]
        # The judge's own once-only billing is tested apart; here every call is generation.
        status, _, _ = api.patch(f"/api/datasets/{dsid}", {"budget_usd": 1000, "judge_mode": "off"})
        assert status == 200
        status, plan, _ = api.post(f"/api/datasets/{dsid}/plan", {"count": N})
        assert status == 201, plan
        status, accepted, _ = api.post(
            "/api/conversations/generate-all", {"dataset_id": dsid, "confirm": True}
        )
        assert status == 202, accepted
        job_id = accepted["job_id"]
        assert accepted["concurrency"]["cap"] is None  # adaptive, no default of 10
        in_flight: list[int] = []  # a point sample can fall between two executions

        def busy_past_300(j: dict) -> bool:
            in_flight.append(j["concurrency"]["in_flight"])
            return bool(j["completed"] >= 300)

        job = wait(api, job_id, busy_past_300, timeout=600)
        assert max(in_flight) >= 2, job["concurrency"]
        status, paused, _ = api.post(f"/api/jobs/{job_id}/pause")
        assert status == 200, paused
        job = wait(api, job_id, lambda j: j["status"] == "paused", timeout=120)
        at_pause = job["completed"]
        assert 300 <= at_pause < N, job
        assert job["concurrency"]["in_flight"] == 0
        time.sleep(2)
        status, still, _ = api.get(f"/api/jobs/{job_id}")
        assert still["completed"] == at_pause  # nothing runs while paused
        for _ in range(100):  # 409 until the paused execution has fully ended
            status, resumed, _ = api.post(f"/api/jobs/{job_id}/resume")
            if status != 409:
                break
            time.sleep(0.2)
        assert status == 200, resumed
        job = wait(api, job_id, lambda j: j["status"] not in ("running", "queued"), timeout=900)
        assert job["status"] == "completed", job
        assert (job["completed"], job["failed"], job["skipped"]) == (N, 0, 0), job

        convs = conversations(api, dsid)
        assert len(convs) == N
        assert {c["status"] for c in convs.values()} == {"generated"}
        # Billed once: the provider billed N calls, and the job's cost is the sum of the
        # N stored conversations' own calls (a second billed call would add to it).
        stats = simulator_stats(log)
        assert (stats["billed"], stats["judged"]) == (N, 0), stats
        assert round(sum(c["actual_cost_usd"] for c in convs.values()), 4) == round(
            job["cost_usd"], 4
        )
        for cid in list(convs)[:: N // 25]:  # a sample across the executions
            status, detail, _ = api.get(f"/api/conversations/{cid}")
            assert status == 200
            billed = [
                g
                for g in detail["generation_logs"]
                if g["billing"] == "actual" and g["purpose"] == "generation"
            ]
            assert len(billed) == 1, detail["generation_logs"]
    finally:
        proc.send_signal(signal.SIGINT)
        proc.wait(timeout=60)
