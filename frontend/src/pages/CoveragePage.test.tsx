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

describe("taxonomy editor changes", () => {
  it("states each change and the planned conversations that keep an old value", async () => {
    const { taxonomyChanges, rowProblems } = await import("./TaxonomyEditor");
    const { parseTaxonomyCsv } = await import("./Datasets");
    const saved = parseTaxonomyCsv('list,name,description\npersona,Retiree,"retired, careful"\npersona,Student,\nemotion,Fear,afraid\ntopic,Fees,\nintent,Learn,\ntone,Warm,');
    expect(saved.personas).toEqual([{ name: "Retiree", description: "retired, careful" }, { name: "Student" }]);
    const row = (name: string, orig: string | null, description = "") => ({ key: Math.random(), name, orig, description });
    const rows = {
      persona: [row("Pensioner", "Retiree", "retired, careful"), row("Founder", null)],
      emotion: [row("Fear", "Fear", "very afraid")],
      topic: [row("Fees", "Fees")],
      intent: [row("Learn", "Learn")],
      tone: [row("Warm", "Warm")],
    };
    const planned = (dim: string, v: string) => (dim === "persona" && v === "Retiree" ? 7 : dim === "persona" && v === "Student" ? 3 : 0);
    const changes = taxonomyChanges(saved, rows, planned);
    expect(changes).toEqual([
      { dimension: "persona", kind: "renamed", name: "Pensioner", from: "Retiree", planned: 7 },
      { dimension: "persona", kind: "added", name: "Founder", planned: 0 },
      { dimension: "persona", kind: "removed", name: "Student", planned: 3 },
      { dimension: "emotion", kind: "described", name: "Fear", planned: 0 },
    ]);
    expect(rowProblems({ ...rows, tone: [row("Warm", "Warm"), row("Warm", null)] })).toEqual(["Tones: “Warm” is listed twice."]);
    expect(() => parseTaxonomyCsv("list,name\ncolour,Red")).toThrow(/not one of/);
  });
});
