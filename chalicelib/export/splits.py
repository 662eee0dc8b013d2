"""Deterministic, leakage-free train/validation/test splits.

Group key (what must stay on one side): conversations generated from the same source
chunk share facts and phrasing, so they form one group (``chunk:<chunk_id>``); a
conversation without a chunk is its own group (``conv:<conversation_id>``). Groups are
then joined through ``quality.duplicate_of`` links, because a near-duplicate on the other
side of the split is leakage too. Scenario/arc/persona/topic are deliberately not group
keys: tier-1 arcs and topics repeat across many conversations by design, so grouping on
them would leave a handful of huge groups and make the ratios unreachable.

Callers may add links of their own (``assign_splits(links=...)``): the export joins
conversations that share a near-verbatim turn (``export/leakage.py``), because a canned
prompt answered on both sides of the split is leakage as much as a shared chunk.

Assignment is stratified by minimisation (Pocock-Simon): groups are taken largest first,
then in an order drawn from the seed, and each goes to the split that is furthest behind
its target share summed over the dimensions the group belongs to: overall, its tier
and its persona (each counted twice), its (tier, persona) stratum and its cell (persona
x emotion x topic). Every marginal therefore stays within a group or two of its target
in every split: each tier, each persona and, where a cell has enough conversations to
be split at all, each cell; the overall counts land within about one group of target. No global random
state is used: the same seed gives the same split.
"""

from __future__ import annotations

import hashlib
import math
import sys
from collections import Counter, defaultdict
from collections.abc import Iterable, Iterator, Mapping
from typing import Any, Final, NamedTuple, TypeVar

from chalicelib.domain.errors import ValidationError
from chalicelib.domain.models import Conversation
from chalicelib.export.formats import ConversationTurns

_Item = TypeVar("_Item", bound=ConversationTurns)

SPLIT_NAMES: Final[tuple[str, ...]] = ("train", "validation", "test")
DEFAULT_RATIOS: Final[dict[str, float]] = {"train": 0.8, "validation": 0.1, "test": 0.1}
RATIO_TOLERANCE: Final = 1e-6


def validate_ratios(ratios: Mapping[str, float]) -> dict[str, float]:
    """Return the ratios in canonical split order, or raise :class:`ValidationError`.

    Names must be train/validation/test (any subset), values finite and non-negative,
    summing to 1 within 1e-6."""
    if not ratios:
        raise ValidationError("split ratios must not be empty")
    unknown = sorted(set(ratios) - set(SPLIT_NAMES))
    if unknown:
        raise ValidationError(
            f"unknown split names {unknown}", {"allowed": list(SPLIT_NAMES), "unknown": unknown}
        )
    out: dict[str, float] = {}
    for name in SPLIT_NAMES:
        if name not in ratios:
            continue
        value = ratios[name]
        if (
            isinstance(value, bool)
            or not isinstance(value, int | float)
            or not math.isfinite(value)
        ):
            raise ValidationError(f"split ratio for {name!r} must be a finite number")
        if value < 0:
            raise ValidationError(f"split ratio for {name!r} must not be negative")
        out[name] = float(value)
    total = sum(out.values())
    if abs(total - 1.0) > RATIO_TOLERANCE:
        raise ValidationError(f"split ratios must sum to 1 (got {total:.6g})", {"sum": total})
    return out


def _hash(seed: int | str, *parts: str) -> int:
    # blake2b, not hash(): stable across processes and PYTHONHASHSEED.
    data = "\x1f".join((str(seed), *parts)).encode("utf-8")
    return int.from_bytes(hashlib.blake2b(data, digest_size=8).digest(), "big")


class SplitMember(NamedTuple):
    """What splitting reads of a conversation. An export with a split holds one per
    conversation for its whole run: a few hundred bytes, where a Conversation with its
    quality report is several kilobytes."""

    conversation_id: str
    chunk_id: str | None
    tier: str
    persona: str
    duplicate_of: str | None
    emotion: str = ""
    topic: str = ""


def split_member(
    conversation: Conversation | SplitMember, duplicate_of: str | None = None
) -> SplitMember:
    """What splitting reads of ``conversation``; ``duplicate_of`` stands in for its
    quality report's when the report was not decoded (the export reads only that key)."""
    if isinstance(conversation, SplitMember):
        return conversation
    quality = conversation.quality
    if quality is not None:
        duplicate_of = quality.duplicate_of
    # The dimension values repeat across conversations: one string each, not one per
    # conversation (an export holds a member for every conversation it splits).
    return SplitMember(
        conversation.conversation_id,
        conversation.chunk_id,
        conversation.tier.value,
        sys.intern(conversation.persona),
        duplicate_of,
        sys.intern(conversation.emotion),
        sys.intern(conversation.topic),
    )


