"""API request/response schemas (kept apart from domain models, design rule 3 in docs/architecture.md).

Request models forbid unknown fields so a typo is a 400, not a silently ignored field.
The OpenAPI document is generated from these models (``chalicelib.api.openapi``).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Annotated, Any, Literal, cast

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    create_model,
    model_validator,
)

from chalicelib.domain.errors import ValidationError
from chalicelib.domain.filters import EXPORT_FILTERS, FILTERS, FilterDimension
from chalicelib.domain.models import (
    AuditRecord,
    Chunk,
    ConversationStatus,
    ExportFormat,
    ExportStatus,
    JobStatus,
    QualityReport,
    QualityRules,
    Taxonomy,
    Tier,
    TierDistribution,
    Turn,
)

Id = Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_\-]+$")
# A "valid email address" as browsers check it (WHATWG HTML): printable ASCII only, so an
# address can be passed on to SNS and Cognito and shown anywhere (no control characters).
EMAIL_PATTERN = (
    r"^[A-Za-z0-9.!#$%&'*+/=?^_`{|}~-]+"
    r"@[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
    r"(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?)+$"
)


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


# --------------------------------------------------------------------------- requests


class RequiredDisclaimerIn(Strict):
    text: str = Field(min_length=3, max_length=1000, description="Wording that must appear")
    topics: list[str] = Field(
        default_factory=list,
        max_length=200,
        description="Topics that need it; empty means every conversation",
    )


class BrandTermIn(Strict):
    term: str = Field(min_length=2, max_length=120, description="The exact spelling")
    wrong: list[str] = Field(
        default_factory=list, max_length=50, description="Known misspellings to flag"
    )


BannedPhrase = Annotated[
    str, StringConstraints(strip_whitespace=True, min_length=2, max_length=300)
]


class QualityRulesIn(Strict):
    """What the business's assistant must never or must always say; violations flag."""

    banned_phrases: list[BannedPhrase] = Field(default_factory=list, max_length=500)
    required_disclaimers: list[RequiredDisclaimerIn] = Field(default_factory=list, max_length=100)
    brand_terms: list[BrandTermIn] = Field(default_factory=list, max_length=100)


class DatasetCreate(Strict):
    name: str = Field(min_length=1, max_length=200)
    description: str | None = Field(default=None, max_length=5000)
    business_name: str | None = Field(default=None, max_length=200)
    target_count: int | None = Field(default=None, ge=1, le=10000)
    tier_distribution: TierDistribution | None = None
    budget_usd: float | None = Field(default=None, ge=0, le=1_000_000)
    model: str | None = Field(default=None, max_length=100)
    quality_rules: QualityRulesIn | None = None
    require_reject_note: bool | None = Field(
        default=None, description="A reject must carry reviewer_notes (default false)"
    )
    judge_mode: Literal["auto", "off"] | None = Field(
        default=None, description="auto: the LLM judge reviews every generated conversation"
    )


class DatasetPatch(Strict):
    name: str | None = Field(default=None, min_length=1, max_length=200)
    description: str | None = Field(default=None, max_length=5000)
    business_name: str | None = Field(default=None, max_length=200)
    target_count: int | None = Field(default=None, ge=1, le=10000)
    tier_distribution: TierDistribution | None = None
    budget_usd: float | None = Field(default=None, ge=0, le=1_000_000)
    model: str | None = Field(default=None, max_length=100)
    quality_rules: QualityRulesIn | None = None
    judge_mode: Literal["auto", "off"] | None = None
    require_reject_note: bool | None = Field(
        default=None, description="A reject must carry reviewer_notes (a 400 note_required)"
    )
    version: int | None = Field(default=None, ge=1, le=2**53)


class PlanRequest(Strict):
    count: int | None = Field(default=None, ge=1, le=10000)
    tier_distribution: TierDistribution | None = None
    seed: int | None = Field(default=None, ge=0, le=2**31)
    replace: bool = False


class GapIn(Strict):
    """One coverage gap: a tier, or dimension values (a pair of them, or one)."""

    tier: Tier | None = None
    persona: Annotated[str, StringConstraints(min_length=1, max_length=120)] | None = None
    emotion: Annotated[str, StringConstraints(min_length=1, max_length=120)] | None = None
    topic: Annotated[str, StringConstraints(min_length=1, max_length=120)] | None = None
    intent: Annotated[str, StringConstraints(min_length=1, max_length=120)] | None = None
    tone: Annotated[str, StringConstraints(min_length=1, max_length=120)] | None = None


