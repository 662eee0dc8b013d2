"""The audit trail: append-only records of every action on data (design rule 7, docs/architecture.md)."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel

from chalicelib.domain.models import AuditRecord
from chalicelib.domain.ports import AuditStore

# Fields worth showing as before/after of a conversation (not the whole document).
CONVERSATION_AUDIT_FIELDS = (
    "status",
    "persona",
    "emotion",
    "topic",
    "intent",
    "tone",
    "tier",
    "title",
    "quality_score",
    "reviewer_notes",
    "approved_by",
    "version",
    "actual_cost_usd",
    "turn_count",
    "error_message",
)


# How many records one read of the trail returns at most.
MAX_AUDIT_READ = 1000


def snapshot(
    model: BaseModel | None, fields: tuple[str, ...] = CONVERSATION_AUDIT_FIELDS
) -> dict[str, Any] | None:
    if model is None:
        return None
    data = model.model_dump(mode="json")
    return {k: data.get(k) for k in fields if k in data}


class AuditLog:
    def __init__(self, repository: AuditStore) -> None:
        self._repo = repository

    def build(
        self,
        tenant_id: str,
        actor: str,
        action: str,
        entity_type: str,
        entity_id: str,
        before: dict[str, Any] | None = None,
        after: dict[str, Any] | None = None,
        **details: Any,
    ) -> AuditRecord:
        """An audit record to write inside the caller's own transaction."""
        return AuditRecord(
            tenant_id=tenant_id,
            actor=actor,
            action=action,
            entity_type=entity_type,
            entity_id=entity_id,
            before=before,
            after=after,
            details=details,
        )

    def record(
        self,
        tenant_id: str,
        actor: str,
        action: str,
        entity_type: str,
        entity_id: str,
        before: dict[str, Any] | None = None,
        after: dict[str, Any] | None = None,
        **details: Any,
    ) -> AuditRecord:
        record = AuditRecord(
            tenant_id=tenant_id,
            actor=actor,
            action=action,
            entity_type=entity_type,
            entity_id=entity_id,
            before=before,
            after=after,
            details=details,
        )
        self._repo.append(record)
        return record

    def record_many(self, records: list[AuditRecord]) -> None:
        """Append records built with ``build`` in batches (e.g. one per planned item)."""
        if records:
            self._repo.append_many(records)

    def query(
        self,
        tenant_id: str,
        *,
        entity_id: str | None = None,
        action: str | None = None,
        actor: str | None = None,
        limit: int = 200,
    ) -> list[AuditRecord]:
        """The tenant's trail, newest first, narrowed by entity, action or actor; the
        limit is kept between 1 and ``MAX_AUDIT_READ``."""
        return self._repo.query(
            tenant_id,
            entity_id=entity_id,
            action=action,
            actor=actor,
            limit=min(max(limit, 1), MAX_AUDIT_READ),
        )
