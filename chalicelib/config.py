"""Settings from the environment, read once and lazily (never at import time)."""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

# Table logical names -> environment variable that carries the physical name in the cloud.
TABLES: dict[str, str] = {
    "datasets": "DATASETS_TABLE",
    "chunks": "CHUNKS_TABLE",
    "conversations": "CONVERSATIONS_TABLE",
    "turns": "TURNS_TABLE",
    "conversation_versions": "CONVERSATION_VERSIONS_TABLE",
    "jobs": "JOBS_TABLE",
    "job_items": "JOB_ITEMS_TABLE",
    "generation_logs": "GENERATION_LOGS_TABLE",
    "templates": "TEMPLATES_TABLE",
    "template_versions": "TEMPLATE_VERSIONS_TABLE",
    "exports": "EXPORTS_TABLE",
    "audit": "AUDIT_TABLE",
    "notifications": "NOTIFICATIONS_TABLE",
    "rate_limits": "RATE_LIMITS_TABLE",
    "fine_tunes": "FINE_TUNES_TABLE",
}


@dataclass(frozen=True)
class ModelPrice:
    """USD per million tokens. Batch discount applies to input and output (Batches API)."""

    input: float
    output: float
    cache_write: float
    cache_read: float
    batch_discount: float = 0.5


# Dated price table (USD / MTok), overridable with MODEL_PRICES_JSON without a code change.
PRICES_AS_OF = "2026-11-01"
DEFAULT_PRICES: dict[str, ModelPrice] = {
    "claude-sonnet-5": ModelPrice(3.0, 15.0, 3.75, 0.30),
    "claude-sonnet-4-6": ModelPrice(3.0, 15.0, 3.75, 0.30),
    "claude-sonnet-4-5": ModelPrice(3.0, 15.0, 3.75, 0.30),
    "claude-opus-4-6": ModelPrice(5.0, 25.0, 6.25, 0.50),
    "claude-haiku-4-5": ModelPrice(1.0, 5.0, 1.25, 0.10),
}
DEFAULT_MODEL = "claude-sonnet-4-6"

# Largest ``max_tokens`` each model accepts (its output limit, same date as the prices),
# overridable with MODEL_OUTPUT_LIMITS_JSON. A truncated answer is retried with a larger
# ``max_tokens``, never above this.
DEFAULT_OUTPUT_LIMITS: dict[str, int] = {
    "claude-sonnet-5": 128_000,
    "claude-sonnet-4-6": 128_000,
    "claude-sonnet-4-5": 64_000,
    "claude-opus-4-6": 128_000,
    "claude-haiku-4-5": 64_000,
}
FALLBACK_OUTPUT_LIMIT = 64_000  # a model missing from the table

# Bedrock model customization: USD per 1,000 training tokens (tokens x epochs), as the
# Amazon Bedrock pricing page lists it for Claude 3 Haiku fine-tuning (checked
# FINE_TUNE_PRICES_AS_OF); FINE_TUNE_PRICES_JSON overrides it, {"<base model id>": price}.
FINE_TUNE_PRICES_AS_OF = "2026-11-01"
DEFAULT_FINE_TUNE_PRICES: dict[str, float] = {
    "anthropic.claude-3-haiku-20240307-v1:0:200k": 0.008,
}


