"""Tenant isolation: tenant B calls every route against tenant A's ids.

Tenant A (owner@harbor-pine.example) owns a dataset with chunks, conversations (one
generated and approved), a finished job, an inactive template, an export and a
subscription. Tenant B (owner@northwind.example) then attacks each of them through
every route. For each call the matrix records what B got for A's id and for an id that
exists nowhere: they must be the same answer (a foreign id is indistinguishable from
a missing one) and the expected one (404 for a resource, "absent" for a list, per-id
``not_found`` for bulk calls). Afterwards A's resources are compared with a snapshot
taken before the attacks, and A's audit trail must hold nothing by B.

Run with ``-s`` to see the matrix.
"""

from __future__ import annotations

import base64
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pytest

from tests.conftest import Api

pytestmark = pytest.mark.e2e

Check = Callable[[int, Any, str], str | None]  # (status, body, id) -> failure or None


@dataclass(frozen=True)
class Attack:
    route: str  # "METHOD /path" as in the OpenAPI document
    kind: str  # what of A's is attacked
    call: Callable[[Api, dict[str, str]], tuple[int, Any, dict[str, str]]]
    expect: str  # "404", "absent", "bulk-not-found", "400-not-found"


def wait_job(api: Api, job_id: str, timeout: float = 60) -> dict[str, Any]:
    deadline = time.time() + timeout
    while time.time() < deadline:
        status, job, _ = api.get(f"/api/jobs/{job_id}")
        assert status == 200, job
        if job["status"] in ("completed", "failed", "cancelled", "paused"):
            return job
        time.sleep(0.2)
    raise AssertionError(f"job {job_id} did not finish")


@pytest.fixture(scope="module")
def tenant_a(api: Api) -> dict[str, str]:
    """A's resources, made through the API as A."""
    status, ds, _ = api.post("/api/datasets", {"name": "Harbor Pine private", "budget_usd": 10})
    assert status == 201, ds
    dsid = ds["dataset_id"]
    taxonomy = {
        "personas": [{"name": "Anxious Investor", "description": "worried"}],
        "emotions": [{"name": "Fear", "description": "afraid"}],
        "topics": [{"name": "Fees", "description": "advisory fees"}],
        "intents": [{"name": "Seek Reassurance", "description": "wants comfort"}],
        "tones": [{"name": "Warm", "description": "kind"}],
    }
    status, body, _ = api.put(f"/api/datasets/{dsid}/taxonomy", taxonomy)
    assert status == 200, body
    chunk = {
        "chunk_id": "harbor-chunk-1",
        "document_id": "harbor-doc",
        "text": "Harbor Pine's confidential fee schedule.",
    }
    status, body, _ = api.post(f"/api/datasets/{dsid}/chunks", [chunk])
    assert status == 201, body
    status, plan, _ = api.post(
        f"/api/datasets/{dsid}/plan",
        {"count": 4, "tier_distribution": {"template": 4, "scenario": 0, "edge_case": 0}},
    )
    assert status == 201, plan
    generated, pending, spare, trashed = plan["conversation_ids"]
    assert api.delete(f"/api/conversations/{trashed}")[0] == 204  # in A's trash
    status, accepted, _ = api.post("/api/conversations/generate", {"conversation_id": generated})
    assert status == 202, accepted
    job = wait_job(api, accepted["job_id"])
    assert job["status"] == "completed", job
    status, conv, _ = api.get(f"/api/conversations/{generated}")
    status, body, _ = api.patch(
        f"/api/conversations/{generated}", {"status": "approved", "version": conv["version"]}
    )
    assert status == 200, body
    # A decision of A's that B will try to undo; A undoes and redoes it (a newer token).
    status, undone, _ = api.post("/api/conversations/undo", {"undo_token": body["undo_token"]})
    assert status == 200 and undone["succeeded"] == [generated], undone
    status, redone, _ = api.post("/api/conversations/undo", {"undo_token": undone["undo_token"]})
    assert status == 200 and redone["succeeded"] == [generated], redone
    status, export, _ = api.post(
        "/api/export/conversations", {"format": "openai", "filters": {"dataset_id": dsid}}
    )
    assert status == 201, export
    status, claude_export, _ = api.post(
        "/api/export/conversations", {"format": "anthropic", "filters": {"dataset_id": dsid}}
    )
    assert status == 201, claude_export
    status, fine_tune, _ = api.post(
        f"/api/exports/{claude_export['export_id']}/fine-tunes", {"confirm": True}
    )
    assert status == 201, fine_tune
    status, template, _ = api.post(
        "/api/templates",
        {
            "name": "Harbor Pine house style",
            "tier": "template",
            "text": "Persona: {persona}\nEmotion: {emotion}\nTopic: {topic}\nBe warm.",
            "is_active": False,
        },
    )
    assert status == 201, template
    status, body, _ = api.post(
        "/api/notifications/subscriptions", {"email": "ops@harbor-pine.example"}
    )
    assert status == 201, body
    return {
        "dataset": dsid,
        "conversation": generated,
        "pending": pending,
        "spare": spare,
        "trashed": trashed,
        "job": job["job_id"],
        "export": export["export_id"],
        "claude_export": claude_export["export_id"],
        "fine_tune": fine_tune["fine_tune_id"],
        "template": template["template_id"],
        "email": "ops@harbor-pine.example",
        "undo": redone["undo_token"],
    }


