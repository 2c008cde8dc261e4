import { crc32, deflateSync, gzipSync } from "node:zlib";
import sharp from "sharp";
import { describe, expect, it } from "vitest";
import { decodeImage, InputError, sniffFormat } from "../../src/decode/index.js";
import { primaryImage } from "./fits-writer.js";

const limits = { maxPixels: 10_000 };

async function inputError(promise: Promise<unknown>): Promise<InputError> {
  const err = await promise.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(InputError);
  return err as InputError;
}

/** A PNG written by hand (not by sharp/libpng): 16-bit, colour type 0 (grey) or 2 (RGB). */
function handPng16(width: number, height: number, samples: number[], colourType: 0 | 2): Buffer {
  const chunk = (type: string, data: Buffer) => {
    const length = Buffer.alloc(4);
    length.writeUInt32BE(data.length);
    const body = Buffer.concat([Buffer.from(type, "latin1"), data]);
    const crc = Buffer.alloc(4);
    crc.writeUInt32BE(crc32(body) >>> 0);
    return Buffer.concat([length, body, crc]);
  };
  const channels = colourType === 2 ? 3 : 1;
  const ihdr = Buffer.alloc(13);
  ihdr.writeUInt32BE(width, 0);
  ihdr.writeUInt32BE(height, 4);
  ihdr[8] = 16;
  ihdr[9] = colourType;
  const rows: Buffer[] = [];
  for (let y = 0; y < height; y++) {
    const row = Buffer.alloc(1 + width * channels * 2); // filter byte 0
    for (let i = 0; i < width * channels; i++)
      row.writeUInt16BE(samples[y * width * channels + i] ?? 0, 1 + 2 * i);
    rows.push(row);
  }
  return Buffer.concat([
    Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]),
    chunk("IHDR", ihdr),
    chunk("IDAT", deflateSync(Buffer.concat(rows))),
    chunk("IEND", Buffer.alloc(0)),
  ]);
}

describe("decodeImage: PNG", () => {
  it("reads an 8-bit greyscale PNG exactly", async () => {
    const png = await sharp(Buffer.from([0, 50, 100, 150, 200, 255]), {
      raw: { width: 3, height: 2, channels: 1 },
    })
      .png()
      .toBuffer();
    const image = await decodeImage(png, "image/png", limits);
    expect(image).toMatchObject({ width: 3, height: 2, format: "png" });
    expect(Array.from(image.data)).toEqual([0, 50, 100, 150, 200, 255]);
  });

  it("keeps a sharp-written 16-bit greyscale PNG at full precision", async () => {
    const values = [7, 10007, 20007, 30007, 40007, 65535];
    const png = await sharp(new Uint16Array(values), { raw: { width: 3, height: 2, channels: 1 } })
      .toColourspace("grey16")
      .png()
      .toBuffer();
    expect((await sharp(png).metadata()).depth).toBe("ushort");
    const image = await decodeImage(png, "image/png", limits);
    expect(Array.from(image.data)).toEqual(values);
  });

  it("keeps a hand-written 16-bit greyscale PNG at full precision", async () => {
    const values = [1, 256, 257, 65534];
    const image = await decodeImage(handPng16(2, 2, values, 0), "image/png", limits);
    expect(Array.from(image.data)).toEqual(values);
  });

  it("averages R, G and B of a 16-bit RGB PNG (no luminance weights)", async () => {
    const image = await decodeImage(handPng16(2, 1, [1000, 2000, 3003, 60000, 0, 3], 2), "image/png", limits);
    expect(Array.from(image.data)).toEqual([Math.fround(6003 / 3), 20001]);
  });

  it("averages an 8-bit RGB PNG and drops alpha", async () => {
    const rgba = Buffer.from([255, 0, 0, 255, 0, 255, 0, 0, 30, 60, 90, 128, 1, 2, 4, 255]);
    const png = await sharp(rgba, { raw: { width: 2, height: 2, channels: 4 } })
      .png()
      .toBuffer();
    const image = await decodeImage(png, "image/png", limits);
    expect(Array.from(image.data)).toEqual([85, 85, 60, Math.fround(7 / 3)]);
  });

  it("drops the alpha of a grey+alpha PNG", async () => {
    const ga = Buffer.from([10, 255, 20, 0]);
    const png = await sharp(ga, { raw: { width: 2, height: 1, channels: 2 } })
      .png()
      .toBuffer();
    expect(Array.from((await decodeImage(png, "image/png", limits)).data)).toEqual([10, 20]);
  });

  it("refuses a decompression bomb from its header, before decoding (413)", async () => {
    const bomb = handPng16(1, 1, [0], 0);
    bomb.writeUInt32BE(50_000, 16); // IHDR width
    bomb.writeUInt32BE(50_000, 20); // IHDR height
    bomb.writeUInt32BE(crc32(bomb.subarray(12, 29)) >>> 0, 29);
    const err = await inputError(decodeImage(bomb, "image/png", limits));
    expect(err.status).toBe(413);
    expect(err.message).toContain("50000x50000 = 2500000000 pixels, more than the limit of 10000");
  });

  it("refuses a corrupt PNG with 400", async () => {
    const png = await sharp(Buffer.alloc(64), { raw: { width: 8, height: 8, channels: 1 } })
      .png()
      .toBuffer();
    const err = await inputError(decodeImage(png.subarray(0, 40), "image/png", limits));
    expect(err.status).toBe(400);
    expect(err.message).toMatch(/^cannot (read|decode) the PNG image: /);
  });

  it("refuses a JPEG sent as image/png", async () => {
    const jpeg = await sharp(Buffer.alloc(64), { raw: { width: 8, height: 8, channels: 1 } })
      .jpeg()
      .toBuffer();
    const err = await inputError(decodeImage(jpeg, "image/png", limits));
    expect(err.message).toBe("the body is a JPEG, not a PNG image; send a matching content-type");
  });
});

