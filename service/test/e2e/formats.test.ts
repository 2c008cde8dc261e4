/**
 * End to end, in-process: the real service (onnxruntime-node sessions on the real ONNX
 * models of MODEL_DIR) over HTTP, one request per input format, every 200 checked against
 * the response contract; then detection quality on real and synthetic sources.
 */
import { readFileSync } from "node:fs";
import { gzipSync } from "node:zlib";
import sharp from "sharp";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { InvocationResponse } from "../../src/contract.js";
import type { RunningServer } from "../../src/main.js";
import {
  detectionsOf,
  E2E_FIXTURES,
  expectContract,
  FITS_DIR,
  invoke,
  json,
  type ManifestView,
  makeStarField,
  quantise,
  readManifest,
  type StarField,
  startRealServer,
} from "./helpers.js";

let running: RunningServer;
let manifest: ManifestView;

beforeAll(async () => {
  manifest = readManifest();
  running = await startRealServer();
});

afterAll(async () => {
  await running?.drain("tests done");
});

async function analyse(
  body: Buffer | string,
  contentType: string,
  image: { width: number; height: number; format: InvocationResponse["image"]["format"] },
): Promise<InvocationResponse> {
  const outcome = await invoke(running.port, body, contentType);
  expect(outcome.error, `connection error: ${outcome.error}`).toBeUndefined();
  expect(outcome.status, outcome.body.toString("utf8").slice(0, 500)).toBe(200);
  expect(outcome.headers["content-type"]).toBe("application/json");
  const response = json<InvocationResponse>(outcome);
  expectContract(response, manifest, image);
  return response;
}

/** A 256x192 field of 30 stars, in 0..255 "counts" (8-bit safe without clipping). */
const field: StarField = makeStarField({
  seed: 20240611,
  width: 256,
  height: 192,
  stars: 30,
  background: 30,
  noise: 3,
  amplitude: [80, 210],
  psfSigma: 1.5,
  margin: 6,
  minSeparation: 12,
});

const grey8 = () =>
  sharp(quantise(field, 255, 1), { raw: { width: field.width, height: field.height, channels: 1 } });

/** A field as a 16-bit greyscale PNG (counts x 200); checked to round-trip exactly. */
async function grey16Png(source: StarField = field): Promise<Buffer> {
  const samples = quantise(source, 65535, 200) as Uint16Array;
  // A Uint16Array (not a Buffer) tells sharp the raw samples are 16-bit.
  const png = await sharp(samples, { raw: { width: source.width, height: source.height, channels: 1 } })
    .toColourspace("grey16")
    .png()
    .toBuffer();
  const back = await sharp(png).toColourspace("grey16").raw({ depth: "ushort" }).toBuffer();
  const decoded = new Uint16Array(back.buffer, back.byteOffset, back.byteLength / 2);
  expect(decoded.length).toBe(samples.length);
  expect(decoded.findIndex((v, i) => v !== samples[i])).toBe(-1);
  return png;
}

