"""Dataset plans: which conversations to generate, decided before any model call.

A plan is a *covering design*, not a random sample. Each slot is assigned greedily so
that it covers a persona x emotion or persona x topic pair that has no conversation yet
(both if it can), and otherwise the least-used pair. Personas rotate round-robin, so in
an unconstrained plan every pair appears once before any appears twice. Tier-2 slots are
constrained by their chunk's own dimensions, so they are assigned first and the free
tier-1/tier-3 slots fill what they leave. ``random.Random(seed)`` only breaks ties.
"""

from __future__ import annotations

import bisect
import hashlib
import heapq
import random
import re
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from chalicelib.domain.errors import ValidationError
from chalicelib.domain.models import (
    DIMENSIONS,
    TAXONOMY_FIELD,
    Chunk,
    ConversationSpec,
    Taxonomy,
    Tier,
    TierDistribution,
)

MAX_PLAN_COUNT = 10_000
DEFAULT_SEED = 7  # Dataset.plan_seed default

ARCS: tuple[str, ...] = (
    "Triumph",
    "Struggle-to-Success",
    "Steady Confidence",
    "Anxiety-to-Relief",
    "Discovery",
)
ARC_DESCRIPTIONS: dict[str, str] = {
    "Triumph": "the client reaches a clear win and leaves energised",
    "Struggle-to-Success": "a real obstacle is worked through step by step until it resolves",
    "Steady Confidence": "a calm, competent exchange that confirms the client is on track",
    "Anxiety-to-Relief": "worry at the start gives way to relief once the facts are clear",
    "Discovery": "the client learns something new that changes how they see their situation",
}

EDGE_CASE_TYPES: tuple[str, ...] = (
    "extreme_emotion",
    "off_topic",
    "adversarial",
    "ambiguous",
    "refusal_worthy",
)
EDGE_CASE_DESCRIPTIONS: dict[str, str] = {
    "extreme_emotion": "the client is in an extreme emotional state (panic, fury, despair)",
    "off_topic": "the client drifts to something outside the firm's business",
    "adversarial": "the client tries to manipulate the assistant or extract what it must not say",
    "ambiguous": "the request is vague or contradictory and needs clarifying questions",
    "refusal_worthy": "the client asks for something the assistant must decline, kindly",
}

# (name, row dimension, column dimension); rows are always personas.
PAIR_KINDS: tuple[tuple[str, str, str], ...] = (
    ("persona_emotion", "persona", "emotion"),
    ("persona_topic", "persona", "topic"),
)

# A chunk's (persona, emotion, topic), canonical taxonomy names or None when not given.
Signature = tuple[str | None, str | None, str | None]

SCENARIO_MAX_CHARS = 200
MAX_LISTED_MISSING = 500  # pair_coverage lists at most this many missing pairs per kind
_SENTENCE_END = re.compile(r"(?<=[.!?])[\"')\]]*\s+(?=[A-Z0-9\"'(\[])")


class HasDimensions(Protocol):
    """Anything carrying the five dimension values (specs and conversations)."""

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


def scenario_from_text(text: str, max_chars: int = SCENARIO_MAX_CHARS) -> str:
    """One line: the text's first sentence, whitespace collapsed, cut at a word boundary."""
    flat = " ".join(text.split())
    sentence = _SENTENCE_END.split(flat, maxsplit=1)[0].strip()
    if len(sentence) <= max_chars:
        return sentence
    cut = sentence[: max_chars - 1].rsplit(" ", 1)[0].rstrip(",;:-")
    return f"{cut}…"


@dataclass
class SlotChoice:
    spec: ConversationSpec
    new_pairs: int  # pairs this spec covered that had no conversation before