def missing_ids() -> dict[str, str]:
    """Ids shaped like A's that exist in no tenant."""
    n = uuid.uuid4().hex[:20]
    return {
        "dataset": f"ds_{n}",
        "conversation": f"conv_{n}",
        "pending": f"conv_{n}p",
        "spare": f"conv_{n}s",
        "trashed": f"conv_{n}t",
        "job": f"job_{n}",
        "export": f"exp_{n}",
        "claude_export": f"exp_{n}c",
        "fine_tune": f"ft_{n}",
        "template": f"tpl_{n}",
        "email": f"ops-{n}@nowhere.example",
        # A well-formed token of a decision that exists nowhere.
        "undo": "u1."
        + base64.urlsafe_b64encode(f"2026-01-01T00:00:00+00:00#aud_{n}".encode())
        .decode()
        .rstrip("="),
    }


TAXONOMY = {
    k: [{"name": "X", "description": "x"}]
    for k in ("personas", "emotions", "topics", "intents", "tones")
}


def attacks() -> list[Attack]:
    a: list[Attack] = []

    def add(route: str, kind: str, expect: str, call: Any) -> None:
        a.append(Attack(route, kind, call, expect))

    # datasets
    add("GET /api/datasets", "list", "absent", lambda b, i: b.get("/api/datasets"))
    add(
        "GET /api/datasets/{id}",
        "dataset",
        "404",
        lambda b, i: b.get(f"/api/datasets/{i['dataset']}"),
    )
    add(
        "PATCH /api/datasets/{id}",
        "dataset",
        "404",
        lambda b, i: b.patch(f"/api/datasets/{i['dataset']}", {"name": "pwned", "budget_usd": 0}),
    )
    add(
        "PUT /api/datasets/{id}/taxonomy",
        "dataset",
        "404",
        lambda b, i: b.put(f"/api/datasets/{i['dataset']}/taxonomy", TAXONOMY),
    )
    add(
        "POST /api/datasets/{id}/taxonomy/preview",
        "dataset",
        "404",
        lambda b, i: b.post(f"/api/datasets/{i['dataset']}/taxonomy/preview", TAXONOMY),
    )
    add(
        "POST /api/datasets/{id}/fill-gaps (gap)",
        "dataset",
        "404",
        lambda b, i: b.post(
            f"/api/datasets/{i['dataset']}/fill-gaps", {"gap": {"tier": "template"}, "count": 2}
        ),
    )
    add(
        "POST /api/datasets/{id}/chunks",
        "dataset",
        "404",
        lambda b, i: b.post(
            f"/api/datasets/{i['dataset']}/chunks",
            [{"chunk_id": "evil", "document_id": "evil", "text": "injected"}],
        ),
    )
    add(
        "POST /api/datasets/{id}/chunks (csv)",
        "dataset",
        "404",
        lambda b, i: b.call(
            "POST",
            f"/api/datasets/{i['dataset']}/chunks",
            raw=b"chunk_id,document_id,text\nevil,evil,injected\n",
            content_type="text/csv",
        ),
    )
    add(
        "GET /api/datasets/{id}/chunks",
        "dataset",
        "404",
        lambda b, i: b.get(f"/api/datasets/{i['dataset']}/chunks"),
    )
    add(
        "POST /api/datasets/{id}/plan",
        "dataset",
        "404",
        lambda b, i: b.post(f"/api/datasets/{i['dataset']}/plan", {"count": 5, "replace": True}),
    )
    add(
        "POST /api/datasets/{id}/fill-gaps",
        "dataset",
        "404",
        lambda b, i: b.post(f"/api/datasets/{i['dataset']}/fill-gaps"),
    )
    add(
        "DELETE /api/datasets/{id}",
        "dataset",
        "404",
        lambda b, i: b.delete(f"/api/datasets/{i['dataset']}"),
    )
    add(
        "POST /api/datasets/{id}/archive",
        "dataset",
        "404",
        lambda b, i: b.post(f"/api/datasets/{i['dataset']}/archive"),
    )
    add(
        "POST /api/datasets/{id}/unarchive",
        "dataset",
        "404",
        lambda b, i: b.post(f"/api/datasets/{i['dataset']}/unarchive"),
    )
    # conversations: lists and analytics
    add(
        "GET /api/conversations/trash",
        "dataset",
        "404",
        lambda b, i: b.get(f"/api/conversations/trash?dataset_id={i['dataset']}"),
    )
    add(
        "GET /api/conversations/trash (all)",
        "list",
        "absent",
        lambda b, i: b.get("/api/conversations/trash"),
    )
    add(
        "GET /api/conversations/diversity",
        "dataset",
        "404",
        lambda b, i: b.get(f"/api/conversations/diversity?dataset_id={i['dataset']}"),
    )
    add(
        "GET /api/conversations/calibration",
        "dataset",
        "404",
        lambda b, i: b.get(f"/api/conversations/calibration?dataset_id={i['dataset']}"),
    )
    add("GET /api/conversations", "list", "absent", lambda b, i: b.get("/api/conversations"))
    add(
        "GET /api/conversations?dataset_id=",
        "dataset",
        "404",
        lambda b, i: b.get(f"/api/conversations?dataset_id={i['dataset']}"),
    )
    add(
        "GET /api/conversations?q=",
        "search",
        "absent",
        lambda b, i: b.get("/api/conversations?q=Anxious"),
    )
    add(
        "GET /api/conversations/quality-stats",
        "dataset",
        "404",
        lambda b, i: b.get(f"/api/conversations/quality-stats?dataset_id={i['dataset']}"),
    )
    add(
        "GET /api/conversations/coverage-analysis",
        "dataset",
        "404",
        lambda b, i: b.get(f"/api/conversations/coverage-analysis?dataset_id={i['dataset']}"),
    )
    # conversations: one
    add(
        "GET /api/conversations/{id}",
        "conversation",
        "404",
        lambda b, i: b.get(f"/api/conversations/{i['conversation']}"),
    )
    add(
        "PATCH /api/conversations/{id}",
        "conversation",
        "404",
        lambda b, i: b.patch(
            f"/api/conversations/{i['conversation']}",
            {"status": "rejected", "reviewer_notes": "pwned", "version": 1},
        ),
    )
    add(
        "PATCH /api/conversations/{id} (metadata)",
        "conversation",
        "404",
        lambda b, i: b.patch(
            f"/api/conversations/{i['pending']}", {"title": "pwned", "version": 1}
        ),
    )
    add(
        "DELETE /api/conversations/{id}",
        "conversation",
        "404",
        lambda b, i: b.delete(f"/api/conversations/{i['spare']}"),
    )
    add(
        "POST /api/conversations/{id}/restore",
        "conversation",
        "404",
        lambda b, i: b.post(f"/api/conversations/{i['trashed']}/restore"),
    )
    add(
        "PUT /api/conversations/{id}/turns/{turn_number}/feedback",
        "conversation",
        "404",
        lambda b, i: b.put(
            f"/api/conversations/{i['conversation']}/turns/1/feedback",
            {"expected_version": 1, "bad": True, "content": "pwned"},
        ),
    )
    add(
        "POST /api/conversations/undo",
        "decision",
        "404",
        lambda b, i: b.post("/api/conversations/undo", {"undo_token": i["undo"]}),
    )
    add(
        "GET /api/conversations/{id}/versions",
        "conversation",
        "404",
        lambda b, i: b.get(f"/api/conversations/{i['conversation']}/versions"),
    )
    add(
        "GET /api/conversations/{id}/versions/{number}",
        "conversation",
        "404",
        lambda b, i: b.get(f"/api/conversations/{i['conversation']}/versions/1"),
    )
    add(
        "POST /api/conversations/{id}/validate",
        "conversation",
        "404",
        lambda b, i: b.post(f"/api/conversations/{i['conversation']}/validate"),
    )
    for action in ("approve", "reject", "delete", "regenerate", "restore"):
        add(
            f"POST /api/conversations/bulk-action ({action})",
            "conversations",
            "bulk-not-found",
            lambda b, i, action=action: b.post(
                "/api/conversations/bulk-action",
                {
                    "action": action,
                    "ids": [i["conversation"], i["pending"], i["spare"]],
                    "confirm": True,
                },
            ),
        )
    for action in ("approve", "reject", "delete"):
        add(
            f"POST /api/conversations/bulk-action ({action}, filter)",
            "dataset",
            "404",
            lambda b, i, action=action: b.post(
                "/api/conversations/bulk-action",
                {
                    "action": action,
                    "filter": {"dataset_id": i["dataset"]},
                    "reviewer_notes": "pwned",
                    "confirm": True,
                },
            ),
        )
    add(
        "POST /api/conversations/bulk-action (preview, filter)",
        "dataset",
        "404",
        lambda b, i: b.post(
            "/api/conversations/bulk-action",
            {"action": "approve", "filter": {"dataset_id": i["dataset"]}, "preview": True},
        ),
    )
    # generation
    add(
        "POST /api/conversations/estimate (ids)",
        "conversations",
        "400-not-found",
        lambda b, i: b.post("/api/conversations/estimate", {"ids": [i["pending"], i["spare"]]}),
    )
    add(
        "POST /api/conversations/estimate (dataset)",
        "dataset",
        "404",
        lambda b, i: b.post("/api/conversations/estimate", {"dataset_id": i["dataset"]}),
    )
    add(
        "POST /api/conversations/generate",
        "conversation",
        "404",
        lambda b, i: b.post(
            "/api/conversations/generate", {"conversation_id": i["pending"], "confirm": True}
        ),
    )
    add(
        "POST /api/conversations/generate-batch",
        "conversations",
        "400-not-found",
        lambda b, i: b.post(
            "/api/conversations/generate-batch",
            {"conversation_ids": [i["pending"], i["spare"]], "confirm": True},
        ),
    )
    add(
        "POST /api/conversations/generate-all",
        "dataset",
        "404",
        lambda b, i: b.post(
            "/api/conversations/generate-all", {"dataset_id": i["dataset"], "confirm": True}
        ),
    )
    add(
        "GET /api/conversations/status",
        "job",
        "404",
        lambda b, i: b.get(f"/api/conversations/status?job_id={i['job']}"),
    )
    # jobs
    add("GET /api/jobs", "list", "absent", lambda b, i: b.get("/api/jobs"))
    add(
        "GET /api/jobs?dataset_id=",
        "dataset",
        "404",
        lambda b, i: b.get(f"/api/jobs?dataset_id={i['dataset']}"),
    )
    add("GET /api/jobs/{id}", "job", "404", lambda b, i: b.get(f"/api/jobs/{i['job']}"))
    for verb in ("pause", "resume", "cancel"):
        add(
            f"POST /api/jobs/{{id}}/{verb}",
            "job",
            "404",
            lambda b, i, verb=verb: b.post(f"/api/jobs/{i['job']}/{verb}"),
        )
    # templates
    add("GET /api/templates", "list", "absent", lambda b, i: b.get("/api/templates"))
    add(
        "GET /api/templates/{id}",
        "template",
        "404",
        lambda b, i: b.get(f"/api/templates/{i['template']}"),
    )
    add(
        "PATCH /api/templates/{id}",
        "template",
        "404",
        lambda b, i: b.patch(
            f"/api/templates/{i['template']}", {"is_active": True, "text": "Persona: {persona}"}
        ),
    )
    # export
    add(
        "GET /api/export/preview",
        "dataset",
        "404",
        lambda b, i: b.get(f"/api/export/preview?format=openai&dataset_id={i['dataset']}"),
    )
    add(
        "POST /api/export/conversations",
        "dataset",
        "404",
        lambda b, i: b.post(
            "/api/export/conversations", {"format": "csv", "filters": {"dataset_id": i["dataset"]}}
        ),
    )
    add("GET /api/export/history", "list", "absent", lambda b, i: b.get("/api/export/history"))
    # fine-tunes
    add(
        "POST /api/exports/{id}/fine-tunes",
        "export",
        "404",
        lambda b, i: b.post(f"/api/exports/{i['claude_export']}/fine-tunes", {"confirm": True}),
    )
    add(
        "POST /api/exports/{id}/fine-tunes/estimate",
        "export",
        "404",
        lambda b, i: b.post(f"/api/exports/{i['claude_export']}/fine-tunes/estimate", {}),
    )
    add("GET /api/fine-tunes", "list", "absent", lambda b, i: b.get("/api/fine-tunes"))
    add(
        "GET /api/fine-tunes/{id}",
        "fine-tune",
        "404",
        lambda b, i: b.get(f"/api/fine-tunes/{i['fine_tune']}"),
    )
    add(
        "POST /api/fine-tunes/{id}/stop",
        "fine-tune",
        "404",
        lambda b, i: b.post(f"/api/fine-tunes/{i['fine_tune']}/stop", {}),
    )
    add(
        "GET /api/exports/{id} (status + download_url)",
        "export",
        "404",
        lambda b, i: b.get(f"/api/exports/{i['export']}"),
    )
    # audit, notifications
    add(
        "GET /api/audit?entity_id=",
        "conversation",
        "absent",
        lambda b, i: b.get(f"/api/audit?entity_id={i['conversation']}"),
    )
    add(
        "GET /api/audit?entity_id= (dataset)",
        "dataset",
        "absent",
        lambda b, i: b.get(f"/api/audit?entity_id={i['dataset']}"),
    )
    add("GET /api/audit", "list", "absent", lambda b, i: b.get("/api/audit?limit=1000"))
    add(
        "GET /api/notifications/subscriptions",
        "list",
        "absent",
        lambda b, i: b.get("/api/notifications/subscriptions"),
    )
    add(
        "GET /api/notifications/messages",
        "list",
        "absent",
        lambda b, i: b.get("/api/notifications/messages"),
    )
    return a