describe(`every input format answers 200 with the contract's shape (models/${readManifest().version})`, () => {
  it("8-bit greyscale PNG", async () => {
    const png = await grey8().png().toBuffer();
    expect((await sharp(png).metadata()).depth).toBe("uchar");
    await analyse(png, "image/png", { width: 256, height: 192, format: "png" });
  });

  it("16-bit greyscale PNG", async () => {
    const png = await grey16Png();
    expect((await sharp(png).metadata()).depth).toBe("ushort");
    await analyse(png, "image/png", { width: 256, height: 192, format: "png" });
  });

  it("RGB JPEG", async () => {
    const jpeg = await grey8()
      .toColourspace("srgb")
      .tint({ r: 255, g: 220, b: 190 })
      .jpeg({ quality: 95 })
      .toBuffer();
    const meta = await sharp(jpeg).metadata();
    expect([meta.format, meta.channels]).toEqual(["jpeg", 3]);
    await analyse(jpeg, "image/jpeg", { width: 256, height: 192, format: "jpeg" });
  });

  const fitsCases: Array<[file: string, width: number, height: number, what: string]> = [
    ["1904-66_AZP.fits", 192, 192, "BITPIX -32 primary with NaN corners"],
    ["fermi_counts.fits.gz", 401, 201, "gzip'd BITPIX 32 in extension 1"],
    ["o4sp040b0_raw.fits", 62, 44, "HST STIS raw, unsigned 16-bit in extension 1"],
    ["test0.fits", 40, 40, "BITPIX 16 extension smaller than one tile"],
    ["scale.fits", 20, 21, "BITPIX 16 with BSCALE/BZERO"],
  ];
  for (const [file, width, height, what] of fitsCases) {
    it(`FITS ${file} (${what})`, async () => {
      await analyse(readFileSync(`${FITS_DIR}${file}`), "application/fits", {
        width,
        height,
        format: "fits",
      });
    });
  }

  it("FITS gzip'd in the test, sent as image/fits", async () => {
    const gz = gzipSync(readFileSync(`${FITS_DIR}1904-66_AZP.fits`));
    await analyse(gz, "image/fits", { width: 192, height: 192, format: "fits" });
  });

  it("FITS sniffed from application/octet-stream", async () => {
    await analyse(readFileSync(`${FITS_DIR}o4sp040b0_raw.fits`), "application/octet-stream", {
      width: 62,
      height: 44,
      format: "fits",
    });
  });

  it("JSON array of rows, bare and under {image}", async () => {
    const rows: number[][] = [];
    for (let y = 0; y < 80; y++) rows.push(Array.from(field.data.subarray(y * 256, y * 256 + 96)));
    await analyse(JSON.stringify(rows), "application/json", { width: 96, height: 80, format: "json" });
    await analyse(JSON.stringify({ image: rows }), "application/json; charset=utf-8", {
      width: 96,
      height: 80,
      format: "json",
    });
  });

  it("the same pixels give the same answer whatever the container (PNG, JSON)", async () => {
    const samples = quantise(field, 255, 1);
    const png = await grey8().png().toBuffer();
    const rows: number[][] = [];
    for (let y = 0; y < field.height; y++) rows.push(Array.from(samples.subarray(y * 256, (y + 1) * 256)));
    const fromPng = await analyse(png, "image/png", { width: 256, height: 192, format: "png" });
    const fromJson = await analyse(JSON.stringify(rows), "application/json", {
      width: 256,
      height: 192,
      format: "json",
    });
    expect(fromJson.tiles).toEqual(fromPng.tiles);
  });
});

interface Reference {
  width: number;
  height: number;
  background_sigma: number;
  sources: Array<{ x: number; y: number; snr: number }>;
}

function nearest(x: number, y: number, points: Array<{ x: number; y: number }>): number {
  let best = Number.POSITIVE_INFINITY;
  for (const p of points) best = Math.min(best, Math.hypot(p.x - x, p.y - y));
  return best;
}

