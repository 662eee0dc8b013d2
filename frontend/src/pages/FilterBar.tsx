import { useEffect, useRef, useState } from "react";
import { DIMENSIONS, STATUSES, TAXONOMY_FIELD, TIERS, type Dataset } from "../api";
import { Help } from "../components/Help";
import { MultiSelect } from "../components/MultiSelect";
import { STATUS_LABEL, TIER_LABEL } from "../format";
import { HELP } from "../help";
import { activeFilterCount, emptyFilters, LIST_FILTERS, type DashboardState, type ListFilter } from "../urlState";

const FILTER_LABEL: Record<ListFilter, string> = {
  persona: "Persona",
  emotion: "Emotion",
  topic: "Topic",
  intent: "Intent",
  tone: "Tone",
  tier: "Tier",
  status: "Status",
};

function valueLabel(key: ListFilter, value: string): string {
  if (key === "tier") return TIER_LABEL[value as keyof typeof TIER_LABEL] ?? value;
  if (key === "status") return STATUS_LABEL[value as keyof typeof STATUS_LABEL] ?? value;
  return value;
}

/** Keeps a text input's own value and reports it after the user pauses typing. */
function useDebounced<T>(value: T, commit: (v: T) => void, ms: number): [T, (v: T) => void] {
  const [local, setLocal] = useState(value);
  const latest = useRef(commit);
  latest.current = commit;
  const pending = useRef<number | null>(null);
  const dirty = useRef(false);
  useEffect(() => {
    if (!dirty.current) setLocal(value);
  }, [value]);
  const set = (v: T) => {
    setLocal(v);
    dirty.current = true;
    if (pending.current !== null) window.clearTimeout(pending.current);
    pending.current = window.setTimeout(() => {
      dirty.current = false;
      pending.current = null;
      latest.current(v);
    }, ms);
  };
  useEffect(
    () => () => {
      if (pending.current !== null) window.clearTimeout(pending.current);
    },
    [],
  );
  return [local, set];
}

export const SEARCH_DEBOUNCE_MS = 350;

interface Props {
  state: DashboardState;
  dataset: Dataset | null;
  onChange: (next: DashboardState, replace?: boolean) => void;
  /** Phone layout: the filter controls live in a drawer opened from the action bar. */
  drawerOpen?: boolean;
  onCloseDrawer?: () => void;
}

