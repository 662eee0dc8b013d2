import { useCallback, useEffect, useState } from "react";
import { api, DIMENSIONS, TIERS, type Coverage, type CoverageGap, type GapSelector } from "../api";
import { useApp } from "../appContext";
import { Help } from "../components/Help";
import { errorMessage, useToast } from "../components/Toasts";
import { plural, TIER_LABEL } from "../format";
import { HELP } from "../help";
import { useSearch, viewSearch } from "../urlState";
import { gapText, Heatmap } from "./Coverage";

/** Heatmaps shown, with the taxonomy dimension of their rows and columns. */
const PAIRS = [
  { key: "persona_emotion", row: "persona", col: "emotion", rowLabel: "Persona", colLabel: "Emotion" },
  { key: "persona_topic", row: "persona", col: "topic", rowLabel: "Persona", colLabel: "Topic" },
] as const;

const GAPS_SHOWN = 20;

/** The gap's own values (persona, emotion, …, tier) and how many conversations close it. */
export function gapPlan(g: CoverageGap): { selector: GapSelector; count: number } | null {
  if (typeof g !== "object" || g === null) return null;
  const selector: GapSelector = {};
  for (const dim of DIMENSIONS) if (typeof g[dim] === "string") selector[dim] = g[dim] as string;
  // A dimension gap names its dimension and value separately.
  if (typeof g["dimension"] === "string" && typeof g["value"] === "string" && (DIMENSIONS as readonly string[]).includes(g["dimension"])) {
    selector[g["dimension"] as (typeof DIMENSIONS)[number]] = g["value"];
  }
  if (typeof g["tier"] === "string" && Object.keys(selector).length === 0) selector.tier = g["tier"];
  if (Object.keys(selector).length === 0) return null;
  const shortfall = typeof g["shortfall"] === "number" ? g["shortfall"] : null;
  const min = typeof g["min_expected"] === "number" ? g["min_expected"] : 1;
  const have = typeof g["effective"] === "number" ? g["effective"] : 0;
  return { selector, count: Math.max(1, shortfall ?? min - have) };
}

/** Dashboard link showing the conversations of one heatmap cell (a URL filter). */
export function cellSearch(datasetId: string, filters: Record<string, string>): string {
  const sp = new URLSearchParams(viewSearch("dashboard", datasetId));
  for (const [k, v] of Object.entries(filters)) sp.append(k, v);
  return sp.toString();
}

/** Coverage on its own page (`view=coverage`): tier shortfalls first, the heatmaps whose
 * cells open their conversations, and every gap with its own "Plan N". */
