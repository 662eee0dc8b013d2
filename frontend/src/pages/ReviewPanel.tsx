import { useCallback, useEffect, useRef, useState } from "react";
import { api, ApiError, normalizeDetail, type ConversationDetail, type ConversationVersion, type Turn, type Undoable } from "../api";
import { useApp } from "../appContext";
import { QualityBadge, StatusBadge } from "../components/Badges";
import { Help } from "../components/Help";
import { errorMessage, useToast } from "../components/Toasts";
import { dateTime, duration, money, STATUS_LABEL, TIER_LABEL } from "../format";
import { HELP } from "../help";
import { JudgeSection, PanelReasons, QualityChecks, turnReasons } from "./ReviewQuality";
import { TurnCard } from "./TurnCard";

interface Props {
  conversationId: string;
  /** The table's filter/sort query string, so previous/next follow the table. */
  listQuery: string;
  onNavigate: (id: string) => void;
  onClose: () => void;
  /** Called after the conversation changed on the server (table refresh). */
  onChanged: () => void;
  onGenerate: (id: string) => void;
}

const AUTO_KEY = "brightrun.autoAdvance";
/** A conversation changed elsewhere (an undo from a toast): the open panel reloads it. */
const CHANGED_EVENT = "brightrun:conversation-changed";

function isTextField(el: EventTarget | null): boolean {
  if (!(el instanceof HTMLElement)) return false;
  const tag = el.tagName;
  if (tag === "TEXTAREA" || tag === "SELECT") return true;
  if (tag === "INPUT") {
    const type = (el as HTMLInputElement).type;
    return !["checkbox", "radio", "button", "submit", "reset"].includes(type);
  }
  return el.isContentEditable;
}

function ConflictBanner({ current }: { current: Partial<ConversationDetail> | null }) {
  return (
    <div className="banner banner-warning" role="alert" data-testid="conflict-banner">
      <strong>Someone else changed this conversation</strong> while you were looking at it, so your change was not saved.
      {current && (
        <div className="small">
          It is now <b>{STATUS_LABEL[current.status as keyof typeof STATUS_LABEL] ?? current.status ?? "changed"}</b>
          {current.reviewed_by ? ` (by ${current.reviewed_by}${current.reviewed_at ? `, ${dateTime(current.reviewed_at)}` : ""})` : ""}
          {current.reviewer_notes ? (
            <>
              {" "}
              with the note: “<span data-testid="conflict-notes">{current.reviewer_notes}</span>”
            </>
          ) : null}
          . The latest version is shown below; decide again if you still want to change it.
        </div>
      )}
    </div>
  );
}

