import type { ConversationStatus, Tier } from "./api";

/** Dollars in cents (2 decimals). An amount under half a cent reads "<$0.01" rather than
 * a misleading "$0.00"; per-token figures keep their own precision where they are shown. */
export function money(v: number | null | undefined): string {
  if (v === null || v === undefined || !Number.isFinite(v)) return "–";
  const sign = v < 0 ? "-" : "";
  const abs = Math.abs(v);
  if (abs > 0 && abs < 0.005) return `${sign}<$0.01`;
  return `${sign}$${abs.toLocaleString("en-US", { minimumFractionDigits: 2, maximumFractionDigits: 2 })}`;
}

export function dateTime(iso: string | null | undefined): string {
  if (!iso) return "–";
  const d = new Date(iso);
  if (Number.isNaN(d.getTime())) return iso;
  return d.toLocaleString(undefined, { year: "numeric", month: "short", day: "numeric", hour: "2-digit", minute: "2-digit" });
}

/** Compact date for table cells: "Nov 26, 16:04" this year, "Nov 26, 2024" otherwise. */
export function shortDateTime(iso: string | null | undefined, now: Date = new Date()): string {
  if (!iso) return "–";
  const d = new Date(iso);
  if (Number.isNaN(d.getTime())) return iso;
  if (d.getFullYear() !== now.getFullYear()) return d.toLocaleDateString(undefined, { year: "numeric", month: "short", day: "numeric" });
  return d.toLocaleString(undefined, { month: "short", day: "numeric", hour: "2-digit", minute: "2-digit", hour12: false });
}

export function duration(seconds: number | null | undefined): string {
  if (seconds === null || seconds === undefined || !Number.isFinite(seconds)) return "–";
  const s = Math.max(0, Math.round(seconds));
  if (s < 60) return `${s}s`;
  const m = Math.floor(s / 60);
  if (m < 60) return `${m}m ${s % 60}s`;
  return `${Math.floor(m / 60)}h ${m % 60}m`;
}

export function shortId(id: string): string {
  return id.length > 14 ? `${id.slice(0, 13)}…` : id;
}

export const STATUS_LABEL: Record<ConversationStatus, string> = {
  not_generated: "Not generated",
  generating: "Generating",
  generated: "Generated",
  approved: "Approved",
  rejected: "Rejected",
  failed: "Failed",
};

export const TIER_LABEL: Record<Tier, string> = {
  template: "Template",
  scenario: "Scenario",
  edge_case: "Edge case",
};

export function plural(n: number, one: string, many = `${one}s`): string {
  return `${n.toLocaleString()} ${n === 1 ? one : many}`;
}