@dataclass(frozen=True)
class Settings:
    stage: str = "local"
    region: str = "us-east-1"
    aws_endpoint_url: str | None = None
    table_prefix: str = "brightrun-local"
    table_names: Mapping[str, str] = field(default_factory=dict)
    export_bucket: str = "brightrun-local-exports"
    topic_arn: str | None = None
    state_machine_arn: str | None = None
    app_base_url: str = "http://127.0.0.1:8000"
    # LLM
    anthropic_api_key: str | None = None
    anthropic_base_url: str | None = None
    anthropic_secret_id: str | None = None
    llm_mode: str = "simulator"  # "anthropic" | "simulator"
    model: str = DEFAULT_MODEL
    temperature: float = 0.5
    max_tokens: int = 4096
    llm_timeout_seconds: float = 120.0
    llm_sdk_retries: int = 2
    # The LLM judge scores every generated conversation (a small model keeps it cheap).
    judge_model: str = "claude-haiku-4-5"
    judge_enabled: bool = True
    prices: Mapping[str, ModelPrice] = field(default_factory=lambda: dict(DEFAULT_PRICES))
    output_limits: Mapping[str, int] = field(default_factory=lambda: dict(DEFAULT_OUTPUT_LIMITS))
    # Provider limits, per tenant and model (stated by the account's tier: configuration)
    rate_limit_rpm: int = 50
    rate_limit_otpm: int = 80_000
    # Seconds' worth of calls a job that fits in a minute's allowance may start at once.
    rate_limit_burst_seconds: float = 10.0
    # A cap on calls in flight for requests that name none (None: the adaptive target,
    # domain/concurrency.py, alone decides).
    default_max_concurrency: int | None = None
    # The most calls in flight across a tenant's jobs: GenerateItem's reserved
    # concurrency (the template passes GenerationReservedConcurrency).
    generation_max_in_flight: int = 100
    # Executions with at least this many items run them as a Distributed Map (child
    # executions, items and results in S3); smaller ones as the inline Map.
    distributed_map_min_items: int = 40
    # Items per execution with the Distributed Map (each execution re-plans its
    # concurrency from what the last one observed).
    distributed_chunk_size: int = 2500
    # A dataset of this many conversations keeps a snapshot of its list index in S3, so a
    # cold API container starts from it instead of reading the whole dataset.
    list_snapshots: bool = True
    list_snapshot_min_rows: int = 5_000
    # The first wait of the provider circuit breaker (doubling per opening).
    breaker_cooldown_seconds: float = 15.0
    # Attempts per conversation, malformed and truncated answers included: with one
    # answer in five unusable, 3 attempts lose ~0.8% of conversations, 5 lose ~0.03%
    # (a retry is only paid for when the answer before it was unusable anyway).
    default_max_attempts: int = 5
    # Abuse limits
    max_body_bytes: int = 1_048_576
    max_bulk_ids: int = 500
    max_job_conversations: int = 10_000
    max_active_jobs_per_tenant: int = 3
    expensive_route_rpm: int = 30
    # Step Functions chunking: one execution handles at most this many items, then
    # continues as a new execution (keeps history far below 25,000 events).
    execution_chunk_size: int = 250
    batch_poll_seconds: int = 30
    # Jobs whose execution died are resumed by a periodic check (cloud: a schedule;
    # locally: the launcher). A job younger than the grace period is left alone (its
    # first execution may still be starting).
    stalled_check_seconds: float = 60.0
    stalled_grace_seconds: float = 60.0
    presign_seconds: int = 900
    # The export worker the API invokes for large exports (the template passes its ARN).
    run_export_function: str = "run_export"
    # Signs list cursors (HMAC); None: a secret derived per stage (see cursor_key).
    cursor_secret: str | None = None
    auth_mode: str = "none"  # "cognito" | "none" (local dev default; tests use cognito)
    default_tenant: str = "tenant-demo"
    cognito_user_pool_id: str | None = None
    cognito_client_id: str | None = None
    cognito_region: str | None = None
    cognito_jwks_url: str | None = None
    cognito_issuer: str | None = None
    # The local stack's demo sign-ins, shown on its sign-in screen (never set in the cloud).
    demo_users: tuple[dict[str, str], ...] = ()
    data_dir: Path = Path(".data")
    # Fine-tuning on Amazon Bedrock: the service role Bedrock assumes to read the
    # training files and write its output (infra/build.py), and where that output goes.
    fine_tune_role_arn: str | None = None
    fine_tune_output_bucket: str | None = None  # default: the export bucket
    fine_tune_prices: Mapping[str, float] = field(
        default_factory=lambda: dict(DEFAULT_FINE_TUNE_PRICES)
    )

    def cursor_key(self) -> bytes:
        """The list cursors' HMAC key: CURSOR_SECRET, or one derived from the stage and
        table prefix (stable across containers of one stage; docs/security.md)."""
        if self.cursor_secret:
            return self.cursor_secret.encode()
        derived = f"brightrun-cursor-{self.stage}-{self.table_prefix}"
        return hashlib.sha256(derived.encode()).hexdigest().encode()

    def table(self, logical: str) -> str:
        return self.table_names.get(logical) or f"{self.table_prefix}-{logical}"

    def price(self, model: str) -> ModelPrice:
        if model in self.prices:
            return self.prices[model]
        # Dated ids (e.g. claude-sonnet-4-5-20250929) price as their family alias.
        for name, price in self.prices.items():
            if model.startswith(name):
                return price
        return self.prices.get(DEFAULT_MODEL, DEFAULT_PRICES[DEFAULT_MODEL])

    def output_limit(self, model: str) -> int:
        """The model's largest ``max_tokens`` (dated ids match their family alias)."""
        if model in self.output_limits:
            return self.output_limits[model]
        for name, limit in sorted(self.output_limits.items(), key=lambda kv: -len(kv[0])):
            if model.startswith(name):
                return limit
        return FALLBACK_OUTPUT_LIMIT


