import { describe, expect, it } from "vitest";
import { batchSizeBuckets, Histogram, SlidingWindowRate } from "../../src/server/metrics.js";

describe("SlidingWindowRate", () => {
  it("reports anomalies / tiles over the window and forgets what slid out", () => {
    const window = new SlidingWindowRate(60_000, 60); // one-second slots
    expect(window.rate(0)).toBe(0);
    window.record(0, 10, 1);
    window.record(30_000, 10, 9);
    expect(window.totals(30_000)).toEqual({ tiles: 20, anomalies: 10 });
    expect(window.rate(30_000)).toBe(0.5);
    // At 60 s the slot of t=0 has left the window.
    expect(window.rate(60_000)).toBe(0.9);
    expect(window.rate(90_000)).toBe(0);
  });

  it("reuses a ring slot after a full turn without mixing old counts in", () => {
    const window = new SlidingWindowRate(10_000, 10);
    window.record(1_000, 100, 100);
    window.record(11_000, 4, 1); // same ring slot, one turn later
    expect(window.totals(11_000)).toEqual({ tiles: 4, anomalies: 1 });
  });
});

describe("Histogram and buckets", () => {
  it("counts each observation in the first bucket that holds it, overflow only in count", () => {
    const histogram = new Histogram([1, 5]);
    for (const value of [0.5, 1, 3, 9]) histogram.observe(value, { route: "/x" });
    expect(histogram.snapshot()).toEqual([{ labels: { route: "/x" }, counts: [2, 1], sum: 13.5, count: 4 }]);
  });

  it("derives batch-size buckets from the largest batch", () => {
    expect(batchSizeBuckets(64)).toEqual([1, 2, 4, 8, 16, 32, 64]);
    expect(batchSizeBuckets(48)).toEqual([1, 2, 4, 8, 16, 32, 48]);
    expect(batchSizeBuckets(1)).toEqual([1]);
  });
});
