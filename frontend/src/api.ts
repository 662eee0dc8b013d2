/**
 * The one typed client for the Bright Run HTTP API (see shared/API.md).
 *
 * Every request the app makes goes through this module, and every response type the
 * screens read is declared here, so following a backend field change is a one-file edit.
 * All paths are relative (`/api/...`): the app is served from the API's origin. In dev
 * mode `VITE_API_BASE` may point at another origin.
 */

import { FILTER_CHOICES, TAXONOMY_FIELD as GENERATED_TAXONOMY_FIELD, TAXONOMY_FILTERS } from "./generated/filters";

// --------------------------------------------------------------------------- enums

// The list's filters come from the API's OpenAPI document (generated/filters.ts).
export const STATUSES = FILTER_CHOICES.status;
export type ConversationStatus = (typeof STATUSES)[number];

export const TIERS = FILTER_CHOICES.tier;
export type Tier = (typeof TIERS)[number];

/** Taxonomy-driven filter dimensions (singular: conversation field / query param). */
export const DIMENSIONS = TAXONOMY_FILTERS;
export type Dimension = (typeof DIMENSIONS)[number];
export const TAXONOMY_FIELD: Record<Dimension, keyof Taxonomy> = GENERATED_TAXONOMY_FIELD;

export const EXPORT_FORMATS = ["openai", "anthropic", "sharegpt", "hf_messages", "generic", "csv"] as const;
export type ExportFormat = (typeof EXPORT_FORMATS)[number];

export type JobStatus = "queued" | "running" | "pausing" | "paused" | "completed" | "failed" | "cancelled";
export const ACTIVE_JOB_STATUSES: readonly JobStatus[] = ["queued", "running", "pausing", "paused"];

export type BulkAction = "approve" | "reject" | "delete" | "regenerate" | "restore";

// --------------------------------------------------------------------------- models

export interface TaxonomyEntry {
  name: string;
  description?: string;
}

export interface Taxonomy {
  personas: TaxonomyEntry[];
  emotions: TaxonomyEntry[];
  topics: TaxonomyEntry[];
  intents: TaxonomyEntry[];
  tones: TaxonomyEntry[];
}

/** `POST /api/datasets/{id}/taxonomy/preview`: nothing is written. */
export interface TaxonomyPreview {
  affected: { dimension: string; value: string; total: number; by_status: Record<string, number> }[];
  affected_total: number;
  affected_not_generated: number;
  note?: string;
}

export interface TierDistribution {
  template: number;
  scenario: number;
  edge_case: number;
}

export interface RequiredDisclaimer {
  text: string;
  /** Topic names that need it; empty: every conversation. */
  topics: string[];
}

export interface BrandTerm {
  term: string;
  /** Known misspellings to flag. */
  wrong: string[];
}

/** What the business's assistant must never or must always say; violations flag. */
export interface QualityRules {
  banned_phrases: string[];
  required_disclaimers: RequiredDisclaimer[];
  brand_terms: BrandTerm[];
}

export type JudgeMode = "auto" | "off";

export interface Dataset {
  dataset_id: string;
  name: string;
  description?: string;
  target_count: number;
  tier_distribution: TierDistribution;
  budget_usd: number | null;
  model?: string | null;
  taxonomy: Taxonomy;
  chunk_count: number;
  created_at: string;
  updated_at?: string;
  version?: number;
  /** What generation has cost so far. */
  spent_usd?: number;
  /** Archived: read-only (no planning, generation or edits), still exportable. */
  archived?: boolean;
  archived_at?: string | null;
  archived_by?: string | null;
  quality_rules?: QualityRules;
  /** auto: the LLM judge reviews every generated conversation. */
  judge_mode?: JudgeMode;
  /** Rejecting needs a reviewer note (single and bulk). */
  require_reject_note?: boolean;
}

/** `DELETE /api/datasets/{id}`: `deleted: false` (202) means call again to finish. */
export interface DatasetDeleted {
  dataset_id: string;
  deleted: boolean;
  status: "deleted" | "deleting";
  removed: Record<string, number>;
  exports_kept: boolean;
}

/** One generation of a conversation (`GET /api/conversations/{id}/versions`). */
export interface VersionSummary {
  number: number;
  title?: string | null;
  turn_count?: number;
  quality_score?: number | null;
  model?: string | null;
  template_id?: string | null;
  template_version?: number | null;
  actual_cost_usd?: number | null;
  generated_at?: string | null;
  superseded_at?: string | null;
}

export interface ConversationVersion extends VersionSummary {
  current: boolean;
  turns: Turn[];
}

/** A conversation in the trash. */
export interface TrashItem extends ConversationSummary {
  trashed_at?: string | null;
  trashed_by?: string | null;
  purge_at: string;
  days_left: number;
}

export interface Turn {
  turn_number: number;
  role: "user" | "assistant";
  content: string;
  /** A reviewer's feedback on this one turn (null: none). */
  feedback?: TurnFeedback | null;
}

export interface TurnFeedback {
  bad: boolean;
  note: string | null;
  edited: boolean;
  original_content?: string | null;
  edited_at?: string | null;
  edited_by?: string | null;
  by?: string;
  at?: string;
}

/** `PUT /api/conversations/{id}/turns/{n}/feedback`: at least one of bad, note, content. */
export interface TurnFeedbackBody {
  expected_version: number;
  bad?: boolean;
  note?: string | null;
  content?: string;
}

/** What a decision's response carries so that it can be undone. */
export interface Undoable {
  decision_id?: string | null;
  undo_token?: string | null;
}

export interface UndoResult extends Undoable {
  action: "undo";
  undoes: string;
  succeeded: string[];
  failed: BulkFailure[];
}

/** The rows a bulk action targets: listed ids, or every row matching the list's filter. */
export type BulkTarget = { ids: string[] } | { filter: ConversationQuery };

