"""The local emulator's faster moto Query answers exactly what moto's own does."""

from __future__ import annotations

import random
from typing import Any

import pytest
from moto.dynamodb.models.dynamo_type import DynamoType
from moto.dynamodb.models.table import Table

from devstack.moto_patches import install


@pytest.fixture(scope="module")
def table() -> Table:
    install()
    t = Table(
        "bench",
        account_id="123456789012",
        region="us-east-1",
        schema=[
            {"AttributeName": "pk", "KeyType": "HASH"},
            {"AttributeName": "sk", "KeyType": "RANGE"},
        ],
        attr=[
            {"AttributeName": "pk", "AttributeType": "S"},
            {"AttributeName": "sk", "AttributeType": "S"},
            {"AttributeName": "g", "AttributeType": "S"},
            {"AttributeName": "n", "AttributeType": "N"},
        ],
        global_indexes=[
            {
                "IndexName": "by_g",
                "KeySchema": [
                    {"AttributeName": "g", "KeyType": "HASH"},
                    {"AttributeName": "n", "KeyType": "RANGE"},
                ],
                "Projection": {"ProjectionType": "ALL"},
            },
            {
                "IndexName": "by_g_keys",
                "KeySchema": [
                    {"AttributeName": "g", "KeyType": "HASH"},
                    {"AttributeName": "n", "KeyType": "RANGE"},
                ],
                "Projection": {"ProjectionType": "KEYS_ONLY"},
            },
            {
                "IndexName": "by_g_include",
                "KeySchema": [
                    {"AttributeName": "g", "KeyType": "HASH"},
                    {"AttributeName": "n", "KeyType": "RANGE"},
                ],
                "Projection": {"ProjectionType": "INCLUDE", "NonKeyAttributes": ["flag"]},
            },
        ],
    )
    rng = random.Random(5)
    for i in range(400):
        item: dict[str, Any] = {
            "pk": {"S": f"p{i % 3}"},
            "sk": {"S": f"s{rng.randrange(10_000):05d}-{i}"},
            "n": {"N": str(rng.randrange(20))},  # GSI range key with many ties
            "pad": {"S": "x" * rng.randrange(1, 30_000)},  # pages end on the 1 MB limit too
            "flag": {"BOOL": i % 4 == 0},
            "tags": {"L": [{"S": "a"}, {"M": {"k": {"N": str(i)}}}]},
        }
        if i % 5:  # some items are not in the index
            item["g"] = {"S": f"g{i % 2}"}
        t.put_item(item)
    return t


def query_page(
    query: Any,
    table: Table,
    key: DynamoType,
    attr: str,
    limit: int | None,
    start: dict[str, Any] | None = None,
    *,
    range_comparison: str | None = None,
    range_objs: list[DynamoType] | None = None,
    forward: bool = True,
    projection: list[list[str]] | None = None,
    **kw: Any,
) -> tuple[list[Any], int, Any]:
    """One page of ``query`` (the patched Table.query or moto's own) on partition
    ``attr`` = ``key``: moto's positional signature, spelled out once."""
    return query(  # type: ignore[no-any-return]
        table,
        key,
        range_comparison,
        range_objs or [],
        limit,
        start,
        forward,
        projection,
        hash_key_conditions=[(attr, key)],
        **kw,
    )


def walk(
    query: Any, table: Table, key: DynamoType, attr: str, limit: int | None, **kw: Any
) -> list[tuple[list[Any], int]]:
    """Every page of a paged query: (items, scanned count) each."""
    out: list[tuple[list[Any], int]] = []
    start = None
    while True:
        items, scanned, last = query_page(query, table, key, attr, limit, start, **kw)
        out.append((items, scanned))
        if last is None:
            return out
        start = {k: v.to_json() for k, v in last.items()}


def pages(query: Any, table: Table, limit: int | None, **kw: Any) -> list[list[str]]:
    ((attr, key),) = kw.pop("conditions")
    kw.pop("hash_key", None)
    kw.pop("_hash", None)
    return [
        [f"{i.attrs['pk'].value}/{i.attrs['sk'].value}" for i in items]
        for items, _ in walk(query, table, key, attr, limit, **kw)
    ]


