export { ContractMismatchError, EvalSetError, GateInputError, ModelSourceError } from "./errors.js";
export {
  contentTypeFor,
  type DecodedEvalItem,
  type EvalItem,
  type EvalSet,
  evalSetManifestSchema,
  loadEvalSet,
  readEvalBatches,
} from "./eval-set.js";
export {
  checkContract,
  type EvalSetPaths,
  type EvaluateOptions,
  evaluateLoadedModel,
  evaluateLoadedModels,
  evaluateModel,
  type LoadedEvalSets,
  loadEvalSets,
} from "./evaluate.js";
export {
  parseS3Uri,
  type ResolvedModel,
  type ResolveOptions,
  resolveModelSource,
  type S3Downloader,
} from "./resolve.js";
export type * from "./types.js";
