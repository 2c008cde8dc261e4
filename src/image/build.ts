import { createHash } from "node:crypto";
import { existsSync, mkdirSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import { isAbsolute, join, resolve } from "node:path";
import { ConfigurationError, withContext } from "../errors.js";
import type { Logger } from "../gh/logger.js";
import { runCommand } from "../tools/command.js";
import {
  buildahStorageFlags,
  type ContainerStorage,
  DOCKER_MANIFEST_V2,
  storageReference,
} from "./containers.js";

export type BuilderChoice = "auto" | "buildah" | "docker";

export interface BuildOptions {
  /** The build context folder. */
  context: string;
  /** The Dockerfile, relative to the context unless absolute. */
  dockerfile: string;
  /** The local name the image gets while it is built (never pushed as such). */
  name: string;
  buildArgs: Record<string, string>;
  target?: string;
  /** One platform: SageMaker and Fargate each run one architecture. */
  platform: string;
  /** Layer cache sources and destination, passed to the builder as given. */
  cacheFrom: string[];
  cacheTo?: string;
  /** Build secrets by id -> file (e.g. `ca-bundle` for a proxy's CA); never stored in a layer. */
  secrets?: Record<string, string>;
  builder: BuilderChoice;
  /** Where the built image is written (docker-archive for scanners, dir layout for pushing). */
  outputDir: string;
  storage: ContainerStorage;
  logger: Logger;
}

/** A built image, fixed by the digest of its Docker v2 schema 2 manifest. */
export interface BuiltImage {
  digest: string;
  mediaType: string;
  builder: "buildah" | "docker";
  /** The image as skopeo's `dir:` layout: manifest.json plus compressed blobs. Pushing it keeps the digest. */
  imageDir: string;
  /** The same image as a docker-archive tarball, the form Trivy reads offline. */
  archive: string;
  /** Compressed size: config plus layers, as a registry will store it. */
  sizeBytes: number;
  layers: number;
}

interface Manifest {
  mediaType?: string;
  config: { size: number; digest: string };
  layers: { size: number; digest: string }[];
}

/**
 * Builds the Dockerfile and fixes the result as a single-platform Docker v2 schema 2
 * image. SageMaker rejects OCI manifests and image indexes (which buildx emits once
 * provenance is on), so the digest computed here is the one every later step uses.
 */
export async function buildImage(options: BuildOptions): Promise<BuiltImage> {
  const { logger } = options;
  const context = resolve(options.context);
  if (!existsSync(context) || !statSync(context).isDirectory()) {
    throw new ConfigurationError(
      `input "context": ${context} is not a folder; give the build context, e.g. "."`,
    );
  }
  const dockerfile = isAbsolute(options.dockerfile) ? options.dockerfile : join(context, options.dockerfile);
  if (!existsSync(dockerfile)) {
    throw new ConfigurationError(
      `input "dockerfile": ${dockerfile} does not exist; give the path of the Dockerfile relative to the context`,
    );
  }
  for (const [id, file] of Object.entries(options.secrets ?? {})) {
    if (!existsSync(file)) {
      throw new ConfigurationError(
        `input "secret-files": the file for secret "${id}" (${file}) does not exist`,
      );
    }
  }
  const builder = options.builder === "auto" ? await detectBuilder(logger) : options.builder;
  mkdirSync(options.outputDir, { recursive: true });
  const archive = join(options.outputDir, "image.tar");
  const imageDir = join(options.outputDir, "image");
  rmSync(archive, { force: true });
  rmSync(imageDir, { recursive: true, force: true });

  await logger.group(`Building ${options.dockerfile} with ${builder}`, async () => {
    if (builder === "buildah") await buildWithBuildah(options, dockerfile, context, archive);
    else await buildWithDocker(options, dockerfile, context, archive);
  });

  // Compressing into skopeo's dir layout fixes the manifest bytes, hence the digest,
  // before anything is pushed: push and promote copy these bytes unchanged.
  await logger.group("Writing the image as Docker v2 schema 2", async () => {
    await runSkopeo(
      [
        "copy",
        "--quiet",
        "--format",
        "v2s2",
        "--dest-compress",
        `docker-archive:${archive}`,
        `dir:${imageDir}`,
      ],
      logger,
    );
  });
  const manifestBytes = readFileSync(join(imageDir, "manifest.json"));
  const manifest = JSON.parse(manifestBytes.toString("utf8")) as Manifest;
  const digest = `sha256:${createHash("sha256").update(manifestBytes).digest("hex")}`;
  const mediaType = manifest.mediaType ?? "";
  if (mediaType !== DOCKER_MANIFEST_V2) {
    throw new Error(`the built manifest is ${mediaType || "untyped"}, expected ${DOCKER_MANIFEST_V2}`);
  }
  const image: BuiltImage = {
    digest,
    mediaType,
    builder,
    imageDir,
    archive,
    sizeBytes: manifest.config.size + manifest.layers.reduce((sum, layer) => sum + layer.size, 0),
    layers: manifest.layers.length,
  };
  writeFileSync(join(options.outputDir, "build.json"), `${JSON.stringify(image, null, 2)}\n`);
  logger.info(`built ${digest} (${mediaType}, ${image.layers} layers, ${formatBytes(image.sizeBytes)})`);
  return image;
}

/** Reads the record `buildImage` left in an output folder, for the steps after it. */
export function readBuiltImage(outputDir: string): BuiltImage {
  const file = join(outputDir, "build.json");
  if (!existsSync(file)) {
    throw new ConfigurationError(
      `no built image in ${outputDir} (${file} is missing): run build-image first`,
    );
  }
  return JSON.parse(readFileSync(file, "utf8")) as BuiltImage;
}

/** Docker with buildx where a daemon answers; otherwise buildah, which needs no daemon. */
async function detectBuilder(logger: Logger): Promise<"buildah" | "docker"> {
  try {
    // `docker info` needs the daemon; the client alone (as on this kind of machine) fails it.
    await runCommand("docker", ["info", "--format", "{{.ServerVersion}}"], { logger });
    await runCommand("docker", ["buildx", "version"], { logger });
    return "docker";
  } catch {
    logger.debug("no Docker daemon with buildx: building with buildah");
    return "buildah";
  }
}

/** The flags buildah and buildx spell alike. */
function sharedBuildFlags(options: BuildOptions, dockerfile: string): string[] {
  return [
    "--platform",
    options.platform,
    "-f",
    dockerfile,
    "-t",
    options.name,
    ...Object.entries(options.buildArgs).flatMap(([key, value]) => ["--build-arg", `${key}=${value}`]),
    ...(options.target ? ["--target", options.target] : []),
    ...options.cacheFrom.flatMap((source) => ["--cache-from", source]),
    ...(options.cacheTo ? ["--cache-to", options.cacheTo] : []),
    ...Object.entries(options.secrets ?? {}).flatMap(([id, file]) => ["--secret", `id=${id},src=${file}`]),
  ];
}

async function buildWithBuildah(options: BuildOptions, dockerfile: string, context: string, archive: string) {
  const { logger } = options;
  const global = buildahStorageFlags(options.storage);
  const args = [
    ...global,
    "build",
    "--isolation",
    "chroot",
    "--format",
    "docker",
    "--layers",
    ...sharedBuildFlags(options, dockerfile),
    context,
  ];
  const installHint =
    "install buildah (Debian/Ubuntu: sudo apt-get install buildah skopeo), or run where Docker is";
  try {
    await runCommand("buildah", args, { logger, stream: true, installHint });
    await runCommand(
      "buildah",
      [...global, "push", "--quiet", options.name, `docker-archive:${archive}:${options.name}`],
      {
        logger,
        installHint,
      },
    );
  } catch (err) {
    throw withContext("buildah build", err);
  }
  logger.debug(`built ${storageReference(options.storage, options.name)}`);
}

async function buildWithDocker(options: BuildOptions, dockerfile: string, context: string, archive: string) {
  // No provenance or SBOM attestations: they turn the result into an image index.
  const args = [
    "buildx",
    "build",
    "--provenance=false",
    "--sbom=false",
    "--output",
    `type=docker,dest=${archive}`,
    ...sharedBuildFlags(options, dockerfile),
    context,
  ];
  try {
    await runCommand("docker", args, { logger: options.logger, stream: true });
  } catch (err) {
    throw withContext("docker buildx build", err);
  }
}

/** Runs skopeo with a hint for installing it. */
export function runSkopeo(args: string[], logger: Logger) {
  return runCommand("skopeo", args, {
    logger,
    installHint:
      "install skopeo (Debian/Ubuntu: sudo apt-get install skopeo; it is on GitHub's Ubuntu runners)",
  });
}

export function formatBytes(bytes: number): string {
  if (bytes < 1024 * 1024) return `${(bytes / 1024).toFixed(1)} KiB`;
  return `${(bytes / 1024 / 1024).toFixed(1)} MiB`;
}
