import { ConfigurationError } from "../errors.js";
import {
  computeMetrics,
  confusionMatrix,
  type ModelMetrics,
  type ModelPredictions,
  OOD_SCORES,
  scoresFromConfusion,
} from "./metrics.js";
import { classRecallFloors, type GatePolicy } from "./policy.js";
import {
  type Interval,
  type McNemarResult,
  mcnemarExact,
  pairedBootstrapMany,
  pairedDifferenceInterval,
} from "./stats.js";

/** One metric for both models: the difference is candidate − production, with its interval. */
export interface MetricDelta {
  production: number;
  candidate: number;
  delta: number;
  lower: number;
  upper: number;
}

export interface GateCheck {
  name: string;
  passed: boolean;
  /** A check that could not run (e.g. no OOD set): passed, and says why here. */
  skipped?: boolean;
  detail: string;
}

export type Verdict = "pass" | "fail" | "inconclusive";

export interface Comparison {
  classes: string[];
  /** Paired classification items. */
  items: number;
  /** Coverage of every interval (1 − significance). */
  confidence: number;
  production: ModelMetrics;
  candidate: ModelMetrics;
  /** Paired percentile bootstrap intervals of candidate − production. */
  deltas: { accuracy: MetricDelta; macroF1: MetricDelta; classRecall: Record<string, MetricDelta> };
  /**
   * The accuracy-delta interval the verdict uses: the union of the bootstrap interval
   * and the Agresti–Min interval (see the rules below).
   */
  accuracyDecision: { lower: number; upper: number };
  mcnemar: McNemarResult & { alpha: number };
  /** Detector mAP@0.5, candidate − production, when both have detection items. */
  mapDelta?: number;
  checks: GateCheck[];
  verdict: Verdict;
  /** One sentence each: why the verdict is what it is. */
  reasons: string[];
  /** fail blocks; inconclusive blocks when the policy says `inconclusive: block`. */
  blocksRelease: boolean;
  policy: GatePolicy;
}

/**
 * Compares a candidate with the production model on the same evaluation set and
 * decides whether the candidate may ship.
 *
 * The rules, in order:
 * 1. Hard floors on the candidate fail the gate, each by name: `min-accuracy`,
 *    `min-class-recall` (a class below its floor fails even if overall accuracy rises),
 *    `min-ood-auroc` (skipped, not failed, without an OOD set), and `max-map-regression`
 *    (point estimate, when both models have detection items).
 * 2. A real accuracy regression fails: McNemar's exact p < significance with the
 *    candidate worse (b > c), or the whole accuracy-delta interval below
 *    −max-accuracy-regression.
 * 3. A significant improvement (p < significance, c > b) with the floors met passes.
 * 4. Otherwise the difference is not significant. If the interval's lower bound is
 *    >= −max-accuracy-regression, the data rule out a meaningful regression: pass,
 *    "not a regression". If not, there is too little data to tell: inconclusive, and
 *    `inconclusive: block | allow` decides `blocksRelease`.
 *
 * The accuracy-delta interval used in 2 and 4 is the union of the paired percentile
 * bootstrap and the Agresti–Min adjusted Wald interval. The bootstrap alone is
 * overconfident on small sets: when every discordant pair favours the candidate, no
 * resample can show a regression, so its interval stops at 0 however few items there
 * are, and 10 items with the candidate 2 better would "rule out" a 1% regression.
 * Agresti–Min adds half an item to each cell of the paired table, so ruling out a
 * regression of m needs roughly 2/m items even when the two models agree everywhere.
 *
 * Mismatched contracts (class lists, item counts, labels) throw a ConfigurationError.
 */