class FillGapsRequest(Strict):
    gap: GapIn | None = Field(
        default=None, description="Plan for this gap only (absent: close every gap)"
    )
    count: int | None = Field(
        default=None, ge=1, le=500, description="How many to plan for the gap (1)"
    )

    @model_validator(mode="after")
    def _count_needs_gap(self) -> FillGapsRequest:
        if self.count is not None and self.gap is None:
            raise ValueError("count is the size of one gap's plan: send gap with it")
        return self


class ConversationPatch(Strict):
    version: int = Field(ge=1, le=2**53, description="The version you read; a stale one gets 409")
    status: Literal["approved", "rejected", "generated"] | None = None
    reviewer_notes: str | None = Field(default=None, max_length=5000)
    persona: str | None = Field(default=None, min_length=1, max_length=120)
    emotion: str | None = Field(default=None, min_length=1, max_length=120)
    topic: str | None = Field(default=None, min_length=1, max_length=120)
    intent: str | None = Field(default=None, min_length=1, max_length=120)
    tone: str | None = Field(default=None, min_length=1, max_length=120)
    tier: Tier | None = None
    title: str | None = Field(default=None, max_length=300)


FilterValues = list[Annotated[str, StringConstraints(min_length=1, max_length=200)]]


# The fixed fields; one per filter dimension of domain/filters.py is added below.
class _BulkFilterBase(Strict):
    """The list's filters (GET /api/conversations), selecting what a bulk action acts on."""

    dataset_id: str | None = Field(default=None, min_length=1, max_length=64)
    quality_min: float | None = Field(default=None, ge=0, le=10)
    quality_max: float | None = Field(default=None, ge=0, le=10)
    flagged: bool | None = None
    q: str | None = Field(default=None, max_length=500)
    sort: str = Field(default="created_at", max_length=40, description="Order of up_to_limit")
    order: str | None = Field(
        default=None,
        max_length=4,
        description="asc or desc; by default asc for attention (the triage order), desc otherwise",
    )


def _dimension_field(dimension: FilterDimension, exported: bool) -> tuple[Any, Any]:
    """A filter dimension as a request field: the values asked for (any of them). Fixed
    sets are checked here for exports, and by the list's validation for bulk filters
    (the same 400 as the list's)."""
    if exported and dimension.choices is not None:
        one_of: Any = cast(Any, Literal)[dimension.choices]  # Literal of the fixed values
        return list[one_of] | None, None
    if exported:
        return list[str] | None, None
    limit = 10 if dimension.choices is not None else 200
    return FilterValues | None, Field(default=None, max_length=limit)


def with_filter_dimensions(
    name: str, base: type[Strict], dimensions: Sequence[FilterDimension], exported: bool
) -> type[Strict]:
    """``base`` with a field per filter dimension: the dimensions come from the registry,
    so adding one there reaches the bulk action and the export without editing this
    file (mypy sees the fixed fields)."""
    fields: Any = {d.name: _dimension_field(d, exported) for d in dimensions}
    return create_model(name, __base__=base, __doc__=base.__doc__, **fields)


if TYPE_CHECKING:
    BulkFilter = _BulkFilterBase
else:
    BulkFilter = with_filter_dimensions("BulkFilter", _BulkFilterBase, FILTERS, exported=False)


class BulkActionRequest(Strict):
    action: Literal["approve", "reject", "delete", "regenerate", "restore"]
    ids: list[str] | None = Field(default=None, min_length=1, max_length=500)
    filter: BulkFilter | None = Field(
        default=None,
        description="Instead of ids: every conversation the list's filter matches "
        "(approve, reject, delete; needs confirm: true)",
    )
    reviewer_notes: str | None = Field(default=None, max_length=5000)
    confirm: bool = False
    preview: bool = Field(default=False, description="Count what it would do; write nothing")
    expected_count: int | None = Field(
        default=None, ge=0, le=10**9, description="filter: 409 matches_changed if it differs"
    )
    up_to_limit: bool = Field(
        default=False, description="filter: over the bulk limit, act on the first ones"
    )

    @model_validator(mode="after")
    def _one_selection(self) -> BulkActionRequest:
        if (self.ids is None) == (self.filter is None):
            raise ValueError("send either ids or filter")
        if self.filter is None and (self.expected_count is not None or self.up_to_limit):
            raise ValueError("expected_count and up_to_limit go with a filter")
        return self


