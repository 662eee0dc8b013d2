"""Domain models: the product's nouns, free of AWS and HTTP concerns.

Three kinds of model are kept apart (design rule 3, docs/architecture.md): API schemas live in
``chalicelib.api.schemas``, pynamodb records in ``chalicelib.store.records``, and
these pydantic models are what services pass around.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any, Literal, NamedTuple

from pydantic import BaseModel, ConfigDict, Field, field_validator

FLAG_THRESHOLD = 6.0  # quality_score below this flags a conversation for review


def utcnow() -> datetime:
    return datetime.now(UTC)


def new_id(prefix: str) -> str:
    """Short, URL-safe, sortable-enough ids such as ``conv_3f9a...``."""
    return f"{prefix}_{uuid.uuid4().hex[:20]}"


class Tier(StrEnum):
    TEMPLATE = "template"
    SCENARIO = "scenario"
    EDGE_CASE = "edge_case"


class ConversationStatus(StrEnum):
    NOT_GENERATED = "not_generated"
    GENERATING = "generating"
    GENERATED = "generated"
    APPROVED = "approved"
    REJECTED = "rejected"
    FAILED = "failed"


# Statuses from which a generation job may (re)generate a conversation.
GENERATABLE_STATUSES = frozenset({ConversationStatus.NOT_GENERATED, ConversationStatus.FAILED})
# Statuses a reviewer may act on.
REVIEWABLE_STATUSES = frozenset(
    {ConversationStatus.GENERATED, ConversationStatus.APPROVED, ConversationStatus.REJECTED}
)


class DomainModel(BaseModel):
    model_config = ConfigDict(extra="ignore", validate_assignment=False)


# --------------------------------------------------------------------------- taxonomy


class TaxonomyEntry(DomainModel):
    name: str = Field(min_length=1, max_length=120)
    description: str = Field(default="", max_length=2000)


class Taxonomy(DomainModel):
    personas: list[TaxonomyEntry] = Field(default_factory=list)
    emotions: list[TaxonomyEntry] = Field(default_factory=list)
    topics: list[TaxonomyEntry] = Field(default_factory=list)
    intents: list[TaxonomyEntry] = Field(default_factory=list)
    tones: list[TaxonomyEntry] = Field(default_factory=list)

    def names(self, dimension: str) -> list[str]:
        entries: list[TaxonomyEntry] = getattr(self, dimension)
        return [e.name for e in entries]

    def describe(self, dimension: str, name: str) -> str:
        for entry in getattr(self, dimension):
            if entry.name == name:
                return str(entry.description)
        return ""


DIMENSIONS: tuple[str, ...] = ("persona", "emotion", "topic", "intent", "tone")
TAXONOMY_FIELD = {
    "persona": "personas",
    "emotion": "emotions",
    "topic": "topics",
    "intent": "intents",
    "tone": "tones",
}


class Chunk(DomainModel):
    """A document chunk produced by the platform's stage 2, with its dimensions."""

    chunk_id: str = Field(min_length=1, max_length=200)
    document_id: str = Field(min_length=1, max_length=200)
    document_title: str = ""
    text: str = Field(min_length=1, max_length=20000)
    persona: str | None = None
    emotion: str | None = None
    topic: str | None = None
    intent: str | None = None
    tone: str | None = None


class TierDistribution(DomainModel):
    """Relative weights of the three tiers (any positive scale: 40/35/15, 50/30/20...)."""

    template: float = Field(default=40, ge=0, le=1_000_000)
    scenario: float = Field(default=35, ge=0, le=1_000_000)
    edge_case: float = Field(default=15, ge=0, le=1_000_000)

    @field_validator("edge_case")
    @classmethod
    def _some_weight(cls, v: float, info: Any) -> float:
        if v + info.data.get("template", 0) + info.data.get("scenario", 0) <= 0:
            raise ValueError("tier weights must not all be zero")
        return v

    def counts(self, total: int) -> dict[Tier, int]:
        """Split ``total`` by weight with the largest-remainder method (sums exactly)."""
        weights = {
            Tier.TEMPLATE: self.template,
            Tier.SCENARIO: self.scenario,
            Tier.EDGE_CASE: self.edge_case,
        }
        s = sum(weights.values())
        raw = {t: total * w / s for t, w in weights.items()}
        out = {t: int(v) for t, v in raw.items()}
        rest = total - sum(out.values())
        for t in sorted(raw, key=lambda t: raw[t] - out[t], reverse=True)[:rest]:
            out[t] += 1
        return out


