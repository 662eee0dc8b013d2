import { useCallback, useEffect, useState } from "react";
import { ACTIVE_FINE_TUNE_STATUSES, api, type ExportRecord, type FineTune } from "../api";
import { useApp } from "../appContext";
import { ExportDialog, ExportStatus, FORMAT_INFO } from "../components/ExportDialog";
import { FineTuneDialog } from "../components/FineTuneDialog";
import { Help } from "../components/Help";
import { useToast } from "../components/Toasts";
import { dateTime, money } from "../format";
import { HELP } from "../help";

export function ExportsPage() {
  const { datasetId } = useApp();
  const toast = useToast();
  const [history, setHistory] = useState<ExportRecord[] | null>(null);
  const [open, setOpen] = useState(false);
  const [fresh, setFresh] = useState<ExportRecord | null>(null);
  const [linkBusy, setLinkBusy] = useState<string | null>(null);
  const [fineTuneFor, setFineTuneFor] = useState<ExportRecord | null>(null);
  const [fineTunes, setFineTunes] = useState<FineTune[] | null>(null);

  const load = useCallback(async () => {
    try {
      setHistory((await api.exportHistory()).items);
    } catch (e) {
      toast.error(e, "Could not load the export history");
      setHistory((h) => h ?? []);
    }
  }, [toast]);

  /** The fine-tunes, their status read from Bedrock by the API. */
  const loadFineTunes = useCallback(async () => {
    try {
      setFineTunes((await api.listFineTunes()).items);
    } catch (e) {
      toast.error(e, "Could not load the fine-tunes");
      setFineTunes((f) => f ?? []);
    }
  }, [toast]);

  useEffect(() => {
    void load();
    void loadFineTunes();
  }, [load, loadFineTunes]);

  // Follow running jobs: a training run takes hours, a look every 30 s is plenty.
  const running = fineTunes?.some((f) => ACTIVE_FINE_TUNE_STATUSES.includes(f.status)) ?? false;
  useEffect(() => {
    if (!running) return undefined;
    const t = window.setInterval(() => void loadFineTunes(), 30_000);
    return () => window.clearInterval(t);
  }, [running, loadFineTunes]);

  const stop = async (id: string) => {
    try {
      await api.stopFineTune(id);
      await loadFineTunes();
    } catch (e) {
      toast.error(e, "Could not stop the fine-tune");
    }
  };

  const getLink = async (id: string) => {
    setLinkBusy(id);
    try {
      setFresh(await api.getExport(id));
    } catch (e) {
      toast.error(e, "Could not get a download link");
    } finally {
      setLinkBusy(null);
    }
  };

  return (
    <div className="page" data-testid="exports-page">
      <div className="card-head">
        <h2 className="page-title">Exports</h2>
        <span className="spacer" />
        <button type="button" className="btn btn-primary" onClick={() => setOpen(true)} disabled={!datasetId} data-testid="btn-new-export">
          New export…
        </button>
        <Help text={HELP.exportApproved} />
      </div>
      <p className="small muted">Export your approved conversations as training files for your fine-tuning tool.</p>
      {fresh && <ExportStatus record={fresh} />}
      <section className="card" aria-label="Export history">
        <h3>History</h3>
        {!history && <p className="loading">Loading…</p>}
        {history && history.length === 0 && (
          <p className="muted" data-testid="empty-exports">
            No exports yet. Approve conversations on the Dashboard, then click “New export”.
          </p>
        )}
        {history && history.length > 0 && (
          <table className="simple-table" tabIndex={0} data-testid="export-history">
            <thead>
              <tr>
                <th>Created</th>
                <th>Format</th>
                <th>Conversations</th>
                <th>Status</th>
                <th>File</th>
                <th />
              </tr>
            </thead>
            <tbody>
              {history.map((r) => (
                <tr key={r.export_id} data-testid={`export-row-${r.export_id}`}>
                  <td>{dateTime(r.created_at)}</td>
                  <td>{FORMAT_INFO[r.format]?.label ?? r.format}</td>
                  <td>{r.conversation_count ?? "–"}</td>
                  <td>
                    {r.status}
                    {r.status === "failed" && r.error_message && (
                      <div className="small error-text" data-testid={`export-error-${r.export_id}`}>
                        {r.error_message}
                      </div>
                    )}
                  </td>
                  <td className="small">{r.filename ?? "–"}</td>
                  <td>
                    {r.status === "ready" && (
                      <button
                        type="button"
                        className="btn btn-small"
                        disabled={linkBusy === r.export_id}
                        onClick={() => void getLink(r.export_id)}
                        data-testid={`btn-export-link-${r.export_id}`}
                      >
                        Get download link
                      </button>
                    )}
                    {r.status === "ready" && r.format === "anthropic" && (
                      <button
                        type="button"
                        className="btn btn-small"
                        onClick={() => setFineTuneFor(r)}
                        title="Start an Amazon Bedrock model customization job on this export's train / validation files"
                        data-testid={`btn-fine-tune-${r.export_id}`}
                      >
                        Fine-tune on Bedrock…
                      </button>
                    )}
                  </td>
                </tr>
              ))}
            </tbody>
          </table>
        )}
      </section>
      <section className="card" aria-label="Fine-tunes" data-testid="fine-tunes">
        <div className="card-head">
          <h3>Fine-tunes on Amazon Bedrock</h3>
          <span className="spacer" />
          <button type="button" className="btn btn-small" onClick={() => void loadFineTunes()} data-testid="btn-fine-tunes-refresh">
            Refresh status
          </button>
        </div>
        <p className="small muted">Export as “Anthropic (Claude on Bedrock)”, then click “Fine-tune on Bedrock…” on the export.</p>
        {!fineTunes && <p className="loading">Loading…</p>}
        {fineTunes && fineTunes.length === 0 && (
          <p className="muted" data-testid="empty-fine-tunes">
            No fine-tunes yet.
          </p>
        )}
        {fineTunes && fineTunes.length > 0 && (
          <table className="simple-table" tabIndex={0} data-testid="fine-tune-history">
            <thead>
              <tr>
                <th>Started</th>
                <th>Base model</th>
                <th>Epochs / LR / batch</th>
                <th>Training</th>
                <th>Estimate</th>
                <th>Status</th>
                <th />
              </tr>
            </thead>
            <tbody>
              {fineTunes.map((f) => (
                <tr key={f.fine_tune_id} data-testid={`fine-tune-row-${f.fine_tune_id}`}>
                  <td>{dateTime(f.created_at)}</td>
                  <td className="small">{f.base_model}</td>
                  <td>
                    {f.hyperparameters.epochCount} / {f.hyperparameters.learningRateMultiplier} / {f.hyperparameters.batchSize}
                  </td>
                  <td>
                    {f.training_records} train, {f.validation_records} validation
                  </td>
                  <td>{money(f.estimated_cost_usd)}</td>
                  <td>
                    <span data-testid={`fine-tune-status-${f.fine_tune_id}`} data-status={f.status}>
                      {f.status}
                    </span>
                    {f.failure_message && <div className="small error-text">{f.failure_message}</div>}
                    {f.output_model_arn && f.status === "Completed" && <div className="small">{f.output_model_arn}</div>}
                  </td>
                  <td>
                    {ACTIVE_FINE_TUNE_STATUSES.includes(f.status) && f.status !== "Stopping" && (
                      <button type="button" className="btn btn-small" onClick={() => void stop(f.fine_tune_id)} data-testid={`btn-fine-tune-stop-${f.fine_tune_id}`}>
                        Stop
                      </button>
                    )}
                  </td>
                </tr>
              ))}
            </tbody>
          </table>
        )}
      </section>
      {fineTuneFor && (
        <FineTuneDialog
          record={fineTuneFor}
          onClose={() => setFineTuneFor(null)}
          onStarted={() => {
            setFineTuneFor(null);
            void loadFineTunes();
          }}
        />
      )}
      {open && (
        <ExportDialog
          datasetId={datasetId}
          onClose={() => {
            setOpen(false);
            void load();
          }}
          onCreated={() => void load()}
        />
      )}
    </div>
  );
}
