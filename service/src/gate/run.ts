import { mkdirSync, writeFileSync } from "node:fs";
import { dirname } from "node:path";
import { type Comparison, compareModels } from "../../../src/gate/compare.js";
import { DEFAULT_GATE_POLICY, type GatePolicy, readGatePolicy } from "../../../src/gate/policy.js";
import { renderGateReport, toJson } from "../../../src/gate/report.js";
import type { Logger } from "../../../src/gh/logger.js";
import { type EvalSetPaths, evaluateLoadedModels, loadEvalSets } from "./evaluate.js";
import { type ResolvedModel, resolveModelSource, type S3Downloader } from "./resolve.js";
import type { ModelPredictions } from "./types.js";

export interface GateOptions {
  /** Local folder or s3://bucket/prefix/ of the candidate model. */
  candidate: string;
  /** The same for the model in production now. */
  production: string;
  sets: EvalSetPaths;
  /** YAML policy; the defaults of `.astrolens/gate-policy.yaml` when absent. */
  policyFile?: string;
  /** Where the metrics JSON goes (later stored in the release ledger). */
  metricsFile?: string;
  intraOpThreads?: number;
  download?: S3Downloader;
  logger: Logger;
}

export interface GateResult {
  comparison: Comparison;
  markdown: string;
  json: string;
  timings: { evaluateSeconds: number; compareSeconds: number; items: number };
}

/**
 * The accuracy gate: resolves both models (sha256-checked), refuses a contract
 * mismatch, evaluates both on the same sets through the service's own inference path,
 * and compares them with McNemar's exact test and paired bootstrap intervals.
 */
export async function runGate(options: GateOptions): Promise<GateResult> {
  const { logger } = options;
  const policy: GatePolicy = options.policyFile ? readGatePolicy(options.policyFile) : DEFAULT_GATE_POLICY;
  const resolved: ResolvedModel[] = [];
  try {
    const [candidate, production] = await logger.group("Resolving the models", async () => {
      for (const source of [options.candidate, options.production]) {
        resolved.push(
          await resolveModelSource(source, options.download ? { download: options.download } : {}),
        );
      }
      return resolved as [ResolvedModel, ResolvedModel];
    });
    logger.info(
      `candidate ${candidate.model.manifest.version} (${candidate.model.manifestSha256.slice(0, 12)}), production ${production.model.manifest.version} (${production.model.manifestSha256.slice(0, 12)})`,
    );
    const sets = await loadEvalSets(options.sets);

    const started = performance.now();
    // One pass: each image is decoded and tiled once and goes to both models, which must
    // share a contract (classes, tiling, inputs) — checked there, and named as here.
    const [candidatePredictions, productionPredictions] = (await logger.group("Evaluating both models", () =>
      evaluateLoadedModels([candidate.model, production.model], sets, {
        names: ["candidate", "production"],
        ...(options.intraOpThreads !== undefined && { intraOpThreads: options.intraOpThreads }),
        onProgress: (done, total) => {
          if (done === total || done % 1024 === 0) logger.debug(`${done}/${total} images`);
        },
      }),
    )) as [ModelPredictions, ModelPredictions];
    const evaluated = performance.now();

    const comparison = compareModels(candidatePredictions, productionPredictions, policy);
    const compared = performance.now();
    const json = toJson(comparison);
    if (options.metricsFile) {
      mkdirSync(dirname(options.metricsFile), { recursive: true });
      writeFileSync(options.metricsFile, json);
    }
    return {
      comparison,
      markdown: renderGateReport(comparison),
      json,
      timings: {
        evaluateSeconds: (evaluated - started) / 1000,
        compareSeconds: (compared - evaluated) / 1000,
        items: comparison.items,
      },
    };
  } finally {
    for (const model of resolved) await model.cleanup();
  }
}