# --------------------------------------------------------------------------- datasets


class RequiredDisclaimer(DomainModel):
    text: str = Field(min_length=3, max_length=1000)
    topics: list[str] = Field(default_factory=list, max_length=200)  # empty: every topic


class BrandTerm(DomainModel):
    term: str = Field(min_length=2, max_length=120)
    wrong: list[str] = Field(default_factory=list, max_length=50)  # known misspellings


class QualityRules(DomainModel):
    """What a business says its assistant must never / must always say."""

    banned_phrases: list[str] = Field(default_factory=list, max_length=500)
    required_disclaimers: list[RequiredDisclaimer] = Field(default_factory=list, max_length=100)
    brand_terms: list[BrandTerm] = Field(default_factory=list, max_length=100)

    @field_validator("banned_phrases")
    @classmethod
    def _phrases(cls, v: list[str]) -> list[str]:
        cleaned = [p.strip() for p in v]
        if any(len(p) < 2 or len(p) > 300 for p in cleaned):
            raise ValueError("each banned phrase must be 2-300 characters")
        return cleaned

    def is_empty(self) -> bool:
        return not (self.banned_phrases or self.required_disclaimers or self.brand_terms)


class Dataset(DomainModel):
    tenant_id: str
    dataset_id: str = Field(default_factory=lambda: new_id("ds"))
    name: str
    description: str = ""
    business_name: str | None = None  # who the assistant speaks for; defaults to name
    target_count: int = 90
    tier_distribution: TierDistribution = Field(default_factory=TierDistribution)
    budget_usd: float | None = None
    model: str | None = None
    taxonomy: Taxonomy = Field(default_factory=Taxonomy)
    chunk_count: int = 0
    spent_usd: float = 0.0  # every billed call of the dataset, counted once
    plan_seed: int = 7
    quality_rules: QualityRules = Field(default_factory=QualityRules)
    judge_mode: Literal["auto", "off"] = "auto"  # auto: judge every generated conversation
    require_reject_note: bool = False  # a reject must say why (reviewer_notes)
    created_by: str = ""
    created_at: datetime = Field(default_factory=utcnow)
    updated_at: datetime = Field(default_factory=utcnow)
    version: int = 1
    archived_at: datetime | None = None  # archived: read-only until unarchived
    archived_by: str | None = None

    @property
    def archived(self) -> bool:
        return self.archived_at is not None


# --------------------------------------------------------------------------- conversations


class Turn(DomainModel):
    turn_number: int = Field(ge=1)
    role: Literal["user", "assistant"]
    content: str


class TurnFeedback(DomainModel):
    """A reviewer's marks on one turn. ``original_content`` is the generated text while the
    turn is edited (the turn itself holds the edited text, which exports read)."""

    bad: bool = False
    note: str | None = None
    original_content: str | None = None
    edited_at: datetime | None = None
    edited_by: str | None = None
    by: str
    at: datetime

    @property
    def edited(self) -> bool:
        return self.original_content is not None

    @property
    def empty(self) -> bool:
        """Nothing marked: no flag, no note, no edit."""
        return not self.bad and not self.note and not self.edited

    def public(self) -> dict[str, Any]:
        return self.model_dump(mode="json") | {"edited": self.edited}


def turns_with_feedback(
    turns: list[Turn], feedback: dict[int, TurnFeedback]
) -> list[dict[str, Any]]:
    """Turns as the API shows them: each with its reviewers' feedback (or null)."""
    out = []
    for t in turns:
        fb = feedback.get(t.turn_number)
        out.append(t.model_dump(mode="json") | {"feedback": fb.public() if fb else None})
    return out


class StoredTurn(NamedTuple):
    """A turn as an export reads it back: validated as a :class:`Turn` when it was
    stored, so not again. Building one costs a small fraction of building a Turn,
    which matters at 12 turns x 10,000 conversations."""

    turn_number: int
    role: str
    content: str


