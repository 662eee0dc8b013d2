/** Quality triage: the score histogram, the needs-attention sort, reasons in the table
 * and at the top of the review panel, highlighted turns, the judge's verdict, the
 * diversity and calibration views, the dataset's quality rules and the estimate's judge
 * share. */
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
    personas: [{ name: "Anxious Investor" }, { name: "Retiree" }],
    emotions: [{ name: "Fear" }],
    topics: [{ name: "Fees" }, { name: "Taxes" }],
    intents: [{ name: "Reassure" }],
    tones: [{ name: "Warm" }],
  },
  chunk_count: 0,
  created_at: "2025-01-01T00:00:00Z",
  version: 4,
  archived: false,
  judge_mode: "auto",
  quality_rules: {
    banned_phrases: ["guaranteed returns"],
    required_disclaimers: [{ text: "Past performance does not guarantee future results.", topics: ["Fees"] }],
    brand_terms: [{ term: "Harbor & Pine", wrong: ["Harbour and Pine"] }],
  },
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
    quality_score: 9.2,
    flagged: false,
    quality_reasons: [],
    actual_cost_usd: 0.0123,
    estimated_cost_usd: 0.01,
    created_at: "2025-01-02T10:00:00Z",
    version: 1,
    turn_count: 4,
    ...over,
  };
}

const BAD_REASONS = [
  "turn 3: the assistant refuses or speaks as an AI model (\"as an AI language model\")",
  "turn 4: the assistant makes a promise of a guaranteed return",
  "the required disclaimer is missing",
];
const ROWS = [row("conv_bad", { quality_score: 3, flagged: true, quality_reasons: BAD_REASONS }), row("conv_ok")];

const CHECKS = [
  { name: "turn_count", passed: true, score: 1, weight: 2, detail: "4 turns", kind: "structure", severity: null, reasons: [], turns: [] },
  { name: "regulated_claims", passed: false, score: 0, weight: 0, detail: "", kind: "content", severity: "major", reasons: [BAD_REASONS[1]], turns: [4] },
  { name: "ai_refusal", passed: false, score: 0, weight: 0, detail: "", kind: "content", severity: "critical", reasons: [BAD_REASONS[0]], turns: [3] },
  { name: "ending", passed: true, score: 1, weight: 0, detail: "ends on a complete, closing turn", kind: "content", severity: null, reasons: [], turns: [] },
];

const JUDGE = {
  dimensions: {
    persona_fidelity: { score: 8, reason: "Reads as an anxious investor." },
    emotional_realism: { score: 7, reason: "The fear is shown." },
    helpfulness: { score: 4, reason: "Refuses to help." },
    faithfulness: { score: 9, reason: "No facts beyond the excerpt." },
    brand_safety: { score: 2, reason: "Promises a guaranteed return." },
  },
  overall: 6,
  summary: "Simulated verdict (offline simulator): shown for the demo, not a review.",
  model: "claude-haiku-4-5",
  simulated: true,
  cached: false,
  cost_usd: 0.0024,
  error: null,
};

let judge: Record<string, unknown> | null = JUDGE;

function detail(id: string) {
  const base = ROWS.find((r) => r.conversation_id === id)!;
  const bad = id === "conv_bad";
  return {
    ...base,
    turns: [
      { turn_number: 1, role: "user", content: "Are my fees too high?" },
      { turn_number: 2, role: "assistant", content: "Let's look at them together." },
      { turn_number: 3, role: "user", content: "Can you help?" },
      { turn_number: 4, role: "assistant", content: "As an AI language model I cannot. But returns are guaranteed." },
    ],
    quality: bad
      ? { score: 3, flagged: true, checks: CHECKS, reasons: BAD_REASONS, flag_turns: [3, 4], heuristic_score: 9.1, judge }
      : { score: 9.2, flagged: false, checks: [CHECKS[0]], reasons: [], flag_turns: [], judge: null },
    audit: [],
    previous_id: null,
    next_id: null,
  };
}

