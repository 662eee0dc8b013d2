"""Fine-tuning on Amazon Bedrock from an export, over HTTP against the local stack (moto's
Bedrock, provisioned role from the template): estimate, start, status, history, stop,
audit, tenant isolation, the budget and bad input."""

from __future__ import annotations

from typing import Any

import pytest
from botocore.exceptions import ClientError

from chalicelib.domain.models import Conversation, ConversationStatus, Tier, utcnow

pytestmark = pytest.mark.e2e

SPLIT = {"train": 0.8, "validation": 0.1, "test": 0.1}
PRICE = 0.008  # USD per 1,000 training tokens (config.DEFAULT_FINE_TUNE_PRICES)


def seed(api: Any, tenant: str, name: str, budget: float | None = None, n: int = 30) -> str:
    from chalicelib.bootstrap import get_container
    from chalicelib.store.records import TurnsRecord

    body: dict[str, Any] = {"name": name}
    if budget is not None:
        body["budget_usd"] = budget
    status, ds, _ = api.post("/api/datasets", body)
    assert status == 201, ds
    now = utcnow()
    conversations = []
    for i in range(n):
        conv = Conversation(
            tenant_id=tenant,
            dataset_id=ds["dataset_id"],
            persona="Pre-Retiree" if i % 2 else "Young Professional",
            emotion="Fear",
            topic="Fees",
            intent="Understand",
            tone="Warm",
            tier=Tier.TEMPLATE,
            title=f"{name} {i}",
            status=ConversationStatus.APPROVED,
            quality_score=8.0,
            turn_count=4,
            approved_by="seed@example.com",
            approved_at=now,
        )
        turns = [
            {"turn_number": t + 1, "role": r, "content": f"{name} {i} says something {t}"}
            for t, r in enumerate(["user", "assistant", "user", "assistant"])
        ]
        TurnsRecord(tenant, conv.conversation_id, turns=turns, created_at=now).save()
        conversations.append(conv)
    get_container().conversation_repo.add_planned(conversations)
    return str(ds["dataset_id"])


def export(api: Any, dsid: str, fmt: str = "anthropic", split: Any = SPLIT) -> dict[str, Any]:
    body: dict[str, Any] = {"format": fmt, "filters": {"dataset_id": dsid}}
    if split:
        body["split"] = split
    status, record, _ = api.post("/api/export/conversations", body)
    assert status == 201 and record["status"] == "ready", record
    return record


@pytest.fixture(scope="module")
def tenant(stack: Any) -> str:
    return str(stack.demo_users[0].tenant_id)


@pytest.fixture(scope="module")
def ready(api: Any, tenant: str) -> dict[str, Any]:
    return export(api, seed(api, tenant, "Fine Tune Data", budget=100.0))


def test_a_fine_tune_starts_a_bedrock_job_on_the_train_and_validation_files(
    api: Any, stack: Any, tenant: str, ready: dict[str, Any]
) -> None:
    from chalicelib.bootstrap import get_container

    export_id = ready["export_id"]
    request = {"epochs": 3, "learning_rate_multiplier": 0.5, "batch_size": 8}
    status, estimate, _ = api.post(f"/api/exports/{export_id}/fine-tunes/estimate", request)
    assert status == 200, estimate
    tokens = ready["stats"]["tokens"]["splits"]["train"]["total"]
    assert estimate["estimate"]["training_tokens"] == tokens
    assert estimate["estimate"]["estimated_cost_usd"] == round(tokens * 3 * PRICE / 1000, 4)
    assert estimate["estimate"]["over_budget"] is False

    status, ft, _ = api.post(f"/api/exports/{export_id}/fine-tunes", request)
    assert status == 201, ft
    assert ft["status"] == "InProgress" and ft["job_arn"].endswith(ft["job_name"])
    assert ft["hyperparameters"] == {
        "epochCount": 3,
        "batchSize": 8,
        "learningRateMultiplier": 0.5,
    }
    files = {f["split"]: f for f in ready["files"]}
    assert ft["training_records"] == files["train"]["count"]
    assert ft["validation_records"] == files["validation"]["count"]

    container = get_container()
    bucket = container.settings.export_bucket
    job = container.client("bedrock").get_model_customization_job(jobIdentifier=ft["job_name"])
    prefix = f"s3://{bucket}/exports/{tenant}/{export_id}/"
    assert job["trainingDataConfig"]["s3Uri"] == prefix + files["train"]["filename"]
    assert job["validationDataConfig"]["validators"] == [
        {"s3Uri": prefix + files["validation"]["filename"]}
    ]
    assert job["outputDataConfig"]["s3Uri"] == (
        f"s3://{bucket}/fine-tunes/{tenant}/{ft['fine_tune_id']}/"
    )
    assert job["roleArn"] == stack.outputs["FineTuneRoleArn"]
    assert job["baseModelArn"].endswith("anthropic.claude-3-haiku-20240307-v1:0:200k")
    assert job["hyperParameters"] == {
        "epochCount": "3",
        "batchSize": "8",
        "learningRateMultiplier": "0.5",
    }
    assert job["clientRequestToken"] == ft["fine_tune_id"]

    status, got, _ = api.get(f"/api/fine-tunes/{ft['fine_tune_id']}")
    assert status == 200 and got["status"] == "InProgress" and got["checked_at"], got
    status, listed, _ = api.get("/api/fine-tunes")
    assert status == 200 and ft["fine_tune_id"] in [f["fine_tune_id"] for f in listed["items"]]

    status, stopped, _ = api.post(f"/api/fine-tunes/{ft['fine_tune_id']}/stop")
    assert status == 200 and stopped["status"] == "Stopped", stopped  # moto stops at once
    status, again, _ = api.post(f"/api/fine-tunes/{ft['fine_tune_id']}/stop")
    assert status == 409, again

    status, audit, _ = api.get(f"/api/audit?entity_id={ft['fine_tune_id']}")
    assert status == 200
    actions = sorted(a["action"] for a in audit["items"])
    assert actions == ["fine_tune.create", "fine_tune.status", "fine_tune.stop"], actions
    created = next(a for a in audit["items"] if a["action"] == "fine_tune.create")
    assert created["actor"] == stack.demo_users[0].email
    assert created["after"]["export_id"] == export_id


