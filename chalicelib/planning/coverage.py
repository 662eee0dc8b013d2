"""Coverage analysis of a dataset's conversations, and plans that fill its gaps.

"Effective" counts leave out rejected and failed conversations: a rejected conversation
does not train the model, so the pair or tier it covered becomes a gap again until a
replacement is planned (``plan_gap_fill``). Planned (``not_generated``) and in-flight
conversations count, because they will exist once generation runs.
"""

from __future__ import annotations

import math
import random
from collections import Counter
from collections.abc import Mapping, Sequence
from typing import Any, Protocol

from chalicelib.domain.errors import ValidationError
from chalicelib.domain.models import (
    DIMENSIONS,
    TAXONOMY_FIELD,
    Chunk,
    ConversationSpec,
    ConversationStatus,
    Taxonomy,
    Tier,
    TierDistribution,
)
from chalicelib.planning.planner import (
    DEFAULT_SEED,
    PAIR_KINDS,
    PairAssigner,
    SlotChoice,
    slot_order,
)

COUNTED_STATUSES: tuple[ConversationStatus, ...] = (
    ConversationStatus.NOT_GENERATED,
    ConversationStatus.GENERATING,
    ConversationStatus.GENERATED,
    ConversationStatus.APPROVED,
)
EXCLUDED_STATUSES: tuple[ConversationStatus, ...] = (
    ConversationStatus.REJECTED,
    ConversationStatus.FAILED,
)
TIERS: tuple[Tier, ...] = (Tier.TEMPLATE, Tier.SCENARIO, Tier.EDGE_CASE)
# Per pair kind, so a huge taxonomy cannot make the answer huge; the matrices and the
# counts still describe every cell.
MAX_LISTED_PAIR_GAPS = 500
COUNTING_NOTE = (
    "Effective counts exclude rejected and failed conversations, so the pairs and tiers "
    "they covered show up as gaps again until replacements are planned."
)


class ConversationLike(Protocol):
    """What coverage needs from a conversation (``Conversation`` satisfies it)."""

    @property
    def persona(self) -> str: ...
    @property
    def emotion(self) -> str: ...
    @property
    def topic(self) -> str: ...
    @property
    def intent(self) -> str: ...
    @property
    def tone(self) -> str: ...
    @property
    def tier(self) -> Tier: ...
    @property
    def status(self) -> ConversationStatus: ...


def _counted(conversations: Sequence[ConversationLike]) -> list[ConversationLike]:
    counted = set(COUNTED_STATUSES)
    return [c for c in conversations if ConversationStatus(c.status) in counted]


def _min_expected(target_count: int, cells: int) -> int:
    """Smallest effective count a pair or value may have before it is "under-filled":
    half its balanced share, and at least one when the target can cover every cell."""
    if cells == 0 or target_count < cells:
        return 0
    return max(1, math.floor(target_count / cells / 2))