CASES = [
    {"name": "table", "hash": ("pk", "p1")},
    {"name": "table, backwards", "hash": ("pk", "p2"), "forward": False},
    {
        "name": "table, range condition",
        "hash": ("pk", "p0"),
        "range_comparison": "BETWEEN",
        "range_objs": [DynamoType({"S": "s02000"}), DynamoType({"S": "s07000"})],
    },
    {"name": "index", "hash": ("g", "g0"), "index_name": "by_g"},
    {"name": "index, backwards", "hash": ("g", "g1"), "index_name": "by_g", "forward": False},
    {
        "name": "index, range condition",
        "hash": ("g", "g1"),
        "index_name": "by_g",
        "range_comparison": ">=",
        "range_objs": [DynamoType({"N": "7"})],
    },
    {"name": "no such partition", "hash": ("pk", "nope")},
]


@pytest.mark.parametrize("case", CASES, ids=[c["name"] for c in CASES])
@pytest.mark.parametrize("limit", [None, 7, 50])
def test_paged_query_matches_moto(table: Table, case: dict[str, Any], limit: int | None) -> None:
    attr, value = case["hash"]
    key = DynamoType({"S": value})
    kw = {
        "hash_key": key,
        "_hash": key,
        "conditions": [(attr, key)],
        **{k: v for k, v in case.items() if k not in ("name", "hash")},
    }
    fast = pages(Table.query, table, limit, **dict(kw))
    moto = pages(Table.query.__wrapped__, table, limit, **dict(kw))  # type: ignore[attr-defined]
    assert fast == moto
    assert case["name"] == "no such partition" or sum(map(len, fast)) > 20
    if limit is None and case["name"] in ("table", "index"):
        assert len(fast) > 1  # the 1 MB page limit was exercised


FILTERED = [
    {"name": "filter", "index_name": None, "hash": ("pk", "p1")},
    {"name": "filter, index", "index_name": "by_g", "hash": ("g", "g0")},
    {"name": "filter, keys-only index", "index_name": "by_g_keys", "hash": ("g", "g1")},
    {"name": "filter, include index", "index_name": "by_g_include", "hash": ("g", "g0")},
]


@pytest.mark.parametrize("case", FILTERED, ids=[c["name"] for c in FILTERED])
@pytest.mark.parametrize("projected", [False, True])
@pytest.mark.parametrize("limit", [None, 9])
def test_filtered_and_projected_pages_match_moto(
    table: Table, case: dict[str, Any], projected: bool, limit: int | None
) -> None:
    """Whole items (not just keys), scanned counts and page ends, with a filter that
    drops items, an attribute projection and indexes that project attributes away."""
    from moto.dynamodb.comparisons import get_filter_expression

    attr, value = case["hash"]
    key = DynamoType({"S": value})
    flt = get_filter_expression("#f = :t", {"#f": "flag"}, {":t": {"BOOL": True}})
    projection = [["pk"], ["sk"], ["tags"], ["flag"]] if projected else None

    def read(query: Any) -> list[tuple[list[dict[str, Any]], int]]:
        walked = walk(
            query,
            table,
            key,
            attr,
            limit,
            projection=projection,
            index_name=case["index_name"],
            filter_expression=flt,
        )
        return [([i.to_json()["Attributes"] for i in items], n) for items, n in walked]

    fast = read(Table.query)
    moto = read(Table.query.__wrapped__)  # type: ignore[attr-defined]
    assert fast == moto
    kept = sum(len(items) for items, _ in fast)
    scanned = sum(n for _, n in fast)
    if case["name"] == "filter, keys-only index":
        assert kept == 0 < scanned  # the index does not hold the filtered attribute
    else:
        assert 0 < kept < scanned


def test_paged_results_are_copies(table: Table) -> None:
    """A caller changing a returned item must not change the stored one."""
    key = DynamoType({"S": "p0"})
    items, _, _ = query_page(Table.query, table, key, "pk", 3)
    items[0].attrs["tags"].value[0].value = "changed"
    again, _, _ = query_page(Table.query, table, key, "pk", 3)
    assert again[0].attrs["tags"].value[0].value == "a"


