import { useCallback, useEffect, useState, type FormEvent } from "react";
import { api, TIERS, type PromptTemplate, type TemplateDetail, type Tier } from "../api";
import { Help } from "../components/Help";
import { errorMessage, useToast } from "../components/Toasts";
import { dateTime, TIER_LABEL } from "../format";
import { HELP } from "../help";
import { useSearch } from "../urlState";

function approvalText(rate: number | null | undefined): string {
  if (rate === null || rate === undefined || !Number.isFinite(rate)) return "no reviews yet";
  const pct = rate <= 1 ? rate * 100 : rate;
  return `${Math.round(pct)}%`;
}

function usageText(t: TemplateDetail): string {
  const n = t.total_usage;
  if (!n) return "not used yet";
  const approved = t.usage.reduce((a, u) => a + (u.approved ?? 0), 0);
  const rejected = t.usage.reduce((a, u) => a + (u.rejected ?? 0), 0);
  return `${n} conversation${n === 1 ? "" : "s"}, ${approved} approved, ${rejected} rejected`;
}

function TemplateDetailView({ id, onChanged }: { id: string; onChanged: () => void }) {
  const toast = useToast();
  const [t, setT] = useState<TemplateDetail | null>(null);
  const [error, setError] = useState<string | null>(null);
  const [text, setText] = useState("");
  const [note, setNote] = useState("");
  const [weight, setWeight] = useState("1");
  const [busy, setBusy] = useState(false);

  const load = useCallback(async () => {
    setError(null);
    try {
      const d = await api.getTemplate(id);
      setT(d);
      setText(d.text);
      setWeight(String(d.weight ?? 1));
    } catch (e) {
      setError(errorMessage(e));
    }
  }, [id]);

  useEffect(() => {
    setT(null);
    void load();
  }, [load]);

  const patch = async (body: { text?: string; change_note?: string; is_active?: boolean; weight?: number }, ok: string) => {
    setBusy(true);
    try {
      await api.updateTemplate(id, body);
      toast.success(ok);
      setNote("");
      await load();
      onChanged();
    } catch (e) {
      toast.error(e, "Could not save the template");
    } finally {
      setBusy(false);
    }
  };

  if (error)
    return (
      <p className="banner banner-error" role="alert">
        Could not load the template: {error}
      </p>
    );
  if (!t) return <p className="loading">Loading template…</p>;

  return (
    <section className="card" data-testid="template-detail" aria-label={`Template ${t.name}`}>
      <div className="card-head">
        <h3>{t.name}</h3>
        <span className={`badge ${t.is_active ? "status-approved" : "status-not_generated"}`} data-testid="template-active-badge">
          {t.is_active ? "Active" : "Inactive"}
        </span>
        <span className="badge">{TIER_LABEL[t.tier] ?? t.tier}</span>
        <span className="spacer" />
        <button
          type="button"
          className="btn btn-small"
          disabled={busy}
          onClick={() => void patch({ is_active: !t.is_active }, t.is_active ? "Template deactivated." : "Template activated.")}
          data-testid="btn-toggle-active"
        >
          {t.is_active ? "Deactivate" : "Activate"}
        </button>
        <Help text={HELP.templateActive} />
      </div>
      {t.description && <p className="small">{t.description}</p>}
      <dl className="meta-grid">
        <dt>Current version</dt>
        <dd data-testid="template-version">v{t.version}</dd>
        <dt>Used by</dt>
        <dd data-testid="template-usage">{usageText(t)}</dd>
        <dt>
          Approval rate <Help text={HELP.approvalRate} />
        </dt>
        <dd data-testid="template-approval-rate">{approvalText(t.approval_rate)}</dd>
        {t.mean_quality != null && (
          <>
            <dt>
              Mean quality <Help text={HELP.quality} />
            </dt>
            <dd>{t.mean_quality}</dd>
          </>
        )}
        <dt>
          Weight <Help text={HELP.weight} />
        </dt>
        <dd>
          <input type="number" min={0} step="0.1" value={weight} onChange={(e) => setWeight(e.target.value)} className="narrow" data-testid="template-weight" />
          <button
            type="button"
            className="btn btn-small"
            disabled={busy || Number.isNaN(Number(weight)) || Number(weight) < 0 || Number(weight) === t.weight}
            onClick={() => void patch({ weight: Number(weight) }, "Weight saved.")}
            data-testid="btn-save-weight"
          >
            Save weight
          </button>
        </dd>
        {t.parameters && t.parameters.length > 0 && (
          <>
            <dt>Placeholders</dt>
            <dd className="small">{t.parameters.map((p) => `{${p}}`).join(" ")}</dd>
          </>
        )}
      </dl>
      <label className="block">
        Prompt text <Help text={HELP.templateVersion} />
        <textarea rows={12} value={text} onChange={(e) => setText(e.target.value)} className="mono" data-testid="template-text" />
      </label>
      <label className="block">
        What changed (optional)
        <input value={note} onChange={(e) => setNote(e.target.value)} placeholder="e.g. warmer opening line" data-testid="template-change-note" />
      </label>
      <button
        type="button"
        className="btn btn-primary"
        disabled={busy || text === t.text || !text.trim()}
        onClick={() => void patch({ text, ...(note.trim() ? { change_note: note.trim() } : {}) }, "Saved as a new version.")}
        data-testid="btn-save-template"
      >
        Save as new version
      </button>
      <h4>Versions</h4>
      {t.versions.length === 0 ? (
        <p className="small muted">Only the current version exists.</p>
      ) : (
        <ol className="versions" data-testid="template-versions">
          {[...t.versions]
            .sort((a, b) => b.version - a.version)
            .map((v) => (
              <li key={v.version}>
                <details>
                  <summary>
                    v{v.version} · {dateTime(v.created_at)}
                    {v.created_by ? ` · ${v.created_by}` : ""}
                    {v.change_note ? ` · ${v.change_note}` : ""}
                    {(() => {
                      const u = t.usage.find((x) => x.version === v.version);
                      if (!u) return "";
                      return ` · wrote ${u.usage}, approval ${approvalText(u.approval_rate)}${u.mean_quality != null ? `, mean quality ${u.mean_quality}` : ""}`;
                    })()}
                  </summary>
                  <pre className="small">{v.text}</pre>
                </details>
              </li>
            ))}
        </ol>
      )}
    </section>
  );
}

