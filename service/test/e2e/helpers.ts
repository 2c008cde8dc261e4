/**
 * Shared pieces of the end-to-end tests: which model folder they serve, the real service
 * in-process, a raw HTTP client that reports connection failures instead of throwing,
 * a seeded PRNG, a synthetic star field with known positions, and the response-contract
 * check every 200 goes through.
 */

import { createHash } from "node:crypto";
import { readFileSync } from "node:fs";
import { request as httpRequest, type IncomingHttpHeaders, type OutgoingHttpHeaders } from "node:http";
import { fileURLToPath } from "node:url";
import { expect } from "vitest";
import { mulberry32 } from "../../../src/gate/stats.js";
import type { InvocationResponse } from "../../src/contract.js";
import { loadCoreAnalyser, type RunningServer, startServer } from "../../src/main.js";
import type { ServerConfig } from "../../src/server/config.js";
import type { Logger } from "../../src/server/logger.js";

/**
 * THE model folder every e2e test serves. v2 is still being built (no manifest.json yet):
 * switch this one word to "v2" once `service/models/v2/manifest.json` exists.
 */
export const MODEL_VERSION: "v1" | "v2" = "v1";

export const MODEL_DIR = fileURLToPath(new URL(`../../models/${MODEL_VERSION}/`, import.meta.url));
export const FITS_DIR = fileURLToPath(new URL("../fixtures/fits/", import.meta.url));
export const E2E_FIXTURES = fileURLToPath(new URL("./fixtures/", import.meta.url));
export const SERVICE_DIR = fileURLToPath(new URL("../../", import.meta.url));

/** The manifest as the tests read it themselves (not through the service's loader). */
export interface ManifestView {
  name: string;
  version: string;
  sha256: string;
  tileSize: number;
  classes: string[];
  detectorClasses: string[];
  confidenceThreshold: number;
  /** Votes needed for the anomaly verdict (rule "majority"). */
  minVotes: number;
}

export function readManifest(): ManifestView {
  const bytes = readFileSync(`${MODEL_DIR}manifest.json`);
  const json = JSON.parse(bytes.toString("utf8")) as {
    name: string;
    version: string;
    tileSize: number;
    classifier: { classes: string[] };
    detector: { classes: string[]; confidenceThreshold: number };
    ood: { minVotes: number };
  };
  return {
    name: json.name,
    version: json.version,
    sha256: createHash("sha256").update(bytes).digest("hex"),
    tileSize: json.tileSize,
    classes: json.classifier.classes,
    detectorClasses: json.detector.classes,
    confidenceThreshold: json.detector.confidenceThreshold,
    minVotes: json.ood.minVotes,
  };
}

export const silentLogger: Logger = { info() {}, warn() {}, error() {}, document() {} };

/** The real service (real onnxruntime sessions on MODEL_DIR) on a free loopback port. */
export async function startRealServer(config: Partial<ServerConfig> = {}): Promise<RunningServer> {
  const running = await startServer({
    analyser: loadCoreAnalyser(MODEL_DIR, { intraOpThreads: 1 }),
    logger: silentLogger,
    config: { port: 0, host: "127.0.0.1", emfIntervalMs: 0, ...config },
  });
  await running.ready;
  return running;
}

export interface HttpOutcome {
  /** HTTP status, or 0 when the exchange failed at the connection level. */
  status: number;
  headers: IncomingHttpHeaders;
  body: Buffer;
  /** The connection error code (ECONNREFUSED, ECONNRESET, EPIPE, ...) when status is 0. */
  error?: string;
  /** performance.now() when the TCP connection was established (undefined: never). */
  connectedAt?: number;
  /** performance.now() when the whole request (headers and body) was handed to the kernel. */
  flushedAt?: number;
  /** performance.now() when the response headers arrived. */
  respondedAt?: number;
}

export interface SendOptions {
  method?: string;
  path?: string;
  headers?: OutgoingHttpHeaders;
  body?: Buffer | string;
  /** Send the body in chunks without Content-Length (chunked transfer encoding). */
  chunked?: boolean;
  timeoutMs?: number;
}

/**
 * One request on its own connection. Never rejects: a refused or reset connection comes
 * back as status 0 with the error code, a response as its status, so a test can assert on
 * both. If the server answers before the whole body is written (413), the answer wins.
 */
