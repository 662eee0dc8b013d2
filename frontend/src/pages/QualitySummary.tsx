import type { Diversity } from "../api";
import { Help } from "../components/Help";
import { ScoreHistogram } from "../components/ScoreHistogram";
import { plural } from "../format";
import { HELP } from "../help";
import { bucketOfRange, bucketRange, percent } from "../quality";
import type { QualityInsights } from "../qualityInsights";
import { ATTENTION_SORT, DEFAULT_ORDER, DEFAULT_SORT, type DashboardState, type Insight } from "../urlState";

interface Props {
  insights: QualityInsights;
  state: DashboardState;
  onChange: (next: DashboardState) => void;
  /** The review panel is open: headline figures only, so the table stays in view. */
  compact?: boolean;
}

/** Repeated openers, repeated phrases and near-duplicate clusters of a report. */
export function diversityCounts(d: Diversity): { openers: number; phrases: number; clusters: number } {
  return {
    openers: (d.openers.user?.length ?? 0) + (d.openers.assistant?.length ?? 0),
    phrases: (d.phrases.user?.length ?? 0) + (d.phrases.assistant?.length ?? 0),
    clusters: d.near_duplicate_clusters.length,
  };
}

function fixed(v: number | null | undefined, digits = 2): string {
  return v === null || v === undefined || !Number.isFinite(v) ? "–" : v.toFixed(digits);
}

/**
 * The triage strip above the table: the score histogram with "needs attention" and
 * "flagged", and the diversity and calibration cards that open their views.
 */
export function QualitySummary({ insights, state, onChange, compact = false }: Props) {
  const { stats, diversity, calibration } = insights;
  if (!stats || stats.scored === 0) return null;
  const active = bucketOfRange(state.qualityMin, state.qualityMax);
  const attention = state.sort === ATTENTION_SORT.sort && state.order === ATTENTION_SORT.order;
  const toggleInsight = (insight: Insight) => onChange({ ...state, insight: state.insight === insight ? null : insight });
  const counts = diversity ? diversityCounts(diversity) : null;

  return (
    <section className={`quality-summary${compact ? " compact" : ""}`} aria-label="Quality overview" data-testid="quality-summary">
      <div className="summary-card summary-quality" data-testid="quality-card">
        <div className="summary-head">
          <h3>
            Quality <Help text={HELP.histogram} />
          </h3>
          <span className="small muted hide-compact" data-testid="quality-stats">
            {plural(stats.scored, "scored conversation")}
            {stats.mean !== null && stats.mean !== undefined ? ` · mean ${stats.mean.toFixed(1)}` : ""}
          </span>
        </div>
        <div className="summary-body">
          <ScoreHistogram
            histogram={stats.histogram}
            active={active}
            onPick={(bucket) => {
              const r = bucket === null ? { min: null, max: null } : bucketRange(bucket);
              onChange({ ...state, qualityMin: r.min, qualityMax: r.max, page: 1, insight: null });
            }}
          />
          <div className="summary-actions">
            <button
              type="button"
              className={`btn btn-small btn-attention${attention ? " on" : stats.flagged > 0 ? " suggest" : ""}`}
              aria-pressed={attention}
              onClick={() =>
                onChange({
                  ...state,
                  ...(attention ? { sort: DEFAULT_SORT, order: DEFAULT_ORDER } : ATTENTION_SORT),
                  page: 1,
                  insight: null,
                })
              }
              data-testid="btn-sort-attention"
              title={HELP.attention}
            >
              ⚑ Needs attention first
            </button>
            <button
              type="button"
              className="link-btn small"
              disabled={stats.flagged === 0}
              onClick={() => onChange({ ...state, flagged: true, page: 1, insight: null })}
              data-testid="btn-show-flagged"
            >
              <span data-testid="flagged-count">{stats.flagged}</span> flagged
            </button>
          </div>
        </div>
      </div>

      <div className="summary-card" data-testid="diversity-card">
        <div className="summary-head">
          <h3>
            Diversity <Help text={HELP.diversity} />
          </h3>
          {diversity && (
            <span className="summary-figure" data-testid="diversity-score">
              {diversity.diversity_score === null ? "–" : Math.round(diversity.diversity_score)}
              <span className="small muted">/100</span>
            </span>
          )}
        </div>
        {diversity && counts ? (
          <ul className="summary-facts small">
            <li>
              distinct-2 <b data-testid="diversity-distinct2">{fixed(diversity.distinct.all?.distinct_2)}</b>
            </li>
            <li data-testid="diversity-openers-count">
              <b>{counts.openers}</b> repeated {counts.openers === 1 ? "opener" : "openers"}
            </li>
            <li data-testid="diversity-phrases-count">
              <b>{counts.phrases}</b> repeated {counts.phrases === 1 ? "phrase" : "phrases"}
            </li>
            <li data-testid="diversity-clusters-count">
              <b>{counts.clusters}</b> near-duplicate {counts.clusters === 1 ? "cluster" : "clusters"}
            </li>
          </ul>
        ) : insights.diversityError ? (
          <p className="small text-warn">Could not measure diversity: {insights.diversityError}</p>
        ) : (
          <p className="small muted loading">Measuring…</p>
        )}
        <button
          type="button"
          className="btn btn-small"
          aria-expanded={state.insight === "diversity"}
          disabled={!diversity}
          onClick={() => toggleInsight("diversity")}
          data-testid="btn-open-diversity"
        >
          {state.insight === "diversity" ? "Close diversity" : compact ? "Details…" : "Repeats and near-duplicates…"}
        </button>
      </div>

      <div className="summary-card" data-testid="calibration-card">
        <div className="summary-head">
          <h3>
            Calibration <Help text={HELP.calibration} />
          </h3>
          {calibration && <span className="small muted">{plural(calibration.decisions, "review decision")}</span>}
        </div>
        {calibration ? (
          <ul className="summary-facts small">
            {calibration.current ? (
              <li>
                The flag line ({calibration.current.threshold}) catches <b>{percent(calibration.current.recall)}</b> of rejections
              </li>
            ) : (
              <li className="muted">Approve or reject conversations to see how the score agrees with you.</li>
            )}
            {calibration.suggested ? (
              <li data-testid="calibration-card-suggested">
                Suggested flag line: <b>{calibration.suggested.threshold}</b>
              </li>
            ) : calibration.decisions < calibration.min_decisions ? (
              <li className="muted">
                {plural(calibration.min_decisions - calibration.decisions, "more decision")} for a suggested flag line
              </li>
            ) : null}
          </ul>
        ) : insights.calibrationError ? (
          <p className="small text-warn">Could not load: {insights.calibrationError}</p>
        ) : (
          <p className="small muted loading">Loading…</p>
        )}
        <button
          type="button"
          className="btn btn-small"
          aria-expanded={state.insight === "calibration"}
          disabled={!calibration}
          onClick={() => toggleInsight("calibration")}
          data-testid="btn-open-calibration"
        >
          {state.insight === "calibration" ? "Close calibration" : compact ? "Details…" : "Score vs. your decisions…"}
        </button>
      </div>
    </section>
  );
}
