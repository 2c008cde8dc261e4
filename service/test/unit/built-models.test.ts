/**
 * The committed model folders (service/models/v1, v2) through the whole path: manifest +
 * sha256, both sessions against the manifest's names and shapes, and one real FITS image
 * analysed end to end. A missing folder fails: the models are part of the repository.
 */
import { readFileSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { describe, expect, it } from "vitest";
import { decodeImage } from "../../src/decode/index.js";
import { analyseImage } from "../../src/inference/analyse.js";
import { createModelRunner } from "../../src/inference/runner.js";
import { loadModelManifest } from "../../src/model/manifest.js";

for (const version of ["v1", "v2"]) {
  const dir = fileURLToPath(new URL(`../../models/${version}/`, import.meta.url));
  describe(`models/${version}`, () => {
    it("loads, opens and analyses a real FITS image", async () => {
      const { manifest } = await loadModelManifest(dir);
      const runner = await createModelRunner(manifest, dir, { intraOpThreads: 1 });
      try {
        const fits = readFileSync(
          fileURLToPath(new URL("../fixtures/fits/fermi_counts.fits.gz", import.meta.url)),
        );
        const image = await decodeImage(fits, "application/fits", { maxPixels: 1_000_000 });
        const results = await analyseImage(image, runner, manifest);
        const t = manifest.tileSize;
        const across = Math.ceil(401 / t);
        const down = Math.ceil(201 / t);
        expect(results).toHaveLength(across * down);
        for (const r of results) {
          expect(manifest.classifier.classes).toContain(r.class);
          const total = Object.values(r.probabilities).reduce((s, p) => s + p, 0);
          expect(total).toBeCloseTo(1, 5);
          expect(Number.isFinite(r.ood.msp) && Number.isFinite(r.ood.energy)).toBe(true);
          expect(r.ood.mahalanobis).toBeGreaterThanOrEqual(0);
          for (const d of r.detections) {
            expect(d.x).toBeGreaterThanOrEqual(0);
            expect(d.x + d.width).toBeLessThanOrEqual(401 + 1e-6);
            expect(d.y + d.height).toBeLessThanOrEqual(201 + 1e-6);
          }
        }
      } finally {
        await runner.close();
      }
    });
  });
}
