import { useEffect, useMemo, useState } from "react";
import { api, ApiError, DIMENSIONS, TAXONOMY_FIELD, type Dataset, type Dimension, type Taxonomy, type TaxonomyEntry, type TaxonomyPreview } from "../api";
import { useToast } from "../components/Toasts";
import { plural } from "../format";

/** An entry being edited: `orig` is its saved name (null for a new one). */
interface Row extends TaxonomyEntry {
  key: number;
  orig: string | null;
}

type Rows = Record<Dimension, Row[]>;

const LABEL: Record<Dimension, string> = { persona: "Personas", emotion: "Emotions", topic: "Topics", intent: "Intents", tone: "Tones" };

let nextKey = 1;

function toRows(t: Taxonomy | undefined): Rows {
  const out = {} as Rows;
  for (const dim of DIMENSIONS) out[dim] = (t?.[TAXONOMY_FIELD[dim]] ?? []).map((e) => ({ ...e, key: nextKey++, orig: e.name }));
  return out;
}

export interface TaxonomyChange {
  dimension: Dimension;
  kind: "added" | "renamed" | "removed" | "described";
  name: string;
  from?: string;
  /** Planned conversations that carry the old value (they keep it). */
  planned: number;
}

/** What saving would change, and the planned conversations each change leaves as they are. */
export function taxonomyChanges(saved: Taxonomy | undefined, rows: Rows, planned: (dim: Dimension, value: string) => number): TaxonomyChange[] {
  const out: TaxonomyChange[] = [];
  for (const dim of DIMENSIONS) {
    const before = saved?.[TAXONOMY_FIELD[dim]] ?? [];
    const kept = new Set(rows[dim].map((r) => r.orig).filter((n): n is string => n !== null));
    for (const r of rows[dim]) {
      const name = r.name.trim();
      if (r.orig === null) out.push({ dimension: dim, kind: "added", name, planned: 0 });
      else if (name !== r.orig) out.push({ dimension: dim, kind: "renamed", name, from: r.orig, planned: planned(dim, r.orig) });
      else if ((before.find((b) => b.name === r.orig)?.description ?? "") !== (r.description ?? "").trim())
        out.push({ dimension: dim, kind: "described", name, planned: 0 });
    }
    for (const b of before) if (!kept.has(b.name)) out.push({ dimension: dim, kind: "removed", name: b.name, planned: planned(dim, b.name) });
  }
  return out;
}

export function rowProblems(rows: Rows): string[] {
  const problems: string[] = [];
  for (const dim of DIMENSIONS) {
    const names = rows[dim].map((r) => r.name.trim());
    if (names.some((n) => n === "")) problems.push(`${LABEL[dim]}: every entry needs a name.`);
    const dup = names.filter((n, i) => n && names.indexOf(n) !== i);
    if (dup.length) problems.push(`${LABEL[dim]}: “${dup[0]}” is listed twice.`);
  }
  return problems;
}

function changeText(c: TaxonomyChange): string {
  const keep = c.planned > 0 ? ` ${plural(c.planned, "planned conversation")} keep “${c.from ?? c.name}” (shown as no longer in the taxonomy; not re-planned).` : "";
  switch (c.kind) {
    case "added":
      return `Add “${c.name}”: used by the next plan or gap fill.`;
    case "renamed":
      return `Rename “${c.from}” to “${c.name}”.${keep}`;
    case "removed":
      return `Remove “${c.name}”.${keep}`;
    default:
      return `New description for “${c.name}”: used for conversations written from now on.`;
  }
}

/** Add, rename, describe and remove taxonomy entries (saved with PUT taxonomy), saying
 * beforehand what each change means for the conversations already planned. */