/** `bulk-action` with `preview: true`: what the action would do, nothing written. */
export interface BulkPreview {
  action: BulkAction;
  matched: number;
  limit: number;
  over_limit: boolean;
  by_status: Record<string, number>;
  will_change: number;
  already: number;
  will_fail: number;
  fail_reasons?: Record<string, number>;
  note_required?: boolean;
  ids?: string[];
}

export type CheckKind = "structure" | "content" | "rule" | "judge";
export type CheckSeverity = "critical" | "major" | "minor";

export interface QualityCheck {
  name: string;
  passed: boolean;
  score: number;
  weight?: number;
  detail?: string;
  kind?: CheckKind;
  /** How bad a failed defect check is; null for the structural checks. */
  severity?: CheckSeverity | null;
  /** What a reviewer reads, e.g. "turn 7: the assistant refuses as an AI model". */
  reasons?: string[];
  /** Turn numbers this check points at. */
  turns?: number[];
  suspicion?: number;
}

/** The judge's rubric dimensions, in the order the UI shows them. */
export const JUDGE_DIMENSIONS = ["persona_fidelity", "emotional_realism", "helpfulness", "faithfulness", "brand_safety"] as const;
export type JudgeDimensionName = (typeof JUDGE_DIMENSIONS)[number];

export interface JudgeDimension {
  score: number;
  reason: string;
}

/** The LLM judge's verdict on one conversation. */
export interface JudgeVerdict {
  dimensions: Partial<Record<JudgeDimensionName, JudgeDimension>> & Record<string, JudgeDimension | undefined>;
  overall: number | null;
  summary?: string;
  model?: string;
  rubric_version?: string;
  content_hash?: string;
  /** Answered by the offline simulator: shown for the demo, never counted in the score. */
  simulated: boolean;
  cached?: boolean;
  cost_usd?: number;
  /** The judge could not answer; the heuristic score stands. */
  error?: string | null;
  judged_at?: string;
}

export interface QualityReport {
  score: number;
  checks: QualityCheck[];
  flagged?: boolean;
  duplicate_of?: string | null;
  judge_score?: number | null;
  judge_cost_usd?: number | null;
  validated_at?: string;
  /** Why it is flagged, worst first. */
  reasons?: string[];
  /** Turns to highlight. */
  flag_turns?: number[];
  /** The score before the judge is combined in. */
  heuristic_score?: number | null;
  judge?: JudgeVerdict | null;
}

/** `GET /api/conversations/quality-stats`. */
export interface QualityStats {
  count: number;
  scored: number;
  mean: number | null;
  median?: number | null;
  min?: number | null;
  max?: number | null;
  /** Keys "1".."10": bucket k holds scores in [k, k+1); bucket 10 holds exactly 10. */
  histogram: Record<string, number>;
  flagged: number;
  flag_threshold?: number;
  share_high_quality?: number | null;
  duplicates?: number;
  approval_rate?: number | null;
}

/** An opener or phrase that recurs across a dataset's conversations. */
export interface Repetition {
  text: string;
  count: number;
  share: number;
  conversation_ids: string[];
}

export interface NearDuplicateCluster {
  conversation_ids: string[];
  size: number;
  max_similarity: number;
}

/** A persona x topic cell of the diversity report (least diverse first). */
export interface DiversityCell {
  persona: string;
  topic: string;
  count: number;
  distinct_2: number | null;
  near_duplicates: number;
  shared_openers: number;
  conversation_ids: string[];
}

export interface DiversityOffender {
  conversation_id: string;
  reasons: string[];
  weight: number;
}

export type DistinctN = { distinct_1?: number | null; distinct_2?: number | null; distinct_3?: number | null };

/** `GET /api/conversations/diversity`. */
export interface Diversity {
  dataset_id: string;
  conversation_count: number;
  /** 0..100; 100 when nothing repeats. */
  diversity_score: number | null;
  distinct: { user?: DistinctN; assistant?: DistinctN; all?: DistinctN; per_conversation?: DistinctN };
  openers: { user?: Repetition[]; assistant?: Repetition[] };
  phrases: { user?: Repetition[]; assistant?: Repetition[] };
  near_duplicate_clusters: NearDuplicateCluster[];
  near_duplicate_count?: number;
  cells: DiversityCell[];
  offenders: DiversityOffender[];
  /** What counts as a repeat: opener_words, phrase_words, min_share, min_conversations. */
  thresholds?: Record<string, number>;
  computed_at?: string;
  seconds?: number;
}

export interface CalibrationBand {
  band: string;
  min: number;
  max: number;
  reviewed: number;
  approved: number;
  rejected: number;
  approval_rate: number | null;
}

export interface CheckPrecision {
  check: string;
  flagged: number;
  rejected: number;
  precision: number | null;
}

/** What flagging below `threshold` does on the reviewed conversations. */
export interface FlagLine {
  threshold: number;
  flagged: number;
  rejections_caught: number;
  recall: number | null;
  precision: number | null;
  approved_flagged: number;
  false_flag_rate: number | null;
}

/** `GET /api/conversations/calibration`. */
export interface Calibration {
  dataset_id: string;
  decisions: number;
  approved: number;
  rejected: number;
  bands: CalibrationBand[];
  checks: CheckPrecision[];
  current: FlagLine | null;
  /** Null until `min_decisions` review decisions exist (and both decisions occur). */
  suggested: FlagLine | null;
  min_decisions: number;
  note: string | null;
}

/** One row of `GET /api/conversations`. */
export interface ConversationSummary {
  conversation_id: string;
  dataset_id?: string;
  persona: string;
  emotion: string;
  topic: string;
  intent: string;
  tone: string;
  tier: Tier;
  status: ConversationStatus;
  quality_score: number | null;
  flagged: boolean;
  /** Why it is flagged, worst first (at most 3). */
  quality_reasons?: string[];
  actual_cost_usd: number | null;
  estimated_cost_usd: number | null;
  created_at: string;
  version: number;
  turn_count: number;
  title?: string | null;
  error_message?: string | null;
}

