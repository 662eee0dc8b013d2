"""Schema-driven fuzzing of the whole API (schemathesis) on the local stack.

Every operation in ``/api/openapi.json`` gets generated requests, signed in as a
dedicated fuzzing tenant (so generated data never mixes with other tests' tenants):

- positive cases (valid by the schema), with random path ids and, for routes with path
  parameters, with ids of real resources of the tenant;
- negative cases (invalid by the schema).

Checks: no 5xx, the status code is one the document lists, the content type and the
body conform to the documented response schema; negative cases must be rejected (4xx).
Examples are bounded (``FUZZ_EXAMPLES``, default 12 per operation and mode) and
derandomized, so the run is repeatable; ``FUZZ_RANDOM=1`` explores new examples.
Run with ``-s`` for the summary.
"""

from __future__ import annotations

import os
import re
import time
from collections import Counter
from typing import Any

import pytest
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis.errors import Unsatisfiable

from tests.conftest import Api

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

EXAMPLES = int(os.environ.get("FUZZ_EXAMPLES", "12"))
FUZZ_USER = ("fuzzer@fuzz.example", "Fuzzing-pass-2026", "tenant-fuzz")


def fuzz_client(stack: Any) -> Api:
    """A third user in the local pool, alone in its tenant."""
    email, password, tenant = FUZZ_USER
    idp = stack.client("cognito-idp")
    pool = stack.outputs["UserPoolId"]
    try:
        idp.admin_create_user(
            UserPoolId=pool,
            Username=email,
            UserAttributes=[
                {"Name": "email", "Value": email},
                {"Name": "custom:tenant_id", "Value": tenant},
            ],
            MessageAction="SUPPRESS",
        )
        idp.admin_set_user_password(
            UserPoolId=pool, Username=email, Password=password, Permanent=True
        )
    except idp.exceptions.UsernameExistsException:
        pass
    client = Api(stack.url)
    status, body, _ = client.post("/api/auth/login", {"email": email, "password": password})
    assert status == 200 and body["tenant_id"] == tenant, body
    client.token = body["id_token"]
    return client


def real_ids(api: Api) -> dict[str, str]:
    """One resource of each kind in the fuzzing tenant (path ids that exist)."""
    status, ds, _ = api.post("/api/datasets", {"name": "Fuzz target", "budget_usd": 50})
    assert status == 201, ds
    dsid = ds["dataset_id"]
    taxonomy = {
        k: [
            {"name": f"{k[:-1]} a", "description": "a"},
            {"name": f"{k[:-1]} b", "description": "b"},
        ]
        for k in ("personas", "emotions", "topics", "intents", "tones")
    }
    assert api.put(f"/api/datasets/{dsid}/taxonomy", taxonomy)[0] == 200
    status, plan, _ = api.post(f"/api/datasets/{dsid}/plan", {"count": 6})
    assert status == 201, plan
    cid = plan["conversation_ids"][0]
    status, accepted, _ = api.post("/api/conversations/generate", {"conversation_id": cid})
    assert status == 202, accepted
    deadline = time.time() + 60
    while time.time() < deadline:
        job = api.get(f"/api/jobs/{accepted['job_id']}")[1]
        if job["status"] in ("completed", "failed"):
            break
        time.sleep(0.2)
    conv = api.get(f"/api/conversations/{cid}")[1]
    api.patch(f"/api/conversations/{cid}", {"status": "approved", "version": conv["version"]})
    status, export, _ = api.post(
        "/api/export/conversations", {"format": "openai", "filters": {"dataset_id": dsid}}
    )
    assert status == 201, export
    status, template, _ = api.post(
        "/api/templates",
        {"name": "Fuzz", "tier": "template", "text": "Persona: {persona}", "is_active": False},
    )
    assert status == 201, template
    return {
        "dataset_id": dsid,
        "conversation_id": cid,
        "job_id": accepted["job_id"],
        "export_id": export["export_id"],
        "template_id": template["template_id"],
    }


VOLUME_FIELDS = ("count", "target_count")
MAX_VOLUME = 30


