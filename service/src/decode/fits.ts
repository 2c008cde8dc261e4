/**
 * A small FITS reader: enough of FITS 4.0 (https://fits.gsfc.nasa.gov/fits_standard.html)
 * to find one 2-D image and read it as float32 physical values.
 *
 * - Headers: 2880-byte blocks of 80-character cards, ending at the END card.
 * - The image is the primary HDU when it holds one, else the first IMAGE extension.
 *   Every other HDU (BINTABLE, TABLE, random groups, empty IMAGEs) is skipped by its
 *   declared data size, |BITPIX|/8 * GCOUNT * (PCOUNT + NAXIS1 * ... * NAXISn).
 * - Data: big-endian BITPIX 8 (unsigned), 16, 32, 64 (signed) and -32, -64 (IEEE);
 *   physical = BZERO + BSCALE * stored (so BITPIX 16 with BZERO 32768 reads as unsigned);
 *   integer samples equal to BLANK become NaN.
 * - Orientation: row 0 of the result is the first row stored in the file (FITS y = 1),
 *   exactly as astropy/numpy index `data[y, x]`. We do not flip to "display" order, so
 *   pixel coordinates in responses match what an astronomer's own tools report.
 */
import { assertPixelLimit, InputError } from "./errors.js";

export const FITS_BLOCK = 2880;
const CARD = 80;

export interface FitsImage {
  width: number;
  height: number;
  /** width * height physical values, row-major, file order (see the module comment). */
  data: Float32Array;
  /** Which HDU the image came from (0 = primary). */
  hdu: number;
  bitpix: number;
}

type CardValue = string | number | boolean;

interface Hdu {
  index: number;
  cards: Map<string, CardValue>;
  dataStart: number;
  /** Declared data size in bytes, without the padding to a whole block. */
  dataBytes: number;
  bitpix: number;
  axes: number[];
}

const SUPPORTED_BITPIX = new Set([8, 16, 32, 64, -32, -64]);

/** True when the buffer starts like a FITS primary header. */
export function looksLikeFits(body: Uint8Array): boolean {
  return body.length >= 9 && Buffer.from(body.buffer, body.byteOffset, 9).toString("latin1") === "SIMPLE  =";
}

/**
 * Reads the first 2-D image of a FITS file. Throws `InputError` (400) for anything that is
 * not a readable 2-D image, 413 when the image has more than `maxPixels` pixels.
 */
export function parseFits(body: Uint8Array, limits: { maxPixels: number }): FitsImage {
  const buf = Buffer.from(body.buffer, body.byteOffset, body.byteLength);
  if (!looksLikeFits(buf)) {
    throw new InputError('not a FITS file: it must start with the card "SIMPLE  =  T"');
  }
  const seen: string[] = [];
  let sawTileCompressed = false;
  let offset = 0;
  for (let index = 0; offset < buf.length; index++) {
    if (index > 0 && buf.toString("latin1", offset, offset + 9) !== "XTENSION=") {
      // Trailing bytes after the last HDU that are not another header: ignore them, as
      // astropy does (with a warning).
      break;
    }
    const hdu = readHdu(buf, offset, index);
    const xtension = index === 0 ? undefined : stringCard(hdu, "XTENSION");
    const isRandomGroups = index === 0 && hdu.cards.get("GROUPS") === true && hdu.axes[0] === 0;
    seen.push(index === 0 ? "primary" : (xtension ?? "?"));
    if (xtension === "BINTABLE" && hdu.cards.get("ZIMAGE") === true) sawTileCompressed = true;

    const isImage = (index === 0 && !isRandomGroups) || xtension === "IMAGE";
    const samples = hdu.axes.length === 0 ? 0 : hdu.axes.reduce((a, b) => a * b, 1);
    if (isImage && samples > 0) return readImage(buf, hdu, limits.maxPixels);

    const padded = Math.ceil(hdu.dataBytes / FITS_BLOCK) * FITS_BLOCK;
    if (hdu.dataStart + hdu.dataBytes > buf.length) throw truncated(hdu, buf.length);
    offset = hdu.dataStart + padded;
  }
  if (sawTileCompressed) {
    throw new InputError(
      "this FITS file holds a tile-compressed image (a BINTABLE with ZIMAGE = T), which is not " +
        "supported; uncompress it first (e.g. funpack, or astropy's CompImageHDU -> ImageHDU)",
    );
  }
  throw new InputError(
    `no 2-D image in this FITS file: neither the primary HDU nor an IMAGE extension holds data ` +
      `(HDUs found: ${seen.join(", ")})`,
  );
}

