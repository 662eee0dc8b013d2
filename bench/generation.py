"""Generate All at the rate-limit bound, with and without injected faults.

Runs N conversations through the local stack (moto + the real ASL + the app's Lambda
handlers) against the LLM simulator with a given RPM limit and latency, and prints the
wall time, the bound max(N/RPM, N*latency/concurrency), the efficiency (bound/wall),
successes, failures, duplicates, and billed calls vs stored conversations.

    .venv/bin/python bench/generation.py                 # N=100, RPM=600, latency 0.3 s
    .venv/bin/python bench/generation.py --n 100 --faults 0.3
    # the realistic scenarios (see SCENARIOS), one after the other, or one by name:
    .venv/bin/python bench/generation.py --scenario all
    .venv/bin/python bench/generation.py --scenario latency6-1k
    # bad answers and timeouts: 10% malformed, 10% truncated, 5% hanging past the timeout
    .venv/bin/python bench/generation.py --n 60 --faults 0 --malformed 0.1 --truncated 0.1 \
        --timeouts 0.05

Without ``--concurrency`` the job names no cap: its calls in flight follow the account's
limits and the observed latency (the adaptive target). The bound is the account's:
max(N / RPM, output tokens / OTPM); with faults, the fault-adjusted bound counts every
request the run needed (refused and failed ones too) against the RPM. ``bound+lat_s``
adds one mean call latency (the last call cannot end before it), a floor no scheduler
beats. Generation is measured alone: the LLM judge of generated conversations is off
(``JUDGE_ENABLED=0``; in production it judges every generated conversation, one small
call each after the conversation is stored, which would add its own calls to the RPM).

"Billed calls" are the simulator's: every answer a real provider would charge for,
including the requests that hung past the client's timeout (billed when the simulator
finishes them, so the run waits out the hang before reading its counters). "Logged
billed calls" are the generation logs with an answer plus those charged at the estimate
(``billing: estimated``: a call that timed out may have been billed).
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
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


def pause_and_resume(base: str, job_id: str) -> str:
    """Pause the running job, wait until it has drained (paused, nothing in flight),
    then resume it; returns what was seen (done at the pause, in flight once paused)."""
    status, job = call(base, "POST", f"/api/jobs/{job_id}/pause")
    assert status == 200, job
    deadline = time.time() + 300
    while time.time() < deadline:
        _, job = call(base, "GET", f"/api/jobs/{job_id}")
        if job["status"] == "paused":
            break
        time.sleep(0.2)
    assert job["status"] == "paused", job
    at = job["completed"] + job["failed"] + job["skipped"]
    in_flight = (job.get("concurrency") or {}).get("in_flight")
    time.sleep(1.0)  # a paused job stays put
    _, still = call(base, "GET", f"/api/jobs/{job_id}")
    assert still["completed"] + still["failed"] + still["skipped"] == at, still
    for _ in range(100):  # 409 until the paused execution has fully ended
        status, resumed = call(base, "POST", f"/api/jobs/{job_id}/resume")
        if status != 409:
            break
        time.sleep(0.2)
    assert status == 200, resumed
    return f"at {at}, in flight {in_flight}"


def peak_rss_mb(stack: Any) -> float:
    """Peak resident memory of the local stack: this process (moto, API, simulator)
    plus every Lambda worker process (VmHWM: the high-water mark since each started)."""

    def hwm(pid: str) -> int:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
        return 0

    pids = ["self", *(str(p) for p in (stack.workers.pids if stack.workers else []))]
    return round(sum(hwm(p) for p in pids) / 1024.0, 1)


def run(
    n: int,
    rpm: int,
    latency: float,
    concurrency: int | None,
    faults: float,
    seed: int,
    workers: int = 1,
    *,
    malformed: float = 0.0,
    truncated: float = 0.0,
    timeouts: float = 0.0,
    timeout_seconds: float = 1.0,
    max_attempts: int | None = None,
    otpm: int | None = None,
    max_in_flight: int = 200,
    pause_at: float | None = None,
) -> dict[str, Any]:
    from chalicelib.bootstrap import get_container
    from chalicelib.store.records import ConversationRecord, GenerationLogRecord, TurnsRecord
    from devstack.launcher import LocalStack

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
        # Without injected hangs the timeout only has to outlast a slow answer.
        "LLM_TIMEOUT_SECONDS": str(
            timeout_seconds if timeouts else max(timeout_seconds, latency * 4 + 5)
        ),
        "LLM_SIM_RETRY_AFTER": "1",
        "LLM_SIM_SEED": str(seed),
        "RATE_LIMIT_RPM": str(rpm),
        "RATE_LIMIT_OTPM": str(otpm or 100_000_000),
        "LLM_SIM_OTPM": str(otpm or 0),
        # GenerateItem's reserved concurrency in a deployment sized for this tier.
        "GENERATION_MAX_IN_FLIGHT": str(max_in_flight),
        "JUDGE_ENABLED": "0",  # generation throughput only (see the module docstring)
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
            request: dict[str, Any] = {"dataset_id": dsid, "confirm": True}
            if concurrency:
                request["max_concurrency"] = concurrency
            if max_attempts:
                request["max_attempts"] = max_attempts
            status, job = call(base, "POST", "/api/conversations/generate-all", request)
            accepted_at = time.time()
            assert status == 202, job
            peak_in_flight, targets, paused = 0, [], None
            while True:
                # Poll gently (the UI polls every 2-5 s): the wall time comes from the
                # job's own finished_at, not from the polling granularity.
                _, state = call(base, "GET", f"/api/jobs/{job['job_id']}")
                live = state.get("concurrency") or {}
                peak_in_flight = max(peak_in_flight, int(live.get("in_flight") or 0))
                if state["status"] == "running" and live.get("target"):
                    targets.append(int(live["target"]))
                done = state["completed"] + state["failed"] + state["skipped"]
                if pause_at is not None and paused is None and done >= pause_at * n:
                    paused = pause_and_resume(base, job["job_id"])
                    continue
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
            output_tokens = sum(int(r.doc.get("output_tokens") or 0) for r in answered_logs)
            # The account's bound; with faults, every request the run made counts.
            requests = sim["requests"] if faults else n
            bound = max(requests / rpm * 60.0, output_tokens / otpm * 60.0 if otpm else 0.0)
            if concurrency:  # a cap given: the old bound, which it may bind
                bound = max(bound, n * latency / concurrency)
            tail = bound + latency
            return {
                "n": n,
                "rpm": rpm,
                "otpm": otpm or "-",
                "latency_s": latency,
                "concurrency": concurrency or "adaptive",
                "faults": faults,
                "bad_answers": f"{malformed}/{truncated}/{timeouts}",
                "wall_s": round(wall, 2),
                "bound_s": round(bound, 2),
                "efficiency": round(bound / wall, 3),
                "bound+lat_s": round(tail, 2),
                "eff_vs_bound+lat": round(tail / wall, 3),
                # where the wall time goes: from Generate All to the first call, the calls,
                # and from the last answer to the job's finished_at
                "accept_s": round(accepted_at - started_at, 2),
                "startup_s": round(sim["first_request_at"] - started_at, 2)
                if sim["first_request_at"]
                else "-",
                "calls_s": round(sim["last_answer_at"] - sim["first_request_at"], 2)
                if sim["first_request_at"] and sim["last_answer_at"]
                else "-",
                "finish_s": round(finished - sim["last_answer_at"], 2)
                if sim["last_answer_at"]
                else "-",
                # how the calls were spread: from the first start to the median and the
                # last start (a burst starts many at once; a smooth limiter 1/rate apart)
                "start_p50_s": _start_offset(sim["request_times"], 0.5),
                "start_last_s": _start_offset(sim["request_times"], 1.0),
                "requests": sim["requests"],
                "output_tokens": output_tokens,
                "tokens_per_conv": round(output_tokens / max(len(answered_logs), 1)),
                "target": max(targets) if targets else "-",
                "peak_in_flight": peak_in_flight,
                "paused_resumed": paused or "-",
                "peak_rss_mb": peak_rss_mb(stack),
                "cpu_s_per_conversation": round(cpu_used / n, 3),
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
                # Answered (billed) calls of the most-billed conversation: 1 without faults.
                "max_billed_per_conv": max(
                    (
                        sum(1 for r in billed_logs if r.doc["conversation_id"] == cid)
                        for cid in {r.doc["conversation_id"] for r in billed_logs}
                    ),
                    default=0,
                ),
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


def _start_offset(times: list[float], quantile: float) -> float | str:
    if not times:
        return "-"
    ordered = sorted(times)
    return round(ordered[min(int(quantile * len(ordered)), len(ordered) - 1)] - ordered[0], 2)


def _run_child(conn: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> None:
    try:
        conn.send(run(*args, **kwargs))
    except BaseException as e:  # the parent prints it; a half-run row is no figure
        conn.send({"error": f"{type(e).__name__}: {e}"})
        raise


def run_isolated(*args: Any, **kwargs: Any) -> dict[str, Any]:
    """``run`` in a fresh process: each row gets its own stack, environment and app
    container (a second stack in the same process would inherit the first one's)."""
    ctx = mp.get_context("spawn")
    parent, child = ctx.Pipe()
    proc = ctx.Process(target=_run_child, args=(child, args, kwargs))
    proc.start()
    result: dict[str, Any] = parent.recv()
    proc.join()
    if "error" in result:
        raise RuntimeError(f"benchmark run failed: {result['error']}")
    return result


# The realistic scenarios: (what it shows, run() arguments, the target).
SCENARIOS: dict[str, tuple[str, dict[str, Any], str]] = {
    "fast": (
        "answers in 0.3 s, 600 RPM",
        {"n": 100, "rpm": 600, "latency": 0.3, "faults": [0.0, 0.3]},
        "efficiency >= 0.9; with 30% faults >= 0.8 of the fault-adjusted bound",
    ),
    "latency6": (
        "answers in 6 s +-20%, 600 RPM, no cap given",
        {"n": 100, "rpm": 600, "latency": 6.0},
        "efficiency >= 0.85",
    ),
    "latency6-1k": (
        "answers in 6 s +-20%, 1,200 RPM, 1,000 conversations (Distributed Map)",
        {"n": 1000, "rpm": 1200, "latency": 6.0},
        "efficiency >= 0.85 (bound 50 s)",
    ),
    "otpm": (
        "the output-token limit binds: 60,000 OTPM, 6,000 RPM, answers in 3 s",
        {"n": 150, "rpm": 6000, "latency": 3.0, "otpm": 60_000},
        "wall within 10% of the OTPM bound (efficiency >= 0.9)",
    ),
    "pause-resume": (
        "1,000 conversations through the Distributed Map, paused at 40% and resumed",
        {"n": 1000, "rpm": 6000, "latency": 0.3, "pause_at": 0.4},
        "every conversation generated once and billed once",
    ),
}

COLS = [
    "faults",
    "concurrency",
    "wall_s",
    "bound_s",
    "efficiency",
    "bound+lat_s",
    "eff_vs_bound+lat",
    "accept_s",
    "startup_s",
    "calls_s",
    "start_p50_s",
    "start_last_s",
    "finish_s",
    "target",
    "peak_in_flight",
    "requests",
    "tokens_per_conv",
    "generated",
    "failed",
    "duplicates",
    "billed_calls",
    "logged_billed_calls",
    "estimated_calls",
    "retried_items",
    "stored_conversations",
    "cost_counted_once",
    "max_billed_per_conv",
    "paused_resumed",
    "cpu_s_per_conversation",
    "peak_rss_mb",
]


def print_table(title: str, rows: list[dict[str, Any]]) -> None:
    print(f"\n{title}")
    print(" | ".join(f"{c:>14}" for c in COLS))
    for r in rows:
        print(" | ".join(f"{r[c]!s:>14}" for c in COLS))
    for r in rows:
        print(
            f"faults={r['faults']}: simulator faults injected {r['sim_faults']}, "
            f"job cost ${r['job_cost_usd']} vs logged ${r['logged_cost_usd']}"
        )
        for message in r["failures"]:
            print(f"  failed: {message}")


def main() -> int:
    p = argparse.ArgumentParser()
    p.add_argument(
        "--scenario",
        choices=[*SCENARIOS, "all"],
        help="run named realistic scenario(s) instead of the flags below",
    )
    p.add_argument("--n", type=int, default=100)
    p.add_argument("--rpm", type=int, default=600)
    p.add_argument("--otpm", type=int, default=None, help="output tokens per minute limit")
    p.add_argument("--latency", type=float, default=0.3)
    p.add_argument(
        "--concurrency", type=int, default=None, help="a max_concurrency cap (default: none)"
    )
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
        "--max-in-flight",
        type=int,
        default=200,
        help="GENERATION_MAX_IN_FLIGHT (GenerateItem's reserved concurrency)",
    )
    p.add_argument("--pause-at", type=float, default=None, help="pause at this share done")
    p.add_argument(
        "--workers", type=int, default=1, help="Lambda worker processes (0: in-process, as tests)"
    )
    args = p.parse_args()
    judge = (
        "LLM judge off (JUDGE_ENABLED=0): generation throughput alone; the judge's one "
        "small call per stored conversation is measured by its own tests"
    )
    if args.scenario:
        names = list(SCENARIOS) if args.scenario == "all" else [args.scenario]
        for name in names:
            what, params, target = SCENARIOS[name]
            params = dict(params)
            faults = params.pop("faults", [0.0])
            rows = [
                run_isolated(
                    concurrency=None,
                    faults=f,
                    seed=args.seed,
                    workers=args.workers,
                    max_in_flight=args.max_in_flight,
                    **params,
                )
                for f in faults
            ]
            print_table(
                f"Scenario {name}: {what}; N={params['n']}, RPM={params['rpm']}, "
                f"OTPM={params.get('otpm') or '-'}, latency={params['latency']}s +-20%, "
                f"no cap, ceiling {args.max_in_flight} in flight, Lambda worker "
                f"processes={args.workers}; {judge}. Target: {target}",
                rows,
            )
        return 0
    rows = [
        run_isolated(
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
            otpm=args.otpm,
            max_in_flight=args.max_in_flight,
            pause_at=args.pause_at,
        )
        for f in args.faults
    ]
    print_table(
        f"Generate All: N={args.n}, RPM={args.rpm}, OTPM={args.otpm or '-'}, "
        f"latency={args.latency}s, MaxConcurrency={args.concurrency or 'adaptive'}, "
        f"Lambda worker processes={args.workers}, "
        f"malformed/truncated/timeouts={args.malformed}/{args.truncated}/{args.timeouts}, "
        f"max_attempts={args.max_attempts or 'default'}; {judge}",
        rows,
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