class UndoRequest(Strict):
    undo_token: str = Field(min_length=1, max_length=500)
    partial: bool = Field(
        default=False, description="Undo the unchanged conversations even if some changed"
    )


class TurnFeedbackRequest(Strict):
    expected_version: int = Field(
        ge=1, le=2**53, description="The conversation version you read; a stale one gets 409"
    )
    bad: bool | None = Field(default=None, description="Mark the turn bad (or not)")
    note: str | None = Field(default=None, max_length=5000, description="null clears it")
    content: str | None = Field(
        default=None,
        min_length=1,
        max_length=50_000,
        description="The edited text (the original text again removes the edit)",
    )


class EstimateRequest(Strict):
    ids: list[str] | None = Field(default=None, min_length=1, max_length=1000)
    dataset_id: str | None = Field(default=None, min_length=1, max_length=64)
    only: Literal["not_generated", "failed"] | None = None
    mode: Literal["standard", "economy"] = "standard"
    # An optional cap on calls in flight (the adaptive target and the ceiling apply too).
    max_concurrency: int | None = Field(default=None, ge=1, le=1000)


class GenerateRequest(Strict):
    conversation_id: str = Field(min_length=1, max_length=64)
    confirm: bool = False


class JobOptions(Strict):
    confirm: bool = False
    mode: Literal["standard", "economy"] = "standard"
    # An optional cap on calls in flight (the adaptive target and the ceiling apply too).
    max_concurrency: int | None = Field(default=None, ge=1, le=1000)
    max_attempts: int | None = Field(default=None, ge=1, le=6)


class GenerateBatchRequest(JobOptions):
    conversation_ids: list[str] = Field(min_length=1, max_length=1000)


class GenerateAllRequest(JobOptions):
    dataset_id: str = Field(min_length=1, max_length=64)
    only: Literal["not_generated", "failed"] = "not_generated"


class TemplateCreate(Strict):
    name: str = Field(min_length=1, max_length=200)
    tier: Tier
    text: str = Field(min_length=1, max_length=50_000)
    description: str | None = Field(default=None, max_length=2000)
    is_active: bool = True
    weight: float = Field(default=1.0, ge=0, le=1000)
    applicable_personas: list[str] | None = None
    applicable_emotions: list[str] | None = None
    change_note: str | None = Field(default=None, max_length=500)


class TemplatePatch(Strict):
    name: str | None = Field(default=None, min_length=1, max_length=200)
    text: str | None = Field(default=None, min_length=1, max_length=50_000)
    description: str | None = Field(default=None, max_length=2000)
    is_active: bool | None = None
    weight: float | None = Field(default=None, ge=0, le=1000)
    applicable_personas: list[str] | None = None
    applicable_emotions: list[str] | None = None
    expected_version: int | None = Field(default=None, ge=1, le=2**53)
    change_note: str | None = Field(default=None, max_length=500)


# The fixed fields; one per exported filter dimension of domain/filters.py is added below.
class _ExportFiltersBase(Strict):
    """Which approved conversations an export takes: the list's filters (all but status)."""

    dataset_id: str | None = Field(default=None, max_length=64)
    quality_min: float | None = Field(default=None, ge=0, le=10)
    quality_max: float | None = Field(default=None, ge=0, le=10)


if TYPE_CHECKING:
    ExportFilters = _ExportFiltersBase
else:
    ExportFilters = with_filter_dimensions(
        "ExportFilters", _ExportFiltersBase, EXPORT_FILTERS, exported=True
    )


class ExportOptionsIn(Strict):
    assistant_weights: bool = False
    csv_formula_neutralisation: bool = Field(
        default=True,
        description=(
            "csv only: prefix cells starting with = + - @ tab or CR with ' so spreadsheets"
            " show text (default); false writes the text exactly, for training pipelines"
        ),
    )


SEED_MAX = 2**63 - 1