export interface AuditEntry {
  actor: string;
  action: string;
  at: string;
  details?: Record<string, unknown> | null;
}

/** `GET /api/conversations/{id}`: the conversation plus turns, quality, audit, neighbours. */
export interface ConversationDetail extends ConversationSummary, Undoable {
  arc?: string | null;
  scenario?: string | null;
  edge_case_type?: string | null;
  chunk_id?: string | null;
  document_id?: string | null;
  model?: string | null;
  template_id?: string | null;
  template_version?: number | null;
  input_tokens?: number;
  output_tokens?: number;
  generation_duration_ms?: number | null;
  reviewer_notes?: string | null;
  reviewed_by?: string | null;
  reviewed_at?: string | null;
  approved_by?: string | null;
  approved_at?: string | null;
  generated_at?: string | null;
  updated_at?: string;
  turns: Turn[];
  quality: QualityReport | null;
  audit: AuditEntry[];
  previous_id: string | null;
  next_id: string | null;
  /** How many generations it has had; earlier ones newest first (without turns). */
  versions?: { count: number; current: number | null; earlier: VersionSummary[] } | null;
}

export interface ConversationPage {
  items: ConversationSummary[];
  total: number;
  page?: number;
  page_size?: number;
  next_cursor?: string | null;
}

export interface BulkFailure {
  id: string;
  error: string | { code?: string; message?: string };
}

export interface BulkResult extends Undoable {
  succeeded: string[];
  failed: BulkFailure[];
  /** Set for `regenerate`: the generation job that rewrites them. */
  job_id?: string | null;
  /** With a filter: how many matched, how many were acted on (the rest: over the limit). */
  matched?: number;
  acted_on?: number;
  remaining?: number;
}

/** The filter part of a list query as `bulk-action`'s `filter` (no paging, empty lists out). */
export function bulkFilter(q: ConversationQuery): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(q)) {
    if (k === "page" || k === "page_size" || k === "cursor") continue;
    if (v === null || v === undefined || v === "") continue;
    if (Array.isArray(v) && v.length === 0) continue;
    out[k] = v;
  }
  return out;
}

export function bulkFailureText(f: BulkFailure): string {
  const e = f.error;
  return typeof e === "string" ? e : e?.message ?? e?.code ?? "failed";
}

export interface Estimate {
  count: number;
  estimated_cost_usd: number;
  estimated_seconds: number;
  over_budget: boolean;
  budget_usd?: number | null;
  budget_remaining_usd?: number | null;
  estimated_economy_cost_usd?: number;
  /** What the estimate was built from, e.g. "observed mean of 10 generated conversations of this dataset". */
  basis?: string;
  basis_scope?: "dataset" | "template" | "defaults";
  observed_conversations?: number;
  /** The ~95% range of the cost (in the estimate's mode). */
  estimated_cost_low_usd?: number;
  estimated_cost_high_usd?: number;
  estimated_seconds_low?: number;
  estimated_seconds_high?: number;
  time_basis?: string;
  /** The range's high end exceeds what is left of the budget (the point estimate may not). */
  may_exceed_budget?: boolean;
  mode?: "standard" | "economy";
  /** The LLM judge's share, included in the totals above. */
  estimated_judge_cost_usd?: number;
  judge_model?: string | null;
}

export interface BudgetWarning {
  threshold_percent: number;
  spent_usd: number;
  budget_usd: number;
  at?: string;
}

export interface Job {
  job_id: string;
  dataset_id?: string;
  kind?: "single" | "batch" | "all";
  mode?: "standard" | "economy";
  status: JobStatus;
  total: number;
  completed: number;
  failed: number;
  skipped: number;
  current?: { conversation_id?: string | null; persona?: string | null; topic?: string | null } | null;
  percent?: number;
  eta_seconds?: number | null;
  cost_usd: number;
  estimated_cost_usd: number;
  /** The start estimate's basis and range. */
  estimate?: {
    basis?: string;
    estimated_cost_low_usd?: number;
    estimated_cost_high_usd?: number;
    mode?: string;
  } | null;
  budget_usd?: number | null;
  /** API.md names it `budget`; either is read. */
  budget?: number | null;
  warnings?: BudgetWarning[];
  pause_reason?: string | null;
  error_message?: string | null;
  created_at?: string;
  finished_at?: string | null;
  /** Calls in flight: the adaptive target, how many now, and what limits the target. */
  concurrency?: JobConcurrency | null;
}

/** Why the in-flight target is where it is (see docs/architecture.md). */
export type ConcurrencyLimit = "rpm" | "otpm" | "latency" | "cap" | "ceiling" | "backoff" | "breaker";

export interface JobConcurrency {
  target?: number;
  in_flight?: number;
  limit_reason?: ConcurrencyLimit | string;
  /** Mean seconds per call the target is built on (observed, else the assumption). */
  latency_s?: number;
  rate_per_min?: number;
  /** Share of the account rate in use after back-off (1: all of it). */
  rate_share?: number;
  cap?: number | null;
  ceiling?: number;
  /** Epoch seconds until which every call waits (the provider kept refusing). */
  breaker_open_until?: number | null;
}

export interface CoverageMatrix {
  rows: string[];
  cols: string[];
  cells: number[][];
}

export type CoverageGap = string | Record<string, unknown>;

/** One gap to plan into (`POST /api/datasets/{id}/fill-gaps` `{gap, count}`). */
export type GapSelector = Partial<Record<Dimension | "tier", string>>;

export interface Coverage {
  pairs: {
    persona_emotion?: CoverageMatrix;
    persona_topic?: CoverageMatrix;
    [pair: string]: CoverageMatrix | undefined;
  };
  /** Conversations per tier (counted ones) vs the tier's target. */
  tiers: Partial<Record<Tier, { count: number; target: number }>>;
  gaps: CoverageGap[];
  gap_count?: number;
  note?: string;
  /** Conversations per taxonomy value (`total`: every status counted), per dimension. */
  dimensions?: Partial<Record<Dimension, { value: string; total: number; in_taxonomy?: boolean }[]>>;
}

