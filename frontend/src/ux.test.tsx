/** Newcomer and layout behaviour: welcome steps, compact table beside the review panel,
 * notification links to a job, and the job summary's shortcut to the new conversations. */
import { fireEvent, render, screen, waitFor, within } from "@testing-library/react";
import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import { App } from "./App";
import { ExportStatus } from "./components/ExportDialog";
import { ToastProvider } from "./components/Toasts";
import { GETTING_STARTED } from "./help";

const DATASET = {
  dataset_id: "ds_1",
  name: "Sample",
  target_count: 90,
  tier_distribution: { template: 40, scenario: 35, edge_case: 15 },
  budget_usd: 5,
  taxonomy: {
    personas: [{ name: "Anxious Investor" }],
    emotions: [{ name: "Fear" }],
    topics: [{ name: "Fees" }],
    intents: [{ name: "Reassure" }],
    tones: [{ name: "Warm" }],
  },
  chunk_count: 0,
  created_at: "2025-01-01T00:00:00Z",
};

const ROW = {
  conversation_id: "conv_a",
  persona: "Anxious Investor",
  emotion: "Fear",
  topic: "Fees",
  intent: "Reassure",
  tone: "Warm",
  tier: "template",
  status: "generated",
  quality_score: 8.5,
  flagged: false,
  actual_cost_usd: 0.0123,
  estimated_cost_usd: 0.01,
  created_at: "2025-01-02T10:00:00Z",
  version: 1,
  turn_count: 2,
};

const DONE_JOB = {
  job_id: "job_7",
  dataset_id: "ds_1",
  status: "completed",
  total: 12,
  completed: 11,
  failed: 1,
  skipped: 0,
  cost_usd: 0.14,
  estimated_cost_usd: 0.15,
};

type Reply = { status?: number; body: unknown } | undefined;
let datasets: unknown[] = [DATASET];
let jobs: Record<string, unknown> = {};
let calls: URL[] = [];

function reply(status: number, body: unknown) {
  return new Response(JSON.stringify(body), { status, headers: { "Content-Type": "application/json" } });
}

function route(url: URL): Reply {
  const p = url.pathname;
  if (p === "/api/health") return { body: { status: "ok", llm: "simulator" } };
  if (p === "/api/datasets") return { body: { items: datasets, total: datasets.length } };
  if (p === "/api/datasets/ds_1") return { body: DATASET };
  if (p === "/api/jobs") return { body: { items: [] } };
  const job = /^\/api\/jobs\/(\w+)$/.exec(p);
  if (job) return job[1]! in jobs ? { body: jobs[job[1]!] } : { status: 404, body: { error: { code: "not_found", message: "no job", details: {} } } };
  if (p === "/api/conversations") return { body: { items: [ROW], total: 1, page: 1, page_size: 25, next_cursor: null } };
  if (p === "/api/conversations/conv_a")
    return { body: { ...ROW, turns: [{ turn_number: 1, role: "user", content: "Hi" }], audit: [], previous_id: null, next_id: null } };
  return undefined;
}

function renderApp(search: string) {
  window.history.replaceState(null, "", `/${search}`);
  return render(
    <ToastProvider>
      <App />
    </ToastProvider>,
  );
}

const params = () => new URLSearchParams(window.location.search);

beforeEach(() => {
  datasets = [DATASET];
  jobs = {};
  calls = [];
  localStorage.clear();
  vi.stubGlobal(
    "fetch",
    vi.fn(async (input: string) => {
      const url = new URL(input, "http://localhost");
      calls.push(url);
      const r = route(url);
      return r ? reply(r.status ?? 200, r.body) : reply(404, { error: { code: "not_found", message: url.pathname, details: {} } });
    }),
  );
});

afterEach(() => {
  vi.unstubAllGlobals();
});

describe("newcomers", () => {
  it("see the five steps of the workflow on the welcome screen", async () => {
    datasets = [];
    renderApp("");
    const steps = await screen.findByTestId("getting-started");
    const items = within(steps).getAllByRole("listitem");
    expect(items).toHaveLength(GETTING_STARTED.length);
    expect(items.map((li) => li.querySelector("b")?.textContent)).toEqual(["Set up a dataset", "Plan", "Generate", "Review", "Export"]);
    expect(screen.getByTestId("btn-load-sample")).toBeEnabled();
  });
});