class ExportRequest(Strict):
    format: ExportFormat
    filters: ExportFilters = Field(default_factory=ExportFilters)
    split: dict[Literal["train", "validation", "test", "seed"], int | float] | None = Field(
        default=None,
        description="Ratios per split (sum 1); may carry the split's integer seed as 'seed'",
    )
    seed: int | None = Field(
        default=None,
        ge=0,
        le=SEED_MAX,
        description="The split's seed (default 0), recorded in the manifest",
    )
    options: ExportOptionsIn | None = None

    def ratios(self) -> dict[str, float] | None:
        if self.split is None:
            return None
        return {k: v for k, v in self.split.items() if k != "seed"}

    def split_seed(self) -> int | None:
        """The seed from ``seed`` or ``split.seed`` (an integer; both only if equal)."""
        inner = self.split.get("seed") if self.split else None
        if inner is not None and (not float(inner).is_integer() or not 0 <= inner <= SEED_MAX):
            raise ValidationError("split.seed must be an integer from 0 to 2^63-1")
        value = None if inner is None else int(inner)
        if value is not None and self.seed is not None and value != self.seed:
            raise ValidationError("seed and split.seed differ: give the seed once")
        return self.seed if self.seed is not None else value


class FineTuneRequest(Strict):
    base_model: str | None = Field(
        default=None,
        max_length=128,
        description="Bedrock base model id (default anthropic.claude-3-haiku-20240307-v1:0:200k)",
    )
    epochs: int | None = Field(default=None, ge=1, le=10, description="epochCount, 1-10 (2)")
    learning_rate_multiplier: float | None = Field(
        default=None, ge=0.1, le=2.0, description="learningRateMultiplier, 0.1-2 (1)"
    )
    batch_size: int | None = Field(default=None, ge=4, le=256, description="batchSize (32)")
    custom_model_name: str | None = Field(
        default=None, min_length=1, max_length=40, pattern=r"^[A-Za-z0-9][A-Za-z0-9-]*$"
    )
    confirm: bool = Field(default=False, description="Start even over the remaining budget")


class FineTuneOut(BaseModel):
    fine_tune_id: str
    export_id: str
    dataset_id: str | None = None
    provider: str
    base_model: str
    hyperparameters: dict[str, Any]
    job_name: str
    custom_model_name: str
    job_arn: str | None = None
    output_model_arn: str | None = None
    status: str
    failure_message: str | None = None
    training_file: str
    validation_file: str | None = None
    output_uri: str
    training_records: int
    validation_records: int
    training_tokens: int
    estimated_cost_usd: float
    price_per_1k_tokens_usd: float
    confirmed_over_budget: bool
    created_by: str
    created_at: datetime
    updated_at: datetime
    checked_at: datetime | None = None
    estimate: dict[str, Any] | None = None


class FineTuneEstimate(BaseModel):
    estimate: dict[str, Any]


class FineTuneList(BaseModel):
    items: list[FineTuneOut]
    total: int
    next_cursor: str | None = None


class LoginRequest(Strict):
    email: str = Field(min_length=3, max_length=254, pattern=EMAIL_PATTERN)
    password: str = Field(min_length=1, max_length=256)


class ValidateRequest(Strict):
    judge: bool = Field(
        default=False,
        description="Also ask the LLM judge for its rubric verdict (a paid call unless the "
        "same content was judged before)",
    )


class SubscriptionRequest(Strict):
    email: str = Field(min_length=3, max_length=254, pattern=EMAIL_PATTERN)


# --------------------------------------------------------------------------- responses


class ErrorBody(BaseModel):
    code: str
    message: str
    details: dict[str, Any] = Field(default_factory=dict)


class ErrorResponse(BaseModel):
    error: ErrorBody


class DatasetOut(BaseModel):
    dataset_id: str
    name: str
    description: str
    business_name: str | None
    target_count: int
    tier_distribution: TierDistribution
    budget_usd: float | None
    spent_usd: float
    model: str | None
    taxonomy: Taxonomy
    chunk_count: int
    quality_rules: QualityRules = Field(default_factory=QualityRules)
    judge_mode: Literal["auto", "off"] = "auto"
    require_reject_note: bool = False
    created_by: str
    created_at: datetime
    updated_at: datetime
    version: int
    archived: bool = Field(
        default=False, description="Read-only (no planning, generation or edits); exportable"
    )
    archived_at: datetime | None = None
    archived_by: str | None = None


class TaxonomyDimensionChange(BaseModel):
    added: list[str]
    removed: list[str]
    redescribed: list[str]
    kept: int