def bound_volume(case: Any) -> None:
    """Plans of up to 10,000 conversations are valid, but writing them into moto takes
    minutes: generated sizes are capped (the check is on the other fields)."""
    body = case.body
    if isinstance(body, dict):
        for name in VOLUME_FIELDS:
            value = body.get(name)
            if isinstance(value, int) and not isinstance(value, bool) and value > MAX_VOLUME:
                body[name] = MAX_VOLUME


def forget_subscriptions(stack: Any, api: Api) -> None:
    """The notification topic is shared by all tenants: leave no fuzzed addresses on it."""
    status, subs, _ = api.get("/api/notifications/subscriptions")
    assert status == 200, subs
    sns = stack.client("sns")
    for sub in subs["items"]:
        arn = sub.get("subscription_arn")
        if arn and arn.startswith("arn:"):
            sns.unsubscribe(SubscriptionArn=arn)


def bind(run: Any, label: str, mode: str, checks: list[Any]) -> Any:
    def fuzz(case: Any) -> None:
        run(case, label, mode, checks)

    return fuzz


def test_fuzz_every_operation(stack: Any) -> None:
    import schemathesis
    from schemathesis.checks import not_a_server_error
    from schemathesis.core.failures import Failure
    from schemathesis.specs.openapi.checks import (
        content_type_conformance,
        negative_data_rejection,
        response_schema_conformance,
        status_code_conformance,
    )

    api = fuzz_client(stack)
    ids = real_ids(api)
    schema = schemathesis.openapi.from_url(f"{stack.url}/api/openapi.json")
    headers = {"Authorization": f"Bearer {api.token}"}
    schema.config.update(base_url=stack.url, headers=headers)
    # The token is always sent (auth has its own tests); unknown query parameters are
    # ignored by design (unknown body fields are not: they are 400s, and fuzzed).
    schema.config.generation.update(with_security_parameters=False, allow_extra_parameters=False)
    positive_checks = [
        not_a_server_error,
        status_code_conformance,
        content_type_conformance,
        response_schema_conformance,
    ]
    negative_checks = [not_a_server_error, negative_data_rejection, content_type_conformance]
    failures: dict[tuple[str, str], str] = {}
    runs: Counter[str] = Counter()
    statuses: Counter[int] = Counter()

    def run(case: Any, label: str, mode: str, checks: list[Any]) -> None:
        runs[mode] += 1
        bound_volume(case)
        try:
            response = case.call_and_validate(
                base_url=stack.url, headers=headers, checks=checks, timeout=30
            )
            statuses[response.status_code] += 1
        except* Failure as group:
            for failure in group.exceptions:
                key = (label, f"{mode}: {failure.title}")  # type: ignore[attr-defined]
                if key not in failures:
                    curl = case.as_curl_command(headers=headers)
                    failures[key] = f"{failure.message}\n    {curl}"  # type: ignore[attr-defined]

    fuzz_settings = settings(
        max_examples=EXAMPLES,
        deadline=None,
        database=None,
        derandomize=not os.environ.get("FUZZ_RANDOM"),
        phases=[Phase.explicit, Phase.generate],
        suppress_health_check=list(HealthCheck),
    )
    started = time.monotonic()
    operations = []
    unsatisfiable: list[str] = []
    for result in schema.get_all_operations():
        operation = result.ok()
        operations.append(operation)
        label = f"{operation.method.upper()} {operation.path}"
        params = [p for p in ids if "{" + p + "}" in operation.path]
        plans: list[tuple[str, Any, list[Any]]] = [
            ("positive", operation.as_strategy(), positive_checks),
            (
                "negative",
                operation.as_strategy(generation_mode=schemathesis.GenerationMode.NEGATIVE),
                negative_checks,
            ),
        ]
        if params:
            plans.append(
                (
                    "positive+real ids",
                    operation.as_strategy(path_parameters={p: ids[p] for p in params}),
                    positive_checks,
                )
            )
        for mode, strategy, checks in plans:
            try:
                fuzz_settings(given(case=strategy)(bind(run, label, mode, checks)))()
            except Unsatisfiable:
                unsatisfiable.append(f"{label} ({mode})")  # e.g. nothing to make invalid
            except Exception as e:  # generation itself failed: report, keep going
                failures[(label, f"{mode}: generation or transport error")] = repr(e)
    elapsed = time.monotonic() - started
    forget_subscriptions(stack, api)

    print(
        f"\nFuzzing: {len(operations)} operations, {sum(runs.values())} requests "
        f"({', '.join(f'{k} {v}' for k, v in runs.items())}) in {elapsed:.0f} s; "
        f"statuses {dict(sorted(statuses.items()))}; {len(failures)} distinct failures"
    )
    print(f"  no invalid input exists for: {', '.join(unsatisfiable) or '-'}")
    for (label, kind), detail in sorted(failures.items()):
        print(f"  FAIL {label} [{kind}]\n    {detail[:1500]}")
    assert len(operations) >= 40
    assert not failures, f"{len(failures)} fuzzing failures (run with -s for details)"


