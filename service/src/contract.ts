/**
 * The shapes that cross module boundaries in the service: decoded images, tiles,
 * model outputs and the response body of POST /invocations. The model manifest's
 * schema lives in `model/manifest.ts`; this file holds only plain types.
 */

/** An image reduced to one channel of float32 samples, row-major, in its own units. */
export interface DecodedImage {
  width: number;
  height: number;
  /** width * height samples, row-major, top row first. */
  data: Float32Array;
  format: "png" | "jpeg" | "fits" | "json";
}

/** One model-sized cut of an image, already normalised as in training. */
export interface Tile {
  /** Top-left corner of the tile in the original image's pixels. */
  x: number;
  y: number;
  /** How much of the tile is real image (the rest is padding). */
  width: number;
  height: number;
  /** inputSize * inputSize normalised samples. */
  pixels: Float32Array;
}

/** What the models say about one tile, before the response is assembled. */
export interface TileOutput {
  logits: Float32Array;
  embedding: Float32Array;
  /** Detector output for this tile: [4 + classes, anchors], YOLOv8 layout. */
  detector: Float32Array;
}

export interface Detection {
  /** Box in the original image's pixels: top-left corner, width, height. */
  x: number;
  y: number;
  width: number;
  height: number;
  confidence: number;
  class: string;
}

export interface OodScores {
  /** Maximum softmax probability (higher = more in-distribution). */
  msp: number;
  /** Negative free energy, logsumexp(logits) (higher = more in-distribution). */
  energy: number;
  /** Minimum Mahalanobis distance to a class mean (lower = more in-distribution). */
  mahalanobis: number;
}

export interface TileResult {
  x: number;
  y: number;
  width: number;
  height: number;
  class: string;
  probabilities: Record<string, number>;
  ood: OodScores;
  /** The ensemble verdict (rule in the model manifest). */
  anomaly: boolean;
  /** Which detectors voted "out of distribution". */
  anomalyVotes: (keyof OodScores)[];
  detections: Detection[];
}

export interface InvocationResponse {
  model: { name: string; version: string; manifestSha256: string };
  image: { width: number; height: number; format: DecodedImage["format"] };
  tiles: TileResult[];
}