export function compareModels(
  candidate: ModelPredictions,
  production: ModelPredictions,
  policy: GatePolicy,
): Comparison {
  assertSameContract(candidate, production);
  const candidateMetrics = computeMetrics(candidate);
  const productionMetrics = computeMetrics(production);
  const classes = candidate.classes;
  const k = classes.length;
  const n = candidate.classification.length;
  const alpha = policy.significance;
  const confidence = 1 - alpha;

  const labels = candidate.classification.map((item) => item.label);
  const candidatePredicted = candidate.classification.map((item) => item.predicted);
  const productionPredicted = production.classification.map((item) => item.predicted);

  let b = 0;
  let c = 0;
  for (let i = 0; i < n; i++) {
    const candidateRight = candidatePredicted[i] === labels[i];
    const productionRight = productionPredicted[i] === labels[i];
    if (productionRight && !candidateRight) b++;
    if (candidateRight && !productionRight) c++;
  }
  const mcnemar = { ...mcnemarExact(b, c), alpha };

  // One resample of item indices per iteration, shared by both models and every statistic.
  const intervals = pairedBootstrapMany(
    n,
    (indices) => {
      const cand = scoresFromConfusion(confusionMatrix(labels, candidatePredicted, k, indices));
      const prod = scoresFromConfusion(confusionMatrix(labels, productionPredicted, k, indices));
      return [
        cand.accuracy - prod.accuracy,
        cand.macroF1 - prod.macroF1,
        ...cand.recall.map((recall, i) => recall - (prod.recall[i] as number)),
      ];
    },
    { iterations: policy.bootstrapIterations, seed: policy.seed, confidence },
  );
  const delta = (prod: number, cand: number, interval: Interval | undefined): MetricDelta => ({
    production: prod,
    candidate: cand,
    delta: cand - prod,
    lower: interval?.lower ?? Number.NaN,
    upper: interval?.upper ?? Number.NaN,
  });
  const accuracy = delta(productionMetrics.accuracy, candidateMetrics.accuracy, intervals[0]);
  const classRecall: Record<string, MetricDelta> = {};
  classes.forEach((name, i) => {
    classRecall[name] = delta(
      productionMetrics.classes[i]?.recall ?? Number.NaN,
      candidateMetrics.classes[i]?.recall ?? Number.NaN,
      intervals[i + 2],
    );
  });
  const adjusted = pairedDifferenceInterval(b, c, n, confidence);
  const accuracyDecision = {
    lower: Math.min(accuracy.lower, adjusted.lower),
    upper: Math.max(accuracy.upper, adjusted.upper),
  };

  const mapDelta =
    candidateMetrics.detection && productionMetrics.detection
      ? candidateMetrics.detection.map50 - productionMetrics.detection.map50
      : undefined;

  const floors = floorChecks(candidateMetrics, policy, classes, mapDelta);
  const margin = policy.maxAccuracyRegression;
  const significantlyWorse = mcnemar.pValue < alpha && b > c;
  const significantlyBetter = mcnemar.pValue < alpha && c > b;
  const certainlyBeyondMargin = accuracyDecision.upper < -margin;
  const rulesOutRegression = accuracyDecision.lower >= -margin;
  const ci = `${pct(confidence, false)} CI ${pct(accuracyDecision.lower)} to ${pct(accuracyDecision.upper)}`;
  const discordance = `b = ${b}, c = ${c}, McNemar p = ${formatP(mcnemar.pValue)}`;

  const regressionChecks: GateCheck[] = [
    {
      name: "no significant accuracy regression",
      passed: !significantlyWorse,
      detail: `${discordance}; alpha = ${alpha}`,
    },
    {
      name: "accuracy drop within tolerance",
      passed: !certainlyBeyondMargin,
      detail: `delta ${pct(accuracy.delta)} (${ci}); tolerated drop ${pct(margin, false)}`,
    },
  ];
  const checks = [...floors, ...regressionChecks];

  const reasons: string[] = [];
  let verdict: Verdict;
  const failedFloors = floors.filter((check) => !check.passed);
  if (failedFloors.length > 0 || significantlyWorse || certainlyBeyondMargin) {
    verdict = "fail";
    for (const check of failedFloors) reasons.push(`Failed ${check.name}: ${check.detail}.`);
    if (significantlyWorse) {
      reasons.push(
        `The candidate is significantly less accurate than production (${pct(accuracy.delta)}, ${discordance} < ${alpha}).`,
      );
    } else if (certainlyBeyondMargin) {
      reasons.push(
        `The candidate's accuracy drop exceeds the tolerated ${pct(margin, false)} (${pct(accuracy.delta)}, ${ci}).`,
      );
    }
  } else if (significantlyBetter) {
    verdict = "pass";
    reasons.push(
      `The candidate is significantly more accurate than production (${pct(accuracy.delta)}, ${discordance} < ${alpha}) and meets every floor.`,
    );
  } else if (rulesOutRegression) {
    verdict = "pass";
    reasons.push(
      `Not a regression: accuracy changes by ${pct(accuracy.delta)} (${ci}), which rules out a drop of more than ${pct(margin, false)}.`,
    );
  } else {
    verdict = "inconclusive";
    reasons.push(
      `Too little data to tell: accuracy changes by ${pct(accuracy.delta)} (${ci}, ${discordance}), which neither shows a significant difference nor rules out a drop of more than ${pct(margin, false)} on ${n} items.`,
    );
  }

  const result: Comparison = {
    classes: [...classes],
    items: n,
    confidence,
    production: productionMetrics,
    candidate: candidateMetrics,
    deltas: {
      accuracy,
      macroF1: delta(productionMetrics.macroF1, candidateMetrics.macroF1, intervals[1]),
      classRecall,
    },
    accuracyDecision,
    mcnemar,
    checks,
    verdict,
    reasons,
    blocksRelease: verdict === "fail" || (verdict === "inconclusive" && policy.inconclusive === "block"),
    policy,
  };
  if (mapDelta !== undefined) result.mapDelta = mapDelta;
  return result;
}