function CreateTemplate({ onCreated }: { onCreated: (t: PromptTemplate) => void }) {
  const toast = useToast();
  const [open, setOpen] = useState(false);
  const [name, setName] = useState("");
  const [tier, setTier] = useState<Tier>("template");
  const [text, setText] = useState("");
  const [busy, setBusy] = useState(false);
  const submit = async (e: FormEvent) => {
    e.preventDefault();
    setBusy(true);
    try {
      const t = await api.createTemplate({ name: name.trim(), tier, text });
      toast.success("Template created.");
      setName("");
      setText("");
      setOpen(false);
      onCreated(t);
    } catch (err) {
      toast.error(err, "Could not create the template");
    } finally {
      setBusy(false);
    }
  };
  if (!open)
    return (
      <button type="button" className="btn" onClick={() => setOpen(true)} data-testid="btn-new-template">
        New template…
      </button>
    );
  return (
    <form className="card form-grid" onSubmit={(e) => void submit(e)} data-testid="create-template-form">
      <label>
        Name
        <input value={name} onChange={(e) => setName(e.target.value)} required data-testid="new-template-name" />
      </label>
      <label>
        Tier <Help text={HELP.tiers} />
        <select value={tier} onChange={(e) => setTier(e.target.value as Tier)} data-testid="new-template-tier">
          {TIERS.map((t) => (
            <option key={t} value={t}>
              {TIER_LABEL[t]}
            </option>
          ))}
        </select>
      </label>
      <label className="block">
        Prompt text (use placeholders such as {"{persona}"}, {"{emotion}"}, {"{topic}"})
        <textarea rows={6} value={text} onChange={(e) => setText(e.target.value)} required className="mono" data-testid="new-template-text" />
      </label>
      <div className="button-row">
        <button type="submit" className="btn btn-primary" disabled={busy || !name.trim() || !text.trim()} data-testid="btn-create-template">
          Create
        </button>
        <button type="button" className="btn" onClick={() => setOpen(false)}>
          Cancel
        </button>
      </div>
    </form>
  );
}

export function TemplatesPage() {
  const toast = useToast();
  const [search, setSearch] = useSearch();
  const selected = new URLSearchParams(search).get("template");
  const [list, setList] = useState<PromptTemplate[] | null>(null);

  const load = useCallback(async () => {
    try {
      setList((await api.listTemplates()).items);
    } catch (e) {
      toast.error(e, "Could not load templates");
      setList((l) => l ?? []);
    }
  }, [toast]);

  useEffect(() => {
    void load();
  }, [load]);

  const select = (id: string) => {
    const sp = new URLSearchParams(window.location.search);
    sp.set("template", id);
    setSearch(sp.toString());
  };

  return (
    <div className="page" data-testid="templates-page">
      <h2 className="page-title">Prompt templates</h2>
      <p className="small muted">
        Templates are the instructions Claude follows to write each conversation. Edit them to change tone or structure; every save keeps the
        previous version.
      </p>
      <div className="split-view">
        <section className="card" aria-label="Template list">
          {!list && <p className="loading">Loading templates…</p>}
          {list && list.length === 0 && <p className="muted" data-testid="empty-templates">No templates yet. Create one to get started.</p>}
          {list && list.length > 0 && (
            <table className="simple-table" tabIndex={0} data-testid="templates-table">
              <thead>
                <tr>
                  <th>Name</th>
                  <th>
                    Tier <Help text={HELP.tiers} />
                  </th>
                  <th>Version</th>
                  <th>Active</th>
                  <th>
                    Weight <Help text={HELP.weight} />
                  </th>
                </tr>
              </thead>
              <tbody>
                {list.map((t) => (
                  <tr
                    key={t.template_id}
                    className={`clickable${selected === t.template_id ? " active" : ""}`}
                    onClick={() => select(t.template_id)}
                    onKeyDown={(e) => e.key === "Enter" && select(t.template_id)}
                    tabIndex={0}
                    data-testid={`template-row-${t.template_id}`}
                  >
                    <td>{t.name}</td>
                    <td>{TIER_LABEL[t.tier] ?? t.tier}</td>
                    <td>v{t.version}</td>
                    <td>{t.is_active ? "Yes" : "No"}</td>
                    <td>{t.weight}</td>
                  </tr>
                ))}
              </tbody>
            </table>
          )}
          <CreateTemplate
            onCreated={(t) => {
              void load();
              select(t.template_id);
            }}
          />
        </section>
        <div>
          {selected ? (
            <TemplateDetailView id={selected} onChanged={() => void load()} />
          ) : (
            <p className="muted empty">Choose a template on the left to see its versions, usage and approval rate.</p>
          )}
        </div>
      </div>
    </div>
  );
}
