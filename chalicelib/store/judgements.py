"""The judge's verdict cache in DynamoDB (the ``JudgementCache`` port)."""

from __future__ import annotations

from pynamodb.exceptions import DoesNotExist

from chalicelib.domain.models import JudgeResult, utcnow
from chalicelib.store.mapping import doc_of
from chalicelib.store.records import JudgementRecord


class DynamoJudgementCache:
    def get(self, tenant_id: str, content_hash: str) -> JudgeResult | None:
        try:
            record = JudgementRecord.get(tenant_id, content_hash)
        except DoesNotExist:
            return None
        return JudgeResult.model_validate(record.doc)

    def put(self, tenant_id: str, result: JudgeResult) -> None:
        # Last write wins: two verdicts for the same content are interchangeable.
        JudgementRecord(
            tenant_id, result.content_hash, doc=doc_of(result), created_at=utcnow()
        ).save()
