"""Parse uploaded taxonomies and stage-2 chunk files into domain models.

All-or-nothing: every bad row is collected and reported in one ``ValidationError``
(``details["errors"]`` = ``[{"row", "field", "error"}, ...]``) so a user fixes the whole
file in one round trip, and nothing is returned from a file that has any bad row.

Row numbering (also stated in ``details["row_numbering"]``):
- JSON chunk lists and taxonomy dimension lists: ``row`` is the 1-based list index.
- CSV: ``row`` is the spreadsheet row, the header being row 1, so data starts at row 2.
"""

from __future__ import annotations

import csv
import io
import json
from typing import Any

from chalicelib.domain.errors import ValidationError
from chalicelib.domain.json_limits import loads_bounded
from chalicelib.domain.models import DIMENSIONS, TAXONOMY_FIELD, Chunk, Taxonomy, TaxonomyEntry

MAX_CHUNKS = 5000
MAX_ENTRIES_PER_DIMENSION = 200
MAX_NAME_CHARS = 120  # mirrors TaxonomyEntry.name
MAX_DESCRIPTION_CHARS = 2000  # mirrors TaxonomyEntry.description
MAX_ID_CHARS = 200  # mirrors Chunk.chunk_id / document_id
MAX_TITLE_CHARS = 500
MAX_CHUNK_TEXT_CHARS = 20000  # mirrors Chunk.text

CSV_COLUMNS: tuple[str, ...] = ("chunk_id", "document_id", "document_title", "text", *DIMENSIONS)
REQUIRED_CSV_COLUMNS: tuple[str, ...] = ("chunk_id", "document_id", "text")

JSON_ROW_NUMBERING = "1-based index in the uploaded list"
CSV_ROW_NUMBERING = "spreadsheet row: the header is row 1, the first data row is row 2"


class _Errors:
    """Collects row errors so that one upload reports every problem at once."""

    def __init__(self) -> None:
        self.items: list[dict[str, Any]] = []
        self.bad_rows: set[tuple[str, int | None]] = set()

    def add(self, row: int | None, field: str | None, error: str, **extra: Any) -> None:
        self.items.append({"row": row, "field": field, "error": error, **extra})
        self.bad_rows.add((str(extra.get("dimension", "")), row))

    def raise_if_any(self, what: str, row_numbering: str) -> None:
        if not self.items:
            return
        rows = len(self.bad_rows)
        raise ValidationError(
            f"{what}: {rows} invalid row{'s' if rows != 1 else ''}; nothing was imported",
            {"errors": self.items, "error_count": len(self.items), "row_numbering": row_numbering},
        )


def _too_many(what: str, count: int, limit: int, field: str) -> ValidationError:
    return ValidationError(
        f"{what}: {count} rows exceed the limit of {limit}; nothing was imported",
        {
            "errors": [{"row": None, "field": field, "error": f"at most {limit} allowed"}],
            "error_count": 1,
            "limit": limit,
            "count": count,
        },
    )


# --------------------------------------------------------------------------- taxonomy


def parse_taxonomy(data: Any) -> Taxonomy:
    """``{"personas": [...], "emotions": [...], ...}``; entries are ``{"name", "description"}``
    objects or plain strings. Every dimension is required and must be non-empty, because
    the planner needs a value of each for every conversation."""
    errors = _Errors()
    if not isinstance(data, dict):
        errors.add(None, None, "taxonomy must be a JSON object")
        errors.raise_if_any("Taxonomy", JSON_ROW_NUMBERING)
    parsed: dict[str, list[TaxonomyEntry]] = {}
    for dim in DIMENSIONS:
        key = TAXONOMY_FIELD[dim]
        raw = data.get(key)
        if raw is None:
            errors.add(None, key, "required", dimension=key)
            continue
        if not isinstance(raw, list):
            errors.add(None, key, "must be a list", dimension=key)
            continue
        if not raw:
            errors.add(None, key, "needs at least one entry", dimension=key)
            continue
        if len(raw) > MAX_ENTRIES_PER_DIMENSION:
            errors.add(
                None, key, f"at most {MAX_ENTRIES_PER_DIMENSION} entries allowed", dimension=key
            )
            continue
        parsed[key] = _parse_entries(key, raw, errors)
    errors.raise_if_any("Taxonomy", JSON_ROW_NUMBERING)
    return Taxonomy(**parsed)


