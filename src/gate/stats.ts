/**
 * The statistics behind the accuracy gate, free of any model or file: exact McNemar,
 * rank AUROC, a seeded PRNG and the paired percentile bootstrap. Everything here is
 * deterministic for a given seed so a gate verdict can be reproduced from its inputs.
 */

/** McNemar's test on the discordant pairs of two paired classifiers. */
export interface McNemarResult {
  /** Items production got right and the candidate got wrong. */
  b: number;
  /** Items the candidate got right and production got wrong. */
  c: number;
  /** Two-sided exact p-value. */
  pValue: number;
}

function assertCount(value: number, name: string): void {
  if (!Number.isInteger(value) || value < 0) {
    throw new RangeError(`${name} must be a non-negative integer, got ${value}`);
  }
}

/**
 * McNemar's exact (conditional binomial) test: p = min(1, 2·P[X <= min(b, c)]) with
 * X ~ Bin(b + c, 1/2); b + c = 0 gives p = 1.
 *
 * The binomial terms are summed in log space because 2^-(b+c) underflows a double from
 * b + c = 1075 on; the sum is O(min(b, c)), so b + c = 10^5 costs microseconds.
 */
export function mcnemarExact(b: number, c: number): McNemarResult {
  assertCount(b, "b");
  assertCount(c, "c");
  const n = b + c;
  if (n === 0) return { b, c, pValue: 1 };
  const k = Math.min(b, c);
  const logHalfPowN = -n * Math.LN2;
  // log C(n, i), built up from log C(n, 0) = 0 by the ratio C(n, i) / C(n, i-1) = (n-i+1)/i.
  let logChoose = 0;
  const logTerms: number[] = [logHalfPowN];
  for (let i = 1; i <= k; i++) {
    logChoose += Math.log((n - i + 1) / i);
    logTerms.push(logChoose + logHalfPowN);
  }
  const tail = Math.exp(logSumExp(logTerms));
  return { b, c, pValue: Math.min(1, 2 * tail) };
}

/**
 * McNemar's chi-square test with Yates' continuity correction, (|b − c| − 1)² / (b + c)
 * on one degree of freedom. The gate decides on the exact test; this is here to check
 * the exact test against the textbook approximation on large counts.
 */
export function mcnemarChiSquare(b: number, c: number): { statistic: number; pValue: number } {
  assertCount(b, "b");
  assertCount(c, "c");
  const n = b + c;
  if (n === 0) return { statistic: 0, pValue: 1 };
  const statistic = Math.max(0, Math.abs(b - c) - 1) ** 2 / n;
  // P[chi²(1) >= x] = erfc(sqrt(x / 2)).
  return { statistic, pValue: erfc(Math.sqrt(statistic / 2)) };
}

function logSumExp(values: readonly number[]): number {
  const max = Math.max(...values);
  if (max === Number.NEGATIVE_INFINITY) return max;
  let sum = 0;
  for (const v of values) sum += Math.exp(v - max);
  return max + Math.log(sum);
}

/**
 * Complementary error function, Numerical Recipes' Chebyshev fit (`erfcc`), fractional
 * error below 1.2e-7 everywhere: enough for an approximation used only as a cross-check.
 */
export function erfc(x: number): number {
  const z = Math.abs(x);
  const t = 1 / (1 + 0.5 * z);
  const r =
    t *
    Math.exp(
      -z * z -
        1.26551223 +
        t *
          (1.00002368 +
            t *
              (0.37409196 +
                t *
                  (0.09678418 +
                    t *
                      (-0.18628806 +
                        t *
                          (0.27886807 +
                            t * (-1.13520398 + t * (1.48851587 + t * (-0.82215223 + t * 0.17087277)))))))),
    );
  return x >= 0 ? r : 2 - r;
}

/**
 * Area under the ROC curve, P(score of a positive > score of a negative) with ties
 * counted half: the Mann–Whitney U statistic from mid-ranks, O((m + n) log(m + n)).
 */
