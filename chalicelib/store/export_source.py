"""Reads for exports: a dataset's approved conversations and their turns, streamed.

Kept apart from the review repositories because an export reads differently: the whole
approved part of a dataset, once, as cheaply as possible. So the status / deleted /
filter tests run in DynamoDB (a ``FilterExpression``: rejected or deleted conversations
never cross the wire), only the attributes the export uses are read (a
``ProjectionExpression``: never the large ``search_text`` kept for the list index), and
turns are read 100 conversations per ``BatchGetItem``.

The reads go through the shared botocore client (same retries as pynamodb) and decode
items with the record classes' own attribute deserialisers, but build no pynamodb model
per item: at 10,000 conversations the models cost more CPU than the rest of the export.
The expressions are pynamodb's (``Condition.serialize``), so they match what a model
query would send.
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Callable, Collection, Iterable, Iterator, Mapping
from typing import Any, Final

from pynamodb.attributes import Attribute, BooleanAttribute, NumberAttribute, UnicodeAttribute
from pynamodb.expressions.condition import Condition
from pynamodb.expressions.projection import create_projection_expression

from chalicelib.domain.filters import EXPORT_FILTERS, plain_values
from chalicelib.domain.models import Conversation, ConversationStatus, StoredTurn
from chalicelib.store.records import (
    ConversationRecord,
    TurnsRecord,
    shared_connection,
    tenant_key,
)

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
    | {f.name for f in EXPORT_FILTERS}
)
_MAX_IN_VALUES: Final = 100  # DynamoDB's limit for the IN operator
BATCH_GET_KEYS: Final = 100  # DynamoDB's limit per BatchGetItem
# Unprocessed BatchGetItem keys (throttling) are asked for again after a backoff that
# grows while rounds make no progress (any round that returns items resets it).
UNPROCESSED_RETRIES: Final = 8  # rounds in a row without a single item read
UNPROCESSED_BACKOFF_SECONDS: Final = 0.05
UNPROCESSED_BACKOFF_MAX_SECONDS: Final = 1.0

Decoder = Callable[[Mapping[str, Any]], dict[str, Any]]


def _condition(filters: Mapping[str, Any]) -> Condition:
    R = ConversationRecord
    condition = (R.status == ConversationStatus.APPROVED.value) & (R.deleted == False)  # noqa: E712
    for f in EXPORT_FILTERS:  # domain/filters.py: <attribute> IN (values), ANDed
        values = plain_values(filters.get(f.name))
        # Longer lists than IN allows are checked by the caller only (it re-checks anyway).
        if values and len(values) <= _MAX_IN_VALUES:
            condition &= getattr(R, f.record_attribute).is_in(*values)
    if filters.get("quality_min") is not None:
        condition &= R.quality_score >= filters["quality_min"]
    if filters.get("quality_max") is not None:
        condition &= R.quality_score <= filters["quality_max"]
    return condition


def _number(text: str) -> int | float:
    # NumberAttribute.deserialize is json.loads; for the number strings DynamoDB holds
    # this is the same, without the JSON decoder's per-call setup.
    return float(text) if "." in text or "e" in text or "E" in text else int(text)


def _plain(wire_type: str, convert: Callable[[Any], Any] | None) -> Callable[[Any], Any]:
    if convert is None:
        return lambda value: value[wire_type]
    return lambda value: convert(value[wire_type])


def _by_pynamodb(attr: Attribute[Any]) -> Callable[[Any], Any]:
    return lambda value: attr.deserialize(attr.get_value(value))


def record_decoder(attributes: Mapping[str, Attribute[Any]], names: Iterable[str]) -> Decoder:
    """A raw DynamoDB item -> {name: value} for ``names``, decoded exactly as pynamodb
    decodes those attributes (absent and NULL values are left out), without building a
    model. Plain strings, numbers and booleans skip pynamodb's per-value calls."""
    fields: list[tuple[str, str, Callable[[Any], Any]]] = []
    for name in names:
        attr = attributes[name]
        kind = type(attr)
        if kind is UnicodeAttribute:
            read = _plain("S", None)
        elif kind is NumberAttribute:
            read = _plain("N", _number)
        elif kind is BooleanAttribute:
            read = _plain("BOOL", None)
        else:
            read = _by_pynamodb(attr)
        fields.append((name, attr.attr_name, read))

    def decode(raw: Mapping[str, Any]) -> dict[str, Any]:
        data: dict[str, Any] = {}
        for name, wire_name, read in fields:
            value = raw.get(wire_name)
            if value and "NULL" not in value:
                data[name] = read(value)
        return data

    return decode


