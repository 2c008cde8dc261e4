import { execFileSync } from "node:child_process";
import { createHash } from "node:crypto";
import { existsSync, readdirSync, readFileSync } from "node:fs";
import { basename, join } from "node:path";
import { ECRClient } from "@aws-sdk/client-ecr";
import type { GateResult } from "../../service/src/gate/run.js";
import { type AwsOptions, createClient } from "../aws/clients.js";
import { type DeployOutcome, deploy, environmentStatus } from "../deploy/entry.js";
import { environmentResources } from "../environment.js";
import { ConfigurationError } from "../errors.js";
import type { Logger } from "../gh/logger.js";
import { Summary } from "../gh/summary.js";
import { type BuiltImage, buildImage } from "../image/build.js";
import { containerStorage } from "../image/containers.js";
import { type PushedImage, pushImage } from "../image/push.js";
import { type ScanResult, scanImage } from "../image/scan.js";
import { resolveScanPolicy } from "../image/scan-policy-file.js";
import { renderScanSummary } from "../image/scan-summary.js";
import { localTestUrl } from "../local/alb.js";
import { LOCAL_BUILD_ARGS, proxyCaSecret } from "../local/base-images.js";
import { readLocalEnv } from "../local/env-file.js";
import { BASELINE_MODEL, LOCAL_ENVIRONMENT } from "../local/environment.js";
import { type LocalPaths, localPaths } from "../local/paths.js";
import { TOOLKIT_VERSION } from "../version.js";

export interface ReleaseOptions {
  env: string;
  /** The model folder under service/models the image carries (the candidate); default v2. */
  model?: string;
  /** Stop after the plan: build, scan, push and gate run, nothing is deployed. */
  dryRun?: boolean;
  /** Return once the bake starts (`astrolens-release resume` watches the rest). */
  returnAtBake?: boolean;
  sagemakerStrategy?: string;
  logger: Logger;
}

export interface ReleaseOutcome {
  digest: string;
  pushed: PushedImage;
  scan: ScanResult;
  gate: GateResult;
  deployed: DeployOutcome;
  summary: Summary;
  timings: { stage: string; seconds: number }[];
}

/** The candidate model the image carries unless told otherwise (the Dockerfile's default). */
export const DEFAULT_CANDIDATE_MODEL = "v2";

/**
 * The local release, the whole of it: build -> scan -> push -> gate -> deploy, against
 * the local AWS and its `local` environment (which `local up` made from the CDK app).
 * The gate compares the candidate with the model production runs now; the deploy is the
 * same coordinator the deploy action runs.
 */