def mentions(body: Any, ids: dict[str, str]) -> list[str]:
    """Which of A's ids (or A's private text) appear anywhere in a response."""
    text = str(body)
    found = [k for k, v in ids.items() if v in text]
    for secret in ("Harbor Pine private", "confidential fee schedule", "Harbor Pine house style"):
        if secret in text:
            found.append(repr(secret))
    return found


def judge(attack: Attack, status: int, body: Any, ids: dict[str, str]) -> str | None:
    """None when the answer is the expected one, else what is wrong."""
    leaked = mentions(body, ids)
    if attack.expect == "absent":
        if status != 200:
            return f"status {status}"
        return f"leaks {leaked}" if leaked else None
    if attack.expect == "404":
        if status != 404 or body["error"]["code"] != "not_found":
            return f"status {status}: {body}"
        return None
    if attack.expect == "bulk-not-found":
        if status != 200:
            return f"status {status}: {body}"
        codes = {f["id"]: f["error"]["code"] for f in body["failed"]}
        wanted = {ids["conversation"], ids["pending"], ids["spare"]}
        if body["succeeded"] or set(codes) != wanted or set(codes.values()) != {"not_found"}:
            return f"bulk result {body}"
        return None
    if attack.expect == "400-not-found":
        if status != 400:
            return f"status {status}: {body}"
        rejected = body["error"]["details"].get("rejected", [])
        if {r["error"] for r in rejected} != {"not_found"}:
            return f"rejected {rejected}"
        return None
    raise AssertionError(attack.expect)


