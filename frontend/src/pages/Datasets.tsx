import { useCallback, useEffect, useState, type FormEvent } from "react";
import { api, ApiError, DIMENSIONS, TAXONOMY_FIELD, type Dataset, type Taxonomy, type TaxonomyEntry, type TierDistribution } from "../api";
import { useApp } from "../appContext";
import { ConfirmDialog } from "../components/Dialog";
import { Help } from "../components/Help";
import { useToast } from "../components/Toasts";
import { dateTime, money } from "../format";
import { HELP } from "../help";
import { useSearch, viewSearch } from "../urlState";
import { TaxonomyEditor } from "./TaxonomyEditor";
import { QualityRulesEditor } from "./QualityRulesEditor";

const SAMPLE_TAXONOMY = `{
  "personas": [{"name": "Anxious Investor", "description": "Worried about losing money"}],
  "emotions": [{"name": "Fear"}, {"name": "Hope"}],
  "topics": [{"name": "Retirement planning"}],
  "intents": [{"name": "Get reassurance"}],
  "tones": [{"name": "Warm"}]
}`;

const SAMPLE_CHUNKS_CSV = `chunk_id,document_id,document_title,text,persona,emotion,topic,intent,tone
c1,doc1,Guide,"Our retirement accounts...",Anxious Investor,Fear,Retirement planning,Get reassurance,Warm`;

/** Accept `{personas: ["A", {name: "B"}], ...}`; strings become `{name}`. */
export function parseTaxonomy(text: string): Taxonomy {
  const raw: unknown = JSON.parse(text);
  if (!raw || typeof raw !== "object" || Array.isArray(raw)) throw new Error("The taxonomy must be a JSON object with personas, emotions, topics, intents and tones lists.");
  const o = raw as Record<string, unknown>;
  const out = { personas: [], emotions: [], topics: [], intents: [], tones: [] } as Taxonomy;
  for (const dim of DIMENSIONS) {
    const field = TAXONOMY_FIELD[dim];
    const list = o[field];
    if (list === undefined) continue;
    if (!Array.isArray(list)) throw new Error(`“${field}” must be a list.`);
    out[field] = list.map((e: unknown, i: number): TaxonomyEntry => {
      if (typeof e === "string") return { name: e };
      if (e && typeof e === "object" && typeof (e as TaxonomyEntry).name === "string") {
        const t = e as TaxonomyEntry;
        return t.description ? { name: t.name, description: t.description } : { name: t.name };
      }
      throw new Error(`${field} item ${i + 1} needs a “name”.`);
    });
  }
  return out;
}

/** Split CSV text into rows of cells (quoted cells may hold commas, quotes and newlines). */
function csvRows(text: string): string[][] {
  const rows: string[][] = [];
  let row: string[] = [];
  let cell = "";
  let quoted = false;
  for (let i = 0; i < text.length; i++) {
    const ch = text[i];
    if (quoted) {
      if (ch === '"' && text[i + 1] === '"') {
        cell += '"';
        i++;
      } else if (ch === '"') quoted = false;
      else cell += ch;
    } else if (ch === '"') quoted = true;
    else if (ch === ",") {
      row.push(cell);
      cell = "";
    } else if (ch === "\n" || ch === "\r") {
      if (ch === "\r" && text[i + 1] === "\n") i++;
      row.push(cell);
      rows.push(row);
      row = [];
      cell = "";
    } else cell += ch;
  }
  if (cell !== "" || row.length) rows.push([...row, cell]);
  return rows.filter((r) => r.some((c) => c.trim() !== ""));
}

/** A CSV with a header `list,name,description`: one row per entry, `list` being
 * persona(s), emotion(s), topic(s), intent(s) or tone(s). */
export function parseTaxonomyCsv(text: string): Taxonomy {
  const [head, ...body] = csvRows(text);
  const cols = (head ?? []).map((h) => h.trim().toLowerCase());
  const li = cols.indexOf("list");
  const ni = cols.indexOf("name");
  const di = cols.indexOf("description");
  if (li < 0 || ni < 0) throw new Error("The CSV needs a header row with the columns list,name (and optionally description).");
  const out = { personas: [], emotions: [], topics: [], intents: [], tones: [] } as Taxonomy;
  body.forEach((r, i) => {
    const list = (r[li] ?? "").trim().toLowerCase();
    const dim = DIMENSIONS.find((d) => d === list || TAXONOMY_FIELD[d] === list);
    if (!dim) throw new Error(`Row ${i + 2}: “${r[li] ?? ""}” is not one of ${DIMENSIONS.join(", ")}.`);
    const name = (r[ni] ?? "").trim();
    if (!name) throw new Error(`Row ${i + 2}: the name is empty.`);
    const description = di >= 0 ? (r[di] ?? "").trim() : "";
    out[TAXONOMY_FIELD[dim]].push(description ? { name, description } : { name });
  });
  return out;
}

