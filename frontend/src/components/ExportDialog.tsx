import { useEffect, useRef, useState } from "react";
import { api, ApiError, EXPORT_FORMATS, toExportFilters, type ConversationQuery, type ExportFilters, type ExportFormat, type ExportRecord, type ExportTokens } from "../api";
import { HELP } from "../help";
import { Dialog } from "./Dialog";
import { Help } from "./Help";
import { errorMessage, useToast } from "./Toasts";

export const FORMAT_INFO: Record<ExportFormat, { label: string; help: string }> = {
  openai: { label: "OpenAI", help: "JSONL with a “messages” list per line, for OpenAI fine-tuning and most tools that copy its format." },
  anthropic: { label: "Anthropic (Claude on Bedrock)", help: "JSONL with “system” and “messages”, for fine-tuning Claude models on Amazon Bedrock." },
  sharegpt: {
    label: "ShareGPT",
    help: "A .jsonl file: one JSON object per line with “conversations” of from/value turns, for axolotl, LLaMA-Factory and Unsloth.",
  },
  hf_messages: { label: "Hugging Face messages", help: "JSONL with role/content “messages”, for Hugging Face TRL's SFTTrainer." },
  generic: { label: "Generic JSON", help: "One JSON file with every conversation, its turns and all metadata: for your own scripts or archiving." },
  csv: { label: "CSV (spreadsheet)", help: "One row per turn, to open in Excel or Google Sheets for reading or sharing." },
};

export const EXPORT_POLL_MS = 1500;

interface Props {
  datasetId: string | null;
  /** The dashboard's filters, offered as an option. */
  dashboardFilters?: ConversationQuery;
  onClose: () => void;
  onCreated?: (record: ExportRecord) => void;
}

