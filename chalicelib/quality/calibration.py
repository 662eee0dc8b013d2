"""How well the score agrees with the reviewers' own decisions on a dataset.

From every reviewed conversation (approved or rejected) that has a quality report:

- approval rate per score band;
- per check, how many reviewed conversations it flagged and how many of those the
  reviewers rejected (its precision: how often a flag it raised was right);
- once ``MIN_DECISIONS`` decisions exist, a suggested flag threshold: the score below
  which flagging agrees best with rejecting (Youden's J: true-positive rate plus
  true-negative rate, minus one), with what it would have caught and cost.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from chalicelib.domain.models import FLAG_THRESHOLD, Conversation, ConversationStatus

MIN_DECISIONS = 30
BANDS: tuple[tuple[float, float], ...] = (
    (1.0, 4.0),
    (4.0, 6.0),
    (6.0, 7.0),
    (7.0, 8.0),
    (8.0, 9.0),
    (9.0, 10.01),
)


def _label(lo: float, hi: float) -> str:
    return f"{lo:g}-{min(hi, 10):g}"


def _at(threshold: float, decided: list[tuple[float, bool]]) -> dict[str, Any]:
    """What flagging below ``threshold`` does on the decided conversations."""
    rejected = sum(1 for _, r in decided if r)
    approved = len(decided) - rejected
    caught = sum(1 for s, r in decided if r and s < threshold)
    false_flags = sum(1 for s, r in decided if not r and s < threshold)
    flagged = caught + false_flags
    return {
        "threshold": round(threshold, 2),
        "flagged": flagged,
        "rejections_caught": caught,
        "recall": round(caught / rejected, 4) if rejected else None,
        "precision": round(caught / flagged, 4) if flagged else None,
        "approved_flagged": false_flags,
        "false_flag_rate": round(false_flags / approved, 4) if approved else None,
    }


def calibrate(conversations: Iterable[Conversation]) -> dict[str, Any]:
    decided_convs = [
        c
        for c in conversations
        if c.status in (ConversationStatus.APPROVED, ConversationStatus.REJECTED)
        and c.quality_score is not None
    ]
    decided = [
        (c.quality_score or 0.0, c.status == ConversationStatus.REJECTED) for c in decided_convs
    ]
    bands = []
    for lo, hi in BANDS:
        inside = [r for s, r in decided if lo <= s < hi]
        approved = sum(1 for r in inside if not r)
        bands.append(
            {
                "band": _label(lo, hi),
                "min": lo,
                "max": min(hi, 10.0),
                "reviewed": len(inside),
                "approved": approved,
                "rejected": len(inside) - approved,
                "approval_rate": round(approved / len(inside), 4) if inside else None,
            }
        )
    checks: dict[str, dict[str, int]] = {}
    for c in decided_convs:
        brief = c.quality_brief()
        if brief is None:
            continue
        rejected = c.status == ConversationStatus.REJECTED
        for name in brief.failed:
            row = checks.setdefault(name, {"flagged": 0, "rejected": 0})
            row["flagged"] += 1
            row["rejected"] += rejected
    per_check = [
        {
            "check": name,
            "flagged": row["flagged"],
            "rejected": row["rejected"],
            "precision": round(row["rejected"] / row["flagged"], 4),
        }
        for name, row in sorted(checks.items(), key=lambda kv: (-kv[1]["flagged"], kv[0]))
    ]
    rejected_total = sum(1 for _, r in decided if r)
    suggestion: dict[str, Any] | None = None
    note = None
    if len(decided) < MIN_DECISIONS:
        note = f"a suggested threshold needs {MIN_DECISIONS} review decisions; this dataset has {len(decided)}"
    elif rejected_total in (0, len(decided)):
        note = "every reviewed conversation got the same decision: nothing to calibrate against"
    else:
        candidates = sorted({round(s + 0.05, 2) for s, _ in decided} | {FLAG_THRESHOLD})
        best = max(
            candidates,
            key=lambda t: (
                (_at(t, decided)["recall"] or 0.0) - (_at(t, decided)["false_flag_rate"] or 0.0),
                -abs(t - FLAG_THRESHOLD),
            ),
        )
        suggestion = _at(best, decided)
    return {
        "decisions": len(decided),
        "approved": len(decided) - rejected_total,
        "rejected": rejected_total,
        "bands": bands,
        "checks": per_check,
        "current": _at(FLAG_THRESHOLD, decided) if decided else None,
        "suggested": suggestion,
        "min_decisions": MIN_DECISIONS,
        "note": note,
    }
