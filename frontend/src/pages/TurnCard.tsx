import { useState } from "react";
import { api, ApiError, type Turn, type Undoable } from "../api";
import { errorMessage } from "../components/Toasts";
import { dateTime } from "../format";

interface Props {
  conversationId: string;
  /** The conversation version the reviewer is looking at (optimistic locking). */
  version: number;
  turn: Turn;
  flagged: boolean;
  reasons: string[];
  /** Feedback is given on the current version of a written conversation only. */
  editable: boolean;
  onSaved: (result: { conversation: Record<string, unknown>; turn: Turn } & Undoable, what: string) => void;
  onStale: () => void;
}

type Mode = "view" | "note" | "edit";

/** One turn, with per-turn feedback: mark it bad, add a note, or edit its text. */
export function TurnCard({ conversationId, version, turn: t, flagged, reasons, editable, onSaved, onStale }: Props) {
  const fb = t.feedback ?? null;
  const [mode, setMode] = useState<Mode>("view");
  const [draft, setDraft] = useState("");
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<string | null>(null);
  const [showOriginal, setShowOriginal] = useState(false);

  const send = async (body: { bad?: boolean; note?: string | null; content?: string }, what: string) => {
    setBusy(true);
    setError(null);
    try {
      const r = await api.turnFeedback(conversationId, t.turn_number, { expected_version: version, ...body });
      setMode("view");
      onSaved(r, what);
    } catch (e) {
      if (e instanceof ApiError && e.status === 409 && e.code === "stale_version") onStale();
      setError(errorMessage(e));
    } finally {
      setBusy(false);
    }
  };

  const n = t.turn_number;
  return (
    <div
      className={`turn turn-${t.role}${flagged ? " turn-flagged" : ""}${fb?.bad ? " turn-bad" : ""}`}
      data-testid={`turn-${n}`}
      data-flagged={flagged ? "true" : undefined}
      data-bad={fb?.bad ? "true" : undefined}
      data-edited={fb?.edited ? "true" : undefined}
      tabIndex={-1}
    >
      <div className="turn-head">
        <span className="turn-role">
          {t.role === "user" ? "USER" : "ASSISTANT"}:{flagged && <span className="turn-flag-label"> ⚑ flagged</span>}
          {fb?.bad && (
            <span className="turn-mark turn-mark-bad" data-testid={`turn-bad-${n}`}>
              {" "}
              ✗ marked bad
            </span>
          )}
          {fb?.edited && (
            <span className="turn-mark" data-testid={`turn-edited-${n}`} title={fb.edited_at ? `Edited ${dateTime(fb.edited_at)}` : undefined}>
              {" "}
              ✎ edited{fb.edited_by ? ` by ${fb.edited_by}` : ""}
            </span>
          )}
        </span>
        {editable && mode === "view" && (
          <span className="turn-tools" role="group" aria-label={`Feedback on turn ${n}`}>
            <button
              type="button"
              className="link-btn"
              aria-pressed={fb?.bad ?? false}
              aria-label={`${fb?.bad ? "Unmark bad" : "Mark bad"}: turn ${n}`}
              disabled={busy}
              onClick={() => void send({ bad: !(fb?.bad ?? false) }, fb?.bad ? `Turn ${n} no longer marked bad` : `Turn ${n} marked bad`)}
              data-testid={`btn-turn-bad-${n}`}
            >
              {fb?.bad ? "Unmark bad" : "Mark bad"}
            </button>
            <button
              type="button"
              className="link-btn"
              onClick={() => {
                setDraft(fb?.note ?? "");
                setMode("note");
              }}
              data-testid={`btn-turn-note-${n}`}
              aria-label={`${fb?.note ? "Edit note" : "Note"} on turn ${n}`}
            >
              {fb?.note ? "Edit note" : "Note"}
            </button>
            <button
              type="button"
              className="link-btn"
              onClick={() => {
                setDraft(t.content);
                setMode("edit");
              }}
              data-testid={`btn-turn-edit-${n}`}
              aria-label={`Edit turn ${n}`}
            >
              Edit
            </button>
          </span>
        )}
      </div>
      {flagged && reasons.length > 0 && (
        <ul className="turn-flag-reasons small" data-testid={`turn-reasons-${n}`}>
          {reasons.map((r) => (
            <li key={r}>{r.replace(/^turns? \d+\s*:?\s*/i, "")}</li>
          ))}
        </ul>
      )}
      {mode === "edit" ? (
        <div className="turn-editor">
          <label className="sr-only" htmlFor={`turn-edit-${n}`}>
            Text of turn {n}
          </label>
          <textarea
            id={`turn-edit-${n}`}
            rows={Math.min(12, Math.max(3, Math.ceil(draft.length / 70)))}
            value={draft}
            onChange={(e) => setDraft(e.target.value)}
            autoFocus
            data-testid={`turn-edit-input-${n}`}
          />
          <p className="small muted">Saving keeps the original (shown under the edit) and makes a new version; exports use the edited text.</p>
          <div className="button-row">
            <button
              type="button"
              className="btn btn-small btn-primary"
              disabled={busy || !draft.trim() || draft === t.content}
              onClick={() => void send({ content: draft }, `Turn ${n} edited`)}
              data-testid={`btn-turn-save-${n}`}
            >
              {busy ? "Saving…" : "Save edit"}
            </button>
            <button type="button" className="btn btn-small" onClick={() => setMode("view")}>
              Cancel
            </button>
          </div>
        </div>
      ) : (
        /* Model text is untrusted: rendered as a text node, never as HTML. */
        <div className="turn-content">{t.content}</div>
      )}
      {fb?.edited && fb.original_content && mode !== "edit" && (
        <div className="small">
          <button type="button" className="link-btn" aria-expanded={showOriginal} onClick={() => setShowOriginal((v) => !v)} data-testid={`btn-turn-original-${n}`}>
            {showOriginal ? "Hide the original" : "Show the original"}
          </button>
          {editable && (
            <>
              {" · "}
              <button
                type="button"
                className="link-btn"
                disabled={busy}
                onClick={() => void send({ content: fb.original_content ?? "" }, `Turn ${n} back to the original`)}
                data-testid={`btn-turn-revert-${n}`}
              >
                Back to the original
              </button>
            </>
          )}
          {showOriginal && <div className="turn-original turn-content">{fb.original_content}</div>}
        </div>
      )}
      {mode === "note" ? (
        <div className="turn-editor">
          <label className="small" htmlFor={`turn-note-${n}`}>
            Note on turn {n}
          </label>
          <input id={`turn-note-${n}`} value={draft} onChange={(e) => setDraft(e.target.value)} autoFocus data-testid={`turn-note-input-${n}`} />
          <div className="button-row">
            <button
              type="button"
              className="btn btn-small btn-primary"
              disabled={busy}
              onClick={() => void send({ note: draft.trim() ? draft.trim() : null }, draft.trim() ? `Note added to turn ${n}` : `Note removed from turn ${n}`)}
              data-testid={`btn-turn-note-save-${n}`}
            >
              {busy ? "Saving…" : "Save note"}
            </button>
            <button type="button" className="btn btn-small" onClick={() => setMode("view")}>
              Cancel
            </button>
          </div>
        </div>
      ) : (
        fb?.note && (
          <p className="turn-note small" data-testid={`turn-note-${n}`}>
            Note: {fb.note}
          </p>
        )
      )}
      {error && (
        <p className="small text-warn" role="alert">
          Could not save: {error}
        </p>
      )}
    </div>
  );
}
