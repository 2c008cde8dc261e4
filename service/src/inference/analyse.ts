/**
 * Tile + model output -> the per-tile verdict in the response. `assembleTileResult` is the
 * piece the HTTP server calls after its micro-batcher; `analyseImage` is the whole path in
 * one call (used by the accuracy gate and tests). Both go through the same functions.
 */
import type { DecodedImage, Tile, TileOutput, TileResult } from "../contract.js";
import type { ModelManifest } from "../model/manifest.js";
import type { ModelRunner } from "./runner.js";
import { computeOodScores, ensembleVerdict, softmax } from "./scores.js";
import { cutTiles } from "./tiling.js";
import { decodeYoloTile } from "./yolo.js";

/** Turns one tile's raw model outputs into its `TileResult`. */
export function assembleTileResult(tile: Tile, output: TileOutput, manifest: ModelManifest): TileResult {
  const classes = manifest.classifier.classes;
  if (output.logits.length !== classes.length) {
    throw new Error(`classifier returned ${output.logits.length} logits for ${classes.length} classes`);
  }
  const probs = softmax(output.logits);
  const probabilities: Record<string, number> = {};
  let best = 0;
  classes.forEach((name, i) => {
    probabilities[name] = probs[i] as number;
    if ((probs[i] as number) > (probs[best] as number)) best = i;
  });
  const ood = computeOodScores(output.logits, output.embedding, manifest.ood);
  const { anomaly, votes } = ensembleVerdict(ood, manifest.ood);
  return {
    x: tile.x,
    y: tile.y,
    width: tile.width,
    height: tile.height,
    class: classes[best] as string,
    probabilities,
    ood,
    anomaly,
    anomalyVotes: votes,
    detections: decodeYoloTile(output.detector, tile, manifest.detector),
  };
}

/**
 * Tiles and normalises `image`, runs every tile through `runner` (in batches of at most
 * `batchSize`, default: all at once) and assembles the results in tile order.
 */
export async function analyseImage(
  image: Pick<DecodedImage, "width" | "height" | "data">,
  runner: Pick<ModelRunner, "run">,
  manifest: ModelManifest,
  options: { batchSize?: number } = {},
): Promise<TileResult[]> {
  const tiles = cutTiles(image, manifest);
  const batchSize = options.batchSize ?? tiles.length;
  const results: TileResult[] = [];
  for (let start = 0; start < tiles.length; start += batchSize) {
    const batch = tiles.slice(start, start + batchSize);
    const outputs = await runner.run(batch.map((t) => t.pixels));
    if (outputs.length !== batch.length) {
      throw new Error(`model runner returned ${outputs.length} outputs for ${batch.length} tiles`);
    }
    batch.forEach((tile, i) => {
      results.push(assembleTileResult(tile, outputs[i] as TileOutput, manifest));
    });
  }
  return results;
}
