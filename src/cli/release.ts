import { execFileSync } from "node:child_process";
import { join } from "node:path";
import { ECRClient } from "@aws-sdk/client-ecr";
import { type AwsOptions, createClient } from "../aws/clients.js";
import { ConfigurationError } from "../errors.js";
import type { Logger } from "../gh/logger.js";
import { Summary } from "../gh/summary.js";
import { type BuiltImage, buildImage } from "../image/build.js";
import { containerStorage } from "../image/containers.js";
import { type PushedImage, pushImage } from "../image/push.js";
import { type ScanResult, scanImage } from "../image/scan.js";
import { resolveScanPolicy } from "../image/scan-policy-file.js";
import { renderScanSummary } from "../image/scan-summary.js";
import { LOCAL_BUILD_ARGS, proxyCaSecret } from "../local/base-images.js";
import { readLocalEnv } from "../local/env-file.js";
import { type LocalPaths, localPaths } from "../local/paths.js";
import { TOOLKIT_VERSION } from "../version.js";

export const DEFAULT_REPOSITORY = "astrolens/inference";

export interface ReleaseOptions {
  env: string;
  repository?: string;
  logger: Logger;
}

export interface ReleaseOutcome {
  digest: string;
  pushed: PushedImage;
  scan: ScanResult;
  summary: Summary;
  timings: { stage: string; seconds: number }[];
}

/**
 * The release as far as it exists: build -> scan -> push, against the local AWS.
 * Later stages (gate, deploy, smoke, watch) join this same sequence.
 */
export async function runRelease(options: ReleaseOptions): Promise<ReleaseOutcome> {
  const { logger } = options;
  if (options.env !== "local") {
    throw new ConfigurationError(
      `--env ${options.env}: only "local" is available from the CLI so far; releases to AWS environments run from the release workflow`,
    );
  }
  const paths = localPaths();
  Object.assign(process.env, readLocalEnv(paths.envFile));
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
    repository: options.repository ?? DEFAULT_REPOSITORY,
    outputDir,
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
  summary.heading("Timings", 3).table(
    ["stage", "seconds"],
    timings.map((t) => [t.stage, t.seconds.toFixed(1)]),
  );
  return { digest: image.digest, pushed, scan, summary, timings };
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
