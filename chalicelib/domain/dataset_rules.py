"""Dataset rules: what an archived dataset allows, and when a dataset may be archived
or deleted. Pure functions over domain models."""

from __future__ import annotations

from collections.abc import Iterable

from chalicelib.domain.errors import ConflictError, DatasetArchivedError
from chalicelib.domain.models import ACTIVE_JOB_STATUSES, Dataset, Job

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