function floorChecks(
  metrics: ModelMetrics,
  policy: GatePolicy,
  classes: readonly string[],
  mapDelta: number | undefined,
): GateCheck[] {
  const checks: GateCheck[] = [];
  if (policy.minAccuracy !== undefined) {
    checks.push({
      name: "min-accuracy",
      passed: metrics.accuracy >= policy.minAccuracy,
      detail: `candidate accuracy ${pct(metrics.accuracy, false)}, floor ${pct(policy.minAccuracy, false)}`,
    });
  }
  for (const [name, floor] of classRecallFloors(policy, classes)) {
    const cls = metrics.classes.find((entry) => entry.name === name);
    const recall = cls?.recall ?? Number.NaN;
    if (!cls || cls.support === 0) {
      checks.push({
        name: `min-class-recall for class "${name}"`,
        passed: true,
        skipped: true,
        detail: `skipped: the evaluation set has no items of class "${name}"`,
      });
      continue;
    }
    checks.push({
      name: `min-class-recall for class "${name}"`,
      passed: recall >= floor,
      detail: `candidate recall of "${name}" is ${pct(recall, false)} (${cls.support} items), floor ${pct(floor, false)}`,
    });
  }
  for (const score of OOD_SCORES) {
    const floor = policy.minOodAuroc?.[score];
    if (floor === undefined) continue;
    const name = `min-ood-auroc for ${score}`;
    if (!metrics.ood) {
      checks.push({
        name,
        passed: true,
        skipped: true,
        detail: "skipped: no out-of-distribution set was given",
      });
      continue;
    }
    const value = metrics.ood[score].auroc;
    checks.push({
      name,
      passed: value >= floor,
      detail: `candidate ${score} AUROC ${value.toFixed(3)}, floor ${floor.toFixed(3)}`,
    });
  }
  if (policy.maxMapRegression !== undefined) {
    const name = "max-map-regression";
    if (mapDelta === undefined) {
      checks.push({ name, passed: true, skipped: true, detail: "skipped: no labelled detection set" });
    } else {
      checks.push({
        name,
        passed: mapDelta >= -policy.maxMapRegression,
        detail: `mAP@0.5 changes by ${pct(mapDelta)}, tolerated drop ${pct(policy.maxMapRegression, false)}`,
      });
    }
  }
  return checks;
}

/** Both prediction sets must come from the same contract and the same evaluation set. */
function assertSameContract(candidate: ModelPredictions, production: ModelPredictions): void {
  const a = candidate.classes;
  const p = production.classes;
  if (a.length !== p.length || a.some((name, i) => name !== p[i])) {
    throw new ConfigurationError(
      `the models disagree on the class list: candidate has [${a.join(", ")}], production has [${p.join(", ")}]; both must declare the same classes in the same order`,
    );
  }
  const sizes: [string, number, number][] = [
    ["classification", candidate.classification.length, production.classification.length],
    ["OOD", candidate.ood.length, production.ood.length],
    ["detection", candidate.detection.length, production.detection.length],
  ];
  for (const [set, cand, prod] of sizes) {
    if (cand !== prod) {
      throw new ConfigurationError(
        `the models were not scored on the same ${set} set: ${cand} candidate items against ${prod} production items`,
      );
    }
  }
  const mismatch = candidate.classification.findIndex(
    (item, i) => item.label !== production.classification[i]?.label,
  );
  if (mismatch >= 0) {
    throw new ConfigurationError(
      `the models were not scored on the same evaluation set: item ${mismatch} is labelled ${candidate.classification[mismatch]?.label} for the candidate and ${production.classification[mismatch]?.label} for production`,
    );
  }
}

/** A fraction as a percentage, signed by default (for deltas). */
export function pct(value: number, signed = true): string {
  if (Number.isNaN(value)) return "n/a";
  const text = `${(value * 100).toFixed(1)}%`;
  return signed && value >= 0 ? `+${text}` : text.replace("-", "−");
}

export function formatP(p: number): string {
  return p < 0.0001 ? p.toExponential(1) : p.toFixed(4);
}