def _parse_entries(key: str, raw: list[Any], errors: _Errors) -> list[TaxonomyEntry]:
    entries: list[TaxonomyEntry] = []
    first_row: dict[str, int] = {}
    for row, item in enumerate(raw, start=1):
        name: Any
        description: Any
        if isinstance(item, str):
            name, description = item, ""
        elif isinstance(item, dict):
            name = item.get("name")
            description = item.get("description") or ""
        else:
            errors.add(row, None, "entry must be a string or an object with a name", dimension=key)
            continue
        if not isinstance(name, str) or not name.strip():
            errors.add(row, "name", "required", dimension=key)
            continue
        name = " ".join(name.split())
        if len(name) > MAX_NAME_CHARS:
            errors.add(row, "name", f"longer than {MAX_NAME_CHARS} characters", dimension=key)
            continue
        if not isinstance(description, str):
            errors.add(row, "description", "must be a string", dimension=key)
            continue
        description = description.strip()
        if len(description) > MAX_DESCRIPTION_CHARS:
            errors.add(
                row, "description", f"longer than {MAX_DESCRIPTION_CHARS} characters", dimension=key
            )
            continue
        # Case-insensitive uniqueness: chunk dimension values are matched case-insensitively.
        folded = name.casefold()
        if folded in first_row:
            errors.add(
                row, "name", f"duplicate name (first in row {first_row[folded]})", dimension=key
            )
            continue
        first_row[folded] = row
        entries.append(TaxonomyEntry(name=name, description=description))
    return entries


# --------------------------------------------------------------------------- chunks


def _canonical_values(taxonomy: Taxonomy | None) -> dict[str, dict[str, str]] | None:
    if taxonomy is None:
        return None
    return {
        dim: {n.casefold(): n for n in taxonomy.names(TAXONOMY_FIELD[dim])} for dim in DIMENSIONS
    }


def _text_field(value: Any) -> str | None:
    """Strings as given; integers are accepted for ids (spreadsheets love numeric ids)."""
    if value is None:
        return None
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        return str(int(value)) if float(value).is_integer() else str(value)
    if isinstance(value, str):
        return value
    return None


def _build_chunk(
    row: int,
    raw: dict[str, Any],
    errors: _Errors,
    seen: dict[str, int],
    canonical: dict[str, dict[str, str]] | None,
) -> Chunk | None:
    ok = True
    values: dict[str, Any] = {}
    for field, limit in (("chunk_id", MAX_ID_CHARS), ("document_id", MAX_ID_CHARS)):
        value = _text_field(raw.get(field))
        value = value.strip() if value is not None else None
        if raw.get(field) is not None and value is None:
            errors.add(row, field, "must be a string")
            ok = False
        elif not value:
            errors.add(row, field, "required")
            ok = False
        elif len(value) > limit:
            errors.add(row, field, f"longer than {limit} characters")
            ok = False
        values[field] = value

    title = raw.get("document_title")
    if title is not None and not isinstance(title, str):
        errors.add(row, "document_title", "must be a string")
        ok = False
    elif title and len(title.strip()) > MAX_TITLE_CHARS:
        errors.add(row, "document_title", f"longer than {MAX_TITLE_CHARS} characters")
        ok = False
    values["document_title"] = (title or "").strip() if isinstance(title, str) else ""

    text = raw.get("text")
    if text is None:
        errors.add(row, "text", "required")
        ok = False
    elif not isinstance(text, str):
        errors.add(row, "text", "must be a string")
        ok = False
    elif not text.strip():
        errors.add(row, "text", "empty")
        ok = False
    elif len(text.strip()) > MAX_CHUNK_TEXT_CHARS:
        errors.add(row, "text", f"longer than {MAX_CHUNK_TEXT_CHARS} characters ({len(text)})")
        ok = False
    else:
        values["text"] = text.strip()

    nested = raw.get("dimensions") if isinstance(raw.get("dimensions"), dict) else {}
    for dim in DIMENSIONS:
        value = raw.get(dim, nested.get(dim) if nested else None)
        if value is None or (isinstance(value, str) and not value.strip()):
            values[dim] = None  # dimensions are optional; the planner fills missing ones
            continue
        if not isinstance(value, str):
            errors.add(row, dim, "must be a string")
            ok = False
            continue
        value = " ".join(value.split())
        if canonical is not None:
            known = canonical[dim].get(value.casefold())
            if known is None:
                errors.add(row, dim, f"unknown {dim} '{value}' (not in the taxonomy)")
                ok = False
                continue
            value = known  # store the taxonomy's spelling so filters and pairs line up
        values[dim] = value

    chunk_id = values.get("chunk_id")
    if chunk_id:
        if chunk_id in seen:
            errors.add(row, "chunk_id", f"duplicate chunk_id (first in row {seen[chunk_id]})")
            ok = False
        else:
            seen[chunk_id] = row
    return Chunk(**values) if ok else None


