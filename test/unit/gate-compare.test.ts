import { describe, expect, it } from "vitest";
import { ConfigurationError } from "../../src/errors.js";
import { compareModels } from "../../src/gate/compare.js";
import type { ClassificationItem, ModelPredictions, OodItem } from "../../src/gate/metrics.js";
import { DEFAULT_GATE_POLICY, type GatePolicy } from "../../src/gate/policy.js";
import { renderGateReport, toJson } from "../../src/gate/report.js";

const CLASSES = ["galaxy", "star", "quasar", "nebula"];
const K = CLASSES.length;

function scored(label: number, predicted: number): ClassificationItem {
  const probabilities = Array.from({ length: K }, (_, c) => (c === predicted ? 0.7 : 0.1));
  return { label, predicted, probabilities, ood: { msp: 0.7, energy: 8, mahalanobis: 2 }, anomaly: false };
}

const wrong = (label: number) => (label + 1) % K;

/**
 * A paired evaluation set: `both` items both models get right, `b` only production,
 * `c` only the candidate, the rest neither. Labels cycle through the classes.
 */
function pairedSet(
  n: number,
  both: number,
  b: number,
  c: number,
): { candidate: ModelPredictions; production: ModelPredictions } {
  const candidate: ClassificationItem[] = [];
  const production: ClassificationItem[] = [];
  for (let i = 0; i < n; i++) {
    const label = i % K;
    const productionRight = i < both + b;
    const candidateRight = i < both || (i >= both + b && i < both + b + c);
    candidate.push(scored(label, candidateRight ? label : wrong(label)));
    production.push(scored(label, productionRight ? label : wrong(label)));
  }
  return { candidate: predictions(candidate), production: predictions(production) };
}

function predictions(classification: ClassificationItem[], ood: OodItem[] = []): ModelPredictions {
  return { classes: [...CLASSES], classification, ood, detection: [] };
}

const POLICY: GatePolicy = {
  ...DEFAULT_GATE_POLICY,
  minAccuracy: 0.5,
  minClassRecall: 0.5,
  bootstrapIterations: 1000,
};

