/**
 * All dashboard state (filters, sort, page, page size, hidden columns, open conversation)
 * lives in the URL query string so a view is bookmarkable, shareable and survives reload.
 * These functions are pure: decode(search) -> state, encode(state) -> search.
 */
import { useCallback, useEffect, useState } from "react";
import { type ConversationQuery } from "./api";
import { FILTER_CHOICES, LIST_FILTERS, type ListFilter } from "./generated/filters";

export const VIEWS = ["dashboard", "coverage", "datasets", "templates", "exports", "notifications"] as const;
export type View = (typeof VIEWS)[number];

export const PAGE_SIZES = [25, 50, 100] as const;
export type PageSize = (typeof PAGE_SIZES)[number];

export const SORT_KEYS = [
  "conversation_id",
  "persona",
  "emotion",
  "topic",
  "intent",
  "tone",
  "tier",
  "status",
  "quality_score",
  "actual_cost_usd",
  "created_at",
  "attention",
] as const;
export type SortKey = (typeof SORT_KEYS)[number];

/** "Needs attention" order: flagged first, then the lowest score (a derived sort, no column). */
export const ATTENTION_SORT: Pick<DashboardState, "sort" | "order"> = { sort: "attention", order: "asc" };

/** Dataset-level quality views shown above the table (`insight=`). */
export const INSIGHTS = ["diversity", "calibration"] as const;
export type Insight = (typeof INSIGHTS)[number];

/** Multi-select filter dimensions: every filter of the list (generated from the API). */
export { LIST_FILTERS, type ListFilter };

export type Filters = Record<ListFilter, string[]>;

export interface DashboardState {
  filters: Filters;
  qualityMin: number | null;
  qualityMax: number | null;
  flagged: boolean | null;
  q: string;
  sort: SortKey;
  order: "asc" | "desc";
  pageSize: PageSize;
  page: number;
  hiddenCols: string[];
  /** Conversation open in the review panel. */
  conv: string | null;
  /** Diversity or calibration view open above the table. */
  insight: Insight | null;
}

export const DEFAULT_SORT: SortKey = "created_at";
export const DEFAULT_ORDER = "desc";

export function emptyFilters(): Filters {
  return { persona: [], emotion: [], topic: [], intent: [], tone: [], tier: [], status: [] };
}

export function defaultDashboard(): DashboardState {
  return {
    filters: emptyFilters(),
    qualityMin: null,
    qualityMax: null,
    flagged: null,
    q: "",
    sort: DEFAULT_SORT,
    order: DEFAULT_ORDER,
    pageSize: 25,
    page: 1,
    hiddenCols: [],
    conv: null,
    insight: null,
  };
}

function parseQuality(v: string | null): number | null {
  if (v === null || v.trim() === "") return null;
  const n = Number(v);
  if (!Number.isFinite(n)) return null;
  return Math.min(10, Math.max(0, n));
}

function uniq(values: string[]): string[] {
  return [...new Set(values.map((v) => v.trim()).filter((v) => v !== ""))];
}

export function decodeDashboard(search: string): DashboardState {
  const sp = new URLSearchParams(search);
  const s = defaultDashboard();
  for (const key of LIST_FILTERS) {
    const choices: readonly string[] | undefined = (FILTER_CHOICES as Partial<Record<ListFilter, readonly string[]>>)[key];
    s.filters[key] = uniq(sp.getAll(key)).filter((v) => choices === undefined || choices.includes(v));
  }
  s.qualityMin = parseQuality(sp.get("quality_min"));
  s.qualityMax = parseQuality(sp.get("quality_max"));
  const flagged = sp.get("flagged");
  s.flagged = flagged === "true" ? true : flagged === "false" ? false : null;
  s.q = sp.get("q") ?? "";
  const sort = sp.get("sort");
  if (sort && (SORT_KEYS as readonly string[]).includes(sort)) s.sort = sort as SortKey;
  const order = sp.get("order");
  if (order === "asc" || order === "desc") s.order = order;
  const size = Number(sp.get("page_size"));
  if ((PAGE_SIZES as readonly number[]).includes(size)) s.pageSize = size as PageSize;
  const page = Number(sp.get("page"));
  if (Number.isInteger(page) && page >= 1) s.page = page;
  const hide = sp.get("hide");
  s.hiddenCols = hide ? uniq(hide.split(",")) : [];
  s.conv = sp.get("conv") || null;
  const insight = sp.get("insight");
  s.insight = insight && (INSIGHTS as readonly string[]).includes(insight) ? (insight as Insight) : null;
  return s;
}

/**
 * Write dashboard state into `base` (other params such as `view` and `dataset_id` are kept).
 * Defaults are left out so URLs stay short.
 */
