"""Review list at scale: p50/p95 of ``GET /api/conversations`` at 1,000 and 10,000 rows.

    .venv/bin/python bench/list_query.py [--sizes 1000 10000] [--repeat 50] [--seed 5]
    .venv/bin/python bench/list_query.py --sizes 1000 100000 --repeat 20   # a large tenant

Starts the local stack in-process (moto + app over HTTP, no persistence), creates one
dataset per size and writes its conversations straight into the table (pynamodb batch
writes of ``ConversationRecord`` rows with realistic metadata, statuses, quality scores,
costs and turn text in ``search_text``; no LLM). Then, over HTTP against ``stack.url``,
each query below is called once to warm up and ``--repeat`` times measured:

- ``no filter``: the dataset's first page (default sort, newest first)
- ``3 filters + sort``: persona x2 (OR), status x2 (OR), tier; sorted by quality_score
- ``text search``: ``q=`` a phrase found in the turn text of a few percent of rows
- ``page 40``: page_size 25, page 40 (rows 976-1000)
- ``uncached search`` (information, not a target): a different text search every call,
  so no cached order can be reused: a full pass over the rows' text each time

The first list of a dataset is its first read (a full read, information only; a dataset
of ``LIST_SNAPSHOT_MIN_ROWS`` or more is then snapshotted to S3). The cold-list target is
the first list on a new API container (the container is dropped and rebuilt, as a cold
Lambda starts): the snapshot plus the changes since it.

and a bulk approve of 500 ids (``POST /api/conversations/bulk-action``) is timed at each
size. Prints a table with p95(large)/p95(1k); exit status 1 when a target is missed
(p95 <= 300 ms at the largest size, p95 ratio <= 3 up to 10,000 rows, first (cold) list
<= 3 s, bulk approve of 500 <= 10 s). The API Lambda's memory: what a new container
allocates (tracemalloc) to serve its cold first list and every query once, peak
included, against the function's ``lambda_memory_size`` in .chalice/config.json; an
upper bound, as moto's allocations while answering count too.
Timings are wall-clock on a shared machine: expect noise of +-20% between runs.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import sys
import tempfile
import time
import urllib.parse
import urllib.request
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

P95_TARGET_MS = 300.0
RATIO_TARGET = 3.0  # up to 10,000 rows; beyond it the p95 target alone
RATIO_MAX_ROWS = 10_000
COLD_TARGET_S = 3.0
BULK_TARGET_S = 10.0
INTENTS = ("Learn", "Get Reassurance", "Compare Options", "Take Action", "Resolve a Problem")
TONES = ("Warm and Reassuring", "Clear and Educational", "Direct and Professional")
STATUS_WEIGHTS = (
    ("generated", 0.45),
    ("approved", 0.25),
    ("rejected", 0.08),
    ("not_generated", 0.17),
    ("failed", 0.05),
)
SEARCH_PHRASE = "map your"  # in the turn text of ~7% of rows


def call(base: str, method: str, path: str, body: Any = None) -> tuple[int, Any, float]:
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(
        base + path, data=data, method=method, headers={"Content-Type": "application/json"}
    )
    start = time.perf_counter()
    try:
        with urllib.request.urlopen(req, timeout=300) as resp:
            raw, status = resp.read(), resp.status
    except urllib.error.HTTPError as e:
        raw, status = e.read(), e.code
    elapsed = time.perf_counter() - start
    return status, (json.loads(raw) if raw else None), elapsed


def make_rows(dataset_id: str, n: int, rng: random.Random) -> list[tuple[Any, str]]:
    """``n`` (Conversation, search_text) pairs with a realistic spread of values."""
    from chalicelib.config import get_settings
    from chalicelib.domain.models import Conversation, ConversationStatus, Tier
    from devstack import synthetic as syn

    tenant = get_settings().default_tenant  # AUTH_MODE=none: every caller's tenant
    statuses = [s for s, _ in STATUS_WEIGHTS]
    weights = [w for _, w in STATUS_WEIGHTS]
    base = datetime.now(UTC) - timedelta(days=30)
    out: list[tuple[Any, str]] = []
    for i in range(n):
        persona, emotion, topic = (
            rng.choice(syn.PERSONAS),
            rng.choice(syn.EMOTIONS),
            rng.choice(syn.TOPICS),
        )
        status = ConversationStatus(rng.choices(statuses, weights)[0])
        tier = rng.choice((Tier.TEMPLATE, Tier.TEMPLATE, Tier.SCENARIO, Tier.EDGE_CASE))
        created = base + timedelta(seconds=i * 60 + rng.randint(0, 59))
        generated = status not in (ConversationStatus.NOT_GENERATED, ConversationStatus.FAILED)
        turns = (
            syn.generate_turns(rng, persona, emotion, topic, rng.choice((8, 10, 12, 14, 16)))
            if generated
            else []
        )
        quality = round(min(10.0, max(0.0, rng.gauss(8.2, 1.4))), 1) if generated else None
        conversation = Conversation(
            tenant_id=tenant,
            dataset_id=dataset_id,
            conversation_id=f"conv_b{n}_{i:06d}",
            persona=persona.name,
            emotion=emotion.name,
            topic=topic.name,
            intent=rng.choice(INTENTS),
            tone=rng.choice(TONES),
            tier=tier,
            status=status,
            title=f"{emotion.name} {persona.name.lower()} asks about {topic.name.lower()}"
            if generated
            else None,
            quality_score=quality,
            turn_count=len(turns),
            estimated_cost_usd=round(rng.uniform(0.01, 0.03), 6),
            actual_cost_usd=round(rng.uniform(0.008, 0.035), 6) if generated else None,
            input_tokens=rng.randint(1500, 4000) if generated else 0,
            output_tokens=rng.randint(800, 3000) if generated else 0,
            model="claude-sonnet-4-5" if generated else None,
            generated_at=created + timedelta(minutes=5) if generated else None,
            created_at=created,
            updated_at=created + timedelta(minutes=5),
            error_message="provider timeout after 5 attempts"
            if status == ConversationStatus.FAILED
            else None,
            version=3 if generated else 1,
        )
        out.append((conversation, " ".join(t.content for t in turns).lower()))
    return out


def write_rows(rows: list[tuple[Any, str]]) -> float:
    """Batch-write ConversationRecord rows (with search_text) and bump the list seq."""
    from chalicelib.bootstrap import get_container
    from chalicelib.store.mapping import record_from_domain
    from chalicelib.store.records import ConversationRecord, tenant_key

    start = time.perf_counter()
    with ConversationRecord.batch_write() as batch:
        for c, text in rows:
            batch.save(
                record_from_domain(
                    ConversationRecord,
                    c,
                    dataset_key=tenant_key(c.tenant_id, c.dataset_id),
                    updated_ms=int(c.updated_at.timestamp() * 1000),
                    search_text=text or None,
                    deleted=False,
                )
            )
    first = rows[0][0]
    get_container().dataset_repo.bump_conversation_seq(first.tenant_id, first.dataset_id, len(rows))
    return time.perf_counter() - start


def new_api_container() -> None:
    """What a cold API Lambda sees: the snapshots being written are finished, then the
    container (its list index, its clients) is dropped and the next request builds one."""
    import gc

    from chalicelib.bootstrap import get_container, reset_container

    get_container().index.flush_snapshots()
    reset_container()
    gc.collect()


def rss_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def api_memory_mb() -> int:
    config = json.loads((Path(__file__).resolve().parents[1] / ".chalice/config.json").read_text())
    api = config.get("lambda_functions", {}).get("api_handler", {})
    return int(api.get("lambda_memory_size", config.get("lambda_memory_size", 128)))


def pct(values: list[float], p: float) -> float:
    ordered = sorted(values)
    k = (len(ordered) - 1) * p
    lo, hi = int(k), min(int(k) + 1, len(ordered) - 1)
    return ordered[lo] + (ordered[hi] - ordered[lo]) * (k - lo)


def measure(base: str, path: str, repeat: int) -> tuple[float, float, Any, float]:
    """p50 and p95 wall-clock ms, the last body, and the mean CPU ms per call (this
    whole process: client, app and moto run in it, so CPU time is the work a call costs
    whatever else the machine is doing)."""
    status, body, _ = call(base, "GET", path)  # warm-up
    if status != 200:
        raise RuntimeError(f"GET {path} -> {status}: {body}")
    times = []
    cpu = time.process_time()
    for _ in range(repeat):
        status, body, elapsed = call(base, "GET", path)
        assert status == 200, body
        times.append(elapsed * 1000)
    cpu_ms = (time.process_time() - cpu) * 1000 / repeat
    return pct(times, 0.5), pct(times, 0.95), body, cpu_ms


def measure_uncached(base: str, dsid: str, repeat: int, rng: random.Random) -> tuple[float, float]:
    words = ["savings", "mortgage", "budget", "retire", "index fund", "tax", "debt", "rate"]
    times = []
    for i in range(repeat + 1):
        q = urllib.parse.quote(f"{rng.choice(words)} {i}")
        status, body, elapsed = call(base, "GET", f"/api/conversations?dataset_id={dsid}&q={q}")
        assert status == 200, body
        if i:
            times.append(elapsed * 1000)
    return pct(times, 0.5), pct(times, 0.95)


def queries(dsid: str) -> dict[str, str]:
    d = f"/api/conversations?dataset_id={dsid}"
    q = urllib.parse.quote(SEARCH_PHRASE)
    return {
        "no filter": d,
        "3 filters + sort": (
            f"{d}&persona=Anxious+Investor&persona=Pre-Retiree&status=generated&status=approved"
            "&tier=template&sort=quality_score&order=desc"
        ),
        "text search": f"{d}&q={q}",
        "page 40": f"{d}&page_size=25&page=40",
    }


def run_size(base: str, n: int, repeat: int, seed: int) -> dict[str, Any]:
    rng = random.Random(seed + n)
    status, ds, _ = call(base, "POST", "/api/datasets", {"name": f"Bench {n}"})
    assert status == 201, ds
    dsid = ds["dataset_id"]
    rows = make_rows(dsid, n, rng)
    load_s = write_rows(rows)
    del rows[2000:]  # the bulk approve needs 500 generated ones; free the rest
    # The dataset's very first read (no snapshot yet): a full read, after which a large
    # dataset's index is snapshotted in the background (information, not the target).
    _, body, first_read = call(base, "GET", f"/api/conversations?dataset_id={dsid}")
    assert body["total"] == n, body
    new_api_container()
    rss_before = rss_mb()
    _, body, cold = call(base, "GET", f"/api/conversations?dataset_id={dsid}")
    assert body["total"] == n, body
    result: dict[str, Any] = {
        "n": n,
        "load_s": load_s,
        "first_read_ms": first_read * 1000,
        "cold_ms": cold * 1000,
        "rows": {},
    }
    result["rss_cold_mb"] = rss_mb() - rss_before
    result["cpu"] = {}
    for name, path in queries(dsid).items():
        p50, p95, body, cpu_ms = measure(base, path, repeat)
        result["rows"][name] = (p50, p95, body["total"])
        result["cpu"][name] = cpu_ms
    p50, p95 = measure_uncached(base, dsid, repeat, rng)
    result["rows"]["uncached search"] = (p50, p95, None)
    result["rss_mb"] = rss_mb() - rss_before
    generated = [c.conversation_id for c, _ in rows if c.status.value == "generated"][:500]
    cpu = time.process_time()
    status, bulk, bulk_s = call(
        base,
        "POST",
        "/api/conversations/bulk-action",
        {"action": "approve", "ids": generated, "reviewer_notes": "bench"},
    )
    assert status == 200 and len(bulk["succeeded"]) == len(generated), bulk
    result["bulk_s"] = bulk_s
    result["bulk_cpu_s"] = time.process_time() - cpu
    result["bulk_n"] = len(generated)
    _, _, after = call(base, "GET", f"/api/conversations?dataset_id={dsid}")
    result["after_bulk_ms"] = after * 1000
    result["traced_mb"], result["traced_peak_mb"] = traced_cold_memory(base, dsid)
    return result


def traced_cold_memory(base: str, dsid: str) -> tuple[float, float]:
    """What a new API container allocates to serve the dataset: its cold first list and
    one call of every query (the text search loads the turn text), traced by
    tracemalloc (the resident set cannot tell: memory the previous container freed is
    reused without growing it). Current (what stays: the index, its caches) and peak
    (with the transient reads), MB; moto's own allocations while answering are in both,
    so it is an upper bound."""
    import tracemalloc

    new_api_container()
    tracemalloc.start()
    try:
        for path in queries(dsid).values():
            call(base, "GET", path)
        current, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    return current / 2**20, peak / 2**20


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[1000, 10000])
    parser.add_argument("--repeat", type=int, default=50)
    parser.add_argument("--seed", type=int, default=5)
    args = parser.parse_args()

    os.environ.setdefault("EXPENSIVE_ROUTE_RPM", "10000")
    os.environ.setdefault("AUTH_MODE", "none")  # measures the list, not sign-in
    from devstack.launcher import LocalStack

    load_before = os.getloadavg()[0]
    stack = LocalStack(port=0, data_dir=Path(tempfile.mkdtemp()), persist=False, quiet=True).start()
    try:
        results = [run_size(stack.url, n, args.repeat, args.seed) for n in args.sizes]
    finally:
        stack.stop()

    small, large = results[0], results[-1]
    print(f"\nGET /api/conversations over HTTP, {args.repeat} calls each after one warm-up (ms)")
    head = f"{'query':<18}"
    for r in results:
        size = f"{r['n']:,}"
        head += f"{'p50 ' + size:>12}{'p95 ' + size:>12}{'rows ' + size:>13}"
    print(head + (f"{'p95 ratio':>11}" if len(results) > 1 else ""))
    ok = True
    targets = [name for name in small["rows"] if name != "uncached search"]
    for name in small["rows"]:
        line = f"{name:<18}"
        for r in results:
            p50, p95, total = r["rows"][name]
            line += f"{p50:>12.1f}{p95:>12.1f}{'' if total is None else total:>13}"
        if len(results) > 1:
            ratio = large["rows"][name][1] / small["rows"][name][1]
            line += f"{ratio:>11.2f}"
            ratio_applies = name in targets and large["n"] <= RATIO_MAX_ROWS
            ok = ok and (ratio <= RATIO_TARGET or not ratio_applies)
        ok = ok and (large["rows"][name][1] <= P95_TARGET_MS or name not in targets)
        print(line + ("" if name in targets else "  (not a target)"))
    print(
        "mean CPU ms per call (client + app + moto): "
        + "; ".join(
            f"{name} " + " / ".join(f"{r['cpu'][name]:.1f}" for r in results) for name in targets
        )
        + " (at "
        + " / ".join(f"{r['n']:,}" for r in results)
        + " rows)"
    )
    print()
    memory = api_memory_mb()
    for r in results:
        print(
            f"{r['n']:>7,} rows: loaded in {r['load_s']:.1f} s; the dataset's first read "
            f"{r['first_read_ms']:.0f} ms (information); first list on a new (cold) API "
            f"container {r['cold_ms']:.0f} ms; "
            f"bulk approve of {r['bulk_n']} ids {r['bulk_s']:.2f} s ({r['bulk_cpu_s']:.2f} s CPU); "
            f"first list after the bulk {r['after_bulk_ms']:.0f} ms"
        )
        print(
            f"{'':>13}API memory: a new container serving every query holds "
            f"{r['traced_mb']:.0f} MB (peak {r['traced_peak_mb']:.0f} MB, traced; the "
            f"function has {memory} MB); the resident set grew +{r['rss_cold_mb']:.0f} MB "
            f"for the first list, +{r['rss_mb']:.0f} MB after every query"
        )
        ok = ok and r["bulk_s"] <= BULK_TARGET_S
    ok = ok and large["cold_ms"] <= COLD_TARGET_S * 1000 and large["traced_peak_mb"] < memory
    print(
        f"load average before/after: {load_before:.1f} / {os.getloadavg()[0]:.1f} (2 cores, shared)"
    )
    print(
        f"\ntargets: p95 <= {P95_TARGET_MS:.0f} ms at {large['n']:,}, p95 ratio <= {RATIO_TARGET} "
        f"(to {RATIO_MAX_ROWS:,} rows), first list <= {COLD_TARGET_S:.0f} s, within {memory} MB, "
        f"bulk approve of 500 <= {BULK_TARGET_S:.0f} s: {'met' if ok else 'MISSED'}"
    )
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
