/** Review and data screens: a conversation's earlier versions in the review panel, the
 * trash (restore), and archiving / deleting a dataset with its consequences stated. */
import { fireEvent, render, screen, waitFor, within } from "@testing-library/react";
import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import { App } from "./App";
import { ToastProvider } from "./components/Toasts";

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
  archived: false,
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
  version: 3,
  turn_count: 2,
};

const DETAIL = {
  ...ROW,
  generated_at: "2025-01-03T10:00:00Z",
  generation_number: 2,
  turns: [
    { turn_number: 1, role: "user", content: "The new question" },
    { turn_number: 2, role: "assistant", content: "The new answer" },
  ],
  audit: [],
  previous_id: null,
  next_id: null,
  versions: {
    count: 2,
    current: 2,
    earlier: [{ number: 1, quality_score: 6.1, generated_at: "2025-01-02T11:00:00Z", superseded_at: "2025-01-03T10:00:00Z", model: "claude-sonnet-4-6" }],
  },
};

const OLD_VERSION = {
  number: 1,
  current: false,
  quality_score: 6.1,
  superseded_at: "2025-01-03T10:00:00Z",
  turns: [
    { turn_number: 1, role: "user", content: "The old question" },
    { turn_number: 2, role: "assistant", content: "The old answer" },
  ],
};

type Reply = { status?: number; body: unknown } | undefined;
let datasets: Record<string, unknown>[] = [];
let calls: { method: string; url: URL; body: unknown }[] = [];
let deleteReplies: Reply[] = [];
let trash: Record<string, unknown>[] = [];

function reply(status: number, body: unknown) {
  return new Response(JSON.stringify(body), { status, headers: { "Content-Type": "application/json" } });
}

