"""Local-emulator fixes for moto (local stack only): speed and transaction isolation.

moto backs up every table a transaction touches with ``copy.deepcopy`` before applying
it, so each TransactWriteItems costs O(table size) (seconds at 10,000 conversations),
and a rollback restores the whole table object, which would also undo other requests'
writes made meanwhile. DynamoDB itself does neither. This replacement keeps moto's
semantics (per-op condition checks, one op per item, cancellation reasons) but backs
up only the items the transaction targets and serialises transactions with a lock.
"""

from __future__ import annotations

import base64
import copy
import gc
import hashlib
import itertools
import json
import threading
import time
from datetime import datetime
from typing import Any

from chalicelib.library_pins import require_version

_lock = threading.RLock()
WRITE_VERSION = "_brightrun_write_version"
ITEM_SIZE = "_brightrun_size"  # an Item's measured size, kept until it changes
_size_lock = threading.RLock()  # measuring an item vs updating it in place
ITEM_SIZE_LIMIT = 405_000  # moto's LimitedSizeDict limit (DynamoDB's 400 KB, as measured)
_installed = False


def _transact_write_items(self: Any, transact_items: list[dict[str, Any]]) -> None:
    from moto.dynamodb.comparisons import get_filter_expression
    from moto.dynamodb.exceptions import (
        ConditionalCheckFailed,
        MockValidationException,
        MultipleTransactionsException,
        TooManyTransactionsException,
        TransactionCanceledException,
        TransactWriteSingleOpException,
    )

    if len(transact_items) > 100:
        raise TooManyTransactionsException()
    with _lock:
        backups: list[tuple[str, dict[str, Any], dict[str, Any] | None]] = []
        seen: set[tuple[str, str]] = set()
        errors: list[Any] = []

        def rollback() -> None:
            for table_name, key, attrs in reversed(backups):
                if attrs is None:
                    if self.get_item(table_name, key) is not None:
                        self.delete_item(table_name, key)
                else:
                    self.put_item(table_name, attrs)

        for item in transact_items:
            original_item: dict[str, Any] | None = None
            if len(item) > 1:
                raise TransactWriteSingleOpException
            try:
                op_type, op = next(iter(item.items()))
                if op_type not in {"ConditionCheck", "Put", "Delete", "Update"}:
                    raise ValueError("Unsupported transaction operation")
                table_name = op["TableName"]
                condition = op.get("ConditionExpression")
                names = op.get("ExpressionAttributeNames")
                values = op.get("ExpressionAttributeValues")
                if op_type == "Put":
                    attrs = op["Item"]
                    table = self.get_table(table_name)
                    key = {table.hash_key_attr: attrs[table.hash_key_attr]}
                    if table.range_key_attr is not None:
                        key[table.range_key_attr] = attrs[table.range_key_attr]
                else:
                    key = op["Key"]
                marker = (str(table_name), str(dict(sorted(key.items()))))
                if marker in seen:
                    raise MultipleTransactionsException()
                seen.add(marker)
                current = self.get_item(table_name, key)
                if condition is not None:
                    condition_op = get_filter_expression(condition, names, values)
                    if not condition_op.expr(current):
                        if op.get("ReturnValuesOnConditionCheckFailure") == "ALL_OLD" and current:
                            original_item = current.to_json()["Attributes"]
                        raise ConditionalCheckFailed(item=original_item)
                if op_type != "ConditionCheck":
                    backups.append(
                        (
                            table_name,
                            key,
                            copy.deepcopy(current.to_json()["Attributes"]) if current else None,
                        )
                    )
                if op_type == "Put":
                    self.put_item(
                        table_name,
                        op["Item"],
                        condition_expression=condition,
                        expression_attribute_names=names,
                        expression_attribute_values=values,
                    )
                elif op_type == "Delete":
                    self.delete_item(
                        table_name,
                        key,
                        condition_expression=condition,
                        expression_attribute_names=names,
                        expression_attribute_values=values,
                    )
                elif op_type == "Update":
                    self.update_item(
                        table_name,
                        key,
                        update_expression=op["UpdateExpression"],
                        condition_expression=condition,
                        expression_attribute_names=names,
                        expression_attribute_values=values,
                    )
                errors.append((None, None, None))
            except (MultipleTransactionsException, MockValidationException):
                rollback()
                raise
            except ConditionalCheckFailed as e:
                errors.append(("ConditionalCheckFailed", str(e.message), original_item))
            except Exception as e:
                errors.append((type(e).__name__, str(e), original_item))
        if any(code is not None for code, _, _ in errors):
            rollback()
            raise TransactionCanceledException(errors)


