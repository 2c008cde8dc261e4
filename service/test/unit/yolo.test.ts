import { describe, expect, it } from "vitest";
import { decodeYoloTile, iou } from "../../src/inference/yolo.js";

/** Builds a [4 + classes, anchors] buffer from per-anchor rows [cx, cy, w, h, ...scores]. */
function layout(anchors: number[][]): Float32Array {
  const rows = anchors[0]?.length ?? 0;
  const out = new Float32Array(rows * anchors.length);
  anchors.forEach((a, j) => {
    a.forEach((v, r) => {
      out[r * anchors.length + j] = v;
    });
  });
  return out;
}

const spec = { classes: ["star", "galaxy"], confidenceThreshold: 0.25, iouThreshold: 0.45 };
const wholeTile = { x: 0, y: 0, width: 64, height: 64 };

describe("iou", () => {
  it("is 1/3 for 2x2 boxes offset by 1 (overlap 2 of union 6), 0 when apart", () => {
    expect(iou({ x1: 0, y1: 0, x2: 2, y2: 2 }, { x1: 1, y1: 0, x2: 3, y2: 2 })).toBeCloseTo(1 / 3, 15);
    expect(iou({ x1: 0, y1: 0, x2: 1, y2: 1 }, { x1: 2, y1: 2, x2: 3, y2: 3 })).toBe(0);
  });
});

describe("decodeYoloTile", () => {
  it("converts cx, cy, w, h to top-left boxes and picks each anchor's best class", () => {
    const out = layout([[10, 20, 4, 6, 0.1, 0.9]]);
    expect(decodeYoloTile(out, wholeTile, spec)).toEqual([
      { x: 8, y: 17, width: 4, height: 6, confidence: Math.fround(0.9), class: "galaxy" },
    ]);
  });

  it("keeps scores at or above the confidence threshold (as the model build does)", () => {
    const out = layout([
      [10, 10, 2, 2, 0.25, 0],
      [30, 30, 2, 2, 0.2499999, 0],
      [50, 50, 2, 2, 0.26, 0],
    ]);
    expect(decodeYoloTile(out, wholeTile, spec).map((d) => d.x)).toEqual([49, 9]);
  });

  it("suppresses overlapping boxes of the same class, not of different classes", () => {
    const out = layout([
      [10, 10, 10, 10, 0.8, 0], // kept (best star)
      [11, 10, 10, 10, 0.7, 0], // IoU 9*10/(200-90) = 0.818 with the first: suppressed
      [11, 10, 10, 10, 0, 0.6], // same box but galaxy: kept
      [16, 10, 10, 10, 0.5, 0], // IoU 4*10/(200-40) = 0.25 <= 0.45: kept
      [40, 40, 4, 4, 0.3, 0], // far away: kept
    ]);
    const got = decodeYoloTile(out, wholeTile, spec).map((d) => [d.class, d.x, d.y, d.confidence]);
    expect(got).toEqual([
      ["star", 5, 5, Math.fround(0.8)],
      ["galaxy", 6, 5, Math.fround(0.6)],
      ["star", 11, 5, Math.fround(0.5)],
      ["star", 38, 38, Math.fround(0.3)],
    ]);
  });

  it("suppresses at IoU strictly above the threshold only", () => {
    // [0,4]x[0,2] and [2,6]x[0,2]: intersection 4, union 12, IoU exactly 1/3.
    const out = layout([
      [2, 1, 4, 2, 0.9, 0],
      [4, 1, 4, 2, 0.8, 0],
    ]);
    expect(decodeYoloTile(out, wholeTile, { ...spec, iouThreshold: 1 / 3 })).toHaveLength(2);
    expect(decodeYoloTile(out, wholeTile, { ...spec, iouThreshold: 0.33 })).toHaveLength(1);
  });

  it("moves boxes by the tile origin and clips them to the tile's real region", () => {
    const tile = { x: 100, y: 200, width: 64, height: 30 }; // a bottom tile with 34 rows of padding
    const out = layout([
      [2, 3, 8, 4, 0.9, 0], // x1 = -2 -> 0
      [62, 28, 8, 8, 0.8, 0], // x2 = 66 -> 64, y2 = 32 -> 30
      [20, 40, 4, 4, 0.7, 0], // entirely in the padding: dropped
    ]);
    expect(decodeYoloTile(out, tile, spec)).toEqual([
      { x: 100, y: 201, width: 6, height: 4, confidence: Math.fround(0.9), class: "star" },
      { x: 158, y: 224, width: 6, height: 6, confidence: Math.fround(0.8), class: "star" },
    ]);
  });

  it("caps the number of detections", () => {
    const anchors = Array.from({ length: 10 }, (_, i) => [i * 6 + 2, 2, 2, 2, 0.5 + i / 100, 0]);
    expect(decodeYoloTile(layout(anchors), wholeTile, spec, 3).map((d) => d.x)).toEqual([55, 49, 43]);
  });

  it("refuses an output that does not fit 4 + classes rows", () => {
    expect(() => decodeYoloTile(new Float32Array(7), wholeTile, spec)).toThrow(
      /not a multiple of 4 \+ 2 classes/,
    );
  });
});