def analyze_coverage(
    taxonomy: Taxonomy,
    conversations: Sequence[ConversationLike],
    target_count: int,
    distribution: TierDistribution | None = None,
) -> dict[str, Any]:
    """Distribution per dimension value, per pair (as heatmap matrices), per tier vs its
    target, and the gaps. Pair ``cells`` hold effective counts, ``total_cells`` all."""
    effective = _counted(conversations)
    by_status = Counter(ConversationStatus(c.status).value for c in conversations)

    dimensions: dict[str, list[dict[str, Any]]] = {}
    dimension_gaps: list[dict[str, Any]] = []
    for dim in DIMENSIONS:
        names = taxonomy.names(TAXONOMY_FIELD[dim])
        total = Counter(getattr(c, dim) for c in conversations)
        eff = Counter(getattr(c, dim) for c in effective)
        share = target_count / len(names) if names else 0.0
        floor = _min_expected(target_count, len(names))
        rows = []
        for name in names:
            rows.append(
                {
                    "value": name,
                    "in_taxonomy": True,
                    "total": total[name],
                    "effective": eff[name],
                    "expected": round(share, 1),
                    "percent": round(100.0 * eff[name] / len(effective), 1) if effective else 0.0,
                }
            )
            if eff[name] < floor:
                dimension_gaps.append(
                    {
                        "dimension": dim,
                        "value": name,
                        "effective": eff[name],
                        "min_expected": floor,
                        "status": "missing" if eff[name] == 0 else "underfilled",
                    }
                )
        # Values no longer in the taxonomy (it was edited after planning) stay visible.
        known = set(names)
        for value in sorted(v for v in total if v not in known):
            rows.append(
                {
                    "value": value,
                    "in_taxonomy": False,
                    "total": total[value],
                    "effective": eff[value],
                    "expected": 0.0,
                    "percent": round(100.0 * eff[value] / len(effective), 1) if effective else 0.0,
                }
            )
        dimensions[dim] = rows

    pairs: dict[str, dict[str, Any]] = {}
    pair_gaps: list[dict[str, Any]] = []
    pair_gap_total = 0
    for kind, row_dim, col_dim in PAIR_KINDS:
        rows_ = taxonomy.names(TAXONOMY_FIELD[row_dim])
        cols = taxonomy.names(TAXONOMY_FIELD[col_dim])
        eff_pairs = Counter((getattr(c, row_dim), getattr(c, col_dim)) for c in effective)
        all_pairs = Counter((getattr(c, row_dim), getattr(c, col_dim)) for c in conversations)
        cells = [[eff_pairs[(r, c)] for c in cols] for r in rows_]
        possible = len(rows_) * len(cols)
        allowed = min(possible, target_count)
        achieved = sum(1 for row in cells for n in row if n > 0)
        floor = _min_expected(target_count, possible)
        missing = [[r, c] for r in rows_ for c in cols if eff_pairs[(r, c)] == 0]
        pairs[kind] = {
            "row_dimension": row_dim,
            "col_dimension": col_dim,
            "rows": rows_,
            "cols": cols,
            "cells": cells,
            "total_cells": [[all_pairs[(r, c)] for c in cols] for r in rows_],
            "max": max((n for row in cells for n in row), default=0),
            "achieved": achieved,
            "possible": possible,
            "allowed": allowed,
            "percent": round(100.0 * achieved / allowed, 1) if allowed else 100.0,
            "shortfall": max(0, allowed - achieved),  # pairs still to cover for this target
            "min_expected": floor,
            "missing_count": len(missing),
            "missing": missing[:MAX_LISTED_PAIR_GAPS],
        }
        # Below the target's reach (target < possible) only the shortfall is a gap, but
        # any missing pair may fill it, so all are listed as candidates.
        kind_gaps: list[dict[str, Any]] = []
        if achieved < allowed:
            kind_gaps.extend(
                {
                    "kind": kind,
                    row_dim: r,
                    col_dim: c,
                    "effective": 0,
                    "min_expected": max(floor, 1),
                    "status": "missing",
                }
                for r, c in missing
            )
        kind_gaps.extend(
            {
                "kind": kind,
                row_dim: r,
                col_dim: c,
                "effective": eff_pairs[(r, c)],
                "min_expected": floor,
                "status": "underfilled",
            }
            for r in rows_
            for c in cols
            if 0 < eff_pairs[(r, c)] < floor
        )
        pair_gap_total += len(kind_gaps)
        pair_gaps.extend(kind_gaps[:MAX_LISTED_PAIR_GAPS])

    targets = (distribution or TierDistribution()).counts(target_count)
    tier_total = Counter(Tier(c.tier) for c in conversations)
    tier_eff = Counter(Tier(c.tier) for c in effective)
    tiers = []
    tier_gaps = []
    for tier in TIERS:
        shortfall = max(0, targets[tier] - tier_eff[tier])
        tiers.append(
            {
                "tier": tier.value,
                "target": targets[tier],
                "total": tier_total[tier],
                "effective": tier_eff[tier],
                "shortfall": shortfall,
                "percent": round(100.0 * tier_eff[tier] / targets[tier], 1)
                if targets[tier]
                else 100.0,
            }
        )
        if shortfall:
            tier_gaps.append(
                {
                    "tier": tier.value,
                    "target": targets[tier],
                    "effective": tier_eff[tier],
                    "shortfall": shortfall,
                }
            )

    gap_count = pair_gap_total + len(tier_gaps) + len(dimension_gaps)
    return {
        "target_count": target_count,
        "total": len(conversations),
        "effective_total": len(effective),
        "counted_statuses": [s.value for s in COUNTED_STATUSES],
        "excluded_statuses": [s.value for s in EXCLUDED_STATUSES],
        "note": COUNTING_NOTE,
        "by_status": {s.value: by_status[s.value] for s in ConversationStatus},
        "dimensions": dimensions,
        "pairs": pairs,
        "tiers": tiers,
        "gaps": {
            "pairs": pair_gaps,
            "pairs_total": pair_gap_total,
            "pairs_truncated": pair_gap_total > len(pair_gaps),
            "tiers": tier_gaps,
            "dimensions": dimension_gaps,
        },
        "gap_count": gap_count,
        "complete": gap_count == 0,
    }


