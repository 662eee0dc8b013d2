import { useState } from "react";
import { api, isJobActive, jobBudget, jobPercent, type Job } from "../api";
import { ConfirmDialog } from "../components/Dialog";
import { Help } from "../components/Help";
import { useToast } from "../components/Toasts";
import { duration, money } from "../format";
import { HELP } from "../help";
import type { JobTracker } from "../jobs";

const LIMIT_TEXT: Record<string, string> = {
  rpm: "your account's requests per minute",
  otpm: "your account's output tokens per minute",
  latency: "the time each answer takes",
  cap: "the maximum you chose",
  ceiling: "the deployment's Lambda concurrency",
  backoff: "backing off: the provider refused calls",
  breaker: "waiting: the provider keeps refusing calls",
};

const PAUSE_TEXT: Record<string, string> = {
  user: "paused by you",
  budget: "the budget was reached",
  provider_refusing:
    "the model provider kept refusing calls (rate limited or overloaded). Nothing was charged for the refused calls; resume when the provider is back to normal",
};

/**
 * What is being written now. Many conversations are written at once and the server notes
 * the latest one started at most once a second, so a name is shown only while it is
 * fresh (the finished count has not moved on by more than one since it changed), with
 * how many others are in flight; the line always moves with the count.
 */
export function NowWriting({ job, done }: { job: Job; done: number }) {
  const c = job.current;
  const id = c?.conversation_id ?? (c?.persona ? `${c.persona}|${c.topic ?? ""}` : null);
  const [seen, setSeen] = useState<{ id: string | null; done: number }>({ id, done });
  if (seen.id !== id) setSeen({ id, done });
  const fresh = id !== null && Boolean(c?.persona) && done - (seen.id === id ? seen.done : done) <= 1;
  const remaining = Math.max(0, job.total - done);
  const inFlight = Math.min(remaining, job.concurrency?.in_flight ?? 0);
  const others = Math.max(0, inFlight - 1);
  return (
    <span data-testid="progress-current" data-done={done} aria-live="polite">
      Now writing{" "}
      {fresh ? (
        <>
          <b>{job.current?.persona}</b>
          {job.current?.topic ? ` · ${job.current.topic}` : ""}
          {others > 0 ? ` and ${others} more at once` : ""}
        </>
      ) : inFlight > 1 ? (
        `${inFlight} conversations at once`
      ) : (
        "the next conversation"
      )}{" "}
      <span className="muted">({remaining.toLocaleString()} to go)</span>
    </span>
  );
}

/** "12 of 75 calls in flight · limited by …" for the running job. */
export function concurrencyText(c: NonNullable<Job["concurrency"]>): string {
  const parts: string[] = [];
  if (c.target !== undefined) parts.push(`${c.in_flight ?? 0} of ${c.target} calls in flight`);
  if (c.limit_reason) parts.push(`limited by ${LIMIT_TEXT[c.limit_reason] ?? c.limit_reason}`);
  if (c.latency_s) parts.push(`${c.latency_s < 10 ? c.latency_s.toFixed(1) : Math.round(c.latency_s)} s per answer`);
  if (c.rate_share !== undefined && c.rate_share < 1) parts.push(`at ${Math.round(c.rate_share * 100)}% of the rate limit`);
  return parts.join(" · ");
}

const STATUS_TEXT: Record<Job["status"], string> = {
  queued: "Waiting to start",
  running: "Generating",
  pausing: "Pausing after the current conversations…",
  paused: "Paused",
  completed: "Finished",
  failed: "Stopped with an error",
  cancelled: "Cancelled",
};