_clients: dict[tuple[str, str], Any] = {}
_clients_lock = threading.Lock()


def _patch_sfn_clients() -> None:
    """moto's ASL interpreter builds a new boto3 client for every task (loading the
    service model each time); botocore clients are thread-safe, so reuse one."""
    import importlib
    import pkgutil

    import moto.stepfunctions.parser as parser_pkg
    from moto.stepfunctions.parser.asl.utils import boto_client

    original = boto_client.boto_client_for

    def cached(region: str, service: str, state_credentials: Any = None) -> Any:
        key = (region, service)
        with _clients_lock:
            client = _clients.get(key)
            if client is None:
                client = _clients[key] = original(region, service, state_credentials)
            return client

    for info in pkgutil.walk_packages(parser_pkg.__path__, parser_pkg.__name__ + "."):
        # Task states, and the Distributed Map's ItemReader and ResultWriter (S3).
        if not any(part in info.name for part in ("state_task", "boto_client", "state_map")):
            continue
        module = importlib.import_module(info.name)
        if getattr(module, "boto_client_for", None) is original:
            module.boto_client_for = cached  # type: ignore[attr-defined]


PINNED_MOTO = "5.2.5"  # every patch in this module replaces internals of exactly this version


def require_pinned_moto(version: str | None = None) -> None:
    """The patches copy or replace moto internals: another version must be re-checked."""
    require_version("moto", PINNED_MOTO, "devstack/moto_patches.py", found=version)


def _distributed_eval_pool(self: Any, job: Any, worker_frame: Any) -> None:
    """moto's Distributed Map worker, with its per-item recursion made a loop.

    moto's ``_eval_pool`` calls itself for each next item, so one worker that runs more
    items than the recursion limit allows (10,000 items at MaxConcurrency 5 is 2,000
    each) dies with RecursionError. Same steps, same order, in a loop."""
    while True:
        if job is None:
            self._env.delete_frame(worker_frame)
            return
        job_frame = worker_frame.open_inner_frame()
        self._eval_job(env=job_frame, job=job)
        worker_frame.delete_frame(job_frame)
        if isinstance(job.job_output, Exception) or self.stopped():
            self._env.delete_frame(worker_frame)
            self._job_pool.close_job(job)
            return
        next_job = self._job_pool.next_job()
        if next_job is None:
            self._env.delete_frame(worker_frame)
            self._job_pool.close_job(job)
            return
        self._job_pool.close_job(job)
        job = next_job


def _patch_distributed_map() -> None:
    require_pinned_moto()
    from moto.stepfunctions.parser.asl.component.state.exec.state_map.iteration.itemprocessor.distributed_item_processor_worker import (
        DistributedItemProcessorWorker,
    )

    DistributedItemProcessorWorker._eval_pool = _distributed_eval_pool  # type: ignore[method-assign]


def _patch_dispatcher() -> None:
    """moto resolves the backend of every request under a global lock (listing every
    moto module each time); SDK requests name their service in the signature scope,
    so cache the answer per (region, service, target prefix)."""
    from moto.moto_server.werkzeug_app import DomainDispatcherApplication

    original = DomainDispatcherApplication.get_application
    cache: dict[tuple[str, str, str], Any] = {}

    def get_application(self: Any, environ: dict[str, Any]) -> Any:
        auth = environ.get("HTTP_AUTHORIZATION", "")
        path = environ.get("PATH_INFO", "")
        if "Credential=" not in auth or path.startswith(("/moto-api", "/latest/")):
            return original(self, environ)
        scope = auth.split("Credential=", 1)[1].split(",", 1)[0].split("/")
        if len(scope) < 5:
            return original(self, environ)
        key = (scope[2], scope[3], environ.get("HTTP_X_AMZ_TARGET", "").split(".")[0])
        app = cache.get(key)
        if app is None:
            app = cache[key] = original(self, environ)
        return app

    DomainDispatcherApplication.get_application = get_application  # type: ignore[method-assign]


