/**
 * Runs one model over the evaluation sets exactly as the service runs it: the service's
 * `decodeImage` (via `readEvalBatches`), `cutTiles` (tiling + robust-asinh normalisation),
 * `createModelRunner(...).run` and `assembleTileResult` (softmax, OOD scores, ensemble
 * verdict, YOLO decoding). Nothing here computes a model score itself; it only reshapes
 * the service's `TileResult`s into per-item predictions for the statistics.
 */
import type { Tile, TileOutput, TileResult } from "../contract.js";
import {
  assembleTileResult,
  createModelRunner,
  cutTiles,
  type ModelParts,
  type ModelRunner,
} from "../inference/index.js";
import { type LoadedModelManifest, loadModelManifest, type ModelManifest } from "../model/manifest.js";
import { ContractMismatchError, EvalSetError } from "./errors.js";
import { type EvalSet, loadEvalSet, readEvalBatches } from "./eval-set.js";
import type { Box, ClassificationItem, DetectionItem, ModelPredictions, OodItem } from "./types.js";

export interface EvalSetPaths {
  /** Manifest path of the labelled classification set. */
  classification: string;
  /** Manifest path of the out-of-distribution set. */
  ood?: string;
  /** Manifest path of the detection set (items with `boxes`). */
  detection?: string;
}

export interface EvaluateOptions {
  /** Images decoded and sent to the runtime at once (default 64, the service's batchMaxTiles). */
  batchSize?: number;
  /** onnxruntime intra-op threads per session (default: the service's choice). */
  intraOpThreads?: number;
  /** Largest image accepted (default: the service's default limit). */
  maxPixels?: number;
  /** Called after each batch with items done and items in all sets. */
  onProgress?: (done: number, total: number) => void;
  /** What to call each model in a contract error (default "model 1", "model 2", ...). */
  names?: string[];
}

export interface LoadedEvalSets {
  classification: EvalSet;
  ood?: EvalSet;
  detection?: EvalSet;
}

/** Loads and validates the sets (manifests, labels, files present) before any model runs. */
export async function loadEvalSets(sets: EvalSetPaths): Promise<LoadedEvalSets> {
  const [classification, ood, detection] = await Promise.all([
    loadEvalSet(sets.classification),
    sets.ood === undefined ? undefined : loadEvalSet(sets.ood),
    sets.detection === undefined ? undefined : loadEvalSet(sets.detection),
  ]);
  const unlabelled = classification.items.findIndex((i) => i.label === undefined);
  if (unlabelled >= 0) {
    throw new EvalSetError(
      `classification set ${classification.name} (${classification.manifestPath}): item ${unlabelled} (${classification.items[unlabelled]?.file}) has no label`,
    );
  }
  if (detection !== undefined) {
    const unboxed = detection.items.findIndex((i) => i.boxes === undefined);
    if (unboxed >= 0) {
      throw new EvalSetError(
        `detection set ${detection.name} (${detection.manifestPath}): item ${unboxed} (${detection.items[unboxed]?.file}) has no boxes`,
      );
    }
  }
  return { classification, ...(ood && { ood }), ...(detection && { detection }) };
}

/**
 * Evaluates the model in `modelDir` (manifest and ONNX sha256 verified) on the sets.
 * The classification set's classes must be the model's classes in the same order, and a
 * detection set's classes the detector's; otherwise a `ContractMismatchError` names both.
 */
export async function evaluateModel(
  modelDir: string,
  sets: EvalSetPaths,
  options: EvaluateOptions = {},
): Promise<ModelPredictions> {
  const [model, loaded] = await Promise.all([loadModelManifest(modelDir), loadEvalSets(sets)]);
  return evaluateLoadedModel(model, loaded, options);
}

/** `evaluateModel` for a model and sets already loaded (the gate loads each once). */
export async function evaluateLoadedModel(
  model: LoadedModelManifest,
  sets: LoadedEvalSets,
  options: EvaluateOptions = {},
): Promise<ModelPredictions> {
  const [predictions] = await evaluateLoadedModels([model], sets, options);
  return predictions as ModelPredictions;
}

/**
 * Evaluates several models that share a contract (`checkContract`: same classes, tile
 * size and normalisation) on the same sets in one pass: each image is read, decoded and
 * tiled once and its tiles go to every model, so comparing two models costs one decode.
 */
