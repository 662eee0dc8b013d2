"""Builds clients, repositories and services once per container (lazily, thread-safe).

Nothing here runs at import time (design rule 2, docs/architecture.md). Tests and the local launcher call
``reset_container()`` after changing the environment.
"""

from __future__ import annotations

import gc
import threading
from functools import cached_property
from typing import Any

import boto3
from botocore.config import Config

from chalicelib.audit.log import AuditLog
from chalicelib.config import Settings, get_settings
from chalicelib.datasets.service import DatasetService
from chalicelib.domain.errors import ValidationError
from chalicelib.domain.ports import TokenCounter
from chalicelib.export.service import ExportService
from chalicelib.export.tokens import AnthropicTokenCounter
from chalicelib.finetune.service import FineTuneService, FineTuneTarget
from chalicelib.generation.concurrency import ConcurrencyControl
from chalicelib.generation.jobs import JobService
from chalicelib.generation.rate_limit import SharedRateLimiter
from chalicelib.generation.requests import GenerationRequests
from chalicelib.generation.service import GenerationService
from chalicelib.generation.templates import TemplateService
from chalicelib.llm.client import AnthropicLLMClient
from chalicelib.notify.service import NotificationService
from chalicelib.notify.sns import Notifier
from chalicelib.quality.duplicates import DatasetDuplicates
from chalicelib.quality.judging import JudgeService
from chalicelib.quality.service import QualityService
from chalicelib.readmodel.listing import ConversationIndex
from chalicelib.review.service import ReviewService
from chalicelib.store.bedrock import BedrockCustomization
from chalicelib.store.cognito import CognitoPasswordAuth
from chalicelib.store.export_source import DynamoExportSource
from chalicelib.store.judgements import DynamoJudgementCache
from chalicelib.store.list_snapshots import S3ListSnapshots
from chalicelib.store.records import configure_records
from chalicelib.store.repositories import (
    DynamoAuditRepository,
    DynamoConcurrencyStore,
    DynamoConversationRepository,
    DynamoDatasetPurger,
    DynamoDatasetRepository,
    DynamoExportRepository,
    DynamoFineTuneRepository,
    DynamoGenerationLogRepository,
    DynamoJobRepository,
    DynamoNotificationRepository,
    DynamoRateLimitStore,
    DynamoTemplateRepository,
)
from chalicelib.store.work_items import S3WorkItems


