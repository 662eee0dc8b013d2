import { act, fireEvent, render, screen, waitFor, within } from "@testing-library/react";
import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import { App } from "./App";
import { ToastProvider } from "./components/Toasts";

type Handler = (url: URL, init: RequestInit) => { status?: number; body: unknown } | undefined;

const DATASET = {
  dataset_id: "ds_1",
  name: "Sample",
  target_count: 90,
  tier_distribution: { template: 40, scenario: 35, edge_case: 15 },
  budget_usd: 5,
  taxonomy: {
    personas: [{ name: "Anxious Investor" }, { name: "Retiree" }],
    emotions: [{ name: "Fear" }],
    topics: [{ name: "Fees" }],
    intents: [{ name: "Reassure" }],
    tones: [{ name: "Warm" }],
  },
  chunk_count: 0,
  created_at: "2025-01-01T00:00:00Z",
};

function row(id: string, over: Record<string, unknown> = {}) {
  return {
    conversation_id: id,
    persona: "Anxious Investor",
    emotion: "Fear",
    topic: "Fees",
    intent: "Reassure",
    tone: "Warm",
    tier: "template",
    status: "generated",
    quality_score: 7.5,
    flagged: false,
    actual_cost_usd: 0.0123,
    estimated_cost_usd: 0.01,
    created_at: "2025-01-02T10:00:00Z",
    version: 1,
    turn_count: 2,
    ...over,
  };
}

const ROWS = [row("conv_a"), row("conv_b", { status: "failed", quality_score: null, persona: "Retiree", error_message: "Rate limited" }), row("conv_c", { quality_score: 9.1 })];

function detail(id: string, over: Record<string, unknown> = {}) {
  const i = ROWS.findIndex((r) => r.conversation_id === id);
  return {
    ...ROWS[i],
    turns: [
      { turn_number: 1, role: "user", content: "<img src=x onerror=alert(1)> Are my fees too high?" },
      { turn_number: 2, role: "assistant", content: "Let's look at them together." },
    ],
    quality: { score: 7.5, checks: [{ name: "turn_count", passed: true, score: 1, detail: "2 turns" }] },
    audit: [{ actor: "system", action: "conversation.generate", at: "2025-01-02T10:00:00Z", details: {} }],
    previous_id: i > 0 ? ROWS[i - 1]!.conversation_id : null,
    next_id: i < ROWS.length - 1 ? ROWS[i + 1]!.conversation_id : null,
    template_id: "tpl_1",
    template_version: 2,
    ...over,
  };
}

let calls: { method: string; url: URL; body: unknown }[] = [];
let extra: Handler | null = null;

function installFetch() {
  calls = [];
  vi.stubGlobal(
    "fetch",
    vi.fn(async (input: string, init: RequestInit = {}) => {
      const url = new URL(input, "http://localhost");
      const method = init.method ?? "GET";
      const body = typeof init.body === "string" && init.body.startsWith("{") ? JSON.parse(init.body) : init.body;
      calls.push({ method, url, body });
      const custom = extra?.(url, init);
      const reply = (status: number, b: unknown) => new Response(JSON.stringify(b), { status, headers: { "Content-Type": "application/json" } });
      if (custom) return reply(custom.status ?? 200, custom.body);
      const p = url.pathname;
      if (p === "/api/health") return reply(200, { status: "ok", llm: "simulator" });
      if (p === "/api/datasets") return reply(200, { items: [DATASET], total: 1 });
      if (p === "/api/datasets/ds_1") return reply(200, DATASET);
      if (p === "/api/jobs") return reply(200, { items: [] });
      if (p === "/api/conversations") {
        const personas = url.searchParams.getAll("persona");
        const items = personas.length ? ROWS.filter((r) => personas.includes(r.persona)) : ROWS;
        return reply(200, { items, total: items.length, page: 1, page_size: 25, next_cursor: null });
      }
      const m = /^\/api\/conversations\/(conv_\w+)$/.exec(p);
      if (m && method === "GET") return reply(200, detail(m[1]!));
      if (m && method === "PATCH") {
        const b = body as { status: string; version: number };
        return reply(200, { ...detail(m[1]!), status: b.status, version: b.version + 1, turns: [], audit: [], undo_token: `undo-${m[1]}` });
      }
      if (p === "/api/conversations/undo" && method === "POST") return reply(200, { action: "undo", undoes: "approve", succeeded: ["conv_a"], failed: [], undo_token: "redo" });
      return reply(404, { error: { code: "not_found", message: `No route ${p}`, details: {} } });
    }),
  );
}