export function ProgressTracker({ tracker, onShowGenerated }: { tracker: JobTracker; onShowGenerated?: () => void }) {
  const toast = useToast();
  const job = tracker.job;
  const [busy, setBusy] = useState(false);
  const [confirmCancel, setConfirmCancel] = useState(false);
  if (!job) return null;

  const pct = Math.max(0, Math.min(100, jobPercent(job)));
  const done = job.completed + job.failed + job.skipped;
  const active = isJobActive(job);
  const budget = jobBudget(job);
  const warnings = job.warnings ?? [];

  const act = async (what: "pause" | "resume" | "cancel") => {
    setBusy(true);
    try {
      const fn = what === "pause" ? api.pauseJob : what === "resume" ? api.resumeJob : api.cancelJob;
      const updated = await fn(job.job_id);
      if (updated && typeof updated === "object" && "status" in updated) tracker.setJob({ ...job, ...updated });
      else await tracker.refresh();
      toast.success(what === "pause" ? "Pausing generation." : what === "resume" ? "Generation resumed." : "Generation cancelled.");
    } catch (e) {
      toast.error(e, `Could not ${what} the job`);
    } finally {
      setBusy(false);
      setConfirmCancel(false);
    }
  };

  return (
    <section className={`progress-tracker job-${job.status}`} data-testid="progress-tracker" data-job-id={job.job_id} data-status={job.status} aria-label="Generation progress">
      <div className="progress-head">
        <strong data-testid="progress-status">{STATUS_TEXT[job.status] ?? job.status}</strong>
        {job.mode === "economy" && (
          <span className="badge">
            Economy mode <Help text={HELP.economy} />
          </span>
        )}
        <span className="progress-count" data-testid="progress-count">
          {done.toLocaleString()} of {job.total.toLocaleString()} conversations · {Math.round(pct)}%
        </span>
        <span className="spacer" />
        {active && job.status !== "paused" && (
          <button type="button" className="btn btn-small" disabled={busy || job.status === "pausing"} onClick={() => void act("pause")} data-testid="btn-pause">
            Pause
          </button>
        )}
        {job.status === "paused" && (
          <button type="button" className="btn btn-small btn-primary" disabled={busy} onClick={() => void act("resume")} data-testid="btn-resume">
            Resume
          </button>
        )}
        {active && (
          <button type="button" className="btn btn-small btn-danger" disabled={busy} onClick={() => setConfirmCancel(true)} data-testid="btn-cancel-job">
            Cancel
          </button>
        )}
        {!active && (
          <button type="button" className="btn btn-small" onClick={tracker.dismiss} data-testid="btn-dismiss-job">
            Dismiss
          </button>
        )}
      </div>
      <div
        className="progress-bar"
        role="progressbar"
        aria-valuemin={0}
        aria-valuemax={100}
        aria-valuenow={Math.round(pct)}
        aria-label="Generation progress"
        data-testid="progress-bar"
      >
        <div className="progress-fill" style={{ width: `${pct}%` }} />
      </div>
      <div className="progress-details small">
        {active && job.status !== "paused" && <NowWriting job={job} done={done} />}
        {active && (
          <span data-testid="progress-eta">
            Time left: {job.eta_seconds !== null && job.eta_seconds !== undefined ? `about ${duration(job.eta_seconds)}` : "calculating…"}
          </span>
        )}
        {job.status === "running" && job.concurrency && (
          <span data-testid="progress-concurrency" data-limit={job.concurrency.limit_reason ?? ""}>
            {concurrencyText(job.concurrency)}
            <Help text={HELP.concurrency} />
          </span>
        )}
        <span data-testid="progress-cost">
          Spent {money(job.cost_usd)} of {money(job.estimated_cost_usd)} estimated
          {budget !== null ? ` · budget ${money(budget)}` : ""}
        </span>
        {job.failed > 0 && <span className="text-warn">{job.failed} failed</span>}
        {job.skipped > 0 && <span className="muted">{job.skipped} skipped</span>}
      </div>
      {warnings.map((w) => (
        <div key={w.threshold_percent} className="banner banner-warning small" data-testid="progress-warning">
          Budget warning: {w.threshold_percent}% of the budget used ({money(w.spent_usd)} of {money(w.budget_usd)}).
          {w.threshold_percent >= 100 ? " Generation paused itself; resume to continue anyway." : ""}
        </div>
      ))}
      {job.status === "paused" && job.pause_reason && (
        <div className="banner banner-warning small" data-testid="progress-pause-reason">
          Paused: {PAUSE_TEXT[job.pause_reason] ?? job.pause_reason}
        </div>
      )}
      {tracker.error && <div className="small text-warn">Could not refresh progress: {tracker.error} (retrying)</div>}
      {!active && (
        <div className="banner banner-info" data-testid="progress-summary">
          {job.status === "completed" ? "Done. " : job.status === "cancelled" ? "Cancelled. " : "The job stopped. "}
          {job.completed} written, {job.failed} failed{job.skipped ? `, ${job.skipped} skipped` : ""}. Cost {money(job.cost_usd)} (estimate was{" "}
          {money(job.estimated_cost_usd)}).
          {job.error_message ? ` ${job.error_message}` : ""}
          {job.failed > 0 ? " Use Generate all → “Only the ones that failed” to retry the failures." : ""}
          {job.completed > 0 &&
            (onShowGenerated ? (
              <>
                {" "}
                <button type="button" className="btn btn-small btn-primary" onClick={onShowGenerated} data-testid="btn-show-generated">
                  Review the new conversations
                </button>
              </>
            ) : (
              " Review the new conversations below: filter Status = Generated."
            ))}
        </div>
      )}
      {confirmCancel && (
        <ConfirmDialog
          title="Cancel generation?"
          message="Conversations already written are kept. The rest stay 'Not generated' and you can start them again later."
          confirmLabel="Cancel generation"
          danger
          busy={busy}
          onConfirm={() => void act("cancel")}
          onCancel={() => setConfirmCancel(false)}
        />
      )}
    </section>
  );
}