export function encodeDashboard(state: DashboardState, base: string | URLSearchParams = ""): string {
  const sp = new URLSearchParams(base);
  for (const key of [...LIST_FILTERS, "quality_min", "quality_max", "flagged", "q", "sort", "order", "page_size", "page", "hide", "conv", "insight"]) {
    sp.delete(key);
  }
  for (const key of LIST_FILTERS) for (const v of state.filters[key]) sp.append(key, v);
  if (state.qualityMin !== null) sp.set("quality_min", String(state.qualityMin));
  if (state.qualityMax !== null) sp.set("quality_max", String(state.qualityMax));
  if (state.flagged !== null) sp.set("flagged", String(state.flagged));
  if (state.q) sp.set("q", state.q);
  if (state.sort !== DEFAULT_SORT || state.order !== DEFAULT_ORDER) {
    sp.set("sort", state.sort);
    sp.set("order", state.order);
  }
  if (state.pageSize !== 25) sp.set("page_size", String(state.pageSize));
  if (state.page !== 1) sp.set("page", String(state.page));
  if (state.hiddenCols.length) sp.set("hide", state.hiddenCols.join(","));
  if (state.conv) sp.set("conv", state.conv);
  if (state.insight) sp.set("insight", state.insight);
  return sp.toString();
}

/** The filter part of a state as API query fields (no paging). */
export function toConversationQuery(state: DashboardState, datasetId: string | null): ConversationQuery {
  return {
    dataset_id: datasetId,
    ...state.filters,
    quality_min: state.qualityMin,
    quality_max: state.qualityMax,
    flagged: state.flagged,
    q: state.q,
    sort: state.sort,
    order: state.order,
  };
}

/** Query for `GET /api/conversations` (filters + sort + page). */
export function toListQuery(state: DashboardState, datasetId: string | null): ConversationQuery {
  return { ...toConversationQuery(state, datasetId), page_size: state.pageSize, page: state.page };
}

/** Query string (without `?`) passed to `GET /api/conversations/{id}` so prev/next follow the table. */
export function neighbourQueryString(state: DashboardState, datasetId: string | null): string {
  const sp = new URLSearchParams();
  if (datasetId) sp.set("dataset_id", datasetId);
  for (const key of LIST_FILTERS) for (const v of state.filters[key]) sp.append(key, v);
  if (state.qualityMin !== null) sp.set("quality_min", String(state.qualityMin));
  if (state.qualityMax !== null) sp.set("quality_max", String(state.qualityMax));
  if (state.flagged !== null) sp.set("flagged", String(state.flagged));
  if (state.q) sp.set("q", state.q);
  sp.set("sort", state.sort);
  sp.set("order", state.order);
  return sp.toString();
}

export function activeFilterCount(state: DashboardState): number {
  let n = 0;
  for (const key of LIST_FILTERS) n += state.filters[key].length;
  if (state.qualityMin !== null) n++;
  if (state.qualityMax !== null) n++;
  if (state.flagged !== null) n++;
  if (state.q) n++;
  return n;
}

/** Clicking a header: same column flips the order, a new column starts ascending. */
export function toggleSort(state: DashboardState, key: SortKey): DashboardState {
  if (state.sort === key) return { ...state, order: state.order === "asc" ? "desc" : "asc", page: 1 };
  return { ...state, sort: key, order: "asc", page: 1 };
}

// --------------------------------------------------------------------------- app-level URL

export function decodeView(search: string): View {
  const v = new URLSearchParams(search).get("view");
  return v && (VIEWS as readonly string[]).includes(v) ? (v as View) : "dashboard";
}

/** `dataset_id=`; `dataset=` is accepted too (the links in notification e-mails use it). */
export function decodeDatasetId(search: string): string | null {
  const sp = new URLSearchParams(search);
  return sp.get("dataset_id") || sp.get("dataset") || null;
}

/** A job id to show (`job=`, from the "Review them" link of a job notification). */
export function decodeJobId(search: string): string | null {
  return new URLSearchParams(search).get("job") || null;
}

const URL_EVENT = "brightrun:urlchange";

/** Change the query string (push a history entry, or replace the current one). */
export function setSearch(search: string, replace = false): void {
  const clean = search.startsWith("?") ? search.slice(1) : search;
  const url = `${window.location.pathname}${clean ? `?${clean}` : ""}${window.location.hash}`;
  if (url === `${window.location.pathname}${window.location.search}${window.location.hash}`) return;
  if (replace) window.history.replaceState(null, "", url);
  else window.history.pushState(null, "", url);
  window.dispatchEvent(new Event(URL_EVENT));
}

/** The current query string, re-rendering on back/forward and on setSearch. */
export function useSearch(): [string, (search: string, replace?: boolean) => void] {
  const [search, setState] = useState(() => window.location.search);
  useEffect(() => {
    const on = () => setState(window.location.search);
    window.addEventListener("popstate", on);
    window.addEventListener(URL_EVENT, on);
    return () => {
      window.removeEventListener("popstate", on);
      window.removeEventListener(URL_EVENT, on);
    };
  }, []);
  const set = useCallback((s: string, replace = false) => setSearch(s, replace), []);
  return [search, set];
}

/** A link target that switches view (keeping the dataset) and drops view-specific params. */
export function viewSearch(view: View, datasetId: string | null, extra: Record<string, string> = {}): string {
  const sp = new URLSearchParams();
  if (view !== "dashboard") sp.set("view", view);
  if (datasetId) sp.set("dataset_id", datasetId);
  for (const [k, v] of Object.entries(extra)) sp.set(k, v);
  return sp.toString();
}
