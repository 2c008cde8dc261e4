import { existsSync, readFileSync, statSync } from "node:fs";
import { dirname } from "node:path";
import {
  CreateRepositoryCommand,
  DescribeImagesCommand,
  DescribeRepositoriesCommand,
  ECRClient,
  GetAuthorizationTokenCommand,
  ImageNotFoundException,
  RepositoryNotFoundException,
} from "@aws-sdk/client-ecr";
import { mockClient } from "aws-sdk-client-mock";
import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import { ConfigurationError } from "../../src/errors.js";
import { createMemoryLogger } from "../../src/gh/logger.js";
import {
  ensureRepository,
  findImageByDigest,
  findImageByTag,
  loginToRegistries,
  validateDigest,
  validateRepositoryName,
  validateTag,
} from "../../src/image/ecr.js";

const ecrMock = mockClient(ECRClient);
const ecr = new ECRClient({ region: "us-east-1" });
const DIGEST = `sha256:${"a".repeat(64)}`;

beforeEach(() => {
  ecrMock.reset();
});

function configurationError(fn: () => unknown): ConfigurationError {
  try {
    fn();
  } catch (err) {
    expect(err).toBeInstanceOf(ConfigurationError);
    return err as ConfigurationError;
  }
  throw new Error("expected a ConfigurationError");
}

describe("validateRepositoryName", () => {
  it.each(["astrolens/inference", "a1", "astrolens/inference-gpu_v2.1", "a/b/c"])("accepts %s", (name) => {
    expect(validateRepositoryName(name, "repository")).toBe(name);
  });

  it.each([
    ["upper case", "Astro"],
    ["a leading dash", "-x"],
    ["one character", "a"],
    ["an empty path segment", "a//b"],
    ["a trailing slash", "astrolens/"],
    ["a trailing separator", "astro-"],
    ["257 characters", "a".repeat(257)],
    ["a tag", "astrolens:latest"],
  ])("rejects %s", (_why, name) => {
    const err = configurationError(() => validateRepositoryName(name, "repository"));
    expect(err.message).toContain(`input "repository": "${name}" is not a valid ECR repository name`);
    expect(err.message).toContain('(e.g. "astrolens/inference")');
  });

  it("accepts exactly 256 characters", () => {
    expect(validateRepositoryName("a".repeat(256), "repository")).toHaveLength(256);
  });

  it("names the input it was given", () => {
    expect(() => validateRepositoryName("Bad", "destination-repository")).toThrow(
      'input "destination-repository": "Bad"',
    );
  });
});

describe("validateTag", () => {
  it.each(["latest", "v1.2.3", "_build", "0123abc", "a".repeat(128)])("accepts %s", (tag) => {
    expect(validateTag(tag, "tags")).toBe(tag);
  });

  it.each([".hidden", "-x", "", "a".repeat(129), "v1/2", "a b", "v1:2"])("rejects %j", (tag) => {
    const err = configurationError(() => validateTag(tag, "tags"));
    expect(err.message).toContain(`input "tags": "${tag}" is not a valid image tag`);
  });
});

describe("validateDigest", () => {
  it("accepts sha256 and 64 lower-case hex digits", () => {
    expect(validateDigest(DIGEST, "digest")).toBe(DIGEST);
  });

  it.each([
    `sha256:${"a".repeat(63)}`,
    `sha256:${"A".repeat(64)}`,
    `sha512:${"a".repeat(64)}`,
    "a".repeat(64),
    `sha256:${"g".repeat(64)}`,
  ])("rejects %s", (digest) => {
    const err = configurationError(() => validateDigest(digest, "digest"));
    expect(err.message).toBe(
      `input "digest": "${digest}" is not an image digest: expected sha256: and 64 hex digits`,
    );
  });
});

