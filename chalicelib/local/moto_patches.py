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
import json
import threading
from datetime import datetime
from typing import Any

_lock = threading.RLock()
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
        if "state_task" not in info.name and "boto_client" not in info.name:
            continue
        module = importlib.import_module(info.name)
        if getattr(module, "boto_client_for", None) is original:
            module.boto_client_for = cached  # type: ignore[attr-defined]


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


def _patch_dynamodb_serializer() -> None:
    """moto serialises every response by walking the botocore output shape member by
    member with alias lookups (~40% of the local stack's CPU while generating). A
    DynamoDB data-plane result is already the wire document, so dump it directly;
    errors and other services keep moto's serializer."""
    from moto.core.responses import ActionResult

    original = ActionResult.execute_result

    def execute_result(self: Any, context: Any) -> Any:
        result = self.result
        operation = context.operation_model
        if (
            isinstance(result, dict)
            and operation.name in _DYNAMO_WIRE_OPS
            and context.service_model.service_name == "dynamodb"
        ):
            # botocore would parse a JSON null as a present-but-None member.
            wire = {k: v for k, v in result.items() if v is not None}
            body = json.dumps(wire, default=_wire_default, separators=(",", ":"))
            return 200, {"Content-Type": "application/x-amz-json-1.0"}, body
        return original(self, context)

    ActionResult.execute_result = execute_result  # type: ignore[method-assign]


def install() -> None:
    global _installed
    if _installed:
        return
    from moto.dynamodb.models import DynamoDBBackend

    DynamoDBBackend.transact_write_items = _transact_write_items  # type: ignore[method-assign]
    _patch_sfn_clients()
    _patch_dispatcher()
    _patch_dynamodb_serializer()
    _installed = True