def base_group_key(conversation: Conversation | SplitMember) -> str:
    if conversation.chunk_id:
        return f"chunk:{conversation.chunk_id}"
    return f"conv:{conversation.conversation_id}"


def group_conversations(
    conversations: Iterable[Conversation | SplitMember],
    links: Iterable[tuple[str, str]] = (),
) -> dict[str, str]:
    """conversation_id -> group key (chunk groups joined through duplicate_of links and
    through ``links``: pairs of conversation ids that must share a split).

    A joined group is named by its smallest member key so the result is order-independent.
    """
    convs = [split_member(c) for c in conversations]
    parent: dict[str, str] = {}

    def find(x: str) -> str:
        root = x
        while parent[root] != root:
            root = parent[root]
        while parent[x] != root:  # path compression
            parent[x], x = root, parent[x]
        return root

    def union(a: str, b: str) -> None:
        ra, rb = find(a), find(b)
        if ra != rb:
            # Keep the smaller key as root so the component name is deterministic.
            lo, hi = (ra, rb) if ra < rb else (rb, ra)
            parent[hi] = lo

    key_of = {c.conversation_id: base_group_key(c) for c in convs}
    for key in key_of.values():
        parent.setdefault(key, key)
    for c in convs:
        dup = c.duplicate_of
        if dup is not None and dup in key_of:
            union(key_of[c.conversation_id], key_of[dup])
    for a, b in links:
        if a in key_of and b in key_of:
            union(key_of[a], key_of[b])
    return {cid: find(key) for cid, key in key_of.items()}


def assign_splits(
    conversations: Iterable[Conversation | SplitMember],
    ratios: Mapping[str, float] | None = None,
    seed: int | str = 0,
    links: Iterable[tuple[str, str]] = (),
) -> dict[str, str]:
    """conversation_id -> split name; whole groups go to one split (see module doc)."""
    weights = validate_ratios(DEFAULT_RATIOS if ratios is None else ratios)
    members_in = [split_member(c) for c in conversations]
    ids = [c.conversation_id for c in members_in]
    if len(set(ids)) != len(ids):
        dupes = sorted(k for k, n in Counter(ids).items() if n > 1)
        raise ValidationError("duplicate conversation ids", {"conversation_ids": dupes[:20]})

    group_of = group_conversations(members_in, links)
    members: dict[str, list[SplitMember]] = defaultdict(list)
    for c in members_in:
        members[group_of[c.conversation_id]].append(c)

    # A group spanning strata (one chunk used for two personas) counts in its majority
    # stratum; ties go to the smallest key so the choice does not depend on input order.
    def stratum(group: list[SplitMember]) -> tuple[str, str, str]:
        counts = Counter((c.tier, c.persona, cell_key(c)) for c in group)
        return min(counts, key=lambda k: (-counts[k], k))

    # Larger groups first (they are the hard part of hitting the ratios), then in an
    # order drawn from the seed.
    ordered = sorted(
        members.items(), key=lambda kv: (-len(kv[1]), _hash(seed, "group", kv[0]), kv[0])
    )
    names = list(weights)
    totals = dict.fromkeys(names, 0)
    placed = 0
    seen: Counter[tuple[str, str]] = Counter()
    by_value: dict[tuple[str, str], dict[str, int]] = defaultdict(lambda: dict.fromkeys(names, 0))
    out: dict[str, str] = {}
    for _key, group in ordered:
        size = len(group)
        tier, persona, cell = stratum(group)
        # (dimension, value, weight): the marginals stratification promises count twice,
        # the finer strata once (they cannot all be exact in small splits).
        strata = (
            ("tier", tier, 2),
            ("persona", persona, 2),
            ("tier-persona", f"{tier}\x1f{persona}", 1),
            ("cell", f"{persona}\x1f{cell}", 1),
        )
        placed += size
        for dim, value, _ in strata:
            seen[dim, value] += size

        # Each dimension's deficit for a split once the group is placed; the overall
        # ratio counts twice so totals stay on target. Furthest behind target wins; a
        # 0-ratio split can never win (its deficits are never positive while the others'
        # sum to the group size). Ties: larger ratio, then canonical order.
        scores: dict[str, tuple[float, float]] = {}
        for name in names:
            w = weights[name]
            deficit = 2 * (w * placed - totals[name])
            for dim, value, weight in strata:
                deficit += weight * (w * seen[dim, value] - by_value[dim, value][name])
            scores[name] = (deficit, w)
        best = max(names, key=scores.__getitem__)
        totals[best] += size
        for dim, value, _ in strata:
            by_value[dim, value][best] += size
        for c in group:
            out[c.conversation_id] = best
    return out


def cell_key(c: SplitMember) -> str:
    """The coverage cell below the persona (emotion x topic)."""
    return f"{c.emotion}\x1f{c.topic}"


def _shares(counter: Counter[str], total: int) -> dict[str, float]:
    return {k: round(n / total, 4) for k, n in sorted(counter.items())} if total else {}