class TaxonomyAffected(BaseModel):
    dimension: str
    value: str = Field(description="A removed name that conversations use")
    total: int
    by_status: dict[str, int]


class TaxonomyImpact(BaseModel):
    dimensions: dict[str, TaxonomyDimensionChange] = Field(description="By taxonomy field")
    affected: list[TaxonomyAffected]
    affected_total: int = Field(description="Conversations using any removed name")
    affected_not_generated: int = Field(description="Of them, not generated (or failed) yet")
    note: str


class DatasetDeleted(BaseModel):
    dataset_id: str
    deleted: bool = Field(description="false: still purging (202); send DELETE again")
    status: Literal["deleted", "deleting"]
    removed: dict[str, int] = Field(description="What this call deleted, per kind")
    exports_kept: bool = Field(description="Export records and files are kept")


class DatasetList(BaseModel):
    items: list[DatasetOut]
    total: int
    next_cursor: str | None = None


class ConversationSummary(BaseModel):
    conversation_id: str
    dataset_id: str
    persona: str
    emotion: str
    topic: str
    intent: str
    tone: str
    tier: Tier
    status: ConversationStatus
    title: str | None = None
    arc: str | None = None
    scenario: str | None = None
    edge_case_type: str | None = None
    chunk_id: str | None = None
    document_id: str | None = None
    quality_score: float | None = None
    flagged: bool
    quality_reasons: list[str] = Field(
        default_factory=list, description="Why it is flagged, worst first (at most 3)"
    )
    turn_count: int
    estimated_cost_usd: float | None = None
    actual_cost_usd: float | None = None
    generation_duration_ms: int | None = None
    input_tokens: int = 0
    output_tokens: int = 0
    model: str | None = None
    template_id: str | None = None
    template_version: int | None = None
    parse_path: str | None = None
    job_id: str | None = None
    approved_by: str | None = None
    approved_at: datetime | None = None
    reviewed_by: str | None = None
    reviewed_at: datetime | None = None
    reviewer_notes: str | None = None
    error_message: str | None = None
    generated_at: datetime | None = None
    created_at: datetime
    updated_at: datetime
    version: int
    generation_number: int = Field(
        default=0, description="Generations stored so far (earlier ones: .../versions)"
    )
    trashed_at: datetime | None = None
    trashed_by: str | None = None


class UndoFields(BaseModel):
    decision_id: str | None = Field(default=None, description="This decision (null: nothing)")
    undo_token: str | None = Field(
        default=None, description="POST /api/conversations/undo with it reverts this decision"
    )


class ConversationDecided(ConversationSummary, UndoFields):
    pass


class TurnFeedbackOut(BaseModel):
    bad: bool
    note: str | None = None
    edited: bool
    original_content: str | None = Field(default=None, description="The generated text")
    edited_at: datetime | None = None
    edited_by: str | None = None
    by: str = Field(description="Who changed this feedback last")
    at: datetime


class TurnOut(Turn):
    feedback: TurnFeedbackOut | None = None


class TurnFeedbackResult(UndoFields):
    conversation: ConversationSummary
    turn: TurnOut


class TurnEdit(BaseModel):
    turn_number: int
    before: str | None
    after: str | None
    by: str
    at: datetime
    action: str
    conversation_version: int | None = None


class ConversationList(BaseModel):
    items: list[ConversationSummary]
    total: int
    page: int
    page_size: int
    pages: int
    next_cursor: str | None = None


class GenerationLogSummary(BaseModel):
    log_id: str
    run_id: str | None = None
    created_at: datetime
    model: str
    template_id: str | None = None
    template_version: int | None = None
    input_tokens: int
    output_tokens: int
    cache_read_input_tokens: int
    cache_creation_input_tokens: int
    cost_usd: float
    duration_ms: int
    error_message: str | None = None
    billing: Literal["actual", "estimated", "none"] = Field(
        default="actual",
        description="estimated: the call may have been billed without an answer (a timeout, "
        "or a crash mid-call) and is charged at the conversation's estimate",
    )
    attempt: int | None = None
    purpose: Literal["generation", "judge"] = Field(
        default="generation", description="judge: the rubric judge's call on this conversation"
    )