export function ExportDialog({ datasetId, dashboardFilters, onClose, onCreated }: Props) {
  const toast = useToast();
  const [format, setFormat] = useState<ExportFormat>("openai");
  const [useSplit, setUseSplit] = useState(false);
  const [split, setSplit] = useState({ train: 80, validation: 10, test: 10 });
  const [seed, setSeed] = useState(0);
  const [csvSafe, setCsvSafe] = useState(true);
  const [useDashFilters, setUseDashFilters] = useState(false);
  const [preview, setPreview] = useState<string | null>(null);
  const [previewBusy, setPreviewBusy] = useState(false);
  const [record, setRecord] = useState<ExportRecord | null>(null);
  const [creating, setCreating] = useState(false);
  /** A request that stored no export (bad input, network): shown until the next try. */
  const [createError, setCreateError] = useState<string | null>(null);
  const timer = useRef<number | null>(null);

  const query: ExportFilters = toExportFilters(useDashFilters && dashboardFilters ? dashboardFilters : { dataset_id: datasetId });
  const hasDashFilters = dashboardFilters ? Object.keys(toExportFilters(dashboardFilters)).some((k) => k !== "dataset_id") : false;
  const ignored = dashboardFilters && (dashboardFilters.status?.length || dashboardFilters.q || dashboardFilters.flagged !== null && dashboardFilters.flagged !== undefined);
  const splitSum = split.train + split.validation + split.test;
  const splitOk = !useSplit || (splitSum > 0 && split.train > 0);

  useEffect(() => () => {
    if (timer.current !== null) window.clearTimeout(timer.current);
  }, []);

  useEffect(() => setPreview(null), [format, useDashFilters]);

  // How many approved conversations the export would hold: with none, say so before a
  // format is chosen (and keep Create disabled) instead of failing after Create.
  const [approved, setApproved] = useState<number | null>(null);
  const queryKey = JSON.stringify(query);
  useEffect(() => {
    const ctrl = new AbortController();
    setApproved(null);
    api
      .listConversations({ ...(JSON.parse(queryKey) as ConversationQuery), status: ["approved"], page_size: 25, page: 1 }, ctrl.signal)
      .then((p) => setApproved(p.total))
      .catch(() => {
        /* unknown: Create stays available and the server decides */
      });
    return () => ctrl.abort();
  }, [queryKey]);
  const nothingApproved = approved === 0;

  const loadPreview = async () => {
    setPreviewBusy(true);
    try {
      const r = await api.exportPreview(format, query);
      setPreview(
        r.records.length === 0
          ? ""
          : r.records.map((rec) => (typeof rec === "string" ? rec : JSON.stringify(rec, null, 2))).join("\n\n"),
      );
    } catch (e) {
      toast.error(e, "Could not load the preview");
    } finally {
      setPreviewBusy(false);
    }
  };

  const poll = (id: string) => {
    timer.current = window.setTimeout(async () => {
      try {
        const r = await api.getExport(id);
        setRecord(r);
        if (r.status === "pending") poll(id);
        else if (r.status === "ready") toast.success("Your export is ready to download.");
        // a failure is shown once, in the dialog's status line
      } catch (e) {
        toast.error(e, "Could not check the export");
      }
    }, EXPORT_POLL_MS);
  };

  const create = async () => {
    setCreating(true);
    setCreateError(null);
    try {
      const r = await api.createExport({
        format,
        filters: query,
        split: useSplit
          ? {
              train: split.train / splitSum,
              validation: split.validation / splitSum,
              test: split.test / splitSum,
            }
          : null,
        ...(useSplit ? { seed } : {}),
        ...(format === "csv" ? { options: { csv_formula_neutralisation: csvSafe } } : {}),
      });
      setRecord(r);
      onCreated?.(r);
      if (r.status === "pending") poll(r.export_id);
      else if (r.status === "ready") toast.success("Your export is ready to download.");
    } catch (e) {
      // Shown once, in the dialog (its status line or error banner), not also as a toast.
      const failed = failedExport(e, format);
      if (failed) {
        // The export was stored as failed (it is in the history): show it like any export.
        setRecord(failed);
        onCreated?.(failed);
      } else {
        setRecord(null);
        setCreateError(errorMessage(e));
      }
    } finally {
      setCreating(false);
    }
  };

  return (
    <Dialog title="Export approved conversations" onClose={onClose} testId="export-dialog" wide>
      <p className="small muted">
        {HELP.exportApproved} <Help text={HELP.exportApproved} />
      </p>
      {nothingApproved && (
        <div className="banner banner-info" role="status" data-testid="export-nothing">
          <strong>Nothing to export yet:</strong> no approved conversations{useDashFilters ? " match these filters" : " in this dataset"}. An export
          holds approved conversations only: approve some on the Dashboard first.
        </div>
      )}
      {approved !== null && approved > 0 && (
        <p className="small" data-testid="export-approved-count">
          {approved} approved conversation{approved === 1 ? "" : "s"} will be exported.
        </p>
      )}
      <fieldset className="radio-group formats" disabled={nothingApproved}>
        <legend>Format (choose the one your training tool expects)</legend>
        {EXPORT_FORMATS.map((f) => (
          <label key={f} className="format-option">
            <input type="radio" name="format" checked={format === f} onChange={() => setFormat(f)} data-testid={`export-format-${f}`} />
            <span>
              <b>{FORMAT_INFO[f].label}</b> <span className="muted small">— {FORMAT_INFO[f].help}</span>
            </span>
          </label>
        ))}
      </fieldset>

      <div className="export-options">
        <label className="inline-check">
          <input type="checkbox" checked={useSplit} onChange={(e) => setUseSplit(e.target.checked)} data-testid="export-split" />
          Split into train / validation / test files <Help text={HELP.splits} />
        </label>
        {useSplit && (
          <span className="split-inputs" data-testid="export-split-values">
            {(["train", "validation", "test"] as const).map((k) => (
              <label key={k}>
                {k}
                <input
                  type="number"
                  min={0}
                  max={100}
                  value={split[k]}
                  onChange={(e) => setSplit({ ...split, [k]: Math.max(0, Number(e.target.value) || 0) })}
                  data-testid={`export-split-${k}`}
                />
                %
              </label>
            ))}
            <label>
              seed
              <input
                type="number"
                min={0}
                step={1}
                value={seed}
                onChange={(e) => setSeed(Math.max(0, Math.floor(Number(e.target.value) || 0)))}
                data-testid="export-split-seed"
              />
            </label>
            {splitSum !== 100 && <span className="small text-warn">Parts add up to {splitSum}%: they will be scaled to 100%.</span>}
            <span className="small muted">The same seed over the same conversations gives the same split; the manifest records it.</span>
          </span>
        )}
        {format === "csv" && (
          <label className="inline-check">
            <input type="checkbox" checked={csvSafe} onChange={(e) => setCsvSafe(e.target.checked)} data-testid="export-csv-safe" />
            Spreadsheet-safe: put ' before text starting with = + - @ (untick to keep the exact text for training)
          </label>
        )}
        {dashboardFilters && (
          <label className="inline-check">
            <input
              type="checkbox"
              checked={useDashFilters}
              disabled={!hasDashFilters}
              onChange={(e) => setUseDashFilters(e.target.checked)}
              data-testid="export-use-filters"
            />
            Only conversations matching the dashboard's current filters {hasDashFilters ? "" : "(no filters set)"}
          </label>
        )}
        {dashboardFilters && useDashFilters && ignored && (
          <p className="small muted">Status, “flagged” and text search do not apply here: an export always contains approved conversations only.</p>
        )}
      </div>

      <div className="button-row">
        <button type="button" className="btn" onClick={() => void loadPreview()} disabled={previewBusy || nothingApproved} data-testid="btn-export-preview">
          {previewBusy ? "Loading preview…" : "Preview"}
        </button>
        <button
          type="button"
          className="btn btn-primary"
          onClick={() => void create()}
          disabled={creating || !splitOk || record?.status === "pending" || nothingApproved}
          title={nothingApproved ? "No approved conversations to export" : undefined}
          data-testid="btn-export-create"
        >
          {creating ? "Creating…" : approved ? `Create export file (${approved})` : "Create export file"}
        </button>
      </div>

      {preview !== null && (
        <div className="preview">
          <h3 className="small">Preview (first records, exactly as they will be written)</h3>
          {preview === "" ? (
            <p className="muted" data-testid="export-preview-empty">
              No approved conversations match yet. Approve some on the Dashboard first.
            </p>
          ) : (
            <pre data-testid="export-preview">{preview}</pre>
          )}
        </div>
      )}

      {createError !== null && (
        <div className="banner banner-error" role="alert" data-testid="export-error">
          Could not create the export: {createError}
        </div>
      )}
      {record && <ExportStatus record={record} />}
    </Dialog>
  );
}

