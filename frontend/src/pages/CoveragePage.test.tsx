import { describe, expect, it } from "vitest";
import { normalizeCoverage } from "../api";
import { cellSearch, gapPlan } from "./CoveragePage";

describe("coverage gaps", () => {
  it("plans each gap inside its own values, as many as close it", () => {
    const cov = normalizeCoverage({
      tiers: [],
      pairs: {},
      gaps: {
        pairs: [
          { kind: "persona_emotion", persona: "Retiree", emotion: "Fear", effective: 0, min_expected: 2, status: "missing" },
          { kind: "persona_topic", persona: "Retiree", topic: "Fees", effective: 1, min_expected: 3, status: "underfilled" },
        ],
        tiers: [{ tier: "scenario", target: 35, effective: 30, shortfall: 5 }],
        dimensions: [{ dimension: "tone", value: "Warm", effective: 0, min_expected: 4, status: "missing" }],
      },
    });
    expect(cov.gaps.map(gapPlan)).toEqual([
      { selector: { persona: "Retiree", emotion: "Fear" }, count: 2 },
      { selector: { persona: "Retiree", topic: "Fees" }, count: 2 },
      { selector: { tier: "scenario" }, count: 5 },
      { selector: { tone: "Warm" }, count: 4 },
    ]);
    expect(gapPlan("a text-only gap")).toBeNull();
  });

  it("opens a heatmap cell as the dashboard filtered to its pair", () => {
    const sp = new URLSearchParams(cellSearch("ds_1", { persona: "Retiree", emotion: "Fear & Doubt" }));
    expect(sp.get("view")).toBeNull();
    expect(sp.get("dataset_id")).toBe("ds_1");
    expect(sp.getAll("persona")).toEqual(["Retiree"]);
    expect(sp.getAll("emotion")).toEqual(["Fear & Doubt"]);
  });
});
