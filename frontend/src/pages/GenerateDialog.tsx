import { useCallback, useEffect, useState } from "react";
import { api, ApiError, type Estimate } from "../api";
import { Dialog } from "../components/Dialog";
import { Help } from "../components/Help";
import { errorMessage, useToast } from "../components/Toasts";
import { duration, money, plural } from "../format";
import { HELP } from "../help";

export type GenerateTarget = { kind: "all"; datasetId: string } | { kind: "batch"; ids: string[] };

interface Props {
  target: GenerateTarget;
  onClose: () => void;
  onStarted: (jobId: string) => void;
  /** How many conversations the dataset has, when known: says why there is nothing to write. */
  planned?: number | null;
}

/**
 * Estimate first (`POST /api/conversations/estimate`), then start. A start over the
 * dataset's budget answers 409 `over_budget`: explain it and offer "Start anyway".
 */
export function GenerateDialog({ target, onClose, onStarted, planned = null }: Props) {
  const toast = useToast();
  const [only, setOnly] = useState<"not_generated" | "failed">("not_generated");
  const [economy, setEconomy] = useState(false);
  const [estimate, setEstimate] = useState<Estimate | null>(null);
  const [estimateError, setEstimateError] = useState<string | null>(null);
  const [starting, setStarting] = useState(false);
  const [overBudget, setOverBudget] = useState<string | null>(null);

  const mode = economy ? ("economy" as const) : undefined;

  useEffect(() => {
    let cancelled = false;
    setEstimate(null);
    setEstimateError(null);
    setOverBudget(null);
    const body =
      target.kind === "all"
        ? { dataset_id: target.datasetId, only, ...(mode ? { mode } : {}) }
        : { ids: target.ids, ...(mode ? { mode } : {}) };
    api
      .estimate(body)
      .then((e) => !cancelled && setEstimate(e))
      .catch((e: unknown) => !cancelled && setEstimateError(errorMessage(e)));
    return () => {
      cancelled = true;
    };
  }, [target, only, mode]);

  const start = useCallback(
    async (confirm: boolean) => {
      setStarting(true);
      try {
        const r =
          target.kind === "all"
            ? await api.generateAll(target.datasetId, only, confirm, mode)
            : await api.generateBatch(target.ids, confirm, mode);
        toast.success("Generation started. You can follow its progress here, or close the browser: it keeps running.");
        onStarted(r.job_id);
        onClose();
      } catch (e) {
        if (e instanceof ApiError && e.code === "over_budget") {
          setOverBudget(e.message);
        } else {
          toast.error(e, "Could not start generation");
        }
      } finally {
        setStarting(false);
      }
    },
    [target, only, mode, toast, onStarted, onClose],
  );

  const nothing = estimate !== null && estimate.count === 0;
  const needsConfirm = overBudget !== null || (estimate?.over_budget ?? false);
  const title = target.kind === "all" ? "Generate all conversations" : `Generate ${plural(target.ids.length, "selected conversation")}`;

  return (
    <Dialog
      title={title}
      onClose={onClose}
      testId="generate-dialog"
      footer={
        <>
          <button type="button" className="btn" onClick={onClose} data-testid="btn-cancel">
            Cancel
          </button>
          {needsConfirm ? (
            <button
              type="button"
              className="btn btn-danger"
              disabled={starting || !estimate || nothing}
              onClick={() => void start(true)}
              data-testid="btn-start-anyway"
            >
              {starting ? "Starting…" : "Start anyway"}
            </button>
          ) : (
            <button
              type="button"
              className="btn btn-primary"
              disabled={starting || !estimate || nothing}
              onClick={() => void start(false)}
              data-testid="btn-start-generation"
              data-autofocus
            >
              {starting ? "Starting…" : "Start generation"}
            </button>
          )}
        </>
      }
    >
      {target.kind === "all" && (
        <fieldset className="radio-group">
          <legend>
            Which conversations? <Help text={HELP.generateAll} />
          </legend>
          <label>
            <input
              type="radio"
              name="only"
              checked={only === "not_generated"}
              onChange={() => setOnly("not_generated")}
              data-testid="only-not-generated"
            />
            Everything not written yet
          </label>
          <label>
            <input type="radio" name="only" checked={only === "failed"} onChange={() => setOnly("failed")} data-testid="only-failed" />
            Only the ones that failed (retry)
          </label>
        </fieldset>
      )}
      <label className="inline-check">
        <input type="checkbox" checked={economy} onChange={(e) => setEconomy(e.target.checked)} data-testid="economy-mode" />
        Economy mode (cheaper, slower) <Help text={HELP.economy} />
      </label>

      <div className="estimate" data-testid="estimate">
        {!estimate && !estimateError && <p className="loading">Calculating the cost and time…</p>}
        {estimateError && (
          <p className="banner banner-error" role="alert">
            Could not estimate: {estimateError}
          </p>
        )}
        {estimate && (
          <>
            <dl className="meta-grid">
              <dt>Conversations</dt>
              <dd data-testid="estimate-count">{estimate.count.toLocaleString()}</dd>
              <dt>Estimated cost</dt>
              <dd data-testid="estimate-cost">{money(estimate.estimated_cost_usd)}</dd>
              {(estimate.estimated_judge_cost_usd ?? 0) > 0 && (
                <>
                  <dt>
                    Of which the AI judge <Help text={HELP.judge} />
                  </dt>
                  <dd data-testid="estimate-judge">
                    {money(estimate.estimated_judge_cost_usd)}
                    <span className="muted small">
                      {" "}
                      (quality review{estimate.judge_model ? ` by ${estimate.judge_model}` : ""}, included above)
                    </span>
                  </dd>
                </>
              )}
              {estimate.estimated_cost_low_usd !== undefined && estimate.estimated_cost_high_usd !== undefined && (
                <>
                  <dt>Likely range</dt>
                  <dd data-testid="estimate-range">
                    {money(estimate.estimated_cost_low_usd)} – {money(estimate.estimated_cost_high_usd)}
                  </dd>
                </>
              )}
              <dt>Estimated time</dt>
              <dd data-testid="estimate-time">
                {duration(estimate.estimated_seconds)}
                {estimate.estimated_seconds_low !== undefined &&
                  estimate.estimated_seconds_high !== undefined &&
                  estimate.estimated_seconds_high > estimate.estimated_seconds_low && (
                    <span className="muted">
                      {" "}
                      ({duration(estimate.estimated_seconds_low)} – {duration(estimate.estimated_seconds_high)})
                    </span>
                  )}
              </dd>
              <dt>
                Budget <Help text={HELP.budget} />
              </dt>
              <dd data-testid="estimate-budget">
                {estimate.budget_usd !== null && estimate.budget_usd !== undefined ? money(estimate.budget_usd) : "No budget set"}
                {estimate.budget_remaining_usd !== null && estimate.budget_remaining_usd !== undefined
                  ? ` (${money(estimate.budget_remaining_usd)} left)`
                  : ""}
              </dd>
              {!economy && estimate.estimated_economy_cost_usd !== undefined && estimate.estimated_economy_cost_usd < estimate.estimated_cost_usd && (
                <>
                  <dt>In economy mode</dt>
                  <dd className="muted">{money(estimate.estimated_economy_cost_usd)}</dd>
                </>
              )}
            </dl>
            {estimate.basis && !nothing && (
              <p className="muted estimate-basis" data-testid="estimate-basis">
                Based on {estimate.basis}.{estimate.time_basis ? ` Time: ${estimate.time_basis}.` : ""}
              </p>
            )}
            {!estimate.over_budget && estimate.may_exceed_budget && !nothing && (
              <p className="muted" data-testid="estimate-may-exceed">
                The high end of the range is more than what is left of the budget: generation pauses itself if it gets
                there.
              </p>
            )}
            {nothing && (
              <p className="muted" data-testid="estimate-nothing">
                {target.kind !== "all"
                  ? "None of the selected conversations needs writing."
                  : planned === 0
                    ? "Nothing is planned yet, so there is nothing to write. Plan conversations on the Datasets page first."
                    : only === "failed"
                      ? "No conversation has failed: there is nothing to retry."
                      : "There is nothing left to write: every planned conversation has been written already."}
              </p>
            )}
          </>
        )}
        {(estimate?.over_budget || overBudget) && (
          <div className="banner banner-warning" role="alert" data-testid="over-budget">
            <strong>This would go over your budget.</strong>{" "}
            {overBudget ??
              `The estimate (${money(estimate?.estimated_cost_usd)}) is more than what is left of this dataset's budget.`}{" "}
            You can raise the budget on the Datasets page, generate fewer conversations, or start anyway. Generation pauses itself
            when the budget is used up.
          </div>
        )}
      </div>
    </Dialog>
  );
}
