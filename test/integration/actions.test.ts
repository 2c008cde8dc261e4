import { createHash } from "node:crypto";
import { existsSync, mkdtempSync, readFileSync, rmSync, statSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { DescribeImagesCommand, type ImageDetail } from "@aws-sdk/client-ecr";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { awsErrorName } from "../../src/aws/clients.js";
import { LOCAL_BUILD_ARGS, proxyCaSecret } from "../../src/local/base-images.js";
import { loadLocalEnv, localEcr, uniqueName } from "../helpers/local-aws.js";
import { type ActionRun, runActionBundle } from "../helpers/run-action.js";

/**
 * The bundled actions chained the way a release workflow chains them, each run as the
 * runner runs it (`node dist/<name>/index.js` with INPUT_* and the file commands), against
 * the local AWS: build-image -> scan-image -> push-image -> promote-image.
 */

const DOCKER_V2S2 = "application/vnd.docker.distribution.manifest.v2+json";
const WAIVERS_FILE = ".astrolens/scan-waivers.yaml";
const TEST_ADVISORY = "ASTROLENS-2026-0001";

let env: Record<string, string>;
const temps: string[] = [];
function tempDir(label: string): string {
  const dir = mkdtempSync(join(tmpdir(), `astrolens-actions-${label}-`));
  temps.push(dir);
  return dir;
}

/** Fails with the step's whole log, so a failing step says why. */
function expectSuccess(run: ActionRun): void {
  expect(run.exitCode, `stdout:\n${run.stdout}\nstderr:\n${run.stderr}`).toBe(0);
}

/** The images of `repository` in the local ECR; [] when it holds none or does not exist. */
async function imagesIn(repository: string): Promise<ImageDetail[]> {
  try {
    const found = await localEcr().send(new DescribeImagesCommand({ repositoryName: repository }));
    return found.imageDetails ?? [];
  } catch (err) {
    if (awsErrorName(err) === "RepositoryNotFoundException") return [];
    throw err;
  }
}

function scanInputs(build: ActionRun, outputDir: string): Record<string, string> {
  return {
    archive: build.outputs.archive ?? "",
    digest: build.outputs.digest ?? "",
    offline: "true",
    "cache-dir": env.TRIVY_CACHE_DIR ?? "",
    "output-dir": outputDir,
  };
}

let build: ActionRun;

beforeAll(async () => {
  env = loadLocalEnv();
  expect(env.TRIVY_CACHE_DIR, ".local/env has no TRIVY_CACHE_DIR").toBeTruthy();
  build = await runActionBundle(
    "build-image",
    {
      "build-args": Object.entries(LOCAL_BUILD_ARGS)
        .map(([key, value]) => `${key}=${value}`)
        .join("\n"),
      "secret-files": Object.entries(proxyCaSecret())
        .map(([id, file]) => `${id}=${file}`)
        .join("\n"),
      builder: "buildah",
      "output-dir": tempDir("build"),
      // Its own local name, so a concurrent `release --env local` never retags it.
      name: "localhost/astrolens-inference:actions-test",
    },
    env,
  );
});

afterAll(() => {
  for (const dir of temps) rmSync(dir, { recursive: true, force: true });
});

describe("the actions chained like the release workflow", () => {
  let scan: ActionRun | undefined;
  let push: ActionRun | undefined;

  it("build-image outputs the digest of the Docker v2s2 manifest it wrote", () => {
    expectSuccess(build);
    const { digest, "media-type": mediaType, "image-dir": imageDir, archive } = build.outputs;
    expect(imageDir).toBeTruthy();
    const manifest = readFileSync(join(imageDir ?? "", "manifest.json"));
    expect(digest).toBe(`sha256:${createHash("sha256").update(manifest).digest("hex")}`);
    expect(mediaType).toBe(DOCKER_V2S2);
    expect(JSON.parse(manifest.toString("utf8")).mediaType).toBe(DOCKER_V2S2);
    expect(build.outputs.builder).toBe("buildah");
    expect(existsSync(archive ?? "") && statSync(archive ?? "").size).toBeGreaterThan(0);
    expect(Number(build.outputs["size-bytes"])).toBeGreaterThan(0);
    expect(build.summary).toContain("## Image built");
    expect(build.summary).toContain(digest);
  });

  it("scan-image passes the image with the waivers and writes SARIF and a CycloneDX SBOM", async () => {
    scan = await runActionBundle(
      "scan-image",
      { ...scanInputs(build, tempDir("scan")), "waivers-file": WAIVERS_FILE },
      env,
    );
    expectSuccess(scan);
    expect(scan.outputs.verdict).toBe("pass");
    expect(scan.outputs["scanned-digest"]).toBe(build.outputs.digest);
    expect(Number(scan.outputs.waived)).toBeGreaterThanOrEqual(1);
    expect(scan.outputs.blocking).toBe("0");

    const sarifFile = scan.outputs["sarif-file"] ?? "";
    expect(statSync(sarifFile).size).toBeGreaterThan(0);
    expect(JSON.parse(readFileSync(sarifFile, "utf8")).version).toBe("2.1.0");
    const sbomFile = scan.outputs["sbom-file"] ?? "";
    expect(statSync(sbomFile).size).toBeGreaterThan(0);
    expect(JSON.parse(readFileSync(sbomFile, "utf8")).bomFormat).toBe("CycloneDX");
    const verdict = JSON.parse(readFileSync(scan.outputs["verdict-file"] ?? "", "utf8"));
    expect(verdict.digest).toBe(build.outputs.digest);

    expect(scan.summary).toContain("✅ Image scan passed");
    expect(scan.summary).toContain(TEST_ADVISORY);
  });

  it("push-image pushes the scanned image by digest with both tags", async () => {
    expect(scan?.outputs.verdict, "the scan step did not pass").toBe("pass");
    const repository = uniqueName("actions-push");
    push = await runActionBundle(
      "push-image",
      {
        "image-dir": build.outputs["image-dir"] ?? "",
        repository,
        tags: "t1,t2",
        "scan-verdict": scan?.outputs.verdict ?? "",
        "scanned-digest": scan?.outputs["scanned-digest"] ?? "",
      },
      env,
    );
    expectSuccess(push);
    const digest = build.outputs.digest ?? "";
    expect(push.outputs["image-uri"]?.endsWith(`/${repository}@${digest}`)).toBe(true);
    expect(push.outputs["image-uri"]).toBe(`${push.outputs["repository-uri"]}@${digest}`);
    expect(push.outputs.digest).toBe(digest);
    expect(push.outputs.tags).toBe("t1,t2");
    expect(push.summary).toContain("## Image pushed");
    expect(push.summary).toContain(push.outputs["image-uri"]);

    const images = await imagesIn(repository);
    expect(images.map((image) => image.imageDigest)).toEqual([digest]);
    expect([...(images[0]?.imageTags ?? [])].sort()).toEqual(["t1", "t2"]);
    expect(images[0]?.imageManifestMediaType).toBe(DOCKER_V2S2);
  });

  it("promote-image copies the pushed image to another repository with the same digest", async () => {
    const source = push?.outputs["image-uri"];
    expect(source, "the push step gave no image-uri").toBeTruthy();
    const repository = uniqueName("actions-promote");
    const promote = await runActionBundle(
      "promote-image",
      { "source-image": source ?? "", "destination-repository": repository, tags: "prod" },
      env,
    );
    expectSuccess(promote);
    const digest = build.outputs.digest ?? "";
    expect(promote.outputs.digest).toBe(digest);
    expect(promote.outputs["digest-unchanged"]).toBe("true");
    expect(promote.outputs["image-uri"]?.endsWith(`/${repository}@${digest}`)).toBe(true);
    expect(promote.summary).toContain("## Image promoted");

    const images = await imagesIn(repository);
    expect(images.map((image) => image.imageDigest)).toEqual([digest]);
    expect(images[0]?.imageTags).toEqual(["prod"]);
  });
});

describe("the actions refuse what they must", () => {
  it("scan-image without the waivers fails the step on the test advisory", async () => {
    const failed = await runActionBundle("scan-image", scanInputs(build, tempDir("scan-nowaivers")), env);
    expect(failed.exitCode).toBe(1);
    expect(failed.outputs.verdict).toBe("fail");
    expect(Number(failed.outputs.blocking)).toBeGreaterThanOrEqual(1);
    expect(failed.outputs.waived).toBe("0");
    expect(`${failed.stdout}\n${failed.stderr}`).toContain(TEST_ADVISORY);
    expect(failed.stdout).toContain("::error::scan-image failed:");
    expect(failed.summary).toContain("❌ Image scan failed");
  });

  it("push-image refuses a failed scan verdict and pushes nothing", async () => {
    const repository = uniqueName("actions-refused");
    const refused = await runActionBundle(
      "push-image",
      {
        "image-dir": build.outputs["image-dir"] ?? "",
        repository,
        tags: "t1",
        "scan-verdict": "fail",
        "scanned-digest": build.outputs.digest ?? "",
      },
      env,
    );
    expect(refused.exitCode).not.toBe(0);
    expect(refused.stdout).toMatch(/::error::push-image failed: input "scan-verdict"/);
    expect(refused.outputs).toEqual({});
    expect(await imagesIn(repository)).toEqual([]);
  });

  it("build-image rejects an unknown builder, naming the input", async () => {
    const rejected = await runActionBundle(
      "build-image",
      { builder: "podman", "output-dir": tempDir("build-podman") },
      env,
    );
    expect(rejected.exitCode).toBe(1);
    expect(rejected.stdout).toMatch(/::error::build-image failed: input "builder": .*\(got "podman"\)/);
    expect(rejected.outputs).toEqual({});
  });
});