def test_projection_matches_moto() -> None:
    from moto.dynamodb.models.dynamo_type import Item

    install()
    item = Item(
        hash_key=DynamoType({"S": "t"}),
        range_key=DynamoType({"S": "c1"}),
        attrs={
            "pk": {"S": "t"},
            "sk": {"S": "c1"},
            "score": {"N": "7.50"},
            "tags": {"SS": ["b", "a"]},
            "blob": {"B": "aGVsbG8="},
            "flag": {"BOOL": False},
            "none": {"NULL": True},
            "quality": {"M": {"checks": {"L": [{"M": {"ok": {"BOOL": True}, "n": {"N": "3"}}}]}}},
        },
    )
    original = Item.project.__wrapped__  # type: ignore[attr-defined]
    for projection in (
        [["pk"], ["score"], ["quality"], ["missing"]],
        [["tags"], ["blob"], ["flag"], ["none"], ["tags"]],
        [["quality", "checks"]],  # a nested path: moto's own way
        [],
    ):
        fast, slow = item.project(projection), original(item, projection)
        assert fast.to_json() == slow.to_json(), projection
    assert set(item.project([["pk"], ["quality"]]).attrs) == {"pk", "quality"}


def test_item_size_limit_is_kept() -> None:
    from moto.dynamodb.exceptions import ItemSizeTooLarge
    from moto.dynamodb.models.dynamo_type import Item

    install()
    key = DynamoType({"S": "t"})
    fits = {"pk": {"S": "t"}, "a": {"S": "x" * 200_000}, "b": {"S": "y" * 200_000}}
    item = Item(hash_key=key, range_key=None, attrs=fits)
    assert item.size() <= 405_000 and set(item.attrs) == {"pk", "a", "b"}
    assert all(isinstance(v, DynamoType) for v in item.attrs.values())
    too_big = {**fits, "c": {"S": "z" * 5_000}}
    with pytest.raises(ItemSizeTooLarge):
        Item(hash_key=key, range_key=None, attrs=too_big)
    with pytest.raises(ItemSizeTooLarge):
        Item.__init__.__wrapped__(Item.__new__(Item), key, None, too_big)  # type: ignore[attr-defined]


def backend_with_table(
    name: str,
    attr: list[dict[str, str]] | None = None,
    global_indexes: list[dict[str, Any]] | None = None,
) -> Any:
    """A fresh moto DynamoDB backend holding one (pk, sk) table, for tests that go
    through the backend's own put/update/delete/transaction paths."""
    from moto.dynamodb.models import DynamoDBBackend

    install()
    backend = DynamoDBBackend("us-east-1", "123456789012")
    backend.create_table(
        name,
        schema=[
            {"AttributeName": "pk", "KeyType": "HASH"},
            {"AttributeName": "sk", "KeyType": "RANGE"},
        ],
        attr=[
            {"AttributeName": "pk", "AttributeType": "S"},
            {"AttributeName": "sk", "AttributeType": "S"},
            *(attr or []),
        ],
        throughput=None,
        billing_mode="PAY_PER_REQUEST",
        indexes=None,
        global_indexes=global_indexes,
        streams=None,
        sse_specification=None,
        tags=[],
        deletion_protection_enabled=False,
        warm_throughput=None,
    )
    return backend


def test_cached_order_follows_every_kind_of_write() -> None:
    """Puts, updates (in place, moving an item in the index order), deletes, batch and
    transactional writes between two queries: each answer equals moto's own."""
    backend = backend_with_table(
        "t",
        attr=[
            {"AttributeName": "g", "AttributeType": "S"},
            {"AttributeName": "n", "AttributeType": "N"},
        ],
        global_indexes=[
            {
                "IndexName": "by_g",
                "KeySchema": [
                    {"AttributeName": "g", "KeyType": "HASH"},
                    {"AttributeName": "n", "KeyType": "RANGE"},
                ],
                "Projection": {"ProjectionType": "ALL"},
            }
        ],
    )
    table = backend.get_table("t")
    for i in range(30):
        backend.put_item(
            "t", {"pk": {"S": "p"}, "sk": {"S": f"s{i:02d}"}, "g": {"S": "g"}, "n": {"N": str(i)}}
        )

    def both() -> tuple[list[list[str]], list[list[str]]]:
        out = []
        for query in (Table.query, Table.query.__wrapped__):  # type: ignore[attr-defined]
            for index, attr, value in ((None, "pk", "p"), ("by_g", "g", "g")):
                key = DynamoType({"S": value})
                out.append(
                    pages(
                        query,
                        table,
                        4,
                        hash_key=key,
                        _hash=key,
                        conditions=[(attr, key)],
                        index_name=index,
                    )
                )
        return out[:2], out[2:]

    def check() -> None:
        fast, slow = both()
        assert fast == slow

    check()
    backend.put_item("t", {"pk": {"S": "p"}, "sk": {"S": "s99"}, "g": {"S": "g"}, "n": {"N": "-1"}})
    check()
    backend.update_item(
        "t",
        {"pk": {"S": "p"}, "sk": {"S": "s05"}},
        update_expression="SET n = :n",
        expression_attribute_names=None,
        expression_attribute_values={":n": {"N": "100"}},
        attribute_updates=None,
        expected=None,
        condition_expression=None,
        return_values_on_condition_check_failure=None,
    )
    check()
    fast, _ = both()
    assert fast[1][-1][-1] == "p/s05"  # moved to the end of the index order
    backend.delete_item("t", {"pk": {"S": "p"}, "sk": {"S": "s10"}})
    check()
    backend.transact_write_items(
        [
            {
                "Put": {
                    "TableName": "t",
                    "Item": {
                        "pk": {"S": "p"},
                        "sk": {"S": "s50"},
                        "g": {"S": "g"},
                        "n": {"N": "3"},
                    },
                }
            }
        ]
    )
    check()
    fast, _ = both()
    flat = [k for page in fast[0] for k in page]
    assert "p/s99" in flat and "p/s50" in flat and "p/s10" not in flat


