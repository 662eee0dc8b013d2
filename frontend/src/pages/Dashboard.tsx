import { useCallback, useEffect, useMemo, useRef, useState } from "react";
import {
  api,
  ApiError,
  bulkFailureText,
  DIMENSIONS,
  TAXONOMY_FIELD,
  type BulkAction,
  type BulkPreview,
  type BulkTarget,
  type ConversationSummary,
  type Dataset,
} from "../api";
import { useApp } from "../appContext";
import { ConfirmDialog, Dialog } from "../components/Dialog";
import { ExportDialog } from "../components/ExportDialog";
import { TrashDialog } from "../components/TrashDialog";
import { Help } from "../components/Help";
import { errorMessage, useToast } from "../components/Toasts";
import { plural } from "../format";
import { GETTING_STARTED, HELP } from "../help";
import {
  activeFilterCount,
  decodeDashboard,
  encodeDashboard,
  neighbourQueryString,
  PAGE_SIZES,
  toConversationQuery,
  toggleSort,
  toListQuery,
  useSearch,
  viewSearch,
  type DashboardState,
  type PageSize,
} from "../urlState";
import { COLUMNS, COMPACT_HIDDEN, ConversationTable } from "./ConversationTable";
import { FilterBar } from "./FilterBar";
import { GenerateDialog, type GenerateTarget } from "./GenerateDialog";
import { useQualityInsights } from "../qualityInsights";
import { useStatusCounts } from "../statusCounts";
import { CalibrationView } from "./CalibrationView";
import { DiversityView } from "./DiversityView";
import { ProgressTracker } from "./ProgressTracker";
import { QualitySummary } from "./QualitySummary";
import { ReviewPanel } from "./ReviewPanel";

export const LIST_REFRESH_MS = 3000;

function NoDataset() {
  const { refreshDatasets, selectDataset } = useApp();
  const toast = useToast();
  const [, setSearch] = useSearch();
  const [busy, setBusy] = useState(false);
  const loadSample = async () => {
    setBusy(true);
    try {
      const ds = await api.loadSampleDataset();
      toast.success(`Sample dataset “${ds.name}” loaded.`);
      await refreshDatasets();
      selectDataset(ds.dataset_id);
    } catch (e) {
      toast.error(e, "Could not load the sample dataset");
    } finally {
      setBusy(false);
    }
  };
  return (
    <div className="empty" data-testid="empty-no-dataset">
      <h2>Welcome! Start with a dataset</h2>
      <p>
        A dataset holds everything for one training-data project. The quickest way to look around is the sample dataset: it comes with
        personas, emotions and topics already filled in.
      </p>
      <ol className="steps" aria-label="How it works" data-testid="getting-started">
        {GETTING_STARTED.map((step) => (
          <li key={step.title}>
            <b>{step.title}</b>
            <span className="small muted">{step.text}</span>
          </li>
        ))}
      </ol>
      <div className="button-row">
        <button type="button" className="btn btn-primary" onClick={() => void loadSample()} disabled={busy} data-testid="btn-load-sample">
          {busy ? "Loading…" : "Load sample dataset"}
        </button>
        <button type="button" className="btn" onClick={() => setSearch(viewSearch("datasets", null))} data-testid="btn-go-datasets">
          Create my own dataset
        </button>
      </div>
    </div>
  );
}

function ColumnToggle({ state, onChange, compact }: { state: DashboardState; onChange: (s: DashboardState) => void; compact: boolean }) {
  const [open, setOpen] = useState(false);
  const ref = useRef<HTMLDivElement>(null);
  useEffect(() => {
    if (!open) return;
    const on = (e: MouseEvent) => {
      if (ref.current && !ref.current.contains(e.target as Node)) setOpen(false);
    };
    document.addEventListener("mousedown", on);
    return () => document.removeEventListener("mousedown", on);
  }, [open]);
  return (
    <div className="multiselect" ref={ref} data-testid="column-toggle">
      <button type="button" className="btn btn-small" aria-expanded={open} onClick={() => setOpen((o) => !o)} data-testid="column-toggle-button">
        Columns ▾
      </button>
      {open && (
        <div className="multiselect-menu multiselect-menu-right">
          {COLUMNS.map((c) => (
            <label key={c.key} className="multiselect-option">
              <input
                type="checkbox"
                checked={!state.hiddenCols.includes(c.key)}
                onChange={(e) =>
                  onChange({
                    ...state,
                    hiddenCols: e.target.checked ? state.hiddenCols.filter((k) => k !== c.key) : [...state.hiddenCols, c.key],
                  })
                }
                data-testid={`column-toggle-${c.key}`}
              />
              {c.label}
            </label>
          ))}
          {compact && (
            <p className="small muted menu-note" data-testid="column-toggle-compact">
              While a conversation is open, {COLUMNS.filter((c) => COMPACT_HIDDEN.includes(c.key)).map((c) => c.label.toLowerCase()).join(", ")} are
              hidden to make room.
            </p>
          )}
        </div>
      )}
    </div>
  );
}