describe("compareModels: verdicts", () => {
  it("passes a candidate that is significantly better on 500 items", () => {
    const { candidate, production } = pairedSet(500, 400, 5, 40);
    const result = compareModels(candidate, production, POLICY);
    expect(result.mcnemar).toMatchObject({ b: 5, c: 40 });
    expect(result.mcnemar.pValue).toBeLessThan(0.001);
    expect(result.verdict).toBe("pass");
    expect(result.blocksRelease).toBe(false);
    expect(result.reasons).toHaveLength(1);
    expect(result.reasons[0]).toMatch(/significantly more accurate/);
    expect(result.deltas.accuracy.delta).toBeCloseTo(35 / 500, 12);
    expect(result.deltas.accuracy.lower).toBeGreaterThan(0);
    expect(result.deltas.accuracy.upper).toBeGreaterThan(result.deltas.accuracy.delta);
  });

  it("fails the same pair swapped", () => {
    const { candidate, production } = pairedSet(500, 400, 5, 40);
    const result = compareModels(production, candidate, POLICY);
    expect(result.verdict).toBe("fail");
    expect(result.blocksRelease).toBe(true);
    expect(result.reasons.join(" ")).toMatch(/significantly less accurate/);
    expect(result.checks.find((c) => c.name === "no significant accuracy regression")?.passed).toBe(false);
  });

  it("passes a model compared with itself as not a regression", () => {
    const { production } = pairedSet(500, 450, 0, 0);
    const result = compareModels(production, production, POLICY);
    expect(result.mcnemar).toEqual({ b: 0, c: 0, pValue: 1, alpha: 0.05 });
    expect(result.verdict).toBe("pass");
    expect(result.reasons[0]).toMatch(/not a regression/i);
    expect(result.deltas.accuracy).toMatchObject({ delta: 0, lower: 0, upper: 0 });
    for (const name of CLASSES)
      expect(result.deltas.classRecall[name]).toMatchObject({ delta: 0, lower: 0, upper: 0 });
  });

  it("calls a real difference on a tiny set inconclusive, not a pass", () => {
    // 10 items, the candidate right on 2 more. The bootstrap alone cannot show a drop
    // (no resample has one), which is why the verdict also uses Agresti–Min.
    const { candidate, production } = pairedSet(10, 7, 0, 2);
    const policy = { ...POLICY, minAccuracy: undefined, minClassRecall: undefined };
    const result = compareModels(candidate, production, policy);
    expect(result.mcnemar.pValue).toBe(0.5);
    expect(result.deltas.accuracy.lower).toBeGreaterThanOrEqual(0);
    expect(result.accuracyDecision.lower).toBeLessThan(-0.01);
    expect(result.verdict).toBe("inconclusive");
    expect(result.reasons[0]).toMatch(/too little data to tell/i);
    expect(result.blocksRelease).toBe(true);
    expect(compareModels(candidate, production, { ...policy, inconclusive: "allow" }).blocksRelease).toBe(
      false,
    );
  });

  it("is inconclusive when a non-significant drop cannot be ruled out, and passes it on enough data", () => {
    const small = pairedSet(500, 430, 10, 8);
    expect(compareModels(small.candidate, small.production, POLICY).verdict).toBe("inconclusive");
    const large = pairedSet(20_000, 17_000, 50, 48);
    const result = compareModels(large.candidate, large.production, { ...POLICY, bootstrapIterations: 200 });
    expect(result.verdict).toBe("pass");
    expect(result.reasons[0]).toMatch(/not a regression/i);
  });

  it("fails a candidate that loses one class's recall below its floor while overall accuracy rises", () => {
    // Production: right on everything except half the galaxies. Candidate: right on every
    // galaxy, but misses most quasars. 200 items, 50 per class.
    const production: ClassificationItem[] = [];
    const candidate: ClassificationItem[] = [];
    let galaxies = 0;
    let quasars = 0;
    for (let i = 0; i < 200; i++) {
      const label = i % K;
      const isGalaxy = CLASSES[label] === "galaxy";
      const isQuasar = CLASSES[label] === "quasar";
      const productionMisses = isGalaxy && galaxies++ % 2 === 0; // 25 galaxies missed
      const candidateMisses = isQuasar && quasars++ < 20; // 20 quasars missed
      production.push(scored(label, productionMisses ? wrong(label) : label));
      candidate.push(scored(label, candidateMisses ? wrong(label) : label));
    }
    const result = compareModels(predictions(candidate), predictions(production), {
      ...POLICY,
      minClassRecall: { quasar: 0.7, galaxy: 0.4 },
    });
    expect(result.deltas.accuracy.delta).toBeGreaterThan(0);
    expect(result.verdict).toBe("fail");
    expect(result.reasons).toHaveLength(1);
    expect(result.reasons[0]).toMatch(/class "quasar"/);
    expect(result.reasons[0]).toMatch(/60\.0%/);
    const check = result.checks.find((c) => c.name === 'min-class-recall for class "quasar"');
    expect(check?.passed).toBe(false);
    expect(result.checks.find((c) => c.name === 'min-class-recall for class "galaxy"')?.passed).toBe(true);
    expect(result.deltas.classRecall.quasar?.delta).toBeCloseTo(-0.4, 12);
    expect(result.deltas.classRecall.quasar?.upper).toBeLessThan(0);
  });

  it("fails a candidate below the accuracy floor even when it is no worse than production", () => {
    const { production } = pairedSet(500, 200, 0, 0);
    const result = compareModels(production, production, {
      ...POLICY,
      minAccuracy: 0.9,
      minClassRecall: undefined,
    });
    expect(result.verdict).toBe("fail");
    expect(result.reasons[0]).toMatch(/^Failed min-accuracy: candidate accuracy 40\.0%, floor 90\.0%\.$/);
  });
});

describe("compareModels: OOD floors", () => {
  const oodSet: OodItem[] = Array.from({ length: 50 }, (_, i) => ({
    ood: { msp: 0.2 + (i % 10) * 0.06, energy: 1, mahalanobis: 9 },
    anomaly: i % 5 !== 0,
  }));

  it("checks the ensemble AUROC floor and skips it without an OOD set", () => {
    const { candidate, production } = pairedSet(500, 450, 0, 0);
    const withOod = (p: ModelPredictions) => ({ ...p, ood: oodSet });
    const policy: GatePolicy = { ...POLICY, minOodAuroc: { ensemble: 0.95, msp: 0.5 } };
    const result = compareModels(withOod(candidate), withOod(production), policy);
    // Nothing in-distribution is flagged, 80% of OOD is: binary AUROC 0.9.
    expect(result.candidate.ood?.ensemble.auroc).toBeCloseTo(0.9, 12);
    expect(result.verdict).toBe("fail");
    expect(result.reasons[0]).toMatch(/min-ood-auroc for ensemble/);
    expect(result.checks.find((c) => c.name === "min-ood-auroc for msp")?.passed).toBe(true);

    const skipped = compareModels(candidate, production, policy);
    expect(skipped.verdict).toBe("pass");
    expect(skipped.checks.filter((c) => c.skipped).map((c) => c.name)).toEqual([
      "min-ood-auroc for msp",
      "min-ood-auroc for ensemble",
    ]);
  });
});

