/**
 * YOLOv8 detector head for one tile, as `decode()` in scripts/models/build.py computes the
 * manifest's detectorMap50 (and like Ultralytics' `non_max_suppression`, single label per
 * anchor):
 *
 * - layout [4 + classes, anchors], rows cx, cy, w, h (tile pixels) then one
 *   already-sigmoided score per class;
 * - each anchor takes its best class; kept when that score >= confidenceThreshold (the
 *   build's rule; Ultralytics uses >, which differs only at exact equality);
 * - class-aware NMS: within a class, a box is dropped when its IoU with a higher-scoring
 *   kept box is > iouThreshold; at most `maxDetections` boxes survive;
 * - boxes are then moved into the image's pixels (plus the tile's x/y) and clipped to
 *   the tile's real region (which lies inside the image), as Ultralytics clips to the input.
 */
import type { Detection } from "../contract.js";
import type { ModelManifest } from "../model/manifest.js";

export type DetectorSpec = Pick<
  ModelManifest["detector"],
  "classes" | "confidenceThreshold" | "iouThreshold"
>;

/** The region of the image a tile covers: its origin and real (unpadded) extent. */
export interface TileRegion {
  x: number;
  y: number;
  width: number;
  height: number;
}

export const DEFAULT_MAX_DETECTIONS = 300;

interface Candidate {
  x1: number;
  y1: number;
  x2: number;
  y2: number;
  score: number;
  cls: number;
}

/** Decodes one tile's YOLOv8 output into detections in the original image's pixels. */
export function decodeYoloTile(
  output: ArrayLike<number>,
  region: TileRegion,
  spec: DetectorSpec,
  maxDetections = DEFAULT_MAX_DETECTIONS,
): Detection[] {
  const rows = 4 + spec.classes.length;
  if (output.length % rows !== 0) {
    throw new Error(
      `detector output has ${output.length} values, not a multiple of 4 + ${spec.classes.length} classes`,
    );
  }
  const anchors = output.length / rows;
  const at = (row: number, anchor: number) => output[row * anchors + anchor] as number;

  const candidates: Candidate[] = [];
  for (let a = 0; a < anchors; a++) {
    let cls = 0;
    let score = at(4, a);
    for (let c = 1; c < spec.classes.length; c++) {
      const s = at(4 + c, a);
      if (s > score) {
        score = s;
        cls = c;
      }
    }
    if (!(score >= spec.confidenceThreshold)) continue;
    const cx = at(0, a);
    const cy = at(1, a);
    const w = at(2, a);
    const h = at(3, a);
    candidates.push({ x1: cx - w / 2, y1: cy - h / 2, x2: cx + w / 2, y2: cy + h / 2, score, cls });
  }

  const kept = nonMaxSuppression(candidates, spec.iouThreshold, maxDetections);
  const detections: Detection[] = [];
  for (const box of kept) {
    const x1 = clamp(box.x1, 0, region.width) + region.x;
    const y1 = clamp(box.y1, 0, region.height) + region.y;
    const x2 = clamp(box.x2, 0, region.width) + region.x;
    const y2 = clamp(box.y2, 0, region.height) + region.y;
    if (x2 <= x1 || y2 <= y1) continue;
    detections.push({
      x: x1,
      y: y1,
      width: x2 - x1,
      height: y2 - y1,
      confidence: box.score,
      class: spec.classes[box.cls] as string,
    });
  }
  return detections;
}

/** Class-aware greedy NMS, highest score first (stable for equal scores). */
export function nonMaxSuppression<T extends Candidate>(
  boxes: T[],
  iouThreshold: number,
  maxDetections: number,
): T[] {
  const order = [...boxes].sort((a, b) => b.score - a.score);
  const kept: T[] = [];
  for (const box of order) {
    if (kept.length >= maxDetections) break;
    if (kept.every((k) => k.cls !== box.cls || iou(k, box) <= iouThreshold)) kept.push(box);
  }
  return kept;
}

/** Intersection over union of two corner-form boxes (0 when either is empty). */
export function iou(a: Omit<Candidate, "score" | "cls">, b: Omit<Candidate, "score" | "cls">): number {
  const iw = Math.min(a.x2, b.x2) - Math.max(a.x1, b.x1);
  const ih = Math.min(a.y2, b.y2) - Math.max(a.y1, b.y1);
  if (iw <= 0 || ih <= 0) return 0;
  const inter = iw * ih;
  const union = (a.x2 - a.x1) * (a.y2 - a.y1) + (b.x2 - b.x1) * (b.y2 - b.y1) - inter;
  return union <= 0 ? 0 : inter / union;
}

function clamp(v: number, lo: number, hi: number): number {
  return Math.min(hi, Math.max(lo, v));
}