def stratification(
    assignments: Mapping[str, str], conversations: Iterable[SplitMember]
) -> dict[str, Any]:
    """Each split's shares of every tier, persona and cell against the whole export, and
    the largest gap per dimension (what stratification is meant to keep small)."""
    convs = [c for c in conversations if c.conversation_id in assignments]
    dims: dict[str, Any] = {
        "tier": lambda c: c.tier,
        "persona": lambda c: c.persona,
        "cell": lambda c: f"{c.persona} / {c.emotion} / {c.topic}",
    }
    names = [n for n in SPLIT_NAMES if n in set(assignments.values())]
    out: dict[str, Any] = {}
    for dim, value_of in dims.items():
        whole: Counter[str] = Counter(value_of(c) for c in convs)
        by_split: dict[str, Counter[str]] = {n: Counter() for n in names}
        for c in convs:
            by_split[assignments[c.conversation_id]][value_of(c)] += 1
        whole_shares = _shares(whole, len(convs))
        splits: dict[str, Any] = {}
        gap = 0.0
        for n in names:
            total = sum(by_split[n].values())
            shares = {k: round(by_split[n].get(k, 0) / total, 4) if total else 0.0 for k in whole}
            splits[n] = dict(sorted(shares.items()))
            if total:
                gap = max([gap, *(abs(shares[k] - whole_shares[k]) for k in whole)])
        entry: dict[str, Any] = {"whole": whole_shares, "splits": splits, "max_gap": round(gap, 4)}
        if dim == "cell":
            # Cells are small: only one with at least one conversation per split can be
            # spread over every split at all; the others sit where their groups fell.
            entry["splittable_cells"] = sum(1 for n in whole.values() if n >= len(names))
            entry["cells"] = len(whole)
            del entry["splits"]  # one line per cell per split would dwarf the manifest
        out[dim] = entry
    return out


def select_split(
    source: Iterable[_Item], assignments: Mapping[str, str], split: str
) -> Iterator[_Item]:
    """The conversations of one split, for writing one file per split."""
    for cwt in source:
        if assignments.get(cwt.conversation.conversation_id) == split:
            yield cwt


def split_manifest(
    assignments: Mapping[str, str],
    conversations: Iterable[Conversation | SplitMember],
    ratios: Mapping[str, float] | None = None,
    links: Iterable[tuple[str, str]] = (),
) -> dict[str, Any]:
    """Counts per split, split x tier and split x persona, group counts and a leakage check
    recomputed from the conversations (so it also catches a hand-edited assignment)."""
    convs = [split_member(c) for c in conversations]
    group_of = group_conversations(convs, links)
    present = [c for c in convs if c.conversation_id in assignments]
    unassigned = sorted(c.conversation_id for c in convs if c.conversation_id not in assignments)
    names = [n for n in SPLIT_NAMES if n in set(assignments.values())]
    names += sorted(set(assignments.values()) - set(SPLIT_NAMES))  # surface strays

    counts = Counter(assignments[c.conversation_id] for c in present)
    by_tier: dict[str, Counter[str]] = defaultdict(Counter)
    by_persona: dict[str, Counter[str]] = defaultdict(Counter)
    splits_of_group: dict[str, set[str]] = defaultdict(set)
    group_sizes: Counter[str] = Counter()
    for c in present:
        split = assignments[c.conversation_id]
        by_tier[split][c.tier] += 1
        by_persona[split][c.persona] += 1
        splits_of_group[group_of[c.conversation_id]].add(split)
        group_sizes[group_of[c.conversation_id]] += 1

    leaking = sorted(g for g, s in splits_of_group.items() if len(s) > 1)
    total = len(present)
    manifest: dict[str, Any] = {
        "total": total,
        "counts": {n: counts.get(n, 0) for n in names},
        "shares": {n: round(counts.get(n, 0) / total, 4) if total else 0.0 for n in names},
        "by_tier": {n: dict(sorted(by_tier[n].items())) for n in names},
        "by_persona": {n: dict(sorted(by_persona[n].items())) for n in names},
        "groups": {
            "total": len(group_sizes),
            "multi_conversation": sum(1 for n in group_sizes.values() if n > 1),
            "largest": max(group_sizes.values(), default=0),
            "per_split": {n: sum(1 for s in splits_of_group.values() if n in s) for n in names},
        },
        "leakage": {
            "ok": not leaking,
            "groups_across_splits": [
                {"group": g, "splits": sorted(splits_of_group[g])} for g in leaking
            ],
        },
        "unassigned": unassigned,
        "unknown_ids": sorted(set(assignments) - {c.conversation_id for c in convs}),
    }
    if ratios is not None:
        weights = validate_ratios(ratios)
        manifest["targets"] = {n: round(w * total, 2) for n, w in weights.items()}
    return manifest