def shape(status: int, body: Any) -> str:
    if isinstance(body, dict) and "error" in body:
        return f"{status} {body['error']['code']}"
    if isinstance(body, dict) and "failed" in body:
        codes = sorted({f["error"]["code"] for f in body["failed"]})
        return f"{status} ok={len(body['succeeded'])} failed={','.join(codes)}"
    if isinstance(body, dict) and "items" in body:
        return f"{status} list"
    return str(status)


def scrub(value: Any) -> Any:
    """Drops presigned URLs (fresh on every read) from a response."""
    if isinstance(value, dict):
        return {k: scrub(v) for k, v in value.items() if k not in ("download_url", "expires_in")}
    if isinstance(value, list):
        return [scrub(v) for v in value]
    return value


def snapshot(api: Api, ids: dict[str, str]) -> dict[str, Any]:
    """A's view of its own resources (volatile fields dropped)."""
    paths = [
        f"/api/datasets/{ids['dataset']}",
        f"/api/datasets/{ids['dataset']}/chunks",
        f"/api/conversations?dataset_id={ids['dataset']}",
        *(f"/api/conversations/{ids[k]}" for k in ("conversation", "pending", "spare")),
        f"/api/jobs/{ids['job']}",
        f"/api/jobs?dataset_id={ids['dataset']}",
        f"/api/templates/{ids['template']}",
        f"/api/exports/{ids['export']}",
        f"/api/conversations/coverage-analysis?dataset_id={ids['dataset']}",
        f"/api/conversations/trash?dataset_id={ids['dataset']}",
        f"/api/conversations/calibration?dataset_id={ids['dataset']}",
        "/api/notifications/subscriptions",
        *(f"/api/audit?entity_id={ids[k]}" for k in ("dataset", "conversation", "job", "export")),
    ]
    out: dict[str, Any] = {}
    for path in paths:
        status, body, _ = api.get(path)
        assert status == 200, (path, body)
        out[path] = scrub(body)
    return out


