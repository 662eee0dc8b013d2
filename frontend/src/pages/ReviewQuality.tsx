/** The quality parts of the review panel: the reasons at the top, the per-check
 * breakdown (failed first) and the LLM judge's verdict. */
import { JUDGE_DIMENSIONS, type JudgeMode, type JudgeVerdict, type QualityCheck, type QualityReport } from "../api";
import { Help } from "../components/Help";
import { money } from "../format";
import { HELP } from "../help";
import { checkLabel, JUDGE_DIMENSION_LABEL, reasonTurn, sortChecks } from "../quality";

export const SIMULATED_JUDGE_NOTE = "Simulated judge (offline simulator): shown for the demo, not counted in the score";

/** The reasons that name `turn`, from the report and its failed checks (once each). */
export function turnReasons(quality: QualityReport, turn: number): string[] {
  const all = [...(quality.reasons ?? []), ...quality.checks.filter((c) => !c.passed && c.severity).flatMap((c) => c.reasons ?? [])];
  return [...new Set(all.filter((r) => reasonTurn(r) === turn))];
}

export function PanelReasons({ quality, onJumpToTurn }: { quality: QualityReport; onJumpToTurn: (turn: number) => void }) {
  const reasons = quality.reasons ?? [];
  if (reasons.length === 0) return null;
  return (
    <section
      className={`panel-reasons${quality.flagged ? " flagged" : ""}`}
      aria-labelledby="panel-reasons-title"
      data-testid="panel-reasons"
    >
      <h3 id="panel-reasons-title">
        {quality.flagged ? "⚑ Flagged: why" : "Worth a look"} <Help text={HELP.reasons} />
      </h3>
      <ol>
        {reasons.map((r, i) => {
          const turn = reasonTurn(r);
          const rest = turn === null ? r : r.replace(/^turns? \d+\s*:?\s*/i, "");
          return (
            <li key={`${i}-${r}`} data-testid={`panel-reason-${i}`}>
              {turn !== null ? (
                <>
                  <button
                    type="button"
                    className="link-btn reason-turn"
                    onClick={() => onJumpToTurn(turn)}
                    title={`Go to turn ${turn}`}
                    data-testid={`reason-turn-${turn}`}
                  >
                    Turn {turn}
                  </button>
                  : {rest}
                </>
              ) : (
                r
              )}
            </li>
          );
        })}
      </ol>
    </section>
  );
}

function CheckItem({ c }: { c: QualityCheck }) {
  const reasons = c.reasons ?? [];
  return (
    <li className={c.passed ? "pass" : "fail"} data-testid={`check-${c.name}`} data-passed={c.passed ? "true" : "false"}>
      <span aria-label={c.passed ? "passed" : "failed"}>{c.passed ? "✓" : "✗"}</span> <b title={c.name}>{checkLabel(c.name)}</b>{" "}
      {!c.passed && c.severity && <span className={`severity severity-${c.severity}`}>{c.severity}</span>}{" "}
      <span className="muted small">({Math.round(c.score * 100)}%)</span>
      {!c.passed && reasons.length > 0 ? (
        <ul className="check-reasons small">
          {reasons.map((r, i) => (
            <li key={`${i}-${r}`}>{r}</li>
          ))}
        </ul>
      ) : c.detail ? (
        <div className="small muted">{c.detail}</div>
      ) : null}
    </li>
  );
}

/** Every check, failed ones first (worst severity first); passed ones folded away. */
export function QualityChecks({ quality }: { quality: QualityReport }) {
  const sorted = sortChecks(quality.checks);
  const failed = sorted.filter((c) => !c.passed);
  const passed = sorted.filter((c) => c.passed);
  return (
    <section aria-label="Quality checks" className="meta">
      <h3>
        Quality checks <Help text={HELP.quality} />
      </h3>
      <div data-testid="quality-checks">
        {failed.length > 0 ? (
          <ul className="checks" aria-label="Failed checks" data-testid="checks-failed">
            {failed.map((c) => (
              <CheckItem key={c.name} c={c} />
            ))}
          </ul>
        ) : (
          <p className="small muted">Every check passed.</p>
        )}
        {passed.length > 0 && (
          <details className="checks-passed" open={failed.length === 0 && passed.length <= 6}>
            <summary className="small">
              {passed.length} passed {passed.length === 1 ? "check" : "checks"}
            </summary>
            <ul className="checks" aria-label="Passed checks" data-testid="checks-passed">
              {passed.map((c) => (
                <CheckItem key={c.name} c={c} />
              ))}
            </ul>
          </details>
        )}
      </div>
    </section>
  );
}

