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

In memory, each row keeps its filter/sort values as plain Python values (computed once
when the row changes, not per query), and the filtered+sorted order of a query is cached
per (query signature, index generation): paging through a result, or the prev/next of
the detail view, costs a dictionary lookup plus the page itself, whatever the dataset
size. A query the cache has not seen costs one pass over the rows and one sort.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import logging
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from enum import Enum
from functools import cached_property
from typing import Any

from chalicelib.domain.errors import ValidationError
from chalicelib.domain.filters import validate_filters
from chalicelib.domain.models import Conversation
from chalicelib.domain.ports import (
    ConversationChanges,
    ConversationRow,
    DatasetCatalog,
    ListSnapshots,
)
from chalicelib.domain.search import SearchTerm, matches_all, parse_query, searchable

PAGE_SIZES = (25, 50, 100)
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
    "attention",
)
SORT_ORDERS = ("asc", "desc")
# The order a sort means when none is asked for: newest, costliest, best first, except
# "attention", whose point is the triage order (flagged first, then the lowest score).
ASCENDING_BY_DEFAULT = frozenset({"attention"})


def default_order(sort: str) -> str:
    return "asc" if sort in ASCENDING_BY_DEFAULT else "desc"


def _attention(c: Conversation) -> tuple[int, float] | None:
    """Triage order (ascending): flagged first, then the lowest score; unscored last."""
    if c.quality_score is None:
        return None
    return (0 if c.flagged else 1, c.quality_score)


# Sort keys computed from a conversation rather than read off one of its fields.
DERIVED_SORTS: dict[str, Callable[[Conversation], Any]] = {"attention": _attention}
OVERLAP_MS = 5_000  # re-read this much history on each delta (skew, GSI lag)
MAX_STALENESS_S = 30.0  # even without a seq change, re-check deltas this often
ORDER_CACHE_SIZE = 64  # cached query orders per container
# A dataset this large keeps a snapshot of its index (``ListSnapshots``), rewritten once
# a fifth of that many rows, or this share of the dataset, changed since the last one.
SNAPSHOT_MIN_ROWS = 5_000
SNAPSHOT_CHANGE_SHARE = 0.05

log = logging.getLogger(__name__)


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

    def terms(self) -> list[SearchTerm]:
        """``q`` as search terms (``domain/search.py``); a row matches all of them."""
        return parse_query(self.q)

    def signature(self) -> str:
        """What selects and orders the rows (not which page): two queries with the same
        signature list the same rows in the same order."""
        data = {
            "dataset_id": self.dataset_id,
            "filters": {k: sorted(set(v)) for k, v in sorted(self.filters.items()) if v},
            "quality_min": self.quality_min,
            "quality_max": self.quality_max,
            "flagged": self.flagged,
            "q": [t.key() for t in self.terms()],
            "sort": self.sort,
            "order": self.order,
        }
        return hashlib.sha256(json.dumps(data, sort_keys=True, default=str).encode()).hexdigest()[
            :16
        ]


def _plain(value: Any) -> Any:
    if isinstance(value, Enum):
        return value.value
    return value


def _sort_key(value: Any) -> Any:
    if isinstance(value, str):
        return value.casefold()  # "apple" and "Apple" sort together
    if isinstance(value, datetime):
        return value.timestamp()
    return value


def _value(c: Conversation, name: str) -> Any:
    # FilterDimension.value, inlined: it runs for every row a query filters.
    return _plain(getattr(c, name))


def _key_of(c: Conversation, name: str) -> Any:
    """The sort key of ``name`` (None when the value is missing)."""
    if name in DERIVED_SORTS:
        return DERIVED_SORTS[name](c)
    value = _plain(getattr(c, name))
    return None if value is None else _sort_key(value)


@dataclass(eq=False)
class IndexedRow:
    """A conversation and its lower-cased turn text. Filter values and sort keys are read
    off the conversation when a query runs (an uncached query passes over the rows
    once anyway): kept per row they cost 1.5 KB and 9 us each, 150 MB and most of a
    cold start at 100,000 rows."""

    conversation: Conversation
    text: str | None  # None until the dataset's texts are loaded (started from a snapshot)

    @classmethod
    def of(cls, c: Conversation, turn_text: str | None) -> IndexedRow:
        return cls(c, turn_text)

    @cached_property
    def search_words(self) -> str:
        """Metadata and turn text as words (``domain/search.searchable``), built on the
        first search that reaches the row: a list that never searches never pays."""
        return searchable(_haystack(self.conversation, self.text or ""))

    @cached_property
    def search_ids(self) -> tuple[str, ...]:
        """Ids a term may equal (whole): the conversation's, its job's and its source's."""
        c = self.conversation
        return tuple(
            i.casefold() for i in (c.conversation_id, c.job_id, c.chunk_id, c.document_id) if i
        )


