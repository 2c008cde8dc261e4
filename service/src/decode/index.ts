/**
 * Request body -> one-channel float32 image. The one decoding step that the service and
 * the accuracy gate share; every client mistake leaves here as an `InputError`.
 */
import { gunzipSync } from "node:zlib";
import type { DecodedImage } from "../contract.js";
import { InputError } from "./errors.js";
import { looksLikeFits, parseFits } from "./fits.js";
import { parseJsonImage } from "./json.js";
import { decodeRaster } from "./raster.js";

export { InputError, type InputErrorStatus } from "./errors.js";
export { type FitsImage, looksLikeFits, parseFits } from "./fits.js";
export { parseJsonImage } from "./json.js";

export interface DecodeLimits {
  /** Largest width * height accepted; larger images are refused (413) before decoding. */
  maxPixels: number;
}

export const SUPPORTED_CONTENT_TYPES = [
  "image/png",
  "image/jpeg",
  "application/fits",
  "image/fits",
  "application/json",
  "application/octet-stream",
] as const;

type Format = DecodedImage["format"];

const CONTENT_TYPES: Record<string, Format | "sniff"> = {
  "image/png": "png",
  "image/jpeg": "jpeg",
  "application/fits": "fits",
  "image/fits": "fits",
  "application/json": "json",
  "application/octet-stream": "sniff",
};

/**
 * Decodes a request body by its content type (parameters such as `; charset=utf-8` are
 * ignored; `application/octet-stream` is sniffed from the magic bytes). FITS may be gzip'd.
 */
export async function decodeImage(
  body: Buffer,
  contentType: string,
  limits: DecodeLimits,
): Promise<DecodedImage> {
  const mediaType = (contentType.split(";")[0] ?? "").trim().toLowerCase();
  const declared = CONTENT_TYPES[mediaType];
  if (declared === undefined) {
    throw new InputError(
      `unsupported content-type ${JSON.stringify(contentType)}; send one of ${SUPPORTED_CONTENT_TYPES.join(", ")}`,
      415,
    );
  }
  if (body.length === 0) throw new InputError("the request body is empty; send an image");
  const format = declared === "sniff" ? sniffFormat(body) : declared;
  if (format === undefined) {
    throw new InputError(
      "cannot tell the format of this application/octet-stream body from its first bytes " +
        "(expected PNG, JPEG, FITS, gzip'd FITS or JSON); send it with its own content-type",
      415,
    );
  }
  try {
    return await decodeAs(format, body, limits);
  } catch (err) {
    if (err instanceof InputError) throw err;
    // A decoder bug or a library surprise still means this input could not be read; never
    // let it out as a 500 with a stack-trace message.
    const message = err instanceof Error ? err.message : String(err);
    throw new InputError(`cannot decode the ${format} image: ${message}`, 400, { cause: err });
  }
}

async function decodeAs(format: Format, body: Buffer, limits: DecodeLimits): Promise<DecodedImage> {
  switch (format) {
    case "png":
    case "jpeg":
      return { ...(await decodeRaster(body, format, limits)), format };
    case "fits": {
      const bytes = isGzip(body) ? gunzipFits(body, limits) : body;
      const { width, height, data } = parseFits(bytes, limits);
      return { width, height, data, format };
    }
    case "json":
      return { ...parseJsonImage(body, limits), format };
  }
}

/** The format a body's magic bytes announce, or undefined. */
export function sniffFormat(body: Uint8Array): Format | undefined {
  if (body.length >= 8 && PNG_MAGIC.every((b, i) => body[i] === b)) return "png";
  if (body[0] === 0xff && body[1] === 0xd8 && body[2] === 0xff) return "jpeg";
  if (looksLikeFits(body) || isGzip(body)) return "fits";
  const firstNonSpace = body.find((b) => b !== 0x20 && b !== 0x09 && b !== 0x0a && b !== 0x0d);
  if (firstNonSpace === 0x5b || firstNonSpace === 0x7b) return "json"; // "[" or "{"
  return undefined;
}

const PNG_MAGIC = [0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a];

function isGzip(body: Uint8Array): boolean {
  return body[0] === 0x1f && body[1] === 0x8b;
}

/**
 * Room for the largest accepted image at 8 bytes a pixel plus headers and small extra
 * HDUs; a gzip bomb stops at this size instead of filling memory.
 */
export function gunzipCap(limits: DecodeLimits): number {
  return limits.maxPixels * 8 + 1024 * 1024;
}

function gunzipFits(body: Buffer, limits: DecodeLimits): Buffer {
  const cap = gunzipCap(limits);
  let out: Buffer;
  try {
    out = gunzipSync(body, { maxOutputLength: cap });
  } catch (err) {
    const code = (err as { code?: string }).code;
    if (code === "ERR_BUFFER_TOO_LARGE" || err instanceof RangeError) {
      throw new InputError(
        `gzip'd FITS expands to more than ${cap} bytes, beyond what an image of at most ` +
          `${limits.maxPixels} pixels needs; send a smaller file`,
        413,
        { cause: err },
      );
    }
    throw new InputError(`cannot gunzip the body: ${(err as Error).message}`, 400, { cause: err });
  }
  if (!looksLikeFits(out)) throw new InputError("the gzip'd body does not hold a FITS file");
  return out;
}