def test_the_order_cache_is_safe_under_concurrent_requests() -> None:
    """moto's server answers on threads: concurrent evictions and version bumps must
    neither raise nor hand out a version twice."""
    import sys
    import threading

    from devstack import moto_patches

    class FakeTable:
        pass

    table = FakeTable()
    errors: list[BaseException] = []
    seen: list[int] = []

    def reader(k: int) -> None:
        try:
            for i in range(300):
                key = ("idx", "S", f"{k}-{i % 50}")
                assert moto_patches._sorted_candidates(table, key, lambda i=i: [k, i]) is not None
                moto_patches._bump(table)
                seen.append(getattr(table, moto_patches.WRITE_VERSION))
        except BaseException as e:
            errors.append(e)

    previous = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)  # switch threads as often as possible
    try:
        threads = [threading.Thread(target=reader, args=(k,)) for k in range(8)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    finally:
        sys.setswitchinterval(previous)
    assert not errors, errors[:3]
    assert len(table.__dict__["_brightrun_query_cache"]) <= moto_patches._QUERY_CACHE_ENTRIES
    assert next(moto_patches._versions) > max(seen)  # every bump drew a fresh number


def test_a_resent_transaction_is_applied_once() -> None:
    """Same ClientRequestToken and items: success without applying again (DynamoDB's
    idempotency); the same token with other items: a validation error."""
    from moto.dynamodb.exceptions import MockValidationException

    from devstack import moto_patches

    applied: list[Any] = []

    def apply(items: Any) -> Any:
        def run() -> str:
            if items[0].get("fail"):
                raise RuntimeError("cancelled")
            applied.append(items)
            return "applied"

        return run

    put = [{"Put": {"x": 1}}]
    try:
        assert moto_patches.once_per_token("tok-1", put, apply(put)) == "applied"
        again = moto_patches.once_per_token("tok-1", [{"Put": {"x": 1}}], apply(put))
        assert again.result == {"ConsumedCapacity": [], "ItemCollectionMetrics": {}}
        assert len(applied) == 1
        other = [{"Put": {"x": 2}}]
        with pytest.raises(MockValidationException):
            moto_patches.once_per_token("tok-1", other, apply(other))
        failing = [{"fail": True}]
        with pytest.raises(RuntimeError):
            moto_patches.once_per_token("tok-2", failing, apply(failing))
        assert "tok-2" not in moto_patches._tokens  # a cancelled send may be sent again
        assert moto_patches.once_per_token(None, other, apply(other)) == "applied"
        assert len(applied) == 2
    finally:
        moto_patches._tokens.clear()


def test_an_updated_item_is_measured_again() -> None:
    """Item sizes are kept from when an item is built; moto updates items in place, so
    an update must drop the kept size, or 1 MB pages would end in the wrong place."""
    from moto.dynamodb.models.dynamo_type import Item

    backend = backend_with_table("sized")
    table = backend.get_table("sized")
    for i in range(12):
        backend.put_item(
            "sized",
            {
                "pk": {"S": "p"},
                "sk": {"S": f"s{i:02d}"},
                "pad": {"S": "x" * 90_000},
                "padding": {"S": ""},
            },
        )
    key = DynamoType({"S": "p"})

    def read(query: Any) -> list[list[str]]:
        return pages(query, table, None, hash_key=key, _hash=key, conditions=[("pk", key)])

    assert read(Table.query) == read(Table.query.__wrapped__)  # type: ignore[attr-defined]
    before = read(Table.query)
    backend.update_item(
        "sized",
        {"pk": {"S": "p"}, "sk": {"S": "s01"}},
        update_expression="SET padding = :big",
        expression_attribute_names=None,
        expression_attribute_values={":big": {"S": "y" * 300_000}},
        attribute_updates=None,
        expected=None,
        condition_expression=None,
        return_values_on_condition_check_failure=None,
    )
    stored = table.get_item(key, DynamoType({"S": "s01"}))
    assert stored.size() == Item.size.__wrapped__(stored)  # type: ignore[attr-defined]
    after = read(Table.query)
    assert after == read(Table.query.__wrapped__)  # type: ignore[attr-defined]
    assert len(after[0]) < len(before[0])  # the grown item ends the first page sooner


def test_raw_results_are_written_as_moto_writes_them() -> None:
    """The data-plane fast path dumps DynamoTypes directly; the body must equal what
    moto's dynamo_to_dict + serializer produce, for every attribute type."""
    import base64
    import json
    from datetime import UTC, datetime

    from moto.dynamodb.models.dynamo_type import Item
    from moto.dynamodb.models.utilities import dynamo_to_dict

    from devstack.moto_patches import _wire_default, _wire_dynamo

    item = Item(
        hash_key=DynamoType({"S": "t"}),
        range_key=None,
        attrs={
            "s": {"S": "text"},
            "n": {"N": "10.50"},
            "b": {"B": base64.b64encode(b"\x00\x01binary").decode()},
            "bs": {"BS": [base64.b64encode(b"one").decode(), base64.b64encode(b"two").decode()]},
            "ss": {"SS": ["a", "b"]},
            "ns": {"NS": ["1", "2.5"]},
            "bool": {"BOOL": False},
            "null": {"NULL": True},
            "l": {"L": [{"S": "x"}, {"M": {"deep": {"N": "1"}}}]},
            "m": {"M": {"k": {"L": [{"BOOL": True}]}, "b": {"B": "AAE="}}},
        },
    )
    raw = Item(  # binary as raw bytes, as after a projection round-trip
        hash_key=DynamoType({"S": "u"}),
        range_key=None,
        attrs={"b": {"B": b"\x00raw"}, "bs": {"BS": [b"one", "dHdv"]}},
    )
    result = {
        "Items": [item.attrs, raw.attrs],
        "Count": 2,
        "LastEvaluatedKey": {"s": DynamoType({"S": "text"})},
        "When": datetime(2026, 11, 26, tzinfo=UTC),
    }
    fast = json.dumps(result, default=_wire_dynamo, separators=(",", ":"))
    moto = json.dumps(dynamo_to_dict(result), default=_wire_default, separators=(",", ":"))
    assert json.loads(fast) == json.loads(moto)
    assert '"b":{"B":"AAFiaW5hcnk="}' in fast


def test_responses_through_moto_server() -> None:
    """Over HTTP, as the app meets them: a data-plane answer amended by moto's handlers
    (ConsumedCapacity), a control-plane answer (moto's own serializer) and an error."""
    import socket

    import boto3
    from botocore.exceptions import ClientError
    from moto.moto_server.threaded_moto_server import ThreadedMotoServer

    install()
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    server = ThreadedMotoServer("127.0.0.1", port, verbose=False)
    server.start()
    try:
        ddb = boto3.client(
            "dynamodb",
            endpoint_url=f"http://127.0.0.1:{port}",
            region_name="us-east-1",
            aws_access_key_id="testing",
            aws_secret_access_key="testing",
        )
        ddb.create_table(
            TableName="wire",
            KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}],
            AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}],
            BillingMode="PAY_PER_REQUEST",
        )
        item = {"pk": {"S": "a"}, "n": {"N": "1.50"}, "b": {"B": b"\x00\x01"}, "m": {"M": {}}}
        ddb.put_item(TableName="wire", Item=item)
        got = ddb.query(
            TableName="wire",
            KeyConditionExpression="pk = :a",
            ExpressionAttributeValues={":a": {"S": "a"}},
            ReturnConsumedCapacity="TOTAL",
        )
        assert got["Items"] == [item] and got["Count"] == 1
        assert got["ConsumedCapacity"]["TableName"] == "wire"
        described = ddb.describe_table(TableName="wire")["Table"]
        assert described["TableName"] == "wire" and described["ItemCount"] == 1
        with pytest.raises(ClientError) as failed:
            ddb.get_item(TableName="missing", Key={"pk": {"S": "a"}})
        assert failed.value.response["Error"]["Code"] == "ResourceNotFoundException"
    finally:
        server.stop()


