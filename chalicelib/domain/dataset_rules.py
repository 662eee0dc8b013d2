"""Dataset rules: what an archived dataset allows, and when a dataset may be archived
or deleted. Pure functions over domain models."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from chalicelib.domain.errors import ConflictError, DatasetArchivedError
from chalicelib.domain.models import (
    ACTIVE_JOB_STATUSES,
    DIMENSIONS,
    TAXONOMY_FIELD,
    Conversation,
    ConversationStatus,
    Dataset,
    Job,
    Taxonomy,
)

ARCHIVED_MESSAGE = (
    "the dataset is archived (read-only: no planning, generation or edits); unarchive it first"
)


def require_writable(dataset: Dataset) -> None:
    """Raise unless the dataset may be changed (planned, generated, edited, reviewed).
    Reading, listing, coverage and exports stay open on an archived dataset."""
    if dataset.archived:
        raise DatasetArchivedError(
            ARCHIVED_MESSAGE,
            {
                "dataset_id": dataset.dataset_id,
                "archived_at": dataset.archived_at.isoformat() if dataset.archived_at else None,
            },
        )


def active_jobs(jobs: Iterable[Job]) -> list[Job]:
    return [j for j in jobs if j.status in ACTIVE_JOB_STATUSES]


def require_no_active_job(dataset: Dataset, jobs: Iterable[Job], doing: str) -> None:
    """Archiving or deleting waits for the dataset's running jobs (cancel or let them
    finish): they would write into a dataset that no longer takes writes."""
    running = active_jobs(jobs)
    if running:
        raise ConflictError(
            f"cannot {doing} the dataset while a generation job is active; "
            "cancel it or wait for it to finish",
            {
                "dataset_id": dataset.dataset_id,
                "active_jobs": [j.job_id for j in running],
            },
        )


def taxonomy_impact(
    current: Taxonomy, proposed: Taxonomy, conversations: Sequence[Conversation]
) -> dict[str, Any]:
    """What replacing the taxonomy does: per dimension the names added, removed and
    redescribed, and the conversations that use a removed name, per status. Those keep
    their value (a conversation is never relabelled by a taxonomy change): coverage
    lists it as outside the taxonomy, and the ones not generated yet are still written
    with it (the prompt then has no description for it)."""
    dimensions: dict[str, Any] = {}
    affected: list[dict[str, Any]] = []
    for dim in DIMENSIONS:
        field = TAXONOMY_FIELD[dim]
        old = {e.name: e.description for e in getattr(current, field)}
        new = {e.name: e.description for e in getattr(proposed, field)}
        removed = [n for n in old if n not in new]
        dimensions[field] = {
            "added": [n for n in new if n not in old],
            "removed": removed,
            "redescribed": [n for n in new if n in old and old[n] != new[n]],
            "kept": sum(1 for n in new if n in old),
        }
        for name in removed:
            by_status: dict[str, int] = {}
            for c in conversations:
                if getattr(c, dim) == name:
                    by_status[c.status.value] = by_status.get(c.status.value, 0) + 1
            if by_status:
                affected.append(
                    {
                        "dimension": dim,
                        "value": name,
                        "total": sum(by_status.values()),
                        "by_status": by_status,
                    }
                )
    planned = (ConversationStatus.NOT_GENERATED, ConversationStatus.FAILED)
    return {
        "dimensions": dimensions,
        "affected": affected,
        "affected_total": len(
            {
                c.conversation_id
                for c in conversations
                for a in affected
                if getattr(c, a["dimension"]) == a["value"]
            }
        ),
        "affected_not_generated": len(
            {
                c.conversation_id
                for c in conversations
                for a in affected
                if c.status in planned and getattr(c, a["dimension"]) == a["value"]
            }
        ),
        "note": "conversations keep the value they were planned with; coverage shows a "
        "removed value as outside the taxonomy, and conversations not generated yet are "
        "still written with it, without its description",
    }