# --------------------------------------------------------------------------- regressions
# One fast test per failure the fuzzer found (fixed in the app), so each stays fixed
# even when the derandomized examples change.


@pytest.mark.parametrize(
    "path",
    [
        "/api/conversations?quality_max=",
        "/api/conversations?page=",
        "/api/conversations?flagged=",
        "/api/conversations?order=",
        "/api/conversations?sort=",
        "/api/jobs?active=",
        "/api/audit?limit=",
        "/api/export/preview?format=",
        "/api/conversations?quality_min=nan",
        "/api/conversations?quality_min=inf",
    ],
)
def test_typed_query_parameters_sent_empty_or_non_finite_are_400(api: Api, path: str) -> None:
    status, body, _ = api.get(path)
    assert status == 400 and body["error"]["code"] == "validation_error", body


@pytest.mark.parametrize(
    ("raw", "fragment"),
    [
        (b'{"name": "x", "budget_usd": NaN}', "NaN"),
        (b'{"name": "x", "budget_usd": Infinity}', "Infinity"),
        (b'{"name": "x", "budget_usd": 2.7e-238}', "1e-100"),
        (b'{"name": "bad \\ud981 text"}', "surrogate"),
        (b'{"name": "x", "budget_usd": true}', "valid number"),
        (b'{"name": "x", "budget_usd": "5"}', "valid number"),
        (b'{"name": "x", "target_count": 5.5}', "integer"),
        (b'{"name": "x", "tier_distribution": {"template": 1e308}}', "less than or equal"),
    ],
)
def test_bodies_the_fuzzer_broke_are_400(api: Api, raw: bytes, fragment: str) -> None:
    status, body, _ = api.call("POST", "/api/datasets", raw=raw)
    assert status == 400 and body["error"]["code"] == "validation_error", body
    assert fragment.lower() in str(body["error"]).lower(), body


@pytest.mark.parametrize(
    "email", ["\x1c@a.example", "a\u008e@b.example", "é@b.example", "a@b.example\n", "a@b..c"]
)
def test_addresses_with_control_or_odd_characters_are_400(api: Api, email: str) -> None:
    """Fuzzed addresses with control characters reached SNS (whose XML then broke)."""
    for path, body in (
        ("/api/notifications/subscriptions", {"email": email}),
        ("/api/auth/login", {"email": email, "password": "x"}),
    ):
        status, answer, _ = api.post(path, body)
        assert status == 400 and answer["error"]["code"] == "validation_error", answer


def test_a_paired_surrogate_escape_is_ordinary_text(api: Api) -> None:
    status, body, _ = api.call("POST", "/api/datasets", raw=b'{"name": "emoji \\ud83d\\ude00"}')
    assert status == 201 and body["name"] == "emoji \U0001f600", body


def test_huge_tier_weights_in_a_plan_are_400_not_500(api: Api) -> None:
    status, ds, _ = api.post("/api/datasets", {"name": "Weights"})
    assert status == 201
    status, body, _ = api.post(
        f"/api/datasets/{ds['dataset_id']}/plan",
        {"count": 3, "tier_distribution": {"template": 9e307, "scenario": 1e308, "edge_case": 1}},
    )
    assert status == 400 and body["error"]["code"] == "validation_error", body