def scope_for_filters(
    taxonomy: Taxonomy,
    target_count: int,
    distribution: TierDistribution,
    filters: Mapping[str, Sequence[str]],
) -> tuple[Taxonomy, int, TierDistribution]:
    """The taxonomy, target and tier weights a filtered view is measured against.

    A filter on a taxonomy dimension keeps only the chosen values (the other values are
    not gaps of this view) and scales the target by the share of values kept; a tier
    filter keeps the chosen tiers' targets. Status, quality and text filters only
    narrow the conversations counted: how well the approved ones cover the whole
    target is a question worth asking, so they leave the target alone."""
    fraction = 1.0
    kept: dict[str, list[Any]] = {}
    for dim in DIMENSIONS:
        wanted = set(filters.get(dim) or ())
        if not wanted:
            continue
        field = TAXONOMY_FIELD[dim]
        entries = getattr(taxonomy, field)
        kept[field] = [e for e in entries if e.name in wanted]
        if entries:
            fraction *= len(kept[field]) / len(entries)
    scoped = taxonomy.model_copy(update=kept)
    tiers = {Tier(t) for t in filters.get("tier") or () if t in {x.value for x in TIERS}}
    if filters.get("tier"):
        counts = distribution.counts(target_count)
        chosen = sum(counts[t] for t in tiers)
        fraction *= chosen / target_count if target_count else 0.0
        weights = {t.value: getattr(distribution, t.value) if t in tiers else 0.0 for t in TIERS}
        if sum(weights.values()) > 0:
            distribution = TierDistribution(**weights)
    return scoped, round(target_count * fraction), distribution


def plan_gap_fill(
    taxonomy: Taxonomy,
    chunks: Sequence[Chunk],
    conversations: Sequence[ConversationLike],
    target_count: int,
    distribution: TierDistribution | None = None,
    seed: int = DEFAULT_SEED,
) -> list[ConversationSpec]:
    """Specs that close the gaps: one per tier shortfall, assigned so that missing pairs
    are covered first (those specs come first in the result); if the shortfall slots
    cannot cover every missing pair the target allows, extra template-tier specs do.
    Under-filled pairs and values are favoured by the same balancing inside those slots
    but never add slots of their own. Empty when there is nothing to fill."""
    effective = _counted(conversations)
    assigner = PairAssigner(taxonomy, chunks, random.Random(seed))
    for conversation in effective:
        assigner.observe(conversation)

    targets = (distribution or TierDistribution()).counts(target_count)
    have = Counter(Tier(c.tier) for c in effective)
    shortfall = {tier: max(0, targets[tier] - have[tier]) for tier in TIERS}
    choices: list[SlotChoice] = [assigner.assign_slot(tier) for tier in slot_order(shortfall)]

    def pairs_short() -> bool:
        for kind, row_dim, col_dim in PAIR_KINDS:
            possible = len(assigner.names[row_dim]) * len(assigner.names[col_dim])
            if assigner.achieved(kind) < min(possible, target_count):
                return True
        return False

    # Template tier: unconstrained by chunks, so each extra slot is sure to open a pair.
    guard = sum(len(assigner.names[r]) * len(assigner.names[c]) for _, r, c in PAIR_KINDS)
    while pairs_short() and guard > 0:
        choices.append(assigner.assign_slot(Tier.TEMPLATE))
        guard -= 1

    opening = [c.spec for c in choices if c.new_pairs]
    return opening + [c.spec for c in choices if not c.new_pairs]


def plan_for_gap(
    taxonomy: Taxonomy,
    chunks: Sequence[Chunk],
    conversations: Sequence[ConversationLike],
    gap: Mapping[str, str],
    count: int,
    seed: int = DEFAULT_SEED,
) -> list[ConversationSpec]:
    """``count`` specs that fill one gap: a tier's shortfall (``{"tier": ...}``) or a
    dimension value or pair (``{"persona": ..., "topic": ...}``; template tier unless a
    tier is given). The gap's values are kept; the other dimensions are balanced against
    what is planned already, as a plan does. A value outside the taxonomy is a 400."""
    assigner = PairAssigner(taxonomy, chunks, random.Random(seed))
    for conversation in _counted(conversations):
        assigner.observe(conversation)
    pinned: dict[str, str] = {}
    for dim in DIMENSIONS:
        if dim not in gap:
            continue
        value = assigner.known(dim, gap[dim])
        if value is None:
            raise ValidationError(
                f"'{gap[dim]}' is not a {dim} of this dataset's taxonomy",
                {"field": f"gap.{dim}", "allowed": assigner.names[dim]},
            )
        pinned[dim] = value
    tier = Tier(gap.get("tier") or Tier.TEMPLATE.value)
    if not pinned and "tier" not in gap:
        raise ValidationError(
            "a gap names a tier or dimension values",
            {"field": "gap", "allowed": ["tier", *DIMENSIONS]},
        )
    specs = []
    for _ in range(count):
        # A document excerpt would bring its own dimensions: only a free slot keeps them all.
        if tier is Tier.SCENARIO and not pinned:
            specs.append(assigner.assign_slot(tier).spec)
        else:
            specs.append(assigner.assign(tier, pinned=pinned).spec)
    return specs
