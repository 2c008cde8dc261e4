import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import {
  CreateRepositoryCommand,
  DescribeImagesCommand,
  DescribeRepositoriesCommand,
  type ECRClient,
  GetAuthorizationTokenCommand,
  type ImageDetail,
  type Repository,
} from "@aws-sdk/client-ecr";
import { awsErrorName } from "../aws/clients.js";
import { ConfigurationError } from "../errors.js";
import type { Logger } from "../gh/logger.js";

// ECR's own rules (CreateRepository: repositoryName pattern, 2-256 chars; image tags up to 128).
const REPOSITORY_NAME = /^(?=.{2,256}$)(?:[a-z0-9]+(?:[._-][a-z0-9]+)*\/)*[a-z0-9]+(?:[._-][a-z0-9]+)*$/;
const IMAGE_TAG = /^[A-Za-z0-9_][A-Za-z0-9._-]{0,127}$/;
const DIGEST = /^sha256:[a-f0-9]{64}$/;

export function validateRepositoryName(name: string, input: string): string {
  if (!REPOSITORY_NAME.test(name)) {
    throw new ConfigurationError(
      `input "${input}": "${name}" is not a valid ECR repository name: use 2-256 lower-case letters, digits and . _ - /, starting and ending with a letter or digit (e.g. "astrolens/inference")`,
    );
  }
  return name;
}

export function validateTag(tag: string, input: string): string {
  if (!IMAGE_TAG.test(tag)) {
    throw new ConfigurationError(
      `input "${input}": "${tag}" is not a valid image tag: use up to 128 letters, digits, _ . -, not starting with . or -`,
    );
  }
  return tag;
}

export function validateDigest(digest: string, input: string): string {
  if (!DIGEST.test(digest)) {
    throw new ConfigurationError(
      `input "${input}": "${digest}" is not an image digest: expected sha256: and 64 hex digits`,
    );
  }
  return digest;
}

/**
 * Finds the repository, or creates it the way a release needs it: IMMUTABLE tags (a
 * tag can never be moved to another image) and scan on push. An existing repository
 * is never changed, only warned about.
 */
export async function ensureRepository(ecr: ECRClient, name: string, logger: Logger): Promise<Repository> {
  try {
    const found = await ecr.send(new DescribeRepositoriesCommand({ repositoryNames: [name] }));
    const repository = found.repositories?.[0];
    if (repository) {
      if (repository.imageTagMutability !== "IMMUTABLE") {
        logger.warning(
          `ECR repository ${name} has ${repository.imageTagMutability} tags: releases address images by digest, but a tag there can be moved to another image; set imageTagMutability to IMMUTABLE`,
        );
      }
      return repository;
    }
  } catch (err) {
    if (awsErrorName(err) !== "RepositoryNotFoundException") throw err;
  }
  logger.info(`creating ECR repository ${name} (IMMUTABLE tags, scan on push)`);
  const created = await ecr.send(
    new CreateRepositoryCommand({
      repositoryName: name,
      imageTagMutability: "IMMUTABLE",
      imageScanningConfiguration: { scanOnPush: true },
    }),
  );
  if (!created.repository) throw new Error(`CreateRepository returned no repository for ${name}`);
  return created.repository;
}

/** Credentials for one registry, held in a private auth file for skopeo. */
export interface RegistryLogin {
  /** host[:port] as it appears in image references. */
  host: string;
  /** Plain HTTP (the local registry): skopeo must not insist on TLS. */
  insecure: boolean;
}

export interface AuthFile {
  path: string;
  logins: RegistryLogin[];
  dispose(): void;
}

/**
 * Asks ECR for registry credentials and writes them to a 0600 auth file, so the
 * password never appears on a command line. The token is masked before anything
 * could print it.
 */
export async function loginToRegistries(clients: ECRClient[], logger: Logger): Promise<AuthFile> {
  const auths: Record<string, { auth: string }> = {};
  const logins: RegistryLogin[] = [];
  for (const ecr of clients) {
    const response = await ecr.send(new GetAuthorizationTokenCommand({}));
    const data = response.authorizationData?.[0];
    if (!data?.authorizationToken || !data.proxyEndpoint)
      throw new Error("GetAuthorizationToken returned no token");
    const token = data.authorizationToken;
    logger.setSecret(token);
    const password = Buffer.from(token, "base64").toString("utf8").split(":").slice(1).join(":");
    logger.setSecret(password);
    const endpoint = new URL(data.proxyEndpoint);
    auths[endpoint.host] = { auth: token };
    logins.push({ host: endpoint.host, insecure: endpoint.protocol === "http:" });
    if (data.expiresAt)
      logger.debug(`registry token for ${endpoint.host} expires ${data.expiresAt.toISOString()}`);
  }
  const dir = mkdtempSync(join(tmpdir(), "astrolens-auth-"));
  const path = join(dir, "auth.json");
  writeFileSync(path, JSON.stringify({ auths }), { mode: 0o600 });
  return { path, logins, dispose: () => rmSync(dir, { recursive: true, force: true }) };
}

/** The image with `digest` in `repository`, or undefined. */
export async function findImageByDigest(
  ecr: ECRClient,
  repository: string,
  digest: string,
): Promise<ImageDetail | undefined> {
  return findImage(ecr, repository, { imageDigest: digest });
}

export async function findImageByTag(
  ecr: ECRClient,
  repository: string,
  tag: string,
): Promise<ImageDetail | undefined> {
  return findImage(ecr, repository, { imageTag: tag });
}

async function findImage(
  ecr: ECRClient,
  repository: string,
  imageId: { imageDigest?: string; imageTag?: string },
): Promise<ImageDetail | undefined> {
  try {
    const found = await ecr.send(
      new DescribeImagesCommand({ repositoryName: repository, imageIds: [imageId] }),
    );
    return found.imageDetails?.[0];
  } catch (err) {
    if (awsErrorName(err) === "ImageNotFoundException") return undefined;
    throw err;
  }
}