WIRE_BODIES = {
    "Query": {
        "TableName": "t",
        "IndexName": "by_dataset",
        "KeyConditionExpression": "#0 = :0",
        "FilterExpression": "(#1 = :1 AND #2 = :2) AND #3 IN (:3, :4)",
        "ProjectionExpression": "#0, #1",
        "ExpressionAttributeNames": {"#0": "k", "#1": "status", "#2": "deleted", "#3": "tier"},
        "ExpressionAttributeValues": {
            ":0": {"S": "tenant#ds"},
            ":1": {"S": "approved"},
            ":2": {"BOOL": False},
            ":3": {"S": "template"},
            ":4": {"NULL": True},
        },
        "ExclusiveStartKey": {"k": {"S": "tenant#ds"}, "n": {"N": "17.5"}},
        "Limit": 25,
        "ScanIndexForward": False,
        "ReturnConsumedCapacity": "TOTAL",
    },
    "BatchGetItem": {
        "RequestItems": {
            "turns": {
                "Keys": [
                    {"tenant_id": {"S": "t"}, "conversation_id": {"S": f"c{i}"}} for i in range(3)
                ],
                "ProjectionExpression": "#0, #1",
                "ExpressionAttributeNames": {"#0": "conversation_id", "#1": "turns"},
            }
        }
    },
    "PutItem": {
        "TableName": "t",
        "Item": {
            "pk": {"S": "a"},
            "l": {"L": [{"N": "1"}, {"M": {"x": {"SS": ["a", "b"]}}}]},
            "ns": {"NS": ["1", "2"]},
        },
        "ConditionExpression": "attribute_not_exists(pk)",
    },
    "TransactWriteItems": {
        "TransactItems": [
            {
                "Update": {
                    "TableName": "t",
                    "Key": {"pk": {"S": "a"}},
                    "UpdateExpression": "SET #v = :v",
                    "ExpressionAttributeNames": {"#v": "version"},
                    "ExpressionAttributeValues": {":v": {"N": "2"}},
                }
            }
        ],
        "ClientRequestToken": "token-1",
    },
}


