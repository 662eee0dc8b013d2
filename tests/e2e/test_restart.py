"""The local stack as a user runs it (`make dev`): Ctrl-C, restarts, and a kill mid-job."""

from __future__ import annotations

import contextlib
import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import Api

pytestmark = [pytest.mark.e2e, pytest.mark.slow]
ROOT = Path(__file__).resolve().parents[2]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def launch(port: int, data: Path, log: Path, **env: str) -> subprocess.Popen[bytes]:
    full_env = {
        **os.environ,
        "LLM_SIM_LATENCY": "0.3",
        "RATE_LIMIT_RPM": "6000",
        "EXPENSIVE_ROUTE_RPM": "10000",
        "AUTH_MODE": "none",
        "PYTHONUNBUFFERED": "1",
        **env,
    }
    full_env.pop("ANTHROPIC_API_KEY", None)
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "devstack.launcher",
            "--port",
            str(port),
            "--data-dir",
            str(data),
        ],
        cwd=ROOT,
        env=full_env,
        stdout=open(log, "ab"),  # noqa: SIM115 - the child owns it
        stderr=subprocess.STDOUT,
    )
    api = Api(f"http://127.0.0.1:{port}")
    deadline = time.time() + 90
    while time.time() < deadline:
        if proc.poll() is not None:
            raise AssertionError(f"launcher exited early:\n{log.read_text()[-3000:]}")
        try:
            status, body, _ = api.get("/api/health")
            if status == 200:
                return proc
        except OSError:
            pass
        time.sleep(0.3)
    proc.kill()
    raise AssertionError(f"launcher did not come up:\n{log.read_text()[-3000:]}")


def worker_pids(log: Path) -> list[int]:
    """The Lambda worker processes the launcher's banner names (the latest start)."""
    match = re.findall(r"worker process(?:es)? \(pids ([0-9, ]+)\)", log.read_text())
    return [int(p) for p in match[-1].split(",")] if match else []


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # A zombie (exited, not yet reaped by its dead parent's reaper) is not running.
    with contextlib.suppress(OSError):
        if Path(f"/proc/{pid}/stat").read_text().split(")")[-1].split()[0] == "Z":
            return False
    return True


def wait(api: Api, job_id: str, pred: Any, timeout: float = 120) -> dict:
    deadline = time.time() + timeout
    job: dict = {}
    while time.time() < deadline:
        status, job, _ = api.get(f"/api/jobs/{job_id}")
        if status == 200 and pred(job):
            return job
        time.sleep(0.2)
    raise AssertionError(f"timed out: {job}")


def conversations(api: Api, dsid: str) -> dict[str, dict]:
    out: dict[str, dict] = {}
    page = 1
    while True:
        status, body, _ = api.get(f"/api/conversations?dataset_id={dsid}&page_size=100&page={page}")
        assert status == 200, body
        out.update({c["conversation_id"]: c for c in body["items"]})
        if page >= body["pages"]:
            return out
        page += 1


def snapshot_rows(data: Path, job_id: str, status: str) -> list[str]:
    """The job's conversations in ``status`` in the last snapshot of the local stack."""
    snapshot = data / "tables" / "brightrun-local-conversations.jsonl"
    try:
        rows = [json.loads(line) for line in snapshot.read_text().splitlines()]
    except (OSError, ValueError):
        return []  # not written yet, or being replaced
    return sorted(
        r["conversation_id"]["S"]
        for r in rows
        if r.get("status", {}).get("S") == status and r.get("job_id", {}).get("S") == job_id
    )


def test_ctrl_c_exits_cleanly_and_data_survives_a_restart(tmp_path: Path) -> None:
    port, data, log = free_port(), tmp_path / "data", tmp_path / "launcher.log"
    proc = launch(port, data, log)
    api = Api(f"http://127.0.0.1:{port}")
    status, ds, _ = api.post("/api/datasets", {"name": "Survives restarts"})
    assert status == 201
    proc.send_signal(signal.SIGINT)
    assert proc.wait(timeout=60) == 0
    text = log.read_text()
    assert f"http://127.0.0.1:{port}" in text and "SIMULATOR" in text and "Stopped" in text
    proc = launch(port, data, log)
    try:
        status, again, _ = api.get(f"/api/datasets/{ds['dataset_id']}")
        assert status == 200 and again["name"] == "Survives restarts"
    finally:
        proc.send_signal(signal.SIGINT)
        proc.wait(timeout=60)