export function send(port: number, options: SendOptions = {}): Promise<HttpOutcome> {
  return new Promise((resolve) => {
    const outcome: HttpOutcome = { status: 0, headers: {}, body: Buffer.alloc(0) };
    let settled = false;
    const finish = (): void => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      resolve(outcome);
    };
    const headers: OutgoingHttpHeaders = { connection: "close", ...options.headers };
    if (options.body !== undefined && !options.chunked) {
      headers["content-length"] = String(Buffer.byteLength(options.body));
    }
    const request = httpRequest({
      host: "127.0.0.1",
      port,
      method: options.method ?? (options.body === undefined ? "GET" : "POST"),
      path: options.path ?? "/invocations",
      headers,
      agent: false,
    });
    const timer = setTimeout(() => {
      outcome.error = "CLIENT_TIMEOUT";
      request.destroy();
      finish();
    }, options.timeoutMs ?? 20_000);
    request.on("socket", (socket) => {
      socket.once("connect", () => {
        outcome.connectedAt = performance.now();
      });
    });
    request.on("finish", () => {
      outcome.flushedAt = performance.now();
    });
    request.on("response", (response) => {
      outcome.status = response.statusCode ?? 0;
      outcome.headers = response.headers;
      outcome.respondedAt = performance.now();
      const chunks: Buffer[] = [];
      response.on("data", (chunk: Buffer) => chunks.push(chunk));
      response.on("end", () => {
        outcome.body = Buffer.concat(chunks);
        finish();
      });
      response.on("error", (error: NodeJS.ErrnoException) => {
        outcome.error = error.code ?? error.message;
        outcome.body = Buffer.concat(chunks);
        finish();
      });
    });
    request.on("error", (error: NodeJS.ErrnoException) => {
      // Writing a body the server already refused fails with EPIPE/ECONNRESET; give the
      // response (which may be in flight) a moment to arrive first.
      outcome.error ??= error.code ?? error.message;
      setTimeout(finish, 100);
    });
    if (options.body === undefined) {
      request.end();
    } else if (options.chunked) {
      const body = Buffer.from(options.body);
      const step = 16 * 1024;
      for (let at = 0; at < body.length && !request.destroyed; at += step) {
        request.write(body.subarray(at, at + step));
      }
      request.end();
    } else {
      request.end(options.body);
    }
  });
}

export function invoke(port: number, body: Buffer | string, contentType: string): Promise<HttpOutcome> {
  return send(port, { body, headers: { "content-type": contentType } });
}

export function json<T = Record<string, unknown>>(outcome: HttpOutcome): T {
  return JSON.parse(outcome.body.toString("utf8")) as T;
}

/** The gate's seeded PRNG (mulberry32), uniform in [0, 1): one implementation for both. */
export const prng = mulberry32;

export interface Star {
  x: number;
  y: number;
  amplitude: number;
}

export interface StarField {
  width: number;
  height: number;
  /** Row-major, top row first, in "counts" (background ~ `background`). */
  data: Float64Array;
  stars: Star[];
}

/**
 * Gaussian stars (sigma `psfSigma` px) on a flat background with Gaussian noise. Stars keep
 * `margin` px from the edges and `minSeparation` px from each other, so each one is a
 * distinct, unambiguous truth position. Pixel i's centre is at coordinate i (numpy's and
 * photutils' convention, and the one the detector was trained with: scripts/models/synth.py
 * draws stars on np.mgrid and labels them with the same cx, cy).
 */
export function makeStarField(options: {
  seed: number;
  width: number;
  height: number;
  stars: number;
  background?: number;
  noise?: number;
  amplitude?: [number, number];
  psfSigma?: number;
  margin?: number;
  minSeparation?: number;
}): StarField {
  const { width, height } = options;
  const random = prng(options.seed);
  const background = options.background ?? 100;
  const noise = options.noise ?? 4;
  const [aLow, aHigh] = options.amplitude ?? [120, 600];
  const sigma = options.psfSigma ?? 1.5;
  const margin = options.margin ?? 6;
  const minSeparation = options.minSeparation ?? 10;
  const stars: Star[] = [];
  for (let attempt = 0; stars.length < options.stars && attempt < options.stars * 200; attempt++) {
    const x = margin + random() * (width - 2 * margin);
    const y = margin + random() * (height - 2 * margin);
    if (stars.some((s) => Math.hypot(s.x - x, s.y - y) < minSeparation)) continue;
    stars.push({ x, y, amplitude: aLow + random() * (aHigh - aLow) });
  }
  const data = new Float64Array(width * height);
  for (let i = 0; i < data.length; i++) {
    // Box-Muller.
    const u = Math.max(random(), 1e-12);
    const v = random();
    data[i] = background + noise * Math.sqrt(-2 * Math.log(u)) * Math.cos(2 * Math.PI * v);
  }
  const reach = Math.ceil(sigma * 5);
  for (const star of stars) {
    const cx = Math.round(star.x);
    const cy = Math.round(star.y);
    for (let y = Math.max(0, cy - reach); y <= Math.min(height - 1, cy + reach); y++) {
      for (let x = Math.max(0, cx - reach); x <= Math.min(width - 1, cx + reach); x++) {
        const dx = x - star.x;
        const dy = y - star.y;
        data[y * width + x] =
          (data[y * width + x] as number) +
          star.amplitude * Math.exp(-(dx * dx + dy * dy) / (2 * sigma * sigma));
      }
    }
  }
  return { width, height, data, stars };
}