class Container:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self._lock = threading.RLock()
        configure_records(settings.table, settings.region, settings.aws_endpoint_url)

    # ------------------------------------------------------------------ AWS clients
    def client(self, service: str) -> Any:
        with self._lock:
            return boto3.client(
                service,  # type: ignore[call-overload]
                region_name=self.settings.region,
                endpoint_url=self.settings.aws_endpoint_url,
                config=Config(
                    retries={"max_attempts": 5, "mode": "standard"}, max_pool_connections=50
                ),
            )

    @cached_property
    def s3(self) -> Any:
        return self.client("s3")

    @cached_property
    def sns(self) -> Any:
        return self.client("sns")

    @cached_property
    def sfn(self) -> Any:
        return self.client("stepfunctions")

    @cached_property
    def lambda_client(self) -> Any:
        return self.client("lambda")

    # ------------------------------------------------------------------ repositories
    @cached_property
    def dataset_repo(self) -> DynamoDatasetRepository:
        return DynamoDatasetRepository()

    @cached_property
    def conversation_repo(self) -> DynamoConversationRepository:
        return DynamoConversationRepository(self.dataset_repo)

    @cached_property
    def job_repo(self) -> DynamoJobRepository:
        return DynamoJobRepository()

    @cached_property
    def audit_repo(self) -> DynamoAuditRepository:
        return DynamoAuditRepository()

    @cached_property
    def export_repo(self) -> DynamoExportRepository:
        return DynamoExportRepository()

    @cached_property
    def notification_repo(self) -> DynamoNotificationRepository:
        return DynamoNotificationRepository()

    @cached_property
    def log_repo(self) -> DynamoGenerationLogRepository:
        return DynamoGenerationLogRepository()

    @cached_property
    def template_repo(self) -> DynamoTemplateRepository:
        return DynamoTemplateRepository()

    # ------------------------------------------------------------------ LLM
    def anthropic_api_key(self) -> str:
        s = self.settings
        if s.anthropic_api_key:
            return s.anthropic_api_key
        if s.anthropic_secret_id and s.llm_mode == "anthropic":
            secret = self.client("secretsmanager").get_secret_value(SecretId=s.anthropic_secret_id)
            return str(secret["SecretString"]).strip()
        return "simulator-no-key"

    @cached_property
    def llm(self) -> AnthropicLLMClient:
        s = self.settings
        if s.llm_mode == "simulator" and not s.anthropic_base_url:
            raise ValidationError(
                "no ANTHROPIC_API_KEY and no simulator: start the local stack with `make dev`"
            )
        return AnthropicLLMClient(
            api_key=self.anthropic_api_key(),
            base_url=s.anthropic_base_url,
            timeout=s.llm_timeout_seconds,
            max_retries=s.llm_sdk_retries,
        )

    @cached_property
    def identity(self) -> CognitoPasswordAuth:
        s = self.settings
        return CognitoPasswordAuth(
            s.cognito_region or s.region, s.aws_endpoint_url, s.cognito_client_id
        )

    # ------------------------------------------------------------------ services
    @cached_property
    def audit(self) -> AuditLog:
        return AuditLog(self.audit_repo)

    @cached_property
    def notifier(self) -> Notifier:
        return Notifier(self.sns, self.settings.topic_arn, self.notification_repo)

    @cached_property
    def notifications(self) -> NotificationService:
        return NotificationService(self.notifier, self.notification_repo, self.audit)

    @cached_property
    def index(self) -> ConversationIndex:
        s = self.settings
        return ConversationIndex(
            self.dataset_repo,
            self.conversation_repo,
            s.cursor_key(),
            snapshots=S3ListSnapshots(self.s3, s.export_bucket) if s.list_snapshots else None,
            snapshot_min_rows=s.list_snapshot_min_rows,
        )

    @cached_property
    def templates(self) -> TemplateService:
        return TemplateService(
            self.template_repo,
            self.audit,
            lambda tenant_id: self.index.tenant_conversations(tenant_id),
        )

    @cached_property
    def datasets(self) -> DatasetService:
        return DatasetService(
            self.dataset_repo,
            self.conversation_repo,
            self.audit,
            self.index,
            known_models=tuple(self.settings.prices),
            jobs=self.job_repo,
            purger=DynamoDatasetPurger(),
            templates=self.templates,
        )

    @cached_property
    def duplicates(self) -> DatasetDuplicates:
        return DatasetDuplicates(self.index)

    @cached_property
    def judge(self) -> JudgeService:
        # Through the generation service's client: one provider connection and its limits.
        return JudgeService(
            self.settings,
            lambda request: self.generation.llm.create(request),
            DynamoJudgementCache(),
            self.job_repo,
        )

    @cached_property
    def quality(self) -> QualityService:
        return QualityService(
            self.dataset_repo,
            self.conversation_repo,
            self.duplicates.find,
            self.audit,
            self.judge,
            self.index,
        )

    @cached_property
    def generation(self) -> GenerationService:
        return GenerationService(
            settings=self.settings,
            llm=self.llm,
            datasets=self.dataset_repo,
            conversations=self.conversation_repo,
            jobs=self.job_repo,
            templates=self.templates,
            limiter=SharedRateLimiter(DynamoRateLimitStore()),
            notifier=self.notifier,
            audit=self.audit,
            duplicate_finder=self.duplicates.find,
            judge=self.judge,
            logs=self.log_repo,
            concurrency=self.concurrency,
        )

    @cached_property
    def concurrency(self) -> ConcurrencyControl:
        return ConcurrencyControl(self.settings, DynamoConcurrencyStore())

    @cached_property
    def jobs(self) -> JobService:
        return JobService(
            settings=self.settings,
            sfn=self.sfn,
            state_machine_arn=self.settings.state_machine_arn,
            datasets=self.dataset_repo,
            conversations=self.conversation_repo,
            jobs=self.job_repo,
            generation=self.generation,
            notifier=self.notifier,
            audit=self.audit,
            conversation_source=self.index,
            concurrency=self.concurrency,
            work_items=S3WorkItems(self.s3, self.settings.export_bucket),
        )

    @cached_property
    def generation_requests(self) -> GenerationRequests:
        return GenerationRequests(
            self.jobs, self.dataset_repo, self.job_repo, self.index, self.review
        )

    @cached_property
    def review(self) -> ReviewService:
        return ReviewService(
            self.dataset_repo,
            self.conversation_repo,
            self.log_repo,
            self.audit_repo,
            self.audit,
            self.index,
        )

    def _run_export_async(self, tenant_id: str, export_id: str) -> None:
        import json

        self.lambda_client.invoke(
            FunctionName=self.settings.run_export_function,
            InvocationType="Event",
            Payload=json.dumps({"tenant_id": tenant_id, "export_id": export_id}).encode(),
        )

    @cached_property
    def exports(self) -> ExportService:
        return ExportService(
            s3=self.s3,
            bucket=self.settings.export_bucket,
            presign_seconds=self.settings.presign_seconds,
            datasets=self.dataset_repo,
            exports=self.export_repo,
            source=DynamoExportSource(),
            audit=self.audit,
            run_async=self._run_export_async,
            token_counter=self.token_counter,
            bedrock_role_arn=self.settings.fine_tune_role_arn,
        )

    @cached_property
    def fine_tune_repo(self) -> DynamoFineTuneRepository:
        return DynamoFineTuneRepository()

    @cached_property
    def bedrock(self) -> Any:
        return self.client("bedrock")

    @cached_property
    def fine_tunes(self) -> FineTuneService:
        s = self.settings
        return FineTuneService(
            exports=self.export_repo,
            datasets=self.dataset_repo,
            fine_tunes=self.fine_tune_repo,
            customization=BedrockCustomization(self.bedrock),
            audit=self.audit,
            target=FineTuneTarget(
                stage=s.stage,
                role_arn=s.fine_tune_role_arn,
                data_bucket=s.export_bucket,
                output_bucket=s.fine_tune_output_bucket or s.export_bucket,
                prices=s.fine_tune_prices,
            ),
        )

    @cached_property
    def token_counter(self) -> TokenCounter | None:
        """Anthropic's count_tokens when Claude is configured; None (the stated
        approximation) with the simulator."""
        s = self.settings
        if s.llm_mode != "anthropic":
            return None
        import anthropic

        client = anthropic.Anthropic(
            api_key=self.anthropic_api_key(),
            base_url=s.anthropic_base_url,
            timeout=10.0,
            max_retries=1,
        )
        return AnthropicTokenCounter(client, s.model)


_container: Container | None = None
_container_lock = threading.Lock()


def get_container() -> Container:
    global _container
    if _container is None:
        with _container_lock:
            if _container is None:
                _container = Container(get_settings())
                # The end of a Lambda's init: modules, models and the DynamoDB client
                # live as long as the process. Frozen, they are out of the way of every
                # later full garbage collection (each walked ~240,000 objects: 0.15 s
                # per collection, twice per export of 10,000 conversations).
                gc.freeze()
    return _container


def reset_container() -> None:
    global _container
    with _container_lock:
        _container = None
        # The old container was frozen with the init-phase objects: hand it back to the
        # collector (its clients hold reference cycles). The next build freezes again.
        gc.unfreeze()
