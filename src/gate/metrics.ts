import { ConfigurationError } from "../errors.js";
import { auroc, fprAtTpr } from "./stats.js";

/** One labelled in-distribution item as the evaluation runner scored it. */
export interface ClassificationItem {
  label: number;
  predicted: number;
  probabilities: number[];
  ood: { msp: number; energy: number; mahalanobis: number };
  anomaly: boolean;
}

/** One out-of-distribution item: only its OOD scores matter. */
export interface OodItem {
  ood: { msp: number; energy: number; mahalanobis: number };
  anomaly: boolean;
}

/** One image of the detection set; boxes are x, y, w, h. */
export interface DetectionItem {
  truth: [number, number, number, number][];
  detections: { box: [number, number, number, number]; confidence: number }[];
}

/** Everything the evaluation runner produced for one model on the evaluation sets. */
export interface ModelPredictions {
  classes: string[];
  classification: ClassificationItem[];
  ood: OodItem[];
  detection: DetectionItem[];
}

export interface ClassMetrics {
  name: string;
  precision: number;
  recall: number;
  f1: number;
  /** Items whose true label is this class. */
  support: number;
}

export interface CalibrationBin {
  lower: number;
  upper: number;
  count: number;
  accuracy: number;
  confidence: number;
}

export interface OodScoreMetrics {
  auroc: number;
  fprAt95Tpr: number;
}

/**
 * OOD detection with in-distribution as the positive class: TPR is the share of
 * in-distribution items accepted, FPR the share of OOD items accepted.
 */
export interface OodMetrics {
  inDistribution: number;
  outOfDistribution: number;
  msp: OodScoreMetrics;
  energy: OodScoreMetrics;
  mahalanobis: OodScoreMetrics;
  /** The runner's `anomaly` flag as a binary score (not flagged = in-distribution). */
  ensemble: { auroc: number; tpr: number; fpr: number };
}

export interface DetectionMetrics {
  images: number;
  truths: number;
  detections: number;
  /** Single-class mAP@0.5: AP with all-point interpolation (VOC2010+), greedy matching at IoU >= 0.5. */
  map50: number;
}

export interface ModelMetrics {
  items: number;
  accuracy: number;
  macroF1: number;
  classes: ClassMetrics[];
  /** Rows are true classes, columns predicted classes, in `classes` order. */
  confusion: number[][];
  /** Expected calibration error over 15 equal-width bins of the max probability. */
  ece: number;
  calibration: CalibrationBin[];
  /** Undefined when there are no OOD items. */
  ood?: OodMetrics;
  /** Undefined when there are no detection items. */
  detection?: DetectionMetrics;
}

export const ECE_BINS = 15;
export const OOD_SCORES = ["msp", "energy", "mahalanobis", "ensemble"] as const;
export type OodScoreName = (typeof OOD_SCORES)[number];

/**
 * Every metric the gate compares, for one model. Throws a ConfigurationError naming
 * the item when the predictions are empty or do not fit the class list.
 */
export function computeMetrics(p: ModelPredictions): ModelMetrics {
  validatePredictions(p);
  const k = p.classes.length;
  const labels = p.classification.map((item) => item.label);
  const predicted = p.classification.map((item) => item.predicted);
  const confusion = confusionMatrix(labels, predicted, k);
  const scores = scoresFromConfusion(confusion);
  const { ece, bins } = expectedCalibrationError(p.classification);
  return {
    items: p.classification.length,
    accuracy: scores.accuracy,
    macroF1: scores.macroF1,
    classes: p.classes.map((name, i) => ({
      name,
      precision: scores.precision[i] as number,
      recall: scores.recall[i] as number,
      f1: scores.f1[i] as number,
      support: scores.support[i] as number,
    })),
    confusion,
    ece,
    calibration: bins,
    ...(p.ood.length > 0 ? { ood: oodMetrics(p.classification, p.ood) } : {}),
    ...(p.detection.length > 0 ? { detection: detectionMetrics(p.detection) } : {}),
  };
}

function validatePredictions(p: ModelPredictions): void {
  if (p.classes.length === 0) throw new ConfigurationError("the model declares no classes");
  if (new Set(p.classes).size !== p.classes.length) {
    throw new ConfigurationError(`the model's class list repeats a name: ${p.classes.join(", ")}`);
  }
  if (p.classification.length === 0) {
    throw new ConfigurationError("the evaluation set is empty: no classification items to score");
  }
  const k = p.classes.length;
  p.classification.forEach((item, i) => {
    if (!Number.isInteger(item.label) || item.label < 0 || item.label >= k) {
      throw new ConfigurationError(
        `classification item ${i}: label ${item.label} names no class (the model has ${k}: ${p.classes.join(", ")})`,
      );
    }
    if (!Number.isInteger(item.predicted) || item.predicted < 0 || item.predicted >= k) {
      throw new ConfigurationError(
        `classification item ${i}: predicted class ${item.predicted} is outside 0..${k - 1}`,
      );
    }
    if (item.probabilities.length !== k) {
      throw new ConfigurationError(
        `classification item ${i}: ${item.probabilities.length} probabilities for ${k} classes`,
      );
    }
  });
}