# Data-plane operations whose results moto already builds in DynamoDB's wire shape
# (attribute values as {"S": ...}); control-plane results (tables, backups) carry
# datetimes and model objects and keep moto's own serializer.
_DYNAMO_WIRE_OPS = frozenset(
    {
        "GetItem",
        "PutItem",
        "UpdateItem",
        "DeleteItem",
        "Query",
        "Scan",
        "BatchGetItem",
        "BatchWriteItem",
        "TransactGetItems",
        "TransactWriteItems",
    }
)


def _wire_default(value: Any) -> Any:
    if isinstance(value, bytes | bytearray):  # B / BS values: base64 on the wire
        return base64.b64encode(value).decode("ascii")
    if isinstance(value, datetime):
        return value.timestamp()
    raise TypeError(f"cannot encode {type(value).__name__}")


def _wire_dynamo(value: Any) -> Any:
    """json.dumps ``default`` for raw DynamoDB results: what moto's ``dynamo_to_dict``
    followed by its serializer would write, built as the encoder meets each value."""
    from moto.dynamodb.models.dynamo_type import DynamoType

    if isinstance(value, DynamoType):
        if value.type in ("B", "BS"):
            # Stored as the wire's base64 text, or as raw bytes after a projection.
            binary = value.value if value.type == "BS" else [value.value]
            encoded = [
                base64.b64encode(v if isinstance(v, bytes) else base64.b64decode(v)).decode()
                for v in binary
            ]
            return {value.type: encoded if value.type == "BS" else encoded[0]}
        return {value.type: value.value}
    if hasattr(value, "to_json"):
        return value.to_json()
    return _wire_default(value)  # bytes, datetimes


def _patch_dynamodb_serializer() -> None:
    """moto serialises every response by walking the botocore output shape member by
    member with alias lookups (~40% of the local stack's CPU while generating), and its
    DynamoResult first converts every DynamoType of a result to a plain dict (a
    recursive walk per attribute). A DynamoDB data-plane result is already the wire
    document: it is dumped straight from its DynamoTypes (``_wire_dynamo``). Other
    results, and errors, take moto's way."""
    from moto.core.responses import ActionResult
    from moto.dynamodb.models.utilities import dynamo_to_dict
    from moto.dynamodb.responses import DynamoResult

    original = ActionResult.execute_result

    def execute_result(self: Any, context: Any) -> Any:
        if not isinstance(self, DynamoResult):
            return original(self, context)
        raw = vars(self)["_raw"]
        if (
            isinstance(raw, dict)
            and context.operation_model.name in _DYNAMO_WIRE_OPS
            and context.service_model.service_name == "dynamodb"
        ):
            # botocore would parse a JSON null as a present-but-None member.
            wire = {k: v for k, v in raw.items() if v is not None}
            body = json.dumps(wire, default=_wire_dynamo, separators=(",", ":"))
            return 200, {"Content-Type": "application/x-amz-json-1.0"}, body
        return original(ActionResult(dynamo_to_dict(raw)), context)

    def init(self: Any, result: object) -> None:
        self._raw = result  # converted (if at all) when serialised

    def result(self: Any) -> object:
        # moto's handlers read and amend the result (ConsumedCapacity) through this:
        # they get the raw document, so their additions are serialised too.
        return self._raw

    init.__wrapped__ = DynamoResult.__init__  # type: ignore[attr-defined]
    DynamoResult.__init__ = init  # type: ignore[method-assign]
    DynamoResult.result = property(result)  # type: ignore[assignment,method-assign]
    ActionResult.execute_result = execute_result  # type: ignore[method-assign]


class _Narrowed:
    """A table whose ``all_items`` is a precomputed candidate list (see _patch_query)."""

    def __init__(self, table: Any, items: list[Any]) -> None:
        self._table = table
        self._items = items

    def all_items(self) -> list[Any]:
        return self._items

    def sorted_items(self, hash_attrs: Any, range_attrs: Any, items: list[Any]) -> list[Any]:
        return items  # already in moto's order (the candidates' order is kept)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._table, name)


