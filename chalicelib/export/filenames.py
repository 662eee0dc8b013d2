"""Export file names: ``training-data-2026-11-26-approved-87-conversations.jsonl``."""

from __future__ import annotations

import re
from datetime import UTC, date, datetime
from typing import Final

from chalicelib.domain.errors import ValidationError

_NOT_SLUG: Final = re.compile(r"[^a-z0-9]+")
_EXTENSION: Final = re.compile(r"[a-z0-9]+(\.[a-z0-9]+)*")


def _slug(value: str) -> str:
    return _NOT_SLUG.sub("-", value.lower()).strip("-")


def export_filename(
    export_date: date | datetime,
    status_label: str = "approved",
    *,
    count: int,
    extension: str,
    split: str | None = None,
) -> str:
    """``training-data-<date>-<status>-<count>-conversations[-<split>].<ext>``.

    Always "conversations" (also for 1) so names glob predictably. Labels are slugged so a
    name is safe as an S3 key and in Content-Disposition. An aware datetime is dated in UTC.
    """
    if count < 0:
        raise ValidationError("count must not be negative", {"count": count})
    if isinstance(export_date, datetime):
        day = (export_date.astimezone(UTC) if export_date.tzinfo else export_date).date()
    else:
        day = export_date
    label = _slug(status_label)
    if not label:
        raise ValidationError("status_label must contain letters or digits")
    ext = extension.lower().lstrip(".")
    if not _EXTENSION.fullmatch(ext):
        raise ValidationError(f"invalid extension {extension!r}")
    name = f"training-data-{day.isoformat()}-{label}-{count}-conversations"
    if split is not None:
        split_slug = _slug(split)
        if not split_slug:
            raise ValidationError("split must contain letters or digits")
        name += f"-{split_slug}"
    return f"{name}.{ext}"


MAX_LABEL_CHARS: Final = 48


def dataset_label(names: list[str]) -> str:
    """The slug naming an export's dataset (one), or ``all-datasets``."""
    if len(names) == 1:
        label = _slug(names[0])[:MAX_LABEL_CHARS].strip("-")
        if label:
            return label
    return "all-datasets" if len(names) != 1 else "dataset"


def export_file_name(
    label: str,
    fmt: str,
    export_date: date | datetime,
    *,
    extension: str,
    split: str | None = None,
    count: int | None = None,
    suffix: str | None = None,
) -> str:
    """``<dataset>-<format>[-<split>][-<count>-conversations]-<date>[-<suffix>].<ext>``:
    each download says what it holds, so the files of one export (and of two exports)
    never share a name. Always "conversations" (also for 1) so names glob predictably."""
    if count is not None and count < 0:
        raise ValidationError("count must not be negative", {"count": count})
    if isinstance(export_date, datetime):
        day = (export_date.astimezone(UTC) if export_date.tzinfo else export_date).date()
    else:
        day = export_date
    ext = extension.lower().lstrip(".")
    if not _EXTENSION.fullmatch(ext):
        raise ValidationError(f"invalid extension {extension!r}")
    parts = [_slug(label) or "dataset", _slug(fmt)]
    if split is not None:
        parts.append(_slug(split))
    if count is not None:
        parts.append(f"{count}-conversations")
    parts.append(day.isoformat())
    if suffix:
        parts.append(_slug(suffix))
    return "-".join(p for p in parts if p) + f".{ext}"
