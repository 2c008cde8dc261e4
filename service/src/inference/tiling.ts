/**
 * Image -> model-sized tiles, normalised exactly as in training (the manifest's
 * `normalisation` block; the Python model build implements the same definition):
 *
 *   real    = the tile's pixels that lie inside the image (padding excluded)
 *   median  = median of the finite values in `real` (0 when none is finite)
 *   real'   = `real` with every NaN/±Inf replaced by `median`
 *   MAD     = median(|real' - median|)
 *   scale   = 1.4826 * MAD, or 1 when MAD == 0
 *   x       = asinh(((v - median) / scale) / softening)
 *   padding = the median, so it normalises to exactly 0
 *
 * Medians of an even count are the mean of the two middle values (numpy's definition).
 * Arithmetic is float64; the result is stored as float32.
 */

import type { DecodedImage, Tile } from "../contract.js";
import { InputError } from "../decode/errors.js";
import type { ModelManifest } from "../model/manifest.js";

/** 1 / Φ⁻¹(3/4): makes the MAD a consistent estimator of a Gaussian's sigma. */
export const MAD_TO_SIGMA = 1.4826;

export type TilingSpec = Pick<ModelManifest, "tileSize" | "normalisation">;

/**
 * Where tiles start along one axis: 0, T, 2T, ... with the last one moved back so it ends
 * at the image edge (it may overlap its neighbour). A length <= T gives one tile at 0.
 */
export function tileOrigins(length: number, tileSize: number): number[] {
  if (length <= tileSize) return [0];
  const origins: number[] = [];
  for (let o = 0; o + tileSize < length; o += tileSize) origins.push(o);
  origins.push(length - tileSize);
  return origins;
}

/**
 * Refuses, before any tile is cut, an image whose tiles would hold more model pixels than
 * `maxPixels`. The pixel limit alone does not bound the work: a 1,000,000 x 1 image is
 * a million pixels but 15,625 tiles of 64 x 64 — 64 times the memory and model time.
 */
export function assertTileBudget(width: number, height: number, tileSize: number, maxPixels: number): void {
  const tiles = tileOrigins(width, tileSize).length * tileOrigins(height, tileSize).length;
  const modelPixels = tiles * tileSize * tileSize;
  if (modelPixels > maxPixels) {
    throw new InputError(
      `the image is ${width}x${height}: it cuts into ${tiles} tiles of ${tileSize}x${tileSize} (${modelPixels} model pixels), over the limit of ${maxPixels}; send a squarer image or split it`,
      413,
    );
  }
}

/** Cuts an image into normalised tiles, row by row from the top-left. */
export function cutTiles(image: Pick<DecodedImage, "width" | "height" | "data">, spec: TilingSpec): Tile[] {
  const { width, height, data } = image;
  if (width <= 0 || height <= 0 || data.length !== width * height) {
    throw new Error(`cannot tile a ${width}x${height} image with ${data.length} samples`);
  }
  const size = spec.tileSize;
  const tiles: Tile[] = [];
  for (const y of tileOrigins(height, size)) {
    for (const x of tileOrigins(width, size)) {
      const w = Math.min(size, width - x);
      const h = Math.min(size, height - y);
      const real = new Float64Array(w * h);
      for (let row = 0; row < h; row++) {
        for (let col = 0; col < w; col++)
          real[row * w + col] = data[(y + row) * width + x + col] ?? Number.NaN;
      }
      const normalised = normaliseRobustAsinh(real, spec.normalisation.softening);
      // Padding is the median, which normalises to asinh(0) = 0: the zero-filled array is it.
      const pixels = new Float32Array(size * size);
      for (let row = 0; row < h; row++) pixels.set(normalised.subarray(row * w, (row + 1) * w), row * size);
      tiles.push({ x, y, width: w, height: h, pixels });
    }
  }
  return tiles;
}

/** The robust-asinh normalisation of a tile's real pixels (see the module comment). */
export function normaliseRobustAsinh(real: ArrayLike<number>, softening: number): Float32Array {
  const n = real.length;
  const finite = new Float64Array(n);
  let count = 0;
  for (let i = 0; i < n; i++) {
    const v = real[i] as number;
    if (Number.isFinite(v)) finite[count++] = v;
  }
  const median = count === 0 ? 0 : medianInPlace(finite.subarray(0, count));
  const deviations = new Float64Array(n);
  for (let i = 0; i < n; i++) {
    const v = real[i] as number;
    deviations[i] = Number.isFinite(v) ? Math.abs(v - median) : 0;
  }
  const mad = n === 0 ? 0 : medianInPlace(deviations);
  const scale = mad === 0 ? 1 : MAD_TO_SIGMA * mad;
  const out = new Float32Array(n);
  for (let i = 0; i < n; i++) {
    const v = real[i] as number;
    const z = Number.isFinite(v) ? (v - median) / scale : 0;
    out[i] = Math.asinh(z / softening);
  }
  return out;
}

/** Median of a non-empty array (sorts it); even counts average the two middle values. */
export function medianInPlace(values: Float64Array): number {
  // Selection, not a sort: O(n) on average, and it runs twice per tile on the hot path.
  const mid = values.length >> 1;
  const upper = selectInPlace(values, mid);
  if (values.length % 2 === 1) return upper;
  // After selection everything left of `mid` is <= upper: the lower middle is their maximum.
  let lower = Number.NEGATIVE_INFINITY;
  for (let i = 0; i < mid; i++) if ((values[i] as number) > lower) lower = values[i] as number;
  return (lower + upper) / 2;
}

/** Hoare's quickselect: puts the k-th smallest value at index k and returns it. */
function selectInPlace(values: Float64Array, k: number): number {
  let left = 0;
  let right = values.length - 1;
  while (right > left) {
    const pivot = values[(left + right) >> 1] as number;
    let i = left;
    let j = right;
    while (i <= j) {
      while ((values[i] as number) < pivot) i++;
      while ((values[j] as number) > pivot) j--;
      if (i <= j) {
        const t = values[i] as number;
        values[i] = values[j] as number;
        values[j] = t;
        i++;
        j--;
      }
    }
    if (k <= j) right = j;
    else if (k >= i) left = i;
    else break;
  }
  return values[k] as number;
}