function readImage(buf: Buffer, hdu: Hdu, maxPixels: number): FitsImage {
  const where = hdu.index === 0 ? "the primary HDU" : `extension ${hdu.index}`;
  // Degenerate trailing axes (NAXIS3 = 1, NAXIS4 = 1 ...) still describe one plane.
  const axes = [...hdu.axes];
  while (axes.length > 2 && axes[axes.length - 1] === 1) axes.pop();
  if (axes.length !== 2) {
    const shape = hdu.axes.join("x");
    const what = axes.length === 1 ? `a 1-D array of ${shape} samples` : `a ${axes.length}-D cube ${shape}`;
    const hint = axes.length === 1 ? "send a 2-D image" : "send one plane";
    throw new InputError(`expected a 2-D image, got ${what} in ${where}; ${hint}`);
  }
  const [width, height] = axes as [number, number];
  assertPixelLimit(width, height, maxPixels);
  if (hdu.dataStart + hdu.dataBytes > buf.length) throw truncated(hdu, buf.length);

  const bscale = numberCard(hdu, "BSCALE", 1);
  const bzero = numberCard(hdu, "BZERO", 0);
  const blankCard = hdu.cards.get("BLANK");
  const blank = hdu.bitpix > 0 && typeof blankCard === "number" ? blankCard : undefined;

  const count = width * height;
  const data = new Float32Array(count);
  const view = new DataView(buf.buffer, buf.byteOffset + hdu.dataStart, hdu.dataBytes);
  const physical = (stored: number): number => bzero + bscale * stored;
  switch (hdu.bitpix) {
    case 8:
      for (let i = 0; i < count; i++) {
        const v = view.getUint8(i);
        data[i] = v === blank ? Number.NaN : physical(v);
      }
      break;
    case 16:
      for (let i = 0; i < count; i++) {
        const v = view.getInt16(i * 2, false);
        data[i] = v === blank ? Number.NaN : physical(v);
      }
      break;
    case 32:
      for (let i = 0; i < count; i++) {
        const v = view.getInt32(i * 4, false);
        data[i] = v === blank ? Number.NaN : physical(v);
      }
      break;
    case 64: {
      const blank64 = blank === undefined ? undefined : BigInt(blank);
      for (let i = 0; i < count; i++) {
        const v = view.getBigInt64(i * 8, false);
        data[i] = v === blank64 ? Number.NaN : physical(Number(v));
      }
      break;
    }
    case -32:
      for (let i = 0; i < count; i++) data[i] = physical(view.getFloat32(i * 4, false));
      break;
    case -64:
      for (let i = 0; i < count; i++) data[i] = physical(view.getFloat64(i * 8, false));
      break;
  }
  return { width, height, data, hdu: hdu.index, bitpix: hdu.bitpix };
}

