/**
 * Classifier post-processing and the out-of-distribution ensemble. All three scores are
 * computed in float64 from the model's float32 outputs.
 *
 * - MSP: max softmax probability (Hendrycks & Gimpel 2017); higher = in-distribution.
 * - Energy: the negative free energy at temperature 1, logsumexp(logits) (Liu et al.
 *   2020); higher = in-distribution.
 * - Mahalanobis: min over classes of sqrt((e - mu_c)^T P (e - mu_c)) with the tied
 *   precision matrix P (Lee et al. 2018, on the embedding); lower = in-distribution.
 *   This is the distance, not its square: thresholds in the manifest are on this scale.
 */
import type { OodScores } from "../contract.js";
import type { ModelManifest } from "../model/manifest.js";

export type OodSpec = ModelManifest["ood"];

/** log(sum(exp(logits))), stable for large logits (shifts by the maximum). */
export function logSumExp(logits: ArrayLike<number>): number {
  if (logits.length === 0) throw new Error("logSumExp of no logits");
  let max = Number.NEGATIVE_INFINITY;
  for (let i = 0; i < logits.length; i++) max = Math.max(max, logits[i] as number);
  if (!Number.isFinite(max)) return max;
  let sum = 0;
  for (let i = 0; i < logits.length; i++) sum += Math.exp((logits[i] as number) - max);
  return max + Math.log(sum);
}

/** Softmax probabilities, exp(l - max) / sum(exp(l - max)). */
export function softmax(logits: ArrayLike<number>): Float64Array {
  let max = Number.NEGATIVE_INFINITY;
  for (let i = 0; i < logits.length; i++) max = Math.max(max, logits[i] as number);
  const out = new Float64Array(logits.length);
  let sum = 0;
  for (let i = 0; i < logits.length; i++) {
    out[i] = Math.exp((logits[i] as number) - max);
    sum += out[i] as number;
  }
  for (let i = 0; i < out.length; i++) out[i] = (out[i] as number) / sum;
  return out;
}

/** Maximum softmax probability: 1 / sum(exp(l - max)). */
export function maxSoftmaxProbability(logits: ArrayLike<number>): number {
  let max = Number.NEGATIVE_INFINITY;
  for (let i = 0; i < logits.length; i++) max = Math.max(max, logits[i] as number);
  let sum = 0;
  for (let i = 0; i < logits.length; i++) sum += Math.exp((logits[i] as number) - max);
  return 1 / sum;
}

/** Energy score: logsumexp(logits), i.e. minus the free energy. */
export function energyScore(logits: ArrayLike<number>): number {
  return logSumExp(logits);
}

/** Minimum Mahalanobis distance from `embedding` to any class mean under a tied precision matrix. */
export function mahalanobisMinDistance(
  embedding: ArrayLike<number>,
  classMeans: readonly (readonly number[])[],
  precision: readonly (readonly number[])[],
): number {
  const dim = embedding.length;
  if (precision.length !== dim) {
    throw new Error(
      `precision matrix is ${precision.length}x${precision.length}, embedding has ${dim} values`,
    );
  }
  const diff = new Float64Array(dim);
  let best = Number.POSITIVE_INFINITY;
  for (const mean of classMeans) {
    if (mean.length !== dim) throw new Error(`class mean has ${mean.length} values, embedding has ${dim}`);
    for (let i = 0; i < dim; i++) diff[i] = (embedding[i] as number) - (mean[i] as number);
    let q = 0;
    for (let i = 0; i < dim; i++) {
      const row = precision[i] as readonly number[];
      let acc = 0;
      for (let j = 0; j < dim; j++) acc += (row[j] as number) * (diff[j] as number);
      q += (diff[i] as number) * acc;
    }
    // A positive-definite P gives q >= 0; rounding can leave a tiny negative.
    best = Math.min(best, Math.sqrt(Math.max(0, q)));
  }
  return best;
}

/** The three OOD scores for one tile. */
export function computeOodScores(
  logits: ArrayLike<number>,
  embedding: ArrayLike<number>,
  ood: Pick<OodSpec, "mahalanobis">,
): OodScores {
  return {
    msp: maxSoftmaxProbability(logits),
    energy: energyScore(logits),
    mahalanobis: mahalanobisMinDistance(embedding, ood.mahalanobis.classMeans, ood.mahalanobis.precision),
  };
}

/**
 * The ensemble rule: MSP and energy vote OOD below their thresholds, Mahalanobis above
 * its threshold (at the threshold each counts as in-distribution); the tile is an anomaly
 * when at least `minVotes` vote OOD. A NaN score votes OOD: it is never evidence of normality.
 */
export function ensembleVerdict(
  scores: OodScores,
  ood: Pick<OodSpec, "thresholds" | "minVotes">,
): { anomaly: boolean; votes: (keyof OodScores)[] } {
  const votes: (keyof OodScores)[] = [];
  if (!(scores.msp >= ood.thresholds.msp)) votes.push("msp");
  if (!(scores.energy >= ood.thresholds.energy)) votes.push("energy");
  if (!(scores.mahalanobis <= ood.thresholds.mahalanobis)) votes.push("mahalanobis");
  return { anomaly: votes.length >= ood.minVotes, votes };
}