function FailedDialog({ conv, onClose, onRetry }: { conv: ConversationSummary; onClose: () => void; onRetry: () => void }) {
  const [message, setMessage] = useState<string | null>(conv.error_message ?? null);
  const [loading, setLoading] = useState(!conv.error_message);
  useEffect(() => {
    if (conv.error_message) return;
    api
      .getConversation(conv.conversation_id)
      .then((d) => setMessage(d.error_message ?? "No error message was recorded."))
      .catch((e: unknown) => setMessage(`Could not load the error: ${errorMessage(e)}`))
      .finally(() => setLoading(false));
  }, [conv]);
  return (
    <Dialog
      title="Why generation failed"
      onClose={onClose}
      testId="failed-dialog"
      footer={
        <>
          <button type="button" className="btn" onClick={onClose}>
            Close
          </button>
          <button type="button" className="btn btn-primary" onClick={onRetry} data-testid="btn-retry" data-autofocus>
            Retry generation
          </button>
        </>
      }
    >
      <p className="small muted">
        {conv.persona} · {conv.topic}
      </p>
      {loading ? <p className="loading">Loading…</p> : <pre className="error-text" data-testid="failed-error-message">{message}</pre>}
      <p className="small">Failures are usually temporary (the AI service was busy). Retrying is safe: you are not charged twice.</p>
    </Dialog>
  );
}

function taxonomySummary(dataset: Dataset | null): string {
  return DIMENSIONS.map((dim) => `${(dataset?.taxonomy?.[TAXONOMY_FIELD[dim]] ?? []).length} ${TAXONOMY_FIELD[dim]}`).join(", ");
}

/** A bulk action waiting for its confirmation: what it targets and, once loaded, what it
 * would do (the server's preview: counts per status, how many change, the limit). */
type BulkConfirm = { action: BulkAction; target: BulkTarget; count: number; preview: BulkPreview | null; previewError: string | null } | null;

const BULK_VERB: Record<BulkAction, string> = {
  approve: "Approved",
  reject: "Rejected",
  delete: "Moved to the trash",
  regenerate: "Queued for regeneration",
  restore: "Restored",
};

const FAIL_REASON: Record<string, string> = {
  not_reviewable: "not written yet",
  generating: "being written",
  not_found: "no longer there",
  dataset_archived: "in an archived dataset",
};