function renderApp(search = "?dataset_id=ds_1") {
  window.history.replaceState(null, "", `/${search}`);
  return render(
    <ToastProvider>
      <App />
    </ToastProvider>,
  );
}

beforeEach(() => {
  extra = null;
  installFetch();
});

afterEach(() => {
  vi.unstubAllGlobals();
});

describe("Dashboard table + review panel", () => {
  it("shows the simulator badge, rows, status and quality colours", async () => {
    renderApp();
    expect(await screen.findByTestId("simulator-badge")).toHaveTextContent(/Simulator mode/);
    expect(await screen.findByTestId("conv-row-conv_a")).toBeInTheDocument();
    expect(screen.getByTestId("conversation-count")).toHaveTextContent("3 conversations");
    expect(screen.getByTestId("status-conv_a")).toHaveAttribute("data-status", "generated");
    expect(screen.getByTestId("quality-conv_a")).toHaveAttribute("data-band", "yellow");
    expect(screen.getByTestId("quality-conv_c")).toHaveAttribute("data-band", "green");
    // the list call carried the dataset and page size
    const list = calls.find((c) => c.url.pathname === "/api/conversations");
    expect(list?.url.searchParams.get("dataset_id")).toBe("ds_1");
    expect(list?.url.searchParams.get("page_size")).toBe("25");
  });

  it("puts filters and sorting in the URL and re-queries", async () => {
    renderApp();
    await screen.findByTestId("conv-row-conv_a");
    fireEvent.click(screen.getByTestId("filter-persona-button"));
    fireEvent.click(screen.getByTestId("filter-persona-option-Retiree"));
    await waitFor(() => expect(screen.queryByTestId("conv-row-conv_a")).not.toBeInTheDocument());
    expect(new URLSearchParams(window.location.search).getAll("persona")).toEqual(["Retiree"]);
    expect(screen.getByTestId("filter-badge-persona-Retiree")).toBeInTheDocument();
    expect(screen.getByTestId("conversation-count")).toHaveTextContent("1 conversation match your filters");

    fireEvent.click(screen.getByTestId("sort-quality_score"));
    expect(new URLSearchParams(window.location.search).get("sort")).toBe("quality_score");
    expect(new URLSearchParams(window.location.search).get("order")).toBe("asc");
    await waitFor(() => expect(calls.some((c) => c.url.searchParams.get("sort") === "quality_score")).toBe(true));

    fireEvent.click(screen.getByTestId("btn-clear-filters"));
    expect(await screen.findByTestId("conv-row-conv_a")).toBeInTheDocument();
    expect(new URLSearchParams(window.location.search).getAll("persona")).toEqual([]);
  });

  it("opens the review panel, renders turns as text, and approves with the version", async () => {
    renderApp();
    fireEvent.click(await screen.findByTestId("conv-row-conv_a"));
    const panel = await screen.findByTestId("review-panel");
    await within(panel).findByTestId("turn-1");
    // untrusted model text is shown literally, never parsed as HTML
    expect(within(panel).getByTestId("turn-1")).toHaveTextContent("<img src=x onerror=alert(1)> Are my fees too high?");
    expect(panel.querySelector("img")).toBeNull();
    expect(within(panel).getByText("USER:")).toBeInTheDocument();
    expect(within(panel).getByText("ASSISTANT:")).toBeInTheDocument();
    expect(within(panel).getByTestId("panel-template")).toHaveTextContent("tpl_1 v2");
    expect(within(panel).getByTestId("shortcut-hint")).toBeInTheDocument();
    // the detail call carries the table's filter/sort query
    const get = calls.find((c) => c.url.pathname === "/api/conversations/conv_a");
    expect(get?.url.searchParams.get("dataset_id")).toBe("ds_1");
    expect(get?.url.searchParams.get("sort")).toBe("created_at");
    expect(new URLSearchParams(window.location.search).get("conv")).toBe("conv_a");

    fireEvent.change(within(panel).getByTestId("notes-input"), { target: { value: "Looks great" } });
    fireEvent.click(within(panel).getByTestId("btn-approve"));
    await waitFor(() => expect(calls.some((c) => c.method === "PATCH")).toBe(true));
    const patch = calls.find((c) => c.method === "PATCH");
    expect(patch?.url.pathname).toBe("/api/conversations/conv_a");
    expect(patch?.body).toEqual({ status: "approved", reviewer_notes: "Looks great", version: 1 });
    expect(await screen.findByText(/^Approved: /)).toBeInTheDocument();
    // auto-advance moves to the next conversation
    await waitFor(() => expect(new URLSearchParams(window.location.search).get("conv")).toBe("conv_b"));

    // `u` undoes the decision with its token and goes back to that conversation
    expect(screen.getByTestId("toast-undo")).toBeInTheDocument();
    fireEvent.keyDown(window, { key: "u" });
    await waitFor(() => expect(calls.some((c) => c.url.pathname === "/api/conversations/undo")).toBe(true));
    expect(calls.find((c) => c.url.pathname === "/api/conversations/undo")?.body).toEqual({ undo_token: "undo-conv_a", partial: false });
    await waitFor(() => expect(new URLSearchParams(window.location.search).get("conv")).toBe("conv_a"));
    expect(await screen.findByText(/^Undone:/)).toBeInTheDocument();
  });

  it("supports keyboard shortcuts j/k/a/Esc outside text fields", async () => {
    renderApp("?dataset_id=ds_1&conv=conv_a");
    await screen.findByTestId("turn-1");
    act(() => {
      fireEvent.keyDown(document.body, { key: "j" });
    });
    await waitFor(() => expect(new URLSearchParams(window.location.search).get("conv")).toBe("conv_b"));
    await waitFor(() => expect(screen.getByTestId("panel-body")).toHaveAttribute("data-conversation-id", "conv_b"));
    fireEvent.keyDown(document.body, { key: "k" });
    await waitFor(() => expect(new URLSearchParams(window.location.search).get("conv")).toBe("conv_a"));
    await waitFor(() => expect(screen.getByTestId("panel-body")).toHaveAttribute("data-conversation-id", "conv_a"));

    // typing "a" in the notes field does not approve
    const notes = screen.getByTestId("notes-input");
    fireEvent.keyDown(notes, { key: "a" });
    expect(calls.some((c) => c.method === "PATCH")).toBe(false);

    fireEvent.keyDown(document.body, { key: "n" });
    expect(document.activeElement).toBe(screen.getByTestId("notes-input"));
    (document.activeElement as HTMLElement).blur();

    fireEvent.keyDown(document.body, { key: "Escape" });
    await waitFor(() => expect(screen.queryByTestId("review-panel")).not.toBeInTheDocument());
  });

  it("shows the newer version on a 409 instead of overwriting", async () => {
    extra = (_url, init) =>
      init.method === "PATCH"
        ? {
            status: 409,
            body: {
              error: {
                code: "stale_version",
                message: "This conversation was changed by someone else",
                details: { current: { ...row("conv_a"), status: "rejected", version: 2, reviewer_notes: "Too short", reviewed_by: "sam@example.com" } },
              },
            },
          }
        : undefined;
    renderApp("?dataset_id=ds_1&conv=conv_a");
    await screen.findByTestId("turn-1");
    fireEvent.keyDown(document.body, { key: "a" });
    const banner = await screen.findByTestId("conflict-banner");
    expect(banner).toHaveTextContent("Someone else changed this conversation");
    expect(banner).toHaveTextContent("Too short");
    expect(screen.getByTestId("panel-status")).toHaveAttribute("data-status", "rejected");
    // still on the same conversation; a second approve would send the new version
    expect(new URLSearchParams(window.location.search).get("conv")).toBe("conv_a");
    extra = null;
    fireEvent.click(screen.getByTestId("btn-approve"));
    await waitFor(() => expect(calls.filter((c) => c.method === "PATCH")).toHaveLength(2));
    expect((calls.filter((c) => c.method === "PATCH")[1]!.body as { version: number }).version).toBe(2);
  });

  it("selects the visible page and runs a bulk action with a summary toast", async () => {
    extra = (url) =>
      url.pathname === "/api/conversations/bulk-action"
        ? { body: { succeeded: ["conv_a", "conv_c"], failed: [{ id: "conv_b", error: "not reviewable" }] } }
        : undefined;
    renderApp();
    await screen.findByTestId("conv-row-conv_a");
    fireEvent.click(screen.getByTestId("select-all"));
    expect(screen.getByTestId("selected-count")).toHaveTextContent("3 selected");
    fireEvent.click(screen.getByTestId("btn-bulk-delete"));
    expect(screen.getByTestId("confirm-dialog")).toBeInTheDocument();
    fireEvent.click(screen.getByTestId("btn-confirm"));
    await waitFor(() => expect(calls.some((c) => c.url.pathname === "/api/conversations/bulk-action")).toBe(true));
    // first the preview (counts for the dialog), then the action itself
    const bulkCalls = calls.filter((c) => c.url.pathname === "/api/conversations/bulk-action");
    expect(bulkCalls[0]?.body).toEqual({ action: "delete", ids: ["conv_a", "conv_b", "conv_c"], preview: true });
    await waitFor(() => expect(calls.filter((c) => c.url.pathname === "/api/conversations/bulk-action")).toHaveLength(2));
    expect(calls.filter((c) => c.url.pathname === "/api/conversations/bulk-action")[1]?.body).toEqual({
      action: "delete",
      ids: ["conv_a", "conv_b", "conv_c"],
      confirm: true,
    });
    expect(await screen.findByText(/2 succeeded, 1 failed/)).toBeInTheDocument();
  });

  it("shows a failed conversation's error when its badge is clicked", async () => {
    renderApp();
    fireEvent.click(await screen.findByTestId("status-conv_b"));
    expect(await screen.findByTestId("failed-error-message")).toHaveTextContent("Rate limited");
  });

  it("estimates before Generate all and offers Start anyway on over_budget", async () => {
    extra = (url, init) => {
      if (url.pathname === "/api/conversations/estimate") return { body: { count: 40, estimated_cost_usd: 1.2, estimated_seconds: 300, over_budget: false, budget_usd: 5 } };
      if (url.pathname === "/api/conversations/generate-all") {
        const b = JSON.parse(String(init.body)) as { confirm: boolean };
        return b.confirm
          ? { status: 202, body: { job_id: "job_9" } }
          : { status: 409, body: { error: { code: "over_budget", message: "Estimate $1.20 exceeds the remaining budget $0.50", details: {} } } };
      }
      if (url.pathname === "/api/jobs/job_9")
        return {
          body: {
            job_id: "job_9",
            status: "running",
            total: 40,
            completed: 10,
            failed: 0,
            skipped: 0,
            current: { persona: "Retiree", topic: "Fees" },
            percent: 25,
            eta_seconds: 120,
            cost_usd: 0.3,
            estimated_cost_usd: 1.2,
            budget_usd: 5,
            warnings: [{ threshold_percent: 50, spent_usd: 2.5, budget_usd: 5 }],
          },
        };
      return undefined;
    };
    renderApp();
    await screen.findByTestId("conv-row-conv_a");
    fireEvent.click(screen.getByTestId("btn-generate-all"));
    expect(await screen.findByTestId("estimate-count")).toHaveTextContent("40");
    fireEvent.click(screen.getByTestId("btn-start-generation"));
    expect(await screen.findByTestId("over-budget")).toHaveTextContent("exceeds the remaining budget");
    fireEvent.click(screen.getByTestId("btn-start-anyway"));
    const tracker = await screen.findByTestId("progress-tracker");
    await waitFor(() => expect(within(tracker).getByTestId("progress-count")).toHaveTextContent("10 of 40"));
    expect(within(tracker).getByTestId("progress-bar")).toHaveAttribute("aria-valuenow", "25");
    expect(within(tracker).getByTestId("progress-current")).toHaveTextContent("Retiree");
    expect(within(tracker).getByTestId("progress-warning")).toHaveTextContent("50%");
    expect(localStorage.getItem("brightrun.job.ds_1")).toBe("job_9");
    const starts = calls.filter((c) => c.url.pathname === "/api/conversations/generate-all").map((c) => c.body);
    expect(starts).toEqual([
      { dataset_id: "ds_1", only: "not_generated", confirm: false },
      { dataset_id: "ds_1", only: "not_generated", confirm: true },
    ]);
  });

  it("shows the estimate's range and what it was built from", async () => {
    const bodies: unknown[] = [];
    extra = (url, init) => {
      if (url.pathname === "/api/conversations/estimate") {
        const b = JSON.parse(String(init.body)) as { mode?: string };
        bodies.push(b);
        const economy = b.mode === "economy";
        return {
          body: {
            count: 50,
            estimated_cost_usd: economy ? 0.31 : 0.62,
            estimated_cost_low_usd: economy ? 0.28 : 0.55,
            estimated_cost_high_usd: economy ? 0.34 : 0.69,
            estimated_seconds: economy ? 30 : 6,
            estimated_seconds_low: economy ? 30 : 4.5,
            estimated_seconds_high: economy ? 120 : 9,
            over_budget: false,
            may_exceed_budget: true,
            budget_usd: 5,
            budget_remaining_usd: 0.65,
            basis: "observed mean of 10 generated conversations of this dataset",
            basis_scope: "dataset",
            time_basis: economy ? "1 batch, polled every 30 s" : "0.3 s per call observed, 10 at a time",
          },
        };
      }
      return undefined;
    };
    renderApp();
    await screen.findByTestId("conv-row-conv_a");
    fireEvent.click(screen.getByTestId("btn-generate-all"));
    expect(await screen.findByTestId("estimate-range")).toHaveTextContent("$0.55 – $0.69");
    expect(screen.getByTestId("estimate-basis")).toHaveTextContent("observed mean of 10 generated conversations of this dataset");
    expect(screen.getByTestId("estimate-time")).toHaveTextContent("6s (5s – 9s)");
    expect(screen.getByTestId("estimate-may-exceed")).toBeInTheDocument();
    fireEvent.click(screen.getByTestId("economy-mode"));
    await waitFor(() => expect(screen.getByTestId("estimate-range")).toHaveTextContent("$0.28 – $0.34"));
    expect(screen.getByTestId("estimate-basis")).toHaveTextContent("polled every 30 s");
    expect(screen.getByTestId("estimate-time")).toHaveTextContent("30s (30s – 2m 0s)");
    expect(bodies).toEqual([
      { dataset_id: "ds_1", only: "not_generated" },
      { dataset_id: "ds_1", only: "not_generated", mode: "economy" },
    ]);
  });

  it("shows an empty state with the next step when nothing is planned", async () => {
    extra = (url) => (url.pathname === "/api/conversations" ? { body: { items: [], total: 0, page: 1, page_size: 25, next_cursor: null } } : undefined);
    renderApp();
    expect(await screen.findByTestId("empty-dataset")).toHaveTextContent("Plan conversations");
  });

  it("welcomes a new user with no dataset and loads the sample", async () => {
    let sampled = false;
    extra = (url, init) => {
      if (url.pathname === "/api/datasets") return { body: { items: sampled ? [DATASET] : [], total: sampled ? 1 : 0 } };
      if (url.pathname === "/api/datasets/sample" && init.method === "POST") {
        sampled = true;
        return { status: 201, body: DATASET };
      }
      return undefined;
    };
    renderApp("");
    expect(await screen.findByTestId("empty-no-dataset")).toBeInTheDocument();
    fireEvent.click(screen.getByTestId("btn-load-sample"));
    expect(await screen.findByTestId("conv-row-conv_a")).toBeInTheDocument();
    expect(new URLSearchParams(window.location.search).get("dataset_id")).toBe("ds_1");
    expect(await screen.findByText("Sample dataset “Sample” loaded.")).toBeInTheDocument();
  });

  it("shows an API error's message in an error toast", async () => {
    extra = (_url, init) =>
      init.method === "PATCH"
        ? { status: 422, body: { error: { code: "unprocessable", message: "Only generated conversations can be reviewed", details: {} } } }
        : undefined;
    renderApp("?dataset_id=ds_1&conv=conv_a");
    await screen.findByTestId("turn-1");
    fireEvent.click(screen.getByTestId("btn-reject"));
    const toast = await screen.findByTestId("toast");
    expect(toast).toHaveAttribute("data-kind", "error");
    expect(toast).toHaveTextContent("Only generated conversations can be reviewed");
  });

  it("shows the API error message when a call fails", async () => {
    extra = (url) =>
      url.pathname === "/api/conversations" ? { status: 429, body: { error: { code: "rate_limited", message: "Slow down please", details: {} } } } : undefined;
    renderApp();
    expect(await screen.findByTestId("table-error")).toHaveTextContent("Slow down please");
  });
});
