"""Dataset-level diversity: what the conversations of a dataset have too much in common.

A fine-tuned model learns the habits its data repeats. One conversation opening like
another, an assistant phrase in every third conversation, or two conversations that are
near-copies are each harmless, and together make a model that says the same thing the
same way. This module measures, for one dataset:

- **openers**: the first words of the user's first turn and of the assistant's first
  answer, grouped, with the conversations that share them;
- **phrases**: word 6-grams that recur across many conversations, per role;
- **distinct-n**: unique / total word n-grams (n = 1, 2, 3), per role and overall;
- **near-duplicate clusters**: groups of conversations the MinHash index links;
- **cells**: the same figures per persona x topic cell, worst first;
- **offenders**: the conversations that share the most of the above, one click away.

Pure Python over (conversation, turns); no AWS. ``bench/quality.py`` times it.
"""

from __future__ import annotations

import itertools
import re
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from chalicelib.domain import search
from chalicelib.domain.models import Conversation, Turn
from chalicelib.quality import duplicates as d

OPENER_WORDS = 6
PHRASE_N = 6
MIN_SHARE = 0.05  # a phrase or opener in at least this share of conversations (and 3)
MIN_CONVERSATIONS = 3
TOP = 15
IDS_SHOWN = 50
# Words as the list's search reads them, so that a repeat's "Show in table" phrase
# search finds every conversation the repeat counts.
_words = search.words
_WORD_SPAN = re.compile(r"[^\W_]+")


@dataclass(frozen=True)
class Item:
    conversation: Conversation
    turns: Sequence[Turn]

    @property
    def id(self) -> str:
        return self.conversation.conversation_id


def _first(turns: Sequence[Turn], role: str) -> str:
    return next((t.content for t in turns if t.role == role), "")


def _opener(text: str) -> str:
    return " ".join(_words(text)[:OPENER_WORDS])


def _opener_text(text: str) -> str:
    """The opener as written: the text from its first word to the end of its last."""
    spans = [m.span() for m in itertools.islice(_WORD_SPAN.finditer(text), OPENER_WORDS)]
    if not spans:
        return ""
    written = text[spans[0][0] : spans[-1][1]]
    return " ".join(written.split()) if _opener(written) == _opener(text) else _opener(text)


def _repeated(
    groups: dict[str, list[str]], total: int, examples: dict[str, str]
) -> list[dict[str, Any]]:
    floor = max(MIN_CONVERSATIONS, int(total * MIN_SHARE + 0.999))
    out: list[dict[str, Any]] = [
        {
            "text": examples.get(key, key),
            "count": len(ids),
            "share": round(len(ids) / total, 4) if total else 0.0,
            "conversation_ids": ids[:IDS_SHOWN],
        }
        for key, ids in groups.items()
        if len(ids) >= floor and key
    ]
    return sorted(out, key=lambda x: (-x["count"], x["text"]))[:TOP]


def distinct_n(token_lists: Iterable[list[str]], n: int) -> float | None:
    """Unique n-grams over all n-grams (1.0: nothing repeats)."""
    seen: set[tuple[str, ...]] = set()
    total = 0
    for tokens in token_lists:
        grams = [tuple(tokens[i : i + n]) for i in range(len(tokens) - n + 1)]
        total += len(grams)
        seen.update(grams)
    return round(len(seen) / total, 4) if total else None


def _clusters(items: Sequence[Item]) -> list[dict[str, Any]]:
    rows = [(it.id, d.cell_of(it.conversation), d.conversation_text(it.turns)) for it in items]
    pairs = d.find_dataset_duplicates(rows)
    parent: dict[str, str] = {}

    def root(x: str) -> str:
        while parent.get(x, x) != x:
            parent[x] = parent.get(parent[x], parent[x])
            x = parent[x]
        return x

    similarity: dict[str, float] = {}
    for cid, (other, sim) in pairs.items():
        a, b = root(cid), root(other)
        if a != b:
            parent[a] = b
        similarity[cid] = max(similarity.get(cid, 0.0), sim)
    groups: dict[str, list[str]] = defaultdict(list)
    for cid in {*pairs, *(o for o, _ in pairs.values())}:
        groups[root(cid)].append(cid)
    out = [
        {
            "conversation_ids": sorted(ids)[:IDS_SHOWN],
            "size": len(ids),
            "max_similarity": round(max(similarity.get(i, 0.0) for i in ids), 3),
        }
        for ids in groups.values()
        if len(ids) >= 2
    ]
    return sorted(out, key=lambda c: (-c["size"], -c["max_similarity"]))


