/**
 * The embedded images are what images.ts says they are: the FITS byte for byte from their
 * sources, and the PNG's tiles, once the service decodes and normalises them, the same
 * numbers the model sees from the original FITS cut-outs.
 */
import { readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
import { decodeImage } from "../../../../service/src/decode/index.js";
import { cutTiles } from "../../../../service/src/inference/tiling.js";
import { knownImages } from "../src/images.js";
import { contractV2, REPO_DIR } from "./helpers.js";

const limits = { maxPixels: 16 * 1024 * 1024 };
const spec = {
  tileSize: 64,
  normalisation: { method: "robust-asinh" as const, softening: 3, padding: "median" as const },
};

describe("the embedded images", () => {
  it.each([
    ["point-source.fits", "test/fixtures/eval/synthetic/0010.fits"],
    ["scale.fits", "service/test/fixtures/fits/scale.fits"],
  ])("%s is %s, byte for byte", (name, source) => {
    const image = knownImages.find((i) => i.name === name);
    expect(image?.source.startsWith(source)).toBe(true);
    expect(Buffer.compare(Buffer.from(image?.bytes ?? []), readFileSync(`${REPO_DIR}${source}`))).toBe(0);
  });

  it("the PNG's two tiles normalise to exactly the original FITS cut-outs' tiles", async () => {
    const png = knownImages.find((i) => i.name === "extended-and-streak.png");
    if (png === undefined) throw new Error("no PNG among the known images");
    const decoded = await decodeImage(Buffer.from(png.bytes), "image/png", limits);
    expect([decoded.width, decoded.height, decoded.format]).toEqual([128, 64, "png"]);
    const tiles = cutTiles(decoded, spec);
    expect(tiles.map((t) => [t.x, t.y])).toEqual([
      [0, 0],
      [64, 0],
    ]);
    for (const [i, file] of ["0015.fits", "0004.fits"].entries()) {
      const fits = await decodeImage(
        readFileSync(`${REPO_DIR}test/fixtures/eval/synthetic/${file}`),
        "application/fits",
        limits,
      );
      const [original] = cutTiles(fits, spec);
      const pixels = tiles[i]?.pixels ?? new Float32Array();
      let worst = 0;
      original?.pixels.forEach((v, k) => {
        worst = Math.max(worst, Math.abs(v - (pixels[k] ?? Number.NaN)));
      });
      expect(worst, `tile ${i} against ${file}`).toBeLessThan(1e-5);
    }
  });

  it("each declares the size and format the service decodes, and classes of the model", async () => {
    for (const image of knownImages) {
      const decoded = await decodeImage(Buffer.from(image.bytes), image.contentType, limits);
      expect({ width: decoded.width, height: decoded.height, format: decoded.format }, image.name).toEqual(
        image.image,
      );
      for (const expected of image.expectedClasses)
        expect(contractV2.classifier.classes).toContain(expected.class);
    }
  });

  it("stay small: under 48 kB together", () => {
    expect(knownImages.reduce((n, i) => n + i.bytes.length, 0)).toBeLessThan(48 * 1024);
  });
});