def test_datetimes_in_nested_objects_are_iso_8601(api: Api) -> None:
    """Generation logs are plain dicts in the detail view: their times were str()'d."""
    status, ds, _ = api.post("/api/datasets", {"name": "Times", "budget_usd": 5})
    dsid = ds["dataset_id"]
    taxonomy = {
        k: [{"name": "One", "description": "x"}]
        for k in ("personas", "emotions", "topics", "intents", "tones")
    }
    assert api.put(f"/api/datasets/{dsid}/taxonomy", taxonomy)[0] == 200
    plan = api.post(f"/api/datasets/{dsid}/plan", {"count": 1})[1]
    cid = plan["conversation_ids"][0]
    job = api.post("/api/conversations/generate", {"conversation_id": cid})[1]
    deadline = time.time() + 60
    while time.time() < deadline and api.get(f"/api/jobs/{job['job_id']}")[1]["status"] not in (
        "completed",
        "failed",
    ):
        time.sleep(0.2)
    status, detail, _ = api.get(f"/api/conversations/{cid}")
    assert status == 200 and detail["generation_logs"], detail
    for log in detail["generation_logs"]:
        assert "T" in log["created_at"], log


# --------------------------------------------------------------------------- nesting depth


def deep_bodies() -> list[tuple[str, bytes]]:
    """Bodies nested past the interpreter's recursion limit (~1,000) and past the API's
    own limit (16) while staying far below it."""
    n = 100_000
    return [
        ("arrays 100,000 deep", b"[" * n + b"]" * n),
        ("objects 5,000 deep", b'{"a":' * 5000 + b"1" + b"}" * 5000),
        ("unclosed arrays", b"[" * n),
        ("17 levels in a plausible body", b'{"name": "x", "meta": ' + b"[" * 16 + b"]" * 16 + b"}"),
        ("900 levels (under the recursion limit)", b"[" * 900 + b"]" * 900),
    ]


def body_routes() -> list[Any]:
    """Every route of the OpenAPI route list that takes a body."""
    from chalicelib.api.openapi import ROUTES

    return [r for r in ROUTES if r.request is not None or r.request_content is not None]


def test_deeply_nested_json_is_400_on_every_route_that_takes_a_body(api: Api) -> None:
    """JSON nested 1,000+ deep once made 17 routes (sign-in included) answer 500."""
    routes = body_routes()
    anonymous = Api(api.base)
    # A real dataset: a CSV chunk file is read after its dataset is found.
    status, ds, _ = api.post("/api/datasets", {"name": "Deep JSON target"})
    assert status == 201, ds
    ids = {"dataset_id": ds["dataset_id"], "turn_number": "1"}  # a well-formed path
    failures: list[str] = []
    for route in routes:
        path = re.sub(r"\{([^}]+)\}", lambda m: ids.get(m.group(1), "fuzz_missing_id"), route.path)
        client = anonymous if route.public else api
        content_types = ["application/json"]
        if route.request_content is not None:
            content_types = list(route.request_content)  # e.g. text/csv for chunks
        for content_type in content_types:
            for label, raw in deep_bodies():
                status, body, _ = client.call(
                    route.method, path, raw=raw, content_type=content_type
                )
                error = body.get("error", {}) if isinstance(body, dict) else {}
                wanted = "too_deep" if content_type == "application/json" else None
                if (
                    status != 400
                    or error.get("code") != "validation_error"
                    or (wanted and error.get("details", {}).get("code") != wanted)
                ):
                    failures.append(
                        f"{route.method} {route.path} [{content_type}, {label}]: "
                        f"{status} {str(body)[:300]}"
                    )
    assert not failures, "\n".join(failures)
    assert len(routes) >= 17


def test_nesting_at_the_limit_passes_the_depth_check(api: Api) -> None:
    """16 levels pass (the body is then judged on its fields), 17 do not."""
    for depth, too_deep in ((16, False), (17, True)):
        inner = depth - 1  # the body object itself is one level
        raw = b'{"name": "x", "extra": ' + b"[" * inner + b"]" * inner + b"}"
        status, body, _ = api.call("POST", "/api/datasets", raw=raw)
        assert status == 400 and body["error"]["code"] == "validation_error", body
        details = body["error"]["details"]
        if too_deep:
            assert details == {"code": "too_deep", "max_depth": 16}, body
        else:
            assert [e["field"] for e in details["errors"]] == ["extra"], body
