import { afterEach, describe, expect, it, vi } from "vitest";
import { gapText } from "./pages/Coverage";
import { api, ApiError, buildQuery, bulkFailureText, normalizeCoverage, normalizeDetail, toExportFilters } from "./api";

function mockFetch(status: number, body: unknown, contentType = "application/json") {
  const text = typeof body === "string" ? body : JSON.stringify(body);
  const fn = vi.fn(async () => new Response(status === 204 ? null : text, { status, headers: { "Content-Type": contentType } }));
  vi.stubGlobal("fetch", fn);
  return fn;
}

afterEach(() => {
  vi.unstubAllGlobals();
});

describe("API client", () => {
  it("uses relative URLs, repeated params and JSON bodies", async () => {
    const fn = mockFetch(200, { items: [], total: 0, page: 1, page_size: 25, next_cursor: null });
    await api.listConversations({ dataset_id: "ds_1", persona: ["a", "b"], q: "", page_size: 25, page: 1 });
    const [url, init] = fn.mock.calls[0] as unknown as [string, RequestInit];
    expect(url).toBe("/api/conversations?dataset_id=ds_1&persona=a&persona=b&page_size=25&page=1");
    expect(init.method).toBe("GET");

    const fn2 = mockFetch(202, { job_id: "job_1" });
    const r = await api.generate("conv_1");
    expect(r.job_id).toBe("job_1");
    const [url2, init2] = fn2.mock.calls[0] as unknown as [string, RequestInit];
    expect(url2).toBe("/api/conversations/generate");
    expect(init2.method).toBe("POST");
    expect(JSON.parse(String(init2.body))).toEqual({ conversation_id: "conv_1" });
    expect((init2.headers as Record<string, string>)["Content-Type"]).toBe("application/json");
  });

  it("turns the error envelope into an ApiError with code, message and details", async () => {
    mockFetch(409, { error: { code: "stale_version", message: "Someone else changed it", details: { current: { version: 3 } } } });
    const err = await api.reviewConversation("c1", { status: "approved", version: 2 }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ApiError);
    const e = err as ApiError;
    expect(e.status).toBe(409);
    expect(e.code).toBe("stale_version");
    expect(e.message).toBe("Someone else changed it");
    expect(e.details).toEqual({ current: { version: 3 } });
  });

  it("formats row-numbered import errors", async () => {
    mockFetch(422, {
      error: {
        code: "validation_error",
        message: "2 rows are invalid",
        details: { errors: [{ row: 2, field: "text", message: "is required" }, "Row 5: unknown persona"] },
      },
    });
    const e = (await api.importChunksCsv("ds", "a,b").catch((x: unknown) => x)) as ApiError;
    expect(e.rowErrors()).toEqual(["Row 2, text: is required", "Row 5: unknown persona"]);
  });

  it("sends CSV bodies as text/csv", async () => {
    const fn = mockFetch(200, { imported: 1 });
    await api.importChunksCsv("ds_1", "chunk_id,text\nc1,hi");
    const [, init] = fn.mock.calls[0] as unknown as [string, RequestInit];
    expect((init.headers as Record<string, string>)["Content-Type"]).toBe("text/csv");
    expect(init.body).toBe("chunk_id,text\nc1,hi");
  });

  it("handles non-JSON error bodies", async () => {
    mockFetch(502, "<html>Bad gateway</html>", "text/html");
    const e = (await api.health().catch((x: unknown) => x)) as ApiError;
    expect(e).toBeInstanceOf(ApiError);
    expect(e.status).toBe(502);
    expect(e.code).toBe("http_502");
    expect(e.message).toMatch(/502/);
  });

  it("handles network failures", async () => {
    vi.stubGlobal(
      "fetch",
      vi.fn(async () => {
        throw new TypeError("Failed to fetch");
      }),
    );
    const e = (await api.health().catch((x: unknown) => x)) as ApiError;
    expect(e.code).toBe("network_error");
    expect(e.status).toBe(0);
  });

  it("accepts 204 responses", async () => {
    mockFetch(204, "");
    await expect(api.deleteConversation("c1")).resolves.toBeUndefined();
  });

  it("accepts bare arrays for lists", async () => {
    mockFetch(200, [{ dataset_id: "ds_1", name: "A" }]);
    const r = await api.listDatasets();
    expect(r.total).toBe(1);
    expect(r.items[0]?.name).toBe("A");
  });

  it("normalizes a nested conversation detail", () => {
    const d = normalizeDetail({ conversation: { conversation_id: "c1", status: "generated" }, turns: [{ turn_number: 1, role: "user", content: "hi" }] });
    expect(d.conversation_id).toBe("c1");
    expect(d.turns).toHaveLength(1);
    expect(d.audit).toEqual([]);
    expect(d.previous_id).toBeNull();
  });

  it("reads bulk results whose failures carry an error object", async () => {
    mockFetch(200, { action: "approve", succeeded: ["a"], failed: [{ id: "b", error: { code: "invalid_status", message: "not generated yet" } }] });
    const r = await api.bulkAction({ action: "approve", ids: ["a", "b"] });
    expect(r.succeeded).toEqual(["a"]);
    expect(r.failed.map(bulkFailureText)).toEqual(["not generated yet"]);
    expect(bulkFailureText({ id: "c", error: "plain text" })).toBe("plain text");
  });

  it("normalizes both coverage shapes", () => {
    const a = normalizeCoverage({
      pairs: { persona_emotion: { rows: ["P"], cols: ["E"], cells: [[0]] } },
      tiers: [{ tier: "template", target: 36, total: 20, effective: 18 }],
      gaps: { pairs: [{ kind: "persona_emotion", persona: "P", emotion: "E", status: "missing" }], tiers: [], dimensions: [] },
    });
    expect(a.tiers.template).toEqual({ count: 18, target: 36 });
    expect(a.gaps).toHaveLength(1);
    const b = normalizeCoverage({ pairs: {}, tiers: { scenario: { count: 3, target: 4 } }, gaps: ["x"] });
    expect(b.tiers.scenario).toEqual({ count: 3, target: 4 });
    expect(b.gaps).toEqual(["x"]);
    expect(normalizeCoverage(null)).toEqual({ pairs: {}, tiers: {}, gaps: [], gap_count: 0, note: undefined });
  });

  it("keeps only export filter keys", () => {
    expect(toExportFilters({ dataset_id: "d", persona: ["a"], status: ["approved"], q: "x", flagged: true, emotion: [], sort: "persona" })).toEqual({
      dataset_id: "d",
      persona: ["a"],
    });
  });

  it("builds query strings without empty values", () => {
    expect(buildQuery({ a: "", b: null, c: undefined, d: [], e: 0, f: false })).toBe("?e=0&f=false");
  });
});

describe("coverage gap text", () => {
  it("describes pair, tier and plain gaps", () => {
    expect(gapText({ group: "pairs", kind: "persona_emotion", persona: "Retiree", emotion: "Fear", effective: 0, min_expected: 1, status: "missing" })).toBe(
      "Retiree × Fear: no conversations yet",
    );
    expect(gapText({ group: "tiers", tier: "edge_case", target: 14, effective: 10, shortfall: 4 })).toBe("Edge case tier: 4 short of its target of 14");
    expect(gapText("anything")).toBe("anything");
  });
});