def test_tenant_b_cannot_reach_tenant_a_through_any_route(
    stack: Any, api: Api, api_b: Api, tenant_a: dict[str, str]
) -> None:
    before = snapshot(api, tenant_a)
    b_email = stack.demo_users[1].email
    rows: list[tuple[str, str, str, str, str]] = []
    failures: list[str] = []
    for attack in attacks():
        status, body, _ = attack.call(api_b, tenant_a)
        wrong = judge(attack, status, body, tenant_a)
        nowhere = missing_ids()
        m_status, m_body, _ = attack.call(api_b, nowhere)
        same = shape(status, body) == shape(m_status, m_body)
        if not same:
            wrong = (wrong or "") + f" differs from a missing id ({shape(m_status, m_body)})"
        verdict = "ok" if wrong is None else "FAIL"
        rows.append((attack.route, attack.kind, attack.expect, shape(status, body), f"{verdict}"))
        if wrong:
            failures.append(f"{attack.route}: {wrong}")

    # The matrix (pytest -s shows it).
    widths = [max(len(r[i]) for r in [*rows, HEADER]) for i in range(5)]
    print("\nTenant isolation matrix: tenant B -> tenant A's ids (and a missing id: same answer)")
    for r in [HEADER, tuple("-" * w for w in widths), *rows]:
        print("  " + "  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)))
    print(f"  {len(rows)} attacks, {len(failures)} failures")

    assert not failures, "\n".join(failures)
    assert len({r[0].split(" (")[0].split("?")[0] for r in rows}) >= 36

    # Nothing of A changed, and A's trail holds nothing done by B.
    after = snapshot(api, tenant_a)
    for path in before:
        assert after[path] == before[path], path
    status, by_b, _ = api.get(f"/api/audit?actor={b_email}&limit=1000")
    assert status == 200 and by_b["items"] == [], by_b
    status, everything, _ = api.get("/api/audit?limit=1000")
    assert all(e.get("actor") != b_email for e in everything["items"])
    # ...while B's own calls do work (the 404s above are not a broken route).
    status, own, _ = api_b.post("/api/datasets", {"name": "Northwind own"})
    assert status == 201 and api_b.get(f"/api/datasets/{own['dataset_id']}")[0] == 200
    assert api.get(f"/api/datasets/{own['dataset_id']}")[0] == 404


HEADER = ("route", "A's resource", "expected", "B got", "verdict")


def test_every_documented_route_is_in_the_matrix() -> None:
    """A route added later must be added to the attacks (or listed as needing no id)."""
    from chalicelib.api.openapi import ROUTES

    covered = {a.route.split(" (")[0].split("?")[0] for a in attacks()}
    no_foreign_id = {
        "GET /api/health",
        "GET /api/openapi.json",
        "POST /api/auth/login",
        "POST /api/datasets",  # creates in the caller's own tenant
        "POST /api/datasets/sample",
        "POST /api/templates",
        "POST /api/notifications/subscriptions",
    }
    documented = {f"{r.method} {r.path.replace('{dataset_id}', '{id}')}" for r in ROUTES}
    documented = {
        d.replace("{conversation_id}", "{id}")
        .replace("{job_id}", "{id}")
        .replace("{template_id}", "{id}")
        .replace("{export_id}", "{id}")
        .replace("{fine_tune_id}", "{id}")
        for d in documented
    }
    assert documented - no_foreign_id - covered == set()