@pytest.mark.parametrize("action", sorted(WIRE_BODIES))
def test_data_plane_requests_are_read_as_moto_parses_them(action: str) -> None:
    import json

    from moto.core.parse import PROTOCOL_PARSERS
    from moto.core.responses import get_service_model

    from devstack.moto_patches import _wire_request

    body = json.dumps(WIRE_BODIES[action]).encode()
    operation = get_service_model("dynamodb").operation_model(action)
    moto = PROTOCOL_PARSERS["json"](operation, map_type=dict).parse(
        {
            "method": "POST",
            "values": {},
            "headers": {"Content-Type": "application/x-amz-json-1.0"},
            "body": body,
            "url_path": "/",
            "url_params": {},
        }
    )
    assert _wire_request(action, body) == moto


def test_binary_and_control_plane_requests_keep_moto_parsing() -> None:
    from devstack.moto_patches import _wire_request

    with_binary = b'{"TableName": "t", "Item": {"pk": {"S": "a"}, "b": {"B": "AAE="}}}'
    assert _wire_request("PutItem", with_binary) is None
    assert _wire_request("CreateTable", b'{"TableName": "t"}') is None


def test_fast_equality_agrees_with_moto() -> None:
    from itertools import product

    install()
    values = [
        DynamoType({"S": "a"}),
        DynamoType({"S": "b"}),
        DynamoType({"N": "1"}),
        DynamoType({"N": "1.0"}),
        DynamoType({"BOOL": True}),
        DynamoType({"BOOL": False}),
        DynamoType({"NULL": True}),
        DynamoType({"B": "AAE="}),
        DynamoType({"L": [{"S": "a"}]}),
        DynamoType({"SS": ["a"]}),
    ]
    eq, ne = DynamoType.__eq__.__wrapped__, DynamoType.__ne__.__wrapped__  # type: ignore[attr-defined]
    for a, b in product(values, repeat=2):
        assert (a == b) == eq(a, b) and (a != b) == ne(a, b), (a, b)
    assert DynamoType({"N": "1"}) == DynamoType({"N": "1.0"})  # numbers still by value


