import { describe, expect, it } from "vitest";
import { cutTiles, medianInPlace, normaliseRobustAsinh, tileOrigins } from "../../src/inference/tiling.js";

const f32 = (values: number[]) => values.map((v) => Math.fround(v));
const spec = (tileSize: number) => ({
  tileSize,
  normalisation: { method: "robust-asinh" as const, softening: 3, padding: "median" as const },
});

describe("normaliseRobustAsinh (hand-computed)", () => {
  it("odd count: median 3, |v - 3| = [2, 1, 0, 1, 97] -> MAD 1, scale 1.4826", () => {
    // x = asinh(((v - 3) / 1.4826) / 3)
    expect(Array.from(normaliseRobustAsinh([1, 2, 3, 4, 100], 3))).toEqual(
      f32([-0.43574005759835377, -0.22297794163045578, 0, 0.22297794163045578, 3.7759737915419933]),
    );
  });

  it("even count: median (2 + 3) / 2 = 2.5, MAD median(0.5, 0.5, 1.5, 1.5) = 1", () => {
    expect(Array.from(normaliseRobustAsinh([4, 1, 3, 2], 3))).toEqual(
      f32([0.3311592595651917, -0.3311592595651917, 0.11217969496860139, -0.11217969496860139]),
    );
  });

  it("MAD 0 -> scale 1: [5, 5, 5, 9] gives asinh((9 - 5) / 3) = ln 3 for the 9", () => {
    expect(Array.from(normaliseRobustAsinh([5, 5, 5, 9], 3))).toEqual(f32([0, 0, 0, Math.log(3)]));
  });

  it("NaN/Inf become the median of the finite values before the MAD", () => {
    // finite [1, 3, 5] -> median 3; filled [1, 3, 3, 3, 5] -> |dev| [2, 0, 0, 0, 2] -> MAD 0 -> scale 1.
    // (Had the MAD skipped the filled samples it would be 2 and the ends +-asinh(2/(2*1.4826*3)).)
    expect(Array.from(normaliseRobustAsinh([1, Number.NaN, 3, Number.POSITIVE_INFINITY, 5], 3))).toEqual(
      f32([-0.6251451172504167, 0, 0, 0, 0.6251451172504167]),
    );
  });

  it("an all-NaN tile normalises to zeros", () => {
    expect(Array.from(normaliseRobustAsinh([Number.NaN, Number.NEGATIVE_INFINITY], 3))).toEqual([0, 0]);
  });

  it("uses the manifest's softening", () => {
    // median 0, MAD 0 -> scale 1 -> asinh(4 / 4) = asinh(1) = ln(1 + sqrt 2)
    expect(normaliseRobustAsinh([0, 0, 4], 4)[2]).toBe(Math.fround(Math.log(1 + Math.SQRT2)));
  });

  it("medianInPlace agrees with a sorted median on random data, odd and even counts, with ties", () => {
    let state = 12345;
    const random = () => {
      state = (state * 1103515245 + 12345) % 2 ** 31;
      return state / 2 ** 31;
    };
    for (let trial = 0; trial < 300; trial++) {
      const length = 1 + Math.floor(random() * 200);
      const values = Float64Array.from(
        { length },
        () => Math.round(random() * 20) - 10 + (trial % 3) * random(),
      );
      const sorted = [...values].sort((a, b) => a - b);
      const mid = length >> 1;
      const expected =
        length % 2 === 1 ? sorted[mid] : ((sorted[mid - 1] as number) + (sorted[mid] as number)) / 2;
      expect(medianInPlace(values), `trial ${trial}`).toBe(expected);
    }
  });

  it("medianInPlace averages the two middle values of an even count", () => {
    expect(medianInPlace(new Float64Array([10, -1, 7, 3]))).toBe(5);
    expect(medianInPlace(new Float64Array([2]))).toBe(2);
  });
});

describe("tileOrigins", () => {
  it.each([
    [10, 64, [0]],
    [64, 64, [0]],
    [65, 64, [0, 1]],
    [128, 64, [0, 64]],
    [130, 64, [0, 64, 66]],
    [200, 64, [0, 64, 128, 136]],
  ])("length %i, tile %i -> %j", (length, size, expected) => {
    expect(tileOrigins(length, size)).toEqual(expected);
  });
});

describe("cutTiles", () => {
  it("pads an image smaller than a tile with the median (0 after normalising)", () => {
    const tiles = cutTiles({ width: 2, height: 2, data: new Float32Array([1, 2, 3, 4]) }, spec(3));
    expect(tiles).toHaveLength(1);
    const [tile] = tiles;
    expect(tile).toMatchObject({ x: 0, y: 0, width: 2, height: 2 });
    // The padding does not enter the median/MAD: they are those of [1, 2, 3, 4] (2.5 and 1).
    const a = 0.3311592595651917;
    const b = 0.11217969496860139;
    expect(Array.from(tile?.pixels ?? [])).toEqual(f32([-a, -b, 0, b, a, 0, 0, 0, 0]));
  });

  it("aligns the last column of tiles to the image edge (overlapping), row-major order", () => {
    const width = 5;
    const height = 3;
    const data = Float32Array.from({ length: width * height }, (_, i) => i * i);
    const tiles = cutTiles({ width, height, data }, spec(4));
    expect(tiles.map(({ x, y, width: w, height: h }) => [x, y, w, h])).toEqual([
      [0, 0, 4, 3],
      [1, 0, 4, 3],
    ]);
    // Tile 1 covers columns 1..4 of rows 0..2; row 3 of the tile is padding.
    const real: number[] = [];
    for (let y = 0; y < 3; y++) for (let x = 1; x < 5; x++) real.push(data[y * width + x] as number);
    const expected = Array.from(normaliseRobustAsinh(real, 3));
    expect(Array.from(tiles[1]?.pixels.subarray(0, 12) ?? [])).toEqual(expected);
    expect(Array.from(tiles[1]?.pixels.subarray(12) ?? [])).toEqual([0, 0, 0, 0]);
  });

  it("covers every pixel exactly with in-bounds tiles for awkward sizes", () => {
    for (const [width, height] of [
      [1, 1],
      [7, 3],
      [8, 8],
      [9, 17],
      [33, 8],
    ] as const) {
      const tiles = cutTiles({ width, height, data: new Float32Array(width * height) }, spec(8));
      const covered = new Uint8Array(width * height);
      for (const t of tiles) {
        expect(t.x + t.width).toBeLessThanOrEqual(width);
        expect(t.y + t.height).toBeLessThanOrEqual(height);
        expect(t.pixels).toHaveLength(64);
        for (let y = t.y; y < t.y + t.height; y++)
          for (let x = t.x; x < t.x + t.width; x++) covered[y * width + x] = 1;
      }
      expect(covered.every((c) => c === 1)).toBe(true);
      expect(tiles).toHaveLength(tileOrigins(width, 8).length * tileOrigins(height, 8).length);
    }
  });

  it("normalises each tile on its own statistics", () => {
    // Left tile all 10s, right tile all 1000s plus one 1001: each is flat around its own median.
    const data = new Float32Array([10, 10, 1000, 1001, 10, 10, 1000, 1000]);
    const [left, right] = cutTiles({ width: 4, height: 2, data }, spec(2));
    expect(Array.from(left?.pixels ?? [])).toEqual([0, 0, 0, 0]);
    expect(Array.from(right?.pixels ?? [])).toEqual(f32([0, Math.asinh(1 / 3), 0, 0]));
  });
});
