"""One 1-10 quality score per conversation that a reviewer can triage by.

Three layers, each kept in the report's per-check breakdown:

1. **Shape** (weighted mean): whether the conversation is usable training data at all and
   how well it fits its plan.

       base = 1 + 9 * sum(weight * check.score) / sum(weight)

   | check             | weight | what it measures                                      |
   |-------------------|--------|-------------------------------------------------------|
   | turn_count        | 2.0    | 8-16 turns optimal, < 4 fails                         |
   | alternation       | 2.0    | user first, strict alternation, assistant last, 1..n  |
   | structure         | 1.5    | valid roles, plain text, no JSON/fence/role labels    |
   | length            | 1.5    | user 5-150 words, assistant 20-350 words              |
   | empty_turns       | 1.5    | no empty or whitespace-only turns                     |
   | topic_adherence   | 1.0    | topic name + description keywords present            |
   | persona_adherence | 0.5    | persona keywords present                              |
   | emotion_adherence | 0.75   | emotion lexicon signals in user turns                 |
   | near_duplicate    | 1.0    | not a near-copy of another conversation               |

2. **Defects** (``defects.py``): the ways real generations fail. A defect caps the score
   below the flag line by its severity, and every further defect takes another half
   point; evidence short of a defect (``suspicion``) costs up to ``SUSPICION_PENALTY``
   points, so doubtful conversations sort below clean ones without being flagged.

   | severity | cap | checks                                                            |
   |----------|-----|-------------------------------------------------------------------|
   | critical | 3.0 | ai_refusal, generator_artifacts, regulated_claims, role_confusion, language |
   | major    | 4.5 | ending, topic_drift, persona, grounding, repeated_turns, business_rules |

   Structural caps stay: no turns 1.0; fewer than 4 turns, broken alternation or invalid
   content 4.0; an empty turn or a near-duplicate 5.0.

3. **Judge** (optional, ``judge.py``): a rubric verdict from a model. A real judge's
   overall score is blended in (``JUDGE_SHARE``) and a dimension it scores at
   ``JUDGE_FLAG_AT`` or below becomes a defect with the judge's reason. A simulated judge
   (the offline simulator) is shown but never counted.

``flagged`` = score < FLAG_THRESHOLD (6.0).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

from chalicelib.domain.models import (
    FLAG_THRESHOLD,
    Conversation,
    Dataset,
    JudgeResult,
    QualityCheck,
    QualityReport,
    QualityRules,
    Taxonomy,
    Turn,
)
from chalicelib.quality import defects as d
from chalicelib.quality import grounding as g
from chalicelib.quality import style_model
from chalicelib.quality import validators as v

SCORER_VERSION = "4"

CHECK_WEIGHTS: dict[str, float] = {
    "turn_count": 2.0,
    "alternation": 2.0,
    "structure": 1.5,
    "length": 1.5,
    "empty_turns": 1.5,
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
SEVERITY_CAPS: dict[str, float] = {"critical": 3.0, "major": 4.5, "minor": 5.5}
EXTRA_DEFECT_PENALTY = 0.5  # per defect beyond the worst one
SUSPICION_PENALTY = 2.5  # points lost by a check whose evidence falls just short
MAX_SUSPICION_PENALTY = 3.0
JUDGE_SHARE = 0.4  # of the blended score, when a real judge answered
JUDGE_FLAG_AT = 3.0  # a judge dimension at or below this is a defect

ContentCheck = Callable[[d.CheckContext, float], QualityCheck]
CONTENT_CHECKS: tuple[ContentCheck, ...] = (
    d.check_ai_refusal,
    d.check_generator_artifacts,
    d.check_regulated_claims,
    d.check_role_confusion,
    d.check_language,
    d.check_ending,
    d.check_topic_drift,
    d.check_persona,
    d.check_grounding,
    d.check_copied_turns,
    d.check_business_rules,
)

# which check explains which structural cap, so the UI shows why the score is low
_CAP_CHECK = {
    "no_turns": "turn_count",
    "too_few_turns": "turn_count",
    "broken_alternation": "alternation",
    "invalid_structure": "structure",
    "empty_turns": "empty_turns",
    "near_duplicate": "near_duplicate",
}
_SEVERITY_ORDER = {"critical": 0, "major": 1, "minor": 2}


@dataclass(frozen=True)
class ScoringContext:
    """What scoring knows about the conversation's dataset and source."""

    taxonomy: Taxonomy | None = None
    chunk_text: str | None = None
    rules: QualityRules | None = None
    business_name: str | None = None

    @classmethod
    def of(cls, dataset: Dataset, chunk_text: str | None = None) -> ScoringContext:
        return cls(
            taxonomy=dataset.taxonomy,
            chunk_text=chunk_text,
            rules=dataset.quality_rules,
            business_name=dataset.business_name or dataset.name,
        )


