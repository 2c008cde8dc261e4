import {
  CreateRepositoryCommand,
  DescribeImagesCommand,
  DescribeRepositoriesCommand,
  ECRClient,
  GetAuthorizationTokenCommand,
  ImageNotFoundException,
} from "@aws-sdk/client-ecr";
import { mockClient } from "aws-sdk-client-mock";
import { beforeEach, describe, expect, it } from "vitest";
import { ConfigurationError } from "../../src/errors.js";
import { createMemoryLogger } from "../../src/gh/logger.js";
import { type PromoteOptions, parseImageReference, promoteImage } from "../../src/image/promote.js";

const ecrMock = mockClient(ECRClient);
const ecr = new ECRClient({ region: "us-east-1" });

const HOST = "123456789012.dkr.ecr.us-east-1.amazonaws.com";
const DIGEST = `sha256:${"a".repeat(64)}`;
const OTHER_DIGEST = `sha256:${"b".repeat(64)}`;

beforeEach(() => {
  ecrMock.reset();
});

function referenceError(reference: string): ConfigurationError {
  try {
    parseImageReference(reference, "source-image");
  } catch (err) {
    expect(err).toBeInstanceOf(ConfigurationError);
    return err as ConfigurationError;
  }
  throw new Error(`expected ${reference} to be rejected`);
}

describe("parseImageReference", () => {
  it("parses registry, repository and digest", () => {
    expect(parseImageReference(`${HOST}/astrolens/inference@${DIGEST}`, "source-image")).toEqual({
      host: HOST,
      repository: "astrolens/inference",
      digest: DIGEST,
    });
  });

  it("keeps a registry port and trims surrounding space", () => {
    expect(parseImageReference(`  localhost:5000/astrolens/inference@${DIGEST}\n`, "source")).toEqual({
      host: "localhost:5000",
      repository: "astrolens/inference",
      digest: DIGEST,
    });
  });

  it.each([
    ["a missing digest", `${HOST}/astrolens/inference`],
    ["a tag instead of a digest", `${HOST}/astrolens/inference:v1`],
    ["no registry", `inference@${DIGEST}`],
    ["an empty string", ""],
  ])("rejects %s as not an image by digest", (_why, reference) => {
    expect(referenceError(reference).message).toBe(
      `input "source-image": "${reference}" is not an image by digest: expected <registry>/<repository>@sha256:<64 hex>, as push-image outputs in image-uri`,
    );
  });

  it("rejects a bad digest, naming the input", () => {
    const reference = `${HOST}/astrolens/inference@sha256:1234`;
    expect(referenceError(reference).message).toBe(
      'input "source-image": "sha256:1234" is not an image digest: expected sha256: and 64 hex digits',
    );
  });

  it("rejects a tag and a digest together (the repository part is not a valid name)", () => {
    const err = referenceError(`${HOST}/astrolens/inference:v1@${DIGEST}`);
    expect(err.message).toContain(
      'input "source-image": "astrolens/inference:v1" is not a valid ECR repository name',
    );
  });
});

function options(overrides: Partial<PromoteOptions> = {}): PromoteOptions {
  return {
    source: { host: HOST, repository: "astrolens/inference", digest: DIGEST },
    sourceEcr: ecr,
    destinationEcr: ecr,
    destinationRepository: "astrolens/inference-prod",
    tags: ["v1.0.0"],
    logger: createMemoryLogger(),
    ...overrides,
  };
}

async function promoteError(overrides: Partial<PromoteOptions> = {}): Promise<ConfigurationError> {
  try {
    await promoteImage(options(overrides));
  } catch (err) {
    expect(err).toBeInstanceOf(ConfigurationError);
    return err as ConfigurationError;
  }
  throw new Error("expected promoteImage to throw");
}

describe("promoteImage", () => {
  it('names "source-image" when the source digest does not exist, and creates nothing', async () => {
    ecrMock
      .on(DescribeImagesCommand)
      .rejects(new ImageNotFoundException({ message: "image not found", $metadata: {} }));

    const err = await promoteError();

    expect(err.message).toBe(
      `input "source-image": astrolens/inference@${DIGEST} does not exist in ECR; check the digest (push-image's digest output) and the source region/account`,
    );
    expect(ecrMock.commandCalls(DescribeImagesCommand)[0]?.args[0].input).toEqual({
      repositoryName: "astrolens/inference",
      imageIds: [{ imageDigest: DIGEST }],
    });
    expect(ecrMock.commandCalls(DescribeRepositoriesCommand)).toHaveLength(0);
    expect(ecrMock.commandCalls(CreateRepositoryCommand)).toHaveLength(0);
    expect(ecrMock.commandCalls(GetAuthorizationTokenCommand)).toHaveLength(0);
  });

  it('names "tags" when a destination tag already names another digest, before asking for a token', async () => {
    ecrMock
      .on(DescribeImagesCommand, { repositoryName: "astrolens/inference" })
      .resolves({
        imageDetails: [
          { imageDigest: DIGEST, imageManifestMediaType: "application/vnd.oci.image.manifest.v1+json" },
        ],
      })
      .on(DescribeImagesCommand, { repositoryName: "astrolens/inference-prod" })
      .resolves({ imageDetails: [{ imageDigest: OTHER_DIGEST, imageTags: ["v1.0.0"] }] });
    ecrMock.on(DescribeRepositoriesCommand).resolves({
      repositories: [
        {
          repositoryName: "astrolens/inference-prod",
          repositoryUri: `${HOST}/astrolens/inference-prod`,
          imageTagMutability: "IMMUTABLE",
        },
      ],
    });

    const err = await promoteError();

    expect(err.message).toBe(
      `input "tags": astrolens/inference-prod:v1.0.0 already names ${OTHER_DIGEST}; tags are immutable, choose another tag`,
    );
    expect(ecrMock.commandCalls(GetAuthorizationTokenCommand)).toHaveLength(0);
  });

  it("rejects zero tags before calling ECR", async () => {
    const err = await promoteError({ tags: [] });
    expect(err.message).toBe('input "tags": give at least one tag for the promoted image');
    expect(ecrMock.calls()).toHaveLength(0);
  });

  it("rejects an invalid destination repository or tag before calling ECR", async () => {
    expect((await promoteError({ destinationRepository: "Prod" })).message).toContain(
      'input "destination-repository": "Prod" is not a valid ECR repository name',
    );
    expect((await promoteError({ tags: [".v1"] })).message).toContain(
      'input "tags": ".v1" is not a valid image tag',
    );
    expect(ecrMock.calls()).toHaveLength(0);
  });
});