class VersionSummary(BaseModel):
    number: int = Field(description="1 = the first generation")
    title: str | None = None
    turn_count: int = 0
    quality_score: float | None = None
    flagged: bool = False
    model: str | None = None
    template_id: str | None = None
    template_version: int | None = None
    parse_path: str | None = None
    actual_cost_usd: float | None = None
    input_tokens: int = 0
    output_tokens: int = 0
    generation_duration_ms: int | None = None
    generated_at: datetime | None = None
    superseded_at: datetime | None = Field(
        default=None, description="When a regeneration replaced it (null: the current one)"
    )


class VersionsSummary(BaseModel):
    count: int = Field(description="Generations kept, the current one included")
    current: int | None = Field(default=None, description="The current generation's number")
    earlier: list[VersionSummary] = Field(description="Earlier generations, newest first")


class ConversationVersionOut(VersionSummary):
    current: bool
    turns: list[TurnOut]
    edits: list[TurnEdit] = Field(
        default_factory=list, description="Reviewers' edits of this generation's turns"
    )


class ConversationVersionList(BaseModel):
    conversation_id: str
    items: list[ConversationVersionOut]
    total: int


class TrashItem(ConversationSummary):
    purge_at: datetime = Field(description="Deleted for good after this time")
    days_left: int


class TrashList(BaseModel):
    items: list[TrashItem]
    total: int
    next_cursor: str | None = None
    retention_days: int


class ConversationDetail(ConversationSummary):
    turns: list[TurnOut]
    quality: QualityReport | None = None
    generation_logs: list[GenerationLogSummary]
    audit: list[AuditRecord]
    versions: VersionsSummary | None = None
    previous_id: str | None = None
    next_id: str | None = None
    position: int | None = None


class BulkFailure(BaseModel):
    id: str
    error: dict[str, Any]


class BulkResult(UndoFields):
    """The result; with preview: true, the counts instead (succeeded/failed absent)."""

    action: str
    succeeded: list[str] | None = None
    failed: list[BulkFailure] | None = None
    job_id: str | None = None
    matched: int | None = Field(default=None, description="filter: how many matched")
    acted_on: int | None = None
    remaining: int | None = Field(default=None, description="filter: matched - acted_on")
    preview: bool | None = None
    limit: int | None = None
    over_limit: bool | None = None
    by_status: dict[str, int] | None = None
    will_change: int | None = None
    already: int | None = Field(default=None, description="already in the target status")
    will_fail: int | None = None
    fail_reasons: dict[str, int] | None = None
    note_required: bool | None = None
    note_required_count: int | None = None
    note_required_datasets: list[str] | None = None
    ids: list[str] | None = Field(default=None, description="preview: the ids it would act on")


class UndoResult(UndoFields):
    action: Literal["undo"]
    undoes: str = Field(description="The undone decision's action")
    undone_decision_id: str
    succeeded: list[str]
    failed: list[BulkFailure]


class EstimateOut(BaseModel):
    count: int
    estimated_cost_usd: float
    estimated_economy_cost_usd: float
    estimated_seconds: float
    input_tokens_per_conversation: int
    output_tokens_per_conversation: int
    cached_system_tokens: int
    budget_usd: float | None
    budget_remaining_usd: float | None
    over_budget: bool
    model: str
    basis: str = Field(description="What the cost estimate was built from")
    basis_scope: Literal["dataset", "template", "defaults"] = Field(
        default="defaults",
        description="dataset: this dataset's generated conversations; template: the same "
        "templates' conversations in other datasets; defaults: nothing observed yet",
    )
    observed_conversations: int = 0
    estimated_cost_low_usd: float = Field(default=0, description="Low end of the ~95% range")
    estimated_cost_high_usd: float = Field(default=0, description="High end of the ~95% range")
    estimated_economy_cost_low_usd: float = 0
    estimated_economy_cost_high_usd: float = 0
    estimated_seconds_low: float = 0
    estimated_seconds_high: float = 0
    estimated_economy_seconds: float = Field(
        default=0, description="Economy mode: batches polled every BATCH_POLL_SECONDS"
    )
    estimated_economy_seconds_low: float = 0
    estimated_economy_seconds_high: float = 0
    time_basis: str = ""
    economy_time_basis: str = ""
    retry_overhead: float = Field(
        default=1.0, description="Spend per stored conversation over its successful call"
    )
    per_tier: list[dict[str, Any]] = Field(default_factory=list)
    may_exceed_budget: bool = Field(
        default=False, description="The high end of the range exceeds the remaining budget"
    )
    mode: Literal["standard", "economy"] = "standard"
    estimated_judge_cost_usd: float = Field(
        default=0.0, description="The LLM judge's share, included in both totals"
    )
    judge_model: str | None = None
    rejected: list[dict[str, str]] = Field(default_factory=list)


