"""The review rules as pure functions: status lifecycle, what an edit does to a review."""

from __future__ import annotations

import pytest

from chalicelib.domain.errors import ConflictError, ValidationError
from chalicelib.domain.models import ConversationStatus as S
from chalicelib.domain.review_rules import (
    CONTENT_FIELDS,
    STATUS_TRANSITIONS,
    can_transition,
    changed_content_fields,
    check_review_target,
    require_not_generating,
    returns_to_review,
    status_after_edit,
)


@pytest.mark.parametrize("field", CONTENT_FIELDS)
@pytest.mark.parametrize("status", [S.APPROVED, S.REJECTED])
def test_a_content_or_label_change_sends_a_reviewed_conversation_back(
    field: str, status: S
) -> None:
    assert status_after_edit(status, [field]) == S.GENERATED
    assert returns_to_review(status, [field])


def test_turn_content_counts_as_content() -> None:
    assert status_after_edit(S.APPROVED, ["turns"]) == S.GENERATED


@pytest.mark.parametrize("status", [S.GENERATED, S.NOT_GENERATED, S.FAILED])
def test_unreviewed_conversations_keep_their_status_on_edit(status: S) -> None:
    assert status_after_edit(status, ["persona", "title"]) == status
    assert not returns_to_review(status, ["persona"])


def test_notes_alone_keep_the_review() -> None:
    assert status_after_edit(S.APPROVED, ["reviewer_notes"]) == S.APPROVED
    assert status_after_edit(S.APPROVED, []) == S.APPROVED


def test_an_explicit_decision_in_the_same_edit_wins() -> None:
    assert status_after_edit(S.APPROVED, ["persona"], S.APPROVED) == S.APPROVED
    assert status_after_edit(S.REJECTED, ["tier"], S.APPROVED) == S.APPROVED
    assert not returns_to_review(S.APPROVED, ["persona"], S.APPROVED)


def test_changed_content_fields_compares_values_not_presence() -> None:
    before = {"persona": "A", "tier": "template", "title": "t", "reviewer_notes": "x"}
    assert changed_content_fields(before, {"persona": "A", "title": "t"}) == []
    assert changed_content_fields(before, {"persona": "B", "reviewer_notes": "y"}) == ["persona"]
    assert changed_content_fields(before, {"tier": "scenario", "title": "u"}) == ["tier", "title"]


def test_every_status_has_its_transitions() -> None:
    assert set(STATUS_TRANSITIONS) == set(S)
    assert can_transition(S.APPROVED, S.GENERATED)
    assert can_transition(S.GENERATING, S.GENERATED)
    assert not can_transition(S.NOT_GENERATED, S.APPROVED)
    assert not can_transition(S.FAILED, S.APPROVED)
    assert not can_transition(S.GENERATING, S.APPROVED)


def test_review_targets() -> None:
    check_review_target(S.GENERATED, S.APPROVED)
    check_review_target(S.APPROVED, S.REJECTED)
    check_review_target(S.REJECTED, S.GENERATED)
    with pytest.raises(ValidationError):
        check_review_target(S.GENERATED, S.FAILED)
    for status in (S.NOT_GENERATED, S.FAILED, S.GENERATING):
        with pytest.raises(ConflictError):
            check_review_target(status, S.APPROVED)


def test_only_a_conversation_being_generated_is_off_limits_to_edits() -> None:
    with pytest.raises(ConflictError, match="being generated"):
        require_not_generating(S.GENERATING)
    for status in set(S) - {S.GENERATING}:
        require_not_generating(status)  # the other rules decide what these may do


# ---------------------------------------------------------------------------- model names


def test_model_names_are_checked_against_the_price_table() -> None:
    from chalicelib.config import DEFAULT_PRICES
    from chalicelib.domain.model_names import check_model_name

    known = list(DEFAULT_PRICES)
    for name in known:
        assert check_model_name(name, known) == name
    assert check_model_name("claude-sonnet-4-5-20250929", known) == "claude-sonnet-4-5-20250929"
    for bad in (
        "claude-audit-nonexistent",
        "gpt-4o",
        "claude-sonnet-4-5-2025",
        "",
        " claude-sonnet-4-6",
    ):
        with pytest.raises(ValidationError) as e:
            check_model_name(bad, known)
        assert e.value.details["allowed"] == sorted(known)
    assert check_model_name("my-model", ["my-model"]) == "my-model"


# ---------------------------------------------------------------------------- coverage scope


def test_coverage_scope_of_a_filtered_view() -> None:
    from chalicelib.domain.models import Taxonomy, TaxonomyEntry, Tier, TierDistribution
    from chalicelib.planning.coverage import scope_for_filters

    def entries(*names: str) -> list[TaxonomyEntry]:
        return [TaxonomyEntry(name=n) for n in names]

    taxonomy = Taxonomy(
        personas=entries("A", "B", "C", "D"),
        emotions=entries("x", "y"),
        topics=entries("t"),
        intents=entries("i"),
        tones=entries("o"),
    )
    dist = TierDistribution(template=50, scenario=30, edge_case=20)
    same = scope_for_filters(taxonomy, 100, dist, {"status": ["approved"], "q": ["z"]})
    assert same == (taxonomy, 100, dist)
    scoped, target, d = scope_for_filters(taxonomy, 100, dist, {"persona": ["B", "Z"]})
    assert scoped.names("personas") == ["B"] and scoped.names("emotions") == ["x", "y"]
    assert target == 25 and d == dist
    scoped, target, d = scope_for_filters(
        taxonomy, 100, dist, {"persona": ["A", "B"], "tier": ["scenario"]}
    )
    assert target == 15  # half the personas, the scenario tier's 30
    assert d.counts(target)[Tier.SCENARIO] == 15
    assert (d.template, d.edge_case) == (0, 0)


# ---------------------------------------------------------------------------- dataset rules


def test_an_archived_dataset_refuses_writes_and_active_jobs_block_archive_and_delete() -> None:
    from datetime import UTC, datetime

    from chalicelib.domain.dataset_rules import active_jobs, require_no_active_job, require_writable
    from chalicelib.domain.errors import DatasetArchivedError
    from chalicelib.domain.models import Dataset, Job, JobStatus

    dataset = Dataset(tenant_id="t", name="d")
    require_writable(dataset)
    archived = dataset.model_copy(update={"archived_at": datetime.now(UTC)})
    with pytest.raises(DatasetArchivedError) as e:
        require_writable(archived)
    assert e.value.status_code == 409 and e.value.code == "dataset_archived"
    assert e.value.details["dataset_id"] == dataset.dataset_id

    def job(status: JobStatus) -> Job:
        return Job(tenant_id="t", dataset_id=dataset.dataset_id, kind="batch", status=status)

    idle = [
        job(s)
        for s in (JobStatus.PAUSED, JobStatus.COMPLETED, JobStatus.FAILED, JobStatus.CANCELLED)
    ]
    assert active_jobs(idle) == []
    require_no_active_job(dataset, idle, "delete")
    for status in (JobStatus.QUEUED, JobStatus.RUNNING, JobStatus.PAUSING):
        running = job(status)
        with pytest.raises(ConflictError) as c:
            require_no_active_job(dataset, [*idle, running], "archive")
        assert c.value.details["active_jobs"] == [running.job_id]