class PairAssigner:
    """Greedy covering-design state: counts of everything already planned or kept."""

    def __init__(self, taxonomy: Taxonomy, chunks: Sequence[Chunk], rng: random.Random) -> None:
        self.taxonomy = taxonomy
        self.rng = rng
        self.names: dict[str, list[str]] = {}
        for dim in DIMENSIONS:
            values = taxonomy.names(TAXONOMY_FIELD[dim])
            if not values:
                raise ValidationError(
                    f"the taxonomy has no {TAXONOMY_FIELD[dim]}; add at least one before planning",
                    {"errors": [{"field": TAXONOMY_FIELD[dim], "error": "needs an entry"}]},
                )
            self.names[dim] = values
        self.canonical = {dim: {v.casefold(): v for v in self.names[dim]} for dim in DIMENSIONS}
        self.chunks = list(chunks)
        # Random rank per chunk: which unused chunk comes next differs by seed.
        self.chunk_rank = [rng.random() for _ in self.chunks]
        self._group_sigs: list[Signature] = []
        self._group_heaps: list[list[tuple[int, float, int]]] = []
        self._group_order: list[tuple[int, float, int]] = []
        self.chunk_use: Counter[str] = Counter()

        self.value_count: dict[str, Counter[str]] = {dim: Counter() for dim in DIMENSIONS}
        self.tier_value: Counter[tuple[Tier, str, str]] = Counter()
        self.pair: dict[str, Counter[tuple[str, str]]] = {k: Counter() for k, _, _ in PAIR_KINDS}
        self.row_zero: dict[str, dict[str, int]] = {}
        self.row_min: dict[str, dict[str, int]] = {}
        self.zeros: dict[str, int] = {}
        for kind, row_dim, col_dim in PAIR_KINDS:
            n_rows, n_cols = len(self.names[row_dim]), len(self.names[col_dim])
            self.row_zero[kind] = {r: n_cols for r in self.names[row_dim]}
            self.row_min[kind] = {r: 0 for r in self.names[row_dim]}
            self.zeros[kind] = n_rows * n_cols
        # Secondary balances, only used to break ties so values do not travel in lockstep.
        self.emotion_topic: Counter[tuple[str, str]] = Counter()
        self.topic_intent: Counter[tuple[str, str]] = Counter()
        self.persona_tone: Counter[tuple[str, str]] = Counter()
        self.arc_count: Counter[str] = Counter()
        self.persona_arc: Counter[tuple[str, str]] = Counter()
        self.edge_count: Counter[str] = Counter()

    # ------------------------------------------------------------------ bookkeeping

    def known(self, dim: str, value: str | None) -> str | None:
        if not value:
            return None
        return self.canonical[dim].get(" ".join(value.split()).casefold())

    def observe(self, item: Any) -> int:
        """Count a planned or existing conversation; return how many new pairs it covered."""
        values = {dim: self.known(dim, getattr(item, dim, None)) for dim in DIMENSIONS}
        tier = Tier(item.tier)
        for dim, value in values.items():
            if value is not None:
                self.value_count[dim][value] += 1
                self.tier_value[(tier, dim, value)] += 1
        new_pairs = 0
        for kind, row_dim, col_dim in PAIR_KINDS:
            row, col = values[row_dim], values[col_dim]
            if row is None or col is None:
                continue
            counts = self.pair[kind]
            if counts[(row, col)] == 0:
                new_pairs += 1
                self.row_zero[kind][row] -= 1
                self.zeros[kind] -= 1
            counts[(row, col)] += 1
            self.row_min[kind][row] = min(counts[(row, c)] for c in self.names[col_dim])
        p, e, t, i, tone = (values[d] for d in DIMENSIONS)
        if e and t:
            self.emotion_topic[(e, t)] += 1
        if t and i:
            self.topic_intent[(t, i)] += 1
        if p and tone:
            self.persona_tone[(p, tone)] += 1
        arc = getattr(item, "arc", None)
        if tier is Tier.TEMPLATE and arc:
            self.arc_count[arc] += 1
            if p:
                self.persona_arc[(p, arc)] += 1
        edge = getattr(item, "edge_case_type", None)
        if tier is Tier.EDGE_CASE and edge:
            self.edge_count[edge] += 1
        chunk_id = getattr(item, "chunk_id", None)
        if chunk_id:
            self.chunk_use[chunk_id] += 1
        return new_pairs

    def achieved(self, kind: str) -> int:
        row_dim, col_dim = _kind_dims(kind)
        return len(self.names[row_dim]) * len(self.names[col_dim]) - self.zeros[kind]

    # ------------------------------------------------------------------ choices

    def _free_slots_needed(self, persona: str) -> int:
        # A free slot on this persona covers one new pair of each kind at most, so the
        # persona still needs max(missing emotions, missing topics) free slots.
        return max(self.row_zero[k][persona] for k, _, _ in PAIR_KINDS)

    def _gain_bound(self) -> tuple[int, int]:
        """The best gain any slot could have now; a candidate reaching it ends the search."""
        saves = int(any(self._free_slots_needed(p) for p in self.names["persona"]))
        return saves, sum(1 for kind, _, _ in PAIR_KINDS if self.zeros[kind] > 0)

    def _gain(self, sig: Signature, bound: tuple[int, int]) -> tuple[int, int]:
        """For a constrained slot: (free slots it saves, new pairs it opens), best persona."""
        persona, e, t = sig
        best = (0, 0)
        for p in [persona] if persona else self.names["persona"]:
            new_pe = int(self._cell("persona_emotion", p, e) == 0)
            new_pt = int(self._cell("persona_topic", p, t) == 0)
            after = max(
                self.row_zero["persona_emotion"][p] - new_pe,
                self.row_zero["persona_topic"][p] - new_pt,
            )
            best = max(best, (self._free_slots_needed(p) - after, new_pe + new_pt))
            if best >= bound:
                break
        return best

    def _build_chunk_groups(self) -> None:
        # Chunks sharing persona/emotion/topic are interchangeable for coverage: the gain
        # is computed once per group, and each group keeps a heap of its chunks by
        # (uses, random rank). Built lazily so that observed conversations' uses count.
        by_sig: dict[Signature, int] = {}
        for index, chunk in enumerate(self.chunks):
            sig = (
                self.known("persona", chunk.persona),
                self.known("emotion", chunk.emotion),
                self.known("topic", chunk.topic),
            )
            group = by_sig.setdefault(sig, len(self._group_sigs))
            if group == len(self._group_sigs):
                self._group_sigs.append(sig)
                self._group_heaps.append([])
            entry = (self.chunk_use[chunk.chunk_id], self.chunk_rank[index], index)
            self._group_heaps[group].append(entry)
        for heap in self._group_heaps:
            heapq.heapify(heap)
        # Groups ordered by their next chunk's (uses, rank): scanning in this order, the
        # first group that reaches the gain bound is the answer.
        self._group_order = sorted((h[0][0], h[0][1], g) for g, h in enumerate(self._group_heaps))

    def _pick_chunk(self) -> Chunk | None:
        if not self.chunks:
            return None
        if not self._group_order:
            self._build_chunk_groups()
        bound = self._gain_bound()
        best_key: tuple[int, int, int, float] | None = None
        best_pos = 0
        for pos, (uses, rank, group) in enumerate(self._group_order):
            saves, opens = self._gain(self._group_sigs[group], bound)
            # A chunk's pairs are fixed, so it should open pairs the free slots would
            # otherwise need a slot of their own for; then the least-used chunk, so every
            # chunk is used once before any is reused.
            key = (-saves, -opens, uses, rank)
            if best_key is None or key < best_key:
                best_key, best_pos = key, pos
            if (saves, opens) >= bound:
                break
        _, _, group = self._group_order.pop(best_pos)
        heap = self._group_heaps[group]
        uses, rank, index = heap[0]
        heapq.heapreplace(heap, (uses + 1, rank, index))
        bisect.insort(self._group_order, (heap[0][0], heap[0][1], group))
        return self.chunks[index]

    def _cell(self, kind: str, row: str, col: str | None) -> int:
        return self.pair[kind][(row, col)] if col else self.row_min[kind][row]

    def _pick_persona(self, tier: Tier, fixed: dict[str, str | None]) -> str:
        if fixed["persona"]:
            return fixed["persona"]
        e, t = fixed["emotion"], fixed["topic"]

        def key(p: str) -> tuple[int, int, int, int, int, float]:
            c_pe = self._cell("persona_emotion", p, e)
            c_pt = self._cell("persona_topic", p, t)
            return (
                -((c_pe == 0) + (c_pt == 0)),  # open the most new pairs
                max(c_pe, c_pt),  # never repeat a pair while a less-used one is available
                c_pe + c_pt,
                self.value_count["persona"][p],  # round-robin personas
                self.tier_value[(tier, "persona", p)],
                self.rng.random(),
            )

        return min(self.names["persona"], key=key)

    def _pick(self, dim: str, keyfn: Any) -> str:
        return min(self.names[dim], key=keyfn)

    def assign(
        self, tier: Tier, chunk: Chunk | None = None, pinned: Mapping[str, str] | None = None
    ) -> SlotChoice:
        """One slot of ``tier``: the chunk's dimensions (if any) and the ``pinned`` values
        are kept, the others chosen to balance coverage."""
        fixed: dict[str, str | None] = {d: None for d in DIMENSIONS}
        if chunk is not None:
            fixed = {d: self.known(d, getattr(chunk, d)) for d in DIMENSIONS}
        for dim, value in (pinned or {}).items():
            fixed[dim] = value
        p = self._pick_persona(tier, fixed)
        e = fixed["emotion"] or self._pick(
            "emotion",
            lambda v: (
                self.pair["persona_emotion"][(p, v)],
                self.value_count["emotion"][v],
                self.tier_value[(tier, "emotion", v)],
                self.rng.random(),
            ),
        )
        t = fixed["topic"] or self._pick(
            "topic",
            lambda v: (
                self.pair["persona_topic"][(p, v)],
                self.value_count["topic"][v],
                self.emotion_topic[(e, v)],
                self.tier_value[(tier, "topic", v)],
                self.rng.random(),
            ),
        )
        i = fixed["intent"] or self._pick(
            "intent",
            lambda v: (
                self.value_count["intent"][v],
                self.topic_intent[(t, v)],
                self.tier_value[(tier, "intent", v)],
                self.rng.random(),
            ),
        )
        tone = fixed["tone"] or self._pick(
            "tone",
            lambda v: (
                self.value_count["tone"][v],
                self.persona_tone[(p, v)],
                self.tier_value[(tier, "tone", v)],
                self.rng.random(),
            ),
        )
        extra: dict[str, Any] = {}
        if tier is Tier.TEMPLATE:
            extra["arc"] = min(
                ARCS,
                key=lambda a: (self.arc_count[a], self.persona_arc[(p, a)], self.rng.random()),
            )
        elif tier is Tier.SCENARIO:
            if chunk is not None:
                extra.update(
                    scenario=scenario_from_text(chunk.text),
                    chunk_id=chunk.chunk_id,
                    document_id=chunk.document_id,
                )
            else:
                extra["scenario"] = self._fallback_scenario(p, t)
        else:
            # Strict rotation in a fixed order: the first five edge cases are all different.
            extra["edge_case_type"] = min(
                EDGE_CASE_TYPES, key=lambda x: (self.edge_count[x], EDGE_CASE_TYPES.index(x))
            )
        spec = ConversationSpec(
            persona=p, emotion=e, topic=t, intent=i, tone=tone, tier=tier, **extra
        )
        return SlotChoice(spec=spec, new_pairs=self.observe(spec))

    def assign_slot(self, tier: Tier) -> SlotChoice:
        if tier is Tier.SCENARIO:
            return self.assign(tier, chunk=self._pick_chunk())
        return self.assign(tier)

    def _fallback_scenario(self, persona: str, topic: str) -> str:
        # No chunks uploaded yet: derive the scenario from the taxonomy instead of failing.
        about = scenario_from_text(self.taxonomy.describe("topics", topic)) if topic else ""
        base = f"A {persona} client brings a real-world question about {topic}"
        return scenario_from_text(f"{base}: {about}" if about else f"{base}.")


