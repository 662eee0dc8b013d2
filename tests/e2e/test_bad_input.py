"""Bad input gets a clear 4xx in the API's error shape and changes nothing (issue 2)."""

from __future__ import annotations

import http.client
import json
import re
import socket
import urllib.parse
from collections.abc import Sequence
from typing import Any

import pytest

pytestmark = pytest.mark.e2e


def assert_error(status: int, body: Any, expected: int, code: str | None = None) -> None:
    assert status == expected, body
    assert set(body) == {"error"}, body
    assert set(body["error"]) == {"code", "message", "details"}
    assert body["error"]["message"]
    if code:
        assert body["error"]["code"] == code, body


def test_malformed_json_wrong_types_unknown_enums_and_fields(api: Any) -> None:
    status, before, _ = api.get("/api/datasets")
    status, body, _ = api.call("POST", "/api/datasets", raw=b'{"name": "x",')
    assert_error(status, body, 400, "validation_error")
    assert "malformed JSON" in body["error"]["message"]
    status, body, _ = api.post("/api/datasets", {"name": 42})
    assert_error(status, body, 400, "validation_error")
    assert body["error"]["details"]["errors"][0]["field"] == "name"
    status, body, _ = api.post("/api/datasets", {"name": "ok", "budget_usd": "lots"})
    assert_error(status, body, 400, "validation_error")
    status, body, _ = api.post("/api/datasets", {"name": "ok", "colour": "blue"})
    assert_error(status, body, 400, "validation_error")
    status, body, _ = api.call("POST", "/api/datasets", raw=b"[1, 2]")
    assert_error(status, body, 400, "validation_error")
    status, body, _ = api.post("/api/export/conversations", {"format": "docx"})
    assert_error(status, body, 400, "validation_error")
    status, after, _ = api.get("/api/datasets")
    assert after["total"] == before["total"]  # nothing was created


def test_unknown_ids_are_404_and_unknown_routes_too(api: Any) -> None:
    for path in (
        "/api/datasets/ds_nope",
        "/api/conversations/conv_nope",
        "/api/jobs/job_nope",
        "/api/exports/exp_nope",
        "/api/templates/tpl_nope",
    ):
        status, body, _ = api.get(path)
        assert_error(status, body, 404, "not_found")
    status, body, _ = api.patch(
        "/api/conversations/conv_nope", {"status": "approved", "version": 1}
    )
    assert_error(status, body, 404, "not_found")
    status, body, _ = api.delete("/api/conversations/conv_nope")
    assert_error(status, body, 404, "not_found")
    status, body, _ = api.get("/api/no-such-route")
    assert status == 404 and body["error"]["code"] == "not_found"


def test_oversize_body_is_413(api: Any) -> None:
    big = b'{"name": "' + b"x" * 1_100_000 + b'"}'
    status, body, _ = api.call("POST", "/api/datasets", raw=big)
    assert_error(status, body, 413, "payload_too_large")


def test_status_transition_and_version_rules(api: Any) -> None:
    status, ds, _ = api.post("/api/datasets/sample")
    status, plan, _ = api.post(f"/api/datasets/{ds['dataset_id']}/plan", {"count": 2})
    cid = plan["conversation_ids"][0]
    status, conv, _ = api.get(f"/api/conversations/{cid}")
    # a conversation that was never generated cannot be approved
    status, body, _ = api.patch(
        f"/api/conversations/{cid}", {"status": "approved", "version": conv["version"]}
    )
    assert_error(status, body, 409)
    status, body, _ = api.patch(f"/api/conversations/{cid}", {"status": "approved"})
    assert_error(status, body, 400, "validation_error")
    status, body, _ = api.patch(f"/api/conversations/{cid}", {"status": "published", "version": 1})
    assert_error(status, body, 400, "validation_error")
    status, again, _ = api.get(f"/api/conversations/{cid}")
    assert again["status"] == "not_generated" and again["version"] == conv["version"]


# --------------------------------------------------------------------------- enum parameters


@pytest.fixture(scope="module")
def real_ids(api: Any) -> dict[str, str]:
    """A dataset with planned conversations, for path ids and required parameters."""
    status, ds, _ = api.post("/api/datasets", {"name": "Enum params"})
    assert status == 201, ds
    taxonomy = {
        k: [{"name": "One", "description": "x"}]
        for k in ("personas", "emotions", "topics", "intents", "tones")
    }
    assert api.put(f"/api/datasets/{ds['dataset_id']}/taxonomy", taxonomy)[0] == 200
    status, plan, _ = api.post(f"/api/datasets/{ds['dataset_id']}/plan", {"count": 2})
    assert status == 201, plan
    return {"dataset_id": ds["dataset_id"], "conversation_id": plan["conversation_ids"][0]}