describe("detection quality", () => {
  /*
   * Real sources: 1904-66_AZP.fits against photutils' DAOStarFinder (fixtures/make_reference.py,
   * fwhm 6 px, 3 sigma: 145 sources, 9 of them with peak >= 20 sigma). Both use numpy's
   * pixel-centre convention, so positions compare directly.
   *
   * Measured with models/v1 (onnxruntime-node 1.30, CPU): 193 detections, 133 with
   * confidence >= 0.5, 93 of them within 3 px of a reference (precision 0.70); chance level
   * 19/133 = 0.14; bright recall 8/9 (0.89).
   * Asserted (margin left for a retrained model of the same quality):
   *   precision: >= 0.55 of the detections with confidence >= 0.5 lie within 3 px of a
   *     reference source, and >= 2.5x the chance level (the same detections against the
   *     reference list mirrored left-right: same density and footprint, wrong places);
   *   recall: >= 7 of the 9 bright references (peak >= 20 sigma) have a detection (any
   *     confidence) within 3 px.
   */
  it("detections on a real image land on real sources (1904-66_AZP.fits vs photutils)", async () => {
    const reference = JSON.parse(
      readFileSync(`${E2E_FIXTURES}reference-1904-66_AZP.json`, "utf8"),
    ) as Reference;
    expect(reference.sources).toHaveLength(145);
    const refs = reference.sources;
    const bright = refs.filter((s) => s.snr >= 20);
    expect(bright).toHaveLength(9);

    const response = await analyse(readFileSync(`${FITS_DIR}1904-66_AZP.fits`), "application/fits", {
      width: 192,
      height: 192,
      format: "fits",
    });
    const detections = detectionsOf(response);
    const points = detections.map((d) => ({ x: d.cx, y: d.cy }));
    const confident = detections.filter((d) => d.confidence >= 0.5);
    const radius = 3;
    const hits = confident.filter((d) => nearest(d.cx, d.cy, refs) <= radius).length;
    const precision = hits / confident.length;
    const mirrored = refs.map((s) => ({ x: reference.width - 1 - s.x, y: s.y }));
    const chanceHits = confident.filter((d) => nearest(d.cx, d.cy, mirrored) <= radius).length;
    const chance = chanceHits / confident.length;
    const found = bright.filter((s) => nearest(s.x, s.y, points) <= radius).length;
    const summary =
      `${detections.length} detections; precision ${hits}/${confident.length} = ${precision.toFixed(3)}, ` +
      `chance ${chanceHits}/${confident.length} = ${chance.toFixed(3)}, bright recall ${found}/${bright.length}`;
    console.info(`1904-66_AZP: ${summary}`);
    expect(confident.length, summary).toBeGreaterThanOrEqual(50);
    expect(precision, summary).toBeGreaterThanOrEqual(0.55);
    expect(precision, summary).toBeGreaterThanOrEqual(2.5 * chance);
    expect(found, summary).toBeGreaterThanOrEqual(7);
  });

  /*
   * Synthetic: 60 Gaussian stars (sigma 1.5 px, peaks 80-210 over a background of 30 with
   * noise sigma 3: S/N 27-70) on a 320x256 field, sent as a 16-bit PNG.
   *
   * The service tiles without overlap and clips each box to its tile, so a star within a
   * few px of a tile edge (x or y = 64k - 0.5) comes back as two clipped boxes whose
   * centres are 2-4 px off. Interior stars (>= 4 px from every inner tile edge) are the
   * clean measure; the all-stars figures include the edge losses.
   *
   * Measured with models/v1, this seed: recall 53/60 (0.88), interior recall 46/46, 53 of
   * 66 detections within 2 px (0.80), mean offset (0.00, -0.10) px. Seeds 1-4: recall
   * 50-58/60, interior recall 100% every time, precision 0.75-0.97, offsets <= 0.07 px.
   * Asserted: interior recall within 2 px >= 0.95; all-stars recall within 2 px >= 0.8;
   * >= 0.7 of all detections within 2 px of a true star; mean offset of the matched
   * detections <= 0.3 px in x and in y (a half-pixel convention slip would show as 0.5).
   */
  it("finds synthetic stars within 2 px of their true positions", async () => {
    const stars = makeStarField({
      seed: 20240611,
      width: 320,
      height: 256,
      stars: 60,
      background: 30,
      noise: 3,
      amplitude: [80, 210],
      psfSigma: 1.5,
      margin: 6,
      minSeparation: 12,
    });
    expect(stars.stars).toHaveLength(60);
    const png = await grey16Png(stars);
    const response = await analyse(png, "image/png", { width: 320, height: 256, format: "png" });
    const detections = detectionsOf(response);
    const points = detections.map((d) => ({ x: d.cx, y: d.cy }));
    const radius = 2;
    const edgeDistance = (v: number, length: number): number => {
      let best = Number.POSITIVE_INFINITY;
      for (let edge = manifest.tileSize; edge < length; edge += manifest.tileSize) {
        best = Math.min(best, Math.abs(v - (edge - 0.5)));
      }
      return best;
    };
    const interior = stars.stars.filter((s) => edgeDistance(s.x, 320) >= 4 && edgeDistance(s.y, 256) >= 4);
    const recovered = stars.stars.filter((s) => nearest(s.x, s.y, points) <= radius);
    const interiorRecovered = interior.filter((s) => nearest(s.x, s.y, points) <= radius).length;
    const onTarget = detections.filter((d) => nearest(d.cx, d.cy, stars.stars) <= radius).length;
    let dx = 0;
    let dy = 0;
    for (const s of recovered) {
      const match = points.reduce((a, b) =>
        Math.hypot(b.x - s.x, b.y - s.y) < Math.hypot(a.x - s.x, a.y - s.y) ? b : a,
      );
      dx += match.x - s.x;
      dy += match.y - s.y;
    }
    dx /= recovered.length;
    dy /= recovered.length;
    const summary =
      `recall ${recovered.length}/${stars.stars.length}, interior recall ${interiorRecovered}/${interior.length}, ` +
      `precision ${onTarget}/${detections.length}, mean offset (${dx.toFixed(2)}, ${dy.toFixed(2)}) px`;
    console.info(`synthetic field: ${summary}`);
    expect(interiorRecovered / interior.length, summary).toBeGreaterThanOrEqual(0.95);
    expect(recovered.length / stars.stars.length, summary).toBeGreaterThanOrEqual(0.8);
    expect(onTarget / detections.length, summary).toBeGreaterThanOrEqual(0.7);
    expect(Math.abs(dx), summary).toBeLessThanOrEqual(0.3);
    expect(Math.abs(dy), summary).toBeLessThanOrEqual(0.3);
  });
});