def _kind_dims(kind: str) -> tuple[str, str]:
    for name, row_dim, col_dim in PAIR_KINDS:
        if name == kind:
            return row_dim, col_dim
    raise KeyError(kind)


def slot_order(tier_counts: dict[Tier, int]) -> list[Tier]:
    """Constrained scenario slots first; then template and edge-case slots interleaved in
    proportion, so both tiers draw evenly from the rotation rather than one taking all
    the fresh pairs."""
    order = [Tier.SCENARIO] * tier_counts.get(Tier.SCENARIO, 0)
    free = [
        ((k + 0.5) / n, idx, tier)
        for idx, tier in enumerate((Tier.TEMPLATE, Tier.EDGE_CASE))
        if (n := tier_counts.get(tier, 0)) > 0
        for k in range(n)
    ]
    order.extend(tier for _, _, tier in sorted(free))
    return order


def _by_tier(specs: Iterable[ConversationSpec]) -> list[ConversationSpec]:
    rank = {Tier.TEMPLATE: 0, Tier.SCENARIO: 1, Tier.EDGE_CASE: 2}
    return sorted(specs, key=lambda s: rank[s.tier])  # stable: keeps assignment order


def plan_conversations(
    taxonomy: Taxonomy,
    chunks: Sequence[Chunk],
    count: int,
    distribution: TierDistribution | None = None,
    seed: int = DEFAULT_SEED,
) -> list[ConversationSpec]:
    """Plan ``count`` conversation specs: template tier first, then scenario, then edge case."""
    if isinstance(count, bool) or not isinstance(count, int) or count < 0:
        raise ValidationError("count must be a non-negative integer", {"count": count})
    if count > MAX_PLAN_COUNT:
        raise ValidationError(
            f"count must be at most {MAX_PLAN_COUNT}", {"count": count, "limit": MAX_PLAN_COUNT}
        )
    tier_counts = (distribution or TierDistribution()).counts(count)
    assigner = PairAssigner(taxonomy, chunks, random.Random(seed))
    return _by_tier(assigner.assign_slot(tier).spec for tier in slot_order(tier_counts))


