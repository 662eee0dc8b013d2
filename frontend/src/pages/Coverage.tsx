import { useCallback, useEffect, useState } from "react";
import { api, TIERS, type Coverage, type CoverageGap, type CoverageMatrix } from "../api";
import { Help } from "../components/Help";
import { errorMessage, useToast } from "../components/Toasts";
import { TIER_LABEL } from "../format";
import { HELP } from "../help";

const NON_VALUE_KEYS = new Set(["group", "kind", "status", "effective", "min_expected", "target", "shortfall", "total", "count", "percent"]);

/** One readable line per gap, whatever its shape (pair, tier or dimension gap). */
export function gapText(g: CoverageGap): string {
  if (typeof g === "string") return g;
  for (const k of ["message", "description", "label"]) if (typeof g[k] === "string") return g[k] as string;
  if (typeof g["tier"] === "string" && typeof g["shortfall"] === "number") {
    const tier = TIER_LABEL[g["tier"] as keyof typeof TIER_LABEL] ?? g["tier"];
    return `${tier} tier: ${g["shortfall"]} short of its target of ${String(g["target"] ?? "?")}`;
  }
  const combo = Object.entries(g)
    .filter(([k, v]) => !NON_VALUE_KEYS.has(k) && typeof v === "string")
    .map(([, v]) => String(v))
    .join(" × ");
  if (g["status"] === "missing") return `${combo}: no conversations yet`;
  if (g["status"] === "underfilled") return `${combo}: only ${String(g["effective"])} (at least ${String(g["min_expected"])} expected)`;
  const rest = Object.entries(g)
    .filter(([k, v]) => NON_VALUE_KEYS.has(k) && k !== "group" && v !== null && typeof v !== "object")
    .map(([k, v]) => `${k.replace(/_/g, " ")} ${String(v)}`)
    .join(", ");
  return [combo, rest].filter(Boolean).join(": ");
}

interface HeatmapProps {
  matrix: CoverageMatrix;
  pair: string;
  rowLabel: string;
  colLabel: string;
  /** With both, each cell links to its conversations (a real link: new tab, keyboard). */
  cellHref?: (row: string, col: string) => string;
  onOpenCell?: (row: string, col: string) => void;
}

export function Heatmap({ matrix, pair, rowLabel, colLabel, cellHref, onOpenCell }: HeatmapProps) {
  const max = Math.max(1, ...matrix.cells.flat());
  const zeros = matrix.cells.flat().filter((v) => v === 0).length;
  return (
    <div className="heatmap-wrap">
      <table className="heatmap" data-testid={`heatmap-${pair}`}>
        <caption>
          {rowLabel} × {colLabel}{" "}
          <span className="small muted">
            ({zeros === 0 ? "every combination is covered" : `${zeros} empty combination${zeros === 1 ? "" : "s"}, shown in red`})
          </span>
        </caption>
        <thead>
          <tr>
            <th scope="col" className="corner">
              {rowLabel} \ {colLabel}
            </th>
            {matrix.cols.map((c) => (
              <th key={c} scope="col" className="heatmap-col">
                <span>{c}</span>
              </th>
            ))}
          </tr>
        </thead>
        <tbody>
          {matrix.rows.map((r, ri) => (
            <tr key={r}>
              <th scope="row">{r}</th>
              {matrix.cols.map((c, ci) => {
                const v = matrix.cells[ri]?.[ci] ?? 0;
                const alpha = v === 0 ? 0 : 0.15 + 0.85 * (v / max);
                return (
                  <td
                    key={c}
                    className={v === 0 ? "cell-zero" : "cell"}
                    style={v === 0 ? undefined : { backgroundColor: `rgba(79, 70, 229, ${alpha.toFixed(2)})`, color: alpha > 0.55 ? "#fff" : undefined }}
                    title={`${r} × ${c}: ${v} conversation${v === 1 ? "" : "s"}`}
                    data-testid={`cell-${pair}-${ri}-${ci}`}
                    data-zero={v === 0 ? "true" : "false"}
                  >
                    {cellHref && onOpenCell ? (
                      <a
                        href={cellHref(r, c)}
                        className="cell-link"
                        aria-label={`${r} × ${c}: ${v} conversation${v === 1 ? "" : "s"}, open them`}
                        onClick={(e) => {
                          if (e.metaKey || e.ctrlKey || e.shiftKey || e.button !== 0) return;
                          e.preventDefault();
                          onOpenCell(r, c);
                        }}
                        data-testid={`cell-link-${pair}-${ri}-${ci}`}
                      >
                        {v}
                      </a>
                    ) : (
                      v
                    )}
                  </td>
                );
              })}
            </tr>
          ))}
        </tbody>
      </table>
    </div>
  );
}

