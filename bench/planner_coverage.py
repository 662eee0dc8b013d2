"""Planner coverage on the sample taxonomy: tier counts and pair coverage.

Run: ``.venv/bin/python bench/planner_coverage.py`` (or ``-m bench.planner_coverage``).
``allowed`` = min(possible pairs, N): N conversations cannot cover more than N pairs.
Tier-2 specs keep their chunk's own dimensions, so at some N (e.g. 40, where 15 scenario
slots draw on chunks with only 14 distinct persona x topic pairs) a duplicate is forced
and coverage falls short of ``allowed`` by that much; N=40 is printed to show it.
"""

from __future__ import annotations

import sys
import time
from collections import Counter
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run as a plain script too

from chalicelib.domain.models import TierDistribution
from chalicelib.planning.planner import ARCS, pair_coverage, plan_conversations
from chalicelib.planning.sample_data import load_sample_dataset

SEED = 7


def report(n: int, distribution: TierDistribution) -> None:
    taxonomy, chunks, _ = load_sample_dataset()
    started = time.perf_counter()
    specs = plan_conversations(taxonomy, chunks, n, distribution, SEED)
    elapsed_ms = (time.perf_counter() - started) * 1000
    tiers = Counter(s.tier.value for s in specs)
    cov = pair_coverage(specs, taxonomy)
    print(
        f"N={n:<3} tiers template={tiers['template']} scenario={tiers['scenario']} "
        f"edge_case={tiers['edge_case']}  ({elapsed_ms:.1f} ms)"
    )
    for kind in ("persona_emotion", "persona_topic"):
        c = cov[kind]
        print(
            f"       {kind:<16} achieved {c['achieved']:>3} / possible {c['possible']:>3}"
            f" / allowed {c['allowed']:>3}  -> {c['percent']:5.1f}% of allowed,"
            f" {c['percent_of_possible']:5.1f}% of possible"
        )
    pe = Counter((s.persona, s.emotion) for s in specs)
    pt = Counter((s.persona, s.topic) for s in specs)
    arcs = Counter(s.arc for s in specs if s.arc)
    print(
        f"       pair counts min/max: persona_emotion {min(pe.values())}/{max(pe.values())},"
        f" persona_topic {min(pt.values())}/{max(pt.values())};"
        f" arcs {[arcs[a] for a in ARCS]}; chunks used {len({s.chunk_id for s in specs} - {None})}"
        f"/{len(chunks)}"
    )


def main() -> None:
    taxonomy, chunks, info = load_sample_dataset()
    print(
        f"sample: {info['business_name']}: {len(taxonomy.personas)} personas, "
        f"{len(taxonomy.emotions)} emotions, {len(taxonomy.topics)} topics, "
        f"{len(taxonomy.intents)} intents, {len(taxonomy.tones)} tones, {len(chunks)} chunks; "
        f"seed {SEED}"
    )
    default = TierDistribution()
    for n in (90, 30, 40):
        report(n, default)


if __name__ == "__main__":
    main()
