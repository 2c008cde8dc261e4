/**
 * The seams between the HTTP server and the inference core. The server only knows these
 * shapes; `main.ts` adapts the real core (decodeImage, tiling, ModelRunner,
 * assembleTileResult, loadModelManifest) to them, and the tests use small typed fakes.
 */
import type { InvocationResponse, Tile, TileOutput, TileResult } from "../contract.js";

/** The served model's identity, reported on /ping and in every response. */
export interface ModelInfo {
  readonly name: string;
  readonly version: string;
  /** sha256 of the manifest file's bytes. */
  readonly manifestSha256: string;
}

/** A request body decoded and cut into model-sized, normalised tiles. */
export interface PreparedImage {
  image: InvocationResponse["image"];
  tiles: Tile[];
}

/** Limits the server passes to decoding, so a huge image is refused before it is decoded. */
export interface PrepareLimits {
  maxPixels: number;
}

/**
 * decode + tile + run + assemble, as three steps so the server can micro-batch the middle
 * one across concurrent requests.
 */
export interface Analyser {
  readonly model: ModelInfo;
  /**
   * Media types `prepare` accepts (lower case, no parameters). When present, other types
   * are refused with 415 before the body is read; when absent, `prepare` decides.
   */
  readonly contentTypes?: readonly string[];
  /**
   * Decode the body and tile it. Client mistakes (bad bytes, unsupported type, too many
   * pixels) throw an error carrying an HTTP `status` in 400–499 — the core's InputError;
   * see {@link clientErrorStatus}. Anything else thrown is a bug and answers 500.
   */
  prepare(body: Buffer, contentType: string, limits: PrepareLimits): PreparedImage | Promise<PreparedImage>;
  /** Run a batch of tile pixel arrays through the models, one output per input, in order. */
  run(tiles: Float32Array[]): Promise<TileOutput[]>;
  /** Turn one tile and its model output into the response's tile result. */
  assemble(tile: Tile, output: TileOutput): TileResult;
}

/**
 * The HTTP status of an error the client caused (an Error with an integer `status` in
 * 400–499, as the core's InputError carries), or undefined for anything else.
 */
export function clientErrorStatus(error: unknown): number | undefined {
  if (!(error instanceof Error)) return undefined;
  const status: unknown = (error as Error & { status?: unknown }).status;
  return typeof status === "number" && Number.isInteger(status) && status >= 400 && status <= 499
    ? status
    : undefined;
}
