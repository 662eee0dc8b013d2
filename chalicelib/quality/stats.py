"""Dataset-level quality statistics (``GET /api/conversations/quality-stats``)."""

from __future__ import annotations

import math
import statistics
from collections import Counter
from collections.abc import Callable, Iterable
from typing import Any

from chalicelib.domain.models import FLAG_THRESHOLD, Conversation, ConversationStatus, Tier

HIGH_QUALITY = 8.0  # "green" in the product's colour coding

# Histogram bucket k holds scores in [k, k+1); bucket 10 holds exactly 10. Whole-number
# edges keep the flag line (6) on a bucket boundary: buckets 1-5 are all flagged.
BUCKETS = tuple(range(1, 11))


def score_of(conversation: Conversation) -> float | None:
    if conversation.quality_score is not None:
        return conversation.quality_score
    if conversation.quality is not None:
        return conversation.quality.score
    return None


def bucket_of(score: float) -> int:
    return min(10, max(1, math.floor(score)))


def _rate(approved: int, rejected: int) -> float | None:
    reviewed = approved + rejected
    return round(approved / reviewed, 4) if reviewed else None


def _approval_by(
    conversations: list[Conversation], key: Callable[[Conversation], str | None]
) -> dict[str, dict[str, Any]]:
    """``{group: {approved, rejected, approval_rate}}``; rate is approved/(approved+rejected),
    None while nothing in the group has been reviewed. Groups whose key is None are left out."""
    counts: dict[str, Counter[str]] = {}
    for c in conversations:
        k = key(c)
        if k is None:
            continue
        counter = counts.setdefault(k, Counter())
        counter[c.status.value] += 1
    out: dict[str, dict[str, Any]] = {}
    for k in sorted(counts):
        approved = counts[k][ConversationStatus.APPROVED.value]
        rejected = counts[k][ConversationStatus.REJECTED.value]
        out[k] = {
            "total": sum(counts[k].values()),
            "approved": approved,
            "rejected": rejected,
            "approval_rate": _rate(approved, rejected),
        }
    return out


def _template_key(c: Conversation) -> str | None:
    if not c.template_id:
        return None
    return f"{c.template_id}@v{c.template_version}" if c.template_version else c.template_id


def quality_stats(conversations: Iterable[Conversation]) -> dict[str, Any]:
    """Score distribution, flag and approval figures for a set of conversations.

    Only conversations with a score count towards the distribution figures
    (``scored``); status counts and approval rates cover every conversation.
    """
    convs = list(conversations)
    scores = [s for s in (score_of(c) for c in convs) if s is not None]
    histogram = {str(b): 0 for b in BUCKETS}
    for s in scores:
        histogram[str(bucket_of(s))] += 1
    by_status = {status.value: 0 for status in ConversationStatus}
    for c in convs:
        by_status[c.status.value] += 1
    approved = by_status[ConversationStatus.APPROVED.value]
    rejected = by_status[ConversationStatus.REJECTED.value]
    by_tier = _approval_by(convs, lambda c: c.tier.value)
    for tier in Tier:  # every tier present, so the UI's table has fixed rows
        by_tier.setdefault(
            tier.value, {"total": 0, "approved": 0, "rejected": 0, "approval_rate": None}
        )
    return {
        "count": len(convs),
        "scored": len(scores),
        "mean": round(statistics.fmean(scores), 2) if scores else None,
        "median": round(statistics.median(scores), 2) if scores else None,
        "min": min(scores) if scores else None,
        "max": max(scores) if scores else None,
        "histogram": histogram,
        "share_high_quality": round(sum(s >= HIGH_QUALITY for s in scores) / len(scores), 4)
        if scores
        else None,
        "high_quality_threshold": HIGH_QUALITY,
        "flagged": sum(s < FLAG_THRESHOLD for s in scores),
        "flag_threshold": FLAG_THRESHOLD,
        "duplicates": sum(
            1 for c in convs if (brief := c.quality_brief()) is not None and brief.duplicate_of
        ),
        "by_status": by_status,
        "approval_rate": _rate(approved, rejected),
        "approval_by_tier": dict(sorted(by_tier.items())),
        "approval_by_template": _approval_by(convs, _template_key),
        "approval_by_persona": _approval_by(convs, lambda c: c.persona),
    }
