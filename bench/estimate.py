"""How close the cost and time estimates come to what the jobs then cost and take.

Runs the local stack (moto + the real ASL + the app's Lambda handlers) against the LLM
simulator and, on the sample dataset, compares ``POST /api/conversations/estimate`` with
the job that follows it:

1. nothing generated yet: the estimate for the first ``--first`` conversations
   (defaults: counted prompt tokens, a default answer length);
2. after those: the estimate for the next ``--next`` (learned from this dataset's
   observed costs; the target is an error within +-20%);
3. a second sample dataset with nothing generated: the estimate learned from the same
   templates' conversations in the first dataset;
4. economy mode (Message Batches): the time estimate against the time the job took.

The first conversations are the plan's first ones, which are all of the template tier:
the next ones mix all three tiers, so the learned estimate must carry what it saw over
to tiers it has not seen.

    .venv/bin/python bench/estimate.py            # --first 10 --next 50
    .venv/bin/python bench/estimate.py --first 10 --next 50 --poll 5 --economy 6

Prints one row per case (estimate, range, actual, error, whether the actual fell in the
range, basis) and exits 1 if the learned estimate (case 2) is off by more than 20%.
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

TARGET_ERROR = 0.20


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


def wait_job(base: str, job_id: str, timeout: float = 600) -> dict[str, Any]:
    deadline = time.time() + timeout
    while time.time() < deadline:
        _, job = call(base, "GET", f"/api/jobs/{job_id}")
        if job["status"] in ("completed", "failed", "cancelled", "paused"):
            return dict(job)
        time.sleep(0.5)
    raise RuntimeError(f"job {job_id} did not finish: {job}")


def seconds_of(job: dict[str, Any]) -> float:
    start = datetime.fromisoformat(job["started_at"].replace("Z", "+00:00"))
    end = datetime.fromisoformat(job["finished_at"].replace("Z", "+00:00"))
    return (end - start).total_seconds()


def new_dataset(base: str, count: int) -> tuple[str, list[str]]:
    status, ds = call(base, "POST", "/api/datasets/sample")
    assert status == 201, ds
    dsid = ds["dataset_id"]
    call(base, "PATCH", f"/api/datasets/{dsid}", {"budget_usd": 1000})
    status, plan = call(base, "POST", f"/api/datasets/{dsid}/plan", {"count": count})
    assert status == 201, plan
    return dsid, list(plan["conversation_ids"])


def measure(
    base: str, name: str, ids: list[str], *, mode: str = "standard", concurrency: int = 10
) -> dict[str, Any]:
    """Estimate ``ids``, generate them, compare."""
    status, est = call(
        base,
        "POST",
        "/api/conversations/estimate",
        {"ids": ids, "mode": mode, "max_concurrency": concurrency},
    )
    assert status == 200, est
    status, accepted = call(
        base,
        "POST",
        "/api/conversations/generate-batch",
        {"conversation_ids": ids, "confirm": True, "mode": mode, "max_concurrency": concurrency},
    )
    assert status == 202, accepted
    job = wait_job(base, accepted["job_id"])
    actual = float(job["cost_usd"])
    took = seconds_of(job)
    return {
        "case": name,
        "n": len(ids),
        "mode": mode,
        "estimated_usd": est["estimated_cost_usd"],
        "low_usd": est["estimated_cost_low_usd"],
        "high_usd": est["estimated_cost_high_usd"],
        "actual_usd": round(actual, 6),
        "cost_error": round((est["estimated_cost_usd"] - actual) / actual, 4) if actual else None,
        "in_range": est["estimated_cost_low_usd"] <= actual <= est["estimated_cost_high_usd"],
        "estimated_s": est["estimated_seconds"],
        "seconds_range": f"{est['estimated_seconds_low']}-{est['estimated_seconds_high']}",
        "actual_s": round(took, 1),
        "time_error": round((est["estimated_seconds"] - took) / took, 3) if took else None,
        "basis": est["basis"],
        "time_basis": est["time_basis"],
        "completed": job["completed"],
    }


def run(args: argparse.Namespace) -> list[dict[str, Any]]:
    from devstack.launcher import LocalStack

    env = {
        "LLM_SIM_LATENCY": str(args.latency),
        "LLM_SIM_LATENCY_JITTER": str(round(args.latency * 0.3, 3)),
        "LLM_SIM_SEED": str(args.seed),
        "RATE_LIMIT_RPM": "600",
        "RATE_LIMIT_OTPM": "100000000",
        "EXPENSIVE_ROUTE_RPM": "10000",
        "BATCH_POLL_SECONDS": str(args.poll),
        "AUTH_MODE": "none",  # this benchmark measures estimates, not sign-in
    }
    rows: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory() as tmp:
        for k, v in env.items():
            os.environ[k] = v
        stack = LocalStack(
            port=0,
            data_dir=Path(tmp),
            persist=False,
            quiet=True,
            llm_env=env,
            lambda_workers=args.workers,
        )
        stack.start()
        try:
            base = stack.url
            dsid, ids = new_dataset(base, args.first + args.next)
            rows.append(measure(base, "1 nothing generated yet", ids[: args.first]))
            rows.append(
                measure(
                    base,
                    f"2 after {args.first} generated",
                    ids[args.first : args.first + args.next],
                )
            )
            _, other = new_dataset(base, args.template_n)
            rows.append(measure(base, "3 new dataset, same templates", other))
            if args.economy:
                _, batch = new_dataset(base, args.economy)
                rows.append(measure(base, "4 economy (batches)", batch, mode="economy"))
        finally:
            stack.stop()
    return rows


def main() -> int:
    p = argparse.ArgumentParser()
    p.add_argument("--first", type=int, default=10, help="conversations generated first")
    p.add_argument("--next", type=int, default=50, help="conversations estimated after them")
    p.add_argument("--template-n", type=int, default=20, help="case 3: conversations")
    p.add_argument("--economy", type=int, default=6, help="case 4: conversations (0: skip)")
    p.add_argument("--poll", type=int, default=5, help="BATCH_POLL_SECONDS")
    p.add_argument("--latency", type=float, default=0.3, help="simulator seconds per call")
    p.add_argument("--seed", type=int, default=11)
    p.add_argument("--workers", type=int, default=1, help="Lambda worker processes")
    args = p.parse_args()
    rows = run(args)
    cols = [
        "case",
        "n",
        "estimated_usd",
        "low_usd",
        "high_usd",
        "actual_usd",
        "cost_error",
        "in_range",
        "estimated_s",
        "seconds_range",
        "actual_s",
        "time_error",
    ]
    print(
        f"\nEstimates vs actual on the sample dataset (simulator latency {args.latency}s, "
        f"batch poll {args.poll}s)"
    )
    print(" | ".join(f"{c:>30}" if c == "case" else f"{c:>13}" for c in cols))
    for r in rows:
        print(" | ".join(f"{r[c]!s:>30}" if c == "case" else f"{r[c]!s:>13}" for c in cols))
    for r in rows:
        print(f"{r['case']}: cost basis: {r['basis']}; time basis: {r['time_basis']}")
    learned = rows[1]
    error = abs(learned["cost_error"] or 0.0)
    print(
        f"\nEstimate error after {args.first} generated, for the next {args.next}: "
        f"{learned['cost_error']:+.1%} (target: within +-{TARGET_ERROR:.0%}); "
        f"time {learned['time_error']:+.1%}"
    )
    return 0 if error <= TARGET_ERROR else 1


if __name__ == "__main__":
    raise SystemExit(main())
