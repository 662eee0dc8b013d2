"""Shared fixtures: one local stack (moto + real ASL + app + simulator) per session."""

from __future__ import annotations

import json
import logging
import os
import urllib.error
import urllib.request
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

warnings.filterwarnings("ignore", message=".*not supported by moto.*")
logging.getLogger("werkzeug").setLevel(logging.ERROR)


class Api:
    """A tiny JSON HTTP client for the local stack (stdlib only, like a plain curl)."""

    def __init__(self, base: str, token: str | None = None) -> None:
        self.base = base
        self.token = token

    def call(
        self,
        method: str,
        path: str,
        body: Any = None,
        raw: bytes | None = None,
        content_type: str = "application/json",
        headers: dict[str, str] | None = None,
    ) -> tuple[int, Any, dict[str, str]]:
        data = raw if raw is not None else (json.dumps(body).encode() if body is not None else None)
        h = {"Content-Type": content_type, **(headers or {})}
        if self.token:
            h["Authorization"] = f"Bearer {self.token}"
        req = urllib.request.Request(self.base + path, data=data, method=method, headers=h)
        try:
            with urllib.request.urlopen(req, timeout=60) as resp:
                text = resp.read()
                status, hdrs = resp.status, dict(resp.headers)
        except urllib.error.HTTPError as e:
            text = e.read()
            status, hdrs = e.code, dict(e.headers)
        try:
            parsed = json.loads(text) if text else None
        except ValueError:
            parsed = text
        return status, parsed, hdrs

    def get(self, path: str, **kw: Any) -> tuple[int, Any, dict[str, str]]:
        return self.call("GET", path, **kw)

    def post(self, path: str, body: Any = None, **kw: Any) -> tuple[int, Any, dict[str, str]]:
        return self.call("POST", path, body if body is not None else {}, **kw)

    def patch(self, path: str, body: Any, **kw: Any) -> tuple[int, Any, dict[str, str]]:
        return self.call("PATCH", path, body, **kw)

    def put(self, path: str, body: Any, **kw: Any) -> tuple[int, Any, dict[str, str]]:
        return self.call("PUT", path, body, **kw)

    def delete(self, path: str, **kw: Any) -> tuple[int, Any, dict[str, str]]:
        return self.call("DELETE", path, **kw)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Run every test that does not need the session stack first.

    A guard: moto's backends are process-wide, and an in-process ``mock_aws()`` resets all
    of them on entry and exit, wiping the running stack's tables, topics and buckets (it
    once failed 10 generation-workflow tests that ran after tests/integration/test_deploy.py).
    With the stack-free tests first, any such reset happens before the stack starts.
    """
    items.sort(key=lambda item: "stack" in getattr(item, "fixturenames", ()))


@pytest.fixture(scope="session")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    from devstack.launcher import LocalStack

    os.environ.setdefault("LLM_SIM_LATENCY", "0.01")
    # Clean conversations unless a test asks the simulator for defects (test_quality_api).
    os.environ.setdefault("LLM_SIM_DEFECT_RATE", "0")
    os.environ.setdefault("EXPENSIVE_ROUTE_RPM", "10000")
    os.environ.setdefault("RATE_LIMIT_RPM", "6000")
    os.environ.setdefault("MAX_ACTIVE_JOBS_PER_TENANT", "50")
    # The launcher's stalled-job check: every second, for jobs quiet for 3 s whose
    # execution is gone (tests/integration/test_generation_workflow.py kills one).
    os.environ.setdefault("STALLED_JOB_CHECK_SECONDS", "1")
    os.environ.setdefault("STALLED_JOB_GRACE_SECONDS", "3")
    os.environ["AUTH_MODE"] = "cognito"  # the test stack signs in like the cloud does
    data: Path = tmp_path_factory.mktemp("stack-data")
    s = LocalStack(port=0, data_dir=data, persist=False, quiet=True)
    s.start()
    yield s
    s.stop()


def sign_in(stack: Any, user: Any) -> Api:
    """An Api client holding the demo user's ID token (POST /api/auth/login)."""
    client = Api(stack.url)
    status, body, _ = client.post(
        "/api/auth/login", {"email": user.email, "password": user.password}
    )
    assert status == 200, body
    assert body["tenant_id"] == user.tenant_id
    client.token = body["id_token"]
    return client


@pytest.fixture(scope="session")
def api(stack: Any) -> Api:
    """Demo user A (owner@harbor-pine.example, the default tenant)."""
    return sign_in(stack, stack.demo_users[0])


@pytest.fixture(scope="session")
def api_b(stack: Any) -> Api:
    """Demo user B (owner@northwind.example): another tenant."""
    return sign_in(stack, stack.demo_users[1])