describe("compareModels: contract", () => {
  const { candidate, production } = pairedSet(40, 30, 2, 2);

  it("refuses different class lists", () => {
    const renamed = { ...candidate, classes: ["galaxy", "star", "quasar", "comet"] };
    expect(() => compareModels(renamed, production, POLICY)).toThrow(ConfigurationError);
    expect(() => compareModels(renamed, production, POLICY)).toThrow(
      /disagree on the class list: candidate has \[galaxy, star, quasar, comet\], production has \[galaxy, star, quasar, nebula\]/,
    );
    const reordered = { ...candidate, classes: ["star", "galaxy", "quasar", "nebula"] };
    expect(() => compareModels(reordered, production, POLICY)).toThrow(/same order/);
  });

  it("refuses sets of different sizes or labels", () => {
    const shorter = { ...candidate, classification: candidate.classification.slice(1) };
    expect(() => compareModels(shorter, production, POLICY)).toThrow(
      /39 candidate items against 40 production items/,
    );
    const relabelled = {
      ...candidate,
      classification: candidate.classification.map((item, i) => (i === 3 ? { ...item, label: 0 } : item)),
    };
    expect(() => compareModels(relabelled, production, POLICY)).toThrow(
      /item 3 is labelled 0 for the candidate and 3/,
    );
  });

  it("refuses a per-class floor for a class the model does not have", () => {
    expect(() => compareModels(candidate, production, { ...POLICY, minClassRecall: { comet: 0.5 } })).toThrow(
      /min-class-recall names "comet", which the model does not have/,
    );
  });
});

describe("report", () => {
  const { candidate, production } = pairedSet(500, 400, 5, 40);
  const result = compareModels(candidate, production, POLICY);

  it("renders the verdict first, then side-by-side metrics, classes, checks and both confusion matrices", () => {
    const markdown = renderGateReport(result);
    const lines = markdown.split("\n");
    expect(lines[0]).toBe("## ✅ Accuracy gate passed");
    expect(lines[2]).toMatch(
      /^\*\*PASS\*\* — The candidate is significantly more accurate .*The release may proceed\.$/,
    );
    expect(markdown).toContain("| Metric | Production | Candidate | Delta | 95% CI |");
    expect(markdown).toMatch(/\| Accuracy \| 0\.8100 \| 0\.8800 \| \+0\.0700 \| \+0\.\d{4} to \+0\.\d{4} \|/);
    expect(markdown).toContain("| Recall: quasar |");
    expect(markdown).toContain("**McNemar (exact):** b = 5");
    expect(markdown).toContain("| true \\ predicted | galaxy | star | quasar | nebula |");
    expect(markdown.match(/\| true \\ predicted/g)).toHaveLength(2);
    expect(markdown).toContain('| min-class-recall for class "galaxy" | OK |');
    expect(markdown).toContain("<details><summary>");
  });

  it("writes JSON with sorted keys and numbers rounded to 6 decimals", () => {
    const json = toJson(result);
    const parsed = JSON.parse(json);
    expect(Object.keys(parsed)).toEqual([...Object.keys(parsed)].sort());
    expect(Object.keys(parsed.deltas.accuracy)).toEqual([
      "candidate",
      "delta",
      "lower",
      "production",
      "upper",
    ]);
    expect(parsed.verdict).toBe("pass");
    expect(parsed.production.accuracy).toBe(0.81);
    const decimals = json.match(/\d+\.(\d+)/g)?.map((n) => n.split(".")[1]?.length ?? 0) ?? [];
    expect(Math.max(...decimals)).toBeLessThanOrEqual(6);
    expect(toJson(compareModels(candidate, production, POLICY))).toBe(json);
  });

  it("writes NaN as null", () => {
    const json = toJson({ ...result, mapDelta: Number.NaN });
    expect(JSON.parse(json).mapDelta).toBeNull();
  });
});
