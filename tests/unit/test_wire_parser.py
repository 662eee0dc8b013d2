"""The DynamoDB read parser returns exactly what botocore's own shape walk returns."""

from __future__ import annotations

import base64
import json
from typing import Any

import botocore.session
import pytest
from botocore.parsers import create_parser

from chalicelib.store.wire import READ_OUTPUTS, WireParserFactory, might_hold_binary

ITEM = {
    "tenant_id": {"S": "t"},
    "conversation_id": {"S": "conv_1"},
    "quality_score": {"N": "8.5"},
    "deleted": {"BOOL": False},
    "arc": {"NULL": True},
    "turns": {"S": json.dumps([{"turn_number": 1, "role": "user", "content": 'say "B"'}])},
    "tags": {"L": [{"S": "a"}, {"M": {"k": {"N": "1"}, "ss": {"SS": ["x", "y"]}}}]},
    "ns": {"NS": ["1", "2.5"]},
}
BODIES = {
    "Query": {
        "Items": [ITEM, {**ITEM, "conversation_id": {"S": "conv_2"}}],
        "Count": 2,
        "ScannedCount": 5,
        "LastEvaluatedKey": {"dataset_key": {"S": "t#ds"}, "updated_ms": {"N": "17"}},
    },
    "Scan": {"Items": [ITEM], "Count": 1, "ScannedCount": 1},
    "GetItem": {"Item": ITEM},
    "BatchGetItem": {
        "Responses": {"turns": [ITEM]},
        "UnprocessedKeys": {"turns": {"Keys": [{"tenant_id": {"S": "t"}}]}},
    },
    "TransactGetItems": {"Responses": [{"Item": ITEM}]},
}


def parse(parser: Any, operation: str, body: bytes, status: int = 200) -> Any:
    model = botocore.session.get_session().get_service_model("dynamodb")
    op = model.operation_model(operation)
    return parser.parse(
        {"body": body, "headers": {"x-amzn-requestid": "r1"}, "status_code": status},
        op.output_shape,
    )


@pytest.mark.parametrize("operation", sorted(BODIES))
def test_reads_match_botocore(operation: str) -> None:
    body = json.dumps(BODIES[operation]).encode()
    wire = parse(WireParserFactory().create_parser("json"), operation, body)
    assert wire == parse(create_parser("json"), operation, body)
    assert wire["ResponseMetadata"]["RequestId"] == "r1"


def test_binary_values_are_still_decoded() -> None:
    item = {"pk": {"S": "a"}, "b": {"B": base64.b64encode(b"\x00\x01").decode()}}
    body = json.dumps({"Item": item}).encode()
    assert might_hold_binary(body)
    wire = parse(WireParserFactory().create_parser("json"), "GetItem", body)
    assert wire["Item"]["b"]["B"] == b"\x00\x01"
    assert wire == parse(create_parser("json"), "GetItem", body)


def test_errors_and_other_operations_take_botocore_s_way() -> None:
    error = json.dumps(
        {"__type": "com.amazonaws.dynamodb.v20120810#ResourceNotFoundException", "message": "no"}
    ).encode()
    parser = WireParserFactory().create_parser("json")
    got = parse(parser, "Query", error, status=400)
    assert got == parse(create_parser("json"), "Query", error, status=400)
    assert got["Error"]["Code"] == "ResourceNotFoundException"
    described = json.dumps({"Table": {"TableName": "t", "CreationDateTime": 1.7e9}}).encode()
    table = parse(parser, "DescribeTable", described)["Table"]
    assert "DescribeTableOutput" not in READ_OUTPUTS
    assert table["CreationDateTime"].year >= 2023  # a timestamp: botocore's walk ran