class QualityCheck(DomainModel):
    name: str
    passed: bool
    score: float = Field(ge=0, le=1)  # 0..1 contribution before weighting
    weight: float = Field(ge=0)
    detail: str = ""
    # Defect checks: what a reviewer reads ("turn 7: the assistant refuses as an AI
    # model"), the turns to highlight, and how bad it is (see quality/scoring.py).
    kind: Literal["structure", "content", "rule", "judge"] = "structure"
    severity: Literal["critical", "major", "minor"] | None = None
    reasons: list[str] = Field(default_factory=list)
    turns: list[int] = Field(default_factory=list)
    suspicion: float = Field(default=0.0, ge=0, le=1)  # evidence below a finding


class JudgeDimension(DomainModel):
    score: float = Field(ge=1, le=10)
    reason: str = ""


class JudgeResult(DomainModel):
    """An LLM judge's rubric verdict on one conversation's content."""

    dimensions: dict[str, JudgeDimension] = Field(default_factory=dict)
    overall: float | None = Field(default=None, ge=1, le=10)
    summary: str = ""
    model: str = ""
    rubric_version: str = ""
    content_hash: str = ""
    simulated: bool = False  # answered by the offline simulator: shown, never counted
    cached: bool = False
    cost_usd: float = 0.0
    error: str | None = None  # the judge could not answer; the heuristic score stands
    judged_at: datetime = Field(default_factory=utcnow)


class QualityReport(DomainModel):
    score: float = Field(ge=1, le=10)
    checks: list[QualityCheck] = Field(default_factory=list)
    flagged: bool = False
    duplicate_of: str | None = None
    judge_score: float | None = None
    judge_cost_usd: float | None = None
    validated_at: datetime = Field(default_factory=utcnow)
    reasons: list[str] = Field(default_factory=list)  # why it is flagged, worst first
    flag_turns: list[int] = Field(default_factory=list)
    heuristic_score: float | None = None  # before the judge is combined in
    judge: JudgeResult | None = None
    scorer_version: str = ""


class QualitySummary(DomainModel):
    """What lists, statistics and estimates need of a quality report: a few hundred bytes
    where the report is a few kilobytes (a dataset of 100,000 is listed from memory)."""

    score: float
    flagged: bool
    reasons: list[str] = Field(default_factory=list)  # the first three
    failed: list[str] = Field(default_factory=list)  # names of the checks that flagged
    duplicate_of: str | None = None
    judge_overall: float | None = None
    judge_simulated: bool = False
    judge_cost_usd: float = 0.0
    judge_cached: bool = False

    @classmethod
    def of(cls, report: QualityReport) -> QualitySummary:
        judge = report.judge
        return cls(
            score=report.score,
            flagged=report.flagged,
            reasons=report.reasons[:3],
            failed=[c.name for c in report.checks if not c.passed and c.severity],
            duplicate_of=report.duplicate_of,
            judge_overall=judge.overall if judge and not judge.error else None,
            judge_simulated=bool(judge and judge.simulated),
            judge_cost_usd=judge.cost_usd if judge else 0.0,
            judge_cached=bool(judge and judge.cached),
        )


class ConversationSpec(DomainModel):
    """What the planner decides about a conversation before it is generated."""

    persona: str
    emotion: str
    topic: str
    intent: str
    tone: str
    tier: Tier
    arc: str | None = None  # tier 1 emotional arc
    scenario: str | None = None  # tier 2 scenario summary
    edge_case_type: str | None = None  # tier 3 boundary case
    chunk_id: str | None = None
    document_id: str | None = None


