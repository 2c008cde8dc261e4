/**
 * The known images the smoke test sends, with what any healthy AstroLens model must say
 * about them. Small real cut-outs, so a green side that decodes, tiles or normalises
 * wrongly fails here even when every response has the right shape.
 */
import type { InvocationResponse } from "../../../../service/src/contract.js";
import { embeddedImages } from "./images.generated.js";

export interface KnownImage {
  /** Names the check (`invoke <name>`). */
  name: string;
  contentType: string;
  bytes: Uint8Array;
  /** Where the bytes come from, for a person reading a failure. */
  source: string;
  /** What the response's `image` must say. */
  image: InvocationResponse["image"];
  /**
   * Classes the model must give the tiles at these origins. Only unambiguous cut-outs: both
   * models in the repository put at least 0.94 on the label (v1 and v2, checked when chosen).
   */
  expectedClasses: { x: number; y: number; class: string }[];
  /** The detector must find at least this many sources. */
  minDetections: number;
}

function embedded(name: string): Uint8Array {
  const base64 = embeddedImages[name];
  if (base64 === undefined)
    throw new Error(`images.generated.ts has no ${name}; run scripts/embed-images.mjs`);
  return Buffer.from(base64, "base64");
}

export const knownImages: readonly KnownImage[] = [
  {
    name: "point-source.fits",
    contentType: "application/fits",
    bytes: embedded("point-source.fits"),
    source: "test/fixtures/eval/synthetic/0010.fits (held out, label point_source)",
    image: { width: 64, height: 64, format: "fits" },
    expectedClasses: [{ x: 0, y: 0, class: "point_source" }],
    minDetections: 1,
  },
  {
    // Two tiles: tiling across the width, and the 16-bit PNG path (kept at full depth).
    name: "extended-and-streak.png",
    contentType: "image/png",
    bytes: embedded("extended-and-streak.png"),
    source:
      "test/fixtures/eval/synthetic/0015.fits (extended_source) and 0004.fits (streak), stored samples side by side as 16-bit PNG",
    image: { width: 128, height: 64, format: "png" },
    expectedClasses: [
      { x: 0, y: 0, class: "extended_source" },
      { x: 64, y: 0, class: "streak" },
    ],
    minDetections: 1,
  },
  {
    // Real telescope data, smaller than a tile: the padding path; no class is asserted.
    name: "scale.fits",
    contentType: "application/fits",
    bytes: embedded("scale.fits"),
    source: "service/test/fixtures/fits/scale.fits (astropy's test data: 20x21, BITPIX 16 with BSCALE/BZERO)",
    image: { width: 20, height: 21, format: "fits" },
    expectedClasses: [],
    minDetections: 0,
  },
];