function readHdu(buf: Buffer, start: number, index: number): Hdu {
  const where = index === 0 ? "primary header" : `header of extension ${index}`;
  const cards = new Map<string, CardValue>();
  let offset = start;
  let cardNumber = 0;
  let ended = false;
  while (!ended) {
    if (offset + FITS_BLOCK > buf.length) {
      throw new InputError(
        `bad FITS header: the ${where} has no END card before the file ends (a FITS header is ` +
          "whole 2880-byte blocks of 80-character cards ending with END); the file may be truncated",
      );
    }
    for (let c = 0; c < FITS_BLOCK / CARD && !ended; c++, cardNumber++) {
      const card = buf.toString("latin1", offset + c * CARD, offset + (c + 1) * CARD);
      const keyword = card.slice(0, 8).trimEnd();
      if (!/^[A-Z0-9_-]*$/.test(keyword)) {
        throw new InputError(
          `bad FITS header: card ${cardNumber + 1} of the ${where} has an invalid keyword ` +
            `${JSON.stringify(card.slice(0, 8))} (keywords are upper-case letters, digits, '-' and '_')`,
        );
      }
      if (keyword === "END") {
        ended = true;
        break;
      }
      if (cardNumber === 0) {
        const expected = index === 0 ? "SIMPLE" : "XTENSION";
        if (keyword !== expected) {
          throw new InputError(
            `bad FITS header: the ${where} must start with ${expected}, found "${keyword}"`,
          );
        }
      }
      if (card.slice(8, 10) === "= " && keyword !== "" && !cards.has(keyword)) {
        const value = parseValue(card.slice(10));
        if (value !== undefined) cards.set(keyword, value);
      }
    }
    offset += FITS_BLOCK;
  }

  if (index === 0 && cards.get("SIMPLE") !== true) {
    throw new InputError("bad FITS header: SIMPLE must be T (this file says it does not conform to FITS)");
  }
  const bitpix = cards.get("BITPIX");
  if (typeof bitpix !== "number" || !SUPPORTED_BITPIX.has(bitpix)) {
    throw new InputError(
      `bad FITS header: BITPIX in the ${where} is ${bitpix === undefined ? "missing" : JSON.stringify(bitpix)}; ` +
        "supported values are 8, 16, 32, 64, -32 and -64",
    );
  }
  const naxis = cards.get("NAXIS");
  if (typeof naxis !== "number" || !Number.isInteger(naxis) || naxis < 0 || naxis > 999) {
    throw new InputError(`bad FITS header: NAXIS in the ${where} must be an integer 0..999`);
  }
  const axes: number[] = [];
  for (let n = 1; n <= naxis; n++) {
    const size = cards.get(`NAXIS${n}`);
    if (typeof size !== "number" || !Number.isInteger(size) || size < 0) {
      throw new InputError(`bad FITS header: NAXIS${n} in the ${where} must be a non-negative integer`);
    }
    axes.push(size);
  }
  const pcount = index === 0 ? 0 : integerCard(cards, "PCOUNT", 0, where);
  const gcount = index === 0 ? 1 : integerCard(cards, "GCOUNT", 1, where);
  // Random groups (primary, GROUPS = T, NAXIS1 = 0) count PCOUNT/GCOUNT too, and skip NAXIS1.
  const groups = index === 0 && cards.get("GROUPS") === true && axes[0] === 0;
  const groupPcount = groups ? integerCard(cards, "PCOUNT", 0, where) : pcount;
  const groupGcount = groups ? integerCard(cards, "GCOUNT", 1, where) : gcount;
  const dims = groups ? axes.slice(1) : axes;
  const samples = naxis === 0 ? 0 : dims.reduce((a, b) => a * b, 1);
  const dataBytes =
    naxis === 0 && !groups ? 0 : (Math.abs(bitpix) / 8) * groupGcount * (groupPcount + samples);
  if (!Number.isSafeInteger(dataBytes)) {
    throw new InputError(`bad FITS header: the ${where} declares an impossible data size`);
  }
  return { index, cards, dataStart: offset, dataBytes, bitpix, axes };
}

/** Parses the value field of a card (columns 11-80); undefined for values we do not need. */
function parseValue(field: string): CardValue | undefined {
  const text = field.trimStart();
  if (text.startsWith("'")) {
    let out = "";
    for (let i = 1; i < text.length; i++) {
      const ch = text[i];
      if (ch === "'") {
        if (text[i + 1] === "'") {
          out += "'";
          i++;
          continue;
        }
        // Trailing spaces in a string value are not significant; leading ones are.
        return out.trimEnd();
      }
      out += ch;
    }
    return undefined;
  }
  const slash = text.indexOf("/");
  const token = (slash === -1 ? text : text.slice(0, slash)).trim();
  if (token === "T") return true;
  if (token === "F") return false;
  if (/^[+-]?(\d+\.?\d*|\.\d+)([EeDd][+-]?\d+)?$/.test(token)) return Number(token.replace(/[Dd]/, "E"));
  return undefined;
}

function stringCard(hdu: Hdu, key: string): string | undefined {
  const value = hdu.cards.get(key);
  return typeof value === "string" ? value : undefined;
}

function numberCard(hdu: Hdu, key: string, fallback: number): number {
  const value = hdu.cards.get(key);
  if (value === undefined) return fallback;
  if (typeof value !== "number" || !Number.isFinite(value)) {
    throw new InputError(`bad FITS header: ${key} must be a number, got ${JSON.stringify(value)}`);
  }
  return value;
}

function integerCard(cards: Map<string, CardValue>, key: string, fallback: number, where: string): number {
  const value = cards.get(key) ?? fallback;
  if (typeof value !== "number" || !Number.isInteger(value) || value < 0) {
    throw new InputError(`bad FITS header: ${key} in the ${where} must be a non-negative integer`);
  }
  return value;
}

function truncated(hdu: Hdu, length: number): InputError {
  const where = hdu.index === 0 ? "the primary HDU" : `extension ${hdu.index}`;
  const available = Math.max(0, length - hdu.dataStart);
  return new InputError(
    `FITS data is truncated: ${where} declares ${hdu.dataBytes} bytes of data ` +
      `(axes ${hdu.axes.join("x") || "none"}, BITPIX ${hdu.bitpix}) but only ${available} bytes follow its header`,
  );
}