def _query(
    tenant_id: str,
    dataset_id: str,
    filters: Mapping[str, Any],
    projection: list[Attribute[Any]] | None,
) -> dict[str, Any]:
    """The Query request for one dataset's approved conversations matching ``filters``
    (on the dataset index, in ``updated_ms`` order), reading ``projection``."""
    placeholders: dict[str, str] = {}
    values: dict[str, Any] = {}
    key = ConversationRecord.dataset_key == tenant_key(tenant_id, dataset_id)
    request: dict[str, Any] = {
        "TableName": ConversationRecord.Meta.table_name,
        "IndexName": ConversationRecord.by_dataset.Meta.index_name,
        "KeyConditionExpression": key.serialize(placeholders, values),
        "FilterExpression": _condition(filters).serialize(placeholders, values),
    }
    if projection is not None:
        request["ProjectionExpression"] = create_projection_expression(projection, placeholders)
    request["ExpressionAttributeNames"] = {v: k for k, v in placeholders.items()}
    request["ExpressionAttributeValues"] = values
    return request


class DynamoExportSource:
    def __init__(self, sleep: Callable[[float], None] = time.sleep, client: Any = None) -> None:
        self._sleep = sleep
        self._client = client  # None: the shared botocore client (tests pass a fake)

    def _dynamodb(self) -> Any:
        return self._client if self._client is not None else shared_connection().client

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
        always read); ``None`` reads every conversation field. ``page_size`` caps the
        items DynamoDB evaluates per page (for callers that stop early)."""
        names = (
            CONVERSATION_FIELDS
            if fields is None
            else tuple(n for n in CONVERSATION_FIELDS if n in BASE_FIELDS or n in fields)
        )
        attributes = ConversationRecord.get_attributes()
        request = _query(tenant_id, dataset_id, filters, [attributes[n] for n in names])
        if page_size:
            request["Limit"] = page_size
        decode = record_decoder(attributes, names)
        validate = Conversation.model_validate
        client = self._dynamodb()
        while True:
            page = client.query(**request)
            for raw in page.get("Items", ()):
                yield validate(decode(raw))
            last = page.get("LastEvaluatedKey")
            if not last:
                return
            request["ExclusiveStartKey"] = last

    def approved_with_duplicates(
        self,
        tenant_id: str,
        dataset_id: str,
        filters: Mapping[str, Any],
        fields: Collection[str] | None = None,
    ) -> Iterator[tuple[Conversation, str | None]]:
        """``approved`` with each conversation's ``quality.duplicate_of`` (what a split
        groups on). The stored quality report is read for it but decoded only when
        ``fields`` asks for it: its JSON is scanned for the one key (~1 us where
        decoding and validating the report costs ~28 us a conversation)."""
        wanted = fields is None or "quality" in fields
        names = (
            CONVERSATION_FIELDS
            if fields is None
            else tuple(
                n for n in CONVERSATION_FIELDS if n in BASE_FIELDS or n in fields or n == "quality"
            )
        )
        attributes = ConversationRecord.get_attributes()
        request = _query(tenant_id, dataset_id, filters, [attributes[n] for n in names])
        kept = names if wanted else tuple(n for n in names if n != "quality")
        decode = record_decoder(attributes, kept)
        quality_name = attributes["quality"].attr_name
        validate = Conversation.model_validate
        client = self._dynamodb()
        while True:
            page = client.query(**request)
            for raw in page.get("Items", ()):
                conversation = validate(decode(raw))
                if wanted:
                    quality = conversation.quality
                    yield conversation, quality.duplicate_of if quality is not None else None
                else:
                    yield conversation, duplicate_of(raw.get(quality_name))
            last = page.get("LastEvaluatedKey")
            if not last:
                return
            request["ExclusiveStartKey"] = last

    def count_approved(
        self, tenant_id: str, dataset_id: str, filters: Mapping[str, Any], stop_at: int
    ) -> int | None:
        """How many conversations ``approved`` would yield, counting no further than
        ``stop_at``, in DynamoDB (``Select: COUNT``: no item crosses the wire). None when
        a filter list is longer than DynamoDB's IN allows: then only the caller's
        re-check is exact, and it must count what it reads."""
        if any(len(filters.get(f.name) or ()) > _MAX_IN_VALUES for f in EXPORT_FILTERS):
            return None
        request = _query(tenant_id, dataset_id, filters, None)
        request["Select"] = "COUNT"
        request["Limit"] = max(stop_at, 1)
        client = self._dynamodb()
        count = 0
        while count < stop_at:
            page = client.query(**request)
            count += page.get("Count", 0)
            last = page.get("LastEvaluatedKey")
            if not last:
                break
            request["ExclusiveStartKey"] = last
        return min(count, stop_at)

    def turns(self, tenant_id: str, conversation_ids: Iterable[str]) -> dict[str, list[StoredTurn]]:
        """conversation_id -> turns, for any number of ids (100 per request).

        Turns were validated when stored; they are read back as :class:`StoredTurn`
        without re-validation (the format writers check roles and order themselves)."""
        attributes = TurnsRecord.get_attributes()
        id_attr, turns_attr = attributes["conversation_id"], attributes["turns"]
        tenant_attr = attributes["tenant_id"].attr_name
        table = TurnsRecord.Meta.table_name
        placeholders: dict[str, str] = {}
        projection = create_projection_expression([id_attr, turns_attr], placeholders)
        names = {v: k for k, v in placeholders.items()}
        ids = list(dict.fromkeys(conversation_ids))
        client = self._dynamodb()
        out: dict[str, list[StoredTurn]] = {}
        for i in range(0, len(ids), BATCH_GET_KEYS):
            keys = [
                {tenant_attr: {"S": tenant_id}, id_attr.attr_name: {"S": cid}}
                for cid in ids[i : i + BATCH_GET_KEYS]
            ]
            request: dict[str, Any] = {
                table: {
                    "Keys": keys,
                    "ProjectionExpression": projection,
                    "ExpressionAttributeNames": names,
                }
            }
            stalled = 0
            while request:
                response = client.batch_get_item(RequestItems=request)
                items = response.get("Responses", {}).get(table, ())
                for raw in items:
                    cid = id_attr.get_value(raw[id_attr.attr_name])
                    stored = turns_attr.deserialize(turns_attr.get_value(raw[turns_attr.attr_name]))
                    out[cid] = _stored_turns(cid, stored)
                request = response.get("UnprocessedKeys") or {}
                if not request:
                    break
                stalled = 0 if items else stalled + 1
                if stalled > UNPROCESSED_RETRIES:
                    raise RuntimeError(
                        f"DynamoDB returned no turns in {stalled} rounds in a row"
                        " (throttled): try the export again"
                    )
                self._sleep(
                    min(
                        UNPROCESSED_BACKOFF_SECONDS * 2**stalled,
                        UNPROCESSED_BACKOFF_MAX_SECONDS,
                    )
                )
        return out


# pynamodb's JSONAttribute stores json.dumps(report): the top-level key with its default
# separator. A key inside a string value would have escaped quotes, so cannot match.
_DUPLICATE_OF: Final = re.compile(r'"duplicate_of": (null|"((?:[^"\\]|\\.)*)")')


def duplicate_of(raw_quality: Mapping[str, Any] | None) -> str | None:
    """``quality.duplicate_of`` from a stored quality report (its raw DynamoDB value)."""
    if not raw_quality or "S" not in raw_quality:
        return None
    text = raw_quality["S"]
    match = _DUPLICATE_OF.search(text)
    if match is None:  # not the layout json.dumps writes: decode it the slow way
        if '"duplicate_of"' not in text:
            return None
        value = json.loads(text).get("duplicate_of")
        return value if isinstance(value, str) else None
    if match.group(1) == "null":
        return None
    inner = match.group(2)
    return str(json.loads(f'"{inner}"')) if "\\" in inner else inner


def _stored_turns(conversation_id: str, stored: Any) -> list[StoredTurn]:
    try:
        return [StoredTurn(t["turn_number"], t["role"], t["content"]) for t in stored]
    except (KeyError, TypeError) as e:  # written validated: only a damaged item gets here
        raise ValueError(
            f"the stored turns of conversation {conversation_id} are damaged ({e!r})"
        ) from e