export function CoveragePage() {
  const { datasetId, dataset } = useApp();
  const toast = useToast();
  const [, setSearch] = useSearch();
  const [data, setData] = useState<Coverage | null>(null);
  const [error, setError] = useState<string | null>(null);
  const [busy, setBusy] = useState<string | null>(null);
  const [showAll, setShowAll] = useState(false);

  const load = useCallback(async () => {
    if (!datasetId) return;
    setError(null);
    try {
      setData(await api.coverage(datasetId));
    } catch (e) {
      setError(errorMessage(e));
    }
  }, [datasetId]);

  useEffect(() => {
    setData(null);
    void load();
  }, [load]);

  const plan = async (key: string, gap?: GapSelector, count?: number) => {
    if (!datasetId) return;
    setBusy(key);
    try {
      const r = await api.fillGaps(datasetId, gap, count);
      const n = r?.planned ?? 0;
      if (n === 0) toast.info("There was nothing to plan: every combination the target allows is already planned.");
      else toast.success(`Planned ${plural(n, "new conversation")}. Generate them from the Dashboard.`);
      await load();
    } catch (e) {
      toast.error(e, "Could not plan for the gap");
    } finally {
      setBusy(null);
    }
  };

  if (!datasetId) {
    return (
      <div className="page" data-testid="coverage-page">
        <h2 className="page-title">Coverage</h2>
        <p className="muted">Choose or create a dataset first.</p>
      </div>
    );
  }

  const open = (filters: Record<string, string>) => setSearch(cellSearch(datasetId, filters));
  const readOnly = dataset?.archived === true;
  const otherGaps = (data?.gaps ?? []).filter((g) => !(typeof g === "object" && g["group"] === "tiers"));
  const shown = showAll ? otherGaps : otherGaps.slice(0, GAPS_SHOWN);

  return (
    <div className="page coverage-page" data-testid="coverage-page">
      <div className="toolbar">
        <h2 className="page-title">
          Coverage <Help text={HELP.coverage} />
          <span className="count">{dataset?.name}</span>
        </h2>
        <span className="spacer" />
        <button type="button" className="btn btn-small" onClick={() => void load()} data-testid="btn-coverage-refresh">
          Refresh
        </button>
        <button
          type="button"
          className="btn btn-small btn-primary"
          disabled={busy !== null || !data || readOnly || (data.gap_count ?? 0) === 0}
          onClick={() => void plan("all")}
          data-testid="btn-fill-gaps"
          title={HELP.fillGaps}
        >
          {busy === "all" ? "Planning…" : "Fill every gap"}
        </button>
      </div>
      {!data && !error && <p className="loading">Loading coverage…</p>}
      {error && (
        <p className="banner banner-error" role="alert">
          Could not load coverage: {error}
        </p>
      )}
      {data && (
        <>
          <section className="card" aria-labelledby="tiers-head" data-testid="coverage-tiers">
            <h3 id="tiers-head">
              Conversations per tier, against the target <Help text={HELP.tiers} />
            </h3>
            <div className="tier-bars">
              {TIERS.map((t) => {
                const tier = data.tiers?.[t];
                if (!tier) return null;
                const short = Math.max(0, tier.target - tier.count);
                const pct = tier.target ? Math.min(100, (100 * tier.count) / tier.target) : 100;
                return (
                  <div key={t} className="tier-bar" data-testid={`coverage-tier-${t}`} data-shortfall={short}>
                    <span className="tier-name">{TIER_LABEL[t]}</span>
                    <div className="progress-bar small-bar" role="img" aria-label={`${TIER_LABEL[t]}: ${tier.count} of ${tier.target}`}>
                      <div className={`progress-fill${short > 0 ? " under" : ""}`} style={{ width: `${pct}%` }} />
                    </div>
                    <span className="small">
                      {tier.count} of {tier.target}
                      {short > 0 ? ` · ${short} short` : " · on target"}
                    </span>
                    {short > 0 && !readOnly && (
                      <button
                        type="button"
                        className="btn btn-small"
                        disabled={busy !== null}
                        onClick={() => void plan(`tier-${t}`, { tier: t }, short)}
                        data-testid={`btn-plan-tier-${t}`}
                      >
                        {busy === `tier-${t}` ? "Planning…" : `Plan ${short}`}
                      </button>
                    )}
                  </div>
                );
              })}
            </div>
          </section>

          <section className="card" aria-label="Heatmaps">
            <p className="small muted">Each cell counts the conversations of one combination. Open a cell to see its conversations.</p>
            <div className="heatmaps">
              {PAIRS.map((p) => {
                const m = data.pairs?.[p.key];
                if (!m) return null;
                return (
                  <Heatmap
                    key={p.key}
                    matrix={m}
                    pair={p.key}
                    rowLabel={p.rowLabel}
                    colLabel={p.colLabel}
                    cellHref={(r, c) => `?${cellSearch(datasetId, { [p.row]: r, [p.col]: c })}`}
                    onOpenCell={(r, c) => open({ [p.row]: r, [p.col]: c })}
                  />
                );
              })}
            </div>
            {(!data.pairs?.persona_emotion || data.pairs.persona_emotion.rows.length === 0) && (
              <p className="muted">No conversations planned yet, so there is nothing to show. Plan conversations on the Datasets page.</p>
            )}
          </section>

          <section className="card" aria-labelledby="gaps-head" data-testid="coverage-gaps">
            <h3 id="gaps-head">
              Gaps <span className="count small muted">{otherGaps.length === 0 ? "none" : plural(otherGaps.length, "gap")}</span>
            </h3>
            {data.note && <p className="small muted">{data.note}</p>}
            {otherGaps.length === 0 ? (
              <p className="small muted">No combination is missing or under-filled.</p>
            ) : (
              <ul className="gap-list">
                {shown.map((g, i) => {
                  const p = gapPlan(g);
                  return (
                    <li key={i} data-testid={`gap-${i}`}>
                      <span>{gapText(g)}</span>
                      {p && !readOnly && (
                        <button
                          type="button"
                          className="btn btn-small"
                          disabled={busy !== null}
                          onClick={() => void plan(`gap-${i}`, p.selector, p.count)}
                          data-testid={`btn-plan-gap-${i}`}
                          aria-label={`Plan ${p.count} for ${gapText(g)}`}
                        >
                          {busy === `gap-${i}` ? "Planning…" : `Plan ${p.count}`}
                        </button>
                      )}
                    </li>
                  );
                })}
              </ul>
            )}
            {otherGaps.length > GAPS_SHOWN && (
              <button type="button" className="link-btn" onClick={() => setShowAll((v) => !v)} data-testid="btn-gaps-all">
                {showAll ? "Show fewer" : `Show all ${otherGaps.length}`}
              </button>
            )}
          </section>
        </>
      )}
    </div>
  );
}
