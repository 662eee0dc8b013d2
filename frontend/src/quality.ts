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
