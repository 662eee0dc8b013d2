import { describe, expect, it } from "vitest";
import { shortDateTime } from "./format";
import { decodeDatasetId, decodeJobId } from "./urlState";

describe("shortDateTime", () => {
  const now = new Date("2026-11-26T12:00:00Z");

  it("leaves the year out for this year's dates and keeps the time", () => {
    const text = shortDateTime("2026-03-04T16:05:00Z", now);
    expect(text).not.toMatch(/2026/);
    expect(text).toMatch(/\d{2}:\d{2}/);
    expect(text).toMatch(/4/);
  });

  it("shows the year (and no time) for other years", () => {
    const text = shortDateTime("2024-03-04T16:05:00Z", now);
    expect(text).toMatch(/2024/);
    expect(text).not.toMatch(/\d{2}:\d{2}/);
  });

  it("handles missing and unparseable values", () => {
    expect(shortDateTime(null, now)).toBe("–");
    expect(shortDateTime("not a date", now)).toBe("not a date");
  });
});

describe("links from notifications", () => {
  it("accept dataset= as well as dataset_id=", () => {
    expect(decodeDatasetId("?dataset=ds_9&job=job_1")).toBe("ds_9");
    expect(decodeDatasetId("?dataset_id=ds_1&dataset=ds_9")).toBe("ds_1");
    expect(decodeDatasetId("?view=templates")).toBeNull();
  });

  it("read the job id", () => {
    expect(decodeJobId("?dataset=ds_9&job=job_1")).toBe("job_1");
    expect(decodeJobId("?dataset=ds_9")).toBeNull();
  });
});

describe("money", () => {
  it("shows cents, and an amount under half a cent as under a cent", async () => {
    const { money } = await import("./format");
    expect(money(0.0291)).toBe("$0.03");
    expect(money(1.020724)).toBe("$1.02");
    expect(money(1234.5)).toBe("$1,234.50");
    expect(money(0)).toBe("$0.00");
    expect(money(0.0031)).toBe("<$0.01");
    expect(money(null)).toBe("–");
  });
});