export function auroc(positives: readonly number[], negatives: readonly number[]): number {
  if (positives.length === 0 || negatives.length === 0) {
    throw new RangeError(
      `auroc needs at least one positive and one negative score, got ${positives.length} and ${negatives.length}`,
    );
  }
  const all = [
    ...positives.map((score) => ({ score, positive: true })),
    ...negatives.map((score) => ({ score, positive: false })),
  ];
  for (const { score } of all) {
    if (Number.isNaN(score)) throw new RangeError("auroc scores must not be NaN");
  }
  all.sort((x, y) => x.score - y.score);
  let positiveRankSum = 0;
  for (let start = 0; start < all.length; ) {
    let end = start;
    while (end + 1 < all.length && all[end + 1]?.score === all[start]?.score) end++;
    // Ranks are 1-based; a run of ties shares the mean of its ranks.
    const midRank = (start + end) / 2 + 1;
    for (let i = start; i <= end; i++) if (all[i]?.positive) positiveRankSum += midRank;
    start = end + 1;
  }
  const m = positives.length;
  const u = positiveRankSum - (m * (m + 1)) / 2;
  return u / (m * negatives.length);
}

/**
 * False-positive rate at the largest threshold that keeps at least `tpr` of the
 * positives (score >= threshold counts as positive): the usual "FPR at 95% TPR" of
 * OOD detection, with in-distribution as the positive class.
 */
export function fprAtTpr(positives: readonly number[], negatives: readonly number[], tpr = 0.95): number {
  if (positives.length === 0 || negatives.length === 0) {
    throw new RangeError("fprAtTpr needs at least one positive and one negative score");
  }
  const descending = [...positives].sort((x, y) => y - x);
  const keep = Math.max(1, Math.ceil(tpr * descending.length - 1e-12));
  const threshold = descending[keep - 1] as number;
  return negatives.filter((score) => score >= threshold).length / negatives.length;
}