class Conversation(DomainModel):
    tenant_id: str
    dataset_id: str
    conversation_id: str = Field(default_factory=lambda: new_id("conv"))
    persona: str
    emotion: str
    topic: str
    intent: str
    tone: str
    tier: Tier
    arc: str | None = None
    scenario: str | None = None
    edge_case_type: str | None = None
    chunk_id: str | None = None
    document_id: str | None = None
    title: str | None = None
    status: ConversationStatus = ConversationStatus.NOT_GENERATED
    quality_score: float | None = None
    quality: QualityReport | None = None
    # Lists read this instead of ``quality`` (which only a conversation's detail reads).
    quality_summary: QualitySummary | None = None
    turn_count: int = 0
    estimated_cost_usd: float | None = None
    actual_cost_usd: float | None = None
    generation_duration_ms: int | None = None
    input_tokens: int = 0
    output_tokens: int = 0
    model: str | None = None
    template_id: str | None = None
    template_version: int | None = None
    parse_path: str | None = None  # "tool_use" | "json" | "fenced" | "embedded"
    job_id: str | None = None
    generation_attempts: int = 0  # attempts by the current job (retries included)
    claim_token: str | None = None  # the workflow execution that owns a "generating" claim
    approved_by: str | None = None
    approved_at: datetime | None = None
    reviewed_by: str | None = None
    reviewed_at: datetime | None = None
    reviewer_notes: str | None = None
    error_message: str | None = None
    generated_at: datetime | None = None
    created_at: datetime = Field(default_factory=utcnow)
    updated_at: datetime = Field(default_factory=utcnow)
    version: int = 1
    # Generations stored so far (the current one included); earlier ones are versions.
    generation_number: int = 0
    trashed_at: datetime | None = None  # in the trash since (restorable for 30 days)
    trashed_by: str | None = None

    @property
    def flagged(self) -> bool:
        return self.quality_score is not None and self.quality_score < FLAG_THRESHOLD

    def quality_brief(self) -> QualitySummary | None:
        """The quality summary, from the full report when this copy has it."""
        if self.quality is not None:
            return QualitySummary.of(self.quality)
        return self.quality_summary

    @classmethod
    def from_spec(cls, tenant_id: str, dataset_id: str, spec: ConversationSpec) -> Conversation:
        return cls(tenant_id=tenant_id, dataset_id=dataset_id, **spec.model_dump())

    def spec(self) -> ConversationSpec:
        return ConversationSpec.model_validate(self.model_dump())


TRASH_RETENTION_DAYS = 30  # a deleted conversation can be restored this long


class ConversationVersion(DomainModel):
    """An earlier generation of a conversation, kept when it was regenerated."""

    number: int  # 1 = the first generation
    turns: list[Turn] = Field(default_factory=list)
    title: str | None = None
    turn_count: int = 0
    quality_score: float | None = None
    quality: QualityReport | None = None
    model: str | None = None
    template_id: str | None = None
    template_version: int | None = None
    parse_path: str | None = None
    actual_cost_usd: float | None = None
    input_tokens: int = 0
    output_tokens: int = 0
    generation_duration_ms: int | None = None
    generated_at: datetime | None = None
    superseded_at: datetime = Field(default_factory=utcnow)
    # Reviewers' marks on its turns when it was replaced (its turns hold any edited text).
    feedback: dict[int, TurnFeedback] = Field(default_factory=dict)

    @classmethod
    def of(
        cls,
        number: int,
        conversation: Conversation,
        turns: list[Turn],
        feedback: dict[int, TurnFeedback] | None = None,
    ) -> ConversationVersion:
        """The generation ``conversation`` holds (as stored before it is replaced)."""
        data = conversation.model_dump()
        return cls(
            number=number,
            turns=turns,
            feedback=feedback or {},
            **{k: data[k] for k in VERSION_FIELDS},
        )


# What a version keeps of the conversation that held it.
VERSION_FIELDS: tuple[str, ...] = (
    "title",
    "turn_count",
    "quality_score",
    "quality",
    "model",
    "template_id",
    "template_version",
    "parse_path",
    "actual_cost_usd",
    "input_tokens",
    "output_tokens",
    "generation_duration_ms",
    "generated_at",
)


class ConversationWithTurns(DomainModel):
    conversation: Conversation
    turns: list[Turn] = Field(default_factory=list)
    feedback: dict[int, TurnFeedback] = Field(default_factory=dict)  # by turn number


class GenerationLog(DomainModel):
    tenant_id: str
    log_id: str = Field(default_factory=lambda: new_id("log"))
    conversation_id: str
    job_id: str | None = None
    run_id: str | None = None  # one id per generation attempt
    template_id: str | None = None
    template_version: int | None = None
    model: str
    request_payload: dict[str, Any] = Field(default_factory=dict)
    response_payload: dict[str, Any] | None = None
    parameters: dict[str, Any] = Field(default_factory=dict)
    input_tokens: int = 0
    output_tokens: int = 0
    cache_creation_input_tokens: int = 0
    cache_read_input_tokens: int = 0
    cost_usd: float = 0.0
    duration_ms: int = 0
    error_message: str | None = None
    # The claim (execution) and attempt this call belongs to: the first call of an
    # attempt has a log id derived from both, so a call that a crash left unrecorded and
    # its charge at the estimate, written later by the recovery, are one record.
    claim_token: str | None = None
    attempt: int | None = None
    # "actual": priced from the response's usage; "estimated": the call may have been
    # billed but no answer was recorded (a timeout, a crash mid-call), charged at the
    # conversation's estimate; "none": refused before it ran (429, 5xx, 4xx).
    billing: Literal["actual", "estimated", "none"] = "actual"
    created_at: datetime = Field(default_factory=utcnow)

    @property
    def estimated(self) -> bool:
        return self.billing == "estimated"