def test_the_budget_refuses_an_over_budget_fine_tune_unless_confirmed(
    api: Any, tenant: str
) -> None:
    dsid = seed(api, tenant, "Small Budget", budget=0.0001)
    record = export(api, dsid, split=None)  # no split: the one file trains
    status, body, _ = api.post(f"/api/exports/{record['export_id']}/fine-tunes", {"epochs": 10})
    assert status == 409 and body["error"]["code"] == "over_budget", body
    estimate = body["error"]["details"]["estimate"]
    assert estimate["estimated_cost_usd"] > estimate["budget_remaining_usd"]
    status, listed, _ = api.get("/api/fine-tunes")
    assert record["export_id"] not in [f["export_id"] for f in listed["items"]]  # none stored
    status, ft, _ = api.post(
        f"/api/exports/{record['export_id']}/fine-tunes", {"epochs": 10, "confirm": True}
    )
    assert status == 201 and ft["confirmed_over_budget"] is True, ft
    assert ft["validation_file"] is None and ft["training_records"] == 30
    # The started job's estimate counts against what the dataset has left.
    status, again, _ = api.post(
        f"/api/exports/{record['export_id']}/fine-tunes/estimate", {"epochs": 1}
    )
    assert again["estimate"]["committed_fine_tunes_usd"] == ft["estimated_cost_usd"]


@pytest.mark.parametrize(
    ("body", "status"),
    [
        ({"epochs": 11}, 400),
        ({"epochs": 0}, 400),
        ({"learning_rate_multiplier": 0.05}, 400),
        ({"batch_size": 2}, 400),
        ({"base_model": "amazon.titan-text-express-v1"}, 400),
        ({"unknown": 1}, 400),
        ({"custom_model_name": "bad name!"}, 400),
    ],
)
def test_bad_fine_tune_requests_are_rejected(
    api: Any, ready: dict[str, Any], body: dict[str, Any], status: int
) -> None:
    got, answer, _ = api.post(f"/api/exports/{ready['export_id']}/fine-tunes", body)
    assert got == status and set(answer) == {"error"}, answer


def test_only_anthropic_exports_of_one_dataset_fine_tune(api: Any, tenant: str) -> None:
    dsid = seed(api, tenant, "Other Format")
    record = export(api, dsid, fmt="openai")
    status, body, _ = api.post(f"/api/exports/{record['export_id']}/fine-tunes", {})
    assert status == 422 and "anthropic" in body["error"]["message"], body


def test_fine_tunes_are_tenant_isolated(api: Any, api_b: Any, ready: dict[str, Any]) -> None:
    status, ft, _ = api.post(f"/api/exports/{ready['export_id']}/fine-tunes", {})
    assert status == 201, ft
    status, body, _ = api_b.post(f"/api/exports/{ready['export_id']}/fine-tunes", {})
    assert status == 404, body
    status, body, _ = api_b.get(f"/api/fine-tunes/{ft['fine_tune_id']}")
    assert status == 404, body
    status, listed, _ = api_b.get("/api/fine-tunes")
    assert ft["fine_tune_id"] not in [f["fine_tune_id"] for f in listed["items"]]
    status, body, _ = api_b.post(f"/api/fine-tunes/{ft['fine_tune_id']}/stop")
    assert status == 404, body


def test_a_job_bedrock_refuses_is_stored_failed_audited_and_answered_502(
    api: Any, ready: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    from chalicelib.bootstrap import get_container

    service = get_container().fine_tunes

    def refuse(**request: Any) -> str:
        raise ClientError(
            {"Error": {"Code": "ValidationException", "Message": "quota exceeded"}},
            "CreateModelCustomizationJob",
        )

    # Bedrock itself refuses: the adapter turns botocore's error into the service's.
    monkeypatch.setattr(service.customization._client, "create_model_customization_job", refuse)
    status, body, _ = api.post(f"/api/exports/{ready['export_id']}/fine-tunes", {})
    assert status == 502 and "quota exceeded" in body["error"]["message"], body
    fine_tune_id = body["error"]["details"]["fine_tune_id"]
    status, ft, _ = api.get(f"/api/fine-tunes/{fine_tune_id}")
    assert status == 200 and ft["status"] == "SubmitFailed", ft
    assert "quota exceeded" in ft["failure_message"]
    status, audit, _ = api.get(f"/api/audit?entity_id={fine_tune_id}")
    assert [a["action"] for a in audit["items"]] == ["fine_tune.failed"]
