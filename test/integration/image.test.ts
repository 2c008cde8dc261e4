import { spawn } from "node:child_process";
import { createHash } from "node:crypto";
import { mkdtempSync, readFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { DescribeRepositoriesCommand, ECRClient } from "@aws-sdk/client-ecr";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ConfigurationError } from "../../src/errors.js";
import { createMemoryLogger } from "../../src/gh/logger.js";
import { type BuiltImage, buildImage } from "../../src/image/build.js";
import { containerStorage, DOCKER_MANIFEST_V2 } from "../../src/image/containers.js";
import { findImageByDigest } from "../../src/image/ecr.js";
import { parseImageReference, promoteImage } from "../../src/image/promote.js";
import { pushImage } from "../../src/image/push.js";
import { scanImage } from "../../src/image/scan.js";
import { resolveScanPolicy } from "../../src/image/scan-policy-file.js";
import { LOCAL_BUILD_ARGS, proxyCaSecret } from "../../src/local/base-images.js";
import { localPaths } from "../../src/local/paths.js";
import { motoCommand } from "../../src/local/stack.js";
import { freePort, loadLocalEnv, localEcr, uniqueName } from "../helpers/local-aws.js";

const root = localPaths().root;
const logger = createMemoryLogger();

function buildOptions(outputDir: string) {
  return {
    context: root,
    dockerfile: "Dockerfile",
    name: "localhost/astrolens-inference:itest",
    buildArgs: LOCAL_BUILD_ARGS,
    secrets: proxyCaSecret(),
    platform: "linux/amd64",
    cacheFrom: [],
    builder: "buildah" as const,
    outputDir,
    storage: containerStorage(process.env, root),
    logger,
  };
}

function scanOptions(image: BuiltImage, waiversFile?: string, now?: Date) {
  return resolveScanPolicy({ waiversFile }, now).then((policy) => ({
    archive: image.archive,
    dockerfile: join(root, "Dockerfile"),
    digest: image.digest,
    policy,
    outputDir: mkdtempSync(join(tmpdir(), "astrolens-scan-")),
    cacheDir: process.env.TRIVY_CACHE_DIR as string,
    offline: true,
    dbRepositories: [],
    logger,
  }));
}

