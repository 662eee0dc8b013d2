"""Review rules: the conversation status lifecycle and what an edit does to a review.

Pure functions over statuses and field names (no I/O), so the service, the API and the
tests share one statement of the rules.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import datetime
from typing import Any

from chalicelib.domain.errors import ConflictError, ValidationError
from chalicelib.domain.models import REVIEWABLE_STATUSES, ConversationStatus, TurnFeedback

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


GENERATING_MESSAGE = "the conversation is being generated; wait for it to finish"


def require_not_generating(status: ConversationStatus) -> None:
    """Nobody edits, reviews or deletes a conversation its generator is writing (the
    store's conditional writes hold the same rule against a race)."""
    if status == S.GENERATING:
        raise ConflictError(GENERATING_MESSAGE)


def check_review_target(current: ConversationStatus, target: ConversationStatus) -> None:
    """Raise unless a reviewer may move a conversation from ``current`` to ``target``."""
    if target not in REVIEW_TARGETS:
        raise ValidationError(
            f"status can be set to approved, rejected or generated, not '{target.value}'",
            {"field": "status", "allowed": sorted(s.value for s in REVIEW_TARGETS)},
        )
    require_not_generating(current)
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


# ---------------------------------------------------------------------------- undo

# What a review decision may change and its undo puts back (version and times are the
# write's own; quality and generation fields are never a reviewer's).
UNDO_FIELDS: tuple[str, ...] = (
    "status",
    *CONTENT_FIELDS,
    "reviewer_notes",
    *APPROVAL_FIELDS,
)


def undo_restore(before: Mapping[str, Any], after: Mapping[str, Any]) -> dict[str, Any]:
    """The fields a decision changed, with the values its undo writes back."""
    return {name: before.get(name) for name in UNDO_FIELDS if before.get(name) != after.get(name)}


def undo_refusal(current_version: int | None, left_version: int) -> str | None:
    """Why an undo cannot revert one conversation: ``not_found`` (gone, or not where the
    decision left it), ``changed`` (written since: reverting would lose that write), or
    None when it still is exactly what the decision left."""
    if current_version is None:
        return "not_found"
    if current_version != left_version:
        return "changed"
    return None


# Each kind of decision and the kind its undo is (so an undo can itself be undone).
UNDO_KINDS: Mapping[str, str] = {
    "review": "review",
    "trash": "restore",
    "restore": "trash",
    "turn": "turn",
}


# ---------------------------------------------------------------------------- notes


def reject_note_missing(
    require_note: bool,
    target: ConversationStatus | None,
    note: str | None,
    existing_note: str | None = None,
) -> bool:
    """A rejection on a dataset that requires a reason, with none given (the request's
    note, else the one the conversation already has)."""
    if not require_note or target != S.REJECTED:
        return False
    given = note if note is not None else existing_note
    return not (given or "").strip()


# ---------------------------------------------------------------------------- bulk

BULK_TARGETS: Mapping[str, ConversationStatus] = {"approve": S.APPROVED, "reject": S.REJECTED}


def bulk_outcome(action: str, status: ConversationStatus) -> str:
    """What a bulk ``action`` does to a conversation in ``status`` (found, writable):
    ``change``, ``already`` (approve/reject: it is in that status; it is re-stamped),
    or the reason it is refused: ``generating`` or ``not_reviewable``."""
    if status == S.GENERATING:
        return "generating"
    if action in BULK_TARGETS:
        if status not in REVIEWABLE_STATUSES:
            return "not_reviewable"
        return "already" if status == BULK_TARGETS[action] else "change"
    return "change"  # delete (to the trash) and restore (from it)


# ---------------------------------------------------------------------------- turns

TURN_NOTE_MAX = 5000


def apply_turn_feedback(
    content: str,
    feedback: TurnFeedback | None,
    changes: Mapping[str, Any],
    actor: str,
    now: datetime,
) -> tuple[str, TurnFeedback | None]:
    """A turn's text and feedback after a reviewer's change.

    ``changes`` holds any of ``bad``, ``note`` (None clears it) and ``content`` (the
    edited text; the original text again removes the edit). The generated text is kept
    in ``original_content`` while the turn is edited. Returns (text, feedback), the
    feedback None when nothing is marked any more. Raises when nothing would change."""
    known = {"bad", "note", "content"}
    if not known & set(changes):
        raise ValidationError("send bad, note or content", {"allowed": sorted(known)})
    fb = feedback or TurnFeedback(by=actor, at=now)
    original = fb.original_content if fb.original_content is not None else content
    update: dict[str, Any] = {}
    text = content
    if "bad" in changes and changes["bad"] is not None:
        update["bad"] = bool(changes["bad"])
    if "note" in changes:
        note = changes["note"]
        update["note"] = note.strip() or None if isinstance(note, str) else None
    if "content" in changes and changes["content"] is not None:
        new_text = changes["content"]
        if not new_text.strip():
            raise ValidationError("content must not be blank", {"field": "content"})
        text = new_text
        if new_text == original:
            update.update({"original_content": None, "edited_at": None, "edited_by": None})
        elif new_text != content:
            update.update({"original_content": original, "edited_at": now, "edited_by": actor})
    after = fb.model_copy(update=update)
    before_view = (content, feedback.model_dump(exclude={"by", "at"}) if feedback else None)
    after_view = (text, None if after.empty else after.model_dump(exclude={"by", "at"}))
    if before_view == after_view:
        raise ValidationError("nothing to change: the turn already is like that")
    if after.empty:
        return text, None
    return text, after.model_copy(update={"by": actor, "at": now})
