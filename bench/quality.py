"""Quality detectors benchmark: recall on planted defects, false positives on clean data.

    .venv/bin/python bench/quality.py [--clean 200] [--seed 20261126] [--index-size 10000]

Builds ~200 varied clean synthetic conversations (chalicelib/quality/synthetic.py), plants
near-duplicates (light-edit copies), too-few-turn, broken-alternation and empty-turn
conversations, then runs duplicate detection + scoring exactly as the service would.
A defect counts as detected when the conversation is flagged (score < 6) or, for
near-duplicates, marked duplicate; a clean conversation flagged or marked duplicate is a
false positive. Also times indexing of ``--index-size`` conversations. Exit status 1 when
a target (recall >= 0.95, false positives <= 0.05) is missed.
"""

from __future__ import annotations

import argparse
import random
import statistics
import sys
import time
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from chalicelib.domain.models import FLAG_THRESHOLD, Conversation, Turn
from chalicelib.quality import duplicates as d
from chalicelib.quality import synthetic as syn
from chalicelib.quality.scoring import CAPS, score_conversation

RECALL_TARGET = 0.95
FP_TARGET = 0.05
DUP_KINDS = ("swaps", "sentence", "reorder", "all")
ALT_KINDS = ("double_user", "starts_assistant", "ends_user", "numbering_gap")


@dataclass
class Item:
    conversation: Conversation
    turns: list[Turn]
    defect: str  # "clean" or the planted defect
    kind: str = ""
    source: str | None = None  # near-duplicates: the conversation copied


def _copy(conv: Conversation, new_id: str, turns: list[Turn]) -> Conversation:
    return conv.model_copy(update={"conversation_id": new_id, "turn_count": len(turns)})


def build_dataset(n_clean: int, seed: int) -> list[Item]:
    rng = random.Random(seed)
    clean = [Item(c, t, "clean") for c, t in syn.synthetic_dataset(n_clean, seed=seed)]
    items = list(clean)
    fresh_rng = random.Random(seed + 1)  # defect carriers are new conversations
    serial = iter(range(100_000, 200_000))

    def fresh() -> tuple[Conversation, list[Turn]]:
        return syn.synthetic_conversation(fresh_rng, next(serial))

    planted: list[Item] = []
    for k, src in enumerate(rng.sample(clean, 40)):
        kind = DUP_KINDS[k % len(DUP_KINDS)]
        turns = syn.light_edit_copy(src.turns, rng, src.conversation.topic, kind)
        conv = _copy(src.conversation, f"conv_dup_{k:03d}", turns)
        planted.append(Item(conv, turns, "near_duplicate", kind, src.conversation.conversation_id))
    for k in range(16):
        c, t = fresh()
        turns = syn.truncate(t, 2 if k % 2 else 3)
        planted.append(Item(_copy(c, f"conv_few_{k:03d}", turns), turns, "too_few_turns"))
    for k in range(16):
        c, t = fresh()
        kind = ALT_KINDS[k % len(ALT_KINDS)]
        turns = syn.break_alternation(t, rng, kind)
        planted.append(
            Item(_copy(c, f"conv_alt_{k:03d}", turns), turns, "broken_alternation", kind)
        )
    for k in range(16):
        c, t = fresh()
        turns = syn.blank_turn(t, rng, whitespace=bool(k % 2))
        planted.append(Item(_copy(c, f"conv_empty_{k:03d}", turns), turns, "empty_turns"))

    # Interleave: each planted item goes to a random position (copies after their source).
    for item in planted:
        lo = 0
        if item.source:
            lo = 1 + next(
                i for i, x in enumerate(items) if x.conversation.conversation_id == item.source
            )
        items.insert(rng.randint(lo, len(items)), item)
    return items


def similarity_margins(items: list[Item]) -> dict[str, float]:
    """Highest clean-vs-clean similarity (any pair / same cell) and lowest copy-vs-source."""
    sigs = {
        it.conversation.conversation_id: d.minhash_signature(d.conversation_text(it.turns))
        for it in items
    }
    clean = [it for it in items if it.defect == "clean"]
    max_any = max_cell = 0.0
    for i, a in enumerate(clean):
        sa = sigs[a.conversation.conversation_id]
        for b in clean[i + 1 :]:
            sim = d.estimate_similarity(sa, sigs[b.conversation.conversation_id])
            max_any = max(max_any, sim)
            if d.cell_of(a.conversation) == d.cell_of(b.conversation):
                max_cell = max(max_cell, sim)
    dup_sims = [
        d.estimate_similarity(sigs[it.conversation.conversation_id], sigs[it.source])
        for it in items
        if it.defect == "near_duplicate" and it.source
    ]
    return {
        "max_clean_pair": max_any,
        "max_clean_same_cell": max_cell,
        "min_copy_vs_source": min(dup_sims),
        "median_copy_vs_source": statistics.median(dup_sims),
    }