export function FilterBar({ state, dataset, onChange, drawerOpen = false, onCloseDrawer }: Props) {
  const [q, setQ] = useDebounced(state.q, (v) => onChange({ ...state, q: v.trim(), page: 1 }, true), SEARCH_DEBOUNCE_MS);
  const [qMin, setQMin] = useDebounced(
    state.qualityMin === null ? "" : String(state.qualityMin),
    (v) => onChange({ ...state, qualityMin: v === "" || Number.isNaN(Number(v)) ? null : Number(v), page: 1 }, true),
    500,
  );
  const [qMax, setQMax] = useDebounced(
    state.qualityMax === null ? "" : String(state.qualityMax),
    (v) => onChange({ ...state, qualityMax: v === "" || Number.isNaN(Number(v)) ? null : Number(v), page: 1 }, true),
    500,
  );

  const options = (key: ListFilter) => {
    if (key === "tier") return TIERS.map((t) => ({ value: t, label: TIER_LABEL[t] }));
    if (key === "status") return STATUSES.map((s) => ({ value: s, label: STATUS_LABEL[s] }));
    const entries = dataset?.taxonomy?.[TAXONOMY_FIELD[key]] ?? [];
    const names = entries.map((e) => ({ value: e.name, label: e.name, hint: e.description || undefined }));
    // Keep selected values visible even if the taxonomy no longer lists them.
    for (const v of state.filters[key]) if (!names.some((n) => n.value === v)) names.push({ value: v, label: v, hint: undefined });
    return names;
  };

  const setFilter = (key: ListFilter, values: string[]) =>
    onChange({ ...state, filters: { ...state.filters, [key]: values }, page: 1 });

  const count = activeFilterCount(state);

  return (
    <section className="filters" aria-label="Filters" data-testid="filter-bar">
      <div
        id="filter-drawer"
        className={`filter-drawer${drawerOpen ? " open" : ""}`}
        data-testid="filter-drawer"
        onKeyDown={(e) => {
          if (e.key === "Escape" && drawerOpen && !e.defaultPrevented) onCloseDrawer?.();
        }}
      >
      <div className="drawer-head mobile-only">
        <h3>Filters{count > 0 ? ` (${count})` : ""}</h3>
        <button type="button" className="btn btn-small btn-primary" onClick={onCloseDrawer} data-testid="btn-close-filters">
          Done
        </button>
      </div>
      <div className="filter-row">
        <input
          type="search"
          className="search"
          placeholder="Search conversations (persona, topic, text…)"
          aria-label="Search conversations"
          value={q}
          onChange={(e) => setQ(e.target.value)}
          data-testid="search-input"
        />
        {DIMENSIONS.map((dim) => (
          <MultiSelect
            key={dim}
            label={FILTER_LABEL[dim]}
            options={options(dim)}
            selected={state.filters[dim]}
            onChange={(v) => setFilter(dim, v)}
            testId={`filter-${dim}`}
            emptyText="This dataset has no taxonomy yet: import one on the Datasets page."
          />
        ))}
        <MultiSelect
          label={FILTER_LABEL.tier}
          options={options("tier")}
          selected={state.filters.tier}
          onChange={(v) => setFilter("tier", v)}
          testId="filter-tier"
        />
        <Help text={HELP.tiers} />
        <MultiSelect
          label={FILTER_LABEL.status}
          options={options("status")}
          selected={state.filters.status}
          onChange={(v) => setFilter("status", v)}
          testId="filter-status"
        />
        <span className="quality-filter" data-testid="filter-quality">
          <label>
            Quality
            <input
              type="number"
              min={1}
              max={10}
              step={0.5}
              placeholder="min"
              aria-label="Minimum quality score"
              value={qMin}
              onChange={(e) => setQMin(e.target.value)}
              data-testid="quality-min"
            />
          </label>
          <span aria-hidden="true">–</span>
          <input
            type="number"
            min={1}
            max={10}
            step={0.5}
            placeholder="max"
            aria-label="Maximum quality score"
            value={qMax}
            onChange={(e) => setQMax(e.target.value)}
            data-testid="quality-max"
          />
          <Help text={HELP.quality} />
        </span>
        <label className="inline-check" title="Only conversations with a quality score below 6">
          <input
            type="checkbox"
            checked={state.flagged === true}
            onChange={(e) => onChange({ ...state, flagged: e.target.checked ? true : null, page: 1 })}
            data-testid="filter-flagged"
          />
          Flagged only
        </label>
      </div>
      </div>
      {count > 0 && (
        <div className="filter-badges" data-testid="filter-badges">
          {LIST_FILTERS.flatMap((key) =>
            state.filters[key].map((v) => (
              <span key={`${key}:${v}`} className="chip" data-testid={`filter-badge-${key}-${v}`}>
                {FILTER_LABEL[key]}: {valueLabel(key, v)}
                <button
                  type="button"
                  aria-label={`Remove filter ${FILTER_LABEL[key]} ${v}`}
                  onClick={() => setFilter(key, state.filters[key].filter((x) => x !== v))}
                >
                  ×
                </button>
              </span>
            )),
          )}
          {state.qualityMin !== null && (
            <span className="chip" data-testid="filter-badge-quality_min">
              Quality ≥ {state.qualityMin}
              <button type="button" aria-label="Remove minimum quality" onClick={() => onChange({ ...state, qualityMin: null, page: 1 })}>
                ×
              </button>
            </span>
          )}
          {state.qualityMax !== null && (
            <span className="chip" data-testid="filter-badge-quality_max">
              Quality ≤ {state.qualityMax}
              <button type="button" aria-label="Remove maximum quality" onClick={() => onChange({ ...state, qualityMax: null, page: 1 })}>
                ×
              </button>
            </span>
          )}
          {state.flagged !== null && (
            <span className="chip" data-testid="filter-badge-flagged">
              {state.flagged ? "Flagged only" : "Not flagged"}
              <button type="button" aria-label="Remove flagged filter" onClick={() => onChange({ ...state, flagged: null, page: 1 })}>
                ×
              </button>
            </span>
          )}
          {state.q && (
            <span className="chip" data-testid="filter-badge-q">
              Search: “{state.q}”
              <button type="button" aria-label="Clear search" onClick={() => onChange({ ...state, q: "", page: 1 })}>
                ×
              </button>
            </span>
          )}
          <button
            type="button"
            className="link-btn"
            onClick={() => onChange({ ...state, filters: emptyFilters(), qualityMin: null, qualityMax: null, flagged: null, q: "", page: 1 })}
            data-testid="btn-clear-filters"
          >
            Clear all
          </button>
        </div>
      )}
    </section>
  );
}
