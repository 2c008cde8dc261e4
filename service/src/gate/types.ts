/**
 * What the accuracy gate records about one model on the evaluation sets: the per-item
 * predictions the statistics (root `src/gate/metrics.ts`) work from. Structurally the same
 * as the root's `ModelPredictions`, plus the model's identity.
 */

/** OOD scores as the service computes them (`computeOodScores`). */
export interface OodScoresItem {
  /** Maximum softmax probability (higher = more in-distribution). */
  msp: number;
  /** Negative free energy, logsumexp(logits) (higher = more in-distribution). */
  energy: number;
  /** Minimum Mahalanobis distance to a class mean (lower = more in-distribution). */
  mahalanobis: number;
}

export interface ClassificationItem {
  /** Index into `ModelPredictions.classes` of the true label. */
  label: number;
  /** Index into `ModelPredictions.classes` of the model's class. */
  predicted: number;
  /** Softmax probabilities in `classes` order. */
  probabilities: number[];
  ood: OodScoresItem;
  anomaly: boolean;
}

export interface OodItem {
  ood: OodScoresItem;
  anomaly: boolean;
}

/** Boxes are [x, y, w, h] in the image's pixels: top-left corner, width, height. */
export type Box = [number, number, number, number];

export interface DetectionItem {
  truth: Box[];
  detections: { box: Box; confidence: number }[];
}

export interface ModelPredictions {
  /** The model's (and the classification set's) classes, in order. */
  classes: string[];
  classification: ClassificationItem[];
  ood: OodItem[];
  detection: DetectionItem[];
  model: { name: string; version: string; manifestSha256: string };
}