def clear_caches() -> None:
    """Forget the per-text caches of the checks (benchmarks measure a first scoring)."""
    d._stems.cache_clear()
    g._specifics.cache_clear()
    v._all_stems.cache_clear()
    style_model.clear_cache()


def run_checks(
    conversation: Conversation, turns: Sequence[Turn], taxonomy: Taxonomy | None = None
) -> list[QualityCheck]:
    """The shape checks, weighted from ``CHECK_WEIGHTS`` (near-duplicates need the whole
    dataset, see ``duplicates``)."""
    w = CHECK_WEIGHTS
    return [
        v.check_turn_count(turns, w["turn_count"]),
        v.check_alternation(turns, w["alternation"]),
        v.check_structure(turns, w["structure"]),
        v.check_length(turns, w["length"]),
        v.check_empty_turns(turns, w["empty_turns"]),
        v.check_topic_adherence(conversation, turns, taxonomy, w["topic_adherence"]),
        v.check_persona_adherence(conversation, turns, taxonomy, w["persona_adherence"]),
        v.check_emotion_adherence(conversation, turns, taxonomy, w["emotion_adherence"]),
    ]


def run_content_checks(
    conversation: Conversation, turns: Sequence[Turn], context: ScoringContext
) -> list[QualityCheck]:
    ctx = d.CheckContext(
        conversation=conversation,
        turns=list(turns),
        taxonomy=context.taxonomy,
        chunk_text=context.chunk_text,
        rules=context.rules,
        business_name=context.business_name,
    )
    return [check(ctx, 0.0) for check in CONTENT_CHECKS]


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
    reason = f"a near-duplicate of {other} (estimated similarity {similarity:.2f})"
    return QualityCheck(
        name="near_duplicate",
        passed=False,
        score=round(max(0.0, min(1.0, 1.0 - similarity)), 4),
        weight=weight,
        detail=reason,
        severity="major",
        reasons=[reason],
    )


def weighted_score(checks: Sequence[QualityCheck]) -> float:
    """1 + 9 * weighted mean of check scores; 1.0 if nothing carries weight."""
    total = sum(c.weight for c in checks)
    if total <= 0:
        return 1.0
    return 1.0 + 9.0 * sum(c.weight * c.score for c in checks) / total


def applicable_caps(turns: Sequence[Turn], checks: Sequence[QualityCheck]) -> dict[str, float]:
    """Structural caps that apply, by name (see ``CAPS``)."""
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


def _with_cap_notes(checks: list[QualityCheck], caps: dict[str, float]) -> list[QualityCheck]:
    notes: dict[str, list[str]] = {}
    for cap_name, cap in caps.items():
        notes.setdefault(_CAP_CHECK[cap_name], []).append(f"caps score at {cap:.0f}")
    out = []
    for c in checks:
        if c.name in notes:
            reasons = c.reasons or [c.detail]
            c = c.model_copy(
                update={
                    "detail": f"{c.detail} ({'; '.join(notes[c.name])})",
                    "severity": c.severity or "major",
                    "reasons": reasons,
                }
            )
        out.append(c)
    return out


