"""Composite 1-10 quality score for one conversation.

    score = 1 + 9 * sum(weight * check.score) / sum(weight)     (weight-0 checks skipped)
    score = min(score, every cap that applies)                    (rounded to 0.1)
    flagged = score < FLAG_THRESHOLD (6.0)

Weights (``CHECK_WEIGHTS``): structural checks, which decide whether a conversation is
usable training data at all, outweigh the heuristic adherence signals.

| check             | weight | what it measures                                      |
|-------------------|--------|-------------------------------------------------------|
| turn_count        | 2.0    | 8-16 turns optimal, < 4 fails                         |
| alternation       | 2.0    | user first, strict alternation, assistant last, 1..n  |
| structure         | 1.5    | valid roles, plain text, no JSON/fence/AI boilerplate |
| length            | 1.5    | user 5-150 words, assistant 20-350 words              |
| empty_turns       | 1.5    | no empty or whitespace-only turns                     |
| repeated_turns    | 1.0    | no identical / near-identical turns                   |
| topic_adherence   | 1.0    | topic name + description keywords present            |
| persona_adherence | 0.5    | persona keywords present                              |
| emotion_adherence | 0.75   | emotion lexicon signals in user turns                 |
| near_duplicate    | 1.0    | not a near-copy of another conversation               |

Caps (``CAPS``): a defect that makes the example unusable for fine-tuning pulls the score
below the flag threshold however good the rest is, so a reviewer always sees it.

| condition                                 | cap |
|-------------------------------------------|-----|
| no turns at all                           | 1.0 |
| fewer than 4 turns                        | 4.0 |
| broken alternation / numbering            | 4.0 |
| invalid role or non-text content          | 4.0 |
| any empty turn                            | 5.0 |
| near-duplicate of another conversation    | 5.0 |
"""

from __future__ import annotations

from collections.abc import Sequence

from chalicelib.domain.models import (
    FLAG_THRESHOLD,
    Conversation,
    QualityCheck,
    QualityReport,
    Taxonomy,
    Turn,
)
from chalicelib.quality import validators as v

CHECK_WEIGHTS: dict[str, float] = {
    "turn_count": 2.0,
    "alternation": 2.0,
    "structure": 1.5,
    "length": 1.5,
    "empty_turns": 1.5,
    "repeated_turns": 1.0,
    "topic_adherence": 1.0,
    "persona_adherence": 0.5,
    "emotion_adherence": 0.75,
    "near_duplicate": 1.0,
}

CAPS: dict[str, float] = {
    "no_turns": 1.0,
    "too_few_turns": 4.0,
    "broken_alternation": 4.0,
    "invalid_structure": 4.0,
    "empty_turns": 5.0,
    "near_duplicate": 5.0,
}


def run_checks(
    conversation: Conversation, turns: Sequence[Turn], taxonomy: Taxonomy | None = None
) -> list[QualityCheck]:
    """Every content check, weighted from ``CHECK_WEIGHTS`` (duplicates are separate:
    they need the whole dataset, see ``duplicates.find_dataset_duplicates``)."""
    w = CHECK_WEIGHTS
    return [
        v.check_turn_count(turns, w["turn_count"]),
        v.check_alternation(turns, w["alternation"]),
        v.check_structure(turns, w["structure"]),
        v.check_length(turns, w["length"]),
        v.check_empty_turns(turns, w["empty_turns"]),
        v.check_repeated_turns(turns, w["repeated_turns"]),
        v.check_topic_adherence(conversation, turns, taxonomy, w["topic_adherence"]),
        v.check_persona_adherence(conversation, turns, taxonomy, w["persona_adherence"]),
        v.check_emotion_adherence(conversation, turns, taxonomy, w["emotion_adherence"]),
    ]


def check_near_duplicate(duplicate_of: tuple[str, float] | None) -> QualityCheck:
    weight = CHECK_WEIGHTS["near_duplicate"]
    if duplicate_of is None:
        return QualityCheck(
            name="near_duplicate",
            passed=True,
            score=1.0,
            weight=weight,
            detail="no near-duplicate reported",
        )
    other, similarity = duplicate_of
    return QualityCheck(
        name="near_duplicate",
        passed=False,
        score=round(max(0.0, min(1.0, 1.0 - similarity)), 4),
        weight=weight,
        detail=f"near-duplicate of {other} (estimated similarity {similarity:.2f})",
    )


def weighted_score(checks: Sequence[QualityCheck]) -> float:
    """1 + 9 * weighted mean of check scores; 1.0 if nothing carries weight."""
    total = sum(c.weight for c in checks)
    if total <= 0:
        return 1.0
    return 1.0 + 9.0 * sum(c.weight * c.score for c in checks) / total


def applicable_caps(turns: Sequence[Turn], checks: Sequence[QualityCheck]) -> dict[str, float]:
    """Caps that apply, by name (see ``CAPS``)."""
    by_name = {c.name: c for c in checks}
    caps: dict[str, float] = {}
    if not turns:
        caps["no_turns"] = CAPS["no_turns"]
    if len(turns) < v.MIN_TURNS:
        caps["too_few_turns"] = CAPS["too_few_turns"]
    if "alternation" in by_name and not by_name["alternation"].passed:
        caps["broken_alternation"] = CAPS["broken_alternation"]
    if v.invalid_turns(turns):
        caps["invalid_structure"] = CAPS["invalid_structure"]
    if "empty_turns" in by_name and not by_name["empty_turns"].passed:
        caps["empty_turns"] = CAPS["empty_turns"]
    if "near_duplicate" in by_name and not by_name["near_duplicate"].passed:
        caps["near_duplicate"] = CAPS["near_duplicate"]
    return caps


# which check's detail explains which cap, so the UI shows why the score is low
_CAP_CHECK = {
    "no_turns": "turn_count",
    "too_few_turns": "turn_count",
    "broken_alternation": "alternation",
    "invalid_structure": "structure",
    "empty_turns": "empty_turns",
    "near_duplicate": "near_duplicate",
}


def score_conversation(
    conversation: Conversation,
    turns: list[Turn],
    taxonomy: Taxonomy | None = None,
    duplicate_of: tuple[str, float] | None = None,
) -> QualityReport:
    """Run every check, combine them into the 1-10 score, apply caps and flag."""
    checks = [*run_checks(conversation, turns, taxonomy), check_near_duplicate(duplicate_of)]
    raw = weighted_score(checks)
    caps = applicable_caps(turns, checks)
    score = min([raw, *caps.values()])
    if caps:
        notes: dict[str, list[str]] = {}
        for cap_name, cap in caps.items():
            notes.setdefault(_CAP_CHECK[cap_name], []).append(f"caps score at {cap:.0f}")
        checks = [
            c.model_copy(update={"detail": f"{c.detail} ({'; '.join(notes[c.name])})"})
            if c.name in notes
            else c
            for c in checks
        ]
    # round first so ``flagged`` agrees with Conversation.flagged on the stored score
    score = round(min(10.0, max(1.0, score)), 1)
    return QualityReport(
        score=score,
        checks=checks,
        flagged=score < FLAG_THRESHOLD,
        duplicate_of=duplicate_of[0] if duplicate_of else None,
    )