describe("ensureRepository", () => {
  const notFound = () =>
    new RepositoryNotFoundException({ message: "repository does not exist", $metadata: {} });

  it("creates a missing repository with IMMUTABLE tags and scan on push", async () => {
    ecrMock.on(DescribeRepositoriesCommand).rejects(notFound());
    ecrMock.on(CreateRepositoryCommand).resolves({
      repository: { repositoryName: "astrolens/inference", imageTagMutability: "IMMUTABLE" },
    });
    const logger = createMemoryLogger();

    const repository = await ensureRepository(ecr, "astrolens/inference", logger);

    expect(repository.repositoryName).toBe("astrolens/inference");
    expect(ecrMock.commandCalls(DescribeRepositoriesCommand)[0]?.args[0].input).toEqual({
      repositoryNames: ["astrolens/inference"],
    });
    const creates = ecrMock.commandCalls(CreateRepositoryCommand);
    expect(creates).toHaveLength(1);
    expect(creates[0]?.args[0].input).toEqual({
      repositoryName: "astrolens/inference",
      imageTagMutability: "IMMUTABLE",
      imageScanningConfiguration: { scanOnPush: true },
    });
    expect(logger.lines).toContain(
      "creating ECR repository astrolens/inference (IMMUTABLE tags, scan on push)",
    );
  });

  it("returns an existing IMMUTABLE repository without creating or warning", async () => {
    ecrMock.on(DescribeRepositoriesCommand).resolves({
      repositories: [{ repositoryName: "astrolens/inference", imageTagMutability: "IMMUTABLE" }],
    });
    const logger = createMemoryLogger();

    const repository = await ensureRepository(ecr, "astrolens/inference", logger);

    expect(repository.imageTagMutability).toBe("IMMUTABLE");
    expect(ecrMock.commandCalls(CreateRepositoryCommand)).toHaveLength(0);
    expect(logger.lines.filter((line) => line.startsWith("warning:"))).toEqual([]);
  });

  it("returns an existing MUTABLE repository unchanged and warns about it", async () => {
    ecrMock.on(DescribeRepositoriesCommand).resolves({
      repositories: [
        {
          repositoryName: "astrolens/inference",
          repositoryUri: "123456789012.dkr.ecr.us-east-1.amazonaws.com/astrolens/inference",
          imageTagMutability: "MUTABLE",
        },
      ],
    });
    const logger = createMemoryLogger();

    const repository = await ensureRepository(ecr, "astrolens/inference", logger);

    expect(repository.repositoryUri).toBe("123456789012.dkr.ecr.us-east-1.amazonaws.com/astrolens/inference");
    expect(ecrMock.calls()).toHaveLength(1);
    expect(ecrMock.commandCalls(CreateRepositoryCommand)).toHaveLength(0);
    const warnings = logger.lines.filter((line) => line.startsWith("warning:"));
    expect(warnings).toHaveLength(1);
    expect(warnings[0]).toContain("ECR repository astrolens/inference has MUTABLE tags");
    expect(warnings[0]).toContain("set imageTagMutability to IMMUTABLE");
  });

  it("rethrows any other error without creating", async () => {
    const denied = Object.assign(new Error("not authorized to DescribeRepositories"), {
      name: "AccessDeniedException",
      $metadata: { httpStatusCode: 403 },
    });
    ecrMock.on(DescribeRepositoriesCommand).rejects(denied);

    await expect(ensureRepository(ecr, "astrolens/inference", createMemoryLogger())).rejects.toThrow(
      "not authorized to DescribeRepositories",
    );
    expect(ecrMock.commandCalls(CreateRepositoryCommand)).toHaveLength(0);
  });

  it("fails when CreateRepository returns no repository", async () => {
    ecrMock.on(DescribeRepositoriesCommand).rejects(notFound());
    ecrMock.on(CreateRepositoryCommand).resolves({});
    await expect(ensureRepository(ecr, "astrolens/inference", createMemoryLogger())).rejects.toThrow(
      "CreateRepository returned no repository for astrolens/inference",
    );
  });
});

