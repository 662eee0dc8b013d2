"""The conversation list: filter, search, sort and paginate over an in-memory index.

Design (issue 5): DynamoDB cannot filter on 8 dimensions, search text and sort on any
column at once without scanning. Each container keeps, per dataset, a compact index
of conversation summaries (+ lower-cased turn text) built from the table and kept
fresh by deltas:

- every conversation write sets ``updated_ms`` and then bumps the dataset's
  ``conv_seq`` counter;
- a list call reads ``conv_seq`` (one GetItem). Unchanged -> answer from memory.
  Changed -> query the ``by_dataset_updated`` GSI for items with ``updated_ms`` after
  the last sync (minus an overlap window for clock skew and index lag) and merge.

So a steady-state list costs one small read whatever the dataset size, a change costs
a read proportional to what changed, and only a cold container reads the dataset once.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from chalicelib.domain.errors import ValidationError
from chalicelib.domain.models import Conversation
from chalicelib.store.repositories import (
    ConversationRow,
    DynamoConversationRepository,
    DynamoDatasetRepository,
)

PAGE_SIZES = (25, 50, 100)
FILTER_DIMENSIONS = ("persona", "emotion", "topic", "intent", "tone", "tier", "status")
SORT_FIELDS = (
    "conversation_id",
    "persona",
    "emotion",
    "topic",
    "intent",
    "tone",
    "tier",
    "status",
    "quality_score",
    "actual_cost_usd",
    "estimated_cost_usd",
    "turn_count",
    "created_at",
    "updated_at",
    "generated_at",
    "title",
)
OVERLAP_MS = 5_000  # re-read this much history on each delta (skew, GSI lag)
MAX_STALENESS_S = 30.0  # even without a seq change, re-check deltas this often


@dataclass
class ListQuery:
    dataset_id: str | None = None
    filters: dict[str, list[str]] = field(default_factory=dict)
    quality_min: float | None = None
    quality_max: float | None = None
    flagged: bool | None = None
    q: str | None = None
    sort: str = "created_at"
    order: str = "desc"
    page_size: int = 25
    page: int = 1
    cursor: str | None = None

    def signature(self) -> str:
        data = {k: v for k, v in self.__dict__.items() if k not in ("page", "cursor", "page_size")}
        return hashlib.sha256(json.dumps(data, sort_keys=True, default=str).encode()).hexdigest()[
            :16
        ]


@dataclass
class IndexedRow:
    conversation: Conversation
    haystack: str  # lower-cased metadata + turn text, for ``q``


@dataclass
class DatasetIndex:
    rows: dict[str, IndexedRow] = field(default_factory=dict)
    seq: int = -1
    synced_ms: int = -1
    checked_at: float = 0.0
    lock: threading.Lock = field(default_factory=threading.Lock)


def _haystack(c: Conversation, turn_text: str) -> str:
    meta = " ".join(
        str(v)
        for v in (
            c.conversation_id,
            c.title,
            c.persona,
            c.emotion,
            c.topic,
            c.intent,
            c.tone,
            c.tier.value,
            c.status.value,
            c.arc,
            c.scenario,
            c.edge_case_type,
            c.reviewer_notes,
            c.error_message,
        )
        if v
    )
    return f"{meta.lower()} \n{turn_text}"


class ConversationIndex:
    def __init__(
        self,
        datasets: DynamoDatasetRepository,
        conversations: DynamoConversationRepository,
        cursor_secret: bytes,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._datasets = datasets
        self._conversations = conversations
        self._secret = cursor_secret
        self._clock = clock
        self._indexes: dict[tuple[str, str], DatasetIndex] = {}
        self._guard = threading.Lock()

    # ------------------------------------------------------------------ freshness
    def _index(self, tenant_id: str, dataset_id: str) -> DatasetIndex:
        with self._guard:
            return self._indexes.setdefault((tenant_id, dataset_id), DatasetIndex())

    def refresh(self, tenant_id: str, dataset_id: str) -> DatasetIndex:
        index = self._index(tenant_id, dataset_id)
        with index.lock:
            seq = self._datasets.conversation_seq(tenant_id, dataset_id)
            fresh = seq == index.seq and self._clock() - index.checked_at < MAX_STALENESS_S
            if fresh:
                return index
            since = index.synced_ms - OVERLAP_MS if index.synced_ms >= 0 else -1
            newest = index.synced_ms
            for row in self._conversations.changed_since(tenant_id, dataset_id, since):
                self._apply(index, row)
                newest = max(newest, row.updated_ms)
            index.seq = seq
            index.synced_ms = newest
            index.checked_at = self._clock()
            return index

    @staticmethod
    def _apply(index: DatasetIndex, row: ConversationRow) -> None:
        cid = row.conversation.conversation_id
        if row.deleted:
            index.rows.pop(cid, None)
        else:
            index.rows[cid] = IndexedRow(
                row.conversation, _haystack(row.conversation, row.search_text)
            )

    def conversations(self, tenant_id: str, dataset_id: str) -> list[Conversation]:
        return [r.conversation for r in self.refresh(tenant_id, dataset_id).rows.values()]

    def texts(self, tenant_id: str, dataset_id: str) -> Iterable[tuple[str, str]]:
        for cid, row in self.refresh(tenant_id, dataset_id).rows.items():
            turn_text = row.haystack.split("\n", 1)[-1]
            if turn_text.strip():
                yield cid, turn_text

    # ------------------------------------------------------------------ querying
    def _matching(
        self, tenant_id: str, dataset_ids: Sequence[str], query: ListQuery
    ) -> list[Conversation]:
        wanted = {d: set(v) for d, v in query.filters.items() if v}
        needle = (query.q or "").strip().lower()
        out: list[Conversation] = []
        for dataset_id in dataset_ids:
            for row in self.refresh(tenant_id, dataset_id).rows.values():
                c = row.conversation
                if any(
                    (getattr(c, dim).value if dim in ("tier", "status") else getattr(c, dim))
                    not in values
                    for dim, values in wanted.items()
                ):
                    continue
                score = c.quality_score
                if query.quality_min is not None and (score is None or score < query.quality_min):
                    continue
                if query.quality_max is not None and (score is None or score > query.quality_max):
                    continue
                if query.flagged is not None and c.flagged != query.flagged:
                    continue
                if needle and needle not in row.haystack:
                    continue
                out.append(c)
        return out

    @staticmethod
    def _sort(rows: list[Conversation], sort: str, order: str) -> list[Conversation]:
        def key(c: Conversation) -> tuple[int, Any, str]:
            value = getattr(c, sort)
            if hasattr(value, "value"):
                value = value.value
            # Missing values sort last in both directions; id breaks ties stably.
            missing = value is None
            return (1 if missing else 0, value if not missing else 0, c.conversation_id)

        present = [c for c in rows if getattr(c, sort) is not None]
        missing = [c for c in rows if getattr(c, sort) is None]
        present.sort(key=key, reverse=order == "desc")
        missing.sort(key=lambda c: c.conversation_id)
        return present + missing

    def validate(self, query: ListQuery) -> None:
        if query.sort not in SORT_FIELDS:
            raise ValidationError(
                f"unknown sort field '{query.sort}'", {"allowed": list(SORT_FIELDS)}
            )
        if query.order not in ("asc", "desc"):
            raise ValidationError("order must be 'asc' or 'desc'")
        if query.page_size not in PAGE_SIZES:
            raise ValidationError(
                f"page_size must be one of {', '.join(map(str, PAGE_SIZES))}",
                {"allowed": list(PAGE_SIZES)},
            )
        if query.page < 1:
            raise ValidationError("page must be >= 1")

    def ordered(
        self, tenant_id: str, dataset_ids: Sequence[str], query: ListQuery
    ) -> list[Conversation]:
        self.validate(query)
        return self._sort(self._matching(tenant_id, dataset_ids, query), query.sort, query.order)

    def page(self, tenant_id: str, dataset_ids: Sequence[str], query: ListQuery) -> dict[str, Any]:
        rows = self.ordered(tenant_id, dataset_ids, query)
        offset = (query.page - 1) * query.page_size
        if query.cursor:
            offset = self._decode_cursor(query.cursor, query)
        page_rows = rows[offset : offset + query.page_size]
        next_offset = offset + query.page_size
        return {
            "items": page_rows,
            "total": len(rows),
            "page": offset // query.page_size + 1,
            "page_size": query.page_size,
            "pages": max(1, -(-len(rows) // query.page_size)),
            "next_cursor": self._encode_cursor(next_offset, query)
            if next_offset < len(rows)
            else None,
        }

    def neighbours(
        self, tenant_id: str, dataset_ids: Sequence[str], query: ListQuery, conversation_id: str
    ) -> tuple[str | None, str | None, int | None]:
        rows = self.ordered(tenant_id, dataset_ids, query)
        ids = [c.conversation_id for c in rows]
        if conversation_id not in ids:
            return None, None, None
        i = ids.index(conversation_id)
        return (ids[i - 1] if i > 0 else None), (ids[i + 1] if i + 1 < len(ids) else None), i + 1

    # ------------------------------------------------------------------ cursors
    def _encode_cursor(self, offset: int, query: ListQuery) -> str:
        body = (
            base64.urlsafe_b64encode(json.dumps({"o": offset, "s": query.signature()}).encode())
            .decode()
            .rstrip("=")
        )
        mac = hmac.new(self._secret, body.encode(), hashlib.sha256).hexdigest()[:24]
        return f"{body}.{mac}"

    def _decode_cursor(self, cursor: str, query: ListQuery) -> int:
        try:
            body, mac = cursor.rsplit(".", 1)
            expected = hmac.new(self._secret, body.encode(), hashlib.sha256).hexdigest()[:24]
            if not hmac.compare_digest(mac, expected):
                raise ValueError("signature")
            data = json.loads(base64.urlsafe_b64decode(body + "=" * (-len(body) % 4)))
            offset = int(data["o"])
            if data["s"] != query.signature() or offset < 0:
                raise ValueError("query changed")
        except (ValueError, KeyError, TypeError, json.JSONDecodeError) as e:
            raise ValidationError(
                "invalid cursor: it was altered or belongs to a different filter/sort"
            ) from e
        return offset
