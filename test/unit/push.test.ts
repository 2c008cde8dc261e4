import { createHash } from "node:crypto";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import {
  CreateRepositoryCommand,
  DescribeImagesCommand,
  DescribeRepositoriesCommand,
  ECRClient,
  GetAuthorizationTokenCommand,
} from "@aws-sdk/client-ecr";
import { mockClient } from "aws-sdk-client-mock";
import { afterAll, beforeEach, describe, expect, it } from "vitest";
import { ConfigurationError } from "../../src/errors.js";
import { createMemoryLogger } from "../../src/gh/logger.js";
import { type PushOptions, pushImage } from "../../src/image/push.js";

const ecrMock = mockClient(ECRClient);
const ecr = new ECRClient({ region: "us-east-1" });

const MANIFEST = JSON.stringify({
  schemaVersion: 2,
  mediaType: "application/vnd.oci.image.manifest.v1+json",
  config: {
    mediaType: "application/vnd.oci.image.config.v1+json",
    digest: `sha256:${"c".repeat(64)}`,
    size: 2,
  },
  layers: [],
});
const DIGEST = `sha256:${createHash("sha256").update(MANIFEST).digest("hex")}`;
const OTHER_DIGEST = `sha256:${"b".repeat(64)}`;
const REPOSITORY_URI = "123456789012.dkr.ecr.us-east-1.amazonaws.com/astrolens/inference";

const imageDir = mkdtempSync(join(tmpdir(), "astrolens-push-test-"));
writeFileSync(join(imageDir, "manifest.json"), MANIFEST);
const emptyDir = mkdtempSync(join(tmpdir(), "astrolens-push-empty-"));

afterAll(() => {
  rmSync(imageDir, { recursive: true, force: true });
  rmSync(emptyDir, { recursive: true, force: true });
});

beforeEach(() => {
  ecrMock.reset();
});

function options(overrides: Partial<PushOptions> = {}): PushOptions {
  return {
    ecr,
    imageDir,
    repository: "astrolens/inference",
    tags: ["abc123"],
    scanVerdict: "pass",
    scannedDigest: DIGEST,
    logger: createMemoryLogger(),
    ...overrides,
  };
}

async function pushError(overrides: Partial<PushOptions>): Promise<ConfigurationError> {
  try {
    await pushImage(options(overrides));
  } catch (err) {
    expect(err).toBeInstanceOf(ConfigurationError);
    return err as ConfigurationError;
  }
  throw new Error("expected pushImage to throw");
}

function existingRepository(): void {
  ecrMock.on(DescribeRepositoriesCommand).resolves({
    repositories: [
      {
        repositoryName: "astrolens/inference",
        repositoryUri: REPOSITORY_URI,
        imageTagMutability: "IMMUTABLE",
      },
    ],
  });
}

describe("pushImage refuses before calling ECR", () => {
  it('refuses an image whose scan failed, naming "scan-verdict"', async () => {
    const err = await pushError({ scanVerdict: "fail" });
    expect(err.message).toContain('input "scan-verdict": the scan verdict is "fail"');
    expect(err.message).toContain("only an image whose scan passed is pushed");
    expect(ecrMock.calls()).toHaveLength(0);
  });

  it("refuses an image with no scan verdict", async () => {
    const err = await pushError({ scanVerdict: "" });
    expect(err.message).toContain('input "scan-verdict": the scan verdict is "(none)"');
    expect(ecrMock.calls()).toHaveLength(0);
  });

  it('refuses when the scanned digest is not the image\'s, naming "scanned-digest"', async () => {
    const err = await pushError({ scannedDigest: OTHER_DIGEST });
    expect(err.message).toBe(
      `input "scanned-digest": the scan judged ${OTHER_DIGEST} but the image to push is ${DIGEST}; scan this image`,
    );
    expect(ecrMock.calls()).toHaveLength(0);
  });

  it("rejects an invalid repository name", async () => {
    const err = await pushError({ repository: "AstroLens/Inference" });
    expect(err.message).toContain(
      'input "repository": "AstroLens/Inference" is not a valid ECR repository name',
    );
    expect(ecrMock.calls()).toHaveLength(0);
  });

  it("rejects an invalid tag", async () => {
    const err = await pushError({ tags: ["abc123", "-bad"] });
    expect(err.message).toContain('input "tags": "-bad" is not a valid image tag');
    expect(ecrMock.calls()).toHaveLength(0);
  });

  it("rejects zero tags", async () => {
    const err = await pushError({ tags: [] });
    expect(err.message).toBe(
      'input "tags": give at least one tag, e.g. the git SHA, so the image is findable',
    );
    expect(ecrMock.calls()).toHaveLength(0);
  });

  it('names "image-dir" when manifest.json is missing', async () => {
    const err = await pushError({ imageDir: emptyDir });
    expect(err.message).toBe(
      `input "image-dir": ${emptyDir} holds no built image (manifest.json is missing); run build-image first and pass its image-dir output`,
    );
    expect(ecrMock.calls()).toHaveLength(0);
  });
});

