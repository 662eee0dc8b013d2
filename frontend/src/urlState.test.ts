import { describe, expect, it } from "vitest";
import {
  activeFilterCount,
  decodeDashboard,
  decodeDatasetId,
  decodeView,
  defaultDashboard,
  encodeDashboard,
  neighbourQueryString,
  toggleSort,
  toListQuery,
  ATTENTION_SORT,
} from "./urlState";
import { buildQuery, conversationQueryParams } from "./api";

describe("dashboard URL state", () => {
  it("decodes defaults from an empty query", () => {
    expect(decodeDashboard("")).toEqual(defaultDashboard());
  });

  it("round-trips every field", () => {
    const s = defaultDashboard();
    s.filters.persona = ["Anxious Investor", "Retiree & Co"];
    s.filters.emotion = ["Fear"];
    s.filters.tier = ["edge_case"];
    s.filters.status = ["generated", "failed"];
    s.qualityMin = 6;
    s.qualityMax = 8.5;
    s.flagged = true;
    s.q = "refund policy";
    s.sort = "quality_score";
    s.order = "asc";
    s.pageSize = 50;
    s.page = 3;
    s.hiddenCols = ["tone", "cost"];
    s.conv = "conv_123";
    s.insight = "diversity";
    const encoded = encodeDashboard(s);
    expect(decodeDashboard(`?${encoded}`)).toEqual(s);
  });

  it("repeats keys for multi-values and keeps unrelated params", () => {
    const s = defaultDashboard();
    s.filters.topic = ["a", "b"];
    const out = new URLSearchParams(encodeDashboard(s, "view=dashboard&dataset_id=ds_1&page=4"));
    expect(out.getAll("topic")).toEqual(["a", "b"]);
    expect(out.get("dataset_id")).toBe("ds_1");
    expect(out.get("view")).toBe("dashboard");
    expect(out.get("page")).toBeNull(); // page 1 is the default and is left out
  });

  it("leaves defaults out of the URL", () => {
    expect(encodeDashboard(defaultDashboard())).toBe("");
  });

  it("ignores invalid values", () => {
    const s = decodeDashboard("?page_size=33&page=-2&order=sideways&sort=drop_table&tier=bogus&status=approved&quality_min=abc");
    expect(s.pageSize).toBe(25);
    expect(s.page).toBe(1);
    expect(s.order).toBe("desc");
    expect(s.sort).toBe("created_at");
    expect(s.filters.tier).toEqual([]);
    expect(s.filters.status).toEqual(["approved"]);
    expect(s.qualityMin).toBeNull();
  });

  it("toggles sort: same column flips order, new column starts ascending and resets page", () => {
    const s = { ...defaultDashboard(), page: 4 };
    const a = toggleSort(s, "persona");
    expect([a.sort, a.order, a.page]).toEqual(["persona", "asc", 1]);
    const b = toggleSort(a, "persona");
    expect([b.sort, b.order]).toEqual(["persona", "desc"]);
  });

  it("counts active filters", () => {
    const s = decodeDashboard("?persona=a&persona=b&quality_min=5&q=x");
    expect(activeFilterCount(s)).toBe(4);
  });

  it("builds the list API query with repeated params", () => {
    const s = decodeDashboard("?persona=a&persona=b&status=approved&quality_min=6&sort=persona&order=asc&page_size=50&page=2");
    const qs = buildQuery(conversationQueryParams(toListQuery(s, "ds_1")));
    const sp = new URLSearchParams(qs);
    expect(sp.get("dataset_id")).toBe("ds_1");
    expect(sp.getAll("persona")).toEqual(["a", "b"]);
    expect(sp.getAll("status")).toEqual(["approved"]);
    expect(sp.get("quality_min")).toBe("6");
    expect(sp.get("sort")).toBe("persona");
    expect(sp.get("order")).toBe("asc");
    expect(sp.get("page_size")).toBe("50");
    expect(sp.get("page")).toBe("2");
    expect(sp.has("q")).toBe(false);
  });

  it("passes filters and sort (not page) to the detail endpoint for prev/next", () => {
    const s = decodeDashboard("?emotion=Fear&sort=quality_score&order=asc&page=3&conv=c1");
    const sp = new URLSearchParams(neighbourQueryString(s, "ds_9"));
    expect(sp.get("dataset_id")).toBe("ds_9");
    expect(sp.get("emotion")).toBe("Fear");
    expect(sp.get("sort")).toBe("quality_score");
    expect(sp.get("order")).toBe("asc");
    expect(sp.has("page")).toBe(false);
    expect(sp.has("conv")).toBe(false);
  });

  it("reads the view and dataset", () => {
    expect(decodeView("?view=templates")).toBe("templates");
    expect(decodeView("?view=nope")).toBe("dashboard");
    expect(decodeDatasetId("?dataset_id=ds_1")).toBe("ds_1");
    expect(decodeDatasetId("")).toBeNull();
  });
});

describe("quality triage in the URL", () => {
  it("keeps the needs-attention sort like any other sort", () => {
    const s = { ...defaultDashboard(), ...ATTENTION_SORT };
    const sp = new URLSearchParams(encodeDashboard(s));
    expect(sp.get("sort")).toBe("attention");
    expect(sp.get("order")).toBe("asc");
    expect(decodeDashboard(`?${sp.toString()}`)).toMatchObject({ sort: "attention", order: "asc" });
    expect(toListQuery(decodeDashboard(`?${sp.toString()}`), "ds_1")).toMatchObject({ sort: "attention", order: "asc" });
    expect(neighbourQueryString(s, "ds_1")).toContain("sort=attention");
  });

  it("keeps an open quality view, ignores unknown ones, and leaves it out of list queries", () => {
    expect(decodeDashboard("?insight=calibration").insight).toBe("calibration");
    expect(decodeDashboard("?insight=drop_table").insight).toBeNull();
    const s = { ...defaultDashboard(), insight: "calibration" as const };
    expect(new URLSearchParams(encodeDashboard(s, "?view=dashboard&insight=diversity")).getAll("insight")).toEqual(["calibration"]);
    expect(encodeDashboard(defaultDashboard(), "?insight=diversity")).toBe("");
    expect(JSON.stringify(toListQuery(s, "ds_1"))).not.toContain("calibration");
    expect(activeFilterCount(s)).toBe(0);
  });
});