function route(method: string, url: URL): Reply {
  const p = url.pathname;
  if (p === "/api/health") return { body: { status: "ok", llm: "simulator" } };
  if (p === "/api/datasets") {
    const all = url.searchParams.get("include_archived") === "true";
    const items = all ? datasets : datasets.filter((d) => !d["archived"]);
    return { body: { items, total: items.length } };
  }
  if (p === "/api/datasets/ds_1" && method === "DELETE") return deleteReplies.shift();
  if (p === "/api/datasets/ds_1") return { body: datasets[0] };
  if (p === "/api/datasets/ds_1/archive") {
    datasets[0] = { ...datasets[0], archived: true, archived_at: "2025-02-01T00:00:00Z" };
    return { body: datasets[0] };
  }
  if (p === "/api/datasets/ds_1/unarchive") {
    datasets[0] = { ...datasets[0], archived: false, archived_at: null };
    return { body: datasets[0] };
  }
  if (p === "/api/jobs") return { body: { items: [] } };
  if (p === "/api/conversations") return { body: { items: [ROW], total: 1, page: 1, page_size: 25, next_cursor: null } };
  if (p === "/api/conversations/coverage-analysis") return { body: { total: 1, dimensions: {}, pairs: {}, tiers: [], gaps: {} } };
  if (p === "/api/conversations/conv_a") return { body: DETAIL };
  if (p === "/api/conversations/conv_a/versions/1") return { body: OLD_VERSION };
  if (p === "/api/conversations/trash") return { body: { items: trash, total: trash.length, retention_days: 30 } };
  if (p === "/api/conversations/bulk-action") {
    const ids = trash.map((t) => t["conversation_id"]);
    trash = [];
    return { body: { action: "restore", succeeded: ids, failed: [] } };
  }
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

beforeEach(() => {
  datasets = [{ ...DATASET }];
  calls = [];
  deleteReplies = [];
  trash = [];
  localStorage.clear();
  vi.stubGlobal(
    "fetch",
    vi.fn(async (input: string, init?: RequestInit) => {
      const url = new URL(input, "http://localhost");
      const method = init?.method ?? "GET";
      calls.push({ method, url, body: init?.body ? JSON.parse(String(init.body)) : null });
      const r = route(method, url);
      return r ? reply(r.status ?? 200, r.body) : reply(404, { error: { code: "not_found", message: url.pathname, details: {} } });
    }),
  );
});

afterEach(() => {
  vi.unstubAllGlobals();
});

const made = (method: string, path: string) => calls.filter((c) => c.method === method && c.url.pathname === path);

describe("review panel versions", () => {
  it("lists the versions and shows an earlier version's turns", async () => {
    renderApp("?dataset_id=ds_1&conv=conv_a");
    const versions = await screen.findByTestId("panel-versions");
    expect(within(versions).getByTestId("version-2")).toHaveTextContent("current");
    expect(within(versions).getByTestId("version-1")).toBeInTheDocument();
    expect(screen.getByTestId("turns")).toHaveTextContent("The new answer");

    fireEvent.click(within(versions).getByTestId("version-1"));
    await waitFor(() => expect(screen.getByTestId("turns")).toHaveTextContent("The old answer"));
    expect(screen.getByTestId("turns")).not.toHaveTextContent("The new answer");
    expect(screen.getByTestId("version-banner")).toHaveTextContent("version 1");
    expect(made("GET", "/api/conversations/conv_a/versions/1")).toHaveLength(1);

    fireEvent.click(screen.getByTestId("btn-version-current"));
    await waitFor(() => expect(screen.getByTestId("turns")).toHaveTextContent("The new answer"));
    expect(screen.queryByTestId("version-banner")).not.toBeInTheDocument();
  });

  it("shows no versions section for a conversation generated once", async () => {
    const once = { ...DETAIL, versions: { count: 1, current: 1, earlier: [] } };
    const original = DETAIL.versions;
    Object.assign(DETAIL, once);
    try {
      renderApp("?dataset_id=ds_1&conv=conv_a");
      await screen.findByTestId("turns");
      expect(screen.queryByTestId("panel-versions")).not.toBeInTheDocument();
    } finally {
      DETAIL.versions = original;
    }
  });
});

describe("trash", () => {
  it("lists deleted conversations and restores them", async () => {
    trash = [{ ...ROW, conversation_id: "conv_t", title: "Deleted one", trashed_at: "2025-02-01T00:00:00Z", trashed_by: "owner@x", purge_at: "2025-03-03T00:00:00Z", days_left: 29 }];
    renderApp("?dataset_id=ds_1");
    fireEvent.click(await screen.findByTestId("btn-open-trash"));
    const dialog = await screen.findByTestId("trash-dialog");
    const row = await within(dialog).findByTestId("trash-row-conv_t");
    expect(row).toHaveTextContent("Deleted one");
    expect(row).toHaveTextContent("29 days left");
    fireEvent.click(within(row).getByTestId("btn-restore-conv_t"));
    await within(dialog).findByTestId("trash-empty");
    const [restore] = made("POST", "/api/conversations/bulk-action");
    expect(restore?.body).toEqual({ action: "restore", ids: ["conv_t"] });
  });

  it("bulk delete asks first, says the trash keeps them 30 days, and sends confirm", async () => {
    renderApp("?dataset_id=ds_1");
    fireEvent.click(await screen.findByTestId("row-check-conv_a"));
    fireEvent.click(screen.getByTestId("btn-bulk-delete"));
    const dialog = await screen.findByTestId("confirm-dialog");
    expect(dialog).toHaveTextContent("trash");
    expect(dialog).toHaveTextContent("30 days");
    fireEvent.click(within(dialog).getByTestId("btn-confirm"));
    // the preview that counted for the dialog, then the delete itself
    await waitFor(() => expect(made("POST", "/api/conversations/bulk-action")).toHaveLength(2));
    expect(made("POST", "/api/conversations/bulk-action")[0]?.body).toMatchObject({ action: "delete", ids: ["conv_a"], preview: true });
    expect(made("POST", "/api/conversations/bulk-action")[1]?.body).toMatchObject({ action: "delete", ids: ["conv_a"], confirm: true });
  });
});

describe("dataset archive and delete", () => {
  it("archives after a confirmation that states what archiving means", async () => {
    renderApp("?view=datasets&dataset_id=ds_1");
    fireEvent.click(await screen.findByTestId("btn-archive-dataset-ds_1"));
    const dialog = await screen.findByTestId("confirm-dialog");
    expect(dialog).toHaveTextContent("read-only");
    expect(dialog).toHaveTextContent("exported");
    fireEvent.click(within(dialog).getByTestId("btn-confirm"));
    await waitFor(() => expect(made("POST", "/api/datasets/ds_1/archive")).toHaveLength(1));
    await screen.findByTestId("dataset-archived-banner");
    expect(screen.queryByTestId("dataset-setup")).not.toBeInTheDocument();
    // Hidden from the list unless archived ones are shown; then it can be unarchived.
    await waitFor(() => expect(screen.queryByTestId("dataset-row-ds_1")).not.toBeInTheDocument());
    fireEvent.click(screen.getByTestId("toggle-show-archived"));
    await screen.findByTestId("archived-ds_1");
    expect(screen.getByTestId("btn-archive-dataset-ds_1")).toHaveTextContent("Unarchive");
  });

  it("deletes only after a confirmation that lists the consequences, until the purge is done", async () => {
    deleteReplies = [
      { status: 202, body: { dataset_id: "ds_1", deleted: false, status: "deleting", removed: { conversations: 100 }, exports_kept: true } },
      { status: 200, body: { dataset_id: "ds_1", deleted: true, status: "deleted", removed: { conversations: 20 }, exports_kept: true } },
    ];
    renderApp("?view=datasets&dataset_id=ds_1");
    fireEvent.click(await screen.findByTestId("btn-delete-dataset-ds_1"));
    const dialog = await screen.findByTestId("confirm-dialog");
    const text = within(dialog).getByTestId("dataset-action-consequences").textContent ?? "";
    for (const consequence of ["for good", "conversations", "trash", "versions", "jobs", "chunks", "Exports you already made are kept", "cannot be undone"])
      expect(text).toContain(consequence);
    fireEvent.click(within(dialog).getByTestId("btn-cancel"));
    expect(made("DELETE", "/api/datasets/ds_1")).toHaveLength(0);

    fireEvent.click(screen.getByTestId("btn-delete-dataset-ds_1"));
    fireEvent.click(within(await screen.findByTestId("confirm-dialog")).getByTestId("btn-confirm"));
    await waitFor(() => expect(made("DELETE", "/api/datasets/ds_1")).toHaveLength(2));
  });
});