export function ReviewPanel({ conversationId, listQuery, onNavigate, onClose, onChanged, onGenerate }: Props) {
  const toast = useToast();
  const { dataset } = useApp();
  const [detail, setDetail] = useState<ConversationDetail | null>(null);
  const [loading, setLoading] = useState(true);
  const [loadError, setLoadError] = useState<string | null>(null);
  const [notes, setNotes] = useState("");
  const [busy, setBusy] = useState<"approved" | "rejected" | null>(null);
  const [conflict, setConflict] = useState<{ current: Partial<ConversationDetail> | null } | null>(null);
  const [autoAdvance, setAutoAdvance] = useState(() => {
    try {
      return localStorage.getItem(AUTO_KEY) !== "false";
    } catch {
      return true;
    }
  });
  const [shownVersion, setShownVersion] = useState<ConversationVersion | null>(null);
  const [versionBusy, setVersionBusy] = useState<number | null>(null);
  const notesRef = useRef<HTMLTextAreaElement>(null);
  const panelRef = useRef<HTMLElement>(null);

  const load = useCallback(
    async (signal?: AbortSignal) => {
      setLoading(true);
      setLoadError(null);
      try {
        const d = await api.getConversation(conversationId, listQuery, signal);
        setDetail(d);
        setNotes(d.reviewer_notes ?? "");
      } catch (e) {
        if (e instanceof DOMException && e.name === "AbortError") return;
        setLoadError(errorMessage(e));
      } finally {
        if (!signal?.aborted) setLoading(false);
      }
    },
    [conversationId, listQuery],
  );

  useEffect(() => {
    const ctrl = new AbortController();
    setConflict(null);
    setShownVersion(null);
    void load(ctrl.signal);
    return () => ctrl.abort();
  }, [load]);

  useEffect(() => {
    const on = (e: Event) => {
      if ((e as CustomEvent<string>).detail === conversationId) void load();
    };
    window.addEventListener(CHANGED_EVENT, on);
    return () => window.removeEventListener(CHANGED_EVENT, on);
  }, [conversationId, load]);

  // While a conversation is being written, refresh it every few seconds.
  useEffect(() => {
    if (detail?.status !== "generating") return;
    const t = window.setTimeout(() => void load(), 3000);
    return () => window.clearTimeout(t);
  }, [detail, load]);

  const [validating, setValidating] = useState(false);
  const validate = async (judge = false) => {
    if (!detail) return;
    setValidating(true);
    try {
      await api.validateConversation(detail.conversation_id, judge);
      toast.success(judge ? "Quality checks and the AI judge ran again." : "Quality checks ran again.");
      await load();
      onChanged();
    } catch (e) {
      toast.error(e, "Could not re-check quality");
    } finally {
      setValidating(false);
    }
  };

  const showVersion = async (n: number | null) => {
    if (!detail || n === null || n === detail.versions?.current) {
      setShownVersion(null);
      return;
    }
    setVersionBusy(n);
    try {
      setShownVersion(await api.conversationVersion(detail.conversation_id, n));
    } catch (e) {
      toast.error(e, "Could not load that version");
    } finally {
      setVersionBusy(null);
    }
  };

  // A reason that names a turn scrolls to it (back on the current version first).
  const [jumpTo, setJumpTo] = useState<{ turn: number; at: number } | null>(null);
  useEffect(() => {
    if (!jumpTo || shownVersion) return;
    const el = panelRef.current?.querySelector<HTMLElement>(`[data-testid="turn-${jumpTo.turn}"]`);
    if (!el) return;
    el.scrollIntoView?.({ block: "center", behavior: "smooth" });
    el.focus({ preventScroll: true });
    el.classList.remove("turn-jumped");
    void el.offsetWidth; // restart the highlight animation
    el.classList.add("turn-jumped");
  }, [jumpTo, shownVersion]);
  const jumpToTurn = useCallback((turn: number) => {
    setShownVersion(null);
    setJumpTo({ turn, at: Date.now() });
  }, []);

  const canReview = detail !== null && ["generated", "approved", "rejected"].includes(detail.status);

  const undoDecision = useCallback(
    async (token: string, id: string, what: string) => {
      try {
        await api.undo(token);
        toast.success(`Undone: the conversation is back to how it was before you ${what} it.`);
        onChanged();
        // Back to the conversation whose decision was undone, to decide again (this
        // panel may already show the next one: the URL says which is open now).
        if (new URLSearchParams(window.location.search).get("conv") !== id) onNavigate(id);
        else window.dispatchEvent(new CustomEvent(CHANGED_EVENT, { detail: id }));
      } catch (e) {
        if (e instanceof ApiError && e.status === 409) toast.warning("Could not undo: the conversation changed since (someone else reviewed or edited it).");
        else toast.error(e, "Could not undo");
      }
    },
    [toast, onChanged, onNavigate],
  );

  // A turn's feedback saved: the conversation has a new version (an edit may also send
  // it back to review); show it, and offer to undo.
  const onTurnSaved = useCallback(
    (r: { conversation: Record<string, unknown>; turn: Turn } & Undoable, what: string) => {
      setDetail((cur) =>
        cur
          ? {
              ...cur,
              ...(r.conversation as Partial<ConversationDetail>),
              turns: cur.turns.map((x) => (x.turn_number === r.turn.turn_number ? r.turn : x)),
              audit: cur.audit,
              quality: cur.quality,
              previous_id: cur.previous_id,
              next_id: cur.next_id,
            }
          : cur,
      );
      const token = r.undo_token;
      const id = conversationId;
      if (token) toast.undoable(`${what}.`, () => undoDecision(token, id, "changed"));
      else toast.success(`${what}.`);
      onChanged();
      void load();
    },
    [conversationId, toast, undoDecision, onChanged, load],
  );

  const [noteNeeded, setNoteNeeded] = useState(false);
  /** A reject waits for its note: Ctrl/Cmd+Enter in the notes then rejects. */
  const [rejectWaiting, setRejectWaiting] = useState(false);
  const review = useCallback(
    async (status: "approved" | "rejected") => {
      if (!detail || busy) return;
      if (!["generated", "approved", "rejected"].includes(detail.status)) {
        toast.info("Only written conversations can be approved or rejected. Generate it first.");
        return;
      }
      // The dataset asks for a reason with every reject: ask for it instead of failing.
      if (status === "rejected" && dataset?.require_reject_note && !notes.trim()) {
        setNoteNeeded(true);
        setRejectWaiting(true);
        notesRef.current?.focus();
        return;
      }
      setNoteNeeded(false);
      setRejectWaiting(false);
      setBusy(status);
      try {
        const updated = await api.reviewConversation(detail.conversation_id, {
          status,
          reviewer_notes: notes.trim() ? notes.trim() : undefined,
          version: detail.version,
        });
        setConflict(null);
        const label = status === "approved" ? "Approved" : "Rejected";
        const title = detail.title || detail.persona;
        const token = updated.undo_token;
        if (token) {
          const id = detail.conversation_id;
          toast.undoable(`${label}: ${title}.`, () => undoDecision(token, id, status === "approved" ? "approved" : "rejected"));
        } else toast.success(`${label}: ${title}.`);
        onChanged();
        const next = detail.next_id;
        if (autoAdvance && next) {
          onNavigate(next);
        } else {
          setDetail((d) =>
            d
              ? {
                  ...d,
                  ...updated,
                  turns: updated.turns.length ? updated.turns : d.turns,
                  audit: updated.audit.length ? updated.audit : d.audit,
                  quality: updated.quality ?? d.quality,
                  previous_id: d.previous_id,
                  next_id: d.next_id,
                }
              : d,
          );
          void load();
        }
      } catch (e) {
        if (e instanceof ApiError && e.status === 409) {
          const cur = e.details["current"];
          const current = cur && typeof cur === "object" ? normalizeDetail(cur) : null;
          setConflict({ current });
          if (current) {
            setDetail((d) =>
              d
                ? {
                    ...d,
                    ...current,
                    turns: current.turns.length ? current.turns : d.turns,
                    audit: current.audit.length ? current.audit : d.audit,
                    quality: current.quality ?? d.quality,
                    previous_id: d.previous_id,
                    next_id: d.next_id,
                  }
                : d,
            );
          } else {
            void load();
          }
          onChanged();
        } else if (e instanceof ApiError && e.code === "note_required") {
          setNoteNeeded(true);
          setRejectWaiting(true);
          notesRef.current?.focus();
        } else {
          toast.error(e, "Could not save your review");
        }
      } finally {
        setBusy(null);
      }
    },
    [detail, busy, notes, toast, onChanged, autoAdvance, onNavigate, load, dataset, undoDecision],
  );

  // Keyboard shortcuts: j/k next/previous, a approve, r reject, n notes, Esc close.
  useEffect(() => {
    const onKey = (e: KeyboardEvent) => {
      if (e.defaultPrevented || e.ctrlKey || e.metaKey || e.altKey) return;
      if (document.querySelector(".backdrop")) return; // a dialog is open
      if (isTextField(e.target)) {
        if (e.key === "Escape" && e.target instanceof HTMLElement) e.target.blur();
        return;
      }
      switch (e.key) {
        case "j":
          if (detail?.next_id) onNavigate(detail.next_id);
          break;
        case "k":
          if (detail?.previous_id) onNavigate(detail.previous_id);
          break;
        case "a":
          void review("approved");
          break;
        case "r":
          void review("rejected");
          break;
        case "n":
          notesRef.current?.focus();
          break;
        case "Escape":
          onClose();
          break;
        default:
          return;
      }
      e.preventDefault();
    };
    window.addEventListener("keydown", onKey);
    return () => window.removeEventListener("keydown", onKey);
  }, [detail, onNavigate, onClose, review]);

  const d = detail;
  return (
    <aside className="review-panel" aria-label="Conversation review" data-testid="review-panel" ref={panelRef} tabIndex={-1}>
      <div className="panel-head">
        <div className="panel-nav">
          <button
            type="button"
            className="btn btn-small"
            disabled={!d?.previous_id}
            onClick={() => d?.previous_id && onNavigate(d.previous_id)}
            data-testid="btn-prev"
            title="Previous conversation (k)"
          >
            ← Previous
          </button>
          <button
            type="button"
            className="btn btn-small"
            disabled={!d?.next_id}
            onClick={() => d?.next_id && onNavigate(d.next_id)}
            data-testid="btn-next"
            title="Next conversation (j)"
          >
            Next →
          </button>
        </div>
        <h2 className="panel-title">{d?.title || "Conversation"}</h2>
        <button type="button" className="icon-btn" aria-label="Close review panel (Esc)" onClick={onClose} data-testid="btn-close-panel">
          ×
        </button>
      </div>
      <p className="shortcut-hint small muted" data-testid="shortcut-hint">
        Keys: <kbd>j</kbd>/<kbd>k</kbd> next/previous · <kbd>a</kbd> approve · <kbd>r</kbd> reject · <kbd>u</kbd> undo · <kbd>n</kbd> notes ·{" "}
        <kbd>Esc</kbd> close <Help text={HELP.keyboard} />
      </p>

      {loading && !d && (
        <div className="loading" data-testid="panel-loading">
          Loading conversation…
        </div>
      )}
      {loadError && (
        <div className="banner banner-error" role="alert" data-testid="review-error">
          Could not load this conversation: {loadError}{" "}
          <button type="button" className="link-btn" onClick={() => void load()}>
            Try again
          </button>
        </div>
      )}

      {d && (
        <div className="panel-body" data-conversation-id={d.conversation_id} data-testid="panel-body">
          {conflict && <ConflictBanner current={conflict.current} />}

          <div className="panel-status">
            <StatusBadge status={d.status} testId="panel-status" />
            <QualityBadge score={d.quality_score ?? d.quality?.score ?? null} testId="panel-quality" />
            <Help text={HELP.quality} />
            <code className="small muted">{d.conversation_id}</code>
            <span className="small muted" data-testid="panel-version" title="Goes up with every change: a review, a turn edit or a note">
              v{d.version}
              {d.turns.some((t) => t.feedback?.edited) ? ` · ${d.turns.filter((t) => t.feedback?.edited).length} turn(s) edited` : ""}
            </span>
            {canReview && (
              <button
                type="button"
                className="btn btn-small"
                disabled={validating}
                onClick={() => void validate(false)}
                data-testid="btn-validate"
                title="Run the automatic quality checks again"
              >
                {validating ? "Checking…" : "Re-check quality"}
              </button>
            )}
            {loading && <span className="small muted"> refreshing…</span>}
          </div>

          {d.quality && <PanelReasons quality={d.quality} onJumpToTurn={jumpToTurn} />}

          {d.status === "failed" && d.error_message && (
            <div className="banner banner-error" data-testid="panel-error-message">
              Generation failed: {d.error_message}
            </div>
          )}

          <section className="review-actions" aria-label="Review">
            <label htmlFor="review-notes" className="small">
              Reviewer notes {dataset?.require_reject_note ? "(required to reject)" : "(optional)"}
            </label>
            <textarea
              id="review-notes"
              ref={notesRef}
              rows={2}
              value={notes}
              placeholder="Why you approve or reject it (helps improve the templates)"
              onChange={(e) => {
                setNotes(e.target.value);
                if (e.target.value.trim()) setNoteNeeded(false);
              }}
              onKeyDown={(e) => {
                // Ctrl/Cmd+Enter from the notes: reject when that is what the note was asked for
                if (e.key === "Enter" && (e.ctrlKey || e.metaKey) && rejectWaiting && notes.trim()) {
                  e.preventDefault();
                  void review("rejected");
                }
              }}
              aria-invalid={noteNeeded || undefined}
              aria-describedby={noteNeeded || rejectWaiting ? "note-needed" : undefined}
              data-testid="notes-input"
            />
            {(noteNeeded || rejectWaiting) && (
              <p className="small text-warn" id="note-needed" role="alert" data-testid="note-required">
                This dataset asks for a reason with every reject: write it here, then press Reject (or Ctrl+Enter).
              </p>
            )}
            <div className="button-row">
              <button
                type="button"
                className="btn btn-approve"
                disabled={!canReview || busy !== null}
                onClick={() => void review("approved")}
                data-testid="btn-approve"
                title="Approve (a)"
              >
                {busy === "approved" ? "Approving…" : "✓ Approve"}
              </button>
              <button
                type="button"
                className="btn btn-reject"
                disabled={!canReview || busy !== null}
                onClick={() => void review("rejected")}
                data-testid="btn-reject"
                title="Reject (r)"
              >
                {busy === "rejected" ? "Rejecting…" : "✗ Reject"}
              </button>
              {(d.status === "not_generated" || d.status === "failed") && (
                <button type="button" className="btn btn-primary" onClick={() => onGenerate(d.conversation_id)} data-testid="btn-generate-one">
                  {d.status === "failed" ? "Retry generation" : "Generate now"}
                </button>
              )}
              <label className="inline-check small" title="After approving or rejecting, open the next conversation">
                <input
                  type="checkbox"
                  checked={autoAdvance}
                  onChange={(e) => {
                    setAutoAdvance(e.target.checked);
                    try {
                      localStorage.setItem(AUTO_KEY, String(e.target.checked));
                    } catch {
                      /* ignore */
                    }
                  }}
                  data-testid="auto-advance"
                />
                then go to next
              </label>
            </div>
            {!canReview && d.status !== "generating" && (
              <p className="small muted">This conversation has not been written yet, so there is nothing to review.</p>
            )}
            {d.status === "generating" && <p className="small muted">Being written now… this view refreshes by itself.</p>}
          </section>

          {d.versions && d.versions.count > 1 && (
            <section aria-label="Versions" className="meta" data-testid="panel-versions">
              <h3>Versions</h3>
              <p className="small muted">
                Regenerating keeps the earlier versions. The current one is what is reviewed and exported.
              </p>
              <ol className="versions">
                {d.versions.current !== null && (
                  <li>
                    <button
                      type="button"
                      className={`link-btn${shownVersion === null ? " active" : ""}`}
                      aria-pressed={shownVersion === null}
                      onClick={() => void showVersion(null)}
                      data-testid={`version-${d.versions.current}`}
                    >
                      Version {d.versions.current} (current)
                    </button>{" "}
                    <span className="small muted">
                      {dateTime(d.generated_at)} · quality {d.quality_score ?? "–"} · {money(d.actual_cost_usd)}
                    </span>
                  </li>
                )}
                {d.versions.earlier.map((v) => (
                  <li key={v.number}>
                    <button
                      type="button"
                      className={`link-btn${shownVersion?.number === v.number ? " active" : ""}`}
                      aria-pressed={shownVersion?.number === v.number}
                      disabled={versionBusy !== null}
                      onClick={() => void showVersion(v.number)}
                      data-testid={`version-${v.number}`}
                    >
                      Version {v.number}
                    </button>{" "}
                    <span className="small muted">
                      {dateTime(v.generated_at)} · quality {v.quality_score ?? "–"} · {money(v.actual_cost_usd)}
                      {v.model ? ` · ${v.model}` : ""}
                      {v.template_version ? ` · template v${v.template_version}` : ""}
                    </span>
                  </li>
                ))}
              </ol>
            </section>
          )}

          {shownVersion && (
            <div className="banner banner-info" role="status" data-testid="version-banner">
              Showing version {shownVersion.number}, replaced {dateTime(shownVersion.superseded_at ?? null)} (quality{" "}
              {shownVersion.quality_score ?? "–"}). It is kept for reference only.{" "}
              <button type="button" className="link-btn" onClick={() => void showVersion(null)} data-testid="btn-version-current">
                Back to the current version
              </button>
            </div>
          )}

          {/* What the conversation was asked to be, read before its turns. */}
          <section aria-label="What it was written for" className="panel-context" data-testid="panel-context">
            <dl className="context-grid" data-testid="panel-metadata">
                <dt>Persona</dt>
                <dd>{d.persona}</dd>
                <dt>Emotion</dt>
                <dd>{d.emotion}</dd>
                <dt>Topic</dt>
                <dd>{d.topic}</dd>
                <dt>Intent</dt>
                <dd>{d.intent}</dd>
                <dt>Tone</dt>
                <dd>{d.tone}</dd>
                <dt>
                  Tier <Help text={HELP.tiers} />
                </dt>
                <dd>
                  {TIER_LABEL[d.tier] ?? d.tier}
                  {d.arc ? ` · arc: ${d.arc}` : ""}
                  {d.scenario ? ` · ${d.scenario}` : ""}
                  {d.edge_case_type ? ` · ${d.edge_case_type}` : ""}
                </dd>
                <dt>Turns</dt>
                <dd>{d.turn_count || d.turns.length}</dd>
                <dt>Template</dt>
                <dd data-testid="panel-template">
                  {d.template_id ? `${d.template_id}${d.template_version ? ` v${d.template_version}` : ""}` : "–"}
                </dd>
            </dl>
          </section>

          <section aria-label="Conversation turns" className="turns" data-testid="turns">
            {(shownVersion ? shownVersion.turns : d.turns).length === 0 && <p className="muted">No turns yet.</p>}
            {(shownVersion ? shownVersion.turns : d.turns).map((t) => {
              // The flags belong to the current version's text.
              const flagged = !shownVersion && (d.quality?.flag_turns ?? []).includes(t.turn_number);
              return (
                <TurnCard
                  key={t.turn_number}
                  conversationId={d.conversation_id}
                  version={d.version}
                  turn={t}
                  flagged={flagged}
                  reasons={flagged && d.quality ? turnReasons(d.quality, t.turn_number) : []}
                  editable={canReview && !shownVersion}
                  onSaved={onTurnSaved}
                  onStale={() => {
                    toast.warning("This conversation changed since you opened it: the latest version is shown.");
                    void load();
                  }}
                />
              );
            })}
          </section>

          {d.quality && <QualityChecks quality={d.quality} />}
          {d.quality && (
            <JudgeSection
              judge={d.quality.judge}
              judgeMode={dataset?.judge_mode}
              canValidate={canReview}
              validating={validating}
              onValidateWithJudge={() => void validate(true)}
            />
          )}

          <section aria-label="Details" className="meta">
            <h3>Details</h3>
            <dl className="meta-grid" data-testid="panel-details">
              <dt>Model</dt>
              <dd>{d.model ?? "–"}</dd>
              <dt>Cost</dt>
              <dd data-testid="panel-cost">
                {money(d.actual_cost_usd)} <span className="muted small">(estimate {money(d.estimated_cost_usd)})</span>
              </dd>
              {(d.input_tokens || d.output_tokens) ? (
                <>
                  <dt>Tokens</dt>
                  <dd>
                    {d.input_tokens ?? 0} in / {d.output_tokens ?? 0} out
                  </dd>
                </>
              ) : null}
              {d.generation_duration_ms ? (
                <>
                  <dt>Took</dt>
                  <dd>{duration(d.generation_duration_ms / 1000)}</dd>
                </>
              ) : null}
              <dt>Created</dt>
              <dd>{dateTime(d.created_at)}</dd>
              <dt>Generated</dt>
              <dd>{dateTime(d.generated_at)}</dd>
              {d.reviewed_by && (
                <>
                  <dt>Reviewed</dt>
                  <dd>
                    {d.reviewed_by}, {dateTime(d.reviewed_at)}
                  </dd>
                </>
              )}
            </dl>
          </section>

          <section aria-label="History" className="meta">
            <h3>History</h3>
            {d.audit.length === 0 ? (
              <p className="muted small">No actions recorded yet.</p>
            ) : (
              <ol className="audit" data-testid="audit-trail">
                {d.audit.map((a, i) => (
                  <li key={`${a.at}-${i}`}>
                    <span className="muted small">{dateTime(a.at)}</span> <b>{a.actor}</b> {a.action}
                    {a.details && typeof a.details["reviewer_notes"] === "string" && a.details["reviewer_notes"] ? (
                      <div className="small">“{String(a.details["reviewer_notes"])}”</div>
                    ) : null}
                  </li>
                ))}
              </ol>
            )}
          </section>
        </div>
      )}
    </aside>
  );
}
