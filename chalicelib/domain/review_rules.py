"""Review rules: the conversation status lifecycle and what an edit does to a review.

Pure functions over statuses and field names (no I/O), so the service, the API and the
tests share one statement of the rules.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from chalicelib.domain.errors import ConflictError, ValidationError
from chalicelib.domain.models import REVIEWABLE_STATUSES, ConversationStatus

S = ConversationStatus

# Every status change the product makes, and who makes it.
STATUS_TRANSITIONS: Mapping[ConversationStatus, frozenset[ConversationStatus]] = {
    # a job claims it
    S.NOT_GENERATED: frozenset({S.GENERATING}),
    # the job stores it, fails it, or gives the claim back unused
    S.GENERATING: frozenset({S.GENERATED, S.FAILED, S.NOT_GENERATED}),
    # a retry claims it again; regenerate resets it
    S.FAILED: frozenset({S.GENERATING, S.NOT_GENERATED}),
    # a reviewer decides; regenerate resets it
    S.GENERATED: frozenset({S.APPROVED, S.REJECTED, S.NOT_GENERATED}),
    # a reviewer changes their mind, undoes the review (or an edit does); regenerate
    S.APPROVED: frozenset({S.REJECTED, S.GENERATED, S.NOT_GENERATED}),
    S.REJECTED: frozenset({S.APPROVED, S.GENERATED, S.NOT_GENERATED}),
}
# What a reviewer may set with PATCH or a bulk action (generated = undo a review).
REVIEW_TARGETS = frozenset({S.APPROVED, S.REJECTED, S.GENERATED})

# Fields whose change alters what the conversation says or how it is labelled in a
# training file (exports carry all of them): a review of the old values no longer
# holds. Reviewer notes are about the review, not the content.
CONTENT_FIELDS: tuple[str, ...] = ("persona", "emotion", "topic", "intent", "tone", "tier", "title")
TURN_CONTENT_FIELDS: tuple[str, ...] = ("turns",)
# Cleared when a conversation goes back for review: nobody has reviewed what it now says.
APPROVAL_FIELDS: tuple[str, ...] = ("approved_by", "approved_at", "reviewed_by", "reviewed_at")


def can_transition(current: ConversationStatus, target: ConversationStatus) -> bool:
    return target == current or target in STATUS_TRANSITIONS.get(current, frozenset())


def check_review_target(current: ConversationStatus, target: ConversationStatus) -> None:
    """Raise unless a reviewer may move a conversation from ``current`` to ``target``."""
    if target not in REVIEW_TARGETS:
        raise ValidationError(
            f"status can be set to approved, rejected or generated, not '{target.value}'",
            {"field": "status", "allowed": sorted(s.value for s in REVIEW_TARGETS)},
        )
    if current == S.GENERATING:
        raise ConflictError("the conversation is being generated; wait for it to finish")
    if current not in REVIEWABLE_STATUSES or not can_transition(current, target):
        raise ConflictError(
            f"a conversation that is {current.value} cannot be reviewed; generate it first",
            {"status": current.value},
        )


def changed_content_fields(before: Mapping[str, Any], after: Mapping[str, Any]) -> list[str]:
    """The content/label fields whose value differs between two states."""
    names = (*CONTENT_FIELDS, *TURN_CONTENT_FIELDS)
    return [n for n in names if n in after and after.get(n) != before.get(n)]


def status_after_edit(
    current: ConversationStatus,
    changed_fields: Iterable[str],
    requested: ConversationStatus | None = None,
) -> ConversationStatus:
    """The status a conversation has after an edit.

    An explicit review decision in the same request wins (the reviewer judged the new
    content). Otherwise a change of content or labels sends an approved or rejected
    conversation back for review (``generated``); anything else keeps its status."""
    if requested is not None:
        return requested
    content = set(changed_fields) & {*CONTENT_FIELDS, *TURN_CONTENT_FIELDS}
    if content and current in (S.APPROVED, S.REJECTED):
        return S.GENERATED
    return current


def returns_to_review(
    current: ConversationStatus,
    changed_fields: Iterable[str],
    requested: ConversationStatus | None = None,
) -> bool:
    """Whether this edit undoes the conversation's review (its approval fields go)."""
    return requested is None and status_after_edit(current, changed_fields) != current
