import { describe, expect, it } from "vitest";
import {
  auroc,
  fprAtTpr,
  mcnemarChiSquare,
  mcnemarExact,
  mulberry32,
  normalQuantile,
  pairedBootstrap,
  pairedDifferenceInterval,
  quantile,
} from "../../src/gate/stats.js";

describe("mcnemarExact", () => {
  it("matches Armitage & Berry's culture-media example (b = 12, c = 2: exact two-sided P = 0.0129)", () => {
    // Armitage & Berry, Statistical Methods in Medical Research (3rd ed., 1994), p. 127,
    // as worked in the StatsDirect manual ("Matched pairs: McNemar, Liddell"):
    // exact P (two sided) = 0.0129; Yates-corrected chi² = 5.785714, P = 0.0162.
    expect(mcnemarExact(12, 2).pValue).toBeCloseTo(0.0129, 4);
    const approx = mcnemarChiSquare(12, 2);
    expect(approx.statistic).toBeCloseTo(5.785714, 6);
    expect(approx.pValue).toBeCloseTo(0.0162, 4);
  });

  it("matches Fagerland, Lydersen & Laake's example (b = 1, c = 7: exact conditional p = 0.070)", () => {
    // Fagerland MW, Lydersen S, Laake P. The McNemar test for binary matched-pairs data:
    // mid-p and asymptotic are better than exact conditional. BMC Med Res Methodol 13:91
    // (2013), airway hyper-responsiveness example: exact conditional p = 0.070.
    expect(mcnemarExact(1, 7).pValue).toBeCloseTo(0.0703, 4);
  });

  it("gives 2 * (C(16,0)+C(16,1)+C(16,2)+C(16,3)) / 2^16 = 697/32768 ≈ 0.0213 for b = 3, c = 13", () => {
    // Hand-computed from the definition: 1 + 16 + 120 + 560 = 697 outcomes of 65536, doubled.
    expect(mcnemarExact(3, 13).pValue).toBeCloseTo(697 / 32768, 12);
    expect(mcnemarExact(3, 13).pValue).toBeCloseTo(0.0213, 4);
  });

  it("is 1 without discordant pairs and when they balance, and symmetric in b and c", () => {
    expect(mcnemarExact(0, 0)).toEqual({ b: 0, c: 0, pValue: 1 });
    expect(mcnemarExact(7, 7).pValue).toBe(1);
    expect(mcnemarExact(500, 500).pValue).toBe(1);
    expect(mcnemarExact(13, 3).pValue).toBe(mcnemarExact(3, 13).pValue);
  });

  it("agrees with the chi-square approximation on large counts", () => {
    // Agresti, Categorical Data Analysis (3rd ed., 2013), §11.1: presidential approval
    // ratings, discordant cells 150 and 86 (R's ?mcnemar.test example).
    const exact = mcnemarExact(86, 150).pValue;
    const approx = mcnemarChiSquare(86, 150).pValue;
    expect(approx).toBeCloseTo(4.115e-5, 7);
    expect(Math.abs(Math.log(exact / approx))).toBeLessThan(0.15);
    // Ten thousand discordant pairs, a moderate imbalance: the two agree closely.
    const big = mcnemarExact(4900, 5100).pValue;
    expect(big).toBeCloseTo(mcnemarChiSquare(4900, 5100).pValue, 3);
  });

  it("stays finite and stable for b + c = 10^5", () => {
    const balanced = mcnemarExact(49_800, 50_200).pValue;
    expect(Number.isFinite(balanced)).toBe(true);
    expect(balanced).toBeCloseTo(mcnemarChiSquare(49_800, 50_200).pValue, 3);
    const lopsided = mcnemarExact(40_000, 60_000).pValue;
    expect(lopsided).toBeGreaterThanOrEqual(0);
    expect(lopsided).toBeLessThan(1e-300);
  });

  it("rejects counts that are not non-negative integers", () => {
    expect(() => mcnemarExact(-1, 3)).toThrow(/b must be a non-negative integer/);
    expect(() => mcnemarExact(1, 2.5)).toThrow(/c must be/);
  });
});

function bruteForceAuroc(positives: number[], negatives: number[]): number {
  let wins = 0;
  for (const p of positives) for (const n of negatives) wins += p > n ? 1 : p === n ? 0.5 : 0;
  return wins / (positives.length * negatives.length);
}