def pair_coverage(specs: Sequence[HasDimensions], taxonomy: Taxonomy) -> dict[str, Any]:
    """Per pair kind: ``achieved`` distinct pairs, ``possible`` (all pairs), ``allowed``
    (= min(possible, number of specs): N conversations can cover at most N pairs), and
    ``percent`` = achieved / allowed. Values outside the taxonomy are not counted."""
    out: dict[str, Any] = {"count": len(specs)}
    for kind, row_dim, col_dim in PAIR_KINDS:
        rows = taxonomy.names(TAXONOMY_FIELD[row_dim])
        cols = taxonomy.names(TAXONOMY_FIELD[col_dim])
        row_set, col_set = set(rows), set(cols)
        seen = {
            (getattr(s, row_dim), getattr(s, col_dim))
            for s in specs
            if getattr(s, row_dim) in row_set and getattr(s, col_dim) in col_set
        }
        possible = len(rows) * len(cols)
        allowed = min(possible, len(specs))
        out[kind] = {
            "rows": row_dim,
            "cols": col_dim,
            "achieved": len(seen),
            "possible": possible,
            "allowed": allowed,
            "percent": round(100.0 * len(seen) / allowed, 1) if allowed else 100.0,
            "percent_of_possible": round(100.0 * len(seen) / possible, 1) if possible else 100.0,
            "missing_count": possible - len(seen),
            "missing": [[r, c] for r in rows for c in cols if (r, c) not in seen][
                :MAX_LISTED_MISSING
            ],
        }
    return out


