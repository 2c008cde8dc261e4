/**
 * The smoke test's checks: one exchange with the target in, one named check out. Pure, so
 * every way a green side can be wrong is a unit test. The response is judged against the
 * service's own contract (service/src/contract.ts) and the model's smoke contract, with
 * the service's own tiling and OOD vote rule, so a check here cannot disagree with the
 * service about what is right.
 */
import { z } from "zod";
import type { InvocationResponse, OodScores, TileResult } from "../../../../service/src/contract.js";
import { ensembleVerdict } from "../../../../service/src/inference/scores.js";
import { tileOrigins } from "../../../../service/src/inference/tiling.js";
import type { ModelInfo } from "../../../../service/src/server/ports.js";
import type { SmokeContract } from "./contract.js";
import type { KnownImage } from "./images.js";
import { describeIssues } from "./issues.js";
import type { LatencyBudget, SmokeCheck } from "./types.js";

/** One request to the target, as the runner saw it. */
export type Exchange =
  | { kind: "reply"; status: number; contentType: string; body: string; ms: number }
  /** No HTTP answer: refused, reset, timed out, or the SDK call failed. */
  | { kind: "error"; message: string; ms: number }
  /** Not sent at all (the total budget ran out first). */
  | { kind: "not-sent"; reason: string };

const modelIdentitySchema = z.object({
  name: z.string(),
  version: z.string(),
  manifestSha256: z.string(),
});

const oodScoreNames = ["msp", "energy", "mahalanobis"] as const satisfies readonly (keyof OodScores)[];

const tileSchema = z.object({
  x: z.number().int(),
  y: z.number().int(),
  width: z.number().int(),
  height: z.number().int(),
  class: z.string(),
  probabilities: z.record(z.string(), z.number()),
  ood: z.object({ msp: z.number(), energy: z.number(), mahalanobis: z.number() }),
  anomaly: z.boolean(),
  anomalyVotes: z.array(z.enum(oodScoreNames)),
  detections: z.array(
    z.object({
      x: z.number(),
      y: z.number(),
      width: z.number(),
      height: z.number(),
      confidence: z.number(),
      class: z.string(),
    }),
  ),
});

/** POST /invocations' body. Extra fields pass: adding to a response is not breaking it. */
export const invocationResponseSchema = z.object({
  model: modelIdentitySchema,
  image: z.object({
    width: z.number().int(),
    height: z.number().int(),
    format: z.enum(["png", "jpeg", "fits", "json"]),
  }),
  tiles: z.array(tileSchema),
});

/** GET /ping's body (service/src/server/server.ts). */
export const pingResponseSchema = z.object({ status: z.string(), model: modelIdentitySchema.nullable() });

// Compile-time proof that the schemas describe exactly the service's types: a field added
// to, removed from or retyped in service/src/contract.ts breaks `tsc` here.
type Exact<A, B> = [A] extends [B] ? ([B] extends [A] ? true : false) : false;
export const schemasMatchServiceContract: [
  Exact<z.infer<typeof invocationResponseSchema>, InvocationResponse>,
  Exact<z.infer<typeof modelIdentitySchema>, ModelInfo>,
] = [true, true];

/** GET /ping: 200, ready, and serving the contract's model. */
export function checkPing(exchange: Exchange, contract: SmokeContract, budget: LatencyBudget): SmokeCheck {
  return judge("ping", exchange, budget, (json) => {
    const parsed = pingResponseSchema.safeParse(json);
    if (!parsed.success) return { problems: describeIssues(parsed.error) };
    const { status, model } = parsed.data;
    const problems: string[] = [];
    if (status !== "ok") problems.push(`status: is "${status}", expected "ok"`);
    if (model === null) problems.push("model: is null; the service has no model loaded");
    else problems.push(...identityProblems(model, contract, "model"));
    return { problems, summary: model ? describeModel(model) : "" };
  });
}