function TierInputs({ value, onChange, prefix }: { value: TierDistribution; onChange: (v: TierDistribution) => void; prefix: string }) {
  return (
    <span className="tier-inputs">
      {(["template", "scenario", "edge_case"] as const).map((t) => (
        <label key={t}>
          {t === "edge_case" ? "Edge case" : t[0]!.toUpperCase() + t.slice(1)}
          <input
            type="number"
            min={0}
            value={value[t]}
            onChange={(e) => onChange({ ...value, [t]: Math.max(0, Number(e.target.value) || 0) })}
            data-testid={`${prefix}-tier-${t}`}
          />
        </label>
      ))}
      <Help text={HELP.tiers} />
    </span>
  );
}

function CreateDataset() {
  const { refreshDatasets, selectDataset } = useApp();
  const toast = useToast();
  const [name, setName] = useState("");
  const [target, setTarget] = useState(90);
  const [tiers, setTiers] = useState<TierDistribution>({ template: 40, scenario: 35, edge_case: 15 });
  const [budget, setBudget] = useState("");
  const [busy, setBusy] = useState(false);

  const submit = async (e: FormEvent) => {
    e.preventDefault();
    if (!name.trim()) {
      toast.error("Please give the dataset a name.");
      return;
    }
    if (tiers.template + tiers.scenario + tiers.edge_case <= 0) {
      toast.error("At least one tier needs a weight above zero.");
      return;
    }
    setBusy(true);
    try {
      const ds = await api.createDataset({
        name: name.trim(),
        target_count: target,
        tier_distribution: tiers,
        budget_usd: budget.trim() === "" ? null : Number(budget),
      });
      toast.success(`Dataset “${ds.name}” created. Next: import its taxonomy below.`);
      setName("");
      await refreshDatasets();
      selectDataset(ds.dataset_id);
    } catch (err) {
      toast.error(err, "Could not create the dataset");
    } finally {
      setBusy(false);
    }
  };

  const loadSample = async () => {
    setBusy(true);
    try {
      const ds = await api.loadSampleDataset();
      toast.success(`Sample dataset “${ds.name}” loaded.`);
      await refreshDatasets();
      selectDataset(ds.dataset_id);
    } catch (err) {
      toast.error(err, "Could not load the sample dataset");
    } finally {
      setBusy(false);
    }
  };

  return (
    <section className="card" aria-label="New dataset">
      <div className="card-head">
        <h3>New dataset</h3>
        <span className="spacer" />
        <button type="button" className="btn" onClick={() => void loadSample()} disabled={busy} data-testid="btn-load-sample">
          Load sample dataset
        </button>
      </div>
      <form className="form-grid" onSubmit={(e) => void submit(e)} data-testid="create-dataset-form">
        <label>
          Name
          <input value={name} onChange={(e) => setName(e.target.value)} placeholder="e.g. Customer support – spring 2025" data-testid="dataset-name" required />
        </label>
        <label>
          Target number of conversations <Help text={HELP.targetCount} />
          <input type="number" min={1} max={100000} value={target} onChange={(e) => setTarget(Math.max(1, Number(e.target.value) || 1))} data-testid="dataset-target" />
        </label>
        <div className="label-like">
          Tier mix (relative weights)
          <TierInputs value={tiers} onChange={setTiers} prefix="dataset" />
        </div>
        <label>
          Budget in US$ (optional) <Help text={HELP.budget} />
          <input type="number" min={0} step="0.01" value={budget} onChange={(e) => setBudget(e.target.value)} placeholder="no limit" data-testid="dataset-budget" />
        </label>
        <div>
          <button type="submit" className="btn btn-primary" disabled={busy} data-testid="btn-create-dataset">
            Create dataset
          </button>
        </div>
      </form>
    </section>
  );
}