_QUERY_CACHE_ENTRIES = 32  # (index, partition) orders kept per table
_cache_lock = threading.Lock()
_versions = itertools.count(1)


def _sorted_candidates(table: Any, key: tuple[Any, ...], compute: Any) -> list[Any]:
    """A partition's items in moto's order, computed once per table write version:
    a paged read (an export, a cold list) then costs one sort, not one per page."""
    version = getattr(table, WRITE_VERSION, 0)
    with _cache_lock:
        cache: dict[tuple[Any, ...], tuple[int, list[Any]]] = table.__dict__.setdefault(
            "_brightrun_query_cache", {}
        )
        hit = cache.get(key)
    if hit is not None and hit[0] == version:
        return hit[1]
    ordered: list[Any] = compute()
    with _cache_lock:
        cache[key] = (version, ordered)  # the version read before computing: never too new
        while len(cache) > _QUERY_CACHE_ENTRIES:
            cache.pop(next(iter(cache)))
    return ordered


def _bump(table: Any) -> None:
    # A fresh number from one process-wide counter (next() on it is atomic): versions
    # never repeat, so an entry cached under an old version can never match again.
    setattr(table, WRITE_VERSION, next(_versions))


def _patch_write_versions() -> None:
    """Every item write bumps its table's version once it has landed, which
    invalidates the query order cache: puts and deletes on the table (batch writes,
    updates that create an item and the transaction patch all end there) and updates,
    which change a stored item in place."""
    from moto.dynamodb.models import DynamoDBBackend
    from moto.dynamodb.models.table import Table

    def on_table(original: Any) -> Any:
        def write(self: Any, *args: Any, **kwargs: Any) -> Any:
            try:
                return original(self, *args, **kwargs)
            finally:
                _bump(self)

        write.__wrapped__ = original  # type: ignore[attr-defined]
        return write

    original_update = DynamoDBBackend.update_item

    def update_item(self: Any, table_name: str, key: Any, *args: Any, **kwargs: Any) -> Any:
        try:
            # Under the size lock: a measure taken while the update runs cannot be
            # stored after the update has dropped it (moto's server is threaded).
            with _size_lock:
                return original_update(self, table_name, key, *args, **kwargs)
        finally:
            table = self.tables.get(table_name)
            if table is not None:
                _bump(table)
                # moto updates the stored item in place (even a failed update may have
                # changed some attributes): its measured size is no longer known.
                try:
                    stored = table.get_item(*self.get_keys_value(table, key))
                except Exception:  # a malformed key: moto has raised its own error
                    stored = None
                if stored is not None:
                    stored.__dict__.pop(ITEM_SIZE, None)

    Table.put_item = on_table(Table.put_item)  # type: ignore[method-assign]
    Table.delete_item = on_table(Table.delete_item)  # type: ignore[method-assign]
    DynamoDBBackend.update_item = update_item  # type: ignore[method-assign]


def _page(
    table: Any,
    ordered: list[Any],
    limit: int | None,
    index_name: str | None,
    filter_expression: Any,
    projection_expressions: Any,
) -> tuple[list[Any], int, Any]:
    """One Query page from ``ordered`` (the candidates after the start key, in reading
    order) as moto's query makes it, without its per-page costs: the page ends at
    ``limit`` items or 1 MB (item sizes are kept, see _patch_item_init), and only the
    items the filter keeps are copied, and only their projected attributes (moto
    deep-copied the whole page first)."""
    from moto.dynamodb.models.table import RESULT_SIZE_LIMIT

    page: list[Any] = []
    total = 0
    last_evaluated_key = None
    for item in ordered:
        size = item.size()
        if len(page) == limit or total + size > RESULT_SIZE_LIMIT:
            last_evaluated_key = table._get_last_evaluated_key(page[-1], index_name)
            break
        page.append(item)
        total += size
    index = table.get_index(index_name) if index_name else None
    if index is not None and (index.projection or {}).get("ProjectionType") not in (
        "KEYS_ONLY",
        "INCLUDE",
    ):
        index = None  # the index holds whole items (ALL): nothing to project away
    results = []
    for item in page:
        if index is not None:
            item = index.project(item)  # a projected copy: filters see what the index holds
        if filter_expression is not None and not filter_expression.expr(item):
            continue
        if projection_expressions:
            results.append(item.project(projection_expressions))
        elif index is not None:
            results.append(item)
        else:
            results.append(copy.deepcopy(item))
    return results, len(page), last_evaluated_key