def judge_check(judge: JudgeResult) -> QualityCheck:
    """The judge's verdict as a check: a defect when a dimension is scored very low."""
    low = {
        name: dim
        for name, dim in judge.dimensions.items()
        if dim.score <= JUDGE_FLAG_AT and not judge.simulated
    }
    label = "simulated judge (not counted)" if judge.simulated else f"judge ({judge.model})"
    if judge.error:
        return QualityCheck(
            name="judge",
            passed=True,
            score=1.0,
            weight=0.0,
            detail=f"{label}: no verdict ({judge.error})",
            kind="judge",
        )
    dims = ", ".join(f"{k} {v.score:g}" for k, v in judge.dimensions.items())
    reasons = [
        f"the judge scores {name.replace('_', ' ')} {dim.score:g}/10: {dim.reason}".rstrip(": ")
        for name, dim in sorted(low.items(), key=lambda kv: kv[1].score)
    ]
    return QualityCheck(
        name="judge",
        passed=not low,
        score=round(((judge.overall or 10.0) - 1) / 9, 4),
        weight=0.0,
        detail=f"{label}: {judge.overall:g}/10 ({dims})" if judge.overall else label,
        kind="judge",
        severity="major" if low else None,
        reasons=reasons,
    )


def score_conversation(
    conversation: Conversation,
    turns: list[Turn],
    taxonomy: Taxonomy | None = None,
    duplicate_of: tuple[str, float] | None = None,
    *,
    context: ScoringContext | None = None,
    judge: JudgeResult | None = None,
) -> QualityReport:
    """Run every check, combine them into the 1-10 score, apply caps and flag."""
    context = context or ScoringContext(taxonomy=taxonomy)
    if context.taxonomy is None and taxonomy is not None:
        context = ScoringContext(taxonomy, context.chunk_text, context.rules, context.business_name)
    shape = [*run_checks(conversation, turns, context.taxonomy), check_near_duplicate(duplicate_of)]
    base = weighted_score(shape)
    caps = applicable_caps(turns, shape)
    shape = _with_cap_notes(shape, caps)
    content = run_content_checks(conversation, turns, context) if turns else []
    checks = [*shape, *content]
    if judge is not None:
        checks.append(judge_check(judge))

    defects = [c for c in checks if not c.passed and c.severity]
    penalty = min(
        MAX_SUSPICION_PENALTY,
        sum(SUSPICION_PENALTY * c.suspicion for c in content if c.passed),
    )
    score = base - penalty
    counted_judge = judge is not None and not judge.simulated and not judge.error
    heuristic = score
    if counted_judge and judge is not None and judge.overall is not None:
        score = (1 - JUDGE_SHARE) * score + JUDGE_SHARE * judge.overall
    limits = list(caps.values())
    for c in defects:
        if c.kind in ("content", "judge") or c.name == "near_duplicate":
            limits.append(SEVERITY_CAPS[c.severity or "major"])
    if limits:
        score = min(score, min(limits) - EXTRA_DEFECT_PENALTY * max(0, len(defects) - 1))
    # round first so ``flagged`` agrees with Conversation.flagged on the stored score
    score = round(min(10.0, max(1.0, score)), 1)
    ranked = sorted(defects, key=lambda c: (_SEVERITY_ORDER.get(c.severity or "", 3), c.name))
    reasons = [r for c in ranked for r in (c.reasons or [c.detail])]
    return QualityReport(
        score=score,
        checks=checks,
        flagged=score < FLAG_THRESHOLD,
        duplicate_of=duplicate_of[0] if duplicate_of else None,
        reasons=reasons[:12],
        flag_turns=sorted({t for c in defects for t in c.turns}),
        heuristic_score=round(min(10.0, max(1.0, heuristic)), 2),
        judge=judge,
        judge_score=judge.overall if judge is not None else None,
        judge_cost_usd=judge.cost_usd if judge is not None and judge.cost_usd else None,
        scorer_version=SCORER_VERSION,
    )