describe("auroc", () => {
  it("equals the brute-force pair count on random data with ties (seeded)", () => {
    const random = mulberry32(42);
    for (let trial = 0; trial < 200; trial++) {
      const m = 1 + Math.floor(random() * 40);
      const n = 1 + Math.floor(random() * 40);
      // Few distinct values, so ties are common; positives shifted up a little.
      const positives = Array.from({ length: m }, () => Math.floor(random() * 8) + (random() < 0.5 ? 1 : 0));
      const negatives = Array.from({ length: n }, () => Math.floor(random() * 8));
      expect(auroc(positives, negatives)).toBeCloseTo(bruteForceAuroc(positives, negatives), 12);
    }
  });

  it("is 1 for perfect separation, 0 reversed and 0.5 when everything ties", () => {
    expect(auroc([3, 4, 5], [0, 1, 2])).toBe(1);
    expect(auroc([0, 1], [2, 3])).toBe(0);
    expect(auroc([1, 1, 1], [1, 1])).toBe(0.5);
  });

  it("refuses an empty side", () => {
    expect(() => auroc([], [1])).toThrow(/at least one positive and one negative/);
  });
});

describe("fprAtTpr", () => {
  it("uses the largest threshold that keeps 95% of the positives", () => {
    const positives = Array.from({ length: 20 }, (_, i) => i + 1); // 1..20
    // 19 of 20 positives must pass: threshold 2; negatives at or above 2 are 2.5 and 30.
    expect(fprAtTpr(positives, [0.5, 1.5, 2.5, 30])).toBe(0.5);
    expect(fprAtTpr([5, 6, 7], [1, 2, 3])).toBe(0);
  });
});

describe("pairedBootstrap", () => {
  const data = Array.from({ length: 1000 }, (_, i) => (i % 10 < 3 ? 1 : 0)); // mean 0.3
  const mean = (indices: readonly number[]) =>
    indices.reduce((sum, i) => sum + (data[i] as number), 0) / indices.length;

  it("is reproducible for a seed and differs across seeds", () => {
    const a = pairedBootstrap(data.length, mean, { seed: 7, iterations: 500 });
    const b = pairedBootstrap(data.length, mean, { seed: 7, iterations: 500 });
    const c = pairedBootstrap(data.length, mean, { seed: 8, iterations: 500 });
    expect(a).toEqual(b);
    expect(c).not.toEqual(a);
  });

  it("gives a percentile interval close to the normal approximation for a proportion", () => {
    const interval = pairedBootstrap(data.length, mean, { seed: 1 });
    const half = 1.959964 * Math.sqrt((0.3 * 0.7) / 1000);
    expect(interval.estimate).toBeCloseTo(0.3, 12);
    expect(interval.lower).toBeCloseTo(0.3 - half, 2);
    expect(interval.upper).toBeCloseTo(0.3 + half, 2);
    expect(interval.resamples).toBe(2000);
  });

  it("drops resamples where the statistic is undefined", () => {
    const interval = pairedBootstrap(2, (idx) => (idx.every((i) => i === 0) ? Number.NaN : 1), {
      seed: 3,
      iterations: 400,
    });
    expect(interval.resamples).toBeLessThan(400);
    expect(interval.lower).toBe(1);
  });
});

describe("helpers", () => {
  it("quantile interpolates like R's type 7", () => {
    expect(quantile([1, 2, 3, 4], 0.5)).toBe(2.5);
    expect(quantile([1, 2, 3, 4], 0.025)).toBeCloseTo(1.075, 12);
  });

  it("normalQuantile matches the 97.5% point", () => {
    expect(normalQuantile(0.975)).toBeCloseTo(1.959964, 6);
    expect(normalQuantile(0.5)).toBeCloseTo(0, 9);
  });

  it("pairedDifferenceInterval adds half an item per cell (Agresti–Min)", () => {
    // b = c = 0 on n pairs: difference 0, variance 1 / (n + 2)², half-width z / (n + 2).
    const interval = pairedDifferenceInterval(0, 0, 500);
    expect(interval.lower).toBeCloseTo(-1.959964 / 502, 6);
    expect(interval.upper).toBeCloseTo(1.959964 / 502, 6);
    // 10 pairs, 2 favouring the second proportion: still consistent with a drop.
    expect(pairedDifferenceInterval(0, 2, 10).lower).toBeLessThan(-0.05);
  });
});