describe("decodeImage: JPEG", () => {
  it("averages the channels of an RGB JPEG", async () => {
    const rgb = Buffer.alloc(16 * 16 * 3);
    for (let i = 0; i < 256; i++) rgb.set([30, 60, 93], i * 3);
    const jpeg = await sharp(rgb, { raw: { width: 16, height: 16, channels: 3 } })
      .jpeg({ quality: 100, chromaSubsampling: "4:4:4" })
      .toBuffer();
    const image = await decodeImage(jpeg, "image/jpeg", limits);
    expect(image).toMatchObject({ width: 16, height: 16, format: "jpeg" });
    expect(new Set(image.data).size).toBe(1);
    // The plain mean is 61; luminance weighting would give ~54.8. JPEG may move a channel by 1.
    expect(image.data[0]).toBeCloseTo(61, 0);
  });

  it("reads a greyscale JPEG", async () => {
    const jpeg = await sharp(Buffer.alloc(64, 77), { raw: { width: 8, height: 8, channels: 1 } })
      .jpeg({ quality: 100 })
      .toBuffer();
    const image = await decodeImage(jpeg, "image/jpeg; charset=binary", limits);
    expect(Array.from(image.data)).toEqual(new Array(64).fill(77));
  });

  it("refuses too many pixels with 413", async () => {
    const jpeg = await sharp({ create: { width: 200, height: 100, channels: 3, background: "#000" } })
      .jpeg()
      .toBuffer();
    const err = await inputError(decodeImage(jpeg, "image/jpeg", limits));
    expect(err.status).toBe(413);
  });
});