export async function evaluateLoadedModels(
  models: LoadedModelManifest[],
  sets: LoadedEvalSets,
  options: EvaluateOptions = {},
): Promise<ModelPredictions[]> {
  const [first] = models;
  if (first === undefined) return [];
  // The models against each other first (the clearer error), then the sets against them.
  const name = (m: number) => options.names?.[m] ?? `model ${m + 1}`;
  models.slice(1).forEach((model, i) => {
    checkContract(first.manifest, model.manifest, [name(0), name(i + 1)]);
  });
  for (const model of models) checkSetAgainstModel(sets, model.manifest, model.dir);
  const total =
    sets.classification.items.length + (sets.ood?.items.length ?? 0) + (sets.detection?.items.length ?? 0);
  let done = 0;
  const runOpts = {
    batchSize: options.batchSize ?? 64,
    progress: (n: number) => {
      done += n;
      options.onProgress?.(done, total);
    },
    ...(options.maxPixels !== undefined && { maxPixels: options.maxPixels }),
  };
  const runnerOptions =
    options.intraOpThreads === undefined ? {} : { intraOpThreads: options.intraOpThreads };
  const runners: ModelRunner[] = [];
  try {
    for (const model of models)
      runners.push(await createModelRunner(model.manifest, model.dir, runnerOptions));
    const evaluated = models.map((model, m) => ({
      manifest: model.manifest,
      runner: runners[m] as ModelRunner,
    }));
    const classes = first.manifest.classifier.classes;
    // Each set runs only the model it scores (the sessions are the service's, unchanged):
    // the detectors cost three times the classifiers and say nothing about a class.
    const classification = await runSet(
      evaluated,
      sets.classification,
      runOpts,
      CLASSIFIER,
      (item, tiles) => {
        const r = singleTile(sets.classification, item.file, tiles);
        return {
          label: item.label as number,
          predicted: classes.indexOf(r.class),
          probabilities: classes.map((c) => r.probabilities[c] as number),
          ood: { ...r.ood },
          anomaly: r.anomaly,
        } satisfies ClassificationItem;
      },
    );
    const ood =
      sets.ood === undefined
        ? models.map(() => [])
        : await runSet(evaluated, sets.ood, runOpts, CLASSIFIER, (item, tiles) => {
            const r = singleTile(sets.ood as EvalSet, item.file, tiles);
            return { ood: { ...r.ood }, anomaly: r.anomaly } satisfies OodItem;
          });
    const detection =
      sets.detection === undefined
        ? models.map(() => [])
        : await runSet(
            evaluated,
            sets.detection,
            runOpts,
            DETECTOR,
            (item, tiles) =>
              ({
                truth: item.boxes as Box[],
                // The service's detections, per tile, in the image's pixels (no cross-tile merge).
                detections: tiles.flatMap((t) =>
                  t.detections.map((d) => ({
                    box: [d.x, d.y, d.width, d.height] as Box,
                    confidence: d.confidence,
                  })),
                ),
              }) satisfies DetectionItem,
          );
    return models.map(({ manifest, manifestSha256 }, m) => ({
      classes: [...classes],
      classification: classification[m] ?? [],
      ood: ood[m] ?? [],
      detection: detection[m] ?? [],
      model: { name: manifest.name, version: manifest.version, manifestSha256 },
    }));
  } finally {
    await Promise.allSettled(runners.map((runner) => runner.close()));
  }
}

function singleTile(set: EvalSet, file: string, tiles: TileResult[]): TileResult {
  const [first] = tiles;
  if (tiles.length !== 1 || first === undefined) {
    throw new EvalSetError(
      `evaluation set ${set.name}: ${file} cuts into ${tiles.length} tiles; a classification or OOD item must be one tile (an image no larger than the model's tileSize)`,
    );
  }
  return first;
}

const CLASSIFIER: ModelParts = { classifier: true, detector: false };
const DETECTOR: ModelParts = { classifier: false, detector: true };

/**
 * Decodes the set in batches and cuts every image into tiles once; each model runs each
 * batch's tiles in one `runner.run` call and the results are assembled with its manifest;
 * `toItem` turns one image's tile results into its prediction. Results keep the manifest's
 * order, one list per model.
 */
