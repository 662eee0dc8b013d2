import { useState } from "react";
import { api, ApiError, type Dataset, type JudgeMode, type QualityRules } from "../api";
import { Help } from "../components/Help";
import { MultiSelect } from "../components/MultiSelect";
import { errorMessage, useToast } from "../components/Toasts";
import { HELP } from "../help";

interface DisclaimerRow {
  text: string;
  topics: string[];
}

interface BrandRow {
  term: string;
  /** Misspellings as typed: comma-separated. */
  wrong: string;
}

interface Form {
  banned: string;
  disclaimers: DisclaimerRow[];
  brands: BrandRow[];
  judgeMode: JudgeMode;
}

export function formFromDataset(d: Dataset): Form {
  const rules = d.quality_rules;
  return {
    banned: (rules?.banned_phrases ?? []).join("\n"),
    disclaimers: (rules?.required_disclaimers ?? []).map((r) => ({ text: r.text, topics: [...(r.topics ?? [])] })),
    brands: (rules?.brand_terms ?? []).map((b) => ({ term: b.term, wrong: (b.wrong ?? []).join(", ") })),
    judgeMode: d.judge_mode ?? "auto",
  };
}

/** The form as the API's `quality_rules`: blank lines and wholly empty rows are left
 * out; anything half-filled is sent as typed so the API says what is wrong with it. */
export function rulesFromForm(f: Form): QualityRules {
  return {
    banned_phrases: f.banned
      .split("\n")
      .map((l) => l.trim())
      .filter((l) => l !== ""),
    required_disclaimers: f.disclaimers.filter((r) => r.text.trim() || r.topics.length).map((r) => ({ text: r.text.trim(), topics: r.topics })),
    brand_terms: f.brands
      .filter((b) => b.term.trim() || b.wrong.trim())
      .map((b) => ({
        term: b.term.trim(),
        wrong: b.wrong
          .split(",")
          .map((w) => w.trim())
          .filter((w) => w !== ""),
      })),
  };
}

const FIELD_LABEL: Record<string, string> = {
  banned_phrases: "Banned phrase",
  required_disclaimers: "Disclaimer",
  brand_terms: "Brand term",
};
const SUBFIELD_LABEL: Record<string, string> = { text: "wording", topics: "topics", term: "spelling", wrong: "misspellings" };

/** `quality_rules.required_disclaimers.0.text` -> "Disclaimer 1, wording". */
export function ruleFieldLabel(field: string): string {
  const parts = field.split(".").filter((p) => p !== "quality_rules");
  if (parts[0] === "judge_mode") return "AI judge";
  const head = FIELD_LABEL[parts[0] ?? ""];
  if (!head) return field;
  const index = parts[1] !== undefined && /^\d+$/.test(parts[1]) ? ` ${Number(parts[1]) + 1}` : "";
  const sub = parts[2] !== undefined ? SUBFIELD_LABEL[parts[2]] ?? parts[2] : "";
  return `${head}${index}${sub ? `, ${sub}` : ""}`;
}

/** The API's validation errors as lines a person can act on. */
export function rulesErrorLines(e: ApiError): string[] {
  const errs = e.details["errors"];
  if (!Array.isArray(errs)) return [];
  return errs.map((x: unknown) => {
    if (!x || typeof x !== "object") return String(x);
    const o = x as Record<string, unknown>;
    const field = typeof o["field"] === "string" ? ruleFieldLabel(o["field"]) : "";
    const msg = String(o["error"] ?? o["message"] ?? o["msg"] ?? "not valid").replace(/^Value error, /, "");
    return field ? `${field}: ${msg}` : msg;
  });
}

/**
 * A dataset's business rules (never say / always say / brand spellings) and whether
 * the AI judge reviews its conversations. Saved together with one PATCH that carries
 * the dataset's version, so a change made elsewhere in the meantime is not overwritten
 * unseen.
 */