@dataclass
class DatasetIndex:
    rows: dict[str, IndexedRow] = field(default_factory=dict)
    seq: int = -1
    synced_ms: int = -1
    checked_at: float = 0.0
    generation: int = 0  # +1 whenever a row is added, changed or removed
    lock: threading.Lock = field(default_factory=threading.Lock)
    texts_pending: bool = False  # started from a snapshot: turn text not loaded yet
    changed_since_snapshot: int = 0  # rows the deltas brought since the last snapshot
    snapshot_writer: threading.Thread | None = None


@dataclass
class OrderedResult:
    """A query's matching rows in order, and (built on demand) each id's position."""

    rows: list[IndexedRow]
    _positions: dict[str, int] | None = None

    def position(self, conversation_id: str) -> int | None:
        if self._positions is None:
            self._positions = {r.conversation.conversation_id: i for i, r in enumerate(self.rows)}
        return self._positions.get(conversation_id)


def _haystack(c: Conversation, turn_text: str) -> str:
    # The id is matched whole (``search_ids``), never as words.
    meta = " ".join(
        str(v)
        for v in (
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
        datasets: DatasetCatalog,
        conversations: ConversationChanges,
        cursor_secret: bytes,
        clock: Callable[[], float] = time.monotonic,
        snapshots: ListSnapshots | None = None,
        snapshot_min_rows: int = SNAPSHOT_MIN_ROWS,
        snapshot_in_background: bool = True,
    ) -> None:
        self._datasets = datasets
        self._conversations = conversations
        self._secret = cursor_secret
        self._clock = clock
        self._snapshots = snapshots
        self._snapshot_min_rows = snapshot_min_rows
        self._snapshot_in_background = snapshot_in_background
        self._indexes: dict[tuple[str, str], DatasetIndex] = {}
        self._guard = threading.Lock()
        self._orders: OrderedDict[tuple[Any, ...], OrderedResult] = OrderedDict()
        self._orders_lock = threading.Lock()

    # ------------------------------------------------------------------ freshness
    def _index(self, tenant_id: str, dataset_id: str) -> DatasetIndex:
        with self._guard:
            return self._indexes.setdefault((tenant_id, dataset_id), DatasetIndex())

    def refresh(self, tenant_id: str, dataset_id: str, max_age: float = 0.0) -> DatasetIndex:
        """Bring the dataset's index up to date; ``max_age`` > 0 accepts an index checked
        that recently without even reading the change counter (for background work)."""
        index = self._index(tenant_id, dataset_id)
        if max_age and index.seq >= 0 and self._clock() - index.checked_at < max_age:
            return index
        writer = self._sync(tenant_id, dataset_id, index)
        if writer is not None:  # after the lock is released: the writer takes it for texts
            if self._snapshot_in_background:
                index.snapshot_writer = threading.Thread(
                    target=writer, daemon=True, name="list-snapshot"
                )
                index.snapshot_writer.start()
            else:
                writer()
        return index

    def _sync(
        self, tenant_id: str, dataset_id: str, index: DatasetIndex
    ) -> Callable[[], None] | None:
        """Read the change counter and apply the delta; the snapshot writer if one is due."""
        with index.lock:
            seq = self._datasets.conversation_seq(tenant_id, dataset_id)
            fresh = seq == index.seq and self._clock() - index.checked_at < MAX_STALENESS_S
            if fresh:
                return None
            if index.synced_ms < 0:
                self._start_from_snapshot(tenant_id, dataset_id, index)
            since = index.synced_ms - OVERLAP_MS if index.synced_ms >= 0 else -1
            newest = index.synced_ms
            rows = dict(index.rows)  # readers keep iterating the old dict meanwhile
            changed = 0
            for row in self._conversations.changed_since(tenant_id, dataset_id, since):
                changed += self._apply(rows, row)
                newest = max(newest, row.updated_ms)
            if changed:
                index.rows = rows
                index.generation += 1
                index.changed_since_snapshot += changed
            index.seq = seq
            index.synced_ms = newest
            index.checked_at = self._clock()
            return self._snapshot_if_due(tenant_id, dataset_id, index)

    # ------------------------------------------------------------------ snapshots
    def _start_from_snapshot(self, tenant_id: str, dataset_id: str, index: DatasetIndex) -> None:
        """A cold container: the rows from the dataset's snapshot, if there is a usable
        one (the delta since it follows); any failure leaves the full read to do it."""
        if self._snapshots is None:
            return
        try:
            snapshot = self._snapshots.load(tenant_id, dataset_id)
            if snapshot is None:
                return
            rows: dict[str, IndexedRow] = {}
            for c in snapshot.rows:
                if c.tenant_id == tenant_id and c.dataset_id == dataset_id:
                    rows[c.conversation_id] = IndexedRow(c, None)
        except Exception:  # a snapshot only saves time: never fail a list over one
            log.warning("list snapshot of %s/%s unusable", tenant_id, dataset_id, exc_info=True)
            return
        index.rows = rows
        index.synced_ms = snapshot.synced_ms
        index.texts_pending = True
        index.generation += 1

    def _ensure_texts(self, tenant_id: str, dataset_id: str, index: DatasetIndex) -> None:
        """Load the turn text a snapshot start left out (a search or the duplicate check
        needs it): from the snapshot's texts, else (or for rows they lack) a full read."""
        if not index.texts_pending:
            return
        with index.lock:
            if not index.texts_pending:
                return
            rows = index.rows
            texts = self._snapshots.load_texts(tenant_id, dataset_id) if self._snapshots else None
            for cid, text in texts or ():
                row = rows.get(cid)
                if row is not None and row.text is None:
                    row.text = text
            if any(row.text is None for row in rows.values()):
                for changed in self._conversations.changed_since(tenant_id, dataset_id, -1):
                    row = rows.get(changed.conversation.conversation_id)
                    if row is not None and row.text is None:
                        row.text = changed.search_text
            for row in rows.values():
                if row.text is None:
                    row.text = ""
                row.__dict__.pop("search_words", None)
            index.texts_pending = False

    def _snapshot_if_due(
        self, tenant_id: str, dataset_id: str, index: DatasetIndex
    ) -> Callable[[], None] | None:
        """The writer of a snapshot of a large dataset's index, once enough of it changed
        since the last (a first full read counts every row); it runs in the background,
        so the list that triggers it is not slowed, one writer per dataset at a time."""
        if self._snapshots is None or len(index.rows) < self._snapshot_min_rows:
            return None
        due = max(self._snapshot_min_rows / 5, SNAPSHOT_CHANGE_SHARE * len(index.rows))
        if index.changed_since_snapshot < due:
            return None
        if index.snapshot_writer is not None and index.snapshot_writer.is_alive():
            return None
        index.changed_since_snapshot = 0
        rows, synced_ms = index.rows, index.synced_ms

        def write() -> None:
            try:
                self._ensure_texts(tenant_id, dataset_id, index)
                assert self._snapshots is not None
                self._snapshots.save(
                    tenant_id,
                    dataset_id,
                    synced_ms,
                    (r.conversation for r in rows.values()),
                    ((cid, r.text or "") for cid, r in rows.items()),
                )
            except Exception:
                log.warning(
                    "list snapshot of %s/%s not written", tenant_id, dataset_id, exc_info=True
                )

        return write

    def flush_snapshots(self, timeout: float = 300.0) -> None:
        """Wait for snapshots being written (benchmarks and tests)."""
        with self._guard:
            writers = [i.snapshot_writer for i in self._indexes.values() if i.snapshot_writer]
        for writer in writers:
            writer.join(timeout)

    @staticmethod
    def _apply(rows: dict[str, IndexedRow], row: ConversationRow) -> bool:
        """Merge one changed row; False when it was already known as it is."""
        cid = row.conversation.conversation_id
        if row.deleted:
            return rows.pop(cid, None) is not None
        known = rows.get(cid)
        if known is not None and known.conversation == row.conversation:
            if known.text is None:
                known.text = row.search_text  # what a snapshot start left out
                return False
            if known.text == row.search_text:
                return False  # the overlap window re-read it
        rows[cid] = IndexedRow.of(row.conversation, row.search_text)
        return True

    def apply_written(
        self,
        tenant_id: str,
        dataset_id: str,
        seq: int | None,
        written: Sequence[tuple[str, Conversation | None]],
    ) -> bool:
        """Write-through for this container's own writes: ``written`` are (id, new state
        or None if deleted) and ``seq`` the counter their single bump returned. When the
        bump moved the counter by exactly one from what the index has seen, nobody else
        wrote in between, so the index takes the new states and the counter without a
        delta read (a reviewer's next list costs no more than before the edit). Otherwise
        the next list reads the delta as usual. Returns whether it applied."""
        index = self._index(tenant_id, dataset_id)
        with index.lock:
            if seq is None or index.seq < 0 or seq != index.seq + 1:
                return False
            rows = dict(index.rows)
            for cid, conversation in written:
                known = rows.get(cid)
                if conversation is None:
                    rows.pop(cid, None)
                else:
                    rows[cid] = IndexedRow.of(conversation, known.text if known else "")
            index.rows = rows
            index.generation += 1
            index.seq = seq
            return True

    def forget(self, tenant_id: str, dataset_id: str) -> None:
        """Drop a deleted dataset's index (its rows would otherwise stay in memory)."""
        with self._guard:
            self._indexes.pop((tenant_id, dataset_id), None)

    def known(self, tenant_id: str, ids: Sequence[str]) -> dict[str, Conversation]:
        """The tenant's conversations among ``ids`` that this container's index holds,
        as last synced (possibly stale: callers write conditionally on their version)."""
        with self._guard:
            indexes = [i for (t, _), i in self._indexes.items() if t == tenant_id]
        wanted = set(ids)
        out: dict[str, Conversation] = {}
        for index in indexes:
            rows = index.rows
            for cid in wanted.intersection(rows):
                out[cid] = rows[cid].conversation
        return out

    def conversations(self, tenant_id: str, dataset_id: str) -> list[Conversation]:
        return [r.conversation for r in self.refresh(tenant_id, dataset_id).rows.values()]

    def texts(
        self, tenant_id: str, dataset_id: str, max_age: float = 0.0
    ) -> list[tuple[Conversation, str]]:
        """(conversation, turn text) of every generated conversation of the dataset."""
        index = self.refresh(tenant_id, dataset_id, max_age)
        self._ensure_texts(tenant_id, dataset_id, index)
        return [(row.conversation, row.text) for row in index.rows.values() if row.text]

    # ------------------------------------------------------------------ querying
    @staticmethod
    def _matching(rows: Iterable[IndexedRow], query: ListQuery) -> list[IndexedRow]:
        wanted = [(d, frozenset(v)) for d, v in query.filters.items() if v]
        terms = query.terms()
        qmin, qmax, flagged = query.quality_min, query.quality_max, query.flagged
        out: list[IndexedRow] = []
        for row in rows:
            c = row.conversation
            if wanted and any(_value(c, dim) not in allowed for dim, allowed in wanted):
                continue
            if qmin is not None or qmax is not None or flagged is not None:
                score = c.quality_score
                if qmin is not None and (score is None or score < qmin):
                    continue
                if qmax is not None and (score is None or score > qmax):
                    continue
                if flagged is not None and row.conversation.flagged != flagged:
                    continue
            if terms and not matches_all(terms, row.search_words, row.search_ids):
                continue
            out.append(row)
        return out

    @staticmethod
    def _sort(rows: list[IndexedRow], sort: str, order: str) -> list[IndexedRow]:
        """By ``sort`` (text case-insensitively), ties by id, in ``order``; rows without a
        value last in both orders, by id."""
        keyed = [(_key_of(r.conversation, sort), r.conversation.conversation_id, r) for r in rows]
        present = [k for k in keyed if k[0] is not None]
        missing = [k for k in keyed if k[0] is None]
        present.sort(key=lambda k: (k[0], k[1]), reverse=order == "desc")
        missing.sort(key=lambda k: k[1])
        return [k[2] for k in present] + [k[2] for k in missing]

    def validate(self, query: ListQuery) -> None:
        if query.sort not in SORT_FIELDS:
            raise ValidationError(
                f"unknown sort field '{query.sort}'", {"allowed": list(SORT_FIELDS)}
            )
        if query.order not in SORT_ORDERS:
            raise ValidationError("order must be 'asc' or 'desc'", {"allowed": list(SORT_ORDERS)})
        if query.page_size not in PAGE_SIZES:
            raise ValidationError(
                f"page_size must be one of {', '.join(map(str, PAGE_SIZES))}",
                {"allowed": list(PAGE_SIZES)},
            )
        if query.page < 1:
            raise ValidationError("page must be >= 1", {"field": "page"})
        # An unknown dimension, or a value outside a fixed set, is a 400 naming the
        # allowed ones, not a filter that matches nothing.
        validate_filters(query.filters)

    def _ordered(
        self, tenant_id: str, dataset_ids: Sequence[str], query: ListQuery
    ) -> OrderedResult:
        self.validate(query)
        indexes = [self.refresh(tenant_id, d) for d in dataset_ids]
        if query.terms():
            for dataset_id, index in zip(dataset_ids, indexes, strict=True):
                self._ensure_texts(tenant_id, dataset_id, index)
        key = (
            tenant_id,
            tuple(dataset_ids),
            tuple(i.generation for i in indexes),
            query.signature(),
        )
        with self._orders_lock:
            cached = self._orders.get(key)
            if cached is not None:
                self._orders.move_to_end(key)
                return cached
        rows: list[IndexedRow] = []
        for index in indexes:
            rows.extend(self._matching(index.rows.values(), query))
        result = OrderedResult(self._sort(rows, query.sort, query.order))
        with self._orders_lock:
            self._orders[key] = result
            while len(self._orders) > ORDER_CACHE_SIZE:
                self._orders.popitem(last=False)
        return result

    def ordered(
        self, tenant_id: str, dataset_ids: Sequence[str], query: ListQuery
    ) -> list[Conversation]:
        return [r.conversation for r in self._ordered(tenant_id, dataset_ids, query).rows]

    def scope(self, tenant_id: str, dataset_id: str | None) -> list[str]:
        """The datasets a read covers: the one named, else all of the tenant's. An unknown
        or foreign ``dataset_id`` is a 404 when its change counter is read (one read
        instead of two per list call)."""
        if dataset_id:
            return [dataset_id]
        return [d.dataset_id for d in self._datasets.list_all(tenant_id)]

    def tenant_conversations(
        self, tenant_id: str, dataset_id: str | None = None
    ) -> list[Conversation]:
        """Every conversation of the scope (one dataset, or all of the tenant's)."""
        return [
            conversation
            for scoped in self.scope(tenant_id, dataset_id)
            for conversation in self.conversations(tenant_id, scoped)
        ]

    def list_page(self, tenant_id: str, query: ListQuery) -> dict[str, Any]:
        """One page of the list: the query checked first, then its scope read."""
        self.validate(query)
        return self.page(tenant_id, self.scope(tenant_id, query.dataset_id), query)

    def page(self, tenant_id: str, dataset_ids: Sequence[str], query: ListQuery) -> dict[str, Any]:
        result = self._ordered(tenant_id, dataset_ids, query)
        rows = result.rows
        offset = (query.page - 1) * query.page_size
        if query.cursor:
            offset = self._decode_cursor(query.cursor, query, result)
        page_rows = rows[offset : offset + query.page_size]
        next_offset = offset + len(page_rows)
        return {
            "items": [r.conversation for r in page_rows],
            "total": len(rows),
            "page": offset // query.page_size + 1,
            "page_size": query.page_size,
            "pages": max(1, -(-len(rows) // query.page_size)),
            "next_cursor": self._encode_cursor(
                next_offset, query, page_rows[-1].conversation.conversation_id
            )
            if page_rows and next_offset < len(rows)
            else None,
        }

    def neighbours(
        self, tenant_id: str, dataset_ids: Sequence[str], query: ListQuery, conversation_id: str
    ) -> tuple[str | None, str | None, int | None]:
        result = self._ordered(tenant_id, dataset_ids, query)
        i = result.position(conversation_id)
        if i is None:
            return None, None, None
        rows = result.rows
        previous = rows[i - 1].conversation.conversation_id if i > 0 else None
        following = rows[i + 1].conversation.conversation_id if i + 1 < len(rows) else None
        return previous, following, i + 1

    # ------------------------------------------------------------------ cursors
    def _encode_cursor(self, offset: int, query: ListQuery, last_id: str) -> str:
        payload = {"o": offset, "s": query.signature(), "k": last_id}
        body = base64.urlsafe_b64encode(json.dumps(payload).encode()).decode().rstrip("=")
        mac = hmac.new(self._secret, body.encode(), hashlib.sha256).hexdigest()[:24]
        return f"{body}.{mac}"

    def _decode_cursor(self, cursor: str, query: ListQuery, result: OrderedResult) -> int:
        """The offset to resume at: just after the last row the previous page showed
        (so rows added or removed before it shift nothing), else the stored offset."""
        try:
            body, mac = cursor.rsplit(".", 1)
            expected = hmac.new(self._secret, body.encode(), hashlib.sha256).hexdigest()[:24]
            if not hmac.compare_digest(mac, expected):
                raise ValueError("signature")
            data = json.loads(base64.urlsafe_b64decode(body + "=" * (-len(body) % 4)))
            offset = int(data["o"])
            if data["s"] != query.signature() or offset < 0:
                raise ValueError("query changed")
            last = data.get("k")
        except (ValueError, KeyError, TypeError, AttributeError) as e:
            raise ValidationError(
                "invalid cursor: it was altered or belongs to a different filter/sort",
                {"field": "cursor"},
            ) from e
        position = result.position(last) if isinstance(last, str) else None
        return offset if position is None else position + 1