def analyze(items: Sequence[Item]) -> dict[str, Any]:
    """The dataset's diversity report (see the module docstring)."""
    total = len(items)
    tokens: dict[str, dict[str, list[str]]] = {"user": {}, "assistant": {}}
    for it in items:
        for role in ("user", "assistant"):
            tokens[role][it.id] = [w for t in it.turns if t.role == role for w in _words(t.content)]

    openers: dict[str, dict[str, list[str]]] = {
        "user": defaultdict(list),
        "assistant": defaultdict(list),
    }
    opener_examples: dict[str, dict[str, str]] = {"user": {}, "assistant": {}}
    for it in items:
        for role in ("user", "assistant"):
            text = _first(it.turns, role)
            key = _opener(text)
            if key:
                openers[role][key].append(it.id)
                opener_examples[role].setdefault(key, _opener_text(text))

    phrases: dict[str, list[dict[str, Any]]] = {}
    phrase_members: dict[str, set[str]] = defaultdict(set)
    for role in ("user", "assistant"):
        where: dict[tuple[str, ...], set[str]] = defaultdict(set)
        for cid, words in tokens[role].items():
            for i in range(len(words) - PHRASE_N + 1):
                where[tuple(words[i : i + PHRASE_N])].add(cid)
        floor = max(MIN_CONVERSATIONS, int(total * MIN_SHARE + 0.999))
        common = {" ".join(k): sorted(v) for k, v in where.items() if len(v) >= floor}
        phrases[role] = _repeated(common, total, {})
        for entry in phrases[role]:
            for cid in common[entry["text"]]:
                phrase_members[cid].add(f"{role}:{entry['text']}")

    all_tokens = {it.id: tokens["user"][it.id] + tokens["assistant"][it.id] for it in items}
    distinct = {
        scope: {
            f"distinct_{n}": distinct_n(
                (tokens[scope].values() if scope != "all" else all_tokens.values()), n
            )
            for n in (1, 2, 3)
        }
        for scope in ("user", "assistant", "all")
    }
    clusters = _clusters(items)
    in_cluster = {cid: c["size"] for c in clusters for cid in c["conversation_ids"]}
    opener_sets = {
        role: {cid: len(ids) for ids in openers[role].values() if len(ids) > 1 for cid in ids}
        for role in ("user", "assistant")
    }

    cells: dict[tuple[str, str], list[Item]] = defaultdict(list)
    for it in items:
        cells[(it.conversation.persona, it.conversation.topic)].append(it)
    cell_rows: list[dict[str, Any]] = []
    for (persona, topic), members in cells.items():
        ids = [m.id for m in members]
        d2 = distinct_n((all_tokens[i] for i in ids), 2)
        dup = sum(1 for i in ids if i in in_cluster)
        shared_openers = sum(1 for i in ids if opener_sets["user"].get(i, 0) > 1)
        cell_rows.append(
            {
                "persona": persona,
                "topic": topic,
                "count": len(ids),
                "distinct_2": d2,
                "near_duplicates": dup,
                "shared_openers": shared_openers,
                "conversation_ids": ids[:IDS_SHOWN],
            }
        )
    cell_rows.sort(
        key=lambda c: (
            -(c["near_duplicates"] + c["shared_openers"]) / max(c["count"], 1),
            c["distinct_2"] if c["distinct_2"] is not None else 1.0,
        )
    )

    offenders: list[dict[str, Any]] = []
    for it in items:
        reasons = []
        if it.id in in_cluster:
            reasons.append(f"in a cluster of {in_cluster[it.id]} near-duplicates")
        for role in ("user", "assistant"):
            n = opener_sets[role].get(it.id, 0)
            if n > 1:
                reasons.append(f"its {role} opening is shared by {n} conversations")
        shared = len(phrase_members.get(it.id, ()))
        if shared:
            reasons.append(
                f"uses {shared} phrase{'s' if shared > 1 else ''} common across the dataset"
            )
        weight = (
            3 * (it.id in in_cluster)
            + sum(opener_sets[r].get(it.id, 0) > 1 for r in ("user", "assistant"))
            + shared
        )
        if reasons:
            offenders.append({"conversation_id": it.id, "reasons": reasons, "weight": weight})
    offenders.sort(key=lambda o: (-o["weight"], o["conversation_id"]))

    # Within one conversation (repetition inside it) as well as across the dataset; the
    # dataset-wide ratio falls as a dataset grows, so compare it between datasets of a size.
    per_conversation = [distinct_n([toks], 2) for toks in all_tokens.values()]
    values = [v for v in per_conversation if v is not None]
    distinct["per_conversation"] = {
        "distinct_2": round(sum(values) / len(values), 4) if values else None
    }
    clustered = len(in_cluster)
    shared_open = sum(1 for it in items if opener_sets["user"].get(it.id, 0) > 1)
    phrasey = sum(1 for it in items if len(phrase_members.get(it.id, ())) >= 3)
    # 100 when nothing repeats; each kind of repetition takes its share off.
    score = None
    if total:
        score = round(
            100
            * max(
                0.0,
                1 - 0.4 * clustered / total - 0.3 * shared_open / total - 0.3 * phrasey / total,
            ),
            1,
        )
    return {
        "conversation_count": total,
        "diversity_score": score,
        "distinct": distinct,
        "openers": {
            role: _repeated(dict(openers[role]), total, opener_examples[role])
            for role in ("user", "assistant")
        },
        "phrases": phrases,
        "near_duplicate_clusters": clusters[:TOP],
        "near_duplicate_count": clustered,
        "cells": cell_rows[:30],
        "offenders": offenders[:TOP],
        "thresholds": {
            "opener_words": OPENER_WORDS,
            "phrase_words": PHRASE_N,
            "min_share": MIN_SHARE,
            "min_conversations": MIN_CONVERSATIONS,
        },
    }