describe("table beside the review panel", () => {
  it("drops the secondary columns while a conversation is open and explains it", async () => {
    renderApp("?dataset_id=ds_1");
    const table = await screen.findByTestId("conversation-table");
    await screen.findByTestId("conv-row-conv_a");
    expect(screen.getByTestId("sort-intent")).toBeInTheDocument();
    expect(screen.getByTestId("sort-created_at")).toBeInTheDocument();

    fireEvent.click(screen.getByTestId("conv-row-conv_a"));
    await screen.findByTestId("review-panel");
    await waitFor(() => expect(screen.queryByTestId("sort-intent")).not.toBeInTheDocument());
    for (const hidden of ["sort-conversation_id", "sort-tone", "sort-actual_cost_usd", "sort-created_at"])
      expect(screen.queryByTestId(hidden)).not.toBeInTheDocument();
    // what matters for reviewing stays
    expect(screen.getByTestId("sort-status")).toBeInTheDocument();
    expect(screen.getByTestId("sort-quality_score")).toBeInTheDocument();
    expect(within(table).getByTestId("status-conv_a")).toBeInTheDocument();
    // check box + persona, emotion, topic, tier, status, quality (no actions column)
    expect(table.querySelectorAll("thead th")).toHaveLength(7);
    fireEvent.click(screen.getByTestId("column-toggle-button"));
    expect(screen.getByTestId("column-toggle-compact")).toHaveTextContent("hidden to make room");

    fireEvent.click(screen.getByTestId("btn-close-panel"));
    await waitFor(() => expect(screen.getByTestId("sort-intent")).toBeInTheDocument());
  });

  it("shows created dates compactly with the full date on hover", async () => {
    renderApp("?dataset_id=ds_1");
    const row = await screen.findByTestId("conv-row-conv_a");
    const time = row.querySelector("time");
    expect(time).not.toBeNull();
    expect(time!.getAttribute("dateTime")).toBe(ROW.created_at);
    expect(time!.getAttribute("title")).toMatch(/2025/);
  });
});

describe("a job notification's link", () => {
  it("opens the dataset, shows that job's summary and leads to the new conversations", async () => {
    jobs = { job_7: DONE_JOB };
    renderApp("?dataset=ds_1&job=job_7");
    const tracker = await screen.findByTestId("progress-tracker");
    expect(tracker).toHaveAttribute("data-job-id", "job_7");
    expect(within(tracker).getByTestId("progress-summary")).toHaveTextContent("11 written, 1 failed");
    // the job id is dropped from the URL so that Dismiss sticks across reloads
    await waitFor(() => expect(params().get("job")).toBeNull());
    expect(params().get("dataset")).toBe("ds_1");
    expect(calls.some((u) => u.pathname === "/api/conversations" && u.searchParams.get("dataset_id") === "ds_1")).toBe(true);

    fireEvent.click(within(tracker).getByTestId("btn-show-generated"));
    expect(params().getAll("status")).toEqual(["generated"]);
    await waitFor(() => expect(calls.some((u) => u.pathname === "/api/conversations" && u.searchParams.get("status") === "generated")).toBe(true));
  });

  it("ignores a job of another dataset", async () => {
    jobs = { job_7: { ...DONE_JOB, dataset_id: "ds_other" } };
    renderApp("?dataset_id=ds_1&job=job_7");
    await screen.findByTestId("conv-row-conv_a");
    await waitFor(() => expect(params().get("job")).toBeNull());
    expect(screen.queryByTestId("progress-tracker")).not.toBeInTheDocument();
  });
});

describe("a ready export", () => {
  it("offers the main file once, and the other files (manifest, splits) beside it", () => {
    render(
      <ExportStatus
        record={{
          export_id: "exp_1",
          format: "openai",
          status: "ready",
          conversation_count: 22,
          filename: "training-data-approved-22-conversations.jsonl",
          download_url: "http://s3/main",
          files: [
            { split: undefined, filename: "training-data-approved-22-conversations.jsonl", count: 22, download_url: "http://s3/main" },
            { split: "manifest", filename: "training-data-approved-22-conversations-manifest.json", count: 22, download_url: "http://s3/manifest" },
          ],
        } as Parameters<typeof ExportStatus>[0]["record"]}
      />,
    );
    const links = screen.getAllByRole("link");
    expect(links.map((a) => a.getAttribute("href"))).toEqual(["http://s3/main", "http://s3/manifest"]);
    expect(screen.getByTestId("export-download")).toHaveTextContent("Download training-data-approved-22-conversations.jsonl");
    expect(screen.getByTestId("export-download-manifest")).toHaveTextContent("manifest:");
  });
});