function readFile(file: File): Promise<string> {
  if (typeof file.text === "function") return file.text();
  return new Promise((resolve, reject) => {
    const r = new FileReader();
    r.onload = () => resolve(String(r.result ?? ""));
    r.onerror = () => reject(r.error);
    r.readAsText(file);
  });
}

function TaxonomyImport({ dataset, onDone }: { dataset: Dataset; onDone: () => void }) {
  const toast = useToast();
  const [text, setText] = useState("");
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<string | null>(null);
  const submit = async () => {
    setError(null);
    let tax: Taxonomy;
    try {
      tax = text.trim().startsWith("{") ? parseTaxonomy(text) : parseTaxonomyCsv(text);
    } catch (e) {
      setError(e instanceof SyntaxError ? `This is not valid JSON: ${e.message}` : e instanceof Error ? e.message : String(e));
      return;
    }
    setBusy(true);
    try {
      await api.putTaxonomy(dataset.dataset_id, tax);
      toast.success("Taxonomy saved.");
      setText("");
      onDone();
    } catch (e) {
      const rows = e instanceof ApiError ? e.rowErrors() : [];
      setError(e instanceof Error ? `${e.message}${rows.length ? `\n${rows.join("\n")}` : ""}` : String(e));
    } finally {
      setBusy(false);
    }
  };
  const tax = dataset.taxonomy;
  return (
    <section className="card" aria-label="Taxonomy" data-testid="taxonomy-section">
      <div className="card-head">
        <h3>
          1. Taxonomy <Help text={HELP.taxonomy} />
        </h3>
      </div>
      <div className="taxonomy-summary sr-only" data-testid="taxonomy-summary">
        {DIMENSIONS.map((d) => {
          const list = tax?.[TAXONOMY_FIELD[d]] ?? [];
          return (
            <div key={d}>
              {TAXONOMY_FIELD[d]} ({list.length}): {list.length ? list.map((e) => e.name).join(", ") : "none yet"}
            </div>
          );
        })}
      </div>
      <TaxonomyEditor dataset={dataset} onDone={onDone} />
      <h4 className="subhead">Or import a file</h4>
      <p className="small muted">
        Paste or upload JSON (<code>{"{personas: [...], ...}"}</code>) or CSV with the columns <code>list,name,description</code>. Importing
        replaces the whole taxonomy.
      </p>
      <input
        type="file"
        accept=".json,.csv,application/json,text/csv"
        aria-label="Taxonomy file (JSON or CSV)"
        onChange={(e) => {
          const f = e.target.files?.[0];
          if (f) void readFile(f).then(setText);
        }}
        data-testid="taxonomy-file"
      />
      <textarea rows={6} value={text} placeholder={SAMPLE_TAXONOMY} onChange={(e) => setText(e.target.value)} aria-label="Taxonomy JSON or CSV" data-testid="taxonomy-input" />
      {error && (
        <pre className="banner banner-error error-text" role="alert" data-testid="taxonomy-errors">
          {error}
        </pre>
      )}
      <button type="button" className="btn btn-primary" disabled={busy || !text.trim()} onClick={() => void submit()} data-testid="btn-import-taxonomy">
        {busy ? "Saving…" : "Import taxonomy"}
      </button>
    </section>
  );
}