function BulkConfirmDialog({
  confirm: c,
  notes,
  onNotes,
  noteRequired,
  busy,
  onConfirm,
  onCancel,
}: {
  confirm: NonNullable<BulkConfirm>;
  notes: string;
  onNotes: (v: string) => void;
  noteRequired: boolean;
  busy: boolean;
  onConfirm: (upToLimit: boolean) => void;
  onCancel: () => void;
}) {
  const p = c.preview;
  const n = p?.matched ?? c.count;
  const name = { approve: "Approve", reject: "Reject", delete: "Delete", regenerate: "Regenerate", restore: "Restore" }[c.action];
  const over = p?.over_limit === true;
  const acting = over && p ? p.limit : n;
  const needsNote = c.action === "reject" && noteRequired && !notes.trim();
  const nothing = p !== null && p.will_change + p.already === 0;
  const fails = Object.entries(p?.fail_reasons ?? {}).filter(([, k]) => k > 0);
  return (
    <ConfirmDialog
      title={`${name} ${plural(acting, "conversation")}?`}
      message={
        <div data-testid="bulk-confirm-summary">
          {c.action === "regenerate" && (
            <p>Their current text is replaced by newly written conversations. This costs money like a normal generation.</p>
          )}
          {c.action !== "regenerate" && !p && !c.previewError && <p className="loading">Counting what would change…</p>}
          {c.previewError && <p className="text-warn">Could not count beforehand ({c.previewError}); you can still go ahead.</p>}
          {p && (
            <ul className="bulk-counts">
              <li data-testid="bulk-will-change">
                <b>{p.will_change}</b> will {c.action === "delete" ? "move to the trash" : `be ${c.action === "approve" ? "approved" : c.action === "reject" ? "rejected" : "restored"}`}
              </li>
              {p.already > 0 && <li data-testid="bulk-already">{p.already} already are (they keep their status, with you as reviewer)</li>}
              {p.will_fail > 0 && (
                <li data-testid="bulk-will-fail">
                  {p.will_fail} cannot be{fails.length ? ` (${fails.map(([k, v]) => `${v} ${FAIL_REASON[k] ?? k}`).join(", ")})` : ""}
                </li>
              )}
            </ul>
          )}
          {over && p && (
            <p className="banner banner-warning small" data-testid="bulk-over-limit">
              {p.matched} match, more than one action may change ({p.limit}): only the first {p.limit} in the table&apos;s order are acted on. Run it again for the rest.
            </p>
          )}
          {c.action === "delete" && <p className="small">They move to the trash: no longer listed, counted, exported or generated; restore them from the trash for 30 days.</p>}
          {c.action !== "regenerate" && <p className="small muted">You can undo this from the message that follows (or press u).</p>}
        </div>
      }
      confirmLabel={nothing ? "Nothing to change" : `${name} ${acting}`}
      danger={c.action === "delete" || c.action === "regenerate"}
      busy={busy}
      disabled={needsNote || nothing}
      onConfirm={() => onConfirm(over)}
      onCancel={onCancel}
    >
      {c.action === "reject" && (
        <label className="block">
          Reviewer notes {noteRequired ? "(required: this dataset asks for a reason with every reject)" : "(optional)"}
          <textarea rows={2} value={notes} onChange={(e) => onNotes(e.target.value)} aria-required={noteRequired} data-testid="bulk-notes-input" />
        </label>
      )}
    </ConfirmDialog>
  );
}

