"""Abuse limits: body size (413), ids per bulk call and conversations per job (400), jobs
running per tenant and request rate on expensive routes (429 + Retry-After).

Small limits are set on the running in-process stack (``limits()``) and restored after.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest

from tests.conftest import Api

pytestmark = pytest.mark.e2e

ENV = {
    "max_body_bytes": "MAX_BODY_BYTES",
    "max_bulk_ids": "MAX_BULK_IDS",
    "max_job_conversations": "MAX_JOB_CONVERSATIONS",
    "max_active_jobs_per_tenant": "MAX_ACTIVE_JOBS_PER_TENANT",
    "expensive_route_rpm": "EXPENSIVE_ROUTE_RPM",
}


@contextmanager
def limits(**changes: int) -> Iterator[None]:
    """Lower limits on the running stack: the environment (read by ``get_settings()``)
    and the container's settings (held by its services), restored afterwards. Rate
    windows start empty so earlier tests' calls do not count."""
    from chalicelib.api import auth
    from chalicelib.bootstrap import get_container
    from chalicelib.config import reset_settings

    saved_env = {ENV[k]: os.environ.get(ENV[k]) for k in changes}
    container = get_container()
    saved = container.settings
    jobs_saved = container.jobs.settings
    for key, value in changes.items():
        os.environ[ENV[key]] = str(value)
    reset_settings()
    container.settings = dataclasses.replace(saved, **changes)
    container.jobs.settings = dataclasses.replace(jobs_saved, **changes)
    auth._windows.clear()
    try:
        yield
    finally:
        for name, value in saved_env.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value
        reset_settings()
        container.settings = saved
        container.jobs.settings = jobs_saved
        auth._windows.clear()


def assert_error(status: int, body: Any, want_status: int, code: str) -> None:
    assert status == want_status, body
    assert body["error"]["code"] == code, body


def planned_dataset(api: Api, count: int) -> tuple[str, list[str]]:
    status, ds, _ = api.post("/api/datasets", {"name": "Limits", "budget_usd": 100})
    assert status == 201, ds
    taxonomy = {
        k: [{"name": f"{k} one", "description": "x"}, {"name": f"{k} two", "description": "y"}]
        for k in ("personas", "emotions", "topics", "intents", "tones")
    }
    status, body, _ = api.put(f"/api/datasets/{ds['dataset_id']}/taxonomy", taxonomy)
    assert status == 200, body
    status, plan, _ = api.post(
        f"/api/datasets/{ds['dataset_id']}/plan",
        {"count": count, "tier_distribution": {"template": count, "scenario": 0, "edge_case": 0}},
    )
    assert status == 201, plan
    return ds["dataset_id"], plan["conversation_ids"]


# --------------------------------------------------------------------------- body size


def test_body_over_the_default_limit_is_413(api: Api) -> None:
    big = {"name": "Too big", "description": "x" * (1_048_576 + 10)}
    status, body, _ = api.post("/api/datasets", big)
    assert_error(status, body, 413, "payload_too_large")
    assert body["error"]["details"]["limit"] == 1_048_576


def test_body_size_limit_applies_to_every_json_route(api_b: Api) -> None:
    with limits(max_body_bytes=2000):
        ok = {"name": "Fits", "description": "x" * 1500}
        status, body, _ = api_b.post("/api/datasets", ok)
        assert status == 201, body
        dsid = body["dataset_id"]
        padding = "x" * 2100
        for method, path, payload in (
            ("POST", "/api/datasets", {"name": padding}),
            ("PATCH", f"/api/datasets/{dsid}", {"description": padding}),
            ("PUT", f"/api/datasets/{dsid}/taxonomy", {"personas": [{"name": padding}]}),
            ("POST", "/api/conversations/bulk-action", {"action": "approve", "ids": [padding]}),
            ("POST", "/api/templates", {"name": "t", "tier": "template", "text": padding}),
            ("POST", "/api/auth/login", {"email": "a@b.example", "password": padding}),
        ):
            status, body, _ = api_b.call(method, path, payload)
            assert_error(status, body, 413, "payload_too_large")
        # Chunk files may be five times larger; beyond that they are refused too.
        rows = "chunk_id,document_id,text\n" + "".join(f"c{i},d,{'y' * 90}\n" for i in range(120))
        assert 10_000 < len(rows) < 12_000
        status, body, _ = api_b.call(
            "POST", f"/api/datasets/{dsid}/chunks", raw=rows.encode(), content_type="text/csv"
        )
        assert_error(status, body, 413, "payload_too_large")
        status, body, _ = api_b.call(
            "POST",
            f"/api/datasets/{dsid}/chunks",
            raw=rows[:9000].rsplit("\n", 1)[0].encode() + b"\n",
            content_type="text/csv",
        )
        assert status == 201, body
    status, body, _ = api_b.post("/api/datasets", {"name": "After", "description": "x" * 5000})
    assert status == 201, body  # restored


# --------------------------------------------------------------------------- bulk ids


def test_more_than_500_ids_per_bulk_call_is_400(api: Api) -> None:
    ids = [f"conv_{i:020d}" for i in range(501)]
    status, body, _ = api.post("/api/conversations/bulk-action", {"action": "approve", "ids": ids})
    assert_error(status, body, 400, "validation_error")
    assert "ids" in str(body["error"]["details"])
    status, body, _ = api.post(
        "/api/conversations/bulk-action", {"action": "approve", "ids": ids[:500]}
    )
    assert status == 200 and len(body["failed"]) == 500  # 500 is allowed (none exist)


