import { describe, expect, it } from "vitest";
import {
  computeOodScores,
  energyScore,
  ensembleVerdict,
  logSumExp,
  mahalanobisMinDistance,
  maxSoftmaxProbability,
  softmax,
} from "../../src/inference/scores.js";

describe("softmax / MSP / energy", () => {
  it("softmax of [0, ln 3] is [1/4, 3/4]", () => {
    const p = softmax([0, Math.log(3)]);
    expect(p[0]).toBeCloseTo(0.25, 15);
    expect(p[1]).toBeCloseTo(0.75, 15);
    expect(maxSoftmaxProbability([0, Math.log(3)])).toBeCloseTo(0.75, 15);
  });

  it("is stable for huge logits", () => {
    expect(logSumExp([1000, 1000])).toBeCloseTo(1000 + Math.LN2, 12);
    expect(energyScore([1000, 1000])).toBeCloseTo(1000.6931471805599, 12);
    expect(Array.from(softmax([1000, 1000]))).toEqual([0.5, 0.5]);
    expect(logSumExp([-1000, -1000, -1000])).toBeCloseTo(-1000 + Math.log(3), 12);
    expect(maxSoftmaxProbability([800, -800])).toBe(1);
  });

  it("MSP of uniform logits over 5 classes is 1/5; energy is ln 5 + logit", () => {
    expect(maxSoftmaxProbability([2, 2, 2, 2, 2])).toBeCloseTo(0.2, 15);
    expect(energyScore([2, 2, 2, 2, 2])).toBeCloseTo(2 + Math.log(5), 15);
  });
});

describe("mahalanobisMinDistance", () => {
  it("takes the nearest class mean under a diagonal precision", () => {
    // to [0,0]: sqrt(1*1 + 4*2*2) = sqrt 17; to [1,0]: sqrt(0 + 4*2*2) = 4
    expect(
      mahalanobisMinDistance(
        [1, 2],
        [
          [0, 0],
          [1, 0],
        ],
        [
          [1, 0],
          [0, 4],
        ],
      ),
    ).toBe(4);
  });

  it("uses the off-diagonal terms of the tied precision", () => {
    // d = [1, 1]; d^T [[2,1],[1,2]] d = 2 + 1 + 1 + 2 = 6
    expect(
      mahalanobisMinDistance(
        [1, 1],
        [[0, 0]],
        [
          [2, 1],
          [1, 2],
        ],
      ),
    ).toBeCloseTo(Math.sqrt(6), 15);
  });

  it("is 0 at a class mean", () => {
    expect(
      mahalanobisMinDistance(
        [3, -1],
        [
          [9, 9],
          [3, -1],
        ],
        [
          [1, 0],
          [0, 1],
        ],
      ),
    ).toBe(0);
  });
});

describe("ensembleVerdict", () => {
  const ood = { thresholds: { msp: 0.5, energy: 2, mahalanobis: 10 }, minVotes: 2 };

  it("counts at-threshold scores as in-distribution", () => {
    expect(ensembleVerdict({ msp: 0.5, energy: 2, mahalanobis: 10 }, ood)).toEqual({
      anomaly: false,
      votes: [],
    });
  });

  it("msp/energy vote below, mahalanobis above their thresholds", () => {
    expect(ensembleVerdict({ msp: 0.49, energy: 2.1, mahalanobis: 9 }, ood)).toEqual({
      anomaly: false,
      votes: ["msp"],
    });
    expect(ensembleVerdict({ msp: 0.9, energy: 1.9, mahalanobis: 10.1 }, ood)).toEqual({
      anomaly: true,
      votes: ["energy", "mahalanobis"],
    });
  });

  it("follows minVotes", () => {
    const scores = { msp: 0.1, energy: 5, mahalanobis: 1 };
    expect(ensembleVerdict(scores, { ...ood, minVotes: 1 }).anomaly).toBe(true);
    expect(ensembleVerdict(scores, { ...ood, minVotes: 2 }).anomaly).toBe(false);
  });

  it("lets a NaN score vote OOD", () => {
    expect(ensembleVerdict({ msp: Number.NaN, energy: Number.NaN, mahalanobis: 0 }, ood).votes).toEqual([
      "msp",
      "energy",
    ]);
  });

  it("computeOodScores combines the three", () => {
    const scores = computeOodScores([0, Math.log(3)], [1, 1], {
      mahalanobis: {
        classMeans: [
          [0, 0],
          [1, 1],
        ],
        precision: [
          [1, 0],
          [0, 1],
        ],
      },
    });
    expect(scores.msp).toBeCloseTo(0.75, 15);
    expect(scores.energy).toBeCloseTo(Math.log(4), 15);
    expect(scores.mahalanobis).toBe(0);
  });
});