def time_indexing(n: int, seed: int) -> tuple[float, float, int]:
    rng = random.Random(seed + 2)
    rows = []
    for i in range(n):
        c, t = syn.synthetic_conversation(rng, i)
        rows.append((c.conversation_id, d.cell_of(c), d.conversation_text(t)))
    words = statistics.mean(len(text.split()) for _, _, text in rows)
    t0 = time.perf_counter()
    index = d.NearDuplicateIndex()
    for cid, _, text in rows:
        index.add(cid, text)
    add_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    found = d.find_dataset_duplicates(rows)
    full_s = time.perf_counter() - t0
    print(
        f"index {n} conversations (~{words:.0f} words each): NearDuplicateIndex.add "
        f"{add_s:.2f}s, find_dataset_duplicates (hash + both indexes + queries) "
        f"{full_s:.2f}s, {len(found)} flagged as duplicates"
    )
    return add_s, full_s, len(found)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clean", type=int, default=200)
    parser.add_argument("--seed", type=int, default=20261126)
    parser.add_argument("--index-size", type=int, default=10_000)
    args = parser.parse_args()

    items = build_dataset(args.clean, args.seed)
    taxonomy = syn.synthetic_taxonomy()
    rows = [
        (it.conversation.conversation_id, d.cell_of(it.conversation), d.conversation_text(it.turns))
        for it in items
    ]
    t0 = time.perf_counter()
    dups = d.find_dataset_duplicates(rows)
    dup_s = time.perf_counter() - t0
    dataset_only = d.find_near_duplicates((cid, text) for cid, _, text in rows)
    cell_only = d.find_cell_duplicates(rows)

    t0 = time.perf_counter()
    reports = {
        it.conversation.conversation_id: score_conversation(
            it.conversation, it.turns, taxonomy, dups.get(it.conversation.conversation_id)
        )
        for it in items
    }
    score_s = time.perf_counter() - t0

    groups: dict[str, list[Item]] = defaultdict(list)
    for it in items:
        groups[it.defect].append(it)
        if it.kind:
            groups[f"{it.defect}/{it.kind}"].append(it)

    def detected(it: Item) -> bool:
        cid = it.conversation.conversation_id
        return reports[cid].flagged or cid in dups

    print(f"{len(items)} conversations: {len(groups['clean'])} clean + planted defects")
    print(f"{'group':<36}{'n':>5}{'detected':>10}{'rate':>8}{'mean score':>12}")
    print("-" * 71)
    ok = True
    for name in sorted(groups, key=lambda g: (g == "clean", g)):
        group = groups[name]
        hits = sum(detected(it) for it in group)
        rate = hits / len(group)
        mean = statistics.fmean(reports[it.conversation.conversation_id].score for it in group)
        label = f"{name} (false positives)" if name == "clean" else name
        print(f"{label:<36}{len(group):>5}{hits:>10}{rate:>8.3f}{mean:>12.2f}")
        if name == "clean":
            ok &= rate <= FP_TARGET
        elif "/" not in name:
            ok &= rate >= RECALL_TARGET
    print("-" * 71)

    copies = groups["near_duplicate"]
    right_source = sum(
        1 for it in copies if (m := dups.get(it.conversation.conversation_id)) and m[0] == it.source
    )
    by_dataset = sum(it.conversation.conversation_id in dataset_only for it in copies)
    by_cell = sum(it.conversation.conversation_id in cell_only for it in copies)
    print(
        f"near-duplicates: dataset-wide detector {by_dataset}/{len(copies)}, same-cell "
        f"detector {by_cell}/{len(copies)}, pointed at the right source "
        f"{right_source}/{len(copies)}"
    )
    clean = groups["clean"]
    clean_scores = [reports[it.conversation.conversation_id].score for it in clean]
    print(
        f"clean scores: min {min(clean_scores):.1f}, median {statistics.median(clean_scores):.1f}, "
        f"share >= 8: {sum(s >= 8 for s in clean_scores) / len(clean_scores):.3f}"
    )
    margins = similarity_margins(items)
    print(
        "similarity margins: max clean pair {max_clean_pair:.3f}, max clean same-cell pair "
        "{max_clean_same_cell:.3f}, copy vs source min {min_copy_vs_source:.3f} / median "
        "{median_copy_vs_source:.3f}".format(**margins)
    )
    ds_bands = d.band_layout(d.NEAR_DUPLICATE_THRESHOLD)
    cell_bands = d.band_layout(d.CELL_DUPLICATE_THRESHOLD)
    print(
        f"thresholds: NEAR_DUPLICATE_THRESHOLD={d.NEAR_DUPLICATE_THRESHOLD} "
        f"({ds_bands[0]} bands x {ds_bands[1]} rows), CELL_DUPLICATE_THRESHOLD="
        f"{d.CELL_DUPLICATE_THRESHOLD} ({cell_bands[0]} x {cell_bands[1]}), "
        f"NUM_PERM={d.NUM_PERM}, shingles={d.SHINGLE_SIZE} words, FLAG_THRESHOLD={FLAG_THRESHOLD}"
    )
    print(f"caps: {', '.join(f'{k}={v:g}' for k, v in CAPS.items())}")
    print(
        f"timing: duplicates over {len(items)} in {dup_s * 1000:.0f} ms, scoring "
        f"{score_s / len(items) * 1000:.2f} ms/conversation"
    )
    if args.index_size:
        time_indexing(args.index_size, args.seed)
    print(
        f"targets: recall >= {RECALL_TARGET}, false positives <= {FP_TARGET}: "
        f"{'MET' if ok else 'MISSED'}"
    )
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