def _patch_query() -> None:
    """moto answers every Query page by sorting the whole table, sorting the matches
    again and walking past every earlier page item by item: O(table) per 1 MB page,
    quadratic over a paginated read (an export of 10,000 conversations spent ~19 s in
    37 pages). Here the partition is found directly (a GSI: one pass over the table),
    sorted once, and the earlier pages skipped by binary search with moto's own
    ordering predicate; moto's query then pages, filters and projects as before.
    Unusual shapes (multi-attribute keys, legacy filters) keep moto's path."""
    from moto.dynamodb.models.table import Item, Table

    original = Table.query

    def query(
        self: Any,
        hash_key: Any,
        range_comparison: Any,
        range_objs: Any,
        limit: Any,
        exclusive_start_key: Any,
        scan_index_forward: bool,
        projection_expressions: Any,
        index_name: str | None = None,
        consistent_read: bool = False,
        filter_expression: Any = None,
        hash_key_conditions: Any = None,
        range_key_conditions: Any = None,
        **filter_kwargs: Any,
    ) -> Any:
        def run(table: Any, start: Any) -> Any:
            return original(
                table,
                hash_key,
                range_comparison,
                range_objs,
                limit,
                start,
                scan_index_forward,
                projection_expressions,
                index_name=index_name,
                consistent_read=consistent_read,
                filter_expression=filter_expression,
                hash_key_conditions=hash_key_conditions,
                range_key_conditions=range_key_conditions,
                **filter_kwargs,
            )

        if (
            filter_kwargs
            or (range_key_conditions and len(range_key_conditions) > 1)
            or (consistent_read and index_name)  # moto's path refuses it on a GSI
        ):
            return run(self, exclusive_start_key)
        conditions = dict(hash_key_conditions or [])
        if index_name:
            index = next((i for i in self.all_indexes() if i.name == index_name), None)
            if index is None:
                return run(self, exclusive_start_key)  # moto's validation error
            hashes = [k["AttributeName"] for k in index.schema if k["KeyType"] == "HASH"]
            ranges = [k["AttributeName"] for k in index.schema if k["KeyType"] == "RANGE"]
            if len(hashes) != 1 or len(ranges) > 1:
                return run(self, exclusive_start_key)
            expected = conditions.get(hashes[0], hash_key)
            range_attr = ranges[0] if ranges else None
            hash_attrs = [hashes[0], self.hash_key_attr]
            if range_attr is not None:
                range_attrs = [range_attr, self.range_key_attr]
            elif self.range_key_attr:
                range_attrs = [self.range_key_attr, self.range_key_attr]
            else:
                range_attrs = [self.hash_key_attr, self.range_key_attr]

            def compute() -> list[Any]:
                candidates = []
                for partition in self.items.values():
                    for item in partition.values() if self.range_key_attr else [partition]:
                        value = item.attrs.get(hashes[0])
                        if not value:
                            continue
                        # Same type and raw value is equality without moto's Decimal casts.
                        raw_equal = value.value == expected.value and value.type == expected.type
                        if not raw_equal and (value.type != "N" or value != expected):
                            continue
                        if range_attr is not None and not item.attrs.get(range_attr):
                            continue
                        candidates.append(item)
                # moto's order (sorted_items), keyed on the cast values its comparisons use.
                sort_attrs = self._generate_attr_to_sort_by(hash_attrs, range_attrs)
                candidates.sort(key=lambda it: tuple(it.attrs[a].cast_value for a in sort_attrs))
                return candidates
        else:
            expected = conditions.get(self.hash_key_attr, hash_key)
            hash_attrs, range_attrs = [self.hash_key_attr], [self.range_key_attr]

            def compute() -> list[Any]:
                partition = self.items.get(expected)
                if partition is None:
                    return []
                if self.range_key_attr:
                    items = sorted(partition.values(), key=lambda item: item.range_key.cast_value)
                else:
                    items = [partition]
                return [item for item in items if isinstance(item, Item)]

        # Shared, never mutated: reversing and trimming below make new lists.
        ordered = _sorted_candidates(
            self, (index_name, expected.type, str(expected.value)), compute
        )
        backwards = scan_index_forward is False
        if backwards:
            ordered = ordered[::-1]
        if exclusive_start_key is not None:
            # Items at or before the start key form a prefix of ``ordered``.
            lo, hi = 0, len(ordered)
            while lo < hi:
                mid = (lo + hi) // 2
                if self._item_comes_before_dct(
                    ordered[mid], exclusive_start_key, hash_attrs, range_attrs, scan_index_forward
                ):
                    lo = mid + 1
                else:
                    hi = mid
            ordered = ordered[lo:]
        if range_comparison is None:
            return _page(
                self,
                ordered,
                limit,
                index_name,
                filter_expression,
                projection_expressions,
            )
        if backwards:
            ordered = ordered[::-1]  # moto's query reverses again
        return run(_Narrowed(self, ordered), None)

    query.__wrapped__ = original  # type: ignore[attr-defined]
    Table.query = query  # type: ignore[method-assign]


