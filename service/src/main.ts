/**
 * The inference service's entry: read the settings, start listening at once (so /ping can
 * say "loading" while the ONNX sessions open), load the models through the inference
 * core, and drain on SIGTERM. `serve.js` launches the bundle of this file and calls main().
 */
import { resolve } from "node:path";
import { decodeImage, SUPPORTED_CONTENT_TYPES } from "./decode/index.js";
import { assembleTileResult, assertTileBudget, createModelRunner, cutTiles } from "./inference/index.js";
import { loadModelManifest } from "./model/manifest.js";
import { ConfigurationError, loadServerConfig } from "./server/config.js";
import { exitOnSignals } from "./server/lifecycle.js";
import { createJsonLogger, errorFields, type Logger } from "./server/logger.js";
import type { Analyser } from "./server/ports.js";
import { startServer } from "./server/server.js";

export { ConfigurationError, loadServerConfig } from "./server/config.js";
export type { Analyser, ModelInfo, PreparedImage } from "./server/ports.js";
export {
  type DrainOutcome,
  type RunningServer,
  type StartServerOptions,
  startServer,
} from "./server/server.js";

export interface CoreAnalyserOptions {
  /** onnxruntime intra-op threads per session; onnxruntime's default when absent. */
  intraOpThreads?: number;
}

/**
 * The real analyser: the model folder's manifest (sha256-checked), both ONNX sessions, and
 * the core's decode -> tile -> run -> assemble steps, the same ones the accuracy gate runs.
 */
export async function loadCoreAnalyser(
  modelDir: string,
  options: CoreAnalyserOptions = {},
): Promise<Analyser> {
  const { manifest, manifestSha256, dir } = await loadModelManifest(modelDir);
  const runner = await createModelRunner(
    manifest,
    dir,
    options.intraOpThreads === undefined ? {} : { intraOpThreads: options.intraOpThreads },
  );
  return {
    model: { name: manifest.name, version: manifest.version, manifestSha256 },
    contentTypes: SUPPORTED_CONTENT_TYPES,
    async prepare(body, contentType, limits) {
      const image = await decodeImage(body, contentType, limits);
      assertTileBudget(image.width, image.height, manifest.tileSize, limits.maxPixels);
      return {
        image: { width: image.width, height: image.height, format: image.format },
        tiles: cutTiles(image, manifest),
      };
    },
    run: (tiles) => runner.run(tiles),
    assemble: (tile, output) => assembleTileResult(tile, output, manifest),
  };
}

/**
 * The container entry. Environment: the server settings of `loadServerConfig`, plus
 * ASTROLENS_MODEL_DIR (default ./models/v1) and ASTROLENS_INTRA_OP_THREADS.
 * Exits 0 after a clean drain, 1 when the drain deadline passes, the models fail to load
 * or the port cannot be bound, 2 on a configuration mistake.
 */
export async function main(
  env: NodeJS.ProcessEnv = process.env,
  logger: Logger = createJsonLogger(),
): Promise<void> {
  try {
    const config = loadServerConfig(env);
    const modelDir = resolve(env.ASTROLENS_MODEL_DIR?.trim() || "models/v1");
    const intraOpThreads = parseThreads(env.ASTROLENS_INTRA_OP_THREADS);
    logger.info("starting", { model_dir: modelDir, pid: process.pid, node: process.version });
    const running = await startServer({
      analyser: loadCoreAnalyser(modelDir, intraOpThreads === undefined ? {} : { intraOpThreads }),
      config,
      logger,
    });
    exitOnSignals(running, { logger });
    running.ready.catch(() => {
      // A container that cannot serve should stop, so ECS replaces it and SageMaker fails
      // the deployment with the reason in the log, rather than answer 503 forever.
      void running.drain("the models failed to load").finally(() => process.exit(1));
    });
  } catch (error) {
    logger.error("startup failed", errorFields(error));
    process.exit(error instanceof ConfigurationError ? 2 : 1);
  }
}

function parseThreads(raw: string | undefined): number | undefined {
  const value = raw?.trim();
  if (!value) return undefined;
  if (!/^\d+$/.test(value) || Number(value) < 1) {
    throw new ConfigurationError(
      `ASTROLENS_INTRA_OP_THREADS must be a whole number >= 1 (or unset for onnxruntime's default), got "${raw}"`,
    );
  }
  return Number(value);
}