/** POST /invocations with a known image: the whole response against the contract. */
export function checkInvocation(
  image: KnownImage,
  exchange: Exchange,
  contract: SmokeContract,
  budget: LatencyBudget,
): SmokeCheck {
  return judge(`invoke ${image.name}`, exchange, budget, (json) => {
    const parsed = invocationResponseSchema.safeParse(json);
    if (!parsed.success) return { problems: describeIssues(parsed.error) };
    const response = parsed.data;
    const detections = response.tiles.reduce((n, t) => n + t.detections.length, 0);
    const plural = (n: number, word: string) => `${n} ${word}${n === 1 ? "" : "s"}`;
    return {
      problems: invocationProblems(response, image, contract),
      summary: `${plural(response.tiles.length, "tile")} (${response.tiles.map((t) => t.class).join(", ")}), ${plural(detections, "detection")}`,
    };
  });
}

/** The whole run against the total budget. */
export function checkTotalLatency(ms: number, requests: number, budget: LatencyBudget): SmokeCheck {
  const rounded = Math.round(ms);
  return {
    name: "total latency",
    ok: ms <= budget.total,
    detail:
      ms <= budget.total
        ? `${rounded} ms for ${requests} requests, within the total budget of ${budget.total} ms`
        : `${rounded} ms for ${requests} requests, over the total budget of ${budget.total} ms`,
    ms: rounded,
  };
}

/** The model version a reply names (ping or invocation), if it names one. */
export function reportedModelVersion(exchange: Exchange): string | undefined {
  if (exchange.kind !== "reply") return undefined;
  try {
    const version: unknown = (JSON.parse(exchange.body) as { model?: { version?: unknown } } | null)?.model
      ?.version;
    return typeof version === "string" ? version : undefined;
  } catch {
    return undefined;
  }
}

/**
 * Everything wrong with a well-shaped response to `image`, as `field: what is wrong`
 * sentences; empty when it honours the contract.
 */
export function invocationProblems(
  response: InvocationResponse,
  image: KnownImage,
  contract: SmokeContract,
): string[] {
  const problems = identityProblems(response.model, contract, "model");
  const { width, height, format } = image.image;
  const got = response.image;
  if (got.width !== width || got.height !== height || got.format !== format) {
    problems.push(
      `image: is ${got.width}x${got.height} ${got.format}, but ${image.name} is ${width}x${height} ${format}`,
    );
  }

  // The tiles the service must cut, in its order (the service's own tileOrigins).
  const expected = tileOrigins(height, contract.tileSize).flatMap((y) =>
    tileOrigins(width, contract.tileSize).map((x) => ({
      x,
      y,
      width: Math.min(contract.tileSize, width - x),
      height: Math.min(contract.tileSize, height - y),
    })),
  );
  if (response.tiles.length !== expected.length) {
    problems.push(
      `tiles: has ${response.tiles.length}, expected ${expected.length} (${width}x${height} in ${contract.tileSize}x${contract.tileSize} tiles)`,
    );
  }
  response.tiles.forEach((tile, i) => {
    const want = expected[i];
    if (
      want !== undefined &&
      (tile.x !== want.x || tile.y !== want.y || tile.width !== want.width || tile.height !== want.height)
    ) {
      problems.push(
        `tiles[${i}]: is ${tile.width}x${tile.height} at (${tile.x}, ${tile.y}), expected ${want.width}x${want.height} at (${want.x}, ${want.y})`,
      );
    }
    problems.push(...tileProblems(tile, `tiles[${i}]`, contract, got));
  });

  for (const want of image.expectedClasses) {
    const i = response.tiles.findIndex((t) => t.x === want.x && t.y === want.y);
    const tile = response.tiles[i];
    if (tile === undefined) problems.push(`tiles: none at (${want.x}, ${want.y}) to classify`);
    else if (tile.class !== want.class) {
      const p = tile.probabilities[want.class];
      problems.push(
        `tiles[${i}].class: is "${tile.class}", but this known cut-out is "${want.class}"` +
          `${p === undefined ? "" : ` (p ${p.toFixed(3)})`}; the model misreads clear input (${image.source})`,
      );
    }
  }
  const detections = response.tiles.reduce((n, t) => n + t.detections.length, 0);
  if (detections < image.minDetections) {
    problems.push(
      `detections: ${detections} in all tiles, but ${image.name} holds at least ${image.minDetections} clear source(s)`,
    );
  }
  return problems;
}