describe("decodeImage: JSON", () => {
  it("reads a 2-D array of rows", async () => {
    const image = await decodeImage(Buffer.from("[[0, 1.5, -2], [3, 4, 5e3]]"), "application/json", limits);
    expect(image).toMatchObject({ width: 3, height: 2, format: "json" });
    expect(Array.from(image.data)).toEqual([0, 1.5, -2, 3, 4, 5000]);
  });

  it('reads { "image": [[...]] }', async () => {
    const image = await decodeImage(
      Buffer.from('{"image": [[1], [2]]}'),
      "application/json; charset=utf-8",
      limits,
    );
    expect(image).toMatchObject({ width: 1, height: 2 });
  });

  it.each([
    ["[[1, 2], [3]]", "JSON image rows must all have the same length: row 0 has 2 values, row 1 has 1"],
    ['[[1, "2"]]', "JSON image value at row 0, column 1 is string, not a number"],
    ["[[1, null]]", "JSON image value at row 0, column 1 is null, not a number"],
    ["[]", "JSON image is empty"],
    ["[[]]", "JSON image row 0 is empty"],
    ["[1, 2]", "JSON image row 0 is not an array"],
    ['{"pixels": []}', "JSON image must be an array of rows"],
    ["[[1, 2]", "body is not valid JSON"],
  ])("refuses %s", async (body, message) => {
    const err = await inputError(decodeImage(Buffer.from(body), "application/json", limits));
    expect(err.status).toBe(400);
    expect(err.message.startsWith(message)).toBe(true);
  });

  it("refuses more than maxPixels with 413", async () => {
    const rows = JSON.stringify(Array.from({ length: 3 }, () => [1, 2, 3]));
    const err = await inputError(decodeImage(Buffer.from(rows), "application/json", { maxPixels: 8 }));
    expect(err.status).toBe(413);
  });
});

describe("decodeImage: content types and sniffing", () => {
  it("refuses an unsupported content type with 415 naming the supported ones", async () => {
    const err = await inputError(decodeImage(Buffer.from("x"), "text/plain", limits));
    expect(err.status).toBe(415);
    expect(err.message).toBe(
      'unsupported content-type "text/plain"; send one of image/png, image/jpeg, application/fits, ' +
        "image/fits, application/json, application/octet-stream",
    );
  });

  it("refuses an empty body", async () => {
    const err = await inputError(decodeImage(Buffer.alloc(0), "image/png", limits));
    expect(err.message).toBe("the request body is empty; send an image");
  });

  it("sniffs PNG, JPEG, FITS, gzip and JSON magic", async () => {
    const png = await sharp(Buffer.alloc(4), { raw: { width: 2, height: 2, channels: 1 } })
      .png()
      .toBuffer();
    const jpeg = await sharp(Buffer.alloc(4), { raw: { width: 2, height: 2, channels: 1 } })
      .jpeg()
      .toBuffer();
    const fits = primaryImage(8, [2, 1], [3, 4]);
    expect(sniffFormat(png)).toBe("png");
    expect(sniffFormat(jpeg)).toBe("jpeg");
    expect(sniffFormat(fits)).toBe("fits");
    expect(sniffFormat(gzipSync(fits))).toBe("fits");
    expect(sniffFormat(Buffer.from("  [[1]]"))).toBe("json");
    expect(sniffFormat(Buffer.from("GIF89a"))).toBeUndefined();
    const image = await decodeImage(fits, "Application/Octet-Stream", limits);
    expect(image).toMatchObject({ format: "fits", width: 2, height: 1 });
    expect(Array.from(image.data)).toEqual([3, 4]);
  });

  it("refuses an octet-stream it cannot identify with 415", async () => {
    const err = await inputError(decodeImage(Buffer.from("GIF89a..."), "application/octet-stream", limits));
    expect(err.status).toBe(415);
  });

  it("reads gzip'd FITS under image/fits and refuses gzip'd non-FITS", async () => {
    const fits = primaryImage(-32, [1, 2], [1.5, -2.5]);
    expect(Array.from((await decodeImage(gzipSync(fits), "image/fits", limits)).data)).toEqual([1.5, -2.5]);
    const err = await inputError(decodeImage(gzipSync(Buffer.from("hello")), "application/fits", limits));
    expect(err.message).toBe("the gzip'd body does not hold a FITS file");
  });

  it("stops a gzip bomb at the size cap (413)", async () => {
    const bomb = gzipSync(Buffer.alloc(4 * 1024 * 1024));
    const err = await inputError(decodeImage(bomb, "application/fits", { maxPixels: 100 }));
    expect(err.status).toBe(413);
    expect(err.message).toContain("expands to more than 1049376 bytes");
  });

  it("turns garbage under every declared type into an InputError", async () => {
    const garbage = Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a, 1, 2, 3]);
    for (const type of ["image/png", "image/jpeg", "application/fits", "application/json"]) {
      const err = await inputError(decodeImage(garbage, type, limits));
      expect(err.status).toBe(400);
    }
  });
});