export async function runLocalRelease(options: ReleaseOptions): Promise<ReleaseOutcome> {
  const { logger } = options;
  if (options.env !== LOCAL_ENVIRONMENT) {
    throw new ConfigurationError(
      `--env ${options.env}: the CLI releases to "local" only; releases to AWS environments run from the release workflow (or \`astrolens-release deploy\` with AWS credentials)`,
    );
  }
  const paths = localPaths();
  Object.assign(process.env, readLocalEnv(paths.envFile));
  const resources = environmentResources(options.env);
  const candidateModel = options.model ?? DEFAULT_CANDIDATE_MODEL;
  const candidateDir = modelFolder(paths.root, candidateModel);
  const outputDir = join(paths.state, "release");
  const timings: ReleaseOutcome["timings"] = [];
  const timed = async <T>(stage: string, fn: () => Promise<T>): Promise<T> => {
    const started = Date.now();
    try {
      return await fn();
    } finally {
      timings.push({ stage, seconds: (Date.now() - started) / 1000 });
    }
  };

  const { image, scan, pushed } = await buildScanPush({
    repository: resources.ecrRepository,
    outputDir,
    modelVersion: candidateModel,
    timed,
    logger,
  });
  const summary = new Summary().heading(`AstroLens release to ${options.env}`);
  summary.raw(renderScanSummary(scan.verdict, { headingLevel: 3 }));
  summary.heading("Image", 3).table(
    ["", ""],
    [
      ["image", pushed.imageUri],
      ["media type", pushed.mediaType],
      ["tags", pushed.tags.join(", ")],
      ["SBOM", scan.sbomFile],
      ["SARIF", scan.sarifFile],
    ],
  );

  const productionDir = await productionModelFolder(paths.root, resources.environment);
  const metricsFile = join(outputDir, "gate", "metrics.json");
  const gate = await timed("gate", () =>
    logger.group(
      `Accuracy gate: ${candidateModel} against production (${basename(productionDir)})`,
      async () =>
        (await loadGate()).runGate({
          candidate: candidateDir,
          production: productionDir,
          sets: LOCAL_EVAL_SETS(paths.root),
          policyFile: join(paths.root, ".astrolens", "gate-policy.yaml"),
          metricsFile,
          logger,
        }),
    ),
  );
  summary.raw(gate.markdown);
  if (gate.comparison.blocksRelease) {
    throw new ConfigurationError(
      `the accuracy gate blocked the release (${gate.comparison.verdict}), nothing was deployed: see ${metricsFile}`,
    );
  }

  const deployed = await timed("deploy", async () =>
    deploy({
      environment: resources.environment,
      image: pushed.imageUri,
      modelManifest: join(candidateDir, "manifest.json"),
      ...(options.sagemakerStrategy && { sagemakerStrategy: options.sagemakerStrategy }),
      ...(options.returnAtBake && { wait: "bake" }),
      dryRun: options.dryRun ?? false,
      scanVerdict: scan.verdict.passed ? "pass" : "fail",
      gateMetricsFile: metricsFile,
      testUrl: await localTestUrl(resources),
      pollIntervalMs: LOCAL_POLL_MS,
      logger,
    }),
  );
  summary.raw(deployed.summary.toMarkdown());
  summary.heading("Timings", 3).table(
    ["stage", "seconds"],
    timings.map((t) => [t.stage, t.seconds.toFixed(1)]),
  );
  return { digest: image.digest, pushed, scan, gate, deployed, summary, timings };
}

/** The local AWS's clock runs fast (time scale), so the coordinator reads it often. */
export const LOCAL_POLL_MS = 500;

/** The evaluation sets the local gate uses (the ones the accuracy-gate action defaults to, plus OOD and detection). */
function LOCAL_EVAL_SETS(root: string) {
  const sets = join(root, "test", "fixtures", "eval");
  return {
    classification: join(sets, "synthetic", "manifest.json"),
    ood: join(sets, "ood", "manifest.json"),
    detection: join(sets, "detection", "manifest.json"),
  };
}

type GateModule = typeof import("../../service/src/gate/run.js");

/**
 * The gate runs onnxruntime-node, a native addon: it lives in its own bundle beside
 * service/node_modules, loaded only when a command needs it.
 */
export async function loadGate(): Promise<GateModule> {
  return (await import(new URL("../../service/dist/gate/index.js", import.meta.url).href)) as GateModule;
}

/** service/models/<name>, checked to hold a manifest. */
function modelFolder(root: string, name: string): string {
  const dir = join(root, "service", "models", name);
  if (!existsSync(join(dir, "manifest.json"))) {
    const known = readdirSync(join(root, "service", "models")).filter((d) =>
      existsSync(join(root, "service", "models", d, "manifest.json")),
    );
    throw new ConfigurationError(
      `--model ${name}: service/models/${name}/manifest.json does not exist; choose one of ${known.join(", ")}`,
    );
  }
  return dir;
}

/**
 * The model production serves now, as a folder of this checkout: the one whose
 * manifest's sha256 the environment's last succeeded release recorded, or the baseline
 * when no release succeeded yet (the environment still runs what `local up` deployed).
 */