/** mulberry32: a small, fast 32-bit PRNG; returns floats in [0, 1). Same seed, same stream. */
export function mulberry32(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

export interface BootstrapOptions {
  iterations?: number;
  seed: number;
  /** Two-sided coverage of the percentile interval. */
  confidence?: number;
}

export interface Interval {
  /** The statistic on the original sample (indices 0..n-1). */
  estimate: number;
  lower: number;
  upper: number;
  /** Resamples whose statistic was defined (NaN results, e.g. a class absent from the resample, are dropped). */
  resamples: number;
}

/**
 * Paired percentile bootstrap: each iteration draws n item indices with replacement
 * once, and `statistic` sees the same indices for both models, so the interval of a
 * difference keeps the pairing (and is far narrower than two independent intervals).
 */
export function pairedBootstrap(
  n: number,
  statistic: (indices: readonly number[]) => number,
  options: BootstrapOptions,
): Interval {
  return pairedBootstrapMany(n, (indices) => [statistic(indices)], options)[0] as Interval;
}

/**
 * `pairedBootstrap` for several statistics at once, all computed on the same resamples;
 * `statistic` returns one value per statistic, always the same number of them.
 */
export function pairedBootstrapMany(
  n: number,
  statistic: (indices: readonly number[]) => readonly number[],
  { iterations = 2000, seed, confidence = 0.95 }: BootstrapOptions,
): Interval[] {
  if (!Number.isInteger(n) || n < 1) throw new RangeError(`bootstrap needs at least one item, got ${n}`);
  if (!Number.isInteger(iterations) || iterations < 1) {
    throw new RangeError(`bootstrap iterations must be a positive integer, got ${iterations}`);
  }
  if (!(confidence > 0 && confidence < 1)) {
    throw new RangeError(`bootstrap confidence must be in (0, 1), got ${confidence}`);
  }
  const identity = Array.from({ length: n }, (_, i) => i);
  const estimates = statistic(identity);
  const samples: number[][] = estimates.map(() => []);
  const random = mulberry32(seed);
  const indices = new Array<number>(n).fill(0);
  for (let iteration = 0; iteration < iterations; iteration++) {
    for (let i = 0; i < n; i++) indices[i] = Math.floor(random() * n);
    const values = statistic(indices);
    for (let s = 0; s < samples.length; s++) {
      const value = values[s];
      if (value !== undefined && !Number.isNaN(value)) samples[s]?.push(value);
    }
  }
  const tail = (1 - confidence) / 2;
  return estimates.map((estimate, s) => {
    const sorted = (samples[s] ?? []).sort((x, y) => x - y);
    return {
      estimate,
      lower: quantile(sorted, tail),
      upper: quantile(sorted, 1 - tail),
      resamples: sorted.length,
    };
  });
}

/** Linear-interpolation quantile of sorted values (Hyndman & Fan type 7, R's default); NaN when empty. */
export function quantile(sorted: readonly number[], p: number): number {
  if (sorted.length === 0) return Number.NaN;
  const h = (sorted.length - 1) * p;
  const lo = Math.floor(h);
  const hi = Math.ceil(h);
  const low = sorted[lo] as number;
  const high = sorted[hi] as number;
  return low + (high - low) * (h - lo);
}

/**
 * Agresti–Min adjusted Wald interval for the difference of two paired proportions
 * (Agresti & Min, Statistics in Medicine 24:729, 2005): add half an item to each cell
 * of the paired 2×2 table, then use the Wald interval. With b items only the first
 * proportion counts, c only the second, out of n pairs; the difference is (c − b) / n.
 * It stays honest where the percentile bootstrap is not: with a handful of discordant
 * pairs all in one direction, no resample can show the other direction.
 */
export function pairedDifferenceInterval(b: number, c: number, n: number, confidence = 0.95): Interval {
  assertCount(b, "b");
  assertCount(c, "c");
  if (!Number.isInteger(n) || n < b + c || n < 1)
    throw new RangeError(`n must be at least b + c and 1, got ${n}`);
  const z = normalQuantile(1 - (1 - confidence) / 2);
  const b1 = b + 0.5;
  const c1 = c + 0.5;
  const n1 = n + 2;
  const difference = (c1 - b1) / n1;
  const variance = (b1 + c1 - (c1 - b1) ** 2 / n1) / n1 ** 2;
  const half = z * Math.sqrt(variance);
  return {
    estimate: (c - b) / n,
    lower: Math.max(-1, difference - half),
    upper: Math.min(1, difference + half),
    resamples: 0,
  };
}

/**
 * Standard normal quantile (Acklam's rational approximation, relative error < 1.2e-9).
 */
export function normalQuantile(p: number): number {
  if (!(p > 0 && p < 1)) throw new RangeError(`normal quantile needs p in (0, 1), got ${p}`);
  const a = [
    -39.69683028665376, 220.9460984245205, -275.9285104469687, 138.357751867269, -30.66479806614716,
    2.506628277459239,
  ];
  const bb = [
    -54.47609879822406, 161.5858368580409, -155.6989798598866, 66.80131188771972, -13.28068155288572,
  ];
  const cc = [
    -0.007784894002430293, -0.3223964580411365, -2.400758277161838, -2.549732539343734, 4.374664141464968,
    2.938163982698783,
  ];
  const d = [0.007784695709041462, 0.3224671290700398, 2.445134137142996, 3.754408661907416];
  const [a0, a1, a2, a3, a4, a5] = a as [number, number, number, number, number, number];
  const [b0, b1, b2, b3, b4] = bb as [number, number, number, number, number];
  const [c0, c1, c2, c3, c4, c5] = cc as [number, number, number, number, number, number];
  const [d0, d1, d2, d3] = d as [number, number, number, number];
  const low = 0.02425;
  if (p < low) {
    const q = Math.sqrt(-2 * Math.log(p));
    return (
      (((((c0 * q + c1) * q + c2) * q + c3) * q + c4) * q + c5) /
      ((((d0 * q + d1) * q + d2) * q + d3) * q + 1)
    );
  }
  if (p > 1 - low) {
    const q = Math.sqrt(-2 * Math.log(1 - p));
    return (
      -(((((c0 * q + c1) * q + c2) * q + c3) * q + c4) * q + c5) /
      ((((d0 * q + d1) * q + d2) * q + d3) * q + 1)
    );
  }
  const q = p - 0.5;
  const r = q * q;
  return (
    ((((((a0 * r + a1) * r + a2) * r + a3) * r + a4) * r + a5) * q) /
    (((((b0 * r + b1) * r + b2) * r + b3) * r + b4) * r + 1)
  );
}