/** One tile against the contract: classes, probabilities, OOD scores and vote, detections. */
function tileProblems(
  tile: TileResult,
  at: string,
  contract: SmokeContract,
  image: InvocationResponse["image"],
): string[] {
  const problems: string[] = [];
  const classes = contract.classifier.classes;
  if (!classes.includes(tile.class)) {
    problems.push(`${at}.class: "${tile.class}" is not one of the model's classes (${classes.join(", ")})`);
  }

  const names = Object.keys(tile.probabilities);
  const missing = classes.filter((c) => !names.includes(c));
  const extra = names.filter((n) => !classes.includes(n));
  if (missing.length > 0)
    problems.push(`${at}.probabilities: has no ${missing.map((c) => `"${c}"`).join(", ")}`);
  if (extra.length > 0) {
    problems.push(
      `${at}.probabilities: has ${extra.map((c) => `"${c}"`).join(", ")}, not a class of the model`,
    );
  }
  let sum = 0;
  let best: [string, number] | undefined;
  for (const [name, p] of Object.entries(tile.probabilities)) {
    if (!(p >= 0 && p <= 1)) problems.push(`${at}.probabilities.${name}: ${p} is outside [0, 1]`);
    sum += p;
    if (best === undefined || p > best[1]) best = [name, p];
  }
  if (Math.abs(sum - 1) > 1e-3) problems.push(`${at}.probabilities: sum to ${round(sum)}, not 1`);
  if (best !== undefined && tile.class !== best[0] && (tile.probabilities[tile.class] ?? -1) < best[1]) {
    problems.push(
      `${at}.class: is "${tile.class}", but "${best[0]}" has the highest probability (${round(best[1])})`,
    );
  }

  const { msp, mahalanobis } = tile.ood;
  if (!(msp >= 0 && msp <= 1)) problems.push(`${at}.ood.msp: ${msp} is outside [0, 1]`);
  else if (best !== undefined && Math.abs(msp - best[1]) > 1e-6) {
    // The manifest defines MSP as the max softmax probability: the same number.
    problems.push(`${at}.ood.msp: ${round(msp)} is not the highest probability (${round(best[1])})`);
  }
  if (!(mahalanobis >= 0))
    problems.push(`${at}.ood.mahalanobis: ${mahalanobis} is negative (it is a distance)`);
  const verdict = ensembleVerdict(tile.ood, contract.ood);
  const votes = [...tile.anomalyVotes].sort().join(", ");
  const wantVotes = [...verdict.votes].sort().join(", ");
  if (votes !== wantVotes) {
    problems.push(`${at}.anomalyVotes: are [${votes}], but the model's thresholds give [${wantVotes}]`);
  }
  if (tile.anomaly !== verdict.anomaly) {
    problems.push(
      `${at}.anomaly: is ${tile.anomaly}, but ${verdict.votes.length} of 3 scores vote out-of-distribution (anomaly at ${contract.ood.minVotes})`,
    );
  }

  tile.detections.forEach((d, j) => {
    const where = `${at}.detections[${j}]`;
    if (!contract.detector.classes.includes(d.class)) {
      problems.push(
        `${where}.class: "${d.class}" is not one of the detector's classes (${contract.detector.classes.join(", ")})`,
      );
    }
    if (!(d.confidence >= contract.detector.confidenceThreshold && d.confidence <= 1)) {
      problems.push(
        `${where}.confidence: ${d.confidence} is outside [${contract.detector.confidenceThreshold}, 1] (the detector's threshold)`,
      );
    }
    const eps = 1e-3;
    if (
      !(d.width > 0 && d.height > 0 && d.x >= -eps && d.y >= -eps) ||
      d.x + d.width > image.width + eps ||
      d.y + d.height > image.height + eps
    ) {
      problems.push(
        `${where}: box ${round(d.width)}x${round(d.height)} at (${round(d.x)}, ${round(d.y)}) is not inside the ${image.width}x${image.height} image`,
      );
    }
  });
  return problems;
}

