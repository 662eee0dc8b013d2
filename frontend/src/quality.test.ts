import { describe, expect, it } from "vitest";
import { bucketOfRange, bucketRange, checkLabel, isFlaggedBucket, phraseQuery, qualityBand, reasonsForTurn, reasonTurn, sortChecks } from "./quality";

describe("quality colour thresholds", () => {
  it.each([
    [1, "red"],
    [5.9, "red"],
    [5.99, "red"],
    [6, "yellow"],
    [7, "yellow"],
    [8, "yellow"],
    [8.01, "green"],
    [10, "green"],
  ])("%s -> %s", (score, band) => {
    expect(qualityBand(score)).toBe(band);
  });

  it("has no colour without a score", () => {
    expect(qualityBand(null)).toBe("none");
    expect(qualityBand(undefined)).toBe("none");
    expect(qualityBand(Number.NaN)).toBe("none");
  });
});

describe("histogram buckets as score filters", () => {
  it("covers [k, k+1) with the inclusive list filters, and exactly 10 for the top bucket", () => {
    expect(bucketRange(3)).toEqual({ min: 3, max: 3.99 });
    expect(bucketRange(9)).toEqual({ min: 9, max: 9.99 });
    expect(bucketRange(10)).toEqual({ min: 10, max: 10 });
  });

  it("recognises a bucket's own range and nothing else", () => {
    expect(bucketOfRange(5, 5.99)).toBe(5);
    expect(bucketOfRange(10, 10)).toBe(10);
    expect(bucketOfRange(5, 6)).toBeNull();
    expect(bucketOfRange(5.5, 5.99)).toBeNull();
    expect(bucketOfRange(null, 5.99)).toBeNull();
    expect(bucketOfRange(5, null)).toBeNull();
  });

  it("flags the buckets below the flag line", () => {
    expect([1, 2, 3, 4, 5].every(isFlaggedBucket)).toBe(true);
    expect([6, 7, 8, 9, 10].some(isFlaggedBucket)).toBe(false);
  });
});

describe("reasons and checks", () => {
  it("reads the turn a reason names", () => {
    expect(reasonTurn("turn 7: the assistant refuses as an AI model")).toBe(7);
    expect(reasonTurn("Turn 12: cut off")).toBe(12);
    expect(reasonTurn("the required disclaimer is missing")).toBeNull();
    expect(reasonTurn("returns 7% a year")).toBeNull();
    expect(reasonsForTurn(["turn 2: a", "turn 12: b", "turn 2: c", "d"], 2)).toEqual(["turn 2: a", "turn 2: c"]);
  });

  it("orders failed checks first by severity, keeping the order within a group", () => {
    const checks = [
      { name: "turn_count", passed: true, severity: null },
      { name: "ending", passed: false, severity: "minor" },
      { name: "length", passed: false, severity: null },
      { name: "ai_refusal", passed: false, severity: "critical" },
      { name: "language", passed: false, severity: "major" },
      { name: "alternation", passed: true, severity: null },
      { name: "grounding", passed: false, severity: "critical" },
    ];
    expect(sortChecks(checks).map((c) => c.name)).toEqual(["ai_refusal", "grounding", "language", "ending", "length", "turn_count", "alternation"]);
  });

  it("names checks for people, falling back to the name", () => {
    expect(checkLabel("ai_refusal")).toBe("Refusals and AI self-references");
    expect(checkLabel("some_new_check")).toBe("Some new check");
  });

  it("quotes a phrase for the list's phrase search, without quotes of its own", () => {
    expect(phraseQuery("Hello, thank you for taking my")).toBe('"Hello, thank you for taking my"');
    expect(phraseQuery('say "hi"  there')).toBe('"say hi there"');
    expect(phraseQuery('""')).toBe("");
  });
});
