"""Fine-tune on Amazon Bedrock from an export: estimate, budget check, start, follow.

``start`` takes an export of the anthropic format (Bedrock's format for Claude: one
``{"system", "messages"}`` record per line), its train file and, with a split, its
validation file, and starts a model customization job that reads them from the export
bucket with the customization role of the template, writing its output under
``fine-tunes/<tenant>/<fine-tune id>/``. The training cost (training tokens x epochs x
the dated price per 1,000 tokens) is checked against what the dataset has left: its
budget less generation spend and the estimates of its earlier fine-tunes. Over it, the
request is refused (409 ``over_budget``) unless it says ``confirm``.

Every start, refusal by Bedrock and status change is audited. A job is stored before
Bedrock is called (``Submitting``), with its id as Bedrock's ``clientRequestToken``, so a
retried call never starts a second job and a crash leaves a record saying so.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from chalicelib.domain.errors import (
    BudgetExceededError,
    ConflictError,
    OutsideServiceError,
    UnprocessableError,
    UpstreamServiceError,
    ValidationError,
)
from chalicelib.domain.finetune import (
    TERMINAL,
    UNBILLED,
    hyperparameters,
    remaining_budget,
    resource_name,
    training_cost,
)
from chalicelib.domain.models import (
    ExportFormat,
    ExportRecord,
    ExportStatus,
    FineTune,
    FineTuneStatus,
    utcnow,
)
from chalicelib.domain.ports import (
    AuditTrail,
    DatasetReader,
    ExportReader,
    FineTuneStore,
    ModelCustomization,
)
from chalicelib.export.trainers import BEDROCK_BASE_MODEL, bedrock_job

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class FineTuneTarget:
    """Where jobs run: the template's customization role and buckets, and the prices."""

    stage: str
    role_arn: str | None
    data_bucket: str
    output_bucket: str
    prices: Mapping[str, float]  # base model id -> USD per 1,000 training tokens


