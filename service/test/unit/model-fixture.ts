/** A complete manifest for the tiny test models in ../fixtures/onnx (see make_tiny_models.py). */
import { createHash } from "node:crypto";
import { copyFileSync, mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";

export const ONNX_DIR = fileURLToPath(new URL("../fixtures/onnx/", import.meta.url));

export const sha256 = (bytes: Buffer | string) => createHash("sha256").update(bytes).digest("hex");

/** The tiny models' weight rule: W[i, j] for input pixel i and output j. */
export const weight = (i: number, j: number) => (((i * 7 + j * 3) % 11) - 5) / 10;

/** flat (16 values) x W[16, outputs] in float64. */
export function matmul(flat: ArrayLike<number>, outputs: number): number[] {
  return Array.from({ length: outputs }, (_, j) => {
    let acc = 0;
    for (let i = 0; i < flat.length; i++) acc += (flat[i] as number) * weight(i, j);
    return acc;
  });
}

/** Loosely typed on purpose: tests mutate it into invalid shapes. */
// biome-ignore lint/suspicious/noExplicitAny: tests reach into and break the manifest freely
export function tinyManifest(): Record<string, any> {
  return {
    schemaVersion: 1,
    name: "astrolens-test",
    version: "0.0.1",
    tileSize: 4,
    normalisation: { method: "robust-asinh", softening: 3, padding: "median" },
    classifier: {
      file: "classifier.onnx",
      sha256: sha256(readFileSync(join(ONNX_DIR, "classifier.onnx"))),
      input: { name: "input", shape: [-1, 1, 4, 4], dtype: "float32" },
      outputs: { logits: "logits", embedding: "embedding" },
      embeddingDim: 2,
      classes: ["point_source", "streak", "empty_sky"],
    },
    ood: {
      tpr: 0.95,
      thresholds: { msp: 0.4, energy: 0.5, mahalanobis: 1.5 },
      rule: "majority",
      minVotes: 2,
      mahalanobis: {
        classMeans: [
          [0, 0],
          [1, 0],
          [0, 1],
        ],
        precision: [
          [1, 0],
          [0, 1],
        ],
      },
    },
    detector: {
      file: "detector.onnx",
      sha256: sha256(readFileSync(join(ONNX_DIR, "detector.onnx"))),
      input: { name: "images", shape: [-1, 1, 4, 4], dtype: "float32" },
      output: { name: "output0", layout: "yolov8" },
      classes: ["source"],
      confidenceThreshold: 0.25,
      iouThreshold: 0.45,
    },
    training: {
      seed: 1,
      dataSeed: 1,
      samples: 10,
      epochs: 1,
      detectorSamples: 5,
      detectorEpochs: 1,
      torch: "1.13.1+cpu",
      onnxOpset: 13,
    },
    metrics: {
      accuracy: 0.9,
      macroF1: 0.9,
      perClassRecall: { point_source: 0.9 },
      oodAuroc: { msp: 0.8, energy: 0.8, mahalanobis: 0.8 },
      detectorMap50: 0.5,
    },
    tolerance: { accuracy: 0.02, macroF1: 0.02, detectorMap50: 0.03 },
  };
}

/** A temp model folder with the tiny ONNX files and `manifest` written as manifest.json. */
export function modelFolder(manifest: unknown = tinyManifest()): { dir: string; manifestText: string } {
  const dir = mkdtempSync(join(tmpdir(), "astrolens-model-"));
  copyFileSync(join(ONNX_DIR, "classifier.onnx"), join(dir, "classifier.onnx"));
  copyFileSync(join(ONNX_DIR, "detector.onnx"), join(dir, "detector.onnx"));
  const manifestText = `${JSON.stringify(manifest, null, 2)}\n`;
  writeFileSync(join(dir, "manifest.json"), manifestText);
  return { dir, manifestText };
}
