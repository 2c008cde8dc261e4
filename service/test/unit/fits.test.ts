import { describe, expect, it } from "vitest";
import { InputError } from "../../src/decode/errors.js";
import { parseFits } from "../../src/decode/fits.js";
import { card, encode, header, padData, primaryImage } from "./fits-writer.js";

const limits = { maxPixels: 1_000_000 };

function inputError(fn: () => unknown): InputError {
  try {
    fn();
  } catch (err) {
    expect(err).toBeInstanceOf(InputError);
    return err as InputError;
  }
  throw new Error("expected an InputError");
}

describe("parseFits: BITPIX", () => {
  // 3 wide, 2 high: NAXIS1 is the fast axis, so row 0 is the first three samples.
  it.each([
    [8, [0, 1, 127, 128, 200, 255]],
    [16, [-32768, -1, 0, 1, 1234, 32767]],
    [32, [-2147483648, -5, 0, 7, 100000, 2147483647]],
    [64, [-9007199254740991, -3, 0, 3, 65536, 9007199254740991]],
    [-32, [-1.5, 0, 0.25, 3.5, 1e10, -2e-3]],
    [-64, [-1.5, 0, 0.1, Math.PI, 1e300, -2e-300]],
  ])("reads BITPIX %i big-endian, row-major with NAXIS1 as width", (bitpix, values) => {
    const image = parseFits(primaryImage(bitpix, [3, 2], values), limits);
    expect(image).toMatchObject({ width: 3, height: 2, hdu: 0, bitpix });
    expect(Array.from(image.data)).toEqual(values.map((v) => Math.fround(v)));
  });

  it("passes IEEE NaN through for float data", () => {
    const image = parseFits(primaryImage(-32, [2, 1], [Number.NaN, 2]), limits);
    expect(Number.isNaN(image.data[0])).toBe(true);
    expect(image.data[1]).toBe(2);
  });

  it("applies BZERO 32768 to BITPIX 16 (unsigned 16-bit)", () => {
    const image = parseFits(primaryImage(16, [3, 1], [-32768, 0, 32767], [card("BZERO", 32768)]), limits);
    expect(Array.from(image.data)).toEqual([0, 32768, 65535]);
  });

  it("applies BSCALE and BZERO, including Fortran D exponents", () => {
    const extra = ["BSCALE  =               5.0D-1".padEnd(80), "BZERO   =                1.0D1".padEnd(80)];
    const image = parseFits(primaryImage(16, [2, 1], [4, -4], extra), limits);
    expect(Array.from(image.data)).toEqual([12, 8]);
  });

  it("turns integer samples equal to BLANK into NaN (before scaling)", () => {
    const image = parseFits(
      primaryImage(16, [3, 1], [-1, 5, -1], [card("BLANK", -1), card("BSCALE", 2), card("BZERO", 1)]),
      limits,
    );
    expect(Number.isNaN(image.data[0])).toBe(true);
    expect(image.data[1]).toBe(11);
    expect(Number.isNaN(image.data[2])).toBe(true);
  });

  it("ignores BLANK for float data", () => {
    const image = parseFits(primaryImage(-32, [1, 1], [7], [card("BLANK", 7)]), limits);
    expect(image.data[0]).toBe(7);
  });
});