async function productionModelFolder(root: string, environment: string): Promise<string> {
  const status = await environmentStatus(environment);
  const served = status.lastSucceeded?.model;
  if (!served) return modelFolder(root, BASELINE_MODEL);
  const models = join(root, "service", "models");
  for (const name of readdirSync(models)) {
    const manifest = join(models, name, "manifest.json");
    if (
      existsSync(manifest) &&
      createHash("sha256").update(readFileSync(manifest)).digest("hex") === served.manifestSha256
    )
      return join(models, name);
  }
  throw new ConfigurationError(
    `${environment} serves model ${served.version} (manifest sha256 ${served.manifestSha256.slice(0, 12)}…), which is not a folder of service/models in this checkout: check out the commit that built it, or roll back`,
  );
}

export interface BuildScanPushOptions {
  repository: string;
  /** Where the build and scan write their files. */
  outputDir: string;
  /** The model folder under service/models baked into the image (the Dockerfile's default otherwise). */
  modelVersion?: string;
  /** Tags to push; the checkout's release tags by default. */
  tags?: string[];
  timed?: <T>(stage: string, fn: () => Promise<T>) => Promise<T>;
  /** The local AWS to push to (process.env by default) and the checkout's paths. */
  aws?: AwsOptions;
  paths?: LocalPaths;
  logger: Logger;
}

/**
 * The image half of a local release: build the checkout with buildah, scan it with the
 * offline Trivy and the repository's waivers, and push it only when the scan passed.
 * Expects the local AWS's variables in the environment.
 */
export async function buildScanPush(
  options: BuildScanPushOptions,
): Promise<{ image: BuiltImage; scan: ScanResult; pushed: PushedImage }> {
  const { logger, outputDir } = options;
  const timed = options.timed ?? ((_stage, fn) => fn());
  const paths = options.paths ?? localPaths();
  const env = options.aws?.env ?? process.env;
  const image = await timed("build", () =>
    buildImage({
      context: paths.root,
      dockerfile: "Dockerfile",
      name: "localhost/astrolens-inference:candidate",
      buildArgs: {
        ...LOCAL_BUILD_ARGS,
        ...(options.modelVersion && { MODEL_VERSION: options.modelVersion }),
      },
      secrets: proxyCaSecret(),
      platform: "linux/amd64",
      cacheFrom: [],
      builder: "buildah",
      outputDir: join(outputDir, "build"),
      storage: containerStorage(env, paths.root),
      logger,
    }),
  );
  const policy = await resolveScanPolicy({
    waiversFile: join(paths.root, ".astrolens", "scan-waivers.yaml"),
  });
  const scan = await timed("scan", () =>
    scanImage({
      archive: image.archive,
      dockerfile: join(paths.root, "Dockerfile"),
      digest: image.digest,
      policy,
      outputDir: join(outputDir, "scan"),
      cacheDir: paths.trivyCache,
      offline: true,
      dbRepositories: [],
      logger,
    }),
  );
  if (!scan.verdict.passed) {
    throw new ConfigurationError(`the image scan failed, nothing was pushed: ${scan.verdict.summaryLine}`);
  }
  const ecr = createClient(ECRClient, options.aws);
  const pushed = await timed("push", () =>
    pushImage({
      ecr,
      imageDir: image.imageDir,
      repository: options.repository,
      tags: options.tags ?? releaseTags(paths.root, image.digest),
      scanVerdict: "pass",
      scannedDigest: scan.digest,
      logger,
    }),
  );
  return { image, scan, pushed };
}

/**
 * Tags for an image built from the checkout: the commit, and the toolkit version with
 * the short commit (a bare version would be taken by the first push and tags are
 * immutable). A dirty tree adds the digest, since each build of it differs.
 */
export function releaseTags(root: string, digest: string): string[] {
  let sha = "nogit";
  let dirty = false;
  try {
    sha = execFileSync("git", ["rev-parse", "HEAD"], { cwd: root, encoding: "utf8" }).trim();
    dirty = execFileSync("git", ["status", "--porcelain"], { cwd: root, encoding: "utf8" }).trim() !== "";
  } catch {
    // not a git checkout: the digest alone names the build
  }
  const suffix = dirty || sha === "nogit" ? `-dev.${digest.slice(7, 19)}` : "";
  return [`${sha}${suffix}`, `v${TOOLKIT_VERSION}-${sha.slice(0, 7)}${suffix}`];
}