/**
 * Accepts `tiers` as `{template: {count, target}}` or as a list of
 * `{tier, target, effective|total|count}`, and `gaps` as a list or as
 * `{pairs: [...], tiers: [...], dimensions: [...]}`.
 */
export function normalizeCoverage(raw: unknown): Coverage {
  const r = (raw ?? {}) as Record<string, unknown>;
  const tiers: Coverage["tiers"] = {};
  const rawTiers = r["tiers"];
  if (Array.isArray(rawTiers)) {
    for (const t of rawTiers as Record<string, unknown>[]) {
      const name = t["tier"] as Tier;
      const count = Number(t["effective"] ?? t["count"] ?? t["total"] ?? 0);
      tiers[name] = { count, target: Number(t["target"] ?? 0) };
    }
  } else if (rawTiers && typeof rawTiers === "object") {
    for (const [name, v] of Object.entries(rawTiers as Record<string, Record<string, unknown>>)) {
      tiers[name as Tier] = { count: Number(v["count"] ?? v["effective"] ?? v["total"] ?? 0), target: Number(v["target"] ?? 0) };
    }
  }
  let gaps: CoverageGap[] = [];
  const rawGaps = r["gaps"];
  if (Array.isArray(rawGaps)) gaps = rawGaps as CoverageGap[];
  else if (rawGaps && typeof rawGaps === "object") {
    for (const [group, list] of Object.entries(rawGaps as Record<string, unknown>)) {
      if (Array.isArray(list)) for (const g of list) gaps.push(g && typeof g === "object" ? { group, ...(g as Record<string, unknown>) } : (g as CoverageGap));
    }
  }
  const pairs = (r["pairs"] && typeof r["pairs"] === "object" ? r["pairs"] : {}) as Coverage["pairs"];
  return {
    pairs,
    tiers,
    gaps,
    gap_count: typeof r["gap_count"] === "number" ? r["gap_count"] : gaps.length,
    dimensions: r["dimensions"] && typeof r["dimensions"] === "object" ? (r["dimensions"] as Coverage["dimensions"]) : undefined,
    note: typeof r["note"] === "string" ? r["note"] : undefined,
  };
}

export interface TemplateVersion {
  version: number;
  text: string;
  parameters?: string[];
  change_note?: string;
  created_by?: string;
  created_at?: string;
}

export interface PromptTemplate {
  template_id: string;
  name: string;
  tier: Tier;
  text: string;
  description?: string;
  parameters?: string[];
  version: number;
  is_active: boolean;
  weight: number;
  created_at?: string;
  updated_at?: string;
}

/** Per template version: how many conversations it wrote and how they were reviewed. */
export interface TemplateVersionUsage {
  version: number;
  usage: number;
  approved: number;
  rejected: number;
  mean_quality?: number | null;
  approval_rate?: number | null;
}

export interface TemplateDetail extends PromptTemplate {
  versions: TemplateVersion[];
  usage: TemplateVersionUsage[];
  total_usage: number;
  /** 0..1 over all versions; null before any review. */
  approval_rate: number | null;
  mean_quality?: number | null;
}

export interface ExportFile {
  split?: string | null;
  filename?: string;
  count?: number;
  bytes?: number;
  sha256?: string;
  download_url?: string;
}

/** Token statistics of one split (or of the whole export). */
export interface TokenSummary {
  records: number;
  total: number;
  min: number | null;
  mean: number | null;
  p95: number | null;
  max: number | null;
  over: Record<string, number>;
}

export interface ExportTokens {
  tokenizer: { name: string; method: string; note?: string };
  splits: Record<string, TokenSummary>;
  all: TokenSummary;
}

export interface ExportRecord {
  export_id: string;
  format: ExportFormat;
  filters?: Record<string, unknown>;
  split?: Record<string, number> | null;
  status: "pending" | "ready" | "failed";
  filename?: string | null;
  files?: ExportFile[];
  conversation_count?: number;
  counts?: Record<string, number>;
  stats?: Record<string, unknown>;
  skipped?: Record<string, string>[];
  error_message?: string | null;
  download_url?: string | null;
  created_at?: string;
  finished_at?: string | null;
}

export interface Subscription {
  email: string;
  status?: string;
  subscription_id?: string;
  created_at?: string;
}

export interface NotificationMessage {
  message_id?: string;
  subject: string;
  body: string;
  kind: string;
  job_id?: string | null;
  dataset_id?: string | null;
  at: string;
}

export interface DemoUser {
  email: string;
  password: string;
  organisation: string;
}

export interface Health {
  status: string;
  llm: "anthropic" | "simulator" | string;
  llm_note?: string;
  model?: string;
  /** "cognito": every call needs a signed-in user's token; "none": no sign-in. */
  auth?: "cognito" | "none" | string;
  /** Local stack only: the demo sign-ins (one tenant each). */
  demo_users?: DemoUser[] | null;
  [key: string]: unknown;
}

/** `POST /api/auth/login`. */
export interface LoginResult {
  id_token: string;
  expires_in: number;
  tenant_id: string;
  email: string;
}

export interface ImportResult {
  imported: number;
  dataset?: Dataset;
}

/** Result of plan / fill-gaps: the `not_generated` conversations added. */
export interface PlanResult {
  planned: number;
  tiers?: Record<string, number>;
  conversation_ids?: string[];
}

// --------------------------------------------------------------------------- request shapes

export interface ConversationQuery {
  dataset_id?: string | null;
  persona?: string[];
  emotion?: string[];
  topic?: string[];
  intent?: string[];
  tone?: string[];
  tier?: string[];
  status?: string[];
  quality_min?: number | null;
  quality_max?: number | null;
  flagged?: boolean | null;
  q?: string;
  sort?: string;
  order?: "asc" | "desc";
  page_size?: number;
  page?: number;
}

export interface CreateDatasetBody {
  name: string;
  target_count?: number;
  tier_distribution?: TierDistribution;
  budget_usd?: number | null;
  description?: string;
}

