/** The whole inference path on two tiny real ONNX models (../fixtures/onnx). */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { TileOutput } from "../../src/contract.js";
import { analyseImage, assembleTileResult } from "../../src/inference/analyse.js";
import { createModelRunner, type ModelRunner, ModelRunnerError } from "../../src/inference/runner.js";
import { cutTiles } from "../../src/inference/tiling.js";
import { loadModelManifest, type ModelManifest } from "../../src/model/manifest.js";
import { matmul, modelFolder, tinyManifest } from "./model-fixture.js";

let manifest: ModelManifest;
let runner: ModelRunner;
let dir: string;

beforeAll(async () => {
  dir = modelFolder().dir;
  manifest = (await loadModelManifest(dir)).manifest;
  runner = await createModelRunner(manifest, dir, { intraOpThreads: 1 });
});
afterAll(async () => {
  await runner?.close();
});

const closeTo = (actual: ArrayLike<number>, expected: number[]) => {
  expect(actual).toHaveLength(expected.length);
  expected.forEach((v, i) => {
    expect(actual[i]).toBeCloseTo(v, 5);
  });
};

describe("createModelRunner", () => {
  it("runs a batch through both models and splits the outputs per tile", async () => {
    const a = Float32Array.from({ length: 16 }, (_, i) => i / 10);
    const b = Float32Array.from({ length: 16 }, (_, i) => (i % 3) - 1);
    const outputs = await runner.run([a, b]);
    expect(outputs).toHaveLength(2);
    outputs.forEach((out, k) => {
      const tile = k === 0 ? a : b;
      closeTo(out.logits, matmul(tile, 3));
      closeTo(out.embedding, matmul(tile, 2));
      closeTo(out.detector, matmul(tile, 10)); // [5 rows, 2 anchors] row-major
    });
    expect(await runner.run([])).toEqual([]);
  });

  it("refuses a tile of the wrong size", async () => {
    await expect(runner.run([new Float32Array(15)])).rejects.toThrow("tile 0 has 15 samples, expected 4x4");
  });

  it("refuses models whose names do not match the manifest", async () => {
    const m = tinyManifest();
    m.classifier.input.name = "x";
    m.detector.output.name = "boxes";
    await expect(createModelRunner(m as ModelManifest, dir)).rejects.toThrow(
      'the classifier model does not match the manifest: input "x" not found (the model has inputs ["input"])',
    );
    const d = tinyManifest();
    d.detector.output.name = "boxes";
    const err = await createModelRunner(d as ModelManifest, dir).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ModelRunnerError);
    expect((err as Error).message).toBe(
      'the detector model does not match the manifest: output "boxes" not found (the model has outputs ["output0"])',
    );
  });

  it("refuses a model whose input is not the manifest's tile size", async () => {
    const m = tinyManifest();
    m.tileSize = 8;
    m.classifier.input.shape = [-1, 1, 8, 8];
    m.detector.input.shape = [-1, 1, 8, 8];
    await expect(createModelRunner(m as ModelManifest, dir)).rejects.toThrow(
      'input "input" has shape [N, 1, 4, 4], expected [N, 1, 8, 8]',
    );
  });
});

describe("analyseImage / assembleTileResult", () => {
  it("tiles, runs and assembles every tile in order", async () => {
    const width = 6;
    const height = 5;
    const data = Float32Array.from({ length: width * height }, (_, i) => Math.sin(i) * 100 + i);
    const results = await analyseImage({ width, height, data }, runner, manifest, { batchSize: 3 });
    const tiles = cutTiles({ width, height, data }, manifest);
    expect(results.map((r) => [r.x, r.y, r.width, r.height])).toEqual([
      [0, 0, 4, 4],
      [2, 0, 4, 4],
      [0, 1, 4, 4],
      [2, 1, 4, 4],
    ]);
    results.forEach((result, k) => {
      const logits = matmul(tiles[k]?.pixels ?? [], 3);
      const best = logits.indexOf(Math.max(...logits));
      expect(result.class).toBe(manifest.classifier.classes[best]);
      const total = Object.values(result.probabilities).reduce((s, p) => s + p, 0);
      expect(total).toBeCloseTo(1, 12);
      expect(result.ood.energy).toBeCloseTo(Math.log(logits.reduce((s, l) => s + Math.exp(l), 0)), 5);
    });
  });

  it("assembles probabilities, OOD votes and detections for one tile", () => {
    const tile = { x: 10, y: 20, width: 4, height: 4, pixels: new Float32Array(16) };
    const output: TileOutput = {
      logits: Float32Array.from([0, 0, Math.log(2)]),
      embedding: Float32Array.from([3, 0]),
      // anchors: (cx 1, cy 1, w 2, h 2, score 0.9) and (score 0.1)
      detector: Float32Array.from([1, 3, 1, 3, 2, 2, 2, 2, 0.9, 0.1]),
    };
    const result = assembleTileResult(tile, output, manifest);
    expect(result.class).toBe("empty_sky");
    expect(result.probabilities.point_source).toBeCloseTo(0.25, 6);
    expect(result.probabilities.empty_sky).toBeCloseTo(0.5, 6);
    expect(result.ood.msp).toBeCloseTo(0.5, 6);
    expect(result.ood.energy).toBeCloseTo(Math.log(4), 6);
    expect(result.ood.mahalanobis).toBe(2); // nearest mean [1, 0]
    // msp 0.5 >= 0.4 in; energy ln 4 = 1.386 >= 0.5 in; mahalanobis 2 > 1.5 out -> 1 vote < 2
    expect(result.anomalyVotes).toEqual(["mahalanobis"]);
    expect(result.anomaly).toBe(false);
    expect(result.detections).toEqual([
      { x: 10, y: 20, width: 2, height: 2, confidence: Math.fround(0.9), class: "source" },
    ]);
  });
});