async function runSet<T>(
  models: { manifest: ModelManifest; runner: ModelRunner }[],
  set: EvalSet,
  options: { batchSize: number; maxPixels?: number; progress: (n: number) => void },
  parts: ModelParts,
  toItem: (item: EvalSet["items"][number], tiles: TileResult[]) => T,
): Promise<T[][]> {
  const out: T[][] = models.map(() => []);
  const tiling = (models[0] as { manifest: ModelManifest }).manifest;
  const readOptions = {
    batchSize: options.batchSize,
    ...(options.maxPixels !== undefined && { maxPixels: options.maxPixels }),
  };
  for await (const batch of readEvalBatches(set, readOptions)) {
    const perItem: Tile[][] = batch.map(({ image }) => cutTiles(image, tiling));
    const pixels = perItem.flat().map((t) => t.pixels);
    for (const [m, { manifest, runner }] of models.entries()) {
      const outputs = await runner.run(pixels, parts);
      if (outputs.length !== pixels.length) {
        throw new Error(`model runner returned ${outputs.length} outputs for ${pixels.length} tiles`);
      }
      let k = 0;
      batch.forEach(({ item }, i) => {
        const itemTiles = perItem[i] ?? [];
        const results = itemTiles.map((tile) =>
          assembleTileResult(tile, outputs[k++] as TileOutput, manifest),
        );
        out[m]?.push(toItem(item, results));
      });
    }
    options.progress(batch.length);
  }
  return out;
}

function checkSetAgainstModel(sets: LoadedEvalSets, manifest: ModelManifest, dir: string): void {
  const modelClasses = manifest.classifier.classes;
  const setClasses = sets.classification.classes;
  if (!sameList(modelClasses, setClasses)) {
    throw new ContractMismatchError(
      `the classification set ${sets.classification.name} (${sets.classification.manifestPath}) has classes ${JSON.stringify(setClasses)}, ` +
        `the model ${manifest.name} ${manifest.version} (${dir}) has ${JSON.stringify(modelClasses)}; ` +
        "they must be the same classes in the same order",
    );
  }
  if (sets.detection !== undefined && !sameList(manifest.detector.classes, sets.detection.classes)) {
    throw new ContractMismatchError(
      `the detection set ${sets.detection.name} (${sets.detection.manifestPath}) has classes ${JSON.stringify(sets.detection.classes)}, ` +
        `the detector of ${manifest.name} ${manifest.version} (${dir}) has ${JSON.stringify(manifest.detector.classes)}`,
    );
  }
}

function sameList(a: readonly unknown[], b: readonly unknown[]): boolean {
  return a.length === b.length && a.every((v, i) => v === b[i]);
}

/**
 * The contract two models must share to be compared on the same data: classes (same order),
 * tile size, normalisation, and the classifier's and detector's input shapes, dtypes and the
 * detector's classes. Every difference is listed in one `ContractMismatchError`.
 */
export function checkContract(
  a: ModelManifest,
  b: ModelManifest,
  names: [string, string] = ["candidate", "production"],
): void {
  const [na, nb] = names.map((n, i) => {
    const m = i === 0 ? a : b;
    return `${n} (${m.name} ${m.version})`;
  }) as [string, string];
  const diffs: string[] = [];
  const compare = (what: string, x: unknown, y: unknown) => {
    const sx = JSON.stringify(x);
    const sy = JSON.stringify(y);
    if (sx !== sy) diffs.push(`${what}: ${na} has ${sx}, ${nb} has ${sy}`);
  };
  compare("classifier.classes", a.classifier.classes, b.classifier.classes);
  compare("tileSize", a.tileSize, b.tileSize);
  compare("normalisation", sortedKeys(a.normalisation), sortedKeys(b.normalisation));
  compare("classifier.input.shape", a.classifier.input.shape, b.classifier.input.shape);
  compare("classifier.input.dtype", a.classifier.input.dtype, b.classifier.input.dtype);
  compare("detector.input.shape", a.detector.input.shape, b.detector.input.shape);
  compare("detector.input.dtype", a.detector.input.dtype, b.detector.input.dtype);
  compare("detector.classes", a.detector.classes, b.detector.classes);
  if (diffs.length > 0) {
    throw new ContractMismatchError(
      `the models do not share a contract and cannot be compared: ${diffs.join("; ")}`,
    );
  }
}

function sortedKeys(o: Record<string, unknown>): Record<string, unknown> {
  return Object.fromEntries(Object.entries(o).sort(([x], [y]) => (x < y ? -1 : x > y ? 1 : 0)));
}
