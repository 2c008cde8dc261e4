/**
 * JSON images: a 2-D array of numbers, one inner array per row, top row first —
 * `[[0, 1], [2, 3]]` — or the same under `{ "image": [[...]] }`.
 */
import { assertPixelLimit, InputError } from "./errors.js";

const SHAPE_HINT =
  'send a 2-D array of numbers, one array per row: [[0, 1], [2, 3]] or {"image": [[0, 1], [2, 3]]}';

export function parseJsonImage(
  body: Uint8Array,
  limits: { maxPixels: number },
): { width: number; height: number; data: Float32Array } {
  let parsed: unknown;
  try {
    parsed = JSON.parse(Buffer.from(body.buffer, body.byteOffset, body.byteLength).toString("utf8"));
  } catch (err) {
    throw new InputError(`body is not valid JSON (${(err as Error).message}); ${SHAPE_HINT}`, 400, {
      cause: err,
    });
  }
  const rows: unknown =
    parsed !== null && typeof parsed === "object" && !Array.isArray(parsed) && "image" in parsed
      ? (parsed as { image: unknown }).image
      : parsed;
  if (!Array.isArray(rows)) throw new InputError(`JSON image must be an array of rows; ${SHAPE_HINT}`);
  if (rows.length === 0) throw new InputError(`JSON image is empty; ${SHAPE_HINT}`);
  const first: unknown = rows[0];
  if (!Array.isArray(first)) throw new InputError(`JSON image row 0 is not an array; ${SHAPE_HINT}`);
  const width = first.length;
  const height = rows.length;
  if (width === 0) throw new InputError(`JSON image row 0 is empty; ${SHAPE_HINT}`);
  // Checked from the first row's length before copying anything; a ragged row fails below.
  assertPixelLimit(width, height, limits.maxPixels);

  const data = new Float32Array(width * height);
  for (let y = 0; y < height; y++) {
    const row: unknown = rows[y];
    if (!Array.isArray(row)) throw new InputError(`JSON image row ${y} is not an array; ${SHAPE_HINT}`);
    if (row.length !== width) {
      throw new InputError(
        `JSON image rows must all have the same length: row 0 has ${width} values, row ${y} has ${row.length}`,
      );
    }
    for (let x = 0; x < width; x++) {
      const v: unknown = row[x];
      if (typeof v !== "number") {
        throw new InputError(
          `JSON image value at row ${y}, column ${x} is ${v === null ? "null" : typeof v}, not a number`,
        );
      }
      data[y * width + x] = v;
    }
  }
  return { width, height, data };
}
