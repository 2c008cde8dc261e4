/**
 * PNG and JPEG through sharp (libvips), reduced to one channel in the image's own units:
 * 0..255 for 8-bit, 0..65535 for 16-bit PNG (kept at full precision, never scaled to 8 bits).
 *
 * Colour images become the plain mean of R, G and B, not a luminance weighting: the models
 * see single-band sky, and an equal-weight mean treats a false-colour composite's bands
 * alike rather than favouring green. Alpha is dropped. EXIF orientation is not applied:
 * coordinates refer to the pixels as stored.
 */
import sharp, { type Metadata, type OutputInfo } from "sharp";
import { assertPixelLimit, InputError } from "./errors.js";

export async function decodeRaster(
  body: Uint8Array,
  format: "png" | "jpeg",
  limits: { maxPixels: number },
): Promise<{ width: number; height: number; data: Float32Array }> {
  const label = format.toUpperCase();
  // sharp refuses images whose *header* dimensions exceed limitInputPixels before it
  // decompresses anything; we check the same header ourselves first for a precise 413.
  const options = { limitInputPixels: limits.maxPixels, failOn: "error" as const };
  let meta: Metadata;
  try {
    // metadata() parses the header only, so it may run without the limit: that way the
    // 413 below can state the image's real size.
    meta = await sharp(body, { ...options, limitInputPixels: false }).metadata();
  } catch (err) {
    throw decodeError(err, `cannot read the ${label} image`, limits.maxPixels);
  }
  if (meta.format !== format) {
    throw new InputError(
      `the body is ${meta.format === undefined ? "not" : `a ${meta.format.toUpperCase()}, not`} a ${label} ` +
        "image; send a matching content-type",
    );
  }
  if (meta.width === undefined || meta.height === undefined) {
    throw new InputError(`cannot read the ${label} image: its header has no dimensions`);
  }
  assertPixelLimit(meta.width, meta.height, limits.maxPixels);

  const sixteen = meta.depth === "ushort";
  const grey = meta.channels === 1 || meta.channels === 2 || meta.space === "b-w" || meta.space === "grey16";
  const colourspace = grey ? (sixteen ? "grey16" : "b-w") : sixteen ? "rgb16" : "srgb";
  let raw: { data: Buffer; info: OutputInfo };
  try {
    raw = await sharp(body, options)
      .removeAlpha()
      .toColourspace(colourspace)
      .raw({ depth: sixteen ? "ushort" : "uchar" })
      .toBuffer({ resolveWithObject: true });
  } catch (err) {
    throw decodeError(err, `cannot decode the ${label} image`, limits.maxPixels);
  }

  const { width, height, channels } = raw.info;
  const samples = sixteen
    ? new Uint16Array(raw.data.buffer, raw.data.byteOffset, raw.data.byteLength / 2)
    : new Uint8Array(raw.data.buffer, raw.data.byteOffset, raw.data.byteLength);
  const count = width * height;
  const data = new Float32Array(count);
  if (channels === 1) {
    for (let i = 0; i < count; i++) data[i] = samples[i] ?? 0;
  } else {
    for (let i = 0; i < count; i++) {
      let sum = 0;
      for (let c = 0; c < channels; c++) sum += samples[i * channels + c] ?? 0;
      data[i] = sum / channels;
    }
  }
  return { width, height, data };
}

function decodeError(err: unknown, context: string, maxPixels: number): InputError {
  const message = sharpMessage(err);
  if (/pixel limit/i.test(message)) {
    return new InputError(
      `image has more than the limit of ${maxPixels} pixels; send a smaller cut-out`,
      413,
      {
        cause: err,
      },
    );
  }
  return new InputError(`${context}: ${message}`, 400, { cause: err });
}

function sharpMessage(err: unknown): string {
  const message = err instanceof Error ? err.message : String(err);
  return message.trim().replace(/:$/, "") || "unknown decoder error";
}