# --------------------------------------------------------------------------- templates


class PromptTemplate(DomainModel):
    tenant_id: str
    template_id: str = Field(default_factory=lambda: new_id("tpl"))
    name: str
    tier: Tier
    text: str
    description: str = ""
    parameters: list[str] = Field(default_factory=list)
    version: int = 1
    is_active: bool = True
    weight: float = 1.0
    applicable_personas: list[str] | None = None
    applicable_emotions: list[str] | None = None
    created_by: str = ""
    created_at: datetime = Field(default_factory=utcnow)
    updated_at: datetime = Field(default_factory=utcnow)


def template_name_key(name: str) -> str:
    """What makes two template names the same name: case and spacing do not count."""
    return " ".join(name.split()).casefold()


class TemplateVersion(DomainModel):
    template_id: str
    version: int
    text: str
    parameters: list[str]
    change_note: str = ""
    created_by: str = ""
    created_at: datetime = Field(default_factory=utcnow)


# --------------------------------------------------------------------------- jobs


class JobStatus(StrEnum):
    QUEUED = "queued"
    RUNNING = "running"
    PAUSING = "pausing"
    PAUSED = "paused"
    COMPLETED = "completed"
    FAILED = "failed"
    CANCELLED = "cancelled"


ACTIVE_JOB_STATUSES = frozenset({JobStatus.QUEUED, JobStatus.RUNNING, JobStatus.PAUSING})


class BudgetWarning(DomainModel):
    threshold_percent: int
    spent_usd: float
    budget_usd: float
    at: datetime = Field(default_factory=utcnow)


class JobCurrent(DomainModel):
    conversation_id: str | None = None
    persona: str | None = None
    topic: str | None = None


class JobOptions(NamedTuple):
    """How a caller wants a job run: confirmed past the budget warning, standard or
    economy (Message Batches), an optional cap on calls in flight, attempts per item."""

    confirm: bool = False
    mode: Literal["standard", "economy"] = "standard"
    max_concurrency: int | None = None
    max_attempts: int | None = None


class Job(DomainModel):
    tenant_id: str
    job_id: str = Field(default_factory=lambda: new_id("job"))
    dataset_id: str
    kind: Literal["single", "batch", "all"]
    mode: Literal["standard", "economy"] = "standard"
    status: JobStatus = JobStatus.QUEUED
    conversation_ids: list[str] = Field(default_factory=list)
    total: int = 0
    completed: int = 0
    failed: int = 0
    skipped: int = 0
    current: JobCurrent = Field(default_factory=JobCurrent)
    cost_usd: float = 0.0
    estimated_cost_usd: float = 0.0
    estimated_seconds: float = 0.0
    # What the start estimate was built from and its range (basis, low/high cost, time).
    estimate: dict[str, Any] | None = None
    budget_usd: float | None = None
    warnings: list[BudgetWarning] = Field(default_factory=list)
    warned_thresholds: list[int] = Field(default_factory=list)  # the warnings given, in order
    # The request's cap on calls in flight; None: the adaptive target alone decides.
    max_concurrency: int | None = None
    max_attempts: int = 3
    # The newest execution's plan: target, rate, latency and limit_reason it was built on.
    concurrency: dict[str, Any] | None = None
    execution_arns: list[str] = Field(default_factory=list)
    resume_started_at: datetime | None = None  # a resume is starting its execution
    pause_reason: str | None = None
    error_message: str | None = None
    created_by: str = ""
    created_at: datetime = Field(default_factory=utcnow)
    started_at: datetime | None = None
    finished_at: datetime | None = None
    updated_at: datetime = Field(default_factory=utcnow)

    @property
    def done(self) -> int:
        return self.completed + self.failed + self.skipped

    @property
    def percent(self) -> float:
        return round(100.0 * self.done / self.total, 1) if self.total else 100.0


