"""Answers Lambda Invoke calls in-process with the app's ``@app.lambda_function`` handlers.

Registered on boto3's default session in the process that runs moto's server, so the
Step Functions interpreter's Lambda tasks (and the API's async export invoke) run the
real handlers without Docker. Errors are reported like Lambda does: ``FunctionError``
plus a payload whose ``errorType`` is the exception class name, which the ASL's
``Retry``/``Catch`` match on.
"""

from __future__ import annotations

import io
import json
import logging
import threading
import traceback
from collections.abc import Callable
from typing import Any
from urllib.parse import unquote

import boto3
from botocore.response import StreamingBody

log = logging.getLogger(__name__)

Handler = Callable[[dict[str, Any], Any], Any]


def function_name(arn_or_name: str) -> str:
    name = arn_or_name.split(":function:")[-1].split(":")[0]
    # Local ARNs are <app>-<stage>-<handler>; Chalice's handler names are the suffix.
    return name.rsplit("-", 1)[-1]


def _body(data: bytes) -> StreamingBody:
    return StreamingBody(io.BytesIO(data), len(data))


def invoke_handler(
    handlers: dict[str, Handler], function: str, payload: Any
) -> tuple[int, bytes, str | None]:
    handler = handlers.get(function_name(function))
    if handler is None:
        missing = {
            "errorType": "ResourceNotFoundException",
            "errorMessage": f"no local handler for {function}",
        }
        return 200, json.dumps(missing).encode(), "Unhandled"
    try:
        result = handler(payload, None)
    except Exception as e:
        log.info("local lambda %s raised %s: %s", function, type(e).__name__, e)
        body: dict[str, Any] = {
            "errorType": type(e).__name__,
            "errorMessage": str(e),
            "stackTrace": traceback.format_exception(e)[-5:],
        }
        return 200, json.dumps(body).encode(), "Unhandled"
    return 200, json.dumps(result, default=str).encode(), None


Invoker = Callable[[str, Any], tuple[int, bytes, str | None]]


class LambdaInvokeHook:
    def __init__(self, invoke: Invoker) -> None:
        # In-process handlers or a pool of worker processes (lambda_workers).
        self.invoke = invoke
        self.calls = 0
        self._lock = threading.Lock()

    def __call__(self, params: dict[str, Any], **kwargs: Any) -> tuple[Any, dict[str, Any]]:
        # ``params`` is botocore's serialised request: path, headers and body.
        with self._lock:
            self.calls += 1
        url_path = unquote(str(params.get("url_path", "")))
        function = url_path.split("/functions/", 1)[-1].split("/invocations", 1)[0]
        headers = {k.lower(): v for k, v in (params.get("headers") or {}).items()}
        raw = params.get("body") or b"{}"
        if hasattr(raw, "read"):
            raw = raw.read()
        payload = json.loads(raw) if raw else {}
        if headers.get("x-amz-invocation-type") == "Event":
            threading.Thread(target=self.invoke, args=(function, payload), daemon=True).start()
            return _Http(202), {"StatusCode": 202, "Payload": _body(b"")}
        status, data, error = self.invoke(function, payload)
        parsed: dict[str, Any] = {
            "StatusCode": status,
            "Payload": _body(data),
            "ExecutedVersion": "$LATEST",
        }
        if error:
            parsed["FunctionError"] = error
        return _Http(status), parsed


class _Http:
    """The part of an HTTP response botocore reads after a short-circuited call."""

    def __init__(self, status_code: int) -> None:
        self.status_code = status_code
        self.headers: dict[str, str] = {}
        self.content = b""


def in_process(handlers: dict[str, Handler]) -> Invoker:
    return lambda function, payload: invoke_handler(handlers, function, payload)


_hook: LambdaInvokeHook | None = None


def install(invoke: Invoker) -> LambdaInvokeHook:
    """Register on the default session: moto's ASL interpreter builds clients from it.

    Registered once per process: clients copy the session's handlers when they are
    built (and the interpreter's clients are cached), so a later local stack in the same
    process swaps the invoker of the one hook rather than registering another."""
    global _hook
    if _hook is None:
        _hook = LambdaInvokeHook(invoke)
        if boto3.DEFAULT_SESSION is None:
            boto3.setup_default_session()
        session = boto3.DEFAULT_SESSION
        assert session is not None
        session.events.register("before-call.lambda.Invoke", _hook)  # type: ignore[arg-type]
    _hook.invoke = invoke
    return _hook
