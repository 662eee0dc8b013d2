"""The local stack's TransactWriteItems (moto_patches replaces moto's) against the
behaviour of DynamoDB's: all or nothing, cancellation reasons in item order, condition
failures with the old item on request, and ClientRequestToken idempotency. Driven
through boto3, as the app's pynamodb transactions reach it."""

from __future__ import annotations

import socket
import uuid
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError
from moto.moto_server.threaded_moto_server import ThreadedMotoServer

from devstack import moto_patches

TABLE = f"tx-{uuid.uuid4().hex[:8]}"


@pytest.fixture(scope="module")
def server() -> Iterator[str]:
    """moto's server in this process, as the local stack runs it. Not ``mock_aws``: that
    resets every backend (and boto3's default session) of the process when it starts and
    stops, which would wipe a local stack running beside these tests."""
    from moto.dynamodb.models import DynamoDBBackend

    moto_patches.install()
    assert DynamoDBBackend.transact_write_items is moto_patches._transact_write_items
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    moto = ThreadedMotoServer("127.0.0.1", port, verbose=False)
    moto.start()
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        moto.stop()


@pytest.fixture
def ddb(server: str) -> Iterator[Any]:
    client = boto3.client(
        "dynamodb",
        endpoint_url=server,
        region_name="us-east-1",
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
    )
    client.create_table(
        TableName=TABLE,
        KeySchema=[
            {"AttributeName": "pk", "KeyType": "HASH"},
            {"AttributeName": "sk", "KeyType": "RANGE"},
        ],
        AttributeDefinitions=[
            {"AttributeName": "pk", "AttributeType": "S"},
            {"AttributeName": "sk", "AttributeType": "S"},
        ],
        BillingMode="PAY_PER_REQUEST",
    )
    try:
        yield client
    finally:
        client.delete_table(TableName=TABLE)
        moto_patches._tokens.clear()


def key(sk: str) -> dict[str, Any]:
    return {"pk": {"S": "t1"}, "sk": {"S": sk}}


def put(sk: str, **attrs: Any) -> dict[str, Any]:
    item = key(sk) | {name: {"N": str(v)} for name, v in attrs.items()}
    return {"Put": {"TableName": TABLE, "Item": item}}


def bump(sk: str, *, expect: int | None = None) -> dict[str, Any]:
    """n += 1, optionally only while n == expect."""
    op: dict[str, Any] = {
        "TableName": TABLE,
        "Key": key(sk),
        "UpdateExpression": "ADD n :one",
        "ExpressionAttributeValues": {":one": {"N": "1"}},
    }
    if expect is not None:
        op["ConditionExpression"] = "n = :expect"
        op["ExpressionAttributeValues"][":expect"] = {"N": str(expect)}
    return {"Update": op}


def items(ddb: Any) -> dict[str, dict[str, Any]]:
    rows = ddb.scan(TableName=TABLE)["Items"]
    return {row["sk"]["S"]: row for row in rows}


def cancelled(ddb: Any, transact: list[dict[str, Any]], **kw: Any) -> list[dict[str, Any]]:
    with pytest.raises(ClientError) as raised:
        ddb.transact_write_items(TransactItems=transact, **kw)
    error = raised.value.response
    assert error["Error"]["Code"] == "TransactionCanceledException"
    return list(error["CancellationReasons"])


def test_a_committed_transaction_applies_every_item(ddb: Any) -> None:
    ddb.put_item(TableName=TABLE, Item=put("a", n=1)["Put"]["Item"])
    ddb.transact_write_items(
        TransactItems=[
            put("b", n=5),
            bump("a", expect=1),
            {"Delete": {"TableName": TABLE, "Key": key("gone")}},
        ]
    )
    got = items(ddb)
    assert sorted(got) == ["a", "b"]
    assert got["a"]["n"] == {"N": "2"} and got["b"]["n"] == {"N": "5"}


