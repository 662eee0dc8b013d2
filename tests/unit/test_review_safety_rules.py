"""The rules behind undo, bulk previews, the reject-note requirement, per-turn feedback,
one-gap plans and taxonomy previews, as pure functions; and the undo token's encoding."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from chalicelib.domain.dataset_rules import taxonomy_impact
from chalicelib.domain.errors import ValidationError
from chalicelib.domain.models import (
    Conversation,
    TaxonomyEntry,
    Tier,
    TierDistribution,
    TurnFeedback,
)
from chalicelib.domain.models import ConversationStatus as S
from chalicelib.domain.review_rules import (
    UNDO_FIELDS,
    UNDO_KINDS,
    apply_turn_feedback,
    bulk_outcome,
    reject_note_missing,
    undo_refusal,
    undo_restore,
)
from chalicelib.planning.coverage import plan_for_gap
from chalicelib.planning.planner import plan_conversations
from chalicelib.planning.sample_data import load_sample_dataset
from chalicelib.review.undo import decode_token, encode_token, new_decision

NOW = datetime(2026, 12, 2, 14, 0, tzinfo=UTC)


# ---------------------------------------------------------------------------- undo


def test_undo_restores_only_what_changed_with_the_old_values() -> None:
    before = {"status": "approved", "approved_by": "a@x", "reviewer_notes": None, "title": "T"}
    after = {"status": "rejected", "approved_by": None, "reviewer_notes": "no", "title": "T"}
    assert undo_restore(before, after) == {
        "status": "approved",
        "approved_by": "a@x",
        "reviewer_notes": None,
    }
    assert undo_restore(before, before) == {}


def test_undo_never_touches_generation_or_quality_fields() -> None:
    before = {"quality_score": 4.0, "turn_count": 10, "version": 3, "status": "generated"}
    after = {"quality_score": 9.0, "turn_count": 12, "version": 4, "status": "approved"}
    assert undo_restore(before, after) == {"status": "generated"}
    assert not {"quality_score", "turn_count", "version", "updated_at"} & set(UNDO_FIELDS)


@pytest.mark.parametrize(
    ("current", "left", "expected"),
    [(5, 5, None), (6, 5, "changed"), (4, 5, "changed"), (None, 5, "not_found")],
)
def test_an_undo_applies_only_to_the_version_the_decision_left(
    current: int | None, left: int, expected: str | None
) -> None:
    assert undo_refusal(current, left) == expected


def test_every_undo_kind_can_itself_be_undone() -> None:
    for kind, inverse in UNDO_KINDS.items():
        assert UNDO_KINDS[inverse] == kind


def test_undo_tokens_round_trip_and_reject_anything_else() -> None:
    decision = new_decision("tenant-a", "a@x", "approve", "review")
    token = encode_token(decision)
    assert decode_token(token) == decision.sort_key
    assert decision.entity_id == decision.audit_id
    for bad in ("", "u1.", "u2." + token[3:], "u1.!!", token[:-4], "u1.aGVsbG8"):
        with pytest.raises(ValidationError):
            decode_token(bad)


# ---------------------------------------------------------------------------- notes


@pytest.mark.parametrize(
    ("require", "target", "note", "existing", "missing"),
    [
        (True, S.REJECTED, None, None, True),
        (True, S.REJECTED, "   ", "old reason", True),  # a blank note replaces it
        (True, S.REJECTED, None, "old reason", False),  # the note it already has
        (True, S.REJECTED, "wrong figures", None, False),
        (True, S.APPROVED, None, None, False),
        (True, None, None, None, False),
        (False, S.REJECTED, None, None, False),
    ],
)
def test_a_reject_needs_a_note_only_where_the_dataset_asks(
    require: bool, target: S | None, note: str | None, existing: str | None, missing: bool
) -> None:
    assert reject_note_missing(require, target, note, existing) is missing


# ---------------------------------------------------------------------------- bulk


@pytest.mark.parametrize(
    ("action", "status", "outcome"),
    [
        ("approve", S.GENERATED, "change"),
        ("approve", S.REJECTED, "change"),
        ("approve", S.APPROVED, "already"),
        ("reject", S.REJECTED, "already"),
        ("approve", S.NOT_GENERATED, "not_reviewable"),
        ("reject", S.FAILED, "not_reviewable"),
        ("approve", S.GENERATING, "generating"),
        ("delete", S.GENERATING, "generating"),
        ("delete", S.NOT_GENERATED, "change"),
        ("restore", S.APPROVED, "change"),
    ],
)
def test_bulk_outcomes_per_status(action: str, status: S, outcome: str) -> None:
    assert bulk_outcome(action, status) == outcome


# ---------------------------------------------------------------------------- turns


def test_an_edit_keeps_the_generated_text_and_a_revert_drops_the_edit() -> None:
    text, fb = apply_turn_feedback("original", None, {"content": "better"}, "r@x", NOW)
    assert text == "better" and fb is not None
    assert fb.edited and fb.original_content == "original"
    assert fb.edited_by == "r@x" and fb.edited_at == NOW and fb.by == "r@x"
    # A second edit still remembers the generated text.
    later = NOW + timedelta(minutes=1)
    text, fb2 = apply_turn_feedback(text, fb, {"content": "best"}, "s@x", later)
    assert text == "best" and fb2 is not None and fb2.original_content == "original"
    assert fb2.edited_by == "s@x" and fb2.at == later
    # The original text again: nothing is marked any more.
    text, fb3 = apply_turn_feedback(text, fb2, {"content": "original"}, "r@x", later)
    assert text == "original" and fb3 is None


def test_bad_and_note_are_kept_apart_from_the_edit() -> None:
    _, fb = apply_turn_feedback("t", None, {"bad": True, "note": " wrong fee "}, "r@x", NOW)
    assert fb is not None and fb.bad and fb.note == "wrong fee" and not fb.edited
    text, fb = apply_turn_feedback("t", fb, {"content": "fixed"}, "r@x", NOW)
    assert fb is not None and fb.bad and fb.edited and text == "fixed"
    _, fb = apply_turn_feedback(text, fb, {"note": None, "bad": False}, "r@x", NOW)
    assert fb is not None and not fb.bad and fb.note is None and fb.edited
    _, cleared = apply_turn_feedback(
        "t", TurnFeedback(bad=True, by="r", at=NOW), {"bad": False}, "r", NOW
    )
    assert cleared is None


@pytest.mark.parametrize(
    "changes",
    [{}, {"bad": False}, {"note": None}, {"content": "same"}, {"content": "  "}, {"other": 1}],
)
def test_a_change_that_changes_nothing_is_refused(changes: dict[str, object]) -> None:
    with pytest.raises(ValidationError):
        apply_turn_feedback("same", None, changes, "r@x", NOW)


# ---------------------------------------------------------------------------- coverage


def _sample_conversations(n: int) -> tuple[Any, list[Any], list[Conversation]]:
    taxonomy, chunks, _ = load_sample_dataset()
    specs = plan_conversations(taxonomy, chunks, n, TierDistribution(), seed=7)
    return taxonomy, chunks, [Conversation.from_spec("t", "ds", s) for s in specs]


def test_a_gap_plan_keeps_the_gaps_values_and_balances_the_rest() -> None:
    taxonomy, chunks, convs = _sample_conversations(20)
    persona = taxonomy.names("personas")[1]
    topic = taxonomy.names("topics")[2]
    specs = plan_for_gap(taxonomy, chunks, convs, {"persona": persona, "topic": topic}, 4)
    assert [(s.persona, s.topic, s.tier) for s in specs] == [(persona, topic, Tier.TEMPLATE)] * 4
    assert len({s.emotion for s in specs}) == 4
    # Names are matched as the taxonomy spells them.
    specs = plan_for_gap(taxonomy, chunks, convs, {"persona": persona.upper()}, 1)
    assert specs[0].persona == persona
    tiers = plan_for_gap(taxonomy, chunks, convs, {"tier": "edge_case"}, 3)
    assert {s.tier for s in tiers} == {Tier.EDGE_CASE}
    assert len({s.edge_case_type for s in tiers}) == 3
    for bad in ({"persona": "Nobody"}, {}):
        with pytest.raises(ValidationError):
            plan_for_gap(taxonomy, chunks, convs, bad, 1)


def test_taxonomy_impact_counts_the_conversations_of_removed_names() -> None:
    taxonomy, _, convs = _sample_conversations(30)
    gone = taxonomy.personas[0].name
    convs[0] = convs[0].model_copy(update={"persona": gone, "status": S.APPROVED})
    proposed = taxonomy.model_copy(
        update={"personas": [*taxonomy.personas[1:], TaxonomyEntry(name="New One")]}
    )
    impact = taxonomy_impact(taxonomy, proposed, convs)
    users = [c for c in convs if c.persona == gone]
    assert impact["dimensions"]["personas"]["removed"] == [gone]
    assert impact["dimensions"]["personas"]["added"] == ["New One"]
    assert impact["affected_total"] == len(users)
    assert impact["affected_not_generated"] == len(users) - 1
    assert impact["affected"][0]["by_status"] == {
        "approved": 1,
        "not_generated": len(users) - 1,
    }
    assert taxonomy_impact(taxonomy, taxonomy, convs)["affected"] == []