function ScoreBar({ score }: { score: number }) {
  const pct = Math.max(0, Math.min(100, ((score - 1) / 9) * 100));
  return (
    <span className="rate" aria-hidden="true">
      <span className="rate-bar">
        <span className={`rate-fill${score < 6 ? " low" : ""}`} style={{ width: `${pct}%` }} />
      </span>
    </span>
  );
}

interface JudgeProps {
  judge: JudgeVerdict | null | undefined;
  judgeMode: JudgeMode | undefined;
  canValidate: boolean;
  validating: boolean;
  onValidateWithJudge: () => void;
}

/** The judge's rubric verdict, saying plainly when it is simulated or failed. */
export function JudgeSection({ judge, judgeMode, canValidate, validating, onValidateWithJudge }: JudgeProps) {
  const dims = judge ? [...JUDGE_DIMENSIONS.filter((d) => judge.dimensions[d]), ...Object.keys(judge.dimensions).filter((d) => !(JUDGE_DIMENSIONS as readonly string[]).includes(d))] : [];
  return (
    <section aria-labelledby="panel-judge-title" className="meta" data-testid="panel-judge">
      <h3 id="panel-judge-title">
        AI judge <Help text={HELP.judge} />
      </h3>
      {!judge ? (
        <p className="small muted" data-testid="judge-none">
          {judgeMode === "off"
            ? "The AI judge is off for this dataset (Datasets page, quality rules). The score comes from the automatic checks."
            : "Not judged yet."}
        </p>
      ) : (
        <>
          {judge.simulated && (
            <p className="banner banner-warning small" role="note" data-testid="judge-simulated">
              {SIMULATED_JUDGE_NOTE}.
            </p>
          )}
          {judge.error && (
            <p className="banner banner-error small" role="alert" data-testid="judge-error">
              The judge could not give a verdict: {judge.error}. The score comes from the automatic checks alone.
            </p>
          )}
          {judge.overall !== null && judge.overall !== undefined && (
            <p className="small">
              Overall <b data-testid="judge-overall">{judge.overall.toFixed(1)}</b>/10
              {judge.simulated || judge.error ? " (not counted)" : " (counted in the score)"}
              <span className="muted">
                {judge.model ? ` · ${judge.model}` : ""}
                {judge.cached ? " · reused: this text was judged before" : judge.cost_usd ? ` · ${money(judge.cost_usd)}` : ""}
              </span>
            </p>
          )}
          {dims.length > 0 && (
            <dl className="judge-dimensions" data-testid="judge-dimensions">
              {dims.map((name) => {
                const dim = judge.dimensions[name]!;
                return (
                  <div key={name} className="judge-dimension" data-testid={`judge-dim-${name}`}>
                    <dt>
                      {JUDGE_DIMENSION_LABEL[name] ?? name} <b className="judge-score">{dim.score.toFixed(0)}</b>
                      <span className="muted small">/10</span> <ScoreBar score={dim.score} />
                    </dt>
                    <dd className="small">{dim.reason}</dd>
                  </div>
                );
              })}
            </dl>
          )}
          {judge.summary && <p className="small muted">{judge.summary}</p>}
        </>
      )}
      {canValidate && (
        <button
          type="button"
          className="btn btn-small"
          disabled={validating}
          onClick={onValidateWithJudge}
          data-testid="btn-validate-judge"
          title="Run the checks again and ask the AI judge (a paid call unless this text was judged before)"
        >
          {validating ? "Checking…" : "Validate with judge"}
        </button>
      )}
    </section>
  );
}
