import { useCallback, useEffect, useState } from "react";
import { api, type ExportRecord } from "../api";
import { useApp } from "../appContext";
import { ExportDialog, ExportStatus, FORMAT_INFO } from "../components/ExportDialog";
import { Help } from "../components/Help";
import { useToast } from "../components/Toasts";
import { dateTime } from "../format";
import { HELP } from "../help";

export function ExportsPage() {
  const { datasetId } = useApp();
  const toast = useToast();
  const [history, setHistory] = useState<ExportRecord[] | null>(null);
  const [open, setOpen] = useState(false);
  const [fresh, setFresh] = useState<ExportRecord | null>(null);
  const [linkBusy, setLinkBusy] = useState<string | null>(null);

  const load = useCallback(async () => {
    try {
      setHistory((await api.exportHistory()).items);
    } catch (e) {
      toast.error(e, "Could not load the export history");
      setHistory((h) => h ?? []);
    }
  }, [toast]);

  useEffect(() => {
    void load();
  }, [load]);

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
          <table className="simple-table" data-testid="export-history">
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
                  </td>
                </tr>
              ))}
            </tbody>
          </table>
        )}
      </section>
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