def test_bulk_limit_is_configurable(api: Api) -> None:
    with limits(max_bulk_ids=3):
        ids = [f"conv_{i:020d}" for i in range(4)]
        status, body, _ = api.post(
            "/api/conversations/bulk-action", {"action": "reject", "ids": ids}
        )
        assert_error(status, body, 400, "validation_error")
        assert "at most 3" in body["error"]["message"]
        status, body, _ = api.post(
            "/api/conversations/bulk-action", {"action": "reject", "ids": ids[:3]}
        )
        assert status == 200, body


# --------------------------------------------------------------------------- job size


def test_more_conversations_per_job_than_allowed_is_400_and_starts_nothing(api_b: Api) -> None:
    dsid, ids = planned_dataset(api_b, 3)
    with limits(max_job_conversations=2):
        status, body, _ = api_b.post(
            "/api/conversations/generate-batch", {"conversation_ids": ids, "confirm": True}
        )
        assert_error(status, body, 400, "validation_error")
        assert "at most 2" in body["error"]["message"] and body["error"]["details"] == {
            "requested": 3
        }
        status, body, _ = api_b.post(
            "/api/conversations/generate-all", {"dataset_id": dsid, "confirm": True}
        )
        assert_error(status, body, 400, "validation_error")
    status, jobs, _ = api_b.get(f"/api/jobs?dataset_id={dsid}")
    assert status == 200 and jobs["items"] == []
    status, convs, _ = api_b.get(f"/api/conversations?dataset_id={dsid}")
    assert {c["status"] for c in convs["items"]} == {"not_generated"}


def test_the_schema_caps_a_batch_at_1000_ids(api_b: Api) -> None:
    ids = [f"conv_{i:020d}" for i in range(1001)]
    status, body, _ = api_b.post("/api/conversations/generate-batch", {"conversation_ids": ids})
    assert_error(status, body, 400, "validation_error")


# --------------------------------------------------------------------------- running jobs


def test_too_many_running_jobs_per_tenant_is_429_with_retry_after(stack: Any, api_b: Api) -> None:
    from chalicelib.bootstrap import get_container
    from chalicelib.domain.models import ACTIVE_JOB_STATUSES, Job, JobStatus

    tenant = stack.demo_users[1].tenant_id
    dsid, ids = planned_dataset(api_b, 2)
    c = get_container()
    running = [j for j in c.job_repo.list_for_tenant(tenant) if j.status in ACTIVE_JOB_STATUSES]
    # A job that is still running (written directly: a real one would finish too soon).
    busy = Job(
        tenant_id=tenant,
        dataset_id=dsid,
        kind="single",
        status=JobStatus.RUNNING,
        conversation_ids=[],
        created_by="someone",
    )
    c.job_repo.create(busy)
    try:
        with limits(max_active_jobs_per_tenant=len(running) + 1):
            status, body, headers = api_b.post(
                "/api/conversations/generate", {"conversation_id": ids[0], "confirm": True}
            )
            assert_error(status, body, 429, "rate_limited")
            assert 1 <= int(headers["Retry-After"]) <= 60
            assert "already running" in body["error"]["message"]
            status, body, _ = api_b.post(
                "/api/conversations/generate-all", {"dataset_id": dsid, "confirm": True}
            )
            assert_error(status, body, 429, "rate_limited")
    finally:
        c.job_repo.set_status(tenant, busy.job_id, JobStatus.CANCELLED)
    status, jobs, _ = api_b.get(f"/api/jobs?dataset_id={dsid}")
    assert [j["job_id"] for j in jobs["items"]] == [busy.job_id]  # nothing else started


# --------------------------------------------------------------------------- request rate


def test_expensive_routes_are_rate_limited_per_tenant(api: Api, api_b: Api) -> None:
    payload = {"action": "approve", "ids": ["conv_00000000000000000000"]}
    with limits(expensive_route_rpm=3):
        for _ in range(3):
            status, body, _ = api_b.post("/api/conversations/bulk-action", payload)
            assert status == 200, body
        status, body, headers = api_b.post("/api/conversations/bulk-action", payload)
        assert_error(status, body, 429, "rate_limited")
        assert 1 <= int(headers["Retry-After"]) <= 60
        assert body["error"]["details"]["retry_after_seconds"] > 0
        # Other tenants and other expensive routes have their own windows.
        status, body, _ = api.post("/api/conversations/bulk-action", payload)
        assert status == 200, body
        status, body, _ = api_b.post(
            "/api/export/conversations", {"format": "openai", "filters": {}}
        )
        assert status != 429, body
        # Cheap routes are not limited.
        for _ in range(5):
            assert api_b.get("/api/datasets")[0] == 200


def test_sign_in_attempts_are_rate_limited_per_email(stack: Any) -> None:
    user = stack.demo_users[1]
    anonymous = Api(stack.url)
    with limits(expensive_route_rpm=3):
        for _ in range(3):
            status, body, _ = anonymous.post(
                "/api/auth/login", {"email": user.email, "password": "guess"}
            )
            assert_error(status, body, 401, "unauthorized")
        status, body, headers = anonymous.post(
            "/api/auth/login", {"email": user.email, "password": user.password}
        )
        assert_error(status, body, 429, "rate_limited")  # even the right password waits
        assert int(headers["Retry-After"]) >= 1
        other = stack.demo_users[0]
        status, body, _ = anonymous.post(
            "/api/auth/login", {"email": other.email, "password": other.password}
        )
        assert status == 200, body
