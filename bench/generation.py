"""Generate All at the rate-limit bound, with and without injected faults.

Runs N conversations through the local stack (moto + the real ASL + the app's Lambda
handlers) against the LLM simulator with a given RPM limit and latency, and prints the
wall time, the bound max(N/RPM, N*latency/concurrency), the efficiency (bound/wall),
successes, failures, duplicates, and billed calls vs stored conversations.

    .venv/bin/python bench/generation.py                 # N=100, RPM=600, latency 0.3 s
    .venv/bin/python bench/generation.py --n 100 --faults 0.3
    # bad answers and timeouts: 10% malformed, 10% truncated, 5% hanging past the timeout
    .venv/bin/python bench/generation.py --n 60 --faults 0 --malformed 0.1 --truncated 0.1 \
        --timeouts 0.05

"Billed calls" are the simulator's: every answer a real provider would charge for,
including the requests that hung past the client's timeout (billed when the simulator
finishes them, so the run waits out the hang before reading its counters). "Logged
billed calls" are the generation logs with an answer plus those charged at the estimate
(``billing: estimated``: a call that timed out may have been billed).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
import urllib.request
from datetime import datetime
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))


def call(base: str, method: str, path: str, body: Any = None) -> tuple[int, Any]:
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(
        base + path, data=data, method=method, headers={"Content-Type": "application/json"}
    )
    try:
        with urllib.request.urlopen(req, timeout=120) as r:
            return r.status, json.loads(r.read() or b"null")
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read() or b"null")


def stack_cpu_seconds(stack: Any) -> float:
    """CPU seconds used so far by this process (moto, API, simulator, in-process
    handlers) plus the live Lambda worker processes."""
    own = time.process_time()
    workers = 0.0
    for pid in stack.workers.pids if stack.workers else []:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        workers += (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    return own + workers


def run(
    n: int,
    rpm: int,
    latency: float,
    concurrency: int,
    faults: float,
    seed: int,
    workers: int = 1,
    *,
    malformed: float = 0.0,
    truncated: float = 0.0,
    timeouts: float = 0.0,
    timeout_seconds: float = 1.0,
    max_attempts: int | None = None,
) -> dict[str, Any]:
    from chalicelib.bootstrap import get_container
    from chalicelib.local.launcher import LocalStack
    from chalicelib.store.records import ConversationRecord, GenerationLogRecord, TurnsRecord

    third = round(faults / 3, 4)
    env = {
        "LLM_SIM_RPM": str(rpm),
        "LLM_SIM_LATENCY": str(latency),
        "LLM_SIM_LATENCY_JITTER": str(round(latency * 0.2, 3)),
        "LLM_SIM_RATE_429": str(third),
        "LLM_SIM_RATE_529": str(third),
        "LLM_SIM_RATE_500": str(third),
        "LLM_SIM_RATE_MALFORMED": str(malformed),
        "LLM_SIM_RATE_TRUNCATED": str(truncated),
        "LLM_SIM_RATE_TIMEOUT": str(timeouts),
        # A hang outlasts the client's timeout (then the SDK retries), and is short
        # enough for the run to wait it out before counting the billed calls.
        "LLM_SIM_TIMEOUT_HANG": str(timeout_seconds * 2),
        "LLM_TIMEOUT_SECONDS": str(timeout_seconds),
        "LLM_SIM_RETRY_AFTER": "1",
        "LLM_SIM_SEED": str(seed),
        "RATE_LIMIT_RPM": str(rpm),
        "RATE_LIMIT_OTPM": "100000000",
        "EXPENSIVE_ROUTE_RPM": "10000",
        "AUTH_MODE": "none",  # this benchmark measures generation, not sign-in
    }
    with tempfile.TemporaryDirectory() as tmp:
        stack = LocalStack(
            port=0,
            data_dir=Path(tmp),
            persist=False,
            quiet=True,
            llm_env=env,
            lambda_workers=workers,
        )
        for k, v in env.items():
            os.environ[k] = v
        stack.start()
        try:
            base = stack.url
            _, ds = call(base, "POST", "/api/datasets/sample")
            dsid = ds["dataset_id"]
            call(base, "PATCH", f"/api/datasets/{dsid}", {"budget_usd": 1000})
            status, plan = call(base, "POST", f"/api/datasets/{dsid}/plan", {"count": n})
            assert status == 201, plan
            stack.simulator.reset_stats()
            started_at = time.time()
            cpu_before = stack_cpu_seconds(stack)
            request: dict[str, Any] = {
                "dataset_id": dsid,
                "max_concurrency": concurrency,
                "confirm": True,
            }
            if max_attempts:
                request["max_attempts"] = max_attempts
            status, job = call(base, "POST", "/api/conversations/generate-all", request)
            assert status == 202, job
            while True:
                # Poll gently (the UI polls every 2-5 s): the wall time comes from the
                # job's own finished_at, not from the polling granularity.
                _, state = call(base, "GET", f"/api/jobs/{job['job_id']}")
                if state["status"] in ("completed", "failed", "cancelled", "paused"):
                    break
                time.sleep(0.5)
            cpu_used = stack_cpu_seconds(stack) - cpu_before  # includes ~0.5 s/s of polling
            if timeouts:
                time.sleep(timeout_seconds * 2 + 1)  # hung requests are billed when they end
            finished = datetime.fromisoformat(
                state["finished_at"].replace("Z", "+00:00")
            ).timestamp()
            wall = finished - started_at
            c = get_container()
            tenant = c.settings.default_tenant
            convs = c.conversation_repo.list_for_dataset(tenant, dsid)
            generated = [x for x in convs if x.status.value == "generated"]
            records = list(ConversationRecord.query(tenant))
            turns = list(TurnsRecord.query(tenant))
            logs = [
                r
                for cv in convs
                for r in GenerationLogRecord.query(f"{tenant}#{cv.conversation_id}")
            ]
            answered_logs = [r for r in logs if r.doc.get("response_payload")]
            estimated_logs = [
                r
                for r in logs
                if not r.doc.get("response_payload") and r.doc.get("billing") == "estimated"
            ]
            billed_logs = answered_logs + estimated_logs
            sim = stack.simulator.stats()
            conv_ids = [r.conversation_id for r in records if not r.deleted]
            logged_cost = round(sum(r.doc["cost_usd"] for r in billed_logs), 6)
            bound = max(n / rpm * 60.0, n * latency / concurrency)
            return {
                "n": n,
                "rpm": rpm,
                "latency_s": latency,
                "concurrency": concurrency,
                "faults": faults,
                "bad_answers": f"{malformed}/{truncated}/{timeouts}",
                "wall_s": round(wall, 2),
                "bound_s": round(bound, 2),
                "efficiency": round(bound / wall, 3),
                "generated": len(generated),
                "failed": state["failed"],
                "success_rate": round(len(generated) / n, 4),
                "duplicates": (len(conv_ids) - len(set(conv_ids)))
                + (len(turns) - len({t.conversation_id for t in turns})),
                "billed_calls": sim["billed"],
                "logged_billed_calls": len(billed_logs),
                "estimated_calls": len(estimated_logs),
                "retried_items": sum(
                    1
                    for cv in convs
                    if sum(1 for r in logs if r.doc["conversation_id"] == cv.conversation_id) > 1
                ),
                "stored_conversations": len(turns),
                "job_cost_usd": round(state["cost_usd"], 6),
                "logged_cost_usd": logged_cost,
                "cost_counted_once": abs(round(state["cost_usd"], 6) - logged_cost) < 1e-6
                and len(billed_logs) == sim["billed"],
                "sim_faults": sim["faults"],
                "failures": [x.error_message for x in convs if x.status.value == "failed"],
                "cpu_ms_per_conversation": round(cpu_used / n * 1000, 1),
            }
        finally:
            stack.stop()


def main() -> int:
    p = argparse.ArgumentParser()
    p.add_argument("--n", type=int, default=100)
    p.add_argument("--rpm", type=int, default=600)
    p.add_argument("--latency", type=float, default=0.3)
    p.add_argument("--concurrency", type=int, default=10)
    p.add_argument("--faults", type=float, nargs="*", default=[0.0, 0.3])
    p.add_argument("--seed", type=int, default=11)
    p.add_argument("--malformed", type=float, default=0.0, help="share of malformed answers")
    p.add_argument("--truncated", type=float, default=0.0, help="share cut off at max_tokens")
    p.add_argument("--timeouts", type=float, default=0.0, help="share hanging past the timeout")
    p.add_argument("--timeout-seconds", type=float, default=1.0, help="LLM_TIMEOUT_SECONDS")
    p.add_argument(
        "--max-attempts", type=int, default=None, help="the job's max_attempts (default: 3)"
    )
    p.add_argument(
        "--workers", type=int, default=1, help="Lambda worker processes (0: in-process, as tests)"
    )
    args = p.parse_args()
    rows = [
        run(
            args.n,
            args.rpm,
            args.latency,
            args.concurrency,
            f,
            args.seed,
            args.workers,
            malformed=args.malformed,
            truncated=args.truncated,
            timeouts=args.timeouts,
            timeout_seconds=args.timeout_seconds,
            max_attempts=args.max_attempts,
        )
        for f in args.faults
    ]
    cols = [
        "faults",
        "bad_answers",
        "wall_s",
        "bound_s",
        "efficiency",
        "generated",
        "failed",
        "success_rate",
        "duplicates",
        "billed_calls",
        "logged_billed_calls",
        "estimated_calls",
        "retried_items",
        "stored_conversations",
        "cost_counted_once",
        "cpu_ms_per_conversation",
    ]
    print(
        f"\nGenerate All: N={args.n}, RPM={args.rpm}, latency={args.latency}s, "
        f"MaxConcurrency={args.concurrency}, Lambda worker processes={args.workers}, "
        f"malformed/truncated/timeouts={args.malformed}/{args.truncated}/{args.timeouts}, "
        f"max_attempts={args.max_attempts or 'default'}"
    )
    print(" | ".join(f"{c:>14}" for c in cols))
    for r in rows:
        print(" | ".join(f"{r[c]!s:>14}" for c in cols))
    for r in rows:
        print(
            f"faults={r['faults']}: simulator faults injected {r['sim_faults']}, job cost ${r['job_cost_usd']} vs logged ${r['logged_cost_usd']}"
        )
        for message in r["failures"]:
            print(f"  failed: {message}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