function identityProblems(model: ModelInfo, contract: SmokeContract, at: string): string[] {
  const problems: string[] = [];
  if (model.name !== contract.name)
    problems.push(`${at}.name: is "${model.name}", expected "${contract.name}"`);
  if (model.version !== contract.version) {
    problems.push(
      `${at}.version: is "${model.version}", expected "${contract.version}" (the model being released)`,
    );
  }
  if (contract.manifestSha256 !== undefined && model.manifestSha256 !== contract.manifestSha256) {
    const why = model.version === contract.version ? " (same version, another manifest)" : "";
    problems.push(
      `${at}.manifestSha256: is ${model.manifestSha256}, expected ${contract.manifestSha256}${why}`,
    );
  }
  return problems;
}

/**
 * The part every check shares: an answer, a 200, JSON, then `inspect`; and the latency.
 * A check fails on the first problem; its detail lists up to three, then the latency.
 */
function judge(
  name: string,
  exchange: Exchange,
  budget: LatencyBudget,
  inspect: (json: unknown) => { problems: string[]; summary?: string },
): SmokeCheck {
  if (exchange.kind === "not-sent") return { name, ok: false, detail: `not sent: ${exchange.reason}`, ms: 0 };
  const ms = Math.round(exchange.ms);
  if (exchange.kind === "error") return { name, ok: false, detail: `no answer: ${exchange.message}`, ms };

  const problems: string[] = [];
  let summary = "";
  if (exchange.status !== 200) {
    problems.push(`answered HTTP ${exchange.status}, expected 200: ${snippet(exchange.body)}`);
  } else {
    let json: unknown;
    let parsed = false;
    try {
      json = JSON.parse(exchange.body);
      parsed = true;
    } catch (err) {
      problems.push(
        `the body is not JSON (${(err as Error).message}; content-type "${exchange.contentType}"): ${snippet(exchange.body)}`,
      );
    }
    if (parsed) {
      const inspected = inspect(json);
      problems.push(...inspected.problems);
      summary = inspected.summary ?? "";
    }
  }
  const shown = problems.slice(0, 3);
  if (problems.length > 3) shown.push(`and ${problems.length - 3} more`);
  if (exchange.ms > budget.perRequest) {
    shown.push(`answered in ${ms} ms, over the per-request budget of ${budget.perRequest} ms`);
  }
  const ok = shown.length === 0;
  return {
    name,
    ok,
    detail: ok ? `200 in ${ms} ms${summary === "" ? "" : `: ${summary}`}` : shown.join("; "),
    ms,
  };
}

function describeModel(model: ModelInfo): string {
  return `${model.name} ${model.version} (manifest ${model.manifestSha256.slice(0, 12)}…)`;
}

/** The start of a body, on one line, for a failure detail. */
function snippet(body: string): string {
  const line = body.replace(/\s+/g, " ").trim();
  if (line === "") return "(empty body)";
  return line.length > 200 ? `${line.slice(0, 200)}…` : line;
}

function round(n: number): number {
  return Math.round(n * 1000) / 1000;
}

/**
 * The ECS test listener must send all test traffic to the green revision, or the smoke test
 * would judge blue too. ECS often sends `{}` at this stage: then there is nothing to check.
 */
export function checkTestTraffic(details: {
  targetServiceRevisionArn?: string | undefined;
  testTrafficWeights?: Record<string, number> | undefined;
}): SmokeCheck | undefined {
  const weights = details.testTrafficWeights;
  const green = details.targetServiceRevisionArn;
  if (weights === undefined || green === undefined || Object.keys(weights).length === 0) return undefined;
  const share = weights[green] ?? 0;
  return share === 100
    ? { name: "test traffic", ok: true, detail: `the test listener sends 100% to ${green}`, ms: 0 }
    : {
        name: "test traffic",
        ok: false,
        detail: `the test listener sends ${share}% (not 100%) to the revision under test ${green}, so the smoke test would judge another revision too`,
        ms: 0,
      };
}
