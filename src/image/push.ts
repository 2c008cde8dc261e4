import { createHash } from "node:crypto";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { ECRClient } from "@aws-sdk/client-ecr";
import { ConfigurationError, withContext } from "../errors.js";
import type { Logger } from "../gh/logger.js";
import { CommandError } from "../tools/command.js";
import { runSkopeo } from "./build.js";
import {
  type AuthFile,
  ensureRepository,
  findImageByDigest,
  findImageByTag,
  loginToRegistries,
  validateRepositoryName,
  validateTag,
} from "./ecr.js";

export interface PushOptions {
  ecr: ECRClient;
  /** skopeo `dir:` layout written by build-image. */
  imageDir: string;
  repository: string;
  tags: string[];
  /** The scan gate's verdict for this image; anything but "pass" is refused. */
  scanVerdict: string;
  /** The digest the scan judged: it must be the image being pushed, or a verdict could vouch for another image. */
  scannedDigest: string;
  logger: Logger;
}

export interface PushedImage {
  repositoryUri: string;
  digest: string;
  /** `repositoryUri@digest`: how every later step addresses the image. */
  imageUri: string;
  tags: string[];
  mediaType: string;
}

/**
 * Pushes a built image to ECR by its digest: ensures the repository, logs in, refuses
 * to move an existing tag, copies the exact bytes build-image fixed, and checks that
 * ECR's API reports the digest and every tag.
 */
export async function pushImage(options: PushOptions): Promise<PushedImage> {
  const { ecr, logger } = options;
  const repository = validateRepositoryName(options.repository, "repository");
  if (options.tags.length === 0) {
    throw new ConfigurationError(
      'input "tags": give at least one tag, e.g. the git SHA, so the image is findable',
    );
  }
  const tags = options.tags.map((tag) => validateTag(tag, "tags"));
  if (options.scanVerdict !== "pass") {
    throw new ConfigurationError(
      `input "scan-verdict": the scan verdict is "${options.scanVerdict || "(none)"}", and only an image whose scan passed is pushed; fix the findings or waive them with a reason and an expiry, then scan again`,
    );
  }
  const manifestBytes = readManifest(options.imageDir);
  const digest = `sha256:${createHash("sha256").update(manifestBytes).digest("hex")}`;
  const mediaType = (JSON.parse(manifestBytes.toString("utf8")) as { mediaType?: string }).mediaType ?? "";
  if (options.scannedDigest !== digest) {
    throw new ConfigurationError(
      `input "scanned-digest": the scan judged ${options.scannedDigest} but the image to push is ${digest}; scan this image`,
    );
  }

  const repo = await ensureRepository(ecr, repository, logger);
  const repositoryUri = repo.repositoryUri ?? "";
  const pending: string[] = [];
  for (const tag of tags) {
    const existing = await findImageByTag(ecr, repository, tag);
    if (!existing) pending.push(tag);
    else if (existing.imageDigest === digest) logger.info(`${repository}:${tag} is already ${digest}`);
    else {
      throw new ConfigurationError(
        `input "tags": ${repository}:${tag} already names ${existing.imageDigest}, a different image; tags are immutable, so give a new tag (e.g. the new git SHA or version)`,
      );
    }
  }

  const auth = await loginToRegistries([ecr], logger);
  try {
    for (const tag of pending) {
      await logger.group(`Pushing ${repositoryUri}:${tag}`, async () => {
        const pushed = await copyImage(
          `dir:${options.imageDir}`,
          `docker://${repositoryUri}:${tag}`,
          auth,
          logger,
        );
        if (pushed !== digest)
          throw new Error(`the registry stored ${pushed} for ${tag}, expected ${digest}`);
      });
    }
  } finally {
    auth.dispose();
  }

  const seen = await findImageByDigest(ecr, repository, digest);
  const missing = tags.filter((tag) => !seen?.imageTags?.includes(tag));
  if (!seen || missing.length > 0) {
    throw new Error(
      `ECR does not report ${digest} with tag(s) ${missing.join(", ") || tags.join(", ")} after the push`,
    );
  }
  logger.info(`pushed ${repositoryUri}@${digest} (${tags.join(", ")})`);
  return { repositoryUri, digest, imageUri: `${repositoryUri}@${digest}`, tags, mediaType };
}

/**
 * Copies one image between registries (or from a local layout) byte for byte:
 * `--preserve-digests` makes skopeo fail rather than rewrite the manifest. Returns
 * the digest the destination stored.
 */
export async function copyImage(
  source: string,
  destination: string,
  auth: AuthFile,
  logger: Logger,
): Promise<string> {
  const dir = mkdtempSync(join(tmpdir(), "astrolens-copy-"));
  const digestFile = join(dir, "digest");
  const insecure = auth.logins.filter((login) => login.insecure).map((login) => login.host);
  const tlsFlags = [
    ...(source.startsWith("docker://") && insecure.some((host) => source.startsWith(`docker://${host}/`))
      ? ["--src-tls-verify=false"]
      : []),
    ...(insecure.some((host) => destination.startsWith(`docker://${host}/`))
      ? ["--dest-tls-verify=false"]
      : []),
  ];
  try {
    await runSkopeo(
      [
        "copy",
        "--quiet",
        "--preserve-digests",
        "--authfile",
        auth.path,
        ...tlsFlags,
        "--digestfile",
        digestFile,
        source,
        destination,
      ],
      logger,
    );
    return readFileSync(digestFile, "utf8").trim();
  } catch (err) {
    throw explainRegistryError(err, destination);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

function explainRegistryError(err: unknown, destination: string): Error {
  if (err instanceof CommandError && /connection refused|no such host|i\/o timeout/i.test(err.stderr)) {
    const host = destination.replace(/^docker:\/\//, "").split("/")[0];
    return new ConfigurationError(
      `the registry ${host} is not reachable (${err.stderr.includes("refused") ? "connection refused" : "network error"}): start it (locally: astrolens-release local up) or check the network; nothing was pushed`,
    );
  }
  return withContext(`copying to ${destination}`, err);
}

function readManifest(imageDir: string): Buffer {
  try {
    return readFileSync(join(imageDir, "manifest.json"));
  } catch {
    throw new ConfigurationError(
      `input "image-dir": ${imageDir} holds no built image (manifest.json is missing); run build-image first and pass its image-dir output`,
    );
  }
}