def _folded(value: str | None) -> str | None:
    return " ".join(value.split()).casefold() if value else None


def chunk_fit(chunk: Chunk, item: HasDimensions) -> int | None:
    """How well a chunk grounds an already planned conversation: None when the chunk is
    about another topic (its excerpt would not be about what the conversation is);
    otherwise how many of its named dimensions the conversation shares."""
    chunk_topic = _folded(chunk.topic)
    if chunk_topic is not None and chunk_topic != _folded(item.topic):
        return None
    return sum(
        1
        for dim in DIMENSIONS
        if (wanted := _folded(getattr(chunk, dim))) is not None
        and wanted == _folded(getattr(item, dim))
    )


def match_chunks(
    chunks: Sequence[Chunk],
    needing: Sequence[Any],
    existing: Iterable[Any] = (),
) -> dict[str, Chunk]:
    """A chunk for each scenario conversation planned without one (before the dataset
    had chunks): of the chunks about its topic (or naming none), the least used (every
    chunk once before any twice, as the planner spreads them), then the one sharing most
    of its other dimensions, then a stable per-conversation order. Conversations with no
    chunk on their topic are left out (they keep the excerpt-free template)."""
    uses: Counter[str] = Counter(
        c.chunk_id for c in existing if getattr(c, "chunk_id", None) and not _is_deleted(c)
    )
    out: dict[str, Chunk] = {}
    for conversation in sorted(needing, key=lambda c: c.conversation_id):
        best: tuple[int, int, str] | None = None
        chosen: Chunk | None = None
        for chunk in chunks:
            fit = chunk_fit(chunk, conversation)
            if fit is None:
                continue
            tie = hashlib.sha256(f"{conversation.conversation_id}|{chunk.chunk_id}".encode())
            key = (uses[chunk.chunk_id], -fit, tie.hexdigest())
            if best is None or key < best:
                best, chosen = key, chunk
        if chosen is not None:
            out[conversation.conversation_id] = chosen
            uses[chosen.chunk_id] += 1
    return out


def _is_deleted(item: Any) -> bool:
    return bool(getattr(item, "deleted", False))