def enum_parameters(document: dict[str, Any]) -> list[tuple[str, str, dict[str, Any], list[Any]]]:
    """(method, path, parameter, allowed values) of every enum query parameter in the
    served OpenAPI document: a new one is covered without touching this test."""
    found = []
    for path, operations in document["paths"].items():
        for method, op in operations.items():
            for param in op.get("parameters", []):
                schema = param["schema"]
                item = schema.get("items", {}) if schema.get("type") == "array" else schema
                if param["in"] == "query" and "enum" in item:
                    found.append((method.upper(), path, param, list(item["enum"])))
    return found


def request_path(path: str, op_params: list[dict[str, Any]], ids: dict[str, str]) -> str:
    """The path with real ids (or a missing one) and every other required parameter."""
    filled = re.sub(r"\{([^}]+)\}", lambda m: ids.get(m.group(1), "missing_id"), path)
    required = [
        (p["name"], ids.get(p["name"], "missing_id"))
        for p in op_params
        if p["in"] == "query" and p.get("required")
    ]
    return filled + "?" + urllib.parse.urlencode(required)


def test_every_enum_query_parameter_refuses_unknown_values(
    api: Any, real_ids: dict[str, str]
) -> None:
    """status=pwned or tier=x once listed nothing (200, empty). Every enum parameter of
    the document now answers 400 naming the parameter and its allowed values, and
    accepts each allowed value."""
    status, document, _ = api.get("/api/openapi.json")
    assert status == 200
    params = enum_parameters(document)
    names = {p["name"] for _, _, p, _ in params}
    assert {"status", "tier", "sort", "order", "page_size", "format"} <= names, names
    failures: list[str] = []
    for method, path, param, allowed in params:
        op_params = document["paths"][path][method.lower()]["parameters"]
        base = request_path(path, op_params, real_ids)
        name = param["name"]
        is_array = param["schema"].get("type") == "array"
        bad_values = ["pwned", "PWNED", " ", f"{allowed[0]}x"]
        if is_array:
            bad_values += [f"{allowed[0]},pwned"]
        for bad in bad_values:
            status, body, _ = api.call(method, f"{base}&{urllib.parse.urlencode({name: bad})}")
            error = body.get("error", {}) if isinstance(body, dict) else {}
            message = error.get("message", "")
            if (
                status != 400
                or error.get("code") != "validation_error"
                or error.get("details", {}).get("field") != name
                or error.get("details", {}).get("allowed") != allowed
                or name not in message
                or not all(str(a) in message for a in allowed)
            ):
                failures.append(f"{method} {path} {name}={bad!r}: {status} {body}")
        if is_array:  # repeated: one bad value among good ones
            query = urllib.parse.urlencode([(name, allowed[0]), (name, "pwned")])
            status, body, _ = api.call(method, f"{base}&{query}")
            if status != 400:
                failures.append(f"{method} {path} {name} repeated: {status} {body}")
        for good in allowed:
            status, body, _ = api.call(method, f"{base}&{urllib.parse.urlencode({name: good})}")
            named = (
                isinstance(body, dict)
                and body.get("error", {}).get("details", {}).get("field") == name
            )
            if status >= 500 or (status == 400 and named):
                failures.append(f"{method} {path} {name}={good!r} refused: {status} {body}")
    assert not failures, "\n".join(failures)


def test_unknown_status_and_tier_filters_do_not_list_nothing(
    api: Any, real_ids: dict[str, str]
) -> None:
    dsid = real_ids["dataset_id"]
    for query, name in (("status=pwned", "status"), ("tier=x", "tier")):
        status, body, _ = api.get(f"/api/conversations?dataset_id={dsid}&{query}")
        assert_error(status, body, 400, "validation_error")
        assert body["error"]["details"]["field"] == name
    status, body, _ = api.get(f"/api/conversations?dataset_id={dsid}&status=not_generated")
    assert status == 200 and body["total"] == 2, body
    status, body, _ = api.get("/api/export/preview?tier=x")
    assert_error(status, body, 400, "validation_error")
    assert body["error"]["details"]["allowed"] == ["template", "scenario", "edge_case"]


# --------------------------------------------------------------------------- request size