const STATS = {
  count: 12,
  scored: 10,
  mean: 7.4,
  histogram: { "1": 0, "2": 1, "3": 2, "4": 0, "5": 1, "6": 0, "7": 1, "8": 2, "9": 2, "10": 1 },
  flagged: 4,
};

const DIVERSITY = {
  dataset_id: "ds_1",
  conversation_count: 10,
  diversity_score: 61.5,
  distinct: { user: { distinct_1: 0.1, distinct_2: 0.3, distinct_3: 0.4 }, assistant: { distinct_2: 0.2 }, all: { distinct_1: 0.05, distinct_2: 0.25, distinct_3: 0.3 }, per_conversation: { distinct_2: 0.9 } },
  openers: {
    user: [{ text: "Hello, thank you for taking my", count: 4, share: 0.4, conversation_ids: ["conv_bad", "conv_ok", "conv_x", "conv_y"] }],
    assistant: [],
  },
  phrases: {
    user: [],
    assistant: [
      { text: "keep copies of everything", count: 3, share: 0.3, conversation_ids: ["conv_ok", "conv_x", "conv_y"] },
      { text: "it saves a lot of stress", count: 3, share: 0.3, conversation_ids: ["conv_ok", "conv_x", "conv_y"] },
    ],
  },
  near_duplicate_clusters: [{ conversation_ids: ["conv_x", "conv_y"], size: 2, max_similarity: 0.93 }],
  near_duplicate_count: 1,
  cells: [{ persona: "Retiree", topic: "Taxes", count: 2, distinct_2: 0.61, near_duplicates: 2, shared_openers: 2, conversation_ids: ["conv_x", "conv_y"] }],
  offenders: [{ conversation_id: "conv_x", reasons: ["in a cluster of 2 near-duplicates"], weight: 5 }],
  thresholds: { min_conversations: 3 },
  computed_at: "2025-01-03T10:00:00Z",
  seconds: 0.2,
};

const BANDS = [
  { band: "1-4", min: 1, max: 4, reviewed: 10, approved: 1, rejected: 9, approval_rate: 0.1 },
  { band: "9-10", min: 9, max: 10, reviewed: 25, approved: 24, rejected: 1, approval_rate: 0.96 },
];
const LINE = { threshold: 6, flagged: 12, rejections_caught: 9, recall: 0.9, precision: 0.75, approved_flagged: 3, false_flag_rate: 0.12 };
const CALIBRATION_EARLY = {
  dataset_id: "ds_1",
  decisions: 12,
  approved: 8,
  rejected: 4,
  bands: BANDS,
  checks: [],
  current: LINE,
  suggested: null,
  min_decisions: 30,
  note: "a suggested threshold needs 30 review decisions; this dataset has 12",
};
const CALIBRATION_READY = {
  ...CALIBRATION_EARLY,
  decisions: 35,
  approved: 25,
  rejected: 10,
  checks: [{ check: "ai_refusal", flagged: 5, rejected: 4, precision: 0.8 }],
  suggested: { ...LINE, threshold: 6.55, recall: 1, precision: 0.8 },
  note: null,
};

type Reply = { status?: number; body: unknown };
let calibration: Record<string, unknown> = CALIBRATION_EARLY;
let calls: { method: string; url: URL; body: unknown }[] = [];
let override: ((method: string, url: URL) => Reply | undefined) | null = null;

function reply(status: number, body: unknown) {
  return new Response(JSON.stringify(body), { status, headers: { "Content-Type": "application/json" } });
}

