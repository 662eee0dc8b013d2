import { useCallback, useEffect, useState } from "react";
import { api, type TrashItem } from "../api";
import { dateTime, STATUS_LABEL } from "../format";
import { Dialog } from "./Dialog";
import { useToast } from "./Toasts";

interface Props {
  datasetId: string;
  onClose: () => void;
  /** Called after conversations came back (the table refreshes). */
  onRestored: () => void;
}

/** The dataset's trash: deleted conversations, restorable until their purge date. */
export function TrashDialog({ datasetId, onClose, onRestored }: Props) {
  const toast = useToast();
  const [items, setItems] = useState<TrashItem[] | null>(null);
  const [error, setError] = useState<string | null>(null);
  const [busy, setBusy] = useState<string | null>(null);

  const load = useCallback(async () => {
    setError(null);
    try {
      setItems((await api.listTrash(datasetId)).items);
    } catch (e) {
      setError(e instanceof Error ? e.message : String(e));
    }
  }, [datasetId]);

  useEffect(() => {
    void load();
  }, [load]);

  const restore = async (ids: string[]) => {
    setBusy(ids.length === 1 ? ids[0]! : "all");
    try {
      const r = await api.bulkAction({ action: "restore", ids });
      if (r.failed.length === 0) toast.success(`Restored ${r.succeeded.length} conversation${r.succeeded.length === 1 ? "" : "s"}.`);
      else toast.warning(`Restored ${r.succeeded.length}; ${r.failed.length} could not be restored.`);
      onRestored();
      await load();
    } catch (e) {
      toast.error(e, "Could not restore");
    } finally {
      setBusy(null);
    }
  };

  return (
    <Dialog title="Trash" onClose={onClose} testId="trash-dialog" wide>
      <p className="small muted">
        Deleted conversations stay here for 30 days, then they are deleted for good. While in the trash they are not listed,
        counted in coverage, exported or generated.
      </p>
      {error && (
        <div className="banner banner-error" role="alert">
          Could not load the trash: {error}
        </div>
      )}
      {!items && !error && <p className="loading">Loading…</p>}
      {items && items.length === 0 && (
        <p className="muted" data-testid="trash-empty">
          The trash is empty.
        </p>
      )}
      {items && items.length > 0 && (
        <>
          <div className="button-row">
            <button
              type="button"
              className="btn btn-small"
              disabled={busy !== null}
              onClick={() => void restore(items.map((i) => i.conversation_id))}
              data-testid="btn-restore-all"
            >
              Restore all ({items.length})
            </button>
          </div>
          <table className="simple-table" tabIndex={0} data-testid="trash-table">
            <thead>
              <tr>
                <th>Conversation</th>
                <th>Status</th>
                <th>Deleted</th>
                <th>Deleted for good</th>
                <th />
              </tr>
            </thead>
            <tbody>
              {items.map((i) => (
                <tr key={i.conversation_id} data-testid={`trash-row-${i.conversation_id}`}>
                  <td>
                    {i.title || `${i.persona} · ${i.topic}`}
                    <div className="small muted">
                      <code>{i.conversation_id}</code>
                    </div>
                  </td>
                  <td>{STATUS_LABEL[i.status] ?? i.status}</td>
                  <td>
                    {dateTime(i.trashed_at ?? null)}
                    {i.trashed_by ? <div className="small muted">by {i.trashed_by}</div> : null}
                  </td>
                  <td>
                    {dateTime(i.purge_at)} <span className="small muted">({i.days_left} days left)</span>
                  </td>
                  <td>
                    <button
                      type="button"
                      className="btn btn-small"
                      disabled={busy !== null}
                      onClick={() => void restore([i.conversation_id])}
                      data-testid={`btn-restore-${i.conversation_id}`}
                    >
                      {busy === i.conversation_id ? "Restoring…" : "Restore"}
                    </button>
                  </td>
                </tr>
              ))}
            </tbody>
          </table>
        </>
      )}
    </Dialog>
  );
}
