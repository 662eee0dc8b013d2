"""Bad input gets a clear 4xx in the API's error shape and changes nothing (issue 2)."""

from __future__ import annotations

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