function route(method: string, url: URL): Reply | undefined {
  const p = url.pathname;
  if (p === "/api/health") return { body: { status: "ok", llm: "simulator" } };
  if (p === "/api/datasets") return { body: { items: [DATASET], total: 1 } };
  if (p === "/api/datasets/ds_1") return { body: DATASET };
  if (p === "/api/jobs") return { body: { items: [] } };
  if (p === "/api/conversations") return { body: { items: ROWS, total: ROWS.length, page: 1, page_size: 25 } };
  if (p === "/api/conversations/quality-stats") return { body: STATS };
  if (p === "/api/conversations/diversity") return { body: DIVERSITY };
  if (p === "/api/conversations/calibration") return { body: calibration };
  if (p === "/api/conversations/coverage-analysis") return { body: { pairs: {}, tiers: [], gaps: {} } };
  const m = /^\/api\/conversations\/(conv_\w+)(\/validate)?$/.exec(p);
  if (m && m[2] && method === "POST") return { body: detail(m[1]!) };
  if (m && method === "GET") return { body: detail(m[1]!) };
  return undefined;
}

beforeEach(() => {
  calls = [];
  override = null;
  judge = JUDGE;
  calibration = CALIBRATION_EARLY;
  vi.stubGlobal(
    "fetch",
    vi.fn(async (input: string, init?: RequestInit) => {
      const url = new URL(input, "http://localhost");
      const method = init?.method ?? "GET";
      calls.push({ method, url, body: typeof init?.body === "string" ? JSON.parse(init.body) : null });
      const r = override?.(method, url) ?? route(method, url);
      return r ? reply(r.status ?? 200, r.body) : reply(404, { error: { code: "not_found", message: url.pathname, details: {} } });
    }),
  );
});

afterEach(() => {
  vi.unstubAllGlobals();
});

function renderApp(search: string) {
  window.history.replaceState(null, "", `/${search}`);
  return render(
    <ToastProvider>
      <App />
    </ToastProvider>,
  );
}

const param = (key: string) => new URLSearchParams(window.location.search).get(key);
const lists = () => calls.filter((c) => c.url.pathname === "/api/conversations");
// The table's own list calls carry its sort; the status counts behind the toolbar's
// buttons (useStatusCounts) do not.
const tableLists = () => lists().filter((c) => c.url.searchParams.has("sort"));
const lastList = () => tableLists()[tableLists().length - 1];