# --------------------------------------------------------------------------- exports


class ExportFormat(StrEnum):
    OPENAI = "openai"
    ANTHROPIC = "anthropic"
    SHAREGPT = "sharegpt"
    HF_MESSAGES = "hf_messages"
    GENERIC = "generic"
    CSV = "csv"


class ExportStatus(StrEnum):
    PENDING = "pending"
    READY = "ready"
    FAILED = "failed"


class ExportRecord(DomainModel):
    tenant_id: str
    export_id: str = Field(default_factory=lambda: new_id("exp"))
    format: ExportFormat
    filters: dict[str, Any] = Field(default_factory=dict)
    split: dict[str, float] | None = None
    seed: int | None = None  # the split's seed (recorded: the same seed, the same split)
    status: ExportStatus = ExportStatus.PENDING
    filename: str | None = None
    files: list[dict[str, Any]] = Field(default_factory=list)  # [{split, key, filename, count}]
    conversation_count: int = 0
    counts: dict[str, int] = Field(default_factory=dict)
    stats: dict[str, Any] = Field(default_factory=dict)
    skipped: list[dict[str, str]] = Field(default_factory=list)  # not expressible in format
    error_message: str | None = None
    created_by: str = ""
    created_at: datetime = Field(default_factory=utcnow)
    # The one run that owns the write (set by a conditional claim; internal, not served)
    # and when it started: a pending export whose run never finishes is failed on read.
    claim_token: str | None = None
    started_at: datetime | None = None
    finished_at: datetime | None = None


# --------------------------------------------------------------------------- audit


class AuditRecord(DomainModel):
    tenant_id: str
    audit_id: str = Field(default_factory=lambda: new_id("aud"))
    actor: str
    action: str  # e.g. conversation.approve, template.update, export.create
    entity_type: str
    entity_id: str
    before: dict[str, Any] | None = None
    after: dict[str, Any] | None = None
    details: dict[str, Any] = Field(default_factory=dict)
    at: datetime = Field(default_factory=utcnow)

    @property
    def sort_key(self) -> str:
        """Its key within the tenant's trail: time first, so a query reads it in order."""
        return f"{self.at.isoformat()}#{self.audit_id}"


class NotificationMessage(DomainModel):
    tenant_id: str
    message_id: str = Field(default_factory=lambda: new_id("msg"))
    subject: str
    body: str
    kind: str  # job.completed, job.failed, budget.warning, budget.paused
    job_id: str | None = None
    dataset_id: str | None = None
    at: datetime = Field(default_factory=utcnow)


# --------------------------------------------------------------------------- fine-tunes


class FineTuneStatus(StrEnum):
    """Bedrock's model-customization job states, plus ``Submitting`` (stored, not yet
    accepted by Bedrock) and ``SubmitFailed`` (Bedrock refused it)."""

    SUBMITTING = "Submitting"
    SUBMIT_FAILED = "SubmitFailed"
    IN_PROGRESS = "InProgress"
    COMPLETED = "Completed"
    FAILED = "Failed"
    STOPPING = "Stopping"
    STOPPED = "Stopped"


class FineTune(DomainModel):
    """A model-customization job started from an export."""

    tenant_id: str
    fine_tune_id: str = Field(default_factory=lambda: new_id("ft"))
    export_id: str
    dataset_id: str | None = None
    provider: str = "bedrock"
    base_model: str
    hyperparameters: dict[str, Any] = Field(default_factory=dict)
    job_name: str = ""
    custom_model_name: str = ""
    job_arn: str | None = None
    output_model_arn: str | None = None
    status: FineTuneStatus = FineTuneStatus.SUBMITTING
    failure_message: str | None = None
    training_file: str = ""  # s3:// URIs Bedrock reads
    validation_file: str | None = None
    output_uri: str = ""
    training_records: int = 0
    validation_records: int = 0
    training_tokens: int = 0
    estimated_cost_usd: float = 0.0
    price_per_1k_tokens_usd: float = 0.0
    confirmed_over_budget: bool = False
    created_by: str = ""
    created_at: datetime = Field(default_factory=utcnow)
    updated_at: datetime = Field(default_factory=utcnow)
    checked_at: datetime | None = None  # last status read from Bedrock