_CONTAINER_TYPES = frozenset({"L", "M", "SS", "NS", "BS"})


def _copy_value(value: Any) -> Any:
    """A DynamoType as ``copy.deepcopy`` makes it: containers are copied deeply, a
    scalar (an immutable str, bool or bytes value) only needs a new wrapper, which
    skips deepcopy's memo bookkeeping for the common case."""
    if value.type in _CONTAINER_TYPES:
        return copy.deepcopy(value)
    copied = object.__new__(type(value))
    copied.type = value.type
    copied.value = value.value
    return copied


def _patch_projection() -> None:
    """moto projects an item by converting the *whole* item to plain JSON once per
    projected attribute (an export reading 40 attributes converted each item 40 times:
    most of a Query's CPU). For top-level attribute names, copy just those attributes;
    nested paths keep moto's way."""
    from moto.dynamodb.models.dynamo_type import Item, LimitedSizeDict

    original = Item.project

    def project(self: Any, projection_expressions: list[list[str]]) -> Any:
        attrs = self.attrs
        if not all(len(e) == 1 and "[" not in e[0] for e in projection_expressions) or any(
            v.type in ("B", "BS") for v in attrs.values()
        ):
            return original(self, projection_expressions)  # nested paths, binary values
        projected: Any = Item.__new__(Item)
        projected.hash_key = self.hash_key
        projected.range_key = self.range_key
        projected.attrs = LimitedSizeDict()
        # A subset of a stored item cannot exceed the size limit: no re-measure.
        dict.update(
            projected.attrs,
            {e[0]: _copy_value(attrs[e[0]]) for e in projection_expressions if e[0] in attrs},
        )
        return projected

    project.__wrapped__ = original  # type: ignore[attr-defined]
    Item.project = project  # type: ignore[method-assign]


def _patch_item_init() -> None:
    """moto builds an item one attribute at a time, re-measuring the whole item at each
    (O(attributes^2) per item, paid by every write and every projected read). Measure
    once: the partial sums only grow, so the limit is crossed at some attribute iff
    the total crosses it, and the same ItemSizeTooLarge is raised."""
    from moto.dynamodb.exceptions import ItemSizeTooLarge
    from moto.dynamodb.models.dynamo_type import DynamoType, Item, LimitedSizeDict
    from moto.dynamodb.models.utilities import bytesize

    original = Item.__init__

    def __init__(self: Any, hash_key: Any, range_key: Any, attrs: dict[str, Any]) -> None:
        self.hash_key = hash_key
        self.range_key = range_key
        converted = {key: DynamoType(value) for key, value in attrs.items()}
        size = sum(bytesize(k) + v.size() for k, v in converted.items())
        if size > ITEM_SIZE_LIMIT:
            raise ItemSizeTooLarge
        self.attrs = LimitedSizeDict()
        dict.update(self.attrs, converted)  # dict's own update: no per-key re-measure
        self.__dict__[ITEM_SIZE] = size

    original_size = Item.size

    def size(self: Any) -> int:
        # Measured when built; an in-place update drops it (see _patch_write_versions).
        known: int | None = self.__dict__.get(ITEM_SIZE)
        if known is None:
            with _size_lock:  # not while an update changes the item (see update_item)
                known = self.__dict__[ITEM_SIZE] = original_size(self)
        return known

    __init__.__wrapped__ = original  # type: ignore[attr-defined]
    size.__wrapped__ = original_size  # type: ignore[attr-defined]
    Item.__init__ = __init__  # type: ignore[method-assign]
    Item.size = size  # type: ignore[method-assign]


