import { describe, expect, it } from "vitest";
import { qualityBand } from "./quality";

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