def parse_chunks_json(data: Any, taxonomy: Taxonomy | None = None) -> list[Chunk]:
    """A JSON list of chunk objects. With ``taxonomy``, dimension values must be in it."""
    if not isinstance(data, list):
        errors = _Errors()
        errors.add(None, None, "chunks must be a JSON list of objects")
        errors.raise_if_any("Chunks", JSON_ROW_NUMBERING)
        return []  # unreachable; keeps type checkers content
    if len(data) > MAX_CHUNKS:
        raise _too_many("Chunks", len(data), MAX_CHUNKS, "chunks")
    errors = _Errors()
    seen: dict[str, int] = {}
    canonical = _canonical_values(taxonomy)
    chunks: list[Chunk] = []
    for row, item in enumerate(data, start=1):
        if not isinstance(item, dict):
            errors.add(row, None, "row must be an object")
            continue
        chunk = _build_chunk(row, item, errors, seen, canonical)
        if chunk is not None:
            chunks.append(chunk)
    errors.raise_if_any("Chunks", JSON_ROW_NUMBERING)
    return chunks


def parse_chunks_csv(text: str, taxonomy: Taxonomy | None = None) -> list[Chunk]:
    """CSV with header ``chunk_id,document_id,document_title,text,persona,emotion,topic,
    intent,tone`` (``document_title`` and the dimension columns are optional)."""
    errors = _Errors()
    text = text.removeprefix("\ufeff")  # Excel writes a BOM
    try:
        records = list(csv.reader(io.StringIO(text, newline="")))
    except csv.Error as e:
        errors.add(None, None, f"unreadable CSV: {e}")
        errors.raise_if_any("Chunks", CSV_ROW_NUMBERING)
        return []
    if not records or not any(cell.strip() for cell in records[0]):
        errors.add(1, None, "missing header row")
        errors.raise_if_any("Chunks", CSV_ROW_NUMBERING)
    header = [cell.strip().lower() for cell in records[0]]
    for column in REQUIRED_CSV_COLUMNS:
        if column not in header:
            errors.add(1, column, "required column missing from header")
    duplicates = sorted({c for c in header if c and header.count(c) > 1})
    for column in duplicates:
        errors.add(1, column, "column appears more than once in header")
    errors.raise_if_any("Chunks", CSV_ROW_NUMBERING)

    # Blank lines are skipped but still counted, so row numbers match the spreadsheet.
    rows = [(n, r) for n, r in enumerate(records[1:], start=2) if any(c.strip() for c in r)]
    if len(rows) > MAX_CHUNKS:
        raise _too_many("Chunks", len(rows), MAX_CHUNKS, "chunks")
    seen: dict[str, int] = {}
    canonical = _canonical_values(taxonomy)
    chunks: list[Chunk] = []
    known = set(CSV_COLUMNS)
    for row, record in rows:
        if len(record) > len(header) and any(c.strip() for c in record[len(header) :]):
            errors.add(row, None, f"{len(record)} values but the header has {len(header)}")
            continue
        raw = {col: val for col, val in zip(header, record, strict=False) if col in known}
        chunk = _build_chunk(row, raw, errors, seen, canonical)
        if chunk is not None:
            chunks.append(chunk)
    errors.raise_if_any("Chunks", CSV_ROW_NUMBERING)
    return chunks


def parse_chunks_payload(body: str, taxonomy: Taxonomy | None = None) -> list[Chunk]:
    """Either format in one call: a body starting with ``[`` is JSON, anything else CSV."""
    stripped = body.lstrip("\ufeff \t\r\n")
    if stripped.startswith("["):
        try:
            data = loads_bounded(stripped)
        except json.JSONDecodeError as e:
            raise ValidationError(
                f"Chunks: invalid JSON ({e.msg} at line {e.lineno})",
                {"errors": [{"row": None, "field": None, "error": "invalid JSON"}]},
            ) from e
        return parse_chunks_json(data, taxonomy)
    return parse_chunks_csv(body, taxonomy)