/** `PATCH /api/datasets/{id}`: any subset; `version` refuses a stale write with 409. */
export interface DatasetPatchBody extends Partial<CreateDatasetBody> {
  quality_rules?: QualityRules;
  judge_mode?: JudgeMode;
  require_reject_note?: boolean;
  version?: number;
}

/** Export filters (approved conversations only; no status / text search). */
export interface ExportFilters {
  dataset_id?: string;
  persona?: string[];
  emotion?: string[];
  topic?: string[];
  intent?: string[];
  tone?: string[];
  tier?: string[];
  quality_min?: number;
  quality_max?: number;
}

export const EXPORT_FILTER_KEYS = ["dataset_id", "persona", "emotion", "topic", "intent", "tone", "tier", "quality_min", "quality_max"] as const;

/** The export-relevant, non-empty part of a conversation query. */
export function toExportFilters(q: ConversationQuery): ExportFilters {
  const out: Record<string, unknown> = {};
  for (const k of EXPORT_FILTER_KEYS) {
    const v = q[k];
    if (v === null || v === undefined || v === "") continue;
    if (Array.isArray(v) && v.length === 0) continue;
    out[k] = v;
  }
  return out as ExportFilters;
}

export interface ExportBody {
  format: ExportFormat;
  filters?: ExportFilters;
  split?: { train: number; validation: number; test: number } | null;
  /** The split's seed (recorded; the same seed gives the same split). */
  seed?: number;
  options?: { assistant_weights?: boolean; csv_formula_neutralisation?: boolean };
}

export const FINE_TUNE_BASE_MODELS = ["anthropic.claude-3-haiku-20240307-v1:0:200k"] as const;

export interface FineTuneRequest {
  base_model?: string;
  epochs?: number;
  learning_rate_multiplier?: number;
  batch_size?: number;
  confirm?: boolean;
}

export interface FineTuneEstimate {
  base_model: string;
  training_tokens: number;
  epochs: number;
  price_per_1k_tokens_usd: number;
  estimated_cost_usd: number;
  budget_usd: number | null;
  spent_usd: number | null;
  committed_fine_tunes_usd: number;
  budget_remaining_usd: number | null;
  over_budget: boolean;
  tokenizer?: { name: string } | null;
}

export type FineTuneStatus = "Submitting" | "SubmitFailed" | "InProgress" | "Completed" | "Failed" | "Stopping" | "Stopped";
export const ACTIVE_FINE_TUNE_STATUSES: readonly FineTuneStatus[] = ["Submitting", "InProgress", "Stopping"];

export interface FineTune {
  fine_tune_id: string;
  export_id: string;
  dataset_id?: string | null;
  base_model: string;
  hyperparameters: Record<string, number>;
  job_name: string;
  custom_model_name: string;
  job_arn?: string | null;
  output_model_arn?: string | null;
  status: FineTuneStatus;
  failure_message?: string | null;
  training_records: number;
  validation_records: number;
  training_tokens: number;
  estimated_cost_usd: number;
  created_at: string;
  checked_at?: string | null;
}

// --------------------------------------------------------------------------- errors

export interface ApiErrorBody {
  code: string;
  message: string;
  details?: Record<string, unknown>;
}

/** Every failed call rejects with this: the API's `{"error": {code, message, details}}`. */
export class ApiError extends Error {
  readonly status: number;
  readonly code: string;
  readonly details: Record<string, unknown>;

  constructor(status: number, code: string, message: string, details?: Record<string, unknown>) {
    super(message);
    this.name = "ApiError";
    this.status = status;
    this.code = code;
    this.details = details ?? {};
  }

  /** Row-numbered import errors (`error.details.errors[]`) as readable lines. */
  rowErrors(): string[] {
    const errs = this.details["errors"];
    if (!Array.isArray(errs)) return [];
    return errs.map((e: unknown) => describeRowError(e));
  }
}

function describeRowError(e: unknown): string {
  if (typeof e === "string") return e;
  if (e && typeof e === "object") {
    const o = e as Record<string, unknown>;
    const row = o["row"] ?? o["line"] ?? o["index"];
    const field = o["field"] ?? o["column"] ?? (Array.isArray(o["loc"]) ? (o["loc"] as unknown[]).join(".") : undefined);
    const msg = o["message"] ?? o["msg"] ?? o["error"] ?? JSON.stringify(o);
    const parts: string[] = [];
    if (typeof o["dimension"] === "string" && o["dimension"]) parts.push(String(o["dimension"]));
    if (row !== undefined && row !== null) parts.push(`Row ${String(row)}`);
    if (field !== undefined && field !== null && field !== "") parts.push(String(field));
    return parts.length ? `${parts.join(", ")}: ${String(msg)}` : String(msg);
  }
  return String(e);
}

const STATUS_TEXT: Record<number, string> = {
  400: "The request was not accepted",
  401: "Your session has expired: please sign in again",
  403: "You do not have permission to do that",
  404: "Not found",
  409: "Conflict: the data changed in the meantime",
  413: "That file or request is too large",
  422: "The request could not be processed",
  429: "Too many requests: please wait a moment and try again",
  500: "The server had a problem",
  502: "The server is unreachable right now",
  503: "The service is temporarily unavailable",
  504: "The server took too long to answer",
};