def test_a_failed_condition_rolls_back_the_items_written_before_it(ddb: Any) -> None:
    """Items before the failing one were already applied (one op at a time): they are
    restored, new ones removed, deleted ones put back; items after it never land."""
    ddb.put_item(TableName=TABLE, Item=put("old", n=1)["Put"]["Item"])
    ddb.put_item(TableName=TABLE, Item=put("doomed", n=9)["Put"]["Item"])
    ddb.put_item(TableName=TABLE, Item=put("guard", n=3)["Put"]["Item"])
    before = items(ddb)
    reasons = cancelled(
        ddb,
        [
            put("new", n=1),  # created, must be removed again
            bump("old"),  # updated in place, must get n=1 back
            {"Delete": {"TableName": TABLE, "Key": key("doomed")}},  # must come back
            bump("guard", expect=4),  # n is 3: fails
            put("after", n=1),
        ],
    )
    assert [r["Code"] for r in reasons] == [
        "None",
        "None",
        "None",
        "ConditionalCheckFailed",
        "None",
    ]
    assert items(ddb) == before


def test_cancellation_reasons_follow_item_order_with_every_failure(ddb: Any) -> None:
    ddb.put_item(TableName=TABLE, Item=put("a", n=1)["Put"]["Item"])
    ddb.put_item(TableName=TABLE, Item=put("b", n=1)["Put"]["Item"])
    reasons = cancelled(
        ddb,
        [
            bump("a", expect=7),
            put("c", n=1),
            {
                "ConditionCheck": {
                    "TableName": TABLE,
                    "Key": key("b"),
                    "ConditionExpression": "attribute_not_exists(pk)",
                }
            },
            put("d", n=1),
        ],
    )
    assert [r["Code"] for r in reasons] == ["ConditionalCheckFailed", "None"] * 2
    assert all("Message" in r for r in reasons if r["Code"] != "None")
    assert sorted(items(ddb)) == ["a", "b"]  # c and d rolled back
    assert items(ddb)["a"]["n"] == {"N": "1"}


def test_a_failed_condition_returns_the_old_item_when_asked(ddb: Any) -> None:
    ddb.put_item(TableName=TABLE, Item=put("a", n=1)["Put"]["Item"])
    asked = bump("a", expect=2)
    asked["Update"]["ReturnValuesOnConditionCheckFailure"] = "ALL_OLD"
    (reason,) = cancelled(ddb, [asked])
    assert reason["Code"] == "ConditionalCheckFailed"
    assert reason["Item"] == put("a", n=1)["Put"]["Item"]
    (plain,) = cancelled(ddb, [bump("a", expect=2)])
    assert "Item" not in plain


def test_two_operations_on_one_item_are_refused_and_nothing_lands(ddb: Any) -> None:
    with pytest.raises(ClientError) as raised:
        ddb.transact_write_items(TransactItems=[put("a", n=1), put("b", n=1), bump("a")])
    assert raised.value.response["Error"]["Code"] == "ValidationException"
    assert "multiple operations on one item" in raised.value.response["Error"]["Message"]
    assert items(ddb) == {}


def test_a_resent_token_is_applied_once_and_a_reused_token_is_refused(ddb: Any) -> None:
    """A resend after a lost response (same ClientRequestToken, same items) succeeds
    without applying again; the token with other items is an error; a cancelled send
    is not remembered, so the same token may be sent again once it can succeed."""
    ddb.put_item(TableName=TABLE, Item=put("a", n=1)["Put"]["Item"])
    once = [bump("a", expect=1)]
    ddb.transact_write_items(TransactItems=once, ClientRequestToken="tok-1")
    ddb.transact_write_items(TransactItems=once, ClientRequestToken="tok-1")  # conditions
    assert items(ddb)["a"]["n"] == {"N": "2"}  # would fail if applied again: once only
    with pytest.raises(ClientError) as raised:
        ddb.transact_write_items(TransactItems=[bump("a")], ClientRequestToken="tok-1")
    assert "IdempotentParameterMismatch" in raised.value.response["Error"]["Message"]
    assert items(ddb)["a"]["n"] == {"N": "2"}

    waiting = [bump("a", expect=3)]
    cancelled(ddb, waiting, ClientRequestToken="tok-2")
    ddb.update_item(
        TableName=TABLE,
        Key=key("a"),
        UpdateExpression="SET n = :three",
        ExpressionAttributeValues={":three": {"N": "3"}},
    )
    ddb.transact_write_items(TransactItems=waiting, ClientRequestToken="tok-2")
    assert items(ddb)["a"]["n"] == {"N": "4"}
