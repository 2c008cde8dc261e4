import type { ECRClient } from "@aws-sdk/client-ecr";
import { ConfigurationError } from "../errors.js";
import type { Logger } from "../gh/logger.js";
import {
  ensureRepository,
  findImageByDigest,
  findImageByTag,
  loginToRegistries,
  validateDigest,
  validateRepositoryName,
  validateTag,
} from "./ecr.js";
import { copyImage } from "./push.js";

export interface ImageReference {
  /** Registry host[:port]. */
  host: string;
  repository: string;
  digest: string;
}

/** Parses `host/repository@sha256:…`; promotion only ever names an image by digest. */
export function parseImageReference(reference: string, input: string): ImageReference {
  const match = /^([^/@]+)\/([^@]+)@(.+)$/.exec(reference.trim());
  if (!match?.[1] || !match[2] || !match[3]) {
    throw new ConfigurationError(
      `input "${input}": "${reference}" is not an image by digest: expected <registry>/<repository>@sha256:<64 hex>, as push-image outputs in image-uri`,
    );
  }
  return {
    host: match[1],
    repository: validateRepositoryName(match[2], input),
    digest: validateDigest(match[3], input),
  };
}

export interface PromoteOptions {
  source: ImageReference;
  /** ECR in the source image's account and region. */
  sourceEcr: ECRClient;
  /** ECR in the destination account and region (the same client for a copy within one). */
  destinationEcr: ECRClient;
  destinationRepository: string;
  tags: string[];
  logger: Logger;
}

export interface PromotedImage {
  imageUri: string;
  digest: string;
  mediaType: string;
  tags: string[];
}

/**
 * Copies an already-built image to another repository, account or tag without
 * rebuilding or re-wrapping it, and proves through the destination's ECR API that the
 * digest is the one that was promoted.
 */
export async function promoteImage(options: PromoteOptions): Promise<PromotedImage> {
  const { source, logger } = options;
  const destinationRepository = validateRepositoryName(
    options.destinationRepository,
    "destination-repository",
  );
  const tags = options.tags.map((tag) => validateTag(tag, "tags"));
  if (tags.length === 0)
    throw new ConfigurationError('input "tags": give at least one tag for the promoted image');

  const original = await findImageByDigest(options.sourceEcr, source.repository, source.digest);
  if (!original) {
    throw new ConfigurationError(
      `input "source-image": ${source.repository}@${source.digest} does not exist in ECR; check the digest (push-image's digest output) and the source region/account`,
    );
  }
  const destination = await ensureRepository(options.destinationEcr, destinationRepository, logger);
  const destinationUri = destination.repositoryUri ?? "";
  for (const tag of tags) {
    const existing = await findImageByTag(options.destinationEcr, destinationRepository, tag);
    if (existing && existing.imageDigest !== source.digest) {
      throw new ConfigurationError(
        `input "tags": ${destinationRepository}:${tag} already names ${existing.imageDigest}; tags are immutable, choose another tag`,
      );
    }
  }

  const clients =
    options.sourceEcr === options.destinationEcr
      ? [options.sourceEcr]
      : [options.sourceEcr, options.destinationEcr];
  const auth = await loginToRegistries(clients, logger);
  try {
    for (const tag of tags) {
      await logger.group(`Promoting ${source.digest} to ${destinationUri}:${tag}`, async () => {
        const stored = await copyImage(
          `docker://${source.host}/${source.repository}@${source.digest}`,
          `docker://${destinationUri}:${tag}`,
          auth,
          logger,
        );
        if (stored !== source.digest)
          throw new Error(`the destination stored ${stored}, not ${source.digest}`);
      });
    }
  } finally {
    auth.dispose();
  }

  const promoted = await findImageByDigest(options.destinationEcr, destinationRepository, source.digest);
  if (!promoted || promoted.imageDigest !== source.digest) {
    throw new Error(`ECR does not report ${source.digest} in ${destinationRepository} after the copy`);
  }
  if (promoted.imageManifestMediaType !== original.imageManifestMediaType) {
    throw new Error(
      `the promoted manifest is ${promoted.imageManifestMediaType}, the source was ${original.imageManifestMediaType}`,
    );
  }
  logger.info(`promoted ${source.digest} to ${destinationUri} unchanged (${tags.join(", ")})`);
  return {
    imageUri: `${destinationUri}@${source.digest}`,
    digest: source.digest,
    mediaType: promoted.imageManifestMediaType ?? "",
    tags,
  };
}