export function Dashboard() {
  const { datasets, datasetId, dataset, jobs } = useApp();
  const toast = useToast();
  const [search, setSearch] = useSearch();
  const state = useMemo(() => decodeDashboard(search), [search]);

  const [items, setItems] = useState<ConversationSummary[]>([]);
  const [total, setTotal] = useState(0);
  const [loading, setLoading] = useState(false);
  const [loaded, setLoaded] = useState(false);
  const [loadError, setLoadError] = useState<string | null>(null);
  const [reloadTick, setReloadTick] = useState(0);
  const [selected, setSelected] = useState<Set<string>>(new Set());
  const [generating, setGenerating] = useState<Set<string>>(new Set());
  const [genTarget, setGenTarget] = useState<GenerateTarget | null>(null);
  const [bulkConfirm, setBulkConfirm] = useState<BulkConfirm>(null);
  const [bulkNotes, setBulkNotes] = useState("");
  /** "matching": every conversation matching the filters is selected (acted on server-side). */
  const [allMatching, setAllMatching] = useState(false);
  const [bulkBusy, setBulkBusy] = useState(false);
  const [failedConv, setFailedConv] = useState<ConversationSummary | null>(null);
  const [exportOpen, setExportOpen] = useState(false);
  const [trashOpen, setTrashOpen] = useState(false);
  const [overBudget, setOverBudget] = useState<{ message: string; retry: () => void } | null>(null);
  const [filtersOpen, setFiltersOpen] = useState(false);

  const update = useCallback(
    (next: DashboardState, replace = false) => setSearch(encodeDashboard(next, window.location.search), replace),
    [setSearch],
  );

  const listQuery = useMemo(() => toListQuery(state, datasetId), [state, datasetId]);
  const listKey = JSON.stringify(listQuery);
  const reload = useCallback(() => setReloadTick((t) => t + 1), []);

  // Load the table whenever the query changes (and on reload()).
  useEffect(() => {
    if (!datasetId) return;
    const ctrl = new AbortController();
    setLoading(true);
    api
      .listConversations(JSON.parse(listKey) as typeof listQuery, ctrl.signal)
      .then((page) => {
        setItems(page.items);
        setTotal(page.total);
        setLoadError(null);
        setLoaded(true);
      })
      .catch((e: unknown) => {
        if (e instanceof DOMException && e.name === "AbortError") return;
        setLoadError(errorMessage(e));
        setLoaded(true);
      })
      .finally(() => {
        if (!ctrl.signal.aborted) setLoading(false);
      });
    return () => ctrl.abort();
  }, [datasetId, listKey, reloadTick]);

  // A new query clears the selection (it only ever covers visible rows).
  const filterKey = JSON.stringify({ ...listQuery });
  useEffect(() => {
    setSelected(new Set());
    setAllMatching(false);
  }, [filterKey]);
  useEffect(() => {
    setLoaded(false);
    setItems([]);
    setTotal(0);
  }, [datasetId]);

  // Keep the table fresh while conversations are being written.
  const anyGenerating = items.some((i) => i.status === "generating");
  const job = jobs.job;
  const jobDone = job ? job.completed + job.failed + job.skipped : -1;
  const jobStatus = job?.status;
  useEffect(() => {
    if (jobDone >= 0) reload();
  }, [jobDone, jobStatus, reload]);
  useEffect(() => {
    if (!anyGenerating) return;
    const t = window.setTimeout(reload, LIST_REFRESH_MS);
    return () => window.clearTimeout(t);
  }, [anyGenerating, items, reload]);

  // Dataset-level quality: after the table's first page, following its reloads; the
  // diversity report again when a job ends or its view is opened.
  const [diversityTick, setDiversityTick] = useState(0);
  const jobEnded = jobStatus !== undefined && !["queued", "running", "pausing"].includes(jobStatus);
  useEffect(() => {
    if (jobEnded) setDiversityTick((t) => t + 1);
  }, [jobEnded]);
  useEffect(() => {
    if (state.insight === "diversity") setDiversityTick((t) => t + 1);
  }, [state.insight]);
  const insights = useQualityInsights(datasetId, { enabled: loaded, tick: reloadTick, diversityTick });
  const counts = useStatusCounts(datasetId, { enabled: loaded, tick: reloadTick });

  const generateOne = useCallback(
    async (id: string, confirm = false): Promise<void> => {
      setGenerating((g) => new Set(g).add(id));
      try {
        const r = await api.generate(id, confirm);
        toast.success("Writing the conversation… it appears here when done.");
        if (!jobs.job || !["queued", "running", "pausing", "paused"].includes(jobs.job.status)) jobs.track(r.job_id);
        setItems((its) => its.map((i) => (i.conversation_id === id ? { ...i, status: "generating" } : i)));
        reload();
      } catch (e) {
        if (e instanceof ApiError && e.code === "over_budget" && !confirm) {
          setOverBudget({ message: e.message, retry: () => void generateOne(id, true) });
        } else {
          toast.error(e, "Could not start generation");
        }
      } finally {
        setGenerating((g) => {
          const n = new Set(g);
          n.delete(id);
          return n;
        });
      }
    },
    [toast, jobs, reload],
  );

  const undoBulk = useCallback(
    async (token: string) => {
      try {
        const r = await api.undo(token);
        if (r.failed.length === 0) toast.success(`Undone: ${plural(r.succeeded.length, "conversation")} back to how they were.`);
        else toast.warning(`Undone for ${r.succeeded.length}; ${r.failed.length} had changed since and were left as they are.`);
      } catch (e) {
        if (e instanceof ApiError && e.code === "stale_version") {
          // Some changed since: undo the others, say which were left.
          try {
            const r = await api.undo(token, true);
            toast.warning(`Undone for ${r.succeeded.length}; ${r.failed.length} had changed since and were left as they are.`);
          } catch (e2) {
            toast.error(e2, "Could not undo");
          }
        } else toast.error(e, "Could not undo");
      } finally {
        reload();
      }
    },
    [toast, reload],
  );

  /** Ask first: open the confirmation with the server's preview of what would happen. */
  const confirmBulk = async (action: BulkAction, target: BulkTarget, count: number) => {
    setBulkNotes("");
    setBulkConfirm({ action, target, count, preview: null, previewError: null });
    if (action === "regenerate") return; // a paid action: its own confirmation, no preview
    try {
      const preview = await api.bulkPreview({ action, ...target });
      // A server without previews acts instead of counting: never the case here, but
      // an answer without counts is no preview.
      if (typeof preview?.matched !== "number") return;
      setBulkConfirm((c) => (c && c.action === action ? { ...c, preview } : c));
    } catch (e) {
      setBulkConfirm((c) => (c && c.action === action ? { ...c, previewError: errorMessage(e) } : c));
    }
  };

  const runBulk = async (action: BulkAction, target: BulkTarget, notes?: string, confirm = false, upToLimit = false): Promise<void> => {
    setBulkBusy(true);
    try {
      const r = await api.bulkAction({
        action,
        ...target,
        reviewer_notes: notes?.trim() ? notes.trim() : undefined,
        ...(confirm ? { confirm: true } : {}),
        ...(upToLimit ? { up_to_limit: true } : {}),
      });
      const verb = BULK_VERB[action];
      const detail = r.failed.map((f) => `${f.id}: ${bulkFailureText(f)}`);
      const rest = r.remaining ? ` ${r.remaining} more match (over the limit of one action): run it again for them.` : "";
      const token = r.undo_token;
      if (r.failed.length === 0 && token && r.succeeded.length > 0)
        toast.undoable(`${verb}: ${plural(r.succeeded.length, "conversation")}.${rest}`, () => undoBulk(token));
      else if (r.failed.length === 0) toast.success(`${verb}: ${plural(r.succeeded.length, "conversation")}.${rest}`);
      else toast.warning(`${verb}: ${r.succeeded.length} succeeded, ${r.failed.length} failed.${rest}`, detail.slice(0, 8));
      if (r.job_id) jobs.track(r.job_id);
      setSelected(new Set());
      setAllMatching(false);
      reload();
    } catch (e) {
      if (e instanceof ApiError && e.code === "over_budget" && !confirm) {
        setOverBudget({ message: e.message, retry: () => void runBulk(action, target, notes, true, upToLimit) });
      } else {
        toast.error(e, "The bulk action failed");
      }
    } finally {
      setBulkBusy(false);
      setBulkConfirm(null);
      setBulkNotes("");
    }
  };

  const openConv = useCallback((id: string, replace = false) => update({ ...state, conv: id }, replace), [state, update]);
  const closeConv = useCallback(() => update({ ...state, conv: null }), [state, update]);
  const navigateConv = useCallback((id: string) => openConv(id, true), [openConv]);

  if (datasets && datasets.length === 0 && !datasetId) return <NoDataset />;
  if (!datasetId) return <div className="loading" data-testid="dashboard-loading">Loading…</div>;

  const filtersActive = activeFilterCount(state) > 0;
  const hasTaxonomy = DIMENSIONS.every((dim) => (dataset?.taxonomy?.[TAXONOMY_FIELD[dim]] ?? []).length > 0);
  const jobRunning = job !== null && ["queued", "running", "pausing"].includes(job.status);
  // Nothing left to write: reviewing becomes the next step (and the primary button).
  const nothingLeft = counts !== null && counts.total > 0 && counts.remaining === 0 && !jobRunning;
  const generateReason =
    counts === null
      ? null
      : counts.total === 0
        ? "Generate all: nothing is planned yet. Plan conversations on the Datasets page first."
        : counts.remaining === 0 && !jobRunning
          ? `Generate all: every one of the ${plural(counts.total, "conversation")} is written.`
          : null;
  const exportReason =
    counts === null || counts.approved > 0
      ? null
      : `Export: nothing approved yet${counts.toReview > 0 ? ` (${counts.toReview} waiting for review)` : ""}. Only approved conversations are exported.`;
  const pages = Math.max(1, Math.ceil(total / state.pageSize));
  const selectedIds = [...selected];
  const pageAllSelected = items.length > 0 && items.every((i) => selected.has(i.conversation_id));
  const bulkTarget: BulkTarget = allMatching ? { filter: toConversationQuery(state, datasetId) } : { ids: selectedIds };
  const bulkCount = allMatching ? total : selected.size;
  const neighbourQuery = neighbourQueryString(state, datasetId);

  return (
    <div className={`dashboard${state.conv ? " with-panel" : ""}`}>
      <div className="dashboard-main">
        <div className="toolbar">
          <h2 className="page-title">
            {dataset?.name ?? "Conversations"}
            <span className="count" data-testid="conversation-count" aria-live="polite">
              {loaded ? `${plural(total, "conversation")}${filtersActive ? " match your filters" : ""}` : "…"}
            </span>
          </h2>
          <span className="spacer" />
          <button type="button" className="btn" onClick={() => setTrashOpen(true)} data-testid="btn-open-trash" title="Deleted conversations (restorable for 30 days)">
            Trash
          </button>
          {/* On a phone this group is pinned to the bottom of the screen, so the main
              actions stay in reach however far the list is scrolled. */}
          <div className="main-actions" role="group" aria-label="Main actions" data-testid="main-actions">
            <button
              type="button"
              className="btn mobile-only"
              aria-expanded={filtersOpen}
              aria-controls="filter-drawer"
              onClick={() => setFiltersOpen((o) => !o)}
              data-testid="btn-open-filters"
            >
              Filters{activeFilterCount(state) > 0 ? ` (${activeFilterCount(state)})` : ""}
            </button>
            {nothingLeft && (
              <button
                type="button"
                className="btn btn-primary"
                onClick={() =>
                  update({ ...state, filters: { ...state.filters, status: counts.toReview > 0 ? ["generated"] : [] }, page: 1, conv: null })
                }
                data-testid="btn-review"
                title={counts.toReview > 0 ? `Show the ${plural(counts.toReview, "conversation")} waiting for review` : "Every conversation is written and reviewed"}
              >
                {counts.toReview > 0 ? `Review ${counts.toReview}` : "Review"}
              </button>
            )}
            <button
              type="button"
              className={`btn${nothingLeft ? " hide-on-phone" : " btn-primary"}`}
              // aria-disabled, not disabled: it stays reachable by Tab and says why
              onClick={() => (generateReason ? toast.info(generateReason) : setGenTarget({ kind: "all", datasetId }))}
              aria-disabled={generateReason !== null || undefined}
              aria-describedby={generateReason ? "generate-all-reason" : undefined}
              data-testid="btn-generate-all"
              title={generateReason ?? HELP.generateAll}
            >
              Generate all…
            </button>
            <Help text={HELP.generateAll} />
            <button
              type="button"
              className="btn"
              onClick={() => (exportReason ? toast.info(exportReason) : setExportOpen(true))}
              aria-disabled={exportReason !== null || undefined}
              aria-describedby={exportReason ? "export-reason" : undefined}
              data-testid="btn-export"
              title={exportReason ?? (counts ? `Export the ${plural(counts.approved, "approved conversation")}` : undefined)}
            >
              {/* one line: no space between the two labels and the count */}
              <span className="brand-full">Export approved</span><span className="brand-short">Export</span>
              {counts && counts.approved > 0 ? ` (${counts.approved})` : ""}…
            </button>
          </div>
        </div>

        {(generateReason || exportReason) && (
          <p className="small muted action-reasons" data-testid="action-reasons">
            {generateReason && (
              <span id="generate-all-reason" data-testid="generate-all-reason">
                {generateReason}
              </span>
            )}
            {exportReason && (
              <span id="export-reason" data-testid="export-reason">
                {exportReason}
              </span>
            )}
          </p>
        )}

        <ProgressTracker
          tracker={jobs}
          onShowGenerated={() => update({ ...state, filters: { ...state.filters, status: ["generated"] }, page: 1, conv: null })}
        />

        <QualitySummary insights={insights} state={state} onChange={(next) => update(next)} compact={state.conv !== null} />

        {state.insight === "diversity" &&
          (insights.diversity ? (
            <DiversityView diversity={insights.diversity} state={state} onChange={(next) => update(next)} onOpen={(id) => openConv(id)} loading={insights.diversityLoading} />
          ) : (
            <p className="loading" data-testid="insight-loading">
              {insights.diversityError ? `Could not measure diversity: ${insights.diversityError}` : "Measuring the dataset's diversity…"}
            </p>
          ))}
        {state.insight === "calibration" &&
          (insights.calibration ? (
            <CalibrationView calibration={insights.calibration} state={state} onChange={(next) => update(next)} />
          ) : (
            <p className="loading" data-testid="insight-loading">
              {insights.calibrationError ? `Could not load the calibration: ${insights.calibrationError}` : "Loading the calibration…"}
            </p>
          ))}

        {/* Hidden, not unmounted, while a quality view is open: back is instant. */}
        <div className="table-section" hidden={state.insight !== null}>
          <FilterBar state={state} dataset={dataset} onChange={update} drawerOpen={filtersOpen} onCloseDrawer={() => setFiltersOpen(false)} />

          <div className="table-controls">
            {selected.size > 0 || allMatching ? (
              <div className="bulk-bar" data-testid="bulk-bar" role="region" aria-label="Bulk actions">
                <b data-testid="selected-count">{allMatching ? `All ${total} matching selected` : `${selected.size} selected`}</b>
                <button
                  type="button"
                  className="btn btn-small btn-primary"
                  disabled={allMatching}
                  title={allMatching ? "Generate works on the rows of this page: select them there" : undefined}
                  onClick={() => setGenTarget({ kind: "batch", ids: selectedIds })}
                  data-testid="btn-generate-selected"
                >
                  Generate selected
                </button>
                <button type="button" className="btn btn-small btn-approve" disabled={bulkBusy} onClick={() => void confirmBulk("approve", bulkTarget, bulkCount)} data-testid="btn-bulk-approve">
                  Approve
                </button>
                <button type="button" className="btn btn-small btn-reject" disabled={bulkBusy} onClick={() => void confirmBulk("reject", bulkTarget, bulkCount)} data-testid="btn-bulk-reject">
                  Reject
                </button>
                <button
                  type="button"
                  className="btn btn-small"
                  disabled={bulkBusy || allMatching}
                  title={allMatching ? "Regenerate works on the rows of this page: select them there" : undefined}
                  onClick={() => void confirmBulk("regenerate", bulkTarget, bulkCount)}
                  data-testid="btn-bulk-regenerate"
                >
                  Regenerate
                </button>
                <button type="button" className="btn btn-small btn-danger" disabled={bulkBusy} onClick={() => void confirmBulk("delete", bulkTarget, bulkCount)} data-testid="btn-bulk-delete">
                  Delete
                </button>
                <button
                  type="button"
                  className="link-btn"
                  onClick={() => {
                    setSelected(new Set());
                    setAllMatching(false);
                  }}
                  data-testid="btn-clear-selection"
                >
                  Clear selection
                </button>
              </div>
            ) : (
              <span className="small muted">Tip: tick conversations to approve, reject, regenerate or delete several at once.</span>
            )}
            <span className="spacer" />
            <ColumnToggle state={state} onChange={(s) => update(s, true)} compact={state.conv !== null} />
            <label className="small">
              Rows per page{" "}
              <select
                value={state.pageSize}
                onChange={(e) => update({ ...state, pageSize: Number(e.target.value) as PageSize, page: 1 })}
                data-testid="page-size"
              >
                {PAGE_SIZES.map((n) => (
                  <option key={n} value={n}>
                    {n}
                  </option>
                ))}
              </select>
            </label>
          </div>

          {pageAllSelected && total > items.length && (
            <div className="banner banner-info select-all-banner" role="status" data-testid="select-all-banner">
              {allMatching ? (
                <>
                  All <b>{total}</b> conversations matching {filtersActive ? "your filters" : "this dataset"} are selected.{" "}
                  <button type="button" className="link-btn" onClick={() => setAllMatching(false)} data-testid="btn-select-page-only">
                    Select only the {items.length} on this page
                  </button>
                </>
              ) : (
                <>
                  All {items.length} conversations on this page are selected.{" "}
                  <button type="button" className="link-btn" onClick={() => setAllMatching(true)} data-testid="btn-select-all-matching">
                    Select all {total} matching {filtersActive ? "your filters" : "in this dataset"}
                  </button>
                </>
              )}
            </div>
          )}

          {loadError && (
            <div className="banner banner-error" role="alert" data-testid="table-error">
              Could not load conversations: {loadError}{" "}
              <button type="button" className="link-btn" onClick={reload}>
                Try again
              </button>
            </div>
          )}

          <div className={`table-area${loading && loaded ? " stale" : ""}`} aria-busy={loading} data-stale={loading && loaded ? "true" : undefined}>
            {loading && (
              <div className="table-loading" data-testid="table-loading">
                Loading conversations…
              </div>
            )}
            {loaded && items.length === 0 && !loadError ? (
              filtersActive ? (
                <div className="empty" data-testid="empty-filtered">
                  <p>No conversations match these filters.</p>
                  <button
                    type="button"
                    className="btn"
                    onClick={() =>
                      update({ ...decodeDashboard(""), hiddenCols: state.hiddenCols, pageSize: state.pageSize, sort: state.sort, order: state.order })
                    }
                  >
                    Clear all filters
                  </button>
                </div>
              ) : state.page > 1 ? (
                <div className="empty" data-testid="empty-page">
                  <p>This page is empty.</p>
                  <button type="button" className="btn" onClick={() => update({ ...state, page: 1 })}>
                    Go to the first page
                  </button>
                </div>
              ) : (
                <div className="empty" data-testid="empty-dataset" data-has-taxonomy={hasTaxonomy ? "true" : "false"}>
                  <h3>No conversations planned yet</h3>
                  {hasTaxonomy ? (
                    <p>
                      This dataset&apos;s taxonomy is ready ({taxonomySummary(dataset)}). Next step: on the Datasets page, choose how many
                      conversations you want and click <b>Plan conversations</b>. Planning is free; nothing is written until you generate.
                    </p>
                  ) : (
                    <p>
                      Next step: on the Datasets page, enter your taxonomy (personas, emotions, topics…) and click <b>Plan conversations</b>.
                      Planning is free; nothing is written until you generate.
                    </p>
                  )}
                  <button type="button" className="btn btn-primary" onClick={() => setSearch(viewSearch("datasets", datasetId))} data-testid="btn-go-plan">
                    {hasTaxonomy ? "Plan conversations" : "Set up the taxonomy"}
                  </button>
                </div>
              )
            ) : (
              <ConversationTable
                items={items}
                state={state}
                selected={selected}
                activeId={state.conv}
                generatingIds={generating}
                compact={state.conv !== null}
                onToggle={(id) => {
                  setAllMatching(false);
                  setSelected((s) => {
                    const n = new Set(s);
                    if (n.has(id)) n.delete(id);
                    else n.add(id);
                    return n;
                  });
                }}
                onToggleAll={(checked) => {
                  setAllMatching(false);
                  setSelected(checked ? new Set(items.map((i) => i.conversation_id)) : new Set());
                }}
                onSort={(key) => update(toggleSort(state, key))}
                onOpen={(id) => openConv(id)}
                onGenerate={(c) => void generateOne(c.conversation_id)}
                onShowError={(c) => setFailedConv(c)}
              />
            )}
          </div>

          {total > 0 && (
            <nav className="pagination" aria-label="Pages">
              <button type="button" className="btn btn-small" disabled={state.page <= 1} onClick={() => update({ ...state, page: state.page - 1 })} data-testid="btn-prev-page">
                ← Previous page
              </button>
              <span data-testid="page-indicator">
                Page {state.page} of {pages}
              </span>
              <button type="button" className="btn btn-small" disabled={state.page >= pages} onClick={() => update({ ...state, page: state.page + 1 })} data-testid="btn-next-page">
                Next page →
              </button>
            </nav>
          )}
        </div>
      </div>

      {state.conv && (
        <ReviewPanel
          key={state.conv}
          conversationId={state.conv}
          listQuery={neighbourQuery}
          onNavigate={navigateConv}
          onClose={closeConv}
          onChanged={reload}
          onGenerate={(id) => void generateOne(id)}
        />
      )}

      {genTarget && <GenerateDialog target={genTarget} planned={counts?.total ?? null} onClose={() => setGenTarget(null)} onStarted={(id) => { jobs.track(id); setSelected(new Set()); reload(); }} />}

      {bulkConfirm && (
        <BulkConfirmDialog
          confirm={bulkConfirm}
          notes={bulkNotes}
          onNotes={setBulkNotes}
          noteRequired={dataset?.require_reject_note === true || bulkConfirm.preview?.note_required === true}
          busy={bulkBusy}
          onConfirm={(upToLimit) => void runBulk(bulkConfirm.action, bulkConfirm.target, bulkNotes, true, upToLimit)}
          onCancel={() => setBulkConfirm(null)}
        />
      )}

      {failedConv && (
        <FailedDialog
          conv={failedConv}
          onClose={() => setFailedConv(null)}
          onRetry={() => {
            const id = failedConv.conversation_id;
            setFailedConv(null);
            void generateOne(id);
          }}
        />
      )}

      {overBudget && (
        <ConfirmDialog
          title="This would go over your budget"
          message={
            <div data-testid="over-budget">
              <p>{overBudget.message}</p>
              <p className="small">
                You can raise the budget on the Datasets page, or start anyway. Generation pauses itself when the budget is used up.
              </p>
            </div>
          }
          confirmLabel="Start anyway"
          danger
          onConfirm={() => {
            const retry = overBudget.retry;
            setOverBudget(null);
            retry();
          }}
          onCancel={() => setOverBudget(null)}
        />
      )}

      {exportOpen && (
        <ExportDialog datasetId={datasetId} dashboardFilters={toConversationQuery(state, datasetId)} onClose={() => setExportOpen(false)} />
      )}
      {trashOpen && <TrashDialog datasetId={datasetId} onClose={() => setTrashOpen(false)} onRestored={reload} />}
    </div>
  );
}