class FineTuneService:
    def __init__(
        self,
        exports: ExportReader,
        datasets: DatasetReader,
        fine_tunes: FineTuneStore,
        customization: ModelCustomization,
        audit: AuditTrail,
        target: FineTuneTarget,
    ) -> None:
        self.exports = exports
        self.datasets = datasets
        self.fine_tunes = fine_tunes
        self.customization = customization
        self.audit = audit
        self.target = target

    # ------------------------------------------------------------------ start
    def start(
        self, tenant_id: str, actor: str, export_id: str, request: Mapping[str, Any]
    ) -> tuple[FineTune | None, dict[str, Any]]:
        """(the started fine-tune, or None for a dry run; the estimate)."""
        export = self.exports.get(tenant_id, export_id)  # 404 for unknown / foreign ids
        base_model = request.get("base_model") or BEDROCK_BASE_MODEL
        if base_model not in self.target.prices:
            raise ValidationError(
                f"base model {base_model!r} cannot be fine-tuned here",
                {"field": "base_model", "allowed": sorted(self.target.prices)},
            )
        params = hyperparameters(
            request.get("epochs"),
            request.get("batch_size"),
            request.get("learning_rate_multiplier"),
        )
        training, validation = self._files(tenant_id, export)
        estimate = self.estimate(tenant_id, export, base_model, params, training)
        if request.get("dry_run"):
            return None, estimate
        if estimate["over_budget"] and not request.get("confirm"):
            raise BudgetExceededError(
                "the estimated training cost exceeds the dataset's remaining budget;"
                " send confirm: true to start anyway",
                {"estimate": estimate},
            )
        if not self.target.role_arn:
            raise UnprocessableError(
                "fine-tuning is not configured: the stack has no Bedrock customization role"
                " (FINE_TUNE_ROLE_ARN)"
            )
        fine_tune = FineTune(
            tenant_id=tenant_id,
            export_id=export_id,
            dataset_id=export.filters.get("dataset_id"),
            base_model=base_model,
            hyperparameters=params,
            training_records=int(training["count"]),
            validation_records=int(validation["count"]) if validation else 0,
            training_tokens=estimate["training_tokens"],
            estimated_cost_usd=estimate["estimated_cost_usd"],
            price_per_1k_tokens_usd=estimate["price_per_1k_tokens_usd"],
            confirmed_over_budget=bool(estimate["over_budget"]),
            created_by=actor,
        )
        name = request.get("custom_model_name") or f"{export_id}-model"
        fine_tune.job_name = resource_name("brightrun", self.target.stage, fine_tune.fine_tune_id)
        fine_tune.custom_model_name = resource_name(name, fine_tune.fine_tune_id)
        fine_tune.training_file = f"s3://{self.target.data_bucket}/{training['key']}"
        fine_tune.validation_file = (
            f"s3://{self.target.data_bucket}/{validation['key']}" if validation else None
        )
        fine_tune.output_uri = (
            f"s3://{self.target.output_bucket}/fine-tunes/{tenant_id}/{fine_tune.fine_tune_id}/"
        )
        self.fine_tunes.save(fine_tune)
        job = bedrock_job(
            job_name=fine_tune.job_name,
            custom_model_name=fine_tune.custom_model_name,
            role_arn=self.target.role_arn,
            base_model=base_model,
            training_uri=fine_tune.training_file,
            validation_uri=fine_tune.validation_file,
            output_uri=fine_tune.output_uri,
            hyperparameters=params,
            tags={
                "tenant_id": tenant_id,
                "export_id": export_id,
                "fine_tune_id": fine_tune.fine_tune_id,
            },
            client_request_token=fine_tune.fine_tune_id,
        )
        try:
            fine_tune.job_arn = self.customization.create_job(job)
        except OutsideServiceError as e:
            reason = str(e)
            log.warning("Bedrock refused fine-tune %s: %s", fine_tune.fine_tune_id, reason)
            fine_tune.status = FineTuneStatus.SUBMIT_FAILED
            fine_tune.failure_message = reason[:1000]
            fine_tune.updated_at = utcnow()
            self.fine_tunes.save(fine_tune)
            self.audit.record(
                tenant_id,
                actor,
                "fine_tune.failed",
                "fine_tune",
                fine_tune.fine_tune_id,
                after=self._audit_view(fine_tune),
            )
            raise UpstreamServiceError(
                f"Bedrock did not start the fine-tune: {reason}",
                {"fine_tune_id": fine_tune.fine_tune_id},
            ) from e
        fine_tune.status = FineTuneStatus.IN_PROGRESS
        fine_tune.updated_at = utcnow()
        self.fine_tunes.save(fine_tune)
        self.audit.record(
            tenant_id,
            actor,
            "fine_tune.create",
            "fine_tune",
            fine_tune.fine_tune_id,
            after=self._audit_view(fine_tune),
        )
        return fine_tune, estimate

    def _files(
        self, tenant_id: str, export: ExportRecord
    ) -> tuple[dict[str, Any], dict[str, Any] | None]:
        if export.status != ExportStatus.READY:
            raise ConflictError(
                f"the export is {export.status.value}: fine-tune a ready export",
                {"export_id": export.export_id, "status": export.status.value},
            )
        if export.format != ExportFormat.ANTHROPIC:
            raise UnprocessableError(
                "Bedrock fine-tunes Claude from anthropic-format files: export the"
                f" conversations as anthropic (this export is {export.format.value})",
                {"format": export.format.value},
            )
        if not export.filters.get("dataset_id"):
            raise UnprocessableError(
                "fine-tune an export of one dataset: its budget pays for the training"
            )
        by_split = {f.get("split"): f for f in export.files}
        training = by_split.get("train") or by_split.get(None)
        validation = by_split.get("validation")
        prefix = f"exports/{tenant_id}/{export.export_id}/"
        for f in (training, validation):
            if f is not None and not str(f.get("key", "")).startswith(prefix):
                raise ConflictError("the export's files are not where they belong")
        if training is None or not training.get("count"):
            raise UnprocessableError("the export has no training records")
        return training, validation

    def estimate(
        self,
        tenant_id: str,
        export: ExportRecord,
        base_model: str,
        params: Mapping[str, float],
        training: Mapping[str, Any],
    ) -> dict[str, Any]:
        tokens_stats = (export.stats.get("tokens") or {}).get("splits") or {}
        split = training.get("split") or "all"
        tokens = (tokens_stats.get(split) or {}).get("total")
        if tokens is None:
            raise UnprocessableError(
                "the export has no token counts (it predates them): export again to fine-tune"
            )
        price = float(self.target.prices[base_model])
        epochs = int(params["epochCount"])
        cost = training_cost(int(tokens), epochs, price)
        dataset_id = export.filters.get("dataset_id")
        budget = spent = None
        committed = 0.0
        if dataset_id:
            dataset = self.datasets.get(tenant_id, dataset_id)
            budget, spent = dataset.budget_usd, dataset.spent_usd
            committed = sum(
                f.estimated_cost_usd
                for f in self.fine_tunes.list_all(tenant_id)
                if f.dataset_id == dataset_id and f.status not in UNBILLED
            )
        left = remaining_budget(budget, spent or 0.0, committed)
        return {
            "base_model": base_model,
            "hyperparameters": dict(params),
            "training_tokens": int(tokens),
            "epochs": epochs,
            "price_per_1k_tokens_usd": price,
            "estimated_cost_usd": cost,
            "formula": "training tokens x epochs x price per 1,000 tokens / 1,000",
            "tokenizer": (export.stats.get("tokens") or {}).get("tokenizer"),
            "budget_usd": budget,
            "spent_usd": spent,
            "committed_fine_tunes_usd": round(committed, 4),
            "budget_remaining_usd": left,
            "over_budget": left is not None and cost > left,
        }

    # ------------------------------------------------------------------ follow
    def get(self, tenant_id: str, fine_tune_id: str, actor: str = "system") -> FineTune:
        """The fine-tune, its status refreshed from Bedrock while it is not finished."""
        return self._refresh(self.fine_tunes.get(tenant_id, fine_tune_id), actor)

    def history(self, tenant_id: str, actor: str = "system") -> list[FineTune]:
        return [self._refresh(f, actor) for f in self.fine_tunes.list_all(tenant_id)]

    def stop(self, tenant_id: str, actor: str, fine_tune_id: str) -> FineTune:
        fine_tune = self._refresh(self.fine_tunes.get(tenant_id, fine_tune_id), actor)
        if fine_tune.status in TERMINAL or fine_tune.job_arn is None:
            raise ConflictError(
                f"the fine-tune is {fine_tune.status.value}: only a running one can be stopped"
            )
        try:
            self.customization.stop_job(fine_tune.job_name)
        except OutsideServiceError as e:
            raise UpstreamServiceError(f"Bedrock did not stop the job: {e!s}") from e
        before = fine_tune.status
        fine_tune.status = FineTuneStatus.STOPPING
        fine_tune.updated_at = utcnow()
        self.fine_tunes.save(fine_tune)
        self.audit.record(
            tenant_id,
            actor,
            "fine_tune.stop",
            "fine_tune",
            fine_tune_id,
            before={"status": before.value},
            after={"status": fine_tune.status.value},
        )
        return self._refresh(fine_tune, actor)

    def _refresh(self, fine_tune: FineTune, actor: str) -> FineTune:
        if fine_tune.status in TERMINAL or fine_tune.job_arn is None:
            return fine_tune
        try:
            job = self.customization.get_job(fine_tune.job_name)
        except OutsideServiceError as e:  # keep the last known state; say why
            log.warning("could not read fine-tune %s: %s", fine_tune.fine_tune_id, str(e))
            return fine_tune
        fine_tune.checked_at = utcnow()
        try:
            status = FineTuneStatus(job.get("status", fine_tune.status.value))
        except ValueError:
            status = fine_tune.status
        if status == fine_tune.status:
            return fine_tune
        before = fine_tune.status
        fine_tune.status = status
        if status == FineTuneStatus.FAILED:
            fine_tune.failure_message = str(job.get("failureMessage") or "")[:1000] or None
        fine_tune.output_model_arn = job.get("outputModelArn") or fine_tune.output_model_arn
        fine_tune.updated_at = utcnow()
        self.fine_tunes.save(fine_tune)
        self.audit.record(
            fine_tune.tenant_id,
            actor,
            "fine_tune.status",
            "fine_tune",
            fine_tune.fine_tune_id,
            before={"status": before.value},
            after={"status": status.value, "failure_message": fine_tune.failure_message},
        )
        return fine_tune

    @staticmethod
    def _audit_view(fine_tune: FineTune) -> dict[str, Any]:
        return fine_tune.model_dump(
            mode="json",
            include={
                "export_id",
                "dataset_id",
                "base_model",
                "hyperparameters",
                "job_name",
                "job_arn",
                "status",
                "failure_message",
                "training_file",
                "validation_file",
                "output_uri",
                "training_tokens",
                "estimated_cost_usd",
                "confirmed_over_budget",
            },
        )