def test_request_ids_are_still_written() -> None:
    from moto.core.responses import BaseResponse

    install()
    headers: dict[str, Any] = {"status": 200}
    _, body = BaseResponse._enrich_response(headers, '{"Items":[]}')
    assert body == '{"Items":[]}' and headers["status"] == "200"
    assert len(headers["x-amzn-requestid"]) == 52
    headers = {}
    _, xml = BaseResponse._enrich_response(headers, "<R><RequestId>x</RequestId></R>")
    assert xml == f"<R><RequestId>{headers['x-amzn-requestid']}</RequestId></R>"


def test_full_collections_freeze_their_survivors_and_sweeps_free_cycles() -> None:
    import gc
    import time
    import weakref

    from devstack import moto_patches

    moto_patches.freeze_after_full_collections()
    try:
        kept = [{"value": [i]} for i in range(10_000)]
        gc.collect()
        frozen = gc.get_freeze_count()
        assert frozen >= len(kept)  # the survivors are out of later collections' way

        class Node:
            pass

        cycle = Node()
        cycle.self = cycle  # type: ignore[attr-defined]
        alive = weakref.ref(cycle)
        gc.collect()  # alive now: frozen with the rest
        del cycle
        gc.collect()
        assert alive() is not None  # garbage, but frozen: a plain collection cannot free it
        moto_patches._last_sweep[0] = time.monotonic() - moto_patches.SWEEP_SECONDS
        gc.collect()  # this one hands everything back ...
        assert gc.get_freeze_count() == 0
        gc.collect()  # ... and the next walks it all: the cycle is freed
        assert alive() is None
        assert gc.get_freeze_count() >= len(kept)
    finally:
        moto_patches.stop_freezing()
    assert gc.get_freeze_count() == 0
    assert moto_patches._freeze_survivors not in gc.callbacks


def test_a_consistent_read_on_a_global_index_is_still_refused(table: Table) -> None:
    from moto.dynamodb.exceptions import MockValidationException

    key = DynamoType({"S": "g0"})
    with pytest.raises(MockValidationException, match="Consistent reads"):
        query_page(Table.query, table, key, "g", None, index_name="by_g", consistent_read=True)


# --------------------------------------------------------------------------- Step Functions
def test_a_distributed_map_worker_runs_more_items_than_the_recursion_limit() -> None:
    """moto's worker recursed once per item: 1,500 items at MaxConcurrency 1 died with
    RecursionError (the limit is 1,000 frames). The patched worker loops."""
    import json
    import sys
    import time

    import boto3
    from moto import mock_aws
    from moto.stepfunctions.parser.asl.component.state.exec.state_map.iteration.itemprocessor.distributed_item_processor_worker import (
        DistributedItemProcessorWorker,
    )

    from devstack.moto_patches import _distributed_eval_pool

    install()
    assert DistributedItemProcessorWorker._eval_pool is _distributed_eval_pool
    items = 1500
    assert items > sys.getrecursionlimit()
    definition = {
        "StartAt": "Each",
        "States": {
            "Each": {
                "Type": "Map",
                "ItemsPath": "$.items",
                "MaxConcurrency": 1,
                "ItemProcessor": {
                    "ProcessorConfig": {"Mode": "DISTRIBUTED", "ExecutionType": "STANDARD"},
                    "StartAt": "Echo",
                    "States": {"Echo": {"Type": "Pass", "End": True}},
                },
                "End": True,
            }
        },
    }
    with mock_aws(config={"stepfunctions": {"execute_state_machine": True}}):
        sfn = boto3.client("stepfunctions", region_name="us-east-1")
        arn = sfn.create_state_machine(
            name="dm",
            definition=json.dumps(definition),
            roleArn="arn:aws:iam::123456789012:role/sm",
        )["stateMachineArn"]
        run = sfn.start_execution(
            stateMachineArn=arn, input=json.dumps({"items": list(range(items))})
        )
        deadline = time.time() + 120
        status = "RUNNING"
        while status == "RUNNING" and time.time() < deadline:
            time.sleep(0.2)
            status = sfn.describe_execution(executionArn=run["executionArn"])["status"]
        described = sfn.describe_execution(executionArn=run["executionArn"])
        assert status == "SUCCEEDED", described
        assert json.loads(described["output"]) == list(range(items))