/** Confusion matrix (rows true, columns predicted) over the given item indices (all items by default). */
export function confusionMatrix(
  labels: readonly number[],
  predicted: readonly number[],
  k: number,
  indices?: readonly number[],
): number[][] {
  const matrix = Array.from({ length: k }, () => new Array<number>(k).fill(0));
  const count = indices ? indices.length : labels.length;
  for (let j = 0; j < count; j++) {
    const i = indices ? (indices[j] as number) : j;
    const row = matrix[labels[i] as number] as number[];
    const col = predicted[i] as number;
    row[col] = (row[col] as number) + 1;
  }
  return matrix;
}

export interface ConfusionScores {
  accuracy: number;
  macroF1: number;
  precision: number[];
  recall: number[];
  f1: number[];
  support: number[];
}

/**
 * Accuracy, per-class precision/recall/F1 and macro-F1 from a confusion matrix.
 * Precision, recall or F1 with a zero denominator is 0 (scikit-learn's
 * zero_division=0), except that recall of a class with no items is NaN: there is
 * nothing to recall, and a bootstrap drops such resamples rather than count them 0.
 * Macro-F1 averages over the classes that occur as a label or a prediction
 * (scikit-learn's default label set), so a class absent from the set does not drag it down.
 */
export function scoresFromConfusion(confusion: readonly (readonly number[])[]): ConfusionScores {
  const k = confusion.length;
  let total = 0;
  let correct = 0;
  const support = new Array<number>(k).fill(0);
  const predictedCount = new Array<number>(k).fill(0);
  for (let t = 0; t < k; t++) {
    const row = confusion[t] as readonly number[];
    for (let q = 0; q < k; q++) {
      const v = row[q] as number;
      total += v;
      support[t] = (support[t] as number) + v;
      predictedCount[q] = (predictedCount[q] as number) + v;
      if (t === q) correct += v;
    }
  }
  const precision: number[] = [];
  const recall: number[] = [];
  const f1: number[] = [];
  let f1Sum = 0;
  let present = 0;
  for (let i = 0; i < k; i++) {
    const tp = (confusion[i] as readonly number[])[i] as number;
    const s = support[i] as number;
    const pc = predictedCount[i] as number;
    const pr = pc > 0 ? tp / pc : 0;
    const rc = s > 0 ? tp / s : Number.NaN;
    const rcOrZero = s > 0 ? tp / s : 0;
    const f = pr + rcOrZero > 0 ? (2 * pr * rcOrZero) / (pr + rcOrZero) : 0;
    precision.push(pr);
    recall.push(rc);
    f1.push(f);
    if (s > 0 || pc > 0) {
      f1Sum += f;
      present++;
    }
  }
  return {
    accuracy: total > 0 ? correct / total : Number.NaN,
    macroF1: present > 0 ? f1Sum / present : Number.NaN,
    precision,
    recall,
    f1,
    support,
  };
}

/**
 * Expected calibration error (Guo et al., 2017): confidence is the max probability,
 * bins are 15 equal-width intervals (lo, hi] with 0 in the first; ECE is the
 * item-weighted mean of |accuracy − mean confidence| over the bins. An item is correct
 * when its `predicted` class is its label.
 */
export function expectedCalibrationError(
  items: readonly Pick<ClassificationItem, "label" | "predicted" | "probabilities">[],
  binCount = ECE_BINS,
): { ece: number; bins: CalibrationBin[] } {
  if (items.length === 0) throw new ConfigurationError("expected calibration error needs at least one item");
  const counts = new Array<number>(binCount).fill(0);
  const correct = new Array<number>(binCount).fill(0);
  const confidence = new Array<number>(binCount).fill(0);
  for (const item of items) {
    const conf = Math.max(...item.probabilities);
    const bin = Math.min(binCount - 1, Math.max(0, Math.ceil(conf * binCount) - 1));
    counts[bin] = (counts[bin] as number) + 1;
    confidence[bin] = (confidence[bin] as number) + conf;
    if (item.predicted === item.label) correct[bin] = (correct[bin] as number) + 1;
  }
  let ece = 0;
  const bins: CalibrationBin[] = [];
  for (let b = 0; b < binCount; b++) {
    const count = counts[b] as number;
    const accuracy = count > 0 ? (correct[b] as number) / count : 0;
    const meanConfidence = count > 0 ? (confidence[b] as number) / count : 0;
    ece += (count / items.length) * Math.abs(accuracy - meanConfidence);
    bins.push({
      lower: b / binCount,
      upper: (b + 1) / binCount,
      count,
      accuracy,
      confidence: meanConfidence,
    });
  }
  return { ece, bins };
}

