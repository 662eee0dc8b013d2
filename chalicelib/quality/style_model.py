"""Word models learned from labelled conversations: how each side writes, and how a last turn
reads.

Phrase lists catch the forms someone has seen; the next business brings words no list
has. These models learn from the turns themselves which words and word pairs lean to one
side of a label (the business's turns against the customer's; a conversation's last turn
against its middle turns), so they carry to businesses they never saw: a customer's turn
that offers the visit and the video call reads like the business whatever the business is.

Each model is a table of log-odds per feature (a word or a pair of words). A text's lean
is the mean log-odds of its features, so a long turn and a short one are on one scale:
above 0 it leans to the model's positive label, below 0 to its negative one.

The tables are trained by ``bench/style_models.py`` from the hand-written corpora and
shipped as ``chalicelib/data/style_models.json``; this module only reads them.
"""

from __future__ import annotations

import json
import math
import re
from collections import Counter
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from functools import lru_cache
from itertools import pairwise
from pathlib import Path

from chalicelib.quality.text import QUOTES

MODELS_PATH = Path(__file__).resolve().parent.parent / "data" / "style_models.json"
FORMAT = 1

_TOKEN = re.compile(r"[a-z]+(?:'[a-z]+)?|[?!]")
# A feature seen fewer times than this in training says more about one conversation than
# about how a side writes; and one whose lean comes from fewer texts than MIN_DOCS is those
# texts' subject (a refused turn still names the business's services).
MIN_COUNT = 5
MIN_DOCS = 3
# Smoothing, in counts, for a feature one label never used.
PRIOR = 0.5
# Features of no lean added to every text's mean (see LeanModel.lean).
SHRINK_FEATURES = 20


def features(text: str) -> list[str]:
    """Words and adjacent pairs of them. Figures are left out: either side quotes a price."""
    return list(_features(text))


# Each turn is read by three models in one scoring.
@lru_cache(maxsize=1024)
def _features(text: str) -> tuple[str, ...]:
    tokens = _TOKEN.findall(text.lower().translate(QUOTES))
    return (*tokens, *(f"{a} {b}" for a, b in pairwise(tokens)))


def clear_cache() -> None:
    _features.cache_clear()


@dataclass(frozen=True)
class LeanModel:
    """Log-odds of ``positive`` over ``negative`` per feature."""

    name: str
    positive: str
    negative: str
    weights: Mapping[str, float]

    def lean(self, text: str) -> float:
        """Mean log-odds, shrunk towards 0 for short texts: a ten-word turn has too few
        features for its mean to say much ("Ideally within the year")."""
        found = _features(text)
        # filter() drops the features the table does not have (None) at C speed
        return sum(filter(None, map(self.weights.get, found))) / (len(found) + SHRINK_FEATURES)

    def evidence(self, text: str, toward_positive: bool = True, limit: int = 3) -> list[str]:
        """The features of ``text`` that lean hardest one way: what a reviewer is shown."""
        sign = 1.0 if toward_positive else -1.0
        weights = self.weights
        scored = {f: sign * weights[f] for f in features(text) if sign * weights.get(f, 0.0) > 0}
        shown: list[str] = []
        for feature in sorted(scored, key=lambda f: (-scored[f], f)):
            # "within" says nothing more beside "within the"
            if any(feature in s.split() or s in feature.split() for s in shown):
                continue
            shown.append(feature)
            if len(shown) == limit:
                break
        return shown


def train(
    name: str,
    positive: str,
    negative: str,
    positive_texts: Iterable[str],
    negative_texts: Iterable[str],
    min_count: int = MIN_COUNT,
) -> LeanModel:
    """Multinomial log-odds with additive smoothing; rare features are dropped."""
    pos, pos_docs = _counts(positive_texts)
    neg, neg_docs = _counts(negative_texts)
    pos_total = sum(pos.values()) + 2 * PRIOR
    neg_total = sum(neg.values()) + 2 * PRIOR
    weights: dict[str, float] = {}
    for feature in sorted(set(pos) | set(neg)):
        if pos[feature] + neg[feature] < min_count:
            continue
        value = math.log((pos[feature] + PRIOR) / pos_total) - math.log(
            (neg[feature] + PRIOR) / neg_total
        )
        # A lean learned from one or two texts is those texts' subject, not the label's
        # way of writing (a refused turn still names the business's services).
        docs = pos_docs if value > 0 else neg_docs
        if docs[feature] < MIN_DOCS:
            continue
        weights[feature] = round(value, 3)
    return LeanModel(name, positive, negative, weights)


def _counts(texts: Iterable[str]) -> tuple[Counter[str], Counter[str]]:
    """Occurrences of each feature, and the number of texts it occurs in."""
    occurrences: Counter[str] = Counter()
    documents: Counter[str] = Counter()
    for text in texts:
        found = features(text)
        occurrences.update(found)
        documents.update(set(found))
    return occurrences, documents


def dump(models: Iterable[LeanModel], meta: Mapping[str, object]) -> str:
    """The shipped file: one model per line of weights, stable for diffs and tests."""
    body = {
        "format": FORMAT,
        "meta": dict(meta),
        "models": {
            m.name: {"positive": m.positive, "negative": m.negative, "weights": dict(m.weights)}
            for m in models
        },
    }
    return json.dumps(body, ensure_ascii=False, sort_keys=True, separators=(",", ":")) + "\n"


def parse(raw: str) -> dict[str, LeanModel]:
    body = json.loads(raw)
    if body.get("format") != FORMAT:
        raise ValueError(f"style models file has format {body.get('format')}, expected {FORMAT}")
    return {
        name: LeanModel(name, m["positive"], m["negative"], m["weights"])
        for name, m in body["models"].items()
    }


@lru_cache(maxsize=1)
def _shipped() -> dict[str, LeanModel]:
    return parse(MODELS_PATH.read_text(encoding="utf-8"))


_override: dict[str, LeanModel] | None = None


def model(name: str) -> LeanModel:
    """A shipped model by name ("speaker", "last_turn", "refusal", "drift")."""
    return (_override or _shipped())[name]


@contextmanager
def using(models: Mapping[str, LeanModel]) -> Iterator[None]:
    """Score with other tables for a while: the benchmark measures each corpus with models
    trained without it, as a business's unseen data would be scored."""
    global _override
    previous, _override = _override, dict(models)
    try:
        yield
    finally:
        _override = previous