function ChunkImport({ dataset, onDone }: { dataset: Dataset; onDone: () => void }) {
  const toast = useToast();
  const [text, setText] = useState("");
  const [format, setFormat] = useState<"json" | "csv">("json");
  const [busy, setBusy] = useState(false);
  const [errors, setErrors] = useState<string[] | null>(null);
  const [errorTitle, setErrorTitle] = useState("");

  const submit = async () => {
    setErrors(null);
    setBusy(true);
    try {
      let result;
      if (format === "json") {
        let list: unknown;
        try {
          list = JSON.parse(text);
        } catch (e) {
          setErrorTitle("This is not valid JSON");
          setErrors([e instanceof Error ? e.message : String(e)]);
          return;
        }
        if (!Array.isArray(list)) {
          setErrorTitle("The JSON must be a list of chunks");
          setErrors(['It should start with "[" and contain one object per chunk.']);
          return;
        }
        result = await api.importChunksJson(dataset.dataset_id, list);
      } else {
        result = await api.importChunksCsv(dataset.dataset_id, text);
      }
      const n = result?.imported;
      toast.success(typeof n === "number" ? `Imported ${n} chunk${n === 1 ? "" : "s"}.` : "Chunks imported.");
      setText("");
      onDone();
    } catch (e) {
      if (e instanceof ApiError) {
        setErrorTitle(e.message);
        setErrors(e.rowErrors());
      } else {
        setErrorTitle(e instanceof Error ? e.message : String(e));
        setErrors([]);
      }
    } finally {
      setBusy(false);
    }
  };

  return (
    <section className="card" aria-label="Chunks" data-testid="chunks-section">
      <div className="card-head">
        <h3>
          2. Source chunks <Help text={HELP.chunks} />
        </h3>
        <span className="small muted">{dataset.chunk_count ?? 0} imported so far</span>
      </div>
      <div className="button-row">
        <label className="small">
          Format{" "}
          <select value={format} onChange={(e) => setFormat(e.target.value as "json" | "csv")} data-testid="chunks-format">
            <option value="json">JSON list</option>
            <option value="csv">CSV</option>
          </select>
        </label>
        <input
          type="file"
          accept=".json,.csv,application/json,text/csv"
          aria-label="Chunks file"
          onChange={(e) => {
            const f = e.target.files?.[0];
            if (!f) return;
            setFormat(f.name.toLowerCase().endsWith(".csv") ? "csv" : "json");
            void readFile(f).then(setText);
          }}
          data-testid="chunks-file"
        />
      </div>
      <textarea
        rows={5}
        value={text}
        placeholder={format === "csv" ? SAMPLE_CHUNKS_CSV : '[{"chunk_id": "c1", "document_id": "doc1", "text": "…", "persona": "…", "emotion": "…", "topic": "…"}]'}
        onChange={(e) => setText(e.target.value)}
        aria-label="Chunks"
        data-testid="chunks-input"
      />
      {errors && (
        <div className="banner banner-error" role="alert" data-testid="chunk-errors">
          <b>{errorTitle || "Some rows could not be imported"}</b>
          {errors.length > 0 && (
            <ul className="small">
              {errors.slice(0, 50).map((r, i) => (
                <li key={i}>{r}</li>
              ))}
              {errors.length > 50 && <li>…and {errors.length - 50} more</li>}
            </ul>
          )}
          <div className="small">Nothing was imported. Fix the rows above and try again.</div>
        </div>
      )}
      <button type="button" className="btn btn-primary" disabled={busy || !text.trim()} onClick={() => void submit()} data-testid="btn-import-chunks">
        {busy ? "Importing…" : "Import chunks"}
      </button>
    </section>
  );
}

function PlanSection({ dataset, onDone }: { dataset: Dataset; onDone: () => void }) {
  const toast = useToast();
  const [count, setCount] = useState(dataset.target_count || 90);
  const [tiers, setTiers] = useState<TierDistribution>(dataset.tier_distribution ?? { template: 40, scenario: 35, edge_case: 15 });
  const [busy, setBusy] = useState(false);
  const [, setSearch] = useSearch();
  const hasTaxonomy = DIMENSIONS.every((d) => (dataset.taxonomy?.[TAXONOMY_FIELD[d]] ?? []).length > 0);
  const submit = async () => {
    setBusy(true);
    try {
      const r = await api.planDataset(dataset.dataset_id, { count, tier_distribution: tiers });
      const n = r?.planned;
      const retarget = count !== dataset.target_count ? ` The dataset's target is now ${count} (was ${dataset.target_count}).` : "";
      toast.success(`${typeof n === "number" ? `Planned ${n} conversations` : "Conversations planned"}. Open the Dashboard to generate them.${retarget}`);
      onDone();
    } catch (e) {
      toast.error(e, "Could not plan conversations");
    } finally {
      setBusy(false);
    }
  };
  return (
    <section className="card" aria-label="Plan" data-testid="plan-section">
      <div className="card-head">
        <h3>
          3. Plan conversations <Help text={HELP.plan} />
        </h3>
      </div>
      {!hasTaxonomy && (
        <p className="small text-warn" id="plan-reason" data-testid="plan-reason">
          Planning needs at least one entry in each taxonomy list; empty now:{" "}
          {DIMENSIONS.filter((d) => (dataset.taxonomy?.[TAXONOMY_FIELD[d]] ?? []).length === 0)
            .map((d) => TAXONOMY_FIELD[d])
            .join(", ")}
          . Add them in the taxonomy editor or import a file above.
        </p>
      )}
      {hasTaxonomy && count !== dataset.target_count && (
        <p className="small text-warn" role="status" data-testid="plan-target-note">
          The dataset&apos;s target is {dataset.target_count}. Planning {count} also makes {count} the new target, which coverage and
          gaps are measured against. To keep the target at {dataset.target_count}, plan {dataset.target_count}.
        </p>
      )}
      <div className="form-grid">
        <label>
          How many
          <input type="number" min={1} max={100000} value={count} onChange={(e) => setCount(Math.max(1, Number(e.target.value) || 1))} data-testid="plan-count" />
        </label>
        <div className="label-like">
          Tier mix
          <TierInputs value={tiers} onChange={setTiers} prefix="plan" />
        </div>
      </div>
      <div className="button-row">
        <button
          type="button"
          className="btn btn-primary"
          disabled={busy || !hasTaxonomy}
          aria-describedby={hasTaxonomy ? undefined : "plan-reason"}
          onClick={() => void submit()}
          data-testid="btn-plan"
        >
          {busy ? "Planning…" : "Plan conversations"}
        </button>
        <button type="button" className="btn" onClick={() => setSearch(viewSearch("dashboard", dataset.dataset_id))} data-testid="btn-open-dashboard">
          Open in Dashboard
        </button>
      </div>
    </section>
  );
}