# DynamoDB remembers a TransactWriteItems' ClientRequestToken for 10 minutes.
IDEMPOTENCY_SECONDS = 600
_tokens: dict[str, tuple[str, float]] = {}


def once_per_token(token: str | None, items: Any, apply: Any) -> Any:
    """``apply()`` unless this token already committed these items in the last 10
    minutes (then DynamoDB's empty success); the token with other items is an error.
    A send that raises (cancelled) is not remembered, so it may be sent again."""
    from moto.core.responses import ActionResult
    from moto.dynamodb.exceptions import MockValidationException

    if not token:
        return apply()
    digest = hashlib.sha256(json.dumps(items, sort_keys=True, default=str).encode()).hexdigest()
    with _lock:  # the transactions' lock: one send of a token at a time
        now = time.monotonic()
        for old in [t for t, (_, at) in _tokens.items() if now - at > IDEMPOTENCY_SECONDS]:
            del _tokens[old]
        seen = _tokens.get(token)
        if seen is not None:
            if seen[0] != digest:
                raise MockValidationException(
                    "IdempotentParameterMismatch: this ClientRequestToken was used with "
                    "different transaction items"
                )
            return ActionResult({"ConsumedCapacity": [], "ItemCollectionMetrics": {}})
        result = apply()
        _tokens[token] = (digest, now)
        return result


def _patch_client_request_token() -> None:
    """DynamoDB treats a TransactWriteItems resent with the same ClientRequestToken (and
    the same items) within 10 minutes as the same request: success, applied once. moto
    ignores the token, so when botocore resends a transaction whose response it lost
    (a read timeout after the commit), the resend failed its own conditions and a
    committed write was reported as cancelled."""
    from moto.dynamodb.responses import DynamoHandler

    original = DynamoHandler.transact_write_items

    def transact_write_items(self: Any) -> Any:
        body = self.body
        return once_per_token(
            body.get("ClientRequestToken"), body.get("TransactItems"), lambda: original(self)
        )

    transact_write_items.__wrapped__ = original  # type: ignore[attr-defined]
    DynamoHandler.transact_write_items = transact_write_items  # type: ignore[method-assign]


def _wire_request(action: str, body: bytes) -> dict[str, Any] | None:
    """A data-plane request body as moto's parser would give it, by ``json.loads``, or
    None where the two could differ: the parser walks the botocore input shape and
    decodes base64 blobs (binary attributes) to bytes. The app stores no binary
    attributes, but a body that might hold one takes moto's parser (the same test the
    app's response parser makes, ``store.wire``)."""
    from chalicelib.store.wire import might_hold_binary

    if action not in _DYNAMO_WIRE_OPS or might_hold_binary(body):
        return None
    parsed = json.loads(body) if body else {}
    return parsed if isinstance(parsed, dict) else None