def test_killing_the_stack_mid_job_loses_nothing(tmp_path: Path) -> None:
    port, data, log = free_port(), tmp_path / "data", tmp_path / "launcher.log"
    # Answers of 1 s, two at a time: the job runs for several snapshots (every 3 s), so
    # the kill finds one holding finished work and calls in flight before the job ends.
    proc = launch(port, data, log, LLM_SIM_LATENCY="1.0")
    api = Api(f"http://127.0.0.1:{port}")
    try:
        status, ds, _ = api.post("/api/datasets/sample")
        dsid = ds["dataset_id"]
        api.patch(f"/api/datasets/{dsid}", {"budget_usd": 1000})
        status, plan, _ = api.post(f"/api/datasets/{dsid}/plan", {"count": 16})
        assert status == 201
        status, accepted, _ = api.post(
            "/api/conversations/generate-all",
            {"dataset_id": dsid, "max_concurrency": 2, "confirm": True},
        )
        job_id = accepted["job_id"]
        wait(api, job_id, lambda j: j["completed"] >= 4)
        # Kill right after a snapshot that caught finished work and calls in flight
        # (snapshots run every 3 s, and the one on disk may predate the finished work;
        # between calls, or while a judge call runs, none may be generating).
        deadline = time.time() + 60
        while time.time() < deadline and not (
            snapshot_rows(data, job_id, "generating") and snapshot_rows(data, job_id, "generated")
        ):
            time.sleep(0.05)
    finally:
        proc.kill()  # SIGKILL: no clean shutdown, no final snapshot
        proc.wait(timeout=30)
    # The Lambda runtimes (worker processes) die with the launcher: no orphans.
    workers = worker_pids(log)
    assert workers, log.read_text()[-2000:]
    deadline = time.time() + 15
    while time.time() < deadline and any(alive(pid) for pid in workers):
        time.sleep(0.2)
    assert not [pid for pid in workers if alive(pid)], "orphaned Lambda worker processes"

    # What the snapshot kept: the conversations left generating by the killed execution.
    generating_before = snapshot_rows(data, job_id, "generating")
    jobs = [json.loads(line) for line in (data / "tables" / "brightrun-local-jobs.jsonl").open()]
    (stalled,) = [j for j in jobs if j["job_id"]["S"] == job_id]
    assert stalled["status"]["S"] == "running"  # the kill left it running
    assert generating_before, "the kill caught calls in flight"
    kept_generated = snapshot_rows(data, job_id, "generated")
    assert kept_generated, "the kill came after finished work was snapshotted"
    proc = launch(port, data, log)
    try:
        before = conversations(api, dsid)
        generated_before = {
            cid: c["generated_at"] for cid, c in before.items() if c["status"] == "generated"
        }
        # the restore kept the work done before the kill (the resumed job may add more)
        assert set(kept_generated) <= set(generated_before), (kept_generated, generated_before)
        # Nobody presses Resume: the launcher's stalled-job check resumes it on start.
        job = wait(api, job_id, lambda j: j["status"] in ("completed", "failed"))
        assert job["status"] == "completed", job
        after = conversations(api, dsid)
        assert all(c["status"] == "generated" for c in after.values()), [
            c["status"] for c in after.values()
        ]
        # work finished before the kill was not redone
        for cid in kept_generated:
            assert after[cid]["generated_at"] == generated_before[cid]
        assert job["completed"] + job["failed"] + job["skipped"] == 16
        # no conversation was stored twice: one audit 'generate' record each since the restore
        status, audit, _ = api.get("/api/audit?action=conversation.generate&limit=1000")
        per_conv: dict[str, int] = {}
        for rec in audit["items"]:
            per_conv[rec["entity_id"]] = per_conv.get(rec["entity_id"], 0) + 1
        assert all(n == 1 for cid, n in per_conv.items() if cid in after), per_conv
        status, trail, _ = api.get(f"/api/audit?entity_id={job_id}&limit=100")
        resumes = [r for r in trail["items"] if r["action"] == "job.resume"]
        assert [(r["actor"], r["details"]["stalled"]) for r in resumes] == [("system", True)], (
            trail["items"],
            log.read_text()[-4000:],
        )
        # The calls in flight at the kill may have been billed: each charged once, at
        # its estimate, and counted in the job's cost.
        charged = sorted(
            x["conversation_id"]
            for r in trail["items"]
            if r["action"] == "job.charge_estimated"
            for x in r["after"]["charges"]
        )
        # A call the kill cut off is charged at its estimate; one that was answered (and
        # logged) just before the kill is not: the retry stores that paid answer.
        assert set(charged) <= set(generating_before), (charged, generating_before)
        logs = []
        for cid in after:
            status, detail, _ = api.get(f"/api/conversations/{cid}")
            logs += detail["generation_logs"]
            if cid in generating_before and cid not in charged:
                paid = [
                    g
                    for g in detail["generation_logs"]
                    if g["purpose"] == "generation" and g["billing"] == "actual"
                ]
                assert len(paid) == 1, detail["generation_logs"]
        estimated = [entry for entry in logs if entry.get("billing") == "estimated"]
        assert len(estimated) == len(charged)
    finally:
        proc.send_signal(signal.SIGINT)
        proc.wait(timeout=60)