describe("the dashboard's triage strip", () => {
  it("asks for the dataset's figures only after the table's first page", async () => {
    renderApp("?dataset_id=ds_1");
    await screen.findByTestId("quality-histogram");
    const first = (path: string) => calls.findIndex((c) => c.url.pathname === path);
    // diversity is asked once the stats show scored conversations
    await waitFor(() => expect(first("/api/conversations/diversity")).toBeGreaterThanOrEqual(0));
    expect(first("/api/conversations")).toBeGreaterThanOrEqual(0);
    for (const path of ["/api/conversations/quality-stats", "/api/conversations/calibration", "/api/conversations/diversity"])
      expect(first(path)).toBeGreaterThan(first("/api/conversations"));
    expect(calls.find((c) => c.url.pathname === "/api/conversations/quality-stats")?.url.searchParams.get("dataset_id")).toBe("ds_1");
  });

  it("draws a bar per score bucket, flagged ones red, and a bar filters the table to its range", async () => {
    renderApp("?dataset_id=ds_1");
    const histogram = await screen.findByTestId("quality-histogram");
    const bars = within(histogram).getAllByRole("button");
    expect(bars).toHaveLength(10);
    expect(screen.getByTestId("histogram-bar-3")).toHaveAttribute("data-count", "2");
    expect(screen.getByTestId("histogram-bar-5")).toHaveAttribute("data-flagged", "true");
    expect(screen.getByTestId("histogram-bar-6")).toHaveAttribute("data-flagged", "false");
    expect(screen.getByTestId("histogram-bar-3")).toHaveAccessibleName(/scores 3 to 3\.9: 2 conversations \(flagged\)/);
    expect(screen.getByTestId("flagged-count")).toHaveTextContent("4");

    fireEvent.click(screen.getByTestId("histogram-bar-3"));
    expect(param("quality_min")).toBe("3");
    expect(param("quality_max")).toBe("3.99");
    await waitFor(() => expect(lastList()?.url.searchParams.get("quality_max")).toBe("3.99"));
    expect(lastList()?.url.searchParams.get("quality_min")).toBe("3");
    await waitFor(() => expect(screen.getByTestId("histogram-bar-3")).toHaveAttribute("aria-pressed", "true"));
    expect(screen.getByTestId("filter-badge-quality_max")).toBeInTheDocument();

    // The active bar again shows every score.
    fireEvent.click(screen.getByTestId("histogram-bar-3"));
    expect(param("quality_min")).toBeNull();
    expect(param("quality_max")).toBeNull();
  });

  it("suggests the needs-attention sort while conversations are flagged, and keeps it in the URL", async () => {
    renderApp("?dataset_id=ds_1");
    const button = await screen.findByTestId("btn-sort-attention");
    expect(button).toHaveClass("suggest");
    expect(button).toHaveAttribute("aria-pressed", "false");
    fireEvent.click(button);
    expect(param("sort")).toBe("attention");
    expect(param("order")).toBe("asc");
    await waitFor(() => expect(lastList()?.url.searchParams.get("sort")).toBe("attention"));
    expect(lastList()?.url.searchParams.get("order")).toBe("asc");
    await waitFor(() => expect(screen.getByTestId("btn-sort-attention")).toHaveAttribute("aria-pressed", "true"));
    // pressed again: back to the default order
    fireEvent.click(screen.getByTestId("btn-sort-attention"));
    expect(param("sort")).toBeNull();

    fireEvent.click(screen.getByTestId("btn-show-flagged"));
    expect(param("flagged")).toBe("true");
  });

  it("shows the first reason beside the score and every reason on hover", async () => {
    renderApp("?dataset_id=ds_1");
    const reasons = await screen.findByTestId("quality-reasons-conv_bad");
    expect(reasons).toHaveTextContent(BAD_REASONS[0]!);
    expect(reasons).toHaveTextContent("+2");
    expect(reasons.getAttribute("title")).toBe(BAD_REASONS.join("\n"));
    expect(screen.getByTestId("quality-conv_bad")).toHaveAttribute("data-band", "red");
    expect(screen.queryByTestId("quality-reasons-conv_ok")).not.toBeInTheDocument();
  });

  it("shows nothing to triage before any conversation is scored", async () => {
    override = (_m, url) => (url.pathname === "/api/conversations/quality-stats" ? { body: { ...STATS, scored: 0, flagged: 0 } } : undefined);
    renderApp("?dataset_id=ds_1");
    await screen.findByTestId("conv-row-conv_ok");
    await waitFor(() => expect(calls.some((c) => c.url.pathname === "/api/conversations/quality-stats")).toBe(true));
    expect(screen.queryByTestId("quality-summary")).not.toBeInTheDocument();
    expect(calls.some((c) => c.url.pathname === "/api/conversations/diversity")).toBe(false);
  });
});