class JobCurrentOut(BaseModel):
    conversation_id: str | None = None
    persona: str | None = None
    topic: str | None = None


class JobConcurrencyOut(BaseModel):
    target: int = Field(description="calls to keep in flight: rate x latency x 1.25, capped")
    in_flight: int | None = Field(default=None, description="calls in flight now")
    limit_reason: Literal["rpm", "otpm", "latency", "cap", "ceiling", "backoff", "breaker"]
    latency_s: float = Field(description="mean seconds per call the target is built on")
    rate_per_min: float | None = None
    rate_share: float | None = Field(
        default=None, description="share of the account rate in use after back-off"
    )
    cap: int | None = Field(default=None, description="the request's max_concurrency")
    ceiling: int | None = Field(default=None, description="GENERATION_MAX_IN_FLIGHT")
    map_max_concurrency: int | None = None
    breaker_open_until: float | None = Field(
        default=None, description="epoch seconds until which every call waits"
    )


class JobOut(BaseModel):
    job_id: str
    dataset_id: str
    kind: str
    mode: str
    status: JobStatus
    total: int
    completed: int
    failed: int
    skipped: int
    remaining: int
    current: JobCurrentOut
    percent: float
    eta_seconds: float | None
    cost_usd: float
    estimated_cost_usd: float
    estimated_seconds: float
    budget: float | None
    budget_usd: float | None
    warnings: list[dict[str, Any]]
    warned_thresholds: list[int] = Field(default_factory=list)
    estimate: dict[str, Any] | None = Field(
        default=None, description="The start estimate's basis and range"
    )
    pause_reason: str | None = None
    error_message: str | None = None
    created_by: str
    created_at: datetime
    started_at: datetime | None = None
    finished_at: datetime | None = None
    rejected: list[dict[str, str]] = Field(default_factory=list)
    concurrency: JobConcurrencyOut | None = Field(
        default=None,
        description="Calls in flight: the adaptive target, how many now and what limits it",
    )


class JobList(BaseModel):
    items: list[JobOut]
    total: int
    next_cursor: str | None = None


class JobAccepted(BaseModel):
    job_id: str
    status: JobStatus
    total: int
    estimated_cost_usd: float
    estimated_seconds: float
    estimate: dict[str, Any] | None = Field(
        default=None, description="The estimate's basis and range"
    )
    concurrency: JobConcurrencyOut | None = Field(
        default=None, description="The first plan of calls in flight"
    )
    rejected: list[dict[str, str]] = Field(default_factory=list)
    status_url: str


class TemplateOut(BaseModel):
    template_id: str
    name: str
    tier: Tier
    text: str
    description: str
    parameters: list[str]
    version: int
    is_active: bool
    weight: float
    applicable_personas: list[str] | None = None
    applicable_emotions: list[str] | None = None
    created_by: str
    created_at: datetime
    updated_at: datetime


class TemplateList(BaseModel):
    items: list[TemplateOut]
    total: int
    next_cursor: str | None = None


class TemplateVersionOut(BaseModel):
    version: int
    text: str
    parameters: list[str]
    change_note: str
    created_by: str
    created_at: datetime


class TemplateDetail(TemplateOut):
    versions: list[TemplateVersionOut]
    usage: list[dict[str, Any]]
    total_usage: int
    approval_rate: float | None
    mean_quality: float | None


class ExportOut(BaseModel):
    export_id: str
    format: ExportFormat
    status: ExportStatus
    filters: dict[str, Any]
    split: dict[str, float] | None = None
    seed: int | None = Field(default=None, description="The split's seed, as recorded")
    filename: str | None = None
    files: list[dict[str, Any]] = Field(
        description="The data file(s) (split: train/validation/test, or null), then the"
        " manifest and the bundle: split, filename, count, bytes, sha256, download_url"
    )
    conversation_count: int
    counts: dict[str, int]
    stats: dict[str, Any]
    skipped: list[dict[str, str]]
    error_message: str | None = None
    created_by: str
    created_at: datetime
    started_at: datetime | None = Field(
        default=None, description="When a run started writing the file (pending until then)"
    )
    finished_at: datetime | None = None
    download_url: str | None = None
    expires_in: int | None = None