/** An API error that names the export it stored as failed (`details.export_id` and
 * `details.error_message`: a small export written on the request path that failed), as
 * that export. */
export function failedExport(err: unknown, format: ExportFormat): ExportRecord | null {
  if (!(err instanceof ApiError)) return null;
  const id = err.details["export_id"];
  if (typeof id !== "string" || !id) return null;
  const stored = err.details["error_message"];
  return { export_id: id, format, status: "failed", error_message: typeof stored === "string" && stored ? stored : err.message };
}

export function ExportStatus({ record }: { record: ExportRecord }) {
  return (
    <div
      className={`banner banner-${record.status === "failed" ? "error" : "info"}`}
      role={record.status === "failed" ? "alert" : undefined}
      data-testid="export-status"
      data-status={record.status}
    >
      {record.status === "pending" && <span className="loading">Preparing your file…</span>}
      {record.status === "failed" && (
        <span>
          <span data-testid="export-failure">The export failed: {record.error_message || "unknown error"}</span>
          <br />
          <span className="small">It is listed as failed in the export history.</span>
        </span>
      )}
      {record.status === "ready" && (
        <div>
          <div>
            Ready: {record.conversation_count ?? "?"} conversations
            {record.counts && Object.keys(record.counts).length > 0
              ? ` (${Object.entries(record.counts)
                  .map(([k, v]) => `${k}: ${v}`)
                  .join(", ")})`
              : ""}
            .
          </div>
          {record.download_url && (
            <a href={record.download_url} className="btn btn-primary btn-small" data-testid="export-download" download={record.filename ?? undefined}>
              Download {record.filename ?? "file"}
            </a>
          )}
          {record.files
            // the main file already has its Download button above
            ?.filter((f) => f.download_url && f.filename !== record.filename)
            .map((f) => (
              <a key={f.filename ?? f.split} href={f.download_url} className="btn btn-small" data-testid={`export-download-${f.split ?? "file"}`}>
                {f.split ?? "file"}: {f.filename} ({f.count ?? "?"})
              </a>
            ))}
          <TokenLine tokens={record.stats?.["tokens"] as ExportTokens | undefined} />
          <p className="small muted">Download links expire after a short time; get a fresh one from the export history.</p>
          {record.skipped && record.skipped.length > 0 && (
            <p className="small text-warn">{record.skipped.length} conversation(s) could not be written in this format and were left out.</p>
          )}
        </div>
      )}
    </div>
  );
}

/** Longest record and p95 in tokens (to choose max_seq_length), with the tokenizer. */
export function TokenLine({ tokens }: { tokens: ExportTokens | undefined }) {
  if (!tokens?.all || tokens.all.max === null) return null;
  const over = Object.entries(tokens.all.over ?? {}).filter(([, n]) => n > 0);
  return (
    <p className="small" data-testid="export-tokens">
      Tokens per conversation: p95 {tokens.all.p95}, longest {tokens.all.max}
      {over.length > 0 ? ` (${over.map(([t, n]) => `${n} over ${t}`).join(", ")})` : ""} — counted by {tokens.tokenizer.name}.
    </p>
  );
}