describe("the review panel", () => {
  it("puts the reasons above the turns, links them to the turns and highlights the offending turns", async () => {
    renderApp("?dataset_id=ds_1&conv=conv_bad");
    const reasons = await screen.findByTestId("panel-reasons");
    const turns = screen.getByTestId("turns");
    expect(reasons.compareDocumentPosition(turns) & Node.DOCUMENT_POSITION_FOLLOWING).toBeTruthy();
    expect(reasons).toHaveTextContent("Flagged");
    expect(within(reasons).getAllByRole("listitem")).toHaveLength(3);
    expect(within(reasons).getByTestId("panel-reason-2")).toHaveTextContent("the required disclaimer is missing");

    expect(screen.getByTestId("turn-3")).toHaveAttribute("data-flagged", "true");
    expect(screen.getByTestId("turn-3")).toHaveClass("turn-flagged");
    expect(screen.getByTestId("turn-4")).toHaveAttribute("data-flagged", "true");
    expect(screen.getByTestId("turn-1")).not.toHaveAttribute("data-flagged");
    expect(screen.getByTestId("turn-reasons-4")).toHaveTextContent("guaranteed return");

    fireEvent.click(within(reasons).getByTestId("reason-turn-4"));
    await waitFor(() => expect(document.activeElement).toBe(screen.getByTestId("turn-4")));
  });

  it("lists failed checks first, worst severity first", async () => {
    renderApp("?dataset_id=ds_1&conv=conv_bad");
    const checks = await screen.findByTestId("quality-checks");
    const failed = within(checks).getByTestId("checks-failed");
    const names = within(failed)
      .getAllByRole("listitem")
      .map((li) => li.getAttribute("data-testid"))
      .filter((t): t is string => Boolean(t));
    expect(names).toEqual(["check-ai_refusal", "check-regulated_claims"]);
    expect(within(failed).getByTestId("check-ai_refusal")).toHaveTextContent("critical");
    expect(within(failed).getByTestId("check-ai_refusal")).toHaveTextContent("as an AI language model");
    expect(within(checks).getByTestId("checks-passed")).toHaveTextContent("Number of turns");
  });

  it("shows the judge's five dimensions and says plainly when they are simulated", async () => {
    renderApp("?dataset_id=ds_1&conv=conv_bad");
    const panel = await screen.findByTestId("panel-judge");
    expect(within(panel).getByTestId("judge-simulated")).toHaveTextContent(
      "Simulated judge (offline simulator): shown for the demo, not counted in the score",
    );
    for (const dim of ["persona_fidelity", "emotional_realism", "helpfulness", "faithfulness", "brand_safety"])
      expect(within(panel).getByTestId(`judge-dim-${dim}`)).toBeInTheDocument();
    expect(within(panel).getByTestId("judge-dim-brand_safety")).toHaveTextContent("Promises a guaranteed return.");
    expect(within(panel).getByTestId("judge-dim-brand_safety")).toHaveTextContent("Brand safety 2");
    expect(within(panel).getByTestId("judge-overall")).toHaveTextContent("6.0");
    expect(panel).toHaveTextContent("not counted");
    expect(within(panel).queryByTestId("judge-error")).not.toBeInTheDocument();
  });

  it("shows a judge that could not answer as an error, and a real verdict as counted", async () => {
    judge = { ...JUDGE, simulated: false, error: "the judge's answer could not be read", overall: null, dimensions: {} };
    renderApp("?dataset_id=ds_1&conv=conv_bad");
    const panel = await screen.findByTestId("panel-judge");
    expect(within(panel).getByTestId("judge-error")).toHaveTextContent("the judge's answer could not be read");
    expect(within(panel).queryByTestId("judge-simulated")).not.toBeInTheDocument();
  });

  it("counts a real verdict", async () => {
    judge = { ...JUDGE, simulated: false };
    renderApp("?dataset_id=ds_1&conv=conv_bad");
    const panel = await screen.findByTestId("panel-judge");
    expect(panel).toHaveTextContent("counted in the score");
    expect(within(panel).queryByTestId("judge-simulated")).not.toBeInTheDocument();
  });

  it("validates with and without the judge", async () => {
    renderApp("?dataset_id=ds_1&conv=conv_bad");
    fireEvent.click(await screen.findByTestId("btn-validate"));
    await waitFor(() => expect(calls.filter((c) => c.url.pathname.endsWith("/validate"))).toHaveLength(1));
    await waitFor(() => expect(screen.getByTestId("btn-validate-judge")).not.toBeDisabled());
    fireEvent.click(screen.getByTestId("btn-validate-judge"));
    await waitFor(() => expect(calls.filter((c) => c.url.pathname.endsWith("/validate"))).toHaveLength(2));
    const [plain, judged] = calls.filter((c) => c.url.pathname === "/api/conversations/conv_bad/validate");
    expect(plain?.body).toEqual({});
    expect(judged?.body).toEqual({ judge: true });
  });

  it("says when the judge is off and shows no reasons for a clean conversation", async () => {
    override = (_m, url) => (url.pathname === "/api/datasets/ds_1" ? { body: { ...DATASET, judge_mode: "off" } } : undefined);
    renderApp("?dataset_id=ds_1&conv=conv_ok");
    await screen.findByTestId("turn-1");
    expect(screen.queryByTestId("panel-reasons")).not.toBeInTheDocument();
    expect(screen.queryByTestId("turn-3")).not.toHaveAttribute("data-flagged");
    await waitFor(() => expect(screen.getByTestId("judge-none")).toHaveTextContent("off for this dataset"));
  });
});