def raw_request(stack: Any, head: bytes) -> tuple[int, dict[str, str], bytes]:
    """Sends a hand-made request head and reads the answer (no client-side limits)."""
    host, port = stack.host, stack.port
    with socket.create_connection((host, port), timeout=30) as sock:
        sock.sendall(head)
        response = http.client.HTTPResponse(sock)
        response.begin()
        return response.status, dict(response.getheaders()), response.read()


def get_head(target: str, extra: Sequence[tuple[str, str]] = ()) -> bytes:
    lines = [f"GET {target} HTTP/1.1", "Host: 127.0.0.1", "Connection: close"]
    lines += [f"{k}: {v}" for k, v in extra]
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


@pytest.mark.parametrize(
    ("label", "head", "status", "code"),
    [
        (
            "100 KB query string",
            get_head("/api/conversations?q=" + "x" * 100_000),
            414,
            "uri_too_long",
        ),
        (
            "9 KB URL (over CloudFront's 8,192)",
            get_head("/api/conversations?q=" + "x" * 9000),
            414,
            "uri_too_long",
        ),
        ("100 KB path", get_head("/" + "a" * 100_000), 414, "uri_too_long"),
        (
            "70 KB header line",
            get_head("/api/health", [("X-Big", "x" * 70_000)]),
            431,
            "headers_too_large",
        ),
        (
            "25 KB of headers",
            get_head("/api/health", [(f"X-H{i}", "x" * 1000) for i in range(25)]),
            431,
            "headers_too_large",
        ),
        (
            "150 headers",
            get_head("/api/health", [(f"X-H{i}", "x") for i in range(150)]),
            431,
            "headers_too_large",
        ),
        ("garbage request line", b"NOT A REQUEST\r\n\r\n", 400, "bad_request"),
    ],
)
def test_oversized_or_malformed_requests_get_the_error_shape(
    stack: Any, label: str, head: bytes, status: int, code: str
) -> None:
    got, headers, raw = raw_request(stack, head)
    assert got == status, (label, got, raw[:300])
    assert headers["Content-Type"] == "application/json", headers
    body = json.loads(raw)
    assert_error(got, body, status, code)


def test_a_url_just_under_the_limit_is_served(stack: Any) -> None:
    target = "/api/health?pad=" + "x" * (8192 - len("/api/health?pad="))
    status, _, raw = raw_request(stack, get_head(target))
    assert status == 200, raw[:300]
    assert json.loads(raw)["status"] == "ok"


def body_enum_fields(document: dict[str, Any]) -> list[tuple[str, str, str, list[Any]]]:
    """(method, path, field, allowed) of every top-level enum field of a request body."""
    schemas = document["components"]["schemas"]

    def enum_of(schema: dict[str, Any]) -> list[Any] | None:
        if "$ref" in schema:
            return enum_of(schemas[schema["$ref"].rsplit("/", 1)[1]])
        if "enum" in schema:
            return list(schema["enum"])
        for option in schema.get("anyOf", []):
            found = enum_of(option)
            if found:
                return found
        return None

    found = []
    for path, operations in document["paths"].items():
        for method, op in operations.items():
            content = op.get("requestBody", {}).get("content", {}).get("application/json", {})
            ref = content.get("schema", {}).get("$ref")
            if not ref:
                continue
            model = schemas[ref.rsplit("/", 1)[1]]
            for field, schema in model.get("properties", {}).items():
                allowed = enum_of(schema)
                if allowed:
                    found.append((method.upper(), path, field, allowed))
    return found


def test_every_enum_body_field_refuses_unknown_values(api: Any, real_ids: dict[str, str]) -> None:
    """only, mode, format, action, tier, status...: a 400 that names the field and the
    allowed values, before anything is looked up or written."""
    status, document, _ = api.get("/api/openapi.json")
    fields = body_enum_fields(document)
    assert {"only", "mode", "format", "action", "status"} <= {f for _, _, f, _ in fields}
    failures = []
    for method, path, field, allowed in fields:
        target = re.sub(r"\{([^}]+)\}", lambda m: real_ids.get(m.group(1), "missing_id"), path)
        status, body, _ = api.call(method, target, {field: "pwned"})
        errors = body.get("error", {}).get("details", {}).get("errors", [])
        mine = [e for e in errors if e["field"] == field]
        if status != 400 or not mine or not all(str(a) in mine[0]["error"] for a in allowed):
            failures.append(f"{method} {path} {field}: {status} {body}")
    assert not failures, "\n".join(failures)