def _float(env: Mapping[str, str], key: str, default: float) -> float:
    return float(env[key]) if env.get(key) else default


def _int(env: Mapping[str, str], key: str, default: int) -> int:
    return int(env[key]) if env.get(key) else default


def load_settings(env: Mapping[str, str] | None = None) -> Settings:
    env = os.environ if env is None else env
    prices = dict(DEFAULT_PRICES)
    if env.get("MODEL_PRICES_JSON"):
        for name, p in json.loads(env["MODEL_PRICES_JSON"]).items():
            prices[name] = ModelPrice(**p)
    output_limits = dict(DEFAULT_OUTPUT_LIMITS)
    if env.get("MODEL_OUTPUT_LIMITS_JSON"):
        output_limits.update(
            {name: int(v) for name, v in json.loads(env["MODEL_OUTPUT_LIMITS_JSON"]).items()}
        )
    key = env.get("ANTHROPIC_API_KEY") or None
    base_url = env.get("ANTHROPIC_BASE_URL") or None
    secret_id = env.get("ANTHROPIC_SECRET_ID") or None
    real = bool(key or secret_id) and not env.get("LLM_FORCE_SIMULATOR")
    return Settings(
        stage=env.get("STAGE", "local"),
        region=env.get("AWS_REGION") or env.get("AWS_DEFAULT_REGION") or "us-east-1",
        aws_endpoint_url=env.get("AWS_ENDPOINT_URL") or None,
        table_prefix=env.get("TABLE_PREFIX", "brightrun-local"),
        table_names={k: env[v] for k, v in TABLES.items() if env.get(v)},
        export_bucket=env.get("EXPORT_BUCKET", "brightrun-local-exports"),
        topic_arn=env.get("NOTIFICATION_TOPIC_ARN") or None,
        state_machine_arn=env.get("STATE_MACHINE_ARN") or None,
        app_base_url=env.get("APP_BASE_URL", "http://127.0.0.1:8000"),
        anthropic_api_key=key,
        anthropic_base_url=base_url,
        anthropic_secret_id=secret_id,
        llm_mode="anthropic" if real else "simulator",
        model=env.get("ANTHROPIC_MODEL", DEFAULT_MODEL),
        temperature=_float(env, "LLM_TEMPERATURE", 0.5),
        max_tokens=_int(env, "LLM_MAX_TOKENS", 4096),
        llm_timeout_seconds=_float(env, "LLM_TIMEOUT_SECONDS", 120.0),
        llm_sdk_retries=_int(env, "LLM_SDK_RETRIES", 2),
        judge_model=env.get("JUDGE_MODEL", "claude-haiku-4-5"),
        judge_enabled=env.get("JUDGE_ENABLED", "1").lower() not in ("0", "false", "no", "off"),
        prices=prices,
        output_limits=output_limits,
        rate_limit_rpm=_int(env, "RATE_LIMIT_RPM", 50),
        rate_limit_otpm=_int(env, "RATE_LIMIT_OTPM", 80_000),
        rate_limit_burst_seconds=max(0.0, _float(env, "RATE_LIMIT_BURST_SECONDS", 10.0)),
        default_max_concurrency=_int(env, "DEFAULT_MAX_CONCURRENCY", 0) or None,
        generation_max_in_flight=max(1, _int(env, "GENERATION_MAX_IN_FLIGHT", 100)),
        distributed_map_min_items=_int(env, "DISTRIBUTED_MAP_MIN_ITEMS", 40),
        distributed_chunk_size=max(1, _int(env, "DISTRIBUTED_CHUNK_SIZE", 2500)),
        list_snapshots=env.get("LIST_SNAPSHOTS", "1").lower() not in ("0", "false", "no", "off"),
        list_snapshot_min_rows=max(1, _int(env, "LIST_SNAPSHOT_MIN_ROWS", 5_000)),
        breaker_cooldown_seconds=_float(env, "PROVIDER_BREAKER_COOLDOWN_SECONDS", 15.0),
        default_max_attempts=_int(env, "DEFAULT_MAX_ATTEMPTS", 5),
        max_body_bytes=_int(env, "MAX_BODY_BYTES", 1_048_576),
        max_bulk_ids=_int(env, "MAX_BULK_IDS", 500),
        max_job_conversations=_int(env, "MAX_JOB_CONVERSATIONS", 10_000),
        max_active_jobs_per_tenant=_int(env, "MAX_ACTIVE_JOBS_PER_TENANT", 3),
        expensive_route_rpm=_int(env, "EXPENSIVE_ROUTE_RPM", 30),
        execution_chunk_size=_int(env, "EXECUTION_CHUNK_SIZE", 250),
        batch_poll_seconds=_int(env, "BATCH_POLL_SECONDS", 30),
        stalled_check_seconds=_float(env, "STALLED_JOB_CHECK_SECONDS", 60.0),
        stalled_grace_seconds=_float(env, "STALLED_JOB_GRACE_SECONDS", 60.0),
        presign_seconds=min(_int(env, "PRESIGN_SECONDS", 900), 900),
        run_export_function=env.get("RUN_EXPORT_FUNCTION") or "run_export",
        cursor_secret=env.get("CURSOR_SECRET") or None,
        auth_mode=env.get("AUTH_MODE", "none"),
        default_tenant=env.get("DEFAULT_TENANT", "tenant-demo"),
        cognito_user_pool_id=env.get("COGNITO_USER_POOL_ID") or None,
        cognito_client_id=env.get("COGNITO_CLIENT_ID") or None,
        cognito_region=env.get("COGNITO_REGION") or None,
        cognito_jwks_url=env.get("COGNITO_JWKS_URL") or None,
        cognito_issuer=env.get("COGNITO_ISSUER") or None,
        demo_users=tuple(json.loads(env["LOCAL_DEMO_USERS"]))
        if env.get("LOCAL_DEMO_USERS") and env.get("STAGE", "local") == "local"
        else (),
        data_dir=Path(env.get("BRIGHTRUN_DATA_DIR", ".data")),
        fine_tune_role_arn=env.get("FINE_TUNE_ROLE_ARN") or None,
        fine_tune_output_bucket=env.get("FINE_TUNE_OUTPUT_BUCKET") or None,
        fine_tune_prices={
            **DEFAULT_FINE_TUNE_PRICES,
            **{
                str(k): float(v)
                for k, v in json.loads(env.get("FINE_TUNE_PRICES_JSON") or "{}").items()
            },
        },
    )


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    return load_settings()


def reset_settings() -> None:
    """Tests and the local launcher change the environment, then call this."""
    get_settings.cache_clear()