/**
 * OOD detection metrics, in-distribution (the classification items) as positives.
 * Each score is oriented so that higher means in-distribution: MSP and Energy as they
 * come (the runner reports the negative free energy), Mahalanobis distance negated.
 */
export function oodMetrics(
  inDistribution: readonly OodItem[],
  outOfDistribution: readonly OodItem[],
): OodMetrics {
  if (inDistribution.length === 0 || outOfDistribution.length === 0) {
    throw new ConfigurationError("OOD metrics need both in-distribution and out-of-distribution items");
  }
  const score = (orient: (item: OodItem) => number): OodScoreMetrics => {
    const pos = inDistribution.map(orient);
    const neg = outOfDistribution.map(orient);
    return { auroc: auroc(pos, neg), fprAt95Tpr: fprAtTpr(pos, neg, 0.95) };
  };
  const accepted = (item: OodItem) => (item.anomaly ? 0 : 1);
  const inAccepted = inDistribution.filter((item) => !item.anomaly).length;
  const outAccepted = outOfDistribution.filter((item) => !item.anomaly).length;
  return {
    inDistribution: inDistribution.length,
    outOfDistribution: outOfDistribution.length,
    msp: score((item) => item.ood.msp),
    energy: score((item) => item.ood.energy),
    mahalanobis: score((item) => -item.ood.mahalanobis),
    ensemble: {
      auroc: auroc(inDistribution.map(accepted), outOfDistribution.map(accepted)),
      tpr: inAccepted / inDistribution.length,
      fpr: outAccepted / outOfDistribution.length,
    },
  };
}

/** Intersection over union of two x, y, w, h boxes. */
export function iou(
  a: readonly [number, number, number, number],
  b: readonly [number, number, number, number],
): number {
  const [ax, ay, aw, ah] = a;
  const [bx, by, bw, bh] = b;
  const ix = Math.max(0, Math.min(ax + aw, bx + bw) - Math.max(ax, bx));
  const iy = Math.max(0, Math.min(ay + ah, by + bh) - Math.max(ay, by));
  const inter = ix * iy;
  const union = aw * ah + bw * bh - inter;
  return union > 0 ? inter / union : 0;
}

/**
 * Single-class mAP@0.5. Detections from all images are ranked by confidence (ties keep
 * image order, then detection order); each is matched greedily to the unmatched truth
 * box of its image with the highest IoU, a true positive when that IoU is >= 0.5 and a
 * false positive otherwise (COCO's matching). AP is the area under the precision–recall
 * curve with all-point interpolation (PASCAL VOC 2010 onward): precision made
 * monotonically non-increasing from the right, summed over each step in recall.
 */
export function detectionMetrics(items: readonly DetectionItem[], iouThreshold = 0.5): DetectionMetrics {
  if (items.length === 0) throw new ConfigurationError("detection metrics need at least one detection item");
  const truths = items.reduce((sum, item) => sum + item.truth.length, 0);
  if (truths === 0) {
    throw new ConfigurationError(
      `the detection set has ${items.length} image(s) but no truth boxes: mAP is undefined; label boxes or drop the detection set`,
    );
  }
  const ranked = items
    .flatMap((item, image) => item.detections.map((d, order) => ({ ...d, image, order })))
    .sort((x, y) => y.confidence - x.confidence || x.image - y.image || x.order - y.order);
  const matched = items.map((item) => new Array<boolean>(item.truth.length).fill(false));
  const precision: number[] = [];
  const recall: number[] = [];
  let tp = 0;
  let fp = 0;
  for (const detection of ranked) {
    const item = items[detection.image] as DetectionItem;
    const used = matched[detection.image] as boolean[];
    let best = -1;
    let bestIou = -1;
    item.truth.forEach((box, t) => {
      if (used[t]) return;
      const overlap = iou(detection.box, box);
      if (overlap > bestIou) {
        best = t;
        bestIou = overlap;
      }
    });
    if (best >= 0 && bestIou >= iouThreshold) {
      used[best] = true;
      tp++;
    } else {
      fp++;
    }
    precision.push(tp / (tp + fp));
    recall.push(tp / truths);
  }
  // All-point interpolation: envelope from the right, then area of the step function.
  for (let i = precision.length - 2; i >= 0; i--) {
    precision[i] = Math.max(precision[i] as number, precision[i + 1] as number);
  }
  let ap = 0;
  let previousRecall = 0;
  for (let i = 0; i < precision.length; i++) {
    ap += ((recall[i] as number) - previousRecall) * (precision[i] as number);
    previousRecall = recall[i] as number;
  }
  return { images: items.length, truths, detections: ranked.length, map50: ap };
}