/** The field quantised into `max` levels (255 or 65535), clipped at 0 and `max`. */
export function quantise(field: StarField, max: 255 | 65535, scale: number): Uint8Array | Uint16Array {
  const out = max === 255 ? new Uint8Array(field.data.length) : new Uint16Array(field.data.length);
  for (let i = 0; i < field.data.length; i++) {
    out[i] = Math.min(max, Math.max(0, Math.round((field.data[i] as number) * scale)));
  }
  return out;
}

/** Every detection of a response, flattened, with its centre. */
export function detectionsOf(response: InvocationResponse) {
  return response.tiles.flatMap((tile) =>
    tile.detections.map((d) => ({ ...d, cx: d.x + d.width / 2, cy: d.y + d.height / 2 })),
  );
}

/** Tile origins along one axis, as the manifest's tiling defines them (computed independently). */
function expectedOrigins(length: number, size: number): number[] {
  if (length <= size) return [0];
  const origins: number[] = [];
  for (let o = 0; o + size < length; o += size) origins.push(o);
  origins.push(length - size);
  return origins;
}

/**
 * Asserts a 200 body against `service/src/contract.ts` and the manifest: model identity,
 * image, tiles in the expected grid covering every pixel, probabilities over the
 * manifest's classes summing to 1, finite OOD scores, a boolean anomaly verdict consistent
 * with its votes, and detections inside both their tile and the image.
 */
export function expectContract(
  body: InvocationResponse,
  manifest: ManifestView,
  image: { width: number; height: number; format: InvocationResponse["image"]["format"] },
): void {
  expect(body.model).toEqual({
    name: manifest.name,
    version: manifest.version,
    manifestSha256: manifest.sha256,
  });
  expect(body.image).toEqual(image);
  const { width, height } = image;
  const size = manifest.tileSize;
  const xs = expectedOrigins(width, size);
  const ys = expectedOrigins(height, size);
  expect(body.tiles.map((t) => [t.x, t.y])).toEqual(ys.flatMap((y) => xs.map((x) => [x, y])));

  const covered = new Uint8Array(width * height);
  for (const tile of body.tiles) {
    expect(tile.width).toBe(Math.min(size, width - tile.x));
    expect(tile.height).toBe(Math.min(size, height - tile.y));
    expect(tile.x + tile.width).toBeLessThanOrEqual(width);
    expect(tile.y + tile.height).toBeLessThanOrEqual(height);
    for (let y = tile.y; y < tile.y + tile.height; y++)
      covered.fill(1, y * width + tile.x, y * width + tile.x + tile.width);

    expect(Object.keys(tile.probabilities)).toEqual(manifest.classes);
    const probabilities = Object.values(tile.probabilities);
    for (const p of probabilities) {
      expect(p).toBeGreaterThanOrEqual(0);
      expect(p).toBeLessThanOrEqual(1);
    }
    const total = probabilities.reduce((sum, p) => sum + p, 0);
    expect(Math.abs(total - 1)).toBeLessThanOrEqual(1e-5);
    const best = manifest.classes.reduce((a, b) =>
      (tile.probabilities[b] ?? 0) > (tile.probabilities[a] ?? 0) ? b : a,
    );
    expect(tile.class).toBe(best);

    expect(Object.keys(tile.ood).sort()).toEqual(["energy", "mahalanobis", "msp"]);
    expect(Number.isFinite(tile.ood.msp)).toBe(true);
    expect(Number.isFinite(tile.ood.energy)).toBe(true);
    expect(Number.isFinite(tile.ood.mahalanobis)).toBe(true);
    expect(tile.ood.msp).toBeCloseTo(Math.max(...probabilities), 6);
    expect(tile.ood.mahalanobis).toBeGreaterThanOrEqual(0);
    expect(typeof tile.anomaly).toBe("boolean");
    expect(Array.isArray(tile.anomalyVotes)).toBe(true);
    for (const vote of tile.anomalyVotes) expect(["msp", "energy", "mahalanobis"]).toContain(vote);
    expect(tile.anomaly).toBe(tile.anomalyVotes.length >= manifest.minVotes);

    for (const d of tile.detections) {
      expect(manifest.detectorClasses).toContain(d.class);
      expect(d.confidence).toBeGreaterThanOrEqual(manifest.confidenceThreshold);
      expect(d.confidence).toBeLessThanOrEqual(1);
      expect(d.width).toBeGreaterThan(0);
      expect(d.height).toBeGreaterThan(0);
      // Inside the tile's real region, hence inside the image.
      expect(d.x).toBeGreaterThanOrEqual(tile.x - 1e-9);
      expect(d.y).toBeGreaterThanOrEqual(tile.y - 1e-9);
      expect(d.x + d.width).toBeLessThanOrEqual(tile.x + tile.width + 1e-6);
      expect(d.y + d.height).toBeLessThanOrEqual(tile.y + tile.height + 1e-6);
      expect(d.x + d.width).toBeLessThanOrEqual(width + 1e-6);
      expect(d.y + d.height).toBeLessThanOrEqual(height + 1e-6);
    }
  }
  expect(covered.every((c) => c === 1)).toBe(true);
}
