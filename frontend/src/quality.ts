/** Quality score colour bands (product spec): red < 6, yellow 6-8, green > 8. */
export type QualityBand = "red" | "yellow" | "green" | "none";

export const FLAG_THRESHOLD = 6;

export function qualityBand(score: number | null | undefined): QualityBand {
  if (score === null || score === undefined || !Number.isFinite(score)) return "none";
  if (score < FLAG_THRESHOLD) return "red";
  if (score > 8) return "green";
  return "yellow";
}

export const QUALITY_BAND_LABEL: Record<QualityBand, string> = {
  red: "Needs review (below 6)",
  yellow: "Acceptable (6 to 8)",
  green: "Good (above 8)",
  none: "Not scored yet",
};

// --------------------------------------------------------------------------- triage

/** Whole-number score buckets of the histogram (bucket k holds [k, k+1); 10 holds 10). */
export const SCORE_BUCKETS = [1, 2, 3, 4, 5, 6, 7, 8, 9, 10] as const;

/** A bucket as a `quality_min`..`quality_max` filter (both inclusive on the list API;
 * scores carry one decimal, so k + 0.99 ends the bucket). */
export function bucketRange(bucket: number): { min: number; max: number } {
  return bucket >= 10 ? { min: 10, max: 10 } : { min: bucket, max: Math.round((bucket + 0.99) * 100) / 100 };
}

/** The bucket a min/max filter selects exactly, or null when it is some other range. */
export function bucketOfRange(min: number | null, max: number | null): number | null {
  if (min === null || max === null || !Number.isInteger(min)) return null;
  const r = bucketRange(min);
  return r.min === min && r.max === max ? min : null;
}

export function isFlaggedBucket(bucket: number): boolean {
  return bucket < FLAG_THRESHOLD;
}

/** The turn a reviewer-readable reason names ("turn 7: ..."), or null. */
export function reasonTurn(reason: string): number | null {
  const m = /^turns? (\d+)\b/i.exec(reason.trim());
  return m ? Number(m[1]) : null;
}

/** Reasons that name `turn`. */
export function reasonsForTurn(reasons: readonly string[], turn: number): string[] {
  return reasons.filter((r) => reasonTurn(r) === turn);
}

const CHECK_LABEL: Record<string, string> = {
  turn_count: "Number of turns",
  alternation: "Turns alternate",
  structure: "Structure",
  length: "Turn length",
  empty_turns: "Empty turns",
  topic_adherence: "Topic keywords",
  persona_adherence: "Persona keywords",
  emotion_adherence: "Emotion signals",
  near_duplicate: "Near-duplicate of another conversation",
  ai_refusal: "Refusals and AI self-references",
  generator_artifacts: "Generator chatter and placeholders",
  regulated_claims: "Promises a regulated business must not make",
  role_confusion: "Role confusion",
  language: "Language changes",
  ending: "Ending",
  topic_drift: "Topic drift",
  persona: "Persona",
  grounding: "Grounded in the excerpt",
  repeated_turns: "Repeated turns",
  business_rules: "Your business rules",
  judge: "LLM judge",
};

/** A check's name for people ("ai_refusal" -> "Refusals and AI self-references"). */
export function checkLabel(name: string): string {
  return CHECK_LABEL[name] ?? name.replace(/_/g, " ").replace(/^./, (c) => c.toUpperCase());
}

const SEVERITY_ORDER: Record<string, number> = { critical: 0, major: 1, minor: 2 };

/** Failed checks first (critical, major, minor, then the rest), then passed ones; the
 * original order is kept within each group. */
export function sortChecks<T extends { passed: boolean; severity?: string | null }>(checks: readonly T[]): T[] {
  const rank = (c: T) => (c.passed ? 10 : c.severity ? SEVERITY_ORDER[c.severity] ?? 3 : 3);
  return checks
    .map((c, i) => ({ c, i }))
    .sort((a, b) => rank(a.c) - rank(b.c) || a.i - b.i)
    .map((x) => x.c);
}

export const JUDGE_DIMENSION_LABEL: Record<string, string> = {
  persona_fidelity: "Persona fidelity",
  emotional_realism: "Emotional realism",
  helpfulness: "Helpfulness",
  faithfulness: "Faithfulness to the excerpt",
  brand_safety: "Brand safety",
};

/** 0..1 as "42%" ("–" when unknown). */
export function percent(v: number | null | undefined, digits = 0): string {
  if (v === null || v === undefined || !Number.isFinite(v)) return "–";
  return `${(v * 100).toFixed(digits)}%`;
}

/** A phrase as a list search for those words side by side (`q="..."`). */
export function phraseQuery(text: string): string {
  const clean = text.replace(/["\u201c\u201d\u201e\u00ab\u00bb]/g, " ").replace(/\s+/g, " ").trim();
  return clean ? `"${clean}"` : "";
}