export function QualityRulesEditor({ dataset, onDone }: { dataset: Dataset; onDone: () => void }) {
  const toast = useToast();
  const [form, setForm] = useState<Form>(() => formFromDataset(dataset));
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<{ title: string; lines: string[] } | null>(null);
  const topics = (dataset.taxonomy?.topics ?? []).map((t) => ({ value: t.name, label: t.name, hint: t.description || undefined }));

  const set = (patch: Partial<Form>) => setForm((f) => ({ ...f, ...patch }));
  const setDisclaimer = (i: number, patch: Partial<DisclaimerRow>) =>
    set({ disclaimers: form.disclaimers.map((r, j) => (j === i ? { ...r, ...patch } : r)) });
  const setBrand = (i: number, patch: Partial<BrandRow>) => set({ brands: form.brands.map((r, j) => (j === i ? { ...r, ...patch } : r)) });

  const save = async () => {
    setBusy(true);
    setError(null);
    try {
      const saved = await api.updateDataset(dataset.dataset_id, {
        quality_rules: rulesFromForm(form),
        judge_mode: form.judgeMode,
        ...(dataset.version ? { version: dataset.version } : {}),
      });
      setForm(formFromDataset(saved));
      toast.success("Quality rules saved. They apply to conversations scored from now on: Re-check quality applies them to one.");
      onDone();
    } catch (e) {
      if (e instanceof ApiError && e.status === 409) {
        setError({
          title: "Someone else changed this dataset while you were editing.",
          lines: ["Your edits are still here: save again to replace their version."],
        });
        onDone();
      } else if (e instanceof ApiError) {
        setError({ title: e.message, lines: rulesErrorLines(e) });
      } else {
        setError({ title: errorMessage(e), lines: [] });
      }
    } finally {
      setBusy(false);
    }
  };

  return (
    <section className="card" aria-labelledby="quality-rules-title" data-testid="quality-rules">
      <div className="card-head">
        <h3 id="quality-rules-title">
          4. Quality rules and the AI judge <Help text={HELP.rules} />
        </h3>
      </div>
      <div className="rules-grid">
        <label className="rules-banned">
          Phrases the assistant must never use (one per line)
          <textarea
            rows={5}
            value={form.banned}
            placeholder={"guaranteed returns\nrisk-free"}
            onChange={(e) => set({ banned: e.target.value })}
            data-testid="rules-banned"
          />
        </label>

        <fieldset className="rules-list" data-testid="rules-disclaimers">
          <legend>Disclaimers that must appear</legend>
          {form.disclaimers.length === 0 && <p className="small muted">None. Add one to require it in every conversation or in some topics.</p>}
          {form.disclaimers.map((r, i) => (
            <div key={i} className="rules-row" data-testid={`disclaimer-${i}`}>
              <input
                className="grow"
                aria-label={`Disclaimer ${i + 1}: wording`}
                placeholder="Past performance does not guarantee future results."
                value={r.text}
                onChange={(e) => setDisclaimer(i, { text: e.target.value })}
                data-testid={`disclaimer-text-${i}`}
              />
              <MultiSelect
                label={r.topics.length ? "Topics" : "Topics: all"}
                options={[
                  ...topics,
                  // a topic the taxonomy no longer has stays visible, so it can be removed
                  ...r.topics.filter((t) => !topics.some((o) => o.value === t)).map((t) => ({ value: t, label: `${t} (not in the taxonomy)`, hint: undefined })),
                ]}
                selected={r.topics}
                onChange={(v) => setDisclaimer(i, { topics: v })}
                testId={`disclaimer-topics-${i}`}
                emptyText="This dataset has no topics yet: import a taxonomy first."
              />
              <button
                type="button"
                className="icon-btn"
                aria-label={`Remove disclaimer ${i + 1}`}
                onClick={() => set({ disclaimers: form.disclaimers.filter((_, j) => j !== i) })}
                data-testid={`btn-remove-disclaimer-${i}`}
              >
                ×
              </button>
              {r.topics.length > 0 && <div className="small muted rules-row-note">Only in: {r.topics.join(", ")}</div>}
            </div>
          ))}
          <button
            type="button"
            className="btn btn-small"
            onClick={() => set({ disclaimers: [...form.disclaimers, { text: "", topics: [] }] })}
            data-testid="btn-add-disclaimer"
          >
            + Add a disclaimer
          </button>
        </fieldset>

        <fieldset className="rules-list" data-testid="rules-brands">
          <legend>Brand terms and their misspellings</legend>
          {form.brands.length === 0 && <p className="small muted">None. Add your brand or product names with the spellings to catch.</p>}
          {form.brands.map((b, i) => (
            <div key={i} className="rules-row" data-testid={`brand-${i}`}>
              <input
                aria-label={`Brand term ${i + 1}: correct spelling`}
                placeholder="Harbor & Pine"
                value={b.term}
                onChange={(e) => setBrand(i, { term: e.target.value })}
                data-testid={`brand-term-${i}`}
              />
              <input
                className="grow"
                aria-label={`Brand term ${i + 1}: misspellings, separated by commas`}
                placeholder="Harbour and Pine, Harbor Pine"
                value={b.wrong}
                onChange={(e) => setBrand(i, { wrong: e.target.value })}
                data-testid={`brand-wrong-${i}`}
              />
              <button
                type="button"
                className="icon-btn"
                aria-label={`Remove brand term ${i + 1}`}
                onClick={() => set({ brands: form.brands.filter((_, j) => j !== i) })}
                data-testid={`btn-remove-brand-${i}`}
              >
                ×
              </button>
            </div>
          ))}
          <button type="button" className="btn btn-small" onClick={() => set({ brands: [...form.brands, { term: "", wrong: "" }] })} data-testid="btn-add-brand">
            + Add a brand term
          </button>
        </fieldset>

        <label className="rules-judge">
          <span>
            AI judge <Help text={HELP.judgeMode} />
          </span>
          <select value={form.judgeMode} onChange={(e) => set({ judgeMode: e.target.value as JudgeMode })} data-testid="judge-mode">
            <option value="auto">Automatic: review every generated conversation</option>
            <option value="off">Off: automatic checks only</option>
          </select>
        </label>
      </div>

      {error && (
        <div className="banner banner-error" role="alert" data-testid="rules-errors">
          <b>{error.title}</b>
          {error.lines.length > 0 && (
            <ul className="small">
              {error.lines.map((l, i) => (
                <li key={i}>{l}</li>
              ))}
            </ul>
          )}
          <div className="small">Nothing was saved.</div>
        </div>
      )}
      <div className="button-row">
        <button type="button" className="btn btn-primary" disabled={busy} onClick={() => void save()} data-testid="btn-save-rules">
          {busy ? "Saving…" : "Save rules"}
        </button>
        <span className="small muted">They apply to conversations scored from now on. Re-check quality applies them to an existing one.</span>
      </div>
    </section>
  );
}