export function TaxonomyEditor({ dataset, onDone }: { dataset: Dataset; onDone: () => void }) {
  const toast = useToast();
  const [rows, setRows] = useState<Rows>(() => toRows(dataset.taxonomy));
  const [dim, setDim] = useState<Dimension>("persona");
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<string | null>(null);
  const [counts, setCounts] = useState<Partial<Record<Dimension, Record<string, number>>>>({});

  // A refetch of the same taxonomy (a new object each poll) must not wipe the edits being made.
  const saved = JSON.stringify(dataset.taxonomy);
  useEffect(() => setRows(toRows(dataset.taxonomy)), [dataset.dataset_id, saved]);
  useEffect(() => {
    let live = true;
    api
      .coverage(dataset.dataset_id)
      .then((c) => {
        if (!live) return;
        const out: Partial<Record<Dimension, Record<string, number>>> = {};
        for (const d of DIMENSIONS) out[d] = Object.fromEntries((c.dimensions?.[d] ?? []).map((r) => [r.value, r.total]));
        setCounts(out);
      })
      .catch(() => {
        /* the counts are extra information: the editor works without them */
      });
    return () => {
      live = false;
    };
  }, [dataset.dataset_id, dataset.taxonomy]);

  const planned = (d: Dimension, v: string) => counts[d]?.[v] ?? 0;
  const changes = useMemo(() => taxonomyChanges(dataset.taxonomy, rows, (d, v) => counts[d]?.[v] ?? 0), [dataset.taxonomy, rows, counts]);
  const problems = rowProblems(rows);

  // The server's own word on what saving would touch (debounced while typing).
  const [preview, setPreview] = useState<TaxonomyPreview | null>(null);
  const body = useMemo(() => {
    const out = {} as Taxonomy;
    for (const d of DIMENSIONS) {
      out[TAXONOMY_FIELD[d]] = rows[d].map(({ key: _k, orig: _o, ...e }) => ({ ...e, name: e.name.trim(), description: (e.description ?? "").trim() }));
    }
    return out;
  }, [rows]);
  const changed = changes.length > 0 && problems.length === 0;
  useEffect(() => {
    setPreview(null);
    if (!changed) return;
    let live = true;
    const t = window.setTimeout(() => {
      api
        .previewTaxonomy(dataset.dataset_id, body)
        .then((p) => live && setPreview(p))
        .catch(() => {
          /* the local summary above still says what changes */
        });
    }, 400);
    return () => {
      live = false;
      window.clearTimeout(t);
    };
  }, [changed, body, dataset.dataset_id]);

  const edit = (key: number, patch: Partial<Row>) => setRows((r) => ({ ...r, [dim]: r[dim].map((x) => (x.key === key ? { ...x, ...patch } : x)) }));

  const save = async () => {
    setBusy(true);
    setError(null);
    try {
      await api.putTaxonomy(dataset.dataset_id, body);
      toast.success(`Taxonomy saved (${plural(changes.length, "change")}).`);
      onDone();
    } catch (e) {
      const rowErrors = e instanceof ApiError ? e.rowErrors() : [];
      setError(e instanceof Error ? `${e.message}${rowErrors.length ? `: ${rowErrors.join("; ")}` : ""}` : String(e));
    } finally {
      setBusy(false);
    }
  };

  return (
    <div className="taxonomy-editor" data-testid="taxonomy-editor">
      <div className="tabs" role="tablist" aria-label="Taxonomy lists">
        {DIMENSIONS.map((d) => (
          <button
            key={d}
            type="button"
            role="tab"
            id={`tax-tab-${d}`}
            aria-selected={dim === d}
            aria-controls="tax-panel"
            className={`tab${dim === d ? " active" : ""}`}
            onClick={() => setDim(d)}
            data-testid={`tax-tab-${d}`}
          >
            {LABEL[d]} ({rows[d].length})
          </button>
        ))}
      </div>
      <div id="tax-panel" role="tabpanel" aria-labelledby={`tax-tab-${dim}`}>
        <ul className="tax-rows">
          {rows[dim].map((r, i) => (
            <li key={r.key} className="tax-row" data-testid={`tax-row-${dim}-${i}`}>
              <input
                aria-label={`${LABEL[dim]} ${i + 1}: name`}
                value={r.name}
                onChange={(e) => edit(r.key, { name: e.target.value })}
                placeholder="Name"
                data-testid={`tax-name-${dim}-${i}`}
              />
              <input
                aria-label={`${LABEL[dim]} ${i + 1}: description`}
                value={r.description ?? ""}
                onChange={(e) => edit(r.key, { description: e.target.value })}
                placeholder="Description (helps the writer)"
                className="tax-desc"
                data-testid={`tax-desc-${dim}-${i}`}
              />
              <span className="small muted tax-planned">{r.orig !== null && planned(dim, r.orig) > 0 ? `${planned(dim, r.orig)} planned` : ""}</span>
              <button
                type="button"
                className="btn btn-small btn-danger"
                aria-label={`Remove ${r.name || `entry ${i + 1}`}`}
                onClick={() => setRows((x) => ({ ...x, [dim]: x[dim].filter((y) => y.key !== r.key) }))}
                data-testid={`tax-remove-${dim}-${i}`}
              >
                Remove
              </button>
            </li>
          ))}
        </ul>
        <button
          type="button"
          className="btn btn-small"
          onClick={() => setRows((x) => ({ ...x, [dim]: [...x[dim], { key: nextKey++, orig: null, name: "", description: "" }] }))}
          data-testid="tax-add"
        >
          + Add {LABEL[dim].toLowerCase().replace(/s$/, "")}
        </button>
      </div>
      {changes.length > 0 && (
        <div className="banner banner-info small" role="status" data-testid="tax-changes">
          <b>When you save:</b>
          <ul>
            {changes.map((c, i) => (
              <li key={i}>
                {LABEL[c.dimension]}: {changeText(c)}
              </li>
            ))}
          </ul>
          Conversations already planned or written are never changed by editing the taxonomy; use Coverage to plan for new entries.
          {preview && preview.affected_total > 0 && (
            <p className="small" data-testid="tax-preview-affected">
              {plural(preview.affected_total, "conversation")} carry a value this removes or renames
              {preview.affected_not_generated > 0 ? `; ${preview.affected_not_generated} of them are not written yet and will still be written with the old value` : ""}.
            </p>
          )}
        </div>
      )}
      {problems.length > 0 && (
        <ul className="small text-warn" data-testid="tax-problems">
          {problems.map((p) => (
            <li key={p}>{p}</li>
          ))}
        </ul>
      )}
      {error && (
        <p className="banner banner-error" role="alert" data-testid="tax-error">
          Could not save the taxonomy: {error}
        </p>
      )}
      <div className="button-row">
        <button type="button" className="btn btn-primary" disabled={busy || changes.length === 0 || problems.length > 0} onClick={() => void save()} data-testid="btn-save-taxonomy">
          {busy ? "Saving…" : changes.length ? `Save ${plural(changes.length, "change")}` : "No changes"}
        </button>
        {changes.length > 0 && (
          <button type="button" className="btn" onClick={() => setRows(toRows(dataset.taxonomy))} data-testid="btn-discard-taxonomy">
            Discard
          </button>
        )}
      </div>
    </div>
  );
}
