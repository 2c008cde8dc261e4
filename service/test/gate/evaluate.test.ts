/**
 * The gate's evaluation with the real models and evaluation sets. The manifests' metrics
 * were computed by the model build on these same files: matching them shows the gate
 * judges a model by the path the service runs.
 */
import { cp, mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ContractMismatchError } from "../../src/gate/errors.js";
import { checkContract, evaluateModel } from "../../src/gate/evaluate.js";
import type { ModelPredictions } from "../../src/gate/types.js";
import { loadModelManifest } from "../../src/model/manifest.js";
import { modelDir, SETS } from "./helpers.js";

const accuracy = (p: ModelPredictions) =>
  p.classification.filter((c) => c.label === c.predicted).length / p.classification.length;

describe("evaluateModel with the real models", () => {
  const results: Partial<Record<"v1" | "v2", ModelPredictions>> = {};
  const timings: string[] = [];

  beforeAll(async () => {
    for (const v of ["v1", "v2"] as const) {
      const start = performance.now();
      results[v] = await evaluateModel(modelDir(v), SETS, { intraOpThreads: 1 });
      const ms = performance.now() - start;
      timings.push(`${v}: 650 items in ${ms.toFixed(0)} ms (${((650 / ms) * 1000).toFixed(0)} items/s)`);
    }
  }, 120_000);
  afterAll(() => {
    console.log(`gate evaluation: ${timings.join("; ")}`);
  });

  for (const v of ["v1", "v2"] as const) {
    it(`${v}: accuracy matches the manifest's metrics.accuracy within 0.005`, async () => {
      const p = results[v] as ModelPredictions;
      const { manifest, manifestSha256 } = await loadModelManifest(modelDir(v));
      expect(p.classification).toHaveLength(500);
      expect(Math.abs(accuracy(p) - manifest.metrics.accuracy)).toBeLessThanOrEqual(0.005);
      expect(p.classes).toEqual(manifest.classifier.classes);
      expect(p.model).toEqual({ name: manifest.name, version: manifest.version, manifestSha256 });
    });

    it(`${v}: produces OOD and detection items with the service's scores`, () => {
      const p = results[v] as ModelPredictions;
      expect(p.ood).toHaveLength(100);
      expect(p.detection).toHaveLength(50);
      for (const c of p.classification) {
        expect(c.probabilities).toHaveLength(5);
        expect(c.probabilities.reduce((s, x) => s + x, 0)).toBeCloseTo(1, 5);
        expect(c.predicted).toBe(c.probabilities.indexOf(Math.max(...c.probabilities)));
        expect(c.ood.msp).toBeCloseTo(Math.max(...c.probabilities), 5);
      }
      for (const o of p.ood) {
        expect(Number.isFinite(o.ood.energy) && o.ood.mahalanobis >= 0).toBe(true);
      }
      // The OOD set is mostly flagged, the held-out in-distribution set mostly not.
      const rate = (xs: { anomaly: boolean }[]) => xs.filter((x) => x.anomaly).length / xs.length;
      expect(rate(p.ood)).toBeGreaterThan(rate(p.classification));
      for (const d of p.detection) {
        expect(d.truth.length).toBeGreaterThanOrEqual(2);
        for (const det of d.detections) {
          expect(det.box).toHaveLength(4);
          expect(det.confidence).toBeGreaterThanOrEqual(0.25);
        }
      }
      expect(p.detection.reduce((n, d) => n + d.detections.length, 0)).toBeGreaterThan(50);
    });
  }

  it("gives the same per-item predictions on a second run", async () => {
    const again = await evaluateModel(modelDir("v2"), SETS, { intraOpThreads: 1 });
    expect(again).toEqual(results.v2);
  }, 60_000);

  it("gives the same classes, and probabilities to 1e-5, with another batch size", async () => {
    const p = results.v1 as ModelPredictions;
    const other = await evaluateModel(modelDir("v1"), SETS, { intraOpThreads: 1, batchSize: 37 });
    expect(other.classification.map((c) => c.predicted)).toEqual(p.classification.map((c) => c.predicted));
    other.classification.forEach((c, i) => {
      c.probabilities.forEach((x, k) => {
        expect(Math.abs(x - (p.classification[i]?.probabilities[k] as number))).toBeLessThan(1e-5);
      });
    });
    expect(other.ood.map((o) => o.anomaly)).toEqual(p.ood.map((o) => o.anomaly));
  }, 60_000);

  it("reports progress up to the total", async () => {
    const seen: [number, number][] = [];
    await evaluateModel(
      modelDir("v1"),
      { classification: SETS.classification },
      { batchSize: 200, onProgress: (d, t) => seen.push([d, t]) },
    );
    expect(seen).toEqual([
      [200, 500],
      [400, 500],
      [500, 500],
    ]);
  }, 60_000);
});

describe("contract", () => {
  let dir: string;
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), "gate-contract-"));
    await cp(modelDir("v2"), dir, { recursive: true });
    const manifest = JSON.parse(await readFile(join(dir, "manifest.json"), "utf8"));
    manifest.classifier.classes[2] = "satellite_trail";
    await writeFile(join(dir, "manifest.json"), JSON.stringify(manifest));
  });
  afterAll(() => rm(dir, { recursive: true, force: true }));

  it("v1 and v2 share a contract", async () => {
    const [a, b] = await Promise.all([loadModelManifest(modelDir("v2")), loadModelManifest(modelDir("v1"))]);
    expect(() => checkContract(a.manifest, b.manifest)).not.toThrow();
  });

  it("a renamed class is a contract mismatch naming both lists", async () => {
    const renamed = await loadModelManifest(dir); // the ONNX sha256s still match
    const { manifest: v1 } = await loadModelManifest(modelDir("v1"));
    expect(() => checkContract(renamed.manifest, v1)).toThrow(ContractMismatchError);
    expect(() => checkContract(renamed.manifest, v1)).toThrow(
      /classifier\.classes: candidate \(astrolens 2\.0\.0\) has .*"satellite_trail".*production \(astrolens 1\.0\.0\) has .*"streak"/,
    );
  });

  it("tile size and normalisation differences are listed together", async () => {
    const { manifest: v1 } = await loadModelManifest(modelDir("v1"));
    const other = structuredClone(v1);
    other.tileSize = 32;
    other.normalisation.softening = 5;
    other.classifier.input.shape = [-1, 1, 32, 32];
    expect(() => checkContract(v1, other)).toThrow(
      /tileSize: .*; normalisation: .*; classifier\.input\.shape/,
    );
  });

  it("an evaluation set whose classes differ from the model's is refused before running", async () => {
    await expect(evaluateModel(dir, SETS)).rejects.toThrow(ContractMismatchError);
    await expect(evaluateModel(dir, SETS)).rejects.toThrow(
      /classes \["point_source","extended_source","streak","hot_pixels","empty_sky"\].*has \["point_source","extended_source","satellite_trail","hot_pixels","empty_sky"\]/,
    );
  });
});
