import { useEffect, useState } from "react";
import { api, ApiError, FINE_TUNE_BASE_MODELS, type ExportRecord, type FineTune, type FineTuneEstimate } from "../api";
import { Dialog } from "./Dialog";
import { errorMessage, useToast } from "./Toasts";
import { money } from "../format";

interface Props {
  record: ExportRecord;
  onClose: () => void;
  onStarted: (fineTune: FineTune) => void;
}

/** Start an Amazon Bedrock fine-tune (model customization job) from an anthropic export:
 * base model and hyperparameters, the training-cost estimate against the dataset's
 * budget, and a confirmation when the estimate is over it. */
export function FineTuneDialog({ record, onClose, onStarted }: Props) {
  const toast = useToast();
  const [baseModel, setBaseModel] = useState<string>(FINE_TUNE_BASE_MODELS[0]);
  const [epochs, setEpochs] = useState(2);
  const [lr, setLr] = useState(1);
  const [batchSize, setBatchSize] = useState(32);
  const [confirm, setConfirm] = useState(false);
  const [estimate, setEstimate] = useState<FineTuneEstimate | null>(null);
  const [error, setError] = useState<string | null>(null);
  const [busy, setBusy] = useState(false);
  const body = { base_model: baseModel, epochs, learning_rate_multiplier: lr, batch_size: batchSize };

  useEffect(() => {
    let live = true;
    api
      .estimateFineTune(record.export_id, { base_model: baseModel, epochs, learning_rate_multiplier: lr, batch_size: batchSize })
      .then((e) => {
        if (live) {
          setEstimate(e);
          setError(null);
        }
      })
      .catch((e: unknown) => live && setError(errorMessage(e)));
    return () => {
      live = false;
    };
  }, [record.export_id, baseModel, epochs, lr, batchSize]);

  const start = async () => {
    setBusy(true);
    setError(null);
    try {
      const ft = await api.startFineTune(record.export_id, { ...body, confirm });
      toast.success("The fine-tune has started on Amazon Bedrock.");
      onStarted(ft);
    } catch (e) {
      if (e instanceof ApiError && e.code === "over_budget") setConfirm(false);
      setError(errorMessage(e));
    } finally {
      setBusy(false);
    }
  };

  const files = record.files?.filter((f) => f.split === "train" || f.split === "validation" || f.split === null) ?? [];
  const needsConfirm = estimate?.over_budget === true;
  return (
    <Dialog title="Fine-tune on Amazon Bedrock" onClose={onClose} testId="fine-tune-dialog">
      <p className="small muted">
        Starts a Bedrock model customization job on this export's files:{" "}
        {files.map((f) => `${f.split ?? "all"} (${f.count ?? "?"} conversations)`).join(", ")}. Bedrock bills the training tokens times
        the epochs.
      </p>
      <div className="form-grid">
        <label>
          Base model
          <select value={baseModel} onChange={(e) => setBaseModel(e.target.value)} data-testid="fine-tune-base-model">
            {FINE_TUNE_BASE_MODELS.map((m) => (
              <option key={m} value={m}>
                {m}
              </option>
            ))}
          </select>
        </label>
        <label>
          Epochs (1–10)
          <input type="number" min={1} max={10} value={epochs} onChange={(e) => setEpochs(Number(e.target.value) || 1)} data-testid="fine-tune-epochs" />
        </label>
        <label>
          Learning rate multiplier (0.1–2)
          <input type="number" min={0.1} max={2} step={0.1} value={lr} onChange={(e) => setLr(Number(e.target.value) || 1)} data-testid="fine-tune-lr" />
        </label>
        <label>
          Batch size (4–256)
          <input type="number" min={4} max={256} value={batchSize} onChange={(e) => setBatchSize(Number(e.target.value) || 32)} data-testid="fine-tune-batch" />
        </label>
      </div>
      {estimate && (
        <p className="small" data-testid="fine-tune-estimate">
          Estimated training cost: {money(estimate.estimated_cost_usd)} ({estimate.training_tokens.toLocaleString()} tokens × {estimate.epochs} epochs × $
          {estimate.price_per_1k_tokens_usd} per 1,000 tokens)
          {estimate.budget_remaining_usd !== null ? `; the dataset has ${money(estimate.budget_remaining_usd)} of its budget left.` : "; the dataset has no budget set."}
        </p>
      )}
      {needsConfirm && (
        <label className="inline-check text-warn">
          <input type="checkbox" checked={confirm} onChange={(e) => setConfirm(e.target.checked)} data-testid="fine-tune-confirm" />
          The estimate is over the dataset's remaining budget: start anyway
        </label>
      )}
      {error && (
        <div className="banner banner-error" role="alert" data-testid="fine-tune-error">
          {error}
        </div>
      )}
      <div className="button-row">
        <button type="button" className="btn" onClick={onClose}>
          Cancel
        </button>
        <button
          type="button"
          className="btn btn-primary"
          disabled={busy || !estimate || (needsConfirm && !confirm)}
          onClick={() => void start()}
          data-testid="btn-fine-tune-start"
        >
          {busy ? "Starting…" : "Start fine-tune"}
        </button>
      </div>
    </Dialog>
  );
}