describe("pushImage against ECR", () => {
  it('refuses to move a tag that names a different digest, naming "tags", before asking for a token', async () => {
    existingRepository();
    ecrMock
      .on(DescribeImagesCommand)
      .resolves({ imageDetails: [{ imageDigest: OTHER_DIGEST, imageTags: ["abc123"] }] });

    const err = await pushError({});

    expect(err.message).toBe(
      `input "tags": astrolens/inference:abc123 already names ${OTHER_DIGEST}, a different image; tags are immutable, so give a new tag (e.g. the new git SHA or version)`,
    );
    expect(ecrMock.commandCalls(GetAuthorizationTokenCommand)).toHaveLength(0);
    expect(ecrMock.commandCalls(CreateRepositoryCommand)).toHaveLength(0);
  });

  it("accepts a scanned digest equal to the image's and, when every tag is already on it, copies nothing", async () => {
    existingRepository();
    ecrMock
      .on(DescribeImagesCommand, {
        repositoryName: "astrolens/inference",
        imageIds: [{ imageTag: "abc123" }],
      })
      .resolves({ imageDetails: [{ imageDigest: DIGEST, imageTags: ["abc123"] }] })
      .on(DescribeImagesCommand, {
        repositoryName: "astrolens/inference",
        imageIds: [{ imageDigest: DIGEST }],
      })
      .resolves({ imageDetails: [{ imageDigest: DIGEST, imageTags: ["abc123"] }] });
    ecrMock.on(GetAuthorizationTokenCommand).resolves({
      authorizationData: [
        {
          authorizationToken: Buffer.from("AWS:pw").toString("base64"),
          proxyEndpoint: "https://123456789012.dkr.ecr.us-east-1.amazonaws.com",
        },
      ],
    });
    const logger = createMemoryLogger();

    const pushed = await pushImage(options({ scannedDigest: DIGEST, logger }));

    expect(pushed).toEqual({
      repositoryUri: REPOSITORY_URI,
      digest: DIGEST,
      imageUri: `${REPOSITORY_URI}@${DIGEST}`,
      tags: ["abc123"],
      mediaType: "application/vnd.oci.image.manifest.v1+json",
    });
    expect(logger.lines).toContain(`astrolens/inference:abc123 is already ${DIGEST}`);
    expect(logger.lines.some((line) => line.startsWith("group: Pushing"))).toBe(false);
  });

  it("fails when ECR does not report every tag on the digest afterwards", async () => {
    existingRepository();
    ecrMock
      .on(DescribeImagesCommand, { imageIds: [{ imageTag: "abc123" }] })
      .resolves({ imageDetails: [{ imageDigest: DIGEST }] })
      .on(DescribeImagesCommand, { imageIds: [{ imageDigest: DIGEST }] })
      .resolves({ imageDetails: [{ imageDigest: DIGEST, imageTags: [] }] });
    ecrMock.on(GetAuthorizationTokenCommand).resolves({
      authorizationData: [
        {
          authorizationToken: Buffer.from("AWS:pw").toString("base64"),
          proxyEndpoint: "http://localhost:5000",
        },
      ],
    });

    await expect(pushImage(options())).rejects.toThrow(
      `ECR does not report ${DIGEST} with tag(s) abc123 after the push`,
    );
  });
});