class ExportList(BaseModel):
    items: list[ExportOut]
    total: int
    next_cursor: str | None = None


class ExportPreview(BaseModel):
    format: ExportFormat
    extension: str
    content_type: str
    # JSONL formats: one parsed record per conversation; generic: the conversation
    # objects (header in ``metadata``); csv: the file text, header row included.
    records: list[Any]
    metadata: dict[str, Any] | None = None
    skipped: list[dict[str, str]]


class AuditList(BaseModel):
    items: list[AuditRecord]
    total: int
    next_cursor: str | None = None


class SubscriptionOut(BaseModel):
    email: str
    subscription_arn: str | None = None
    created_at: str


class SubscriptionList(BaseModel):
    items: list[SubscriptionOut]
    total: int
    next_cursor: str | None = None


class NotificationOut(BaseModel):
    message_id: str
    subject: str
    body: str
    kind: str
    job_id: str | None = None
    dataset_id: str | None = None
    at: datetime


class NotificationList(BaseModel):
    items: list[NotificationOut]
    total: int
    next_cursor: str | None = None


class ChunkList(BaseModel):
    items: list[Chunk]
    total: int
    next_cursor: str | None = None


class ChunkImportResult(BaseModel):
    imported: int
    dataset: DatasetOut


class PlanResult(BaseModel):
    planned: int
    tiers: dict[str, int]
    pair_coverage: dict[str, Any] | None = None
    conversation_ids: list[str]
    scenario_without_excerpt: int = Field(
        default=0,
        description="Scenario conversations planned without a document excerpt (no chunks)",
    )
    excerpt_free_templates: list[str] = Field(
        default_factory=list, description="The templates those are written with"
    )
    notes: list[str] = Field(default_factory=list, description="What the plan had to work around")


class LoginOut(BaseModel):
    id_token: str = Field(description="Send as 'Authorization: Bearer <id_token>'")
    expires_in: int = Field(description="Seconds until the token expires")
    tenant_id: str
    email: str


class DemoUser(BaseModel):
    email: str
    password: str
    organisation: str


class Health(BaseModel):
    status: Literal["ok"]
    llm: Literal["anthropic", "simulator"]
    llm_note: str
    model: str
    stage: str
    auth: Literal["cognito", "none"]
    prices_as_of: str
    demo_users: list[DemoUser] | None = Field(
        default=None, description="Local stack only: the demo sign-ins (one tenant each)"
    )


class AnyObject(BaseModel):
    model_config = ConfigDict(extra="allow")


class Repetition(BaseModel):
    text: str
    count: int
    share: float
    conversation_ids: list[str]


class DiversityOut(BaseModel):
    dataset_id: str
    conversation_count: int
    diversity_score: float | None = Field(description="100 when nothing repeats")
    distinct: dict[str, dict[str, float | None]] = Field(
        description="distinct-1/2/3 (unique / total word n-grams) for user, assistant and all"
    )
    openers: dict[str, list[Repetition]]
    phrases: dict[str, list[Repetition]]
    near_duplicate_clusters: list[dict[str, Any]]
    near_duplicate_count: int
    cells: list[dict[str, Any]] = Field(description="persona x topic cells, least diverse first")
    offenders: list[dict[str, Any]] = Field(
        description="conversations that repeat the most, each with its reasons"
    )
    thresholds: dict[str, float]
    computed_at: datetime
    seconds: float


class CalibrationBand(BaseModel):
    band: str
    min: float
    max: float
    reviewed: int
    approved: int
    rejected: int
    approval_rate: float | None


class CalibrationOut(BaseModel):
    dataset_id: str
    decisions: int
    approved: int
    rejected: int
    bands: list[CalibrationBand]
    checks: list[dict[str, Any]] = Field(
        description="per check: reviewed conversations it flagged, how many were rejected"
    )
    current: dict[str, Any] | None = Field(description="what the flag line (6) does today")
    suggested: dict[str, Any] | None = Field(
        description="the threshold that agrees best with the reviewers (30+ decisions)"
    )
    min_decisions: int
    note: str | None