/** Review settings of the dataset: a reason with every reject. */
function ReviewSettings({ dataset, onDone }: { dataset: Dataset; onDone: () => void }) {
  const toast = useToast();
  const [busy, setBusy] = useState(false);
  const on = dataset.require_reject_note === true;
  const toggle = async (value: boolean) => {
    setBusy(true);
    try {
      await api.updateDataset(dataset.dataset_id, { require_reject_note: value, version: dataset.version });
      toast.success(value ? "Rejecting now needs a note." : "Rejecting no longer needs a note.");
      onDone();
    } catch (e) {
      toast.error(e, "Could not save the review setting");
    } finally {
      setBusy(false);
    }
  };
  return (
    <section className="card" aria-label="Review settings" data-testid="review-settings">
      <div className="card-head">
        <h3>Review</h3>
      </div>
      <label className="inline-check">
        <input type="checkbox" checked={on} disabled={busy} onChange={(e) => void toggle(e.target.checked)} data-testid="require-reject-note" />
        Require a note when rejecting (single and bulk): the reason helps improve the templates
      </label>
    </section>
  );
}

/** Coverage has its own page; setup links to it. */
function CoverageLink({ datasetId }: { datasetId: string }) {
  const [, setSearch] = useSearch();
  return (
    <section className="card" aria-label="Coverage" data-testid="coverage-link">
      <div className="card-head">
        <h3>
          Coverage <Help text={HELP.coverage} />
        </h3>
      </div>
      <p className="small">
        How the planned conversations spread over tiers and combinations, the gaps, and a button to plan each gap.
      </p>
      <a
        className="btn"
        href={`?${viewSearch("coverage", datasetId)}`}
        onClick={(e) => {
          if (e.metaKey || e.ctrlKey || e.shiftKey || e.button !== 0) return;
          e.preventDefault();
          setSearch(viewSearch("coverage", datasetId));
        }}
        data-testid="btn-open-coverage"
      >
        Open the coverage page
      </a>
    </section>
  );
}

function BudgetEditor({ dataset, onDone }: { dataset: Dataset; onDone: () => void }) {
  const toast = useToast();
  const [value, setValue] = useState(dataset.budget_usd === null || dataset.budget_usd === undefined ? "" : String(dataset.budget_usd));
  const [busy, setBusy] = useState(false);
  const save = async () => {
    setBusy(true);
    try {
      await api.updateDataset(dataset.dataset_id, { budget_usd: value.trim() === "" ? null : Number(value) });
      toast.success("Budget saved.");
      onDone();
    } catch (e) {
      toast.error(e, "Could not save the budget");
    } finally {
      setBusy(false);
    }
  };
  return (
    <span className="budget-editor">
      <label>
        Budget US$ <Help text={HELP.budget} />
        <input type="number" min={0} step="0.01" value={value} placeholder="no limit" onChange={(e) => setValue(e.target.value)} data-testid="budget-input" />
      </label>
      <button type="button" className="btn btn-small" disabled={busy} onClick={() => void save()} data-testid="btn-save-budget">
        Save
      </button>
    </span>
  );
}