/** Turn a non-2xx response into an ApiError, whatever its body. */
export async function errorFromResponse(res: Response): Promise<ApiError> {
  let text = "";
  try {
    text = await res.text();
  } catch {
    text = "";
  }
  if (text) {
    try {
      const parsed: unknown = JSON.parse(text);
      if (parsed && typeof parsed === "object" && "error" in parsed) {
        const err = (parsed as { error: unknown }).error;
        if (err && typeof err === "object") {
          const e = err as Partial<ApiErrorBody>;
          return new ApiError(
            res.status,
            typeof e.code === "string" ? e.code : `http_${res.status}`,
            typeof e.message === "string" && e.message ? e.message : STATUS_TEXT[res.status] ?? `Request failed (${res.status})`,
            e.details && typeof e.details === "object" ? e.details : {},
          );
        }
        if (typeof err === "string") return new ApiError(res.status, `http_${res.status}`, err);
      }
      if (parsed && typeof parsed === "object" && "message" in parsed) {
        const m = (parsed as { message: unknown }).message;
        if (typeof m === "string") return new ApiError(res.status, `http_${res.status}`, m);
      }
    } catch {
      /* not JSON: fall through */
    }
  }
  const base = STATUS_TEXT[res.status] ?? `Request failed (${res.status})`;
  return new ApiError(res.status, `http_${res.status}`, `${base} (HTTP ${res.status}).`);
}

// --------------------------------------------------------------------------- transport

function apiBase(): string {
  const env = import.meta.env;
  if (env.DEV && typeof env.VITE_API_BASE === "string" && env.VITE_API_BASE) {
    return env.VITE_API_BASE.replace(/\/+$/, "");
  }
  return "";
}

let authToken: string | null = null;
/** Optional bearer token (Cognito id token) sent with every request. */
export function setAuthToken(token: string | null): void {
  authToken = token;
}

const LOGIN_PATH = "/api/auth/login";
let onUnauthorized: (() => void) | null = null;
/** Called when any call (other than signing in) answers 401: the session is over. */
export function setUnauthorizedHandler(handler: (() => void) | null): void {
  onUnauthorized = handler;
}

type QueryValue = string | number | boolean | null | undefined | readonly (string | number)[];

/** Build a query string: arrays repeat the key, empty values are left out. */
export function buildQuery(params: Record<string, QueryValue>): string {
  const sp = new URLSearchParams();
  for (const [key, value] of Object.entries(params)) {
    if (value === undefined || value === null || value === "") continue;
    if (Array.isArray(value)) {
      for (const v of value as readonly (string | number)[]) sp.append(key, String(v));
    } else {
      sp.append(key, String(value));
    }
  }
  const s = sp.toString();
  return s ? `?${s}` : "";
}

interface RequestOptions {
  query?: Record<string, QueryValue> | string;
  body?: unknown;
  /** Send `body` as-is (a string) with this content type instead of JSON. */
  rawContentType?: string;
  signal?: AbortSignal;
}

export async function request<T>(method: string, path: string, opts: RequestOptions = {}): Promise<T> {
  let qs = "";
  if (typeof opts.query === "string") qs = opts.query ? (opts.query.startsWith("?") ? opts.query : `?${opts.query}`) : "";
  else if (opts.query) qs = buildQuery(opts.query);
  const headers: Record<string, string> = { Accept: "application/json" };
  let body: string | undefined;
  if (opts.body !== undefined) {
    if (opts.rawContentType) {
      headers["Content-Type"] = opts.rawContentType;
      body = String(opts.body);
    } else {
      headers["Content-Type"] = "application/json";
      body = JSON.stringify(opts.body);
    }
  }
  if (authToken) headers["Authorization"] = `Bearer ${authToken}`;
  let res: Response;
  try {
    res = await fetch(`${apiBase()}${path}${qs}`, { method, headers, body, signal: opts.signal });
  } catch (e) {
    if (e instanceof DOMException && e.name === "AbortError") throw e;
    throw new ApiError(0, "network_error", "Could not reach the server. Check your connection and try again.");
  }
  if (!res.ok) {
    if (res.status === 401 && path !== LOGIN_PATH) onUnauthorized?.();
    throw await errorFromResponse(res);
  }
  if (res.status === 204) return undefined as T;
  const text = await res.text();
  if (!text) return undefined as T;
  try {
    return JSON.parse(text) as T;
  } catch {
    throw new ApiError(res.status, "bad_response", "The server sent an answer the app could not read.");
  }
}

/** Lists are `{items, total}`; a bare array is accepted too. */
export interface ItemList<T> {
  items: T[];
  total: number;
}
function asList<T>(data: unknown): ItemList<T> {
  if (Array.isArray(data)) return { items: data as T[], total: data.length };
  const o = (data ?? {}) as { items?: T[]; total?: number };
  const items = Array.isArray(o.items) ? o.items : [];
  return { items, total: typeof o.total === "number" ? o.total : items.length };
}

const enc = encodeURIComponent;

/** Accept either a flat detail or `{conversation: {...}, turns, ...}`. */
export function normalizeDetail(data: unknown): ConversationDetail {
  const o = (data ?? {}) as Record<string, unknown>;
  const nested = o["conversation"];
  const flat: Record<string, unknown> =
    nested && typeof nested === "object" ? { ...(nested as Record<string, unknown>), ...o } : { ...o };
  delete flat["conversation"];
  const quality = (flat["quality"] as QualityReport | null | undefined) ?? null;
  return {
    ...(flat as unknown as ConversationDetail),
    turns: Array.isArray(flat["turns"]) ? (flat["turns"] as Turn[]) : [],
    audit: Array.isArray(flat["audit"]) ? (flat["audit"] as AuditEntry[]) : [],
    quality: quality ? { ...quality, checks: Array.isArray(quality.checks) ? quality.checks : [] } : null,
    previous_id: (flat["previous_id"] as string | null | undefined) ?? null,
    next_id: (flat["next_id"] as string | null | undefined) ?? null,
  };
}

export function jobBudget(job: Job): number | null {
  return job.budget_usd ?? job.budget ?? null;
}

export function jobPercent(job: Job): number {
  if (typeof job.percent === "number") return job.percent;
  const done = job.completed + job.failed + job.skipped;
  return job.total ? Math.round((1000 * done) / job.total) / 10 : 100;
}

export function isJobActive(job: Job): boolean {
  return ACTIVE_JOB_STATUSES.includes(job.status);
}

// --------------------------------------------------------------------------- endpoints

