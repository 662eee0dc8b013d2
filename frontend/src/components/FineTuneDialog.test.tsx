/** The fine-tune dialog shows the training-cost estimate, asks for a confirmation when it
 * is over the dataset's budget, and starts the job with the chosen hyperparameters. */
import { fireEvent, render, screen, waitFor } from "@testing-library/react";
import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import type { ExportRecord } from "../api";
import { FineTuneDialog } from "./FineTuneDialog";
import { ToastProvider } from "./Toasts";

type Call = { key: string; body: unknown };
let calls: Call[] = [];
let overBudget = false;

const RECORD: ExportRecord = {
  export_id: "exp_1",
  format: "anthropic",
  status: "ready",
  files: [
    { split: "train", filename: "a-train.jsonl", count: 8 },
    { split: "validation", filename: "a-validation.jsonl", count: 1 },
  ],
};

function estimate(epochs: number) {
  return {
    base_model: "anthropic.claude-3-haiku-20240307-v1:0:200k",
    training_tokens: 1000,
    epochs,
    price_per_1k_tokens_usd: 0.008,
    estimated_cost_usd: 0.008 * epochs,
    budget_usd: 1,
    spent_usd: 0,
    committed_fine_tunes_usd: 0,
    budget_remaining_usd: overBudget ? 0.001 : 1,
    over_budget: overBudget,
  };
}

beforeEach(() => {
  calls = [];
  overBudget = false;
  vi.stubGlobal(
    "fetch",
    vi.fn(async (input: string, init?: RequestInit) => {
      const key = `${init?.method ?? "GET"} ${new URL(input, "http://localhost").pathname}`;
      const body = init?.body ? JSON.parse(String(init.body)) : undefined;
      calls.push({ key, body });
      const payload = key.endsWith("/estimate")
        ? { estimate: estimate((body as { epochs: number }).epochs) }
        : { fine_tune_id: "ft_1", status: "InProgress", hyperparameters: {}, created_at: "2026-12-02T00:00:00Z" };
      return new Response(JSON.stringify(payload), { status: key.endsWith("/estimate") ? 200 : 201, headers: { "Content-Type": "application/json" } });
    }),
  );
});

afterEach(() => vi.unstubAllGlobals());

function renderDialog(onStarted = vi.fn()) {
  render(
    <ToastProvider>
      <FineTuneDialog record={RECORD} onClose={() => undefined} onStarted={onStarted} />
    </ToastProvider>,
  );
  return onStarted;
}

describe("the fine-tune dialog", () => {
  it("estimates, then starts the job with the chosen hyperparameters", async () => {
    const onStarted = renderDialog();
    fireEvent.change(screen.getByTestId("fine-tune-epochs"), { target: { value: "3" } });
    await waitFor(() => expect(screen.getByTestId("fine-tune-estimate").textContent).toContain("× 3 epochs"));
    fireEvent.click(screen.getByTestId("btn-fine-tune-start"));
    await waitFor(() => expect(onStarted).toHaveBeenCalled());
    const start = calls.find((c) => c.key === "POST /api/exports/exp_1/fine-tunes");
    expect(start?.body).toEqual({
      base_model: "anthropic.claude-3-haiku-20240307-v1:0:200k",
      epochs: 3,
      learning_rate_multiplier: 1,
      batch_size: 32,
      confirm: false,
    });
  });

  it("asks for a confirmation when the estimate is over the budget", async () => {
    overBudget = true;
    renderDialog();
    const confirm = await screen.findByTestId("fine-tune-confirm");
    expect(screen.getByTestId("btn-fine-tune-start")).toBeDisabled();
    fireEvent.click(confirm);
    expect(screen.getByTestId("btn-fine-tune-start")).not.toBeDisabled();
    fireEvent.click(screen.getByTestId("btn-fine-tune-start"));
    await waitFor(() => expect(calls.some((c) => c.key === "POST /api/exports/exp_1/fine-tunes")).toBe(true));
    expect(calls.find((c) => c.key === "POST /api/exports/exp_1/fine-tunes")?.body).toMatchObject({ confirm: true });
  });
});