describe("the image stage against the local AWS", () => {
  let image: BuiltImage;
  let ecr: ECRClient;

  beforeAll(async () => {
    loadLocalEnv();
    ecr = localEcr();
    image = await buildImage(buildOptions(mkdtempSync(join(tmpdir(), "astrolens-build-"))));
  });

  it("builds the repository's Dockerfile with buildah as a Docker v2 schema 2 image", () => {
    const manifest = readFileSync(join(image.imageDir, "manifest.json"));
    expect(image.builder).toBe("buildah");
    expect(image.mediaType).toBe(DOCKER_MANIFEST_V2);
    expect(image.digest).toBe(`sha256:${createHash("sha256").update(manifest).digest("hex")}`);
    expect(JSON.parse(manifest.toString()).layers.length).toBe(image.layers);
  });

  it("fails the scan on the real HIGH finding in the image", async () => {
    const result = await scanImage(await scanOptions(image));
    expect(result.verdict.passed).toBe(false);
    const blocking = result.verdict.findings.filter((f) => f.classification === "blocking");
    expect(blocking.map((f) => `${f.id} ${f.package}`).sort()).toEqual([
      "ASTROLENS-2026-0001 libnode115",
      "ASTROLENS-2026-0001 nodejs",
    ]);
    expect(result.verdict.reasons.join("\n")).toContain("ASTROLENS-2026-0001 (HIGH) in nodejs");
  });

  it("passes the scan once the finding is waived, and writes SARIF and an SBOM of the real image", async () => {
    const result = await scanImage(await scanOptions(image, join(root, ".astrolens", "scan-waivers.yaml")));
    expect(result.verdict.passed).toBe(true);
    expect(result.verdict.counts.byClassification.waived).toBe(2);
    const sarif = JSON.parse(readFileSync(result.sarifFile, "utf8"));
    expect(sarif.version).toBe("2.1.0");
    const ruleIds = sarif.runs[0].tool.driver.rules.map((rule: { id: string }) => rule.id);
    expect(ruleIds).toContain("ASTROLENS-2026-0001");
    const sbom = JSON.parse(readFileSync(result.sbomFile, "utf8"));
    expect(sbom.bomFormat).toBe("CycloneDX");
    expect(sbom.components.map((c: { name: string }) => c.name)).toContain("nodejs");
    expect(JSON.parse(readFileSync(result.verdictFile, "utf8")).digest).toBe(image.digest);
  });

  it("fails the scan again when the waiver has expired, naming the waiver", async () => {
    const result = await scanImage(
      await scanOptions(
        image,
        join(root, ".astrolens", "scan-waivers.yaml"),
        new Date("2031-01-01T00:00:00Z"),
      ),
    );
    expect(result.verdict.passed).toBe(false);
    expect(result.verdict.reasons.join("\n")).toMatch(/waiver for ASTROLENS-2026-0001 expired on 2027-11-30/);
  });

  it("pushes by digest, and ECR's API and the registry report the same digest and tags", async () => {
    const repository = uniqueName("itest/push");
    const pushed = await pushImage({
      ecr,
      imageDir: image.imageDir,
      repository,
      tags: ["abc123", "v0.1.0-abc123"],
      scanVerdict: "pass",
      scannedDigest: image.digest,
      logger,
    });
    expect(pushed.imageUri).toBe(`${process.env.ASTROLENS_REGISTRY}/${repository}@${image.digest}`);
    const seen = await findImageByDigest(ecr, repository, image.digest);
    expect(seen?.imageTags?.sort()).toEqual(["abc123", "v0.1.0-abc123"]);
    expect(seen?.imageManifestMediaType).toBe(DOCKER_MANIFEST_V2);
    const head = await fetch(`http://${process.env.ASTROLENS_REGISTRY}/v2/${repository}/manifests/abc123`, {
      method: "HEAD",
      headers: { accept: DOCKER_MANIFEST_V2 },
    });
    expect(head.headers.get("docker-content-digest")).toBe(image.digest);
    const repo = await ecr.send(new DescribeRepositoriesCommand({ repositoryNames: [repository] }));
    expect(repo.repositories?.[0]?.imageTagMutability).toBe("IMMUTABLE");
    expect(repo.repositories?.[0]?.imageScanningConfiguration?.scanOnPush).toBe(true);

    // Pushing again is a no-op; a tag that names this digest is not "moved".
    await pushImage({
      ecr,
      imageDir: image.imageDir,
      repository,
      tags: ["abc123"],
      scanVerdict: "pass",
      scannedDigest: image.digest,
      logger,
    });

    const promoted = await promoteImage({
      source: parseImageReference(pushed.imageUri, "source-image"),
      sourceEcr: ecr,
      destinationEcr: ecr,
      destinationRepository: `${repository}-prod`,
      tags: ["production"],
      logger,
    });
    expect(promoted.digest).toBe(image.digest);
    expect((await findImageByDigest(ecr, `${repository}-prod`, image.digest))?.imageTags).toEqual([
      "production",
    ]);
  });

  it("refuses a missing Dockerfile before building anything", async () => {
    const options = {
      ...buildOptions(mkdtempSync(join(tmpdir(), "astrolens-build-"))),
      dockerfile: "Nope.Dockerfile",
    };
    const attempt = buildImage(options);
    await expect(attempt).rejects.toBeInstanceOf(ConfigurationError);
    await expect(attempt).rejects.toThrow(/input "dockerfile": .*Nope\.Dockerfile does not exist/);
  });

  it("says Trivy is missing and how to install it", async () => {
    const options = await scanOptions(image);
    const cwd = process.cwd();
    const path = process.env.PATH;
    process.chdir(tmpdir());
    process.env.PATH = "/nonexistent";
    try {
      await expect(scanImage(options)).rejects.toThrow(
        /Trivy is not installed: run scripts\/install-trivy\.sh/,
      );
    } finally {
      process.chdir(cwd);
      process.env.PATH = path;
    }
  });

  describe("with the registry down", () => {
    let server: ReturnType<typeof spawn>;
    let downEcr: ECRClient;

    beforeAll(async () => {
      // A second local AWS whose registry address answers nothing: AWS's control
      // plane up, its registry unreachable.
      const [motoPort, deadPort] = [await freePort(), await freePort()];
      const { command, env } = motoCommand(localPaths(), motoPort, `http://127.0.0.1:${deadPort}`);
      const [program, ...args] = command;
      server = spawn(program, args, { env: { ...process.env, ...env }, stdio: "ignore" });
      const endpoint = `http://127.0.0.1:${motoPort}`;
      for (let i = 0; i < 100; i++) {
        if (
          await fetch(`${endpoint}/moto-api/config`).then(
            (r) => r.ok,
            () => false,
          )
        )
          break;
        await new Promise((r) => setTimeout(r, 100));
      }
      downEcr = new ECRClient({ region: "us-east-1", endpoint, maxAttempts: 1 });
    });
    afterAll(() => {
      server.kill();
    });

    it("fails with a clear error and leaves nothing pushed", async () => {
      const repository = uniqueName("itest/down");
      const attempt = pushImage({
        ecr: downEcr,
        imageDir: image.imageDir,
        repository,
        tags: ["t1"],
        scanVerdict: "pass",
        scannedDigest: image.digest,
        logger,
      });
      await expect(attempt).rejects.toBeInstanceOf(ConfigurationError);
      await expect(attempt).rejects.toThrow(
        /the registry 127\.0\.0\.1:\d+ is not reachable \(connection refused\).*nothing was pushed/,
      );
      expect(await findImageByDigest(downEcr, repository, image.digest)).toBeUndefined();
    });
  });
});