export const api = {
  health: () => request<Health>("GET", "/api/health"),
  login: (email: string, password: string) => request<LoginResult>("POST", LOGIN_PATH, { body: { email, password } }),

  // datasets
  listDatasets: async (includeArchived = false) =>
    asList<Dataset>(
      await request<unknown>("GET", "/api/datasets", includeArchived ? { query: { include_archived: "true" } } : {}),
    ),
  archiveDataset: (id: string) => request<Dataset>("POST", `/api/datasets/${enc(id)}/archive`, { body: {} }),
  unarchiveDataset: (id: string) => request<Dataset>("POST", `/api/datasets/${enc(id)}/unarchive`, { body: {} }),
  /** Deletes for good; repeats the call while the server is still purging (202). */
  deleteDataset: async (id: string): Promise<DatasetDeleted> => {
    for (let i = 0; ; i++) {
      const r = await request<DatasetDeleted>("DELETE", `/api/datasets/${enc(id)}`);
      if (r.deleted || i >= 50) return r;
    }
  },
  getDataset: (id: string) => request<Dataset>("GET", `/api/datasets/${enc(id)}`),
  createDataset: (body: CreateDatasetBody) => request<Dataset>("POST", "/api/datasets", { body }),
  updateDataset: (id: string, body: DatasetPatchBody) =>
    request<Dataset>("PATCH", `/api/datasets/${enc(id)}`, { body }),
  loadSampleDataset: () => request<Dataset>("POST", "/api/datasets/sample", { body: {} }),
  /** What saving this taxonomy would change, and the conversations that keep old values. */
  previewTaxonomy: (id: string, taxonomy: Taxonomy) =>
    request<TaxonomyPreview>("POST", `/api/datasets/${enc(id)}/taxonomy/preview`, { body: taxonomy }),
  putTaxonomy: (id: string, taxonomy: Taxonomy) =>
    request<Dataset>("PUT", `/api/datasets/${enc(id)}/taxonomy`, { body: taxonomy }),
  importChunksJson: (id: string, chunks: unknown[]) =>
    request<ImportResult>("POST", `/api/datasets/${enc(id)}/chunks`, { body: chunks }),
  importChunksCsv: (id: string, csv: string) =>
    request<ImportResult>("POST", `/api/datasets/${enc(id)}/chunks`, { body: csv, rawContentType: "text/csv" }),
  planDataset: (id: string, body: { count?: number; tier_distribution?: TierDistribution }) =>
    request<PlanResult>("POST", `/api/datasets/${enc(id)}/plan`, { body }),
  /** Every gap, or with `gap` (a pair, one value or a tier) `count` conversations inside that gap. */
  fillGaps: (id: string, gap?: GapSelector, count?: number) =>
    request<PlanResult>("POST", `/api/datasets/${enc(id)}/fill-gaps`, { body: gap ? { gap, count } : {} }),
  coverage: async (datasetId: string): Promise<Coverage> =>
    normalizeCoverage(await request<unknown>("GET", "/api/conversations/coverage-analysis", { query: { dataset_id: datasetId } })),

  // conversations
  listConversations: async (query: ConversationQuery, signal?: AbortSignal) => {
    const data = await request<ConversationPage>("GET", "/api/conversations", {
      query: conversationQueryParams(query),
      signal,
    });
    return { ...data, items: Array.isArray(data?.items) ? data.items : [], total: data?.total ?? 0 };
  },
  /** `listQuery` is the table's filter/sort query string so previous/next follow the table. */
  getConversation: async (id: string, listQuery = "", signal?: AbortSignal) =>
    normalizeDetail(await request<unknown>("GET", `/api/conversations/${enc(id)}`, { query: listQuery, signal })),
  reviewConversation: async (
    id: string,
    body: { status: "approved" | "rejected"; reviewer_notes?: string; version: number },
  ) => normalizeDetail(await request<unknown>("PATCH", `/api/conversations/${enc(id)}`, { body })),
  deleteConversation: (id: string) => request<void>("DELETE", `/api/conversations/${enc(id)}`),
  bulkAction: async (
    body: { action: BulkAction; reviewer_notes?: string; confirm?: boolean; up_to_limit?: boolean; expected_count?: number } & BulkTarget,
  ) => {
    const wire = "filter" in body ? { ...body, filter: bulkFilter(body.filter) } : body;
    const r = await request<Partial<BulkResult>>("POST", "/api/conversations/bulk-action", { body: wire });
    return {
      ...r,
      succeeded: r?.succeeded ?? [],
      failed: r?.failed ?? [],
      job_id: r?.job_id ?? null,
    } satisfies BulkResult;
  },
  /** What a bulk action would do (counts per status, how many change), nothing written. */
  bulkPreview: (body: { action: BulkAction; reviewer_notes?: string } & BulkTarget) =>
    request<BulkPreview>("POST", "/api/conversations/bulk-action", {
      body: { ...("filter" in body ? { ...body, filter: bulkFilter(body.filter) } : body), preview: true },
    }),
  /** Reverts one decision (single or bulk) if nothing changed since; answers a redo token. */
  undo: (undoToken: string, partial = false) =>
    request<UndoResult>("POST", "/api/conversations/undo", { body: { undo_token: undoToken, partial } }),
  turnFeedback: (id: string, turn: number, body: TurnFeedbackBody) =>
    request<{ conversation: Record<string, unknown>; turn: Turn } & Undoable>(
      "PUT",
      `/api/conversations/${enc(id)}/turns/${turn}/feedback`,
      { body },
    ),
  /** Runs the quality checks again; `judge` also asks the LLM judge (a paid call unless cached). */
  validateConversation: async (id: string, judge = false) =>
    normalizeDetail(await request<unknown>("POST", `/api/conversations/${enc(id)}/validate`, { body: judge ? { judge: true } : {} })),
  qualityStats: (datasetId: string, signal?: AbortSignal) =>
    request<QualityStats>("GET", "/api/conversations/quality-stats", { query: { dataset_id: datasetId }, signal }),
  diversity: (datasetId: string, signal?: AbortSignal) =>
    request<Diversity>("GET", "/api/conversations/diversity", { query: { dataset_id: datasetId }, signal }),
  calibration: (datasetId: string, signal?: AbortSignal) =>
    request<Calibration>("GET", "/api/conversations/calibration", { query: { dataset_id: datasetId }, signal }),
  listTrash: async (datasetId: string) =>
    asList<TrashItem>(await request<unknown>("GET", "/api/conversations/trash", { query: { dataset_id: datasetId } })),
  restoreConversation: (id: string) =>
    request<ConversationSummary>("POST", `/api/conversations/${enc(id)}/restore`, { body: {} }),
  conversationVersion: (id: string, n: number) =>
    request<ConversationVersion>("GET", `/api/conversations/${enc(id)}/versions/${n}`),

  // generation
  estimate: (body: { dataset_id: string; only?: "not_generated" | "failed"; mode?: "economy" } | { ids: string[]; mode?: "economy" }) =>
    request<Estimate>("POST", "/api/conversations/estimate", { body }),
  generate: (conversationId: string, confirm = false) =>
    request<{ job_id: string }>("POST", "/api/conversations/generate", {
      body: confirm ? { conversation_id: conversationId, confirm } : { conversation_id: conversationId },
    }),
  generateBatch: (conversationIds: string[], confirm: boolean, mode?: "economy") =>
    request<{ job_id: string }>("POST", "/api/conversations/generate-batch", {
      body: { conversation_ids: conversationIds, confirm, ...(mode ? { mode } : {}) },
    }),
  generateAll: (datasetId: string, only: "not_generated" | "failed", confirm: boolean, mode?: "economy") =>
    request<{ job_id: string }>("POST", "/api/conversations/generate-all", {
      body: { dataset_id: datasetId, only, confirm, ...(mode ? { mode } : {}) },
    }),
  getJob: (id: string) => request<Job>("GET", `/api/jobs/${enc(id)}`),
  listActiveJobs: async (datasetId: string) =>
    asList<Job>(await request<unknown>("GET", "/api/jobs", { query: { dataset_id: datasetId, active: "true" } })),
  pauseJob: (id: string) => request<Job>("POST", `/api/jobs/${enc(id)}/pause`, { body: {} }),
  resumeJob: (id: string) => request<Job>("POST", `/api/jobs/${enc(id)}/resume`, { body: {} }),
  cancelJob: (id: string) => request<Job>("POST", `/api/jobs/${enc(id)}/cancel`, { body: {} }),

  // templates
  listTemplates: async () => asList<PromptTemplate>(await request<unknown>("GET", "/api/templates")),
  getTemplate: async (id: string) => {
    const t = await request<TemplateDetail>("GET", `/api/templates/${enc(id)}`);
    const usage = Array.isArray(t.usage) ? t.usage : [];
    return {
      ...t,
      versions: Array.isArray(t.versions) ? t.versions : [],
      usage,
      total_usage: typeof t.total_usage === "number" ? t.total_usage : usage.reduce((n, u) => n + (u.usage ?? 0), 0),
      approval_rate: t.approval_rate ?? null,
    };
  },
  createTemplate: (body: { name: string; tier: Tier; text: string; description?: string }) =>
    request<PromptTemplate>("POST", "/api/templates", { body }),
  updateTemplate: (id: string, body: { text?: string; change_note?: string; is_active?: boolean; weight?: number }) =>
    request<PromptTemplate>("PATCH", `/api/templates/${enc(id)}`, { body }),

  // export
  exportPreview: async (format: ExportFormat, filters: ExportFilters) => {
    const r = await request<{ records?: unknown[] }>("GET", "/api/export/preview", {
      query: { format, ...(filters as Record<string, QueryValue>) },
    });
    return { records: Array.isArray(r?.records) ? r.records : [] };
  },
  createExport: (body: ExportBody) => request<ExportRecord>("POST", "/api/export/conversations", { body }),
  getExport: (id: string) => request<ExportRecord>("GET", `/api/exports/${enc(id)}`),
  exportHistory: async () => asList<ExportRecord>(await request<unknown>("GET", "/api/export/history")),

  // fine-tunes (Amazon Bedrock)
  estimateFineTune: async (exportId: string, body: FineTuneRequest) =>
    (await request<{ estimate: FineTuneEstimate }>("POST", `/api/exports/${enc(exportId)}/fine-tunes/estimate`, { body })).estimate,
  startFineTune: (exportId: string, body: FineTuneRequest) =>
    request<FineTune>("POST", `/api/exports/${enc(exportId)}/fine-tunes`, { body }),
  listFineTunes: async () => asList<FineTune>(await request<unknown>("GET", "/api/fine-tunes")),
  getFineTune: (id: string) => request<FineTune>("GET", `/api/fine-tunes/${enc(id)}`),
  stopFineTune: (id: string) => request<FineTune>("POST", `/api/fine-tunes/${enc(id)}/stop`, { body: {} }),

  // notifications
  subscribe: (email: string) => request<Subscription>("POST", "/api/notifications/subscriptions", { body: { email } }),
  listSubscriptions: async () =>
    asList<Subscription>(await request<unknown>("GET", "/api/notifications/subscriptions")),
  listMessages: async () => asList<NotificationMessage>(await request<unknown>("GET", "/api/notifications/messages")),
};

/** Query params for `GET /api/conversations` (and the detail / preview endpoints). */
export function conversationQueryParams(q: ConversationQuery): Record<string, QueryValue> {
  return {
    dataset_id: q.dataset_id ?? undefined,
    persona: q.persona,
    emotion: q.emotion,
    topic: q.topic,
    intent: q.intent,
    tone: q.tone,
    tier: q.tier,
    status: q.status,
    quality_min: q.quality_min ?? undefined,
    quality_max: q.quality_max ?? undefined,
    flagged: q.flagged ?? undefined,
    q: q.q || undefined,
    sort: q.sort,
    order: q.order,
    page_size: q.page_size,
    page: q.page,
  };
}