describe("the diversity view", () => {
  it("summarises the dataset on its card and opens the view", async () => {
    renderApp("?dataset_id=ds_1");
    const card = await screen.findByTestId("diversity-card");
    await waitFor(() => expect(within(card).getByTestId("diversity-score")).toHaveTextContent("62/100"));
    expect(within(card).getByTestId("diversity-distinct2")).toHaveTextContent("0.25");
    expect(within(card).getByTestId("diversity-openers-count")).toHaveTextContent("1 repeated opener");
    expect(within(card).getByTestId("diversity-phrases-count")).toHaveTextContent("2 repeated phrases");
    expect(within(card).getByTestId("diversity-clusters-count")).toHaveTextContent("1 near-duplicate cluster");

    fireEvent.click(within(card).getByTestId("btn-open-diversity"));
    expect(param("insight")).toBe("diversity");
    const view = await screen.findByTestId("diversity-view");
    expect(within(view).getByTestId("opener-user-0")).toHaveTextContent("Hello, thank you for taking my");
    expect(within(view).getByTestId("opener-user-0")).toHaveTextContent("4 conversations");
    expect(within(view).getByTestId("cluster-0")).toHaveTextContent("2 conversations");
    expect(within(view).getByTestId("diversity-cell-0")).toHaveTextContent("Retiree");
    // the table is hidden, not gone
    expect(screen.getByTestId("conversation-table").closest("[hidden]")).not.toBeNull();
  });

  it("opens an offending conversation in the review panel and keeps the view", async () => {
    renderApp("?dataset_id=ds_1&insight=diversity");
    const view = await screen.findByTestId("diversity-view");
    fireEvent.click(within(within(view).getByTestId("cluster-0")).getByTestId("open-conv-conv_x"));
    expect(param("conv")).toBe("conv_x");
    expect(param("insight")).toBe("diversity");
    await waitFor(() => expect(calls.some((c) => c.url.pathname === "/api/conversations/conv_x")).toBe(true));
    expect(screen.getByTestId("review-panel")).toBeInTheDocument();
  });

  it("filters the table to a phrase (as a phrase search) and to a persona x topic cell", async () => {
    renderApp("?dataset_id=ds_1&insight=diversity&status=approved");
    const view = await screen.findByTestId("diversity-view");
    fireEvent.click(within(view).getByTestId("btn-filter-phrase-assistant-1"));
    expect(param("q")).toBe('"it saves a lot of stress"');
    expect(param("insight")).toBeNull();
    expect(param("status")).toBeNull();
    await waitFor(() => expect(lastList()?.url.searchParams.get("q")).toBe('"it saves a lot of stress"'));

    fireEvent.click(screen.getByTestId("btn-open-diversity"));
    fireEvent.click(within(await screen.findByTestId("diversity-view")).getByTestId("btn-filter-cell-0"));
    const sp = new URLSearchParams(window.location.search);
    expect(sp.getAll("persona")).toEqual(["Retiree"]);
    expect(sp.getAll("topic")).toEqual(["Taxes"]);
    expect(sp.get("q")).toBeNull();
  });
});

