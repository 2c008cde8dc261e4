export { analyseImage, assembleTileResult } from "./analyse.js";
export {
  BOTH_MODELS,
  createModelRunner,
  type ModelParts,
  type ModelRunner,
  ModelRunnerError,
  type ModelRunnerOptions,
} from "./runner.js";
export {
  computeOodScores,
  energyScore,
  ensembleVerdict,
  logSumExp,
  mahalanobisMinDistance,
  maxSoftmaxProbability,
  softmax,
} from "./scores.js";
export { assertTileBudget, cutTiles, MAD_TO_SIGMA, normaliseRobustAsinh, tileOrigins } from "./tiling.js";
export { decodeYoloTile, iou, nonMaxSuppression } from "./yolo.js";
