"""Reads for exports: a dataset's approved conversations and their turns, streamed.

Kept apart from the review repositories because an export reads differently: the whole
approved part of a dataset, once, as cheaply as possible. So the status / deleted /
filter tests run in DynamoDB (a ``FilterExpression``: rejected or deleted conversations
never cross the wire), only the attributes the export uses are read (a
``ProjectionExpression``: never the large ``search_text`` kept for the list index), and
turns are read 100 conversations per ``BatchGetItem``.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Iterator, Mapping
from typing import Any, Final

from pynamodb.expressions.condition import Condition

from chalicelib.domain.models import Conversation, ConversationStatus, Turn
from chalicelib.store.records import ConversationRecord, TurnsRecord, tenant_key

# Conversation fields stored on the record (everything but the list-index bookkeeping).
CONVERSATION_FIELDS: Final[tuple[str, ...]] = tuple(
    name for name in Conversation.model_fields if name in ConversationRecord.get_attributes()
)
# Always read: the fields a Conversation cannot be built without, plus what the client-side
# double check of the filters looks at.
BASE_FIELDS: Final[frozenset[str]] = frozenset(
    {
        "tenant_id",
        "dataset_id",
        "conversation_id",
        "persona",
        "emotion",
        "topic",
        "intent",
        "tone",
        "tier",
        "status",
        "quality_score",
    }
)
FILTER_DIMENSIONS: Final = ("persona", "emotion", "topic", "intent", "tone", "tier")
_MAX_IN_VALUES: Final = 100  # DynamoDB's limit for the IN operator
BATCH_GET_KEYS: Final = 100  # DynamoDB's limit per BatchGetItem


def _condition(filters: Mapping[str, Any]) -> Condition:
    R = ConversationRecord
    condition = (R.status == ConversationStatus.APPROVED.value) & (R.deleted == False)  # noqa: E712
    for dim in FILTER_DIMENSIONS:
        values = [v.value if hasattr(v, "value") else v for v in filters.get(dim) or ()]
        # Longer lists than IN allows are checked by the caller only (it re-checks anyway).
        if values and len(values) <= _MAX_IN_VALUES:
            condition &= getattr(R, dim).is_in(*values)
    if filters.get("quality_min") is not None:
        condition &= R.quality_score >= filters["quality_min"]
    if filters.get("quality_max") is not None:
        condition &= R.quality_score <= filters["quality_max"]
    return condition


class DynamoExportSource:
    def approved(
        self,
        tenant_id: str,
        dataset_id: str,
        filters: Mapping[str, Any],
        fields: Collection[str] | None = None,
        page_size: int | None = None,
    ) -> Iterator[Conversation]:
        """Approved, not deleted conversations of one dataset matching ``filters``, in
        ``updated_ms`` order. ``fields`` limits the attributes read (the base fields are
        always read); ``None`` reads every conversation field."""
        names = (
            CONVERSATION_FIELDS
            if fields is None
            else tuple(n for n in CONVERSATION_FIELDS if n in BASE_FIELDS or n in fields)
        )
        validate = Conversation.model_validate
        for record in ConversationRecord.by_dataset.query(
            tenant_key(tenant_id, dataset_id),
            filter_condition=_condition(filters),
            attributes_to_get=list(names),
            page_size=page_size,
        ):
            data = {}
            for name in names:
                value = getattr(record, name, None)
                if value is not None:
                    data[name] = value
            yield validate(data)

    def turns(self, tenant_id: str, conversation_ids: Iterable[str]) -> dict[str, list[Turn]]:
        """conversation_id -> turns, for up to any number of ids (100 per request).

        Turns were validated when stored; they are rebuilt without re-validation (the
        format writers check roles and order themselves)."""
        keys = [(tenant_id, cid) for cid in dict.fromkeys(conversation_ids)]
        construct = Turn.model_construct
        out: dict[str, list[Turn]] = {}
        for i in range(0, len(keys), BATCH_GET_KEYS):
            for r in TurnsRecord.batch_get(
                keys[i : i + BATCH_GET_KEYS], attributes_to_get=["conversation_id", "turns"]
            ):
                out[r.conversation_id] = [construct(**t) for t in r.turns]
        return out