describe("the calibration view", () => {
  it("shows the approval per band and says how many decisions a suggestion needs", async () => {
    renderApp("?dataset_id=ds_1&insight=calibration");
    const view = await screen.findByTestId("calibration-view");
    expect(within(view).getByTestId("band-1-4")).toHaveTextContent("10%");
    expect(within(view).getByTestId("band-9-10")).toHaveTextContent("96%");
    expect(within(view).getByTestId("calibration-current-recall")).toHaveTextContent("90%");
    expect(within(view).getByTestId("calibration-current-precision")).toHaveTextContent("75%");
    expect(within(view).getByTestId("calibration-note")).toHaveTextContent("needs 30 review decisions");
    expect(within(view).queryByTestId("calibration-suggested")).not.toBeInTheDocument();
    expect(screen.getByTestId("calibration-card")).toHaveTextContent("18 more decisions");
  });

  it("suggests a flag line once 30 decisions exist, with each check's precision", async () => {
    calibration = CALIBRATION_READY;
    renderApp("?dataset_id=ds_1&insight=calibration");
    const view = await screen.findByTestId("calibration-view");
    expect(within(view).getByTestId("calibration-suggested")).toHaveTextContent("6.55");
    expect(within(view).getByTestId("calibration-suggested-threshold")).toHaveTextContent("6.55");
    expect(within(view).getByTestId("calibration-suggested-recall")).toHaveTextContent("100%");
    expect(within(view).getByTestId("check-precision-ai_refusal")).toHaveTextContent("80%");
    expect(screen.getByTestId("calibration-card-suggested")).toHaveTextContent("6.55");
    fireEvent.click(within(view).getByTestId("btn-filter-suggested"));
    expect(param("quality_max")).toBe("6.54");
    expect(param("insight")).toBeNull();
  });
});

