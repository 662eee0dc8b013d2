import type { Calibration, FlagLine } from "../api";
import { Help } from "../components/Help";
import { plural } from "../format";
import { HELP } from "../help";
import { checkLabel, percent } from "../quality";
import type { DashboardState } from "../urlState";

interface Props {
  calibration: Calibration;
  state: DashboardState;
  onChange: (next: DashboardState) => void;
}

/** A 0..1 rate as a small horizontal bar with its figure. */
function RateBar({ value, label }: { value: number | null; label: string }) {
  const pct = value === null ? 0 : Math.round(value * 100);
  return (
    <span className="rate">
      <span className="rate-bar" role="img" aria-label={`${label}: ${value === null ? "no data" : `${pct}%`}`}>
        <span className="rate-fill" style={{ width: `${pct}%` }} />
      </span>
      <span className="rate-figure">{percent(value)}</span>
    </span>
  );
}

const FLAG_ROWS: { key: keyof FlagLine | "caught"; label: string; show: (l: FlagLine) => string }[] = [
  { key: "threshold", label: "Flags scores below", show: (l) => String(l.threshold) },
  { key: "flagged", label: "Reviewed conversations it flags", show: (l) => String(l.flagged) },
  { key: "recall", label: "Rejections it catches (recall)", show: (l) => `${percent(l.recall)} (${l.rejections_caught})` },
  { key: "precision", label: "Flags you rejected (precision)", show: (l) => percent(l.precision) },
  { key: "approved_flagged", label: "Approved conversations it flags", show: (l) => `${l.approved_flagged} (${percent(l.false_flag_rate)} of approvals)` },
];

/** Today's flag line (6) beside the suggested one, row by row. */
function FlagLines({ current, suggested }: { current: FlagLine; suggested: FlagLine | null }) {
  return (
    <table className="simple-table" tabIndex={0} data-testid="calibration-flag-lines">
      <thead>
        <tr>
          <th scope="col">
            <span className="sr-only">Figure</span>
          </th>
          <th scope="col">Today</th>
          {suggested && <th scope="col">Suggested</th>}
        </tr>
      </thead>
      <tbody>
        {FLAG_ROWS.map((r) => (
          <tr key={r.key}>
            <th scope="row">{r.label}</th>
            <td data-testid={`calibration-current-${r.key}`}>{r.show(current)}</td>
            {suggested && <td data-testid={`calibration-suggested-${r.key}`}>{r.show(suggested)}</td>}
          </tr>
        ))}
      </tbody>
    </table>
  );
}

/**
 * How the score agrees with the reviewers' decisions: approval per score band, the
 * precision of each check's flags, what the flag line does today and, from 30
 * decisions on, the line that would agree best.
 */
export function CalibrationView({ calibration: c, state, onChange }: Props) {
  return (
    <section className="card insight-view" aria-labelledby="calibration-title" data-testid="calibration-view">
      <div className="card-head">
        <h2 id="calibration-title">
          Calibration <Help text={HELP.calibration} />
        </h2>
        <span className="small muted" data-testid="calibration-decisions">
          {plural(c.decisions, "review decision")}: {c.approved} approved, {c.rejected} rejected
        </span>
        <span className="spacer" />
        <button type="button" className="btn btn-small" onClick={() => onChange({ ...state, insight: null })} data-testid="btn-close-insight">
          ← Back to the table
        </button>
      </div>

      <div className="insight-columns">
        <div>
          <h3>Approval rate per score band</h3>
          <table className="simple-table" tabIndex={0} data-testid="calibration-bands">
            <thead>
              <tr>
                <th scope="col">Score</th>
                <th scope="col">Reviewed</th>
                <th scope="col">Approved</th>
                <th scope="col">Rejected</th>
                <th scope="col">Approval rate</th>
              </tr>
            </thead>
            <tbody>
              {c.bands.map((b) => (
                <tr key={b.band} data-testid={`band-${b.band}`}>
                  <th scope="row">{b.band}</th>
                  <td>{b.reviewed}</td>
                  <td>{b.approved}</td>
                  <td>{b.rejected}</td>
                  <td>{b.reviewed ? <RateBar value={b.approval_rate} label={`Approval rate, scores ${b.band}`} /> : <span className="muted">–</span>}</td>
                </tr>
              ))}
            </tbody>
          </table>
        </div>

        <div>
          <h3>The flag line</h3>
          {c.suggested ? (
            <p className="small" data-testid="calibration-suggested">
              {c.suggested.threshold === c.current?.threshold ? (
                <>
                  From your {plural(c.decisions, "decision")}, today&apos;s flag line (below <b>{c.suggested.threshold}</b>) already agrees
                  best with what you reject.
                </>
              ) : (
                <>
                  From your {plural(c.decisions, "decision")}, flagging below <b>{c.suggested.threshold}</b> instead of{" "}
                  {c.current?.threshold ?? 6} would agree best with what you reject.
                </>
              )}
            </p>
          ) : (
            <p className="small muted" data-testid="calibration-note">
              {c.note ?? `A suggested flag line needs ${c.min_decisions} review decisions.`}
            </p>
          )}
          {c.current ? <FlagLines current={c.current} suggested={c.suggested} /> : <p className="muted small">No decisions yet.</p>}
          {c.suggested && (
            <div className="button-row">
              <button
                type="button"
                className="btn btn-small"
                onClick={() =>
                  onChange({ ...state, qualityMin: null, qualityMax: Math.round((c.suggested!.threshold - 0.01) * 100) / 100, page: 1, insight: null })
                }
                data-testid="btn-filter-suggested"
              >
                List the conversations below {c.suggested.threshold}
              </button>
            </div>
          )}
        </div>
      </div>

      <h3>Precision of each check</h3>
      {c.checks.length === 0 ? (
        <p className="small muted" data-testid="calibration-checks">
          No check has flagged a reviewed conversation yet.
        </p>
      ) : (
        <table className="simple-table" tabIndex={0} data-testid="calibration-checks">
          <thead>
            <tr>
              <th scope="col">Check</th>
              <th scope="col">Reviewed conversations it flagged</th>
              <th scope="col">Of those rejected</th>
              <th scope="col">Precision</th>
            </tr>
          </thead>
          <tbody>
            {c.checks.map((k) => (
              <tr key={k.check} data-testid={`check-precision-${k.check}`}>
                <th scope="row" title={k.check}>
                  {checkLabel(k.check)}
                </th>
                <td>{k.flagged}</td>
                <td>{k.rejected}</td>
                <td>
                  <RateBar value={k.precision} label={`Precision of ${checkLabel(k.check)}`} />
                </td>
              </tr>
            ))}
          </tbody>
        </table>
      )}
    </section>
  );
}