def _patch_request_parsing() -> None:
    """moto parses every DynamoDB request by walking the botocore input shape (a
    BatchGetItem of 100 keys: ~700 shape visits; a fifth of the stack's CPU while
    exporting). For data-plane operations the JSON body already is that result."""
    from moto.core.responses import BaseResponse
    from moto.dynamodb.responses import DynamoHandler
    from moto.utilities.aws_headers import gen_amzn_requestid_long

    original = DynamoHandler.parse_parameters

    def parse_parameters(self: Any, request: Any) -> None:
        parsed = _wire_request(self._get_action(), request.data)
        if parsed is None:
            original(self, request)
        else:
            self.params = parsed

    parse_parameters.__wrapped__ = original  # type: ignore[attr-defined]
    DynamoHandler.parse_parameters = parse_parameters  # type: ignore[method-assign]

    # moto writes the request id into XML bodies with a regex run over every response
    # body, 1 MB Query pages included; a body without the element is left unchanged
    # by it anyway.
    enrich = BaseResponse._enrich_response

    def _enrich_response(headers: dict[str, str], body: Any) -> tuple[dict[str, str], Any]:
        if isinstance(body, str) and "<RequestId>" not in body:
            if "status" in headers:
                headers["status"] = str(headers["status"])
            gen_amzn_requestid_long(headers)
            return headers, body
        return enrich(headers, body)

    BaseResponse._enrich_response = staticmethod(_enrich_response)  # type: ignore[method-assign]


_PLAIN_TYPES = frozenset({"S", "B", "BOOL"})


def _patch_value_equality() -> None:
    """DynamoType equality goes through ``cast_value``, a property that tests the type
    five ways (filters compare every item's attributes this way). For strings, binary
    and booleans ``cast_value`` is the value itself: compare it directly."""
    from moto.dynamodb.models.dynamo_type import DynamoType

    eq, ne = DynamoType.__eq__, DynamoType.__ne__

    def __eq__(self: Any, other: Any) -> bool:
        kind = self.type
        if kind == other.type and kind in _PLAIN_TYPES:
            return bool(self.value == other.value)
        return bool(eq(self, other))

    def __ne__(self: Any, other: Any) -> bool:
        kind = self.type
        if kind == other.type and kind in _PLAIN_TYPES:
            return bool(self.value != other.value)
        return bool(ne(self, other))

    __eq__.__wrapped__ = eq  # type: ignore[attr-defined]
    __ne__.__wrapped__ = ne  # type: ignore[attr-defined]
    DynamoType.__eq__ = __eq__  # type: ignore[method-assign]
    DynamoType.__ne__ = __ne__  # type: ignore[method-assign]


# Every SWEEP_SECONDS one full collection walks the whole heap again (see below).
SWEEP_SECONDS = 120.0
_last_sweep = [time.monotonic()]


def _freeze_survivors(phase: str, info: dict[str, int]) -> None:
    if phase != "stop" or info.get("generation") != 2:
        return
    now = time.monotonic()
    if now - _last_sweep[0] >= SWEEP_SECONDS:
        # Hand everything back: the next full collection walks the whole heap and frees
        # any reference cycle that became garbage while frozen; its survivors freeze.
        _last_sweep[0] = now
        gc.unfreeze()
    else:
        gc.freeze()


def freeze_after_full_collections() -> None:
    """The emulator holds every table as Python objects (~80 per stored conversation),
    and each CPython full collection walks all of them: 0.4 s of stalled requests at
    11,000 conversations, growing with the data; DynamoDB has no such pause. So what
    survives a full collection is frozen (``gc.freeze``) and later full collections
    walk only what was created since. Reference counting still frees deleted items;
    a reference cycle that becomes garbage while frozen waits for the next sweep (a
    full walk at most every SWEEP_SECONDS). Started by the local stack, undone by
    ``stop_freezing`` when it stops."""
    if _freeze_survivors not in gc.callbacks:
        _last_sweep[0] = time.monotonic()
        gc.callbacks.append(_freeze_survivors)


def stop_freezing() -> None:
    if _freeze_survivors in gc.callbacks:
        gc.callbacks.remove(_freeze_survivors)
    gc.unfreeze()


def install() -> None:
    global _installed
    if _installed:
        return
    require_pinned_moto()
    from moto.dynamodb.models import DynamoDBBackend

    DynamoDBBackend.transact_write_items = _transact_write_items  # type: ignore[method-assign]
    _patch_sfn_clients()
    _patch_distributed_map()
    _patch_dispatcher()
    _patch_dynamodb_serializer()
    _patch_write_versions()
    _patch_query()
    _patch_projection()
    _patch_item_init()
    _patch_client_request_token()
    _patch_request_parsing()
    _patch_value_equality()
    _installed = True