/** What deleting a dataset does, as the confirmation states it. */
export function deleteConsequences(d: Dataset): string {
  return (
    `“${d.name}” is deleted for good: all its conversations (the ones in its trash too) with their turns, ` +
    "earlier versions and generation logs, its generation jobs and its document chunks. " +
    "Exports you already made are kept in Exports and still download. The audit trail keeps a record of the deletion. " +
    "This cannot be undone: archive the dataset instead to keep it read-only."
  );
}

export const ARCHIVE_CONSEQUENCES =
  "An archived dataset is read-only: no planning, generation, imports or review changes until you unarchive it. " +
  "Its conversations stay readable, its coverage is still shown and its approved conversations can still be exported. " +
  "It is hidden from the dataset list unless “Show archived” is ticked.";

type DatasetAction = { kind: "archive" | "unarchive" | "delete"; dataset: Dataset };

export function DatasetsPage() {
  const { datasets: active, datasetId, dataset, selectDataset, refreshDataset, refreshDatasets } = useApp();
  const toast = useToast();
  const [showArchived, setShowArchived] = useState(false);
  const [withArchived, setWithArchived] = useState<Dataset[] | null>(null);
  const [pending, setPending] = useState<DatasetAction | null>(null);
  const [acting, setActing] = useState(false);
  const datasets = showArchived ? withArchived : active;
  const loadArchived = useCallback(async () => {
    try {
      setWithArchived((await api.listDatasets(true)).items);
    } catch (e) {
      toast.error(e, "Could not load archived datasets");
    }
  }, [toast]);
  useEffect(() => {
    if (showArchived) void loadArchived();
  }, [showArchived, loadArchived]);

  const act = async (action: DatasetAction) => {
    setActing(true);
    const d = action.dataset;
    try {
      if (action.kind === "delete") {
        const r = await api.deleteDataset(d.dataset_id);
        const n = r.removed["conversations"] ?? 0;
        toast.success(r.deleted ? `Dataset “${d.name}” deleted (${n} conversations).` : `Deleting “${d.name}”: still removing its data.`);
        if (d.dataset_id === datasetId) selectDataset(null);
      } else if (action.kind === "archive") {
        await api.archiveDataset(d.dataset_id);
        toast.success(`Dataset “${d.name}” archived (read-only).`);
      } else {
        await api.unarchiveDataset(d.dataset_id);
        toast.success(`Dataset “${d.name}” unarchived.`);
      }
      await refreshDatasets();
      if (showArchived) await loadArchived();
      if (d.dataset_id === datasetId && action.kind !== "delete") await refreshDataset();
    } catch (e) {
      toast.error(e, action.kind === "delete" ? "Could not delete the dataset" : "Could not change the dataset");
    } finally {
      setActing(false);
      setPending(null);
    }
  };
  // Spending and chunk counts change in the background: refresh when the page opens.
  useEffect(() => {
    void refreshDatasets();
    void refreshDataset();
  }, [refreshDatasets, refreshDataset]);
  const changed = () => {
    void refreshDataset();
    void refreshDatasets();
  };

  return (
    <div className="page" data-testid="datasets-page">
      <h2 className="page-title">Datasets</h2>
      <section className="card" aria-label="Your datasets">
        <label className="inline-check small">
          <input type="checkbox" checked={showArchived} onChange={(e) => setShowArchived(e.target.checked)} data-testid="toggle-show-archived" />
          Show archived
        </label>
        {!datasets && <p className="loading">Loading datasets…</p>}
        {datasets && datasets.length === 0 && (
          <p className="muted" data-testid="empty-datasets">
            You have no datasets yet. Create one below, or load the sample dataset to explore.
          </p>
        )}
        {datasets && datasets.length > 0 && (
          <table className="simple-table" tabIndex={0} data-testid="datasets-table">
            <thead>
              <tr>
                <th>Name</th>
                <th>Target</th>
                <th>Chunks</th>
                <th>
                  Budget <Help text={HELP.budget} />
                </th>
                <th>Spent</th>
                <th>Created</th>
                <th>
                  <span className="sr-only">Actions</span>
                </th>
              </tr>
            </thead>
            <tbody>
              {datasets.map((d) => (
                <tr key={d.dataset_id} className={d.dataset_id === datasetId ? "active" : ""} data-testid={`dataset-row-${d.dataset_id}`}>
                  <td>
                    {d.name}
                    {d.archived && (
                      <span className="badge small" data-testid={`archived-${d.dataset_id}`}>
                        {" "}
                        archived
                      </span>
                    )}
                  </td>
                  <td>{d.target_count}</td>
                  <td>{d.chunk_count ?? 0}</td>
                  <td>{d.budget_usd === null || d.budget_usd === undefined ? "No limit" : money(d.budget_usd)}</td>
                  <td>{money(d.spent_usd ?? 0)}</td>
                  <td>{dateTime(d.created_at)}</td>
                  <td>
                    {d.dataset_id === datasetId ? (
                      <span className="small muted">selected</span>
                    ) : (
                      <button type="button" className="btn btn-small" onClick={() => selectDataset(d.dataset_id)} data-testid={`btn-select-dataset-${d.dataset_id}`}>
                        Select
                      </button>
                    )}{" "}
                    <button
                      type="button"
                      className="btn btn-small"
                      disabled={acting}
                      onClick={() => setPending({ kind: d.archived ? "unarchive" : "archive", dataset: d })}
                      data-testid={`btn-archive-dataset-${d.dataset_id}`}
                    >
                      {d.archived ? "Unarchive" : "Archive"}
                    </button>{" "}
                    <button
                      type="button"
                      className="btn btn-small btn-danger"
                      disabled={acting}
                      onClick={() => setPending({ kind: "delete", dataset: d })}
                      data-testid={`btn-delete-dataset-${d.dataset_id}`}
                    >
                      Delete
                    </button>
                  </td>
                </tr>
              ))}
            </tbody>
          </table>
        )}
      </section>

      {pending && (
        <ConfirmDialog
          title={
            pending.kind === "delete"
              ? `Delete “${pending.dataset.name}” for good?`
              : pending.kind === "archive"
                ? `Archive “${pending.dataset.name}”?`
                : `Unarchive “${pending.dataset.name}”?`
          }
          message={
            <span data-testid="dataset-action-consequences">
              {pending.kind === "delete"
                ? deleteConsequences(pending.dataset)
                : pending.kind === "archive"
                  ? ARCHIVE_CONSEQUENCES
                  : "It becomes editable again: planning, generation, imports and reviews."}{" "}
              {pending.kind !== "unarchive" && "A running generation job must finish (or be cancelled) first."}
            </span>
          }
          confirmLabel={pending.kind === "delete" ? "Delete for good" : pending.kind === "archive" ? "Archive" : "Unarchive"}
          danger={pending.kind === "delete"}
          busy={acting}
          onConfirm={() => void act(pending)}
          onCancel={() => setPending(null)}
        />
      )}

      {datasetId && dataset?.archived && (
        <div className="banner banner-info" role="status" data-testid="dataset-archived-banner">
          “{dataset.name}” is archived: read-only (no planning, generation, imports or review changes). Its coverage is shown
          below and its approved conversations can still be exported.{" "}
          <button type="button" className="link-btn" onClick={() => setPending({ kind: "unarchive", dataset })}>
            Unarchive
          </button>
        </div>
      )}
      {datasetId && dataset?.archived && <CoverageLink datasetId={dataset.dataset_id} />}

      {datasetId && dataset && !dataset.archived && (
        <div className="dataset-setup" data-testid="dataset-setup" key={dataset.dataset_id}>
          <div className="card-head">
            <h2>Set up “{dataset.name}”</h2>
            <span className="spacer" />
            <BudgetEditor dataset={dataset} onDone={changed} key={`${dataset.dataset_id}-${dataset.budget_usd}`} />
          </div>
          <TaxonomyImport dataset={dataset} onDone={changed} />
          <ChunkImport dataset={dataset} onDone={changed} />
          <PlanSection dataset={dataset} onDone={changed} />
          <QualityRulesEditor dataset={dataset} onDone={changed} />
          <ReviewSettings dataset={dataset} onDone={changed} />
          <CoverageLink datasetId={dataset.dataset_id} />
        </div>
      )}
      {datasetId && !dataset && <p className="loading">Loading dataset…</p>}

      <CreateDataset />
    </div>
  );
}