export function CoverageView({ datasetId, refreshKey, onFilled }: { datasetId: string; refreshKey: number; onFilled?: () => void }) {
  const toast = useToast();
  const [data, setData] = useState<Coverage | null>(null);
  const [error, setError] = useState<string | null>(null);
  const [filling, setFilling] = useState(false);

  const load = useCallback(async () => {
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
  }, [load, refreshKey]);

  const fill = async () => {
    setFilling(true);
    try {
      const r = await api.fillGaps(datasetId);
      const n = r?.planned ?? 0;
      if (n === 0) toast.info("There was nothing to fill: every combination the target allows is already planned.");
      else toast.success(`Planned ${n} new conversation${n === 1 ? "" : "s"} to fill the gaps. Generate them from the Dashboard.`);
      await load();
      onFilled?.();
    } catch (e) {
      toast.error(e, "Could not fill the gaps");
    } finally {
      setFilling(false);
    }
  };

  return (
    <section className="card" data-testid="coverage" aria-label="Coverage">
      <div className="card-head">
        <h3>
          Coverage <Help text={HELP.coverage} />
        </h3>
        <span className="spacer" />
        <button type="button" className="btn btn-small" onClick={() => void load()}>
          Refresh
        </button>
        <button type="button" className="btn btn-small btn-primary" disabled={filling || !data} onClick={() => void fill()} data-testid="btn-fill-gaps">
          {filling ? "Filling…" : "Fill gaps"}
        </button>
        <Help text={HELP.fillGaps} />
      </div>
      {!data && !error && <p className="loading">Loading coverage…</p>}
      {error && (
        <p className="banner banner-error" role="alert">
          Could not load coverage: {error}
        </p>
      )}
      {data && (
        <>
          <h4 className="subhead">
            Conversations per tier, against the target <Help text={HELP.tiers} />
          </h4>
          <div className="tier-bars" data-testid="coverage-tiers">
            {TIERS.map((t) => {
              const tier = data.tiers?.[t];
              if (!tier) return null;
              const pct = tier.target ? Math.min(100, (100 * tier.count) / tier.target) : 100;
              return (
                <div key={t} className="tier-bar" data-testid={`coverage-tier-${t}`}>
                  <span className="tier-name">{TIER_LABEL[t]}</span>
                  <div className="progress-bar small-bar">
                    <div className={`progress-fill${tier.count < tier.target ? " under" : ""}`} style={{ width: `${pct}%` }} />
                  </div>
                  <span className="small">
                    {tier.count} of {tier.target} target
                  </span>
                </div>
              );
            })}
          </div>
          <div className="heatmaps">
            {data.pairs?.persona_emotion && <Heatmap matrix={data.pairs.persona_emotion} pair="persona_emotion" rowLabel="Persona" colLabel="Emotion" />}
            {data.pairs?.persona_topic && <Heatmap matrix={data.pairs.persona_topic} pair="persona_topic" rowLabel="Persona" colLabel="Topic" />}
          </div>
          {(!data.pairs?.persona_emotion || data.pairs.persona_emotion.rows.length === 0) && (
            <p className="muted">No conversations planned yet, so there is nothing to show. Plan conversations above.</p>
          )}
          <div data-testid="coverage-gaps">
            <h4>Gaps</h4>
            {data.note && <p className="small muted">{data.note}</p>}
            {data.gaps.length === 0 ? (
              <p className="small muted">No gaps found.</p>
            ) : (
              <ul className="small">
                {data.gaps.slice(0, 50).map((g, i) => (
                  <li key={i}>{gapText(g)}</li>
                ))}
                {data.gaps.length > 50 && <li className="muted">…and {data.gaps.length - 50} more</li>}
              </ul>
            )}
          </div>
        </>
      )}
    </section>
  );
}