describe("loginToRegistries", () => {
  const password = "s3cr3t:with:colons";
  const token = Buffer.from(`AWS:${password}`).toString("base64");
  const disposers: (() => void)[] = [];

  afterEach(() => {
    for (const dispose of disposers.splice(0)) dispose();
  });

  it("writes a 0600 auth file whose auths[host].auth is the token", async () => {
    ecrMock.on(GetAuthorizationTokenCommand).resolves({
      authorizationData: [
        {
          authorizationToken: token,
          proxyEndpoint: "https://123456789012.dkr.ecr.us-east-1.amazonaws.com",
        },
      ],
    });
    const auth = await loginToRegistries([ecr], createMemoryLogger());
    disposers.push(auth.dispose);

    expect(statSync(auth.path).mode & 0o777).toBe(0o600);
    expect(JSON.parse(readFileSync(auth.path, "utf8"))).toEqual({
      auths: { "123456789012.dkr.ecr.us-east-1.amazonaws.com": { auth: token } },
    });
    expect(auth.logins).toEqual([{ host: "123456789012.dkr.ecr.us-east-1.amazonaws.com", insecure: false }]);
  });

  it("masks the token and the decoded password before anything is logged", async () => {
    ecrMock.on(GetAuthorizationTokenCommand).resolves({
      authorizationData: [
        {
          authorizationToken: token,
          proxyEndpoint: "https://123456789012.dkr.ecr.us-east-1.amazonaws.com",
          expiresAt: new Date("2026-06-15T12:00:00Z"),
        },
      ],
    });
    const logger = createMemoryLogger();
    const setSecret = vi.spyOn(logger, "setSecret");
    const debug = vi.spyOn(logger, "debug");

    const auth = await loginToRegistries([ecr], logger);
    disposers.push(auth.dispose);

    expect(setSecret.mock.calls).toEqual([[token], [password]]);
    expect(debug).toHaveBeenCalledWith(
      "registry token for 123456789012.dkr.ecr.us-east-1.amazonaws.com expires 2026-06-15T12:00:00.000Z",
    );
    const lastSecret = Math.max(...setSecret.mock.invocationCallOrder);
    const firstDebug = Math.min(...debug.mock.invocationCallOrder);
    expect(lastSecret).toBeLessThan(firstDebug);
  });

  it("marks an http endpoint (the local registry) insecure, keeping the port in the host", async () => {
    ecrMock.on(GetAuthorizationTokenCommand).resolves({
      authorizationData: [{ authorizationToken: token, proxyEndpoint: "http://localhost:5000" }],
    });
    const auth = await loginToRegistries([ecr], createMemoryLogger());
    disposers.push(auth.dispose);

    expect(auth.logins).toEqual([{ host: "localhost:5000", insecure: true }]);
    expect(Object.keys(JSON.parse(readFileSync(auth.path, "utf8")).auths)).toEqual(["localhost:5000"]);
  });

  it("logs in to every client's registry in one file", async () => {
    const other = new ECRClient({ region: "eu-west-1" });
    const otherToken = Buffer.from("AWS:other").toString("base64");
    ecrMock
      .on(GetAuthorizationTokenCommand)
      .resolvesOnce({
        authorizationData: [
          { authorizationToken: token, proxyEndpoint: "https://111.dkr.ecr.us-east-1.amazonaws.com" },
        ],
      })
      .resolvesOnce({
        authorizationData: [
          { authorizationToken: otherToken, proxyEndpoint: "https://222.dkr.ecr.eu-west-1.amazonaws.com" },
        ],
      });
    const auth = await loginToRegistries([ecr, other], createMemoryLogger());
    disposers.push(auth.dispose);

    expect(ecrMock.commandCalls(GetAuthorizationTokenCommand)).toHaveLength(2);
    expect(JSON.parse(readFileSync(auth.path, "utf8"))).toEqual({
      auths: {
        "111.dkr.ecr.us-east-1.amazonaws.com": { auth: token },
        "222.dkr.ecr.eu-west-1.amazonaws.com": { auth: otherToken },
      },
    });
  });

  it("dispose() removes the auth file and its folder", async () => {
    ecrMock.on(GetAuthorizationTokenCommand).resolves({
      authorizationData: [{ authorizationToken: token, proxyEndpoint: "http://localhost:5000" }],
    });
    const auth = await loginToRegistries([ecr], createMemoryLogger());
    expect(existsSync(auth.path)).toBe(true);

    auth.dispose();

    expect(existsSync(auth.path)).toBe(false);
    expect(existsSync(dirname(auth.path))).toBe(false);
  });

  it("fails when ECR returns no token", async () => {
    ecrMock.on(GetAuthorizationTokenCommand).resolves({ authorizationData: [] });
    await expect(loginToRegistries([ecr], createMemoryLogger())).rejects.toThrow(
      "GetAuthorizationToken returned no token",
    );
  });
});

describe("findImageByTag and findImageByDigest", () => {
  it("returns the image ECR describes, asking by tag", async () => {
    ecrMock
      .on(DescribeImagesCommand)
      .resolves({ imageDetails: [{ imageDigest: DIGEST, imageTags: ["v1"] }] });

    const image = await findImageByTag(ecr, "astrolens/inference", "v1");

    expect(image?.imageDigest).toBe(DIGEST);
    expect(ecrMock.commandCalls(DescribeImagesCommand)[0]?.args[0].input).toEqual({
      repositoryName: "astrolens/inference",
      imageIds: [{ imageTag: "v1" }],
    });
  });

  it("asks by digest", async () => {
    ecrMock.on(DescribeImagesCommand).resolves({ imageDetails: [{ imageDigest: DIGEST }] });
    expect((await findImageByDigest(ecr, "astrolens/inference", DIGEST))?.imageDigest).toBe(DIGEST);
    expect(ecrMock.commandCalls(DescribeImagesCommand)[0]?.args[0].input).toEqual({
      repositoryName: "astrolens/inference",
      imageIds: [{ imageDigest: DIGEST }],
    });
  });

  it("returns undefined on ImageNotFoundException", async () => {
    ecrMock
      .on(DescribeImagesCommand)
      .rejects(new ImageNotFoundException({ message: "no image with tag v9", $metadata: {} }));
    await expect(findImageByTag(ecr, "astrolens/inference", "v9")).resolves.toBeUndefined();
  });

  it("rethrows other errors", async () => {
    ecrMock
      .on(DescribeImagesCommand)
      .rejects(
        new RepositoryNotFoundException({ message: "repository astrolens/x does not exist", $metadata: {} }),
      );
    await expect(findImageByTag(ecr, "astrolens/x", "v1")).rejects.toThrow(
      "repository astrolens/x does not exist",
    );
  });
});