describe("parseFits: HDU selection", () => {
  const emptyPrimary = (extra: string[] = []) =>
    header([card("SIMPLE", true), card("BITPIX", 8), card("NAXIS", 0), card("EXTEND", true), ...extra]);

  it("skips an empty primary and a BINTABLE (with heap) to read the first IMAGE extension", () => {
    // 3 rows of 4 bytes plus a 2890-byte heap: 2902 bytes of data, padded to 5760.
    const table = Buffer.concat([
      header([
        card("XTENSION", "BINTABLE"),
        card("BITPIX", 8),
        card("NAXIS", 2),
        card("NAXIS1", 4),
        card("NAXIS2", 3),
        card("PCOUNT", 2890),
        card("GCOUNT", 1),
        card("TFIELDS", 1),
        card("TFORM1", "1J"),
      ]),
      padData(Buffer.alloc(12 + 2890, 0x41)),
    ]);
    const image = Buffer.concat([
      header([
        card("XTENSION", "IMAGE"),
        card("BITPIX", 16),
        card("NAXIS", 2),
        card("NAXIS1", 2),
        card("NAXIS2", 2),
        card("PCOUNT", 0),
        card("GCOUNT", 1),
      ]),
      padData(encode(16, [1, 2, 3, 4])),
    ]);
    // The primary's BZERO must not leak into the extension.
    const file = Buffer.concat([emptyPrimary([card("BZERO", 32768)]), table, image]);
    expect(table.length).toBe(2880 + 5760);
    const parsed = parseFits(file, limits);
    expect(parsed).toMatchObject({ width: 2, height: 2, hdu: 2, bitpix: 16 });
    expect(Array.from(parsed.data)).toEqual([1, 2, 3, 4]);
  });

  it("skips an IMAGE extension without data", () => {
    const empty = header([card("XTENSION", "IMAGE"), card("BITPIX", 16), card("NAXIS", 0)]);
    const image = Buffer.concat([
      header([
        card("XTENSION", "IMAGE"),
        card("BITPIX", -64),
        card("NAXIS", 2),
        card("NAXIS1", 1),
        card("NAXIS2", 1),
      ]),
      padData(encode(-64, [0.5])),
    ]);
    const parsed = parseFits(Buffer.concat([emptyPrimary(), empty, image]), limits);
    expect(parsed.hdu).toBe(2);
    expect(parsed.data[0]).toBe(0.5);
  });

  it("reads a string value with an escaped quote and still recognises IMAGE", () => {
    const image = Buffer.concat([
      header([
        card("XTENSION", "IMAGE"),
        card("BITPIX", 8),
        card("NAXIS", 2),
        card("NAXIS1", 1),
        card("NAXIS2", 1),
        card("OBJECT", "Barnard's star"),
      ]),
      padData(encode(8, [9])),
    ]);
    expect(parseFits(Buffer.concat([emptyPrimary(), image]), limits).data[0]).toBe(9);
  });

  it("treats NAXIS3 = 1 as a 2-D image", () => {
    const image = parseFits(primaryImage(8, [2, 2, 1], [1, 2, 3, 4]), limits);
    expect(image).toMatchObject({ width: 2, height: 2 });
  });

  it("refuses a cube and says to send one plane", () => {
    const err = inputError(() => parseFits(primaryImage(8, [10, 10, 5], new Array(500).fill(0)), limits));
    expect(err.status).toBe(400);
    expect(err.message).toBe(
      "expected a 2-D image, got a 3-D cube 10x10x5 in the primary HDU; send one plane",
    );
  });

  it("refuses a 1-D array", () => {
    const err = inputError(() => parseFits(primaryImage(8, [4], [1, 2, 3, 4]), limits));
    expect(err.message).toBe(
      "expected a 2-D image, got a 1-D array of 4 samples in the primary HDU; send a 2-D image",
    );
  });

  it("says when no HDU holds an image", () => {
    const err = inputError(() => parseFits(emptyPrimary(), limits));
    expect(err.message).toMatch(/^no 2-D image in this FITS file.*\(HDUs found: primary\)$/);
  });

  it("refuses more pixels than the limit (413) before reading the data", () => {
    // The header claims 2000x2000 but no data follows: the limit must win over truncation.
    const file = header([
      card("SIMPLE", true),
      card("BITPIX", 8),
      card("NAXIS", 2),
      card("NAXIS1", 2000),
      card("NAXIS2", 2000),
    ]);
    const err = inputError(() => parseFits(file, { maxPixels: 1000 }));
    expect(err.status).toBe(413);
    expect(err.message).toContain("2000x2000 = 4000000 pixels, more than the limit of 1000");
  });
});

describe("parseFits: broken files", () => {
  it("refuses truncated data, naming what was declared and what is there", () => {
    const full = primaryImage(16, [100, 20], new Array(2000).fill(1));
    const err = inputError(() => parseFits(full.subarray(0, 2880 + 3000), limits));
    expect(err.message).toBe(
      "FITS data is truncated: the primary HDU declares 4000 bytes of data (axes 100x20, BITPIX 16) " +
        "but only 3000 bytes follow its header",
    );
  });

  it("accepts a file whose last block lacks its zero padding", () => {
    const full = primaryImage(16, [2, 1], [5, 6]);
    expect(Array.from(parseFits(full.subarray(0, 2880 + 4), limits).data)).toEqual([5, 6]);
  });

  it("refuses a header without END", () => {
    const cards = [card("SIMPLE", true), card("BITPIX", 8), card("NAXIS", 0)].join("").padEnd(2880);
    const err = inputError(() => parseFits(Buffer.from(cards, "latin1"), limits));
    expect(err.message).toContain("has no END card before the file ends");
  });

  it("refuses an unsupported BITPIX", () => {
    const err = inputError(() =>
      parseFits(primaryImage(8, [1, 1], [0]).fill("12", 30 + 80 - 2, 30 + 80), limits),
    );
    expect(err.message).toBe(
      "bad FITS header: BITPIX in the primary header is 12; supported values are 8, 16, 32, 64, -32 and -64",
    );
  });

  it("refuses SIMPLE = F", () => {
    const file = header([card("SIMPLE", false), card("BITPIX", 8), card("NAXIS", 0)]);
    expect(inputError(() => parseFits(file, limits)).message).toBe(
      "bad FITS header: SIMPLE must be T (this file says it does not conform to FITS)",
    );
  });

  it("refuses a missing NAXISn and an invalid keyword", () => {
    const missing = header([card("SIMPLE", true), card("BITPIX", 8), card("NAXIS", 2), card("NAXIS1", 3)]);
    expect(inputError(() => parseFits(missing, limits)).message).toBe(
      "bad FITS header: NAXIS2 in the primary header must be a non-negative integer",
    );
    const lower = header([card("SIMPLE", true), card("bitpix", 8)]);
    expect(inputError(() => parseFits(lower, limits)).message).toContain('invalid keyword "bitpix  "');
  });

  it("refuses a body that is not FITS at all", () => {
    expect(inputError(() => parseFits(Buffer.from("hello world"), limits)).message).toContain(
      "not a FITS file",
    );
  });
});
