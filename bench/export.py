"""Export benchmark: approved conversations -> training file in S3, time and peak memory.

    .venv/bin/python bench/export.py [--sizes 1000 10000] [--formats openai] [--turns 12]
                                     [--profile] [--split]

Honest setup, three processes:
1. a *server* process runs the local stack (moto server provisioned from the infra
   template) and holds the data: one dataset per size, every conversation approved with
   ``--turns`` turns, written with pynamodb ``batch_write`` (ConversationRecord +
   TurnsRecord rows, like the repository does), then exports 20 conversations once so
   moto's first-request costs (loading a service model) stay out of the timings;
2. for every (size, format) a *fresh* child process (multiprocessing "spawn") that only
   imports the app, points it at the stack through the same environment variables the
   launcher sets, and runs the export through ``get_container().exports`` exactly as the
   API does: ``create`` (the request path: validation, the approved count, the record),
   then ``run`` (the worker: stream, write every file (one per split with --split), the
   manifest and the zip bundle, multipart upload). It reports its own
   wall time, CPU time and peak RSS (``resource.getrusage(...).ru_maxrss``).

Targets: >= 2,000 conversations/s end to end (create + run) and peak RSS at the largest
size <= 1.25x the RSS at the smallest. Exit status 1 when a target is missed. The machine
is shared: wall-clock timings are noisy, so the CPU seconds of both processes (the app
and the moto server) are printed too, and the conversations per CPU second they give.
The time spent waiting on each AWS operation shows where the wall clock goes (against
moto: its Query, which re-sorts the whole table for every 1 MB page, and its per-item
response serialisation). ``--profile`` runs the export under cProfile in the child
(reads then happen in the caller's thread) and prints the top functions.
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import os
import random
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

TENANT = "tenant-bench"
RATE_TARGET = 2000.0
RSS_RATIO_TARGET = 1.25
ENV_KEYS = (
    "STAGE",
    "AWS_ENDPOINT_URL",
    "TABLE_PREFIX",
    "EXPORT_BUCKET",
    "NOTIFICATION_TOPIC_ARN",
    "STATE_MACHINE_ARN",
    "APP_BASE_URL",
    "RUN_EXPORT_FUNCTION",
    "AWS_ACCESS_KEY_ID",
    "AWS_SECRET_ACCESS_KEY",
    "AWS_SESSION_TOKEN",
    "AWS_DEFAULT_REGION",
    "AWS_REGION",
    "MOTO_PORT",
)

PERSONAS = ("Anxious Investor", "Pre-Retiree", "Young Professional", "Small Business Owner")
EMOTIONS = ("Fear", "Hope", "Confusion", "Frustration")
TOPICS = ("Market Volatility", "Retirement Income", "Fees", "Tax Planning", "Estate")
SENTENCES = (
    "I have been looking at my statement and the numbers went down again this month.",
    "That is a completely understandable reaction, and it is worth looking at calmly.",
    "Your plan assumes a long horizon, so short swings matter less than they feel.",
    "Can you explain what the advisory fee covers and how it is calculated?",
    "The fee is 0.85% a year on assets we manage, billed quarterly in arrears.",
    "What happens to my required minimum distributions if I keep working past 73?",
    "If you still work for the employer that sponsors the plan, you can often delay them.",
    "I would like to talk to my lead advisor before I change anything.",
)


# --------------------------------------------------------------------------- server process


def _load(dataset_id: str, n: int, turns: int, seed: int) -> None:
    from chalicelib.domain.models import (
        Conversation,
        ConversationStatus,
        Dataset,
        Tier,
        utcnow,
    )
    from chalicelib.store.mapping import record_from_domain
    from chalicelib.store.records import ConversationRecord, TurnsRecord, tenant_key
    from chalicelib.store.repositories import DynamoDatasetRepository

    rng = random.Random(seed)
    DynamoDatasetRepository().create(
        Dataset(tenant_id=TENANT, dataset_id=dataset_id, name=f"bench {n}", created_by="bench")
    )
    now = utcnow()
    now_ms = int(now.timestamp() * 1000)
    tiers = list(Tier)
    with ConversationRecord.batch_write() as convs, TurnsRecord.batch_write() as turn_rows:
        for i in range(n):
            cid = f"conv_{dataset_id}_{i:06d}"
            body = [
                {
                    "turn_number": t + 1,
                    "role": "user" if t % 2 == 0 else "assistant",
                    "content": " ".join(rng.choices(SENTENCES, k=3)) + f" ({i}.{t})",
                }
                for t in range(turns)
            ]
            c = Conversation(
                tenant_id=TENANT,
                dataset_id=dataset_id,
                conversation_id=cid,
                persona=PERSONAS[i % len(PERSONAS)],
                emotion=EMOTIONS[i % len(EMOTIONS)],
                topic=TOPICS[i % len(TOPICS)],
                intent="Seek Reassurance",
                tone="Warm",
                tier=tiers[i % len(tiers)],
                chunk_id=f"chunk-{i // 3}",
                title=f"Conversation {i}",
                status=ConversationStatus.APPROVED,
                quality_score=round(6 + rng.random() * 4, 1),
                turn_count=turns,
                actual_cost_usd=0.01,
                model="claude-sonnet-4-6",
                approved_by="bench",
                approved_at=now,
            )
            convs.save(
                record_from_domain(
                    ConversationRecord,
                    c,
                    dataset_key=tenant_key(TENANT, dataset_id),
                    updated_ms=now_ms + i,
                    search_text=" ".join(t["content"] for t in body).lower(),
                    deleted=False,
                )
            )
            turn_rows.save(
                TurnsRecord(TENANT, cid, turns=body, created_at=now)  # type: ignore[call-arg]
            )


def _serve(conn: Any, sizes: list[int], turns: int) -> None:
    import logging

    logging.disable(logging.WARNING)
    import warnings

    warnings.filterwarnings("ignore")
    from chalicelib.bootstrap import get_container
    from devstack.launcher import LocalStack

    stack = LocalStack(
        port=0,
        data_dir=Path(tempfile.mkdtemp(prefix="bench-export-")),
        persist=False,
        serve_frontend=False,
        quiet=True,
    ).start()
    get_container()  # configures the pynamodb records against the stack
    datasets = {}
    for n in sizes:
        t0 = time.perf_counter()
        dataset_id = f"ds_bench_{n}"
        _load(dataset_id, n, turns, seed=n)
        datasets[n] = dataset_id
        print(f"  loaded {n:>6} conversations in {time.perf_counter() - t0:6.1f} s", flush=True)
    # Warm the emulator: moto loads a service's botocore model and builds its handlers
    # on the first request (S3's model alone is ~0.3 s of CPU), a cost real S3 and
    # DynamoDB do not have. One small export through every path before timing.
    from chalicelib.domain.models import ExportFormat

    _load("ds_bench_warm", 20, turns, seed=0)
    warm = get_container().exports
    warm.run_async = None  # written inline, in this process
    warm.create(TENANT, "bench", ExportFormat.OPENAI, {"dataset_id": "ds_bench_warm"}, None)
    env = {k: os.environ[k] for k in ENV_KEYS if k in os.environ}
    conn.send({"env": env, "datasets": datasets})
    while conn.recv() == "cpu":  # until "stop": CPU seconds this process has used
        conn.send(time.process_time())
    stack.stop()


# --------------------------------------------------------------------------- export child


def _rss_mb() -> float:
    import resource

    # Linux reports ru_maxrss in KiB.
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _time_aws_calls(service: Any) -> dict[str, list[float]]:
    """Wall time spent waiting on each AWS operation (DynamoDB and S3 botocore clients):
    the part of the export that the (moto) server, not this process, is responsible for."""
    from chalicelib.store.records import shared_connection

    calls: dict[str, list[float]] = {}

    def timed(inner: Any, prefix: str) -> Any:
        def wrapper(self: Any, operation_name: str, kwargs: Any) -> Any:
            t0 = time.perf_counter()
            try:
                return inner(self, operation_name, kwargs)
            finally:
                entry = calls.setdefault(f"{prefix}{operation_name}", [0, 0.0])
                entry[0] += 1
                entry[1] += time.perf_counter() - t0

        return wrapper

    # Every table (and the export's reads) goes through the one shared botocore client.
    dynamodb_cls = type(shared_connection().client)
    dynamodb_cls._make_api_call = timed(dynamodb_cls._make_api_call, "dynamodb.")
    s3_cls = type(service.s3)
    s3_cls._make_api_call = timed(s3_cls._make_api_call, "s3.")
    return calls


def _export(
    conn: Any, env: dict[str, str], dataset_id: str, fmt: str, split: bool, profile: bool
) -> None:
    os.environ.update(env)
    import logging

    logging.disable(logging.WARNING)
    t_import = time.perf_counter()
    import app  # noqa: F401  (what a Lambda cold start imports)
    from chalicelib.bootstrap import get_container
    from chalicelib.domain.models import ExportFormat

    service = get_container().exports
    if profile:  # cProfile sees one thread: read in the caller's thread
        from chalicelib.export import service as export_service

        export_service.PREFETCH_PAGES = 0
    import_s = time.perf_counter() - t_import
    calls = _time_aws_calls(service)
    queued: list[str] = []
    service.run_async = lambda tenant_id, export_id: queued.append(export_id)
    if os.environ.get("BENCH_TRACE_MEMORY"):  # where the memory that grows with N goes
        import threading
        import tracemalloc

        tracemalloc.start(8)
        biggest: list[Any] = [0, None]

        def watch() -> None:  # a snapshot at the traced peak (transient growth shows)
            while not biggest[1] == "stop":
                current, _ = tracemalloc.get_traced_memory()
                if current > biggest[0] * 1.1:
                    biggest[0] = current
                    biggest.append(tracemalloc.take_snapshot())
                time.sleep(0.5)

        threading.Thread(target=watch, daemon=True).start()
    rss_before = _rss_mb()
    cpu0 = time.process_time()
    t0 = time.perf_counter()
    profiler = None
    if profile:
        import cProfile

        profiler = cProfile.Profile()
        profiler.enable()
    record = service.create(
        TENANT,
        "bench",
        ExportFormat(fmt),
        {"dataset_id": dataset_id},
        {"train": 0.8, "validation": 0.1, "test": 0.1} if split else None,
    )
    t1 = time.perf_counter()
    if queued:  # above INLINE_LIMIT: what the async Lambda runs
        record = service.run(TENANT, record.export_id)
    t2 = time.perf_counter()
    if os.environ.get("BENCH_TRACE_MEMORY"):
        import tracemalloc

        current, peak = tracemalloc.get_traced_memory()
        print(f"traced: {current / 2**20:.1f} MiB still held, peak {peak / 2**20:.1f} MiB")
        at_peak = biggest[-1] if len(biggest) > 2 else tracemalloc.take_snapshot()
        biggest[1] = "stop"
        for stat in at_peak.statistics("traceback")[:6]:
            print(f"  {stat.size / 2**20:.1f} MiB in {stat.count} blocks")
            for line in stat.traceback.format()[-6:]:
                print("   ", line)
    if profiler is not None:
        import io
        import pstats

        profiler.disable()
        out = io.StringIO()
        stats = pstats.Stats(profiler, stream=out).sort_stats("tottime")
        stats.print_stats(40)
        stats.print_callers("raw_decode")
        print(out.getvalue(), flush=True)
    conn.send(
        {
            "status": record.status.value,
            "count": record.conversation_count,
            "bytes": record.stats.get("bytes", 0),
            "error": record.error_message,
            "import_s": import_s,
            "create_s": t1 - t0,
            "run_s": t2 - t1,
            "wall_s": t2 - t0,
            "cpu_s": time.process_time() - cpu0,
            "rss_before_mb": rss_before,
            "rss_peak_mb": _rss_mb(),
            "calls": calls,
        }
    )


# --------------------------------------------------------------------------- driver


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[1000, 10000])
    parser.add_argument("--formats", nargs="+", default=["openai"])
    parser.add_argument("--turns", type=int, default=12)
    parser.add_argument("--split", action="store_true", help="export with an 80/10/10 split")
    parser.add_argument("--profile", action="store_true", help="cProfile the export child")
    args = parser.parse_args(argv)
    sizes = sorted(args.sizes)
    ctx = mp.get_context("spawn")

    print(f"Loading {sizes} approved conversations x {args.turns} turns into the local stack...")
    parent, child = ctx.Pipe()
    server = ctx.Process(target=_serve, args=(child, sizes, args.turns), daemon=True)
    server.start()
    setup = parent.recv()
    results: list[tuple[int, str, dict[str, Any]]] = []
    try:
        for fmt in args.formats:
            for n in sizes:
                p_conn, c_conn = ctx.Pipe()
                proc = ctx.Process(
                    target=_export,
                    args=(
                        c_conn,
                        setup["env"],
                        setup["datasets"][n],
                        fmt,
                        args.split,
                        args.profile,
                    ),
                )
                parent.send("cpu")
                server_cpu = parent.recv()
                proc.start()
                r = p_conn.recv()
                proc.join()
                parent.send("cpu")
                # includes the export record writes and the audit: all of the export
                r["server_cpu_s"] = parent.recv() - server_cpu
                results.append((n, fmt, r))
                if r["status"] != "ready" or r["count"] != n:
                    print(f"  export failed for {n} {fmt}: {r}")
    finally:
        parent.send("stop")
        server.join(timeout=30)

    split = " split 80/10/10" if args.split else ""
    print(f"\nExport benchmark ({args.turns} turns per conversation{split}; shared 2-core machine)")
    head = (
        f"{'format':<12}{'convs':>7}{'create s':>10}{'run s':>8}{'total s':>9}{'conv/s':>8}"
        f"{'app cpu':>9}{'moto cpu':>10}{'conv/cpu-s':>12}{'app only':>10}"
        f"{'MiB':>7}{'RSS base':>10}{'RSS peak':>10}"
    )
    print(head)
    print("-" * len(head))
    rate_ok = rss_ok = True
    for n, fmt, r in results:
        rate = n / r["wall_s"] if r["wall_s"] else float("inf")
        rate_ok &= rate >= RATE_TARGET and r["status"] == "ready" and r["count"] == n
        cpu_rate = n / (r["cpu_s"] + r["server_cpu_s"])
        print(
            f"{fmt:<12}{n:>7}{r['create_s']:>10.2f}{r['run_s']:>8.2f}{r['wall_s']:>9.2f}"
            f"{rate:>8.0f}{r['cpu_s']:>9.2f}{r['server_cpu_s']:>10.2f}{cpu_rate:>12.0f}"
            f"{n / r['cpu_s']:>10.0f}{r['bytes'] / 2**20:>7.1f}"
            f"{r['rss_before_mb']:>9.0f}M{r['rss_peak_mb']:>9.0f}M"
        )
    print(
        "conv/s: wall clock (noisy on a shared machine); app cpu / moto cpu: CPU seconds of"
        " the exporting process / of the moto server process; conv/cpu-s: conversations per"
        " CPU second of both (load-independent); app only: per CPU second of the app alone"
        " (the ceiling with an instant backend)"
    )
    print("\nTime waiting on AWS (moto) per operation: calls, seconds")
    for n, fmt, r in results:
        parts = ", ".join(
            f"{op} {c} / {t:.2f}s"
            for op, (c, t) in sorted(r["calls"].items(), key=lambda kv: -kv[1][1])
        )
        waited = sum(t for _, t in r["calls"].values())
        print(f"  {fmt} {n}: {waited:.2f}s of {r['wall_s']:.2f}s: {parts}")
    for fmt in args.formats:
        peaks = {n: r["rss_peak_mb"] for n, f, r in results if f == fmt}
        if len(peaks) > 1:
            ratio = peaks[sizes[-1]] / peaks[sizes[0]]
            rss_ok &= ratio <= RSS_RATIO_TARGET
            print(
                f"{fmt}: peak RSS {sizes[-1]} / {sizes[0]} = {ratio:.3f}"
                f" (target <= {RSS_RATIO_TARGET})"
            )
    print(f"target >= {RATE_TARGET:.0f} conv/s end to end: {'met' if rate_ok else 'MISSED'}")
    print(f"target peak RSS ratio <= {RSS_RATIO_TARGET}: {'met' if rss_ok else 'MISSED'}")
    return 0 if rate_ok and rss_ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
