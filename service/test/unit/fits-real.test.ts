/**
 * FITS files nobody on this project wrote (astropy's and photutils' test data, see
 * ../fixtures/fits/README.md). Expected values were read once with astropy 5.2.1:
 * `fits.open(path)[hdu].data` (physical values), indexed [y, x].
 */
import { readFileSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { describe, expect, it } from "vitest";
import { parseFits } from "../../src/decode/fits.js";
import { decodeImage, InputError } from "../../src/decode/index.js";

const fixture = (name: string) =>
  readFileSync(fileURLToPath(new URL(`../fixtures/fits/${name}`, import.meta.url)));
const limits = { maxPixels: 1_000_000 };

function at(image: { width: number; data: Float32Array }, y: number, x: number): number {
  return image.data[y * image.width + x] as number;
}

function stats(data: Float32Array) {
  let sum = 0;
  let nan = 0;
  let min = Number.POSITIVE_INFINITY;
  let max = Number.NEGATIVE_INFINITY;
  for (const v of data) {
    if (Number.isNaN(v)) {
      nan++;
      continue;
    }
    sum += v;
    min = Math.min(min, v);
    max = Math.max(max, v);
  }
  return { sum, nan, min, max };
}

describe("parseFits on real files", () => {
  it("test0.fits: empty primary (with its own BZERO), first IMAGE extension, BITPIX 16", () => {
    const image = parseFits(fixture("test0.fits"), limits);
    expect(image).toMatchObject({ width: 40, height: 40, hdu: 1, bitpix: 16 });
    expect([at(image, 0, 0), at(image, 0, 1), at(image, 1, 0), at(image, 39, 39), at(image, 20, 13)]).toEqual(
      [313, 312, 315, 314, 313],
    );
    expect(stats(image.data)).toEqual({ sum: 501021, nan: 0, min: 309, max: 474 });
  });

  it("o4sp040b0_raw.fits: HST STIS raw, unsigned 16-bit via BZERO 32768", () => {
    const image = parseFits(fixture("o4sp040b0_raw.fits"), limits);
    expect(image).toMatchObject({ width: 62, height: 44, hdu: 1, bitpix: 16 });
    expect([at(image, 0, 0), at(image, 0, 1), at(image, 1, 0), at(image, 43, 61), at(image, 22, 20)]).toEqual(
      [1507, 1509, 1508, 1508, 1508],
    );
    expect(stats(image.data)).toEqual({ sum: 4115095, nan: 0, min: 1487, max: 1515 });
  });

  it("scale.fits: BSCALE/BZERO applied to BITPIX 16", () => {
    const image = parseFits(fixture("scale.fits"), limits);
    expect(image).toMatchObject({ width: 20, height: 21, hdu: 0 });
    // astropy scales in float32; we scale in float64 and round once, so compare to ~1e-4.
    expect(at(image, 0, 0)).toBeCloseTo(557.7562866210938, 4);
    expect(at(image, 0, 1)).toBeCloseTo(520.035400390625, 4);
    expect(at(image, 1, 0)).toBeCloseTo(502.68560791015625, 4);
    expect(at(image, 20, 19)).toBeCloseTo(493.34698486328125, 4);
    expect(at(image, 10, 6)).toBeCloseTo(513.1687622070312, 4);
    const s = stats(image.data);
    expect(s.sum).toBeCloseTo(223202.76544189453, 1);
    expect(s.min).toBeCloseTo(491.882080078125, 4);
    expect(s.max).toBeCloseTo(2726.615234375, 3);
  });

  it("blank.fits: BITPIX 64 sample equal to BLANK is NaN", () => {
    const image = parseFits(fixture("blank.fits"), limits);
    expect(image).toMatchObject({ width: 1, height: 1, bitpix: 64 });
    expect(Number.isNaN(image.data[0])).toBe(true);
  });

  it("1904-66_AZP.fits: BITPIX -32 with NaN outside the projection", () => {
    const image = parseFits(fixture("1904-66_AZP.fits"), limits);
    expect(image).toMatchObject({ width: 192, height: 192, hdu: 0, bitpix: -32 });
    expect(Number.isNaN(at(image, 0, 0))).toBe(true);
    expect(at(image, 96, 64)).toBe(Math.fround(-0.011396609246730804));
    const s = stats(image.data);
    expect(s.nan).toBe(8121);
    expect(s.sum).toBeCloseTo(865.940921611944, 6);
    expect(s.min).toBe(Math.fround(-0.681549072265625));
    expect(s.max).toBe(Math.fround(13.575860977172852));
  });

  it("arange.fits: an 11x10x7 cube is refused", () => {
    expect(() => parseFits(fixture("arange.fits"), limits)).toThrow(
      "expected a 2-D image, got a 3-D cube 11x10x7 in the primary HDU; send one plane",
    );
  });

  it("stddata.fits: only binary tables, so no image", () => {
    expect(() => parseFits(fixture("stddata.fits"), limits)).toThrow(
      "no 2-D image in this FITS file: neither the primary HDU nor an IMAGE extension holds data " +
        "(HDUs found: primary, BINTABLE, BINTABLE)",
    );
  });

  it("comp.fits: a tile-compressed image is refused with a hint", () => {
    expect(() => parseFits(fixture("comp.fits"), limits)).toThrow(/tile-compressed image.*not supported/);
  });
});

describe("decodeImage on real FITS", () => {
  it("fermi_counts.fits.gz: gunzipped, BITPIX 32 in extension 1", async () => {
    const image = await decodeImage(fixture("fermi_counts.fits.gz"), "application/fits", limits);
    expect(image).toMatchObject({ width: 401, height: 201, format: "fits" });
    expect([at(image, 0, 0), at(image, 200, 400), at(image, 100, 133)]).toEqual([0, 0, 1]);
    expect(stats(image.data)).toEqual({ sum: 24803, nan: 0, min: 0, max: 31 });
  });

  it("sniffs gzip'd FITS sent as application/octet-stream", async () => {
    const image = await decodeImage(fixture("fermi_counts.fits.gz"), "application/octet-stream", limits);
    expect(image.width).toBe(401);
  });

  it("refuses a real image over the pixel limit with 413", async () => {
    const err = await decodeImage(fixture("test0.fits"), "image/fits", { maxPixels: 1599 }).catch((e) => e);
    expect(err).toBeInstanceOf(InputError);
    expect(err.status).toBe(413);
  });
});