describe("a dataset's quality rules", () => {
  it("edits and saves the rules and the judge mode with the dataset version", async () => {
    override = (method, url) =>
      url.pathname === "/api/datasets/ds_1" && method === "PATCH" ? { body: { ...DATASET, version: 5 } } : undefined;
    renderApp("?view=datasets&dataset_id=ds_1");
    const rules = await screen.findByTestId("quality-rules");
    expect(within(rules).getByTestId("rules-banned")).toHaveValue("guaranteed returns");
    expect(within(rules).getByTestId("disclaimer-text-0")).toHaveValue("Past performance does not guarantee future results.");
    expect(within(rules).getByTestId("brand-wrong-0")).toHaveValue("Harbour and Pine");

    fireEvent.change(within(rules).getByTestId("rules-banned"), { target: { value: "guaranteed returns\n\n  risk-free  \n" } });
    fireEvent.click(within(rules).getByTestId("btn-add-disclaimer"));
    fireEvent.change(within(rules).getByTestId("disclaimer-text-1"), { target: { value: "This is not tax advice." } });
    fireEvent.click(within(rules).getByTestId("disclaimer-topics-1-button"));
    fireEvent.click(within(rules).getByTestId("disclaimer-topics-1-option-Taxes"));
    fireEvent.change(within(rules).getByTestId("brand-wrong-0"), { target: { value: "Harbour and Pine, Harbor Pine" } });
    fireEvent.click(within(rules).getByTestId("btn-add-brand")); // left empty: not sent
    fireEvent.change(within(rules).getByTestId("judge-mode"), { target: { value: "off" } });
    fireEvent.click(within(rules).getByTestId("btn-save-rules"));

    await waitFor(() => expect(calls.some((c) => c.method === "PATCH")).toBe(true));
    expect(calls.find((c) => c.method === "PATCH")?.body).toEqual({
      quality_rules: {
        banned_phrases: ["guaranteed returns", "risk-free"],
        required_disclaimers: [
          { text: "Past performance does not guarantee future results.", topics: ["Fees"] },
          { text: "This is not tax advice.", topics: ["Taxes"] },
        ],
        brand_terms: [{ term: "Harbor & Pine", wrong: ["Harbour and Pine", "Harbor Pine"] }],
      },
      judge_mode: "off",
      version: 4,
    });
    expect(await screen.findByText(/Quality rules saved/)).toBeInTheDocument();
  });

  it("keeps a disclaimer topic the taxonomy no longer has visible, so it can be removed", async () => {
    override = (_m, url) =>
      url.pathname === "/api/datasets/ds_1"
        ? { body: { ...DATASET, quality_rules: { ...DATASET.quality_rules, required_disclaimers: [{ text: "Not tax advice.", topics: ["Old topic"] }] } } }
        : undefined;
    renderApp("?view=datasets&dataset_id=ds_1");
    const rules = await screen.findByTestId("quality-rules");
    fireEvent.click(within(rules).getByTestId("disclaimer-topics-0-button"));
    const stale = within(rules).getByTestId("disclaimer-topics-0-option-Old topic");
    expect(stale).toBeChecked();
    expect(stale.closest("label")).toHaveTextContent("not in the taxonomy");
    expect(within(rules).getByTestId("disclaimer-topics-0-option-Taxes")).not.toBeChecked();
  });

  it("shows the API's validation errors by rule, and nothing is lost", async () => {
    override = (method, url) =>
      url.pathname === "/api/datasets/ds_1" && method === "PATCH"
        ? {
            status: 400,
            body: {
              error: {
                code: "validation_error",
                message: "the request body is not valid",
                details: {
                  errors: [
                    { field: "quality_rules.required_disclaimers.0.text", error: "String should have at least 3 characters", type: "string_too_short" },
                    { field: "quality_rules.brand_terms.1.term", error: "String should have at least 2 characters" },
                    { field: "banned_phrases", error: "Value error, each banned phrase must be 2-300 characters" },
                  ],
                },
              },
            },
          }
        : undefined;
    renderApp("?view=datasets&dataset_id=ds_1");
    const rules = await screen.findByTestId("quality-rules");
    fireEvent.change(within(rules).getByTestId("disclaimer-text-0"), { target: { value: "ok" } });
    fireEvent.click(within(rules).getByTestId("btn-save-rules"));
    const errors = await within(rules).findByTestId("rules-errors");
    expect(errors).toHaveTextContent("the request body is not valid");
    expect(errors).toHaveTextContent("Disclaimer 1, wording: String should have at least 3 characters");
    expect(errors).toHaveTextContent("Brand term 2, spelling: String should have at least 2 characters");
    expect(errors).toHaveTextContent("Banned phrase: each banned phrase must be 2-300 characters");
    expect(within(rules).getByTestId("disclaimer-text-0")).toHaveValue("ok");
  });
});

describe("the generation estimate", () => {
  const ESTIMATE = { count: 10, estimated_cost_usd: 0.5, estimated_seconds: 60, over_budget: false, judge_model: "claude-haiku-4-5" };

  it("shows the judge's share when there is one", async () => {
    override = (_m, url) => (url.pathname === "/api/conversations/estimate" ? { body: { ...ESTIMATE, estimated_judge_cost_usd: 0.024 } } : undefined);
    renderApp("?dataset_id=ds_1");
    fireEvent.click(await screen.findByTestId("btn-generate-all"));
    const judgeShare = await screen.findByTestId("estimate-judge");
    expect(judgeShare).toHaveTextContent("$0.02");
    expect(judgeShare).toHaveTextContent("claude-haiku-4-5");
  });

  it("leaves it out when the judge costs nothing", async () => {
    override = (_m, url) => (url.pathname === "/api/conversations/estimate" ? { body: { ...ESTIMATE, estimated_judge_cost_usd: 0 } } : undefined);
    renderApp("?dataset_id=ds_1");
    fireEvent.click(await screen.findByTestId("btn-generate-all"));
    await screen.findByTestId("estimate-cost");
    expect(screen.queryByTestId("estimate-judge")).not.toBeInTheDocument();
  });
});
